//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        Log::open_with(
            self.path(),
            self.config.clone(),
            LogOptions {
                fs: Arc::new(StdFileSystem),
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

/// The standard file system, with every opened file passed through `wrap` (which sees the
/// path): a test injects behaviour into some files and leaves the rest alone.
pub struct WrappedFs<F>(pub F);

impl<F> std::fmt::Debug for WrappedFs<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappedFs")
    }
}

impl<F> FileSystem for WrappedFs<F>
where
    F: Fn(&Path, Arc<dyn StorageFile>) -> Arc<dyn StorageFile> + Send + Sync,
{
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok((self.0)(path, StdFileSystem.open(path, create)?))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
}
