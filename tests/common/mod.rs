//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod gate;
#[allow(unused_imports)]
pub use gate::{gated_fs, is_segment, Gate, GateOn, WrappedFs, GATE_TIMEOUT};

use eoslog::{
    AppendInfo, AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, FileSystem, Isolation, Log,
    LogConfig, LogOptions, ManualClock, MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, Rejection,
    Sequence, StdFileSystem, StorageFile, TxnMarker,
};

pub const T0: i64 = 1_700_000_000_000;

pub struct TestLog {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub config: LogConfig,
}

impl TestLog {
    pub fn new() -> Self {
        Self::with_config(LogConfig::default())
    }
    pub fn with_config(config: LogConfig) -> Self {
        TestLog {
            dir: tempfile::tempdir().expect("tempdir"),
            clock: ManualClock::new(T0),
            config,
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("topic-0")
    }
    pub fn open(&self) -> Log {
        self.open_at(&self.path())
    }
    /// Opens the log in `dir` with this test's config and clock.
    pub fn open_at(&self, dir: &Path) -> Log {
        self.open_in(dir, Arc::new(StdFileSystem))
    }
    /// Opens the log with this test's config and clock on `fs`.
    pub fn open_with_fs(&self, fs: Arc<dyn FileSystem>) -> Log {
        self.open_in(&self.path(), fs)
    }
    fn open_in(&self, dir: &Path, fs: Arc<dyn FileSystem>) -> Log {
        Log::open_with(
            dir,
            self.config.clone(),
            LogOptions {
                fs,
                clock: Arc::new(self.clock.clone()),
            },
        )
        .expect("open log")
    }
}

pub fn config(pairs: &[(&str, &str)]) -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in pairs {
        c.set(k, v).expect("config");
    }
    c
}

/// An idempotent batch of `n` records starting at sequence `seq`.
pub fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("p{pid}-s{}", seq as i64 + i as i64).into_bytes())
        .collect();
    let recs: Vec<NewRecord<'_>> = values.iter().map(|v| NewRecord::value(T0, v)).collect();
    BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
        .build(&recs)
        .expect("build")
}

/// A transactional batch of `n` records.
pub fn txn(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("t{pid}-s{}", seq as i64 + i as i64).into_bytes())
        .collect();
    let recs: Vec<NewRecord<'_>> = values.iter().map(|v| NewRecord::value(T0, v)).collect();
    BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
        .build(&recs)
        .expect("build")
}

/// A plain batch with the given values.
pub fn plain(values: &[&str]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(T0, v.as_bytes()))
        .collect();
    BatchBuilder::new().build(&recs).expect("build")
}

/// Every batch stored in `log` from its start (read_uncommitted), each CRC checked, mapped
/// by `f`.
pub fn map_batches<T>(log: &Log, f: impl Fn(&eoslog::RecordBatch<'_>) -> T) -> Vec<T> {
    let bytes = log
        .read(log.log_start_offset(), usize::MAX / 2, Isolation::ReadUncommitted)
        .expect("read")
        .bytes()
        .expect("bytes");
    eoslog::BatchIter::new(&bytes)
        .map(|item| {
            let (_, b) = item.expect("a whole batch");
            b.validate_crc().expect("a valid CRC");
            f(&b)
        })
        .collect()
}

pub fn appended(o: AppendOutcome) -> AppendInfo {
    match o {
        AppendOutcome::Appended(i) => i,
        other => panic!("expected Appended, got {other:?}"),
    }
}

pub fn rejected(o: AppendOutcome) -> Rejection {
    match o {
        AppendOutcome::Rejected(r) => r,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

pub fn client(log: &Log, bytes: &[u8]) -> AppendOutcome {
    log.append(bytes, AppendOrigin::Client).expect("append")
}

pub fn marker(log: &Log, pid: i64, epoch: i16, coord: i32, kind: MarkerType) -> AppendOutcome {
    log.write_marker(&TxnMarker {
        producer_id: ProducerId(pid),
        producer_epoch: ProducerEpoch(epoch),
        coordinator_epoch: CoordinatorEpoch(coord),
        marker: kind,
        timestamp: Some(T0),
    })
    .expect("marker")
}

pub fn commit(log: &Log, pid: i64, epoch: i16) -> AppendInfo {
    appended(marker(log, pid, epoch, 0, MarkerType::Commit))
}

pub fn abort(log: &Log, pid: i64, epoch: i16) -> AppendInfo {
    appended(marker(log, pid, epoch, 0, MarkerType::Abort))
}

/// Values visible from offset 0 with the isolation, as strings.
pub fn values(log: &Log, isolation: Isolation) -> Vec<String> {
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, isolation)
        .expect("read");
    recs.into_iter()
        .map(|r| String::from_utf8(r.value.unwrap_or_default()).expect("utf8"))
        .collect()
}

pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

pub fn off(o: i64) -> Offset {
    Offset(o)
}

impl Gate {
    /// A log at `t` whose files named by `gated` pass their operations through this gate.
    pub fn open(&self, t: &TestLog, gated: fn(&Path) -> bool) -> Log {
        t.open_with_fs(gated_fs(self, gated))
    }
}

/// Polls `cond` until it holds (20 s at most): for states the log exposes only as a figure.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + GATE_TIMEOUT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::yield_now();
    }
}

/// A store in a temporary directory with a manual clock and small internal topics (4
/// partitions each, so tests open quickly), reopened cleanly or after a crash on demand.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub config: eoslog::StoreConfig,
    pub fs: Arc<dyn FileSystem>,
    store: Option<eoslog::Store>,
}

impl TestStore {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Self::with_fs(pairs, Arc::new(StdFileSystem))
    }

    pub fn with_fs(pairs: &[(&str, &str)], fs: Arc<dyn FileSystem>) -> Self {
        let mut config = eoslog::StoreConfig::default();
        config
            .set("transaction.state.log.num.partitions", "4")
            .expect("config");
        config.set("offsets.topic.num.partitions", "4").expect("config");
        for (k, v) in pairs {
            config.set(k, v).expect("config");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(T0));
        let mut t = TestStore {
            dir,
            clock,
            config,
            fs,
            store: None,
        };
        t.open();
        t
    }

    /// Opens the store (again, after [`TestStore::close`]).
    pub fn open(&mut self) {
        let options = LogOptions {
            clock: self.clock.clone(),
            fs: self.fs.clone(),
        };
        self.store = Some(
            eoslog::Store::open_with(self.dir.path(), self.config.clone(), options).expect("open store"),
        );
    }

    pub fn s(&self) -> &eoslog::Store {
        self.store.as_ref().expect("open")
    }

    /// Closes cleanly and opens again.
    pub fn reopen(&mut self) {
        self.store.take().expect("open").close().expect("close");
        self.open();
    }

    /// A topic config's value and source as DescribeConfigs gives them.
    pub fn described(&self, topic: &str, key: &str) -> (String, eoslog::ConfigSource) {
        let e = self
            .s()
            .topic_configs(topic)
            .expect("configs")
            .into_iter()
            .find(|e| e.name == key)
            .unwrap_or_else(|| panic!("{key} described"));
        (e.value, e.source)
    }

    /// Closes the store (tests that open the directory themselves).
    pub fn close(&mut self) {
        self.store.take().expect("open").close().expect("close");
    }

    /// Drops the store without closing it (a process crash, as far as the files can tell)
    /// and opens it again.
    pub fn crash(&mut self) {
        drop(self.store.take());
        self.open();
    }

    /// The bytes of the `.log` files of the partitions whose directory names start with
    /// one of `prefixes`.
    pub fn log_bytes(&self, prefixes: &[&str]) -> u64 {
        let mut total = 0;
        for e in std::fs::read_dir(self.dir.path())
            .expect("dir")
            .filter_map(Result::ok)
        {
            let name = e.file_name().into_string().unwrap_or_default();
            if !prefixes.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            for f in std::fs::read_dir(e.path())
                .expect("partition")
                .filter_map(Result::ok)
            {
                if f.file_name().to_string_lossy().ends_with(".log") {
                    total += f.metadata().expect("meta").len();
                }
            }
        }
        total
    }

    pub fn txns(&self) -> eoslog::Transactions<'_> {
        self.s().transactions()
    }

    /// Produces a transactional batch of `values` for `(pid, epoch)` at `seq`.
    pub fn produce_txn(
        &self,
        id: &str,
        tp: &eoslog::TopicPartition,
        p: eoslog::ProducerIdAndEpoch,
        seq: i32,
        values: &[&str],
        tv: eoslog::TxnVersion,
    ) -> Result<AppendOutcome, eoslog::ProduceError> {
        let recs: Vec<NewRecord<'_>> = values
            .iter()
            .map(|v| NewRecord::value(T0, v.as_bytes()))
            .collect();
        let bytes = BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(seq))
            .build(&recs)
            .expect("batch");
        self.s().produce(
            &tp.topic,
            tp.partition,
            &bytes,
            &eoslog::ProduceContext {
                transactional_id: Some(id),
                tv,
                ..Default::default()
            },
        )
    }

    /// The values of a partition, read_committed or not.
    pub fn values(&self, tp: &eoslog::TopicPartition, isolation: Isolation) -> Vec<String> {
        values(
            &self.s().partition(&tp.topic, tp.partition).expect("partition"),
            isolation,
        )
    }
}

pub fn tp(topic: &str, partition: i32) -> eoslog::TopicPartition {
    eoslog::TopicPartition::new(topic, partition)
}

pub fn pe(pid: i64, epoch: i16) -> eoslog::ProducerIdAndEpoch {
    eoslog::ProducerIdAndEpoch::new(pid, epoch)
}

/// Makes writes and fsyncs fail, while switched on, for every file whose path contains
/// one of the patterns set.
#[derive(Debug, Default)]
pub struct FailSwitch {
    on: std::sync::atomic::AtomicBool,
    patterns: std::sync::Mutex<Vec<String>>,
}

impl FailSwitch {
    pub fn fail(&self, patterns: &[&str]) {
        *self.patterns.lock().expect("lock") = patterns.iter().map(|p| (*p).to_owned()).collect();
        self.on.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn heal(&self) {
        self.on.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    fn check(&self, path: &Path) -> io::Result<()> {
        if self.on.load(std::sync::atomic::Ordering::SeqCst) {
            let p = path.to_string_lossy();
            if self
                .patterns
                .lock()
                .expect("lock")
                .iter()
                .any(|x| p.contains(x.as_str()))
            {
                return Err(io::Error::other(format!("injected failure on {p}")));
            }
        }
        Ok(())
    }
}

/// A file system whose files fail as `switch` says.
pub fn switched_fs(switch: Arc<FailSwitch>) -> Arc<dyn FileSystem> {
    Arc::new(WrappedFs(
        move |path: &Path, inner: Arc<dyn StorageFile>| -> Arc<dyn StorageFile> {
            Arc::new(SwitchedFile {
                inner,
                switch: switch.clone(),
                path: path.to_path_buf(),
            })
        },
    ))
}

#[derive(Debug)]
struct SwitchedFile {
    inner: Arc<dyn StorageFile>,
    switch: Arc<FailSwitch>,
    path: PathBuf,
}

impl StorageFile for SwitchedFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.switch.check(&self.path)?;
        self.inner.write_all_at(buf, pos)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.switch.check(&self.path)?;
        self.inner.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.inner.as_file()
    }
}

/// A `__transaction_state` key, encoded by hand from Kafka's schema (version 0).
pub fn txn_key(id: &str) -> Vec<u8> {
    let mut k = vec![0, 0];
    k.extend_from_slice(&(id.len() as i16).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// A `__transaction_state` value of version 0, encoded by hand from Kafka's schema.
pub fn txn_value_v0(
    pid: i64,
    epoch: i16,
    timeout_ms: i32,
    state: i8,
    partitions: Option<&[(&str, &[i32])]>,
    last_update_ms: i64,
    start_ms: i64,
) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&pid.to_be_bytes());
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(&timeout_ms.to_be_bytes());
    v.push(state as u8);
    match partitions {
        None => v.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(topics) => {
            v.extend_from_slice(&(topics.len() as i32).to_be_bytes());
            for (topic, ps) in topics {
                v.extend_from_slice(&(topic.len() as i16).to_be_bytes());
                v.extend_from_slice(topic.as_bytes());
                v.extend_from_slice(&(ps.len() as i32).to_be_bytes());
                for p in *ps {
                    v.extend_from_slice(&p.to_be_bytes());
                }
            }
        }
    }
    v.extend_from_slice(&last_update_ms.to_be_bytes());
    v.extend_from_slice(&start_ms.to_be_bytes());
    v
}

/// Appends one keyed record (value or tombstone) as a coordinator would, in its own batch.
pub fn append_keyed(log: &Log, key: &[u8], value: Option<&[u8]>) {
    let bytes = BatchBuilder::new()
        .build(&[NewRecord {
            timestamp: T0,
            key: Some(key),
            value,
            headers: Vec::new(),
        }])
        .expect("batch");
    let out = log.append(&bytes, AppendOrigin::Coordinator).expect("append");
    assert!(matches!(out, AppendOutcome::Appended(_)), "{out:?}");
}

/// Copies the files of a partition directory (no subdirectories) into `to`.
/// Every offset below `end` is found by a one-record read (the offset index agrees with the
/// log).
pub fn assert_lookups(log: &Log, end: i64, case: &str) {
    for o in 0..end {
        let r = log
            .read(off(o), 1, eoslog::Isolation::ReadUncommitted)
            .expect("read");
        let bytes = r.slices[0].read().expect("bytes");
        let (b, _) = eoslog::RecordBatch::parse(&bytes).expect("batch");
        assert!(
            b.base_offset() <= o && o <= b.last_offset(),
            "{case}: lookup of {o}"
        );
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// A plain OffsetCommit of `group`'s offsets (`(topic, partition, offset)`); every
/// partition must be accepted.
pub fn commit_offsets(t: &TestStore, group: &str, generation: i32, member: &str, parts: &[(&str, i32, i64)]) {
    let answers = t.s().offsets().commit(&eoslog::OffsetCommit {
        group_id: group,
        generation_id: generation,
        member_id: member,
        group_instance_id: None,
        retention_ms: None,
        offsets: parts
            .iter()
            .map(|&(topic, p, o)| eoslog::PartitionOffset {
                partition: tp(topic, p),
                offset: o,
                leader_epoch: -1,
                metadata: None,
            })
            .collect(),
    });
    for a in answers {
        a.expect("committed");
    }
}

/// `group`'s committed offsets, by partition.
pub fn committed_offsets(t: &TestStore, group: &str) -> Vec<(eoslog::TopicPartition, i64)> {
    t.s()
        .offsets()
        .fetch(group, None, false)
        .expect("fetch")
        .into_iter()
        .filter_map(|(p, o)| o.expect("answer").map(|c| (p, c.offset)))
        .collect()
}

/// Opens a transaction of `transactional_id` (a new producer) holding one pending offset of
/// `group` (TV0); returns the producer.
pub fn open_txn_with_offset(
    t: &TestStore,
    transactional_id: &str,
    group: &str,
    partition: eoslog::TopicPartition,
    offset: i64,
) -> eoslog::ProducerIdAndEpoch {
    let p = t
        .txns()
        .init_producer_id(Some(transactional_id), 60_000, None)
        .expect("init");
    t.txns()
        .add_offsets(transactional_id, p, group, eoslog::TxnVersion::TV0)
        .expect("add offsets");
    let pending = txn_offset_commit(transactional_id, p, group, partition, offset);
    for a in t.s().offsets().txn_commit(&pending) {
        a.expect("pending");
    }
    p
}

/// A TxnOffsetCommit (TV0, generation -1, no member) of one offset of `group`.
pub fn txn_offset_commit<'a>(
    transactional_id: &'a str,
    producer: eoslog::ProducerIdAndEpoch,
    group: &'a str,
    partition: eoslog::TopicPartition,
    offset: i64,
) -> eoslog::TxnOffsetCommit<'a> {
    eoslog::TxnOffsetCommit {
        transactional_id,
        producer,
        tv: eoslog::TxnVersion::TV0,
        commit: eoslog::OffsetCommit {
            group_id: group,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            retention_ms: None,
            offsets: vec![eoslog::PartitionOffset {
                partition,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
        },
    }
}
