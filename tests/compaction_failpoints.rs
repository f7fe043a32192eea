//! Invariant: a clean interrupted at any I/O operation — the disk fails there and nothing
//! after it reaches the disk, as in a crash — leaves a log that opens to the old segments or
//! the new ones, never a mix: every key reads its latest committed value, no aborted record
//! is visible to read_committed, a retry of each producer's last batch is still a duplicate
//! (with producer state rebuilt from the log alone), no `.cleaned`, `.swap` or `.deleted`
//! file is left, and the next clean succeeds. Walks every operation of a clean of a mixed
//! log, with the replaced segments set aside (`file.delete.delay.ms`) and unlinked.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use eoslog::{
    AppendOutcome, BatchBuilder, CleanerOptions, FileSystem, Isolation, Log, LogOptions, NewRecord,
    ProducerEpoch, ProducerId, Sequence, StdFileSystem, StorageFile,
};

/// Fails the `fail_at`-th mutating operation and every one after it.
#[derive(Debug, Default)]
struct Disk {
    count: AtomicU64,
    fail_at: AtomicU64,
    dead: AtomicBool,
}

impl Disk {
    fn hit(&self) -> io::Result<()> {
        if self.dead.load(Ordering::SeqCst)
            || self.count.fetch_add(1, Ordering::SeqCst) == self.fail_at.load(Ordering::SeqCst)
        {
            self.dead.store(true, Ordering::SeqCst);
            return Err(io::Error::other("injected: the disk is gone"));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct DyingFs(Arc<Disk>);
#[derive(Debug)]
struct DyingFile(Arc<dyn StorageFile>, Arc<Disk>);

impl StorageFile for DyingFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.1.hit()?;
        self.0.write_all_at(buf, pos)
    }
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.1.hit()?;
        self.0.preallocate(offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.1.hit()?;
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.hit()?;
        self.0.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.0.as_file()
    }
    fn before_mmap(&self) -> io::Result<()> {
        self.1.hit()
    }
}

impl FileSystem for DyingFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if create {
            self.0.hit()?;
        }
        Ok(Arc::new(DyingFile(
            StdFileSystem.open(path, create)?,
            self.0.clone(),
        )))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.hit()?;
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hit()?;
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.hit()?;
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

fn batch(builder: BatchBuilder, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .map(|(k, v)| NewRecord {
            timestamp: T0,
            key: Some(k.as_bytes()),
            value: v.map(str::as_bytes),
            headers: Vec::new(),
        })
        .collect();
    builder.build(&recs).expect("build")
}

/// What the log must still show after any interrupted clean.
struct Expected {
    latest: BTreeMap<String, String>,
    /// Each producer's last batch and its first offset.
    last_batches: Vec<(Vec<u8>, i64)>,
}

/// A compacted log with superseded keys, committed and aborted transactions, tombstones and
/// three producers, over many small segments.
fn build(t: &TestLog) -> Expected {
    let log = t.open();
    let mut last_batches = Vec::new();
    for round in 0..6i32 {
        let idem = batch(
            BatchBuilder::idempotent(ProducerId(1), ProducerEpoch(0), Sequence(2 * round)),
            &[("a", Some(&format!("idem{round}"))), ("b", Some("x"))],
        );
        let at = appended(client(&log, &idem)).first_offset.0;
        if round == 5 {
            last_batches.push((idem, at));
        }
        let txn = batch(
            BatchBuilder::transactional(ProducerId(2), ProducerEpoch(0), Sequence(round)),
            &[("c", Some(&format!("txn{round}")))],
        );
        appended(client(&log, &txn));
        if round % 2 == 0 {
            commit(&log, 2, 0);
        } else {
            abort(&log, 2, 0);
        }
        appended(client(
            &log,
            &batch(
                BatchBuilder::new(),
                &[("d", if round == 5 { None } else { Some("plain") })],
            ),
        ));
        log.roll_segment().expect("roll");
    }
    let expected = latest(&log);
    assert_eq!(expected["c"], "txn4");
    assert!(!expected.contains_key("d"));
    log.close().expect("close");
    Expected {
        latest: expected,
        last_batches,
    }
}

fn latest(log: &Log) -> BTreeMap<String, String> {
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, Isolation::ReadCommitted)
        .expect("read");
    let mut m = BTreeMap::new();
    for r in recs {
        let s = |b: Vec<u8>| String::from_utf8(b).expect("utf8");
        let v = r.value.map(s);
        assert!(
            !v.as_deref()
                .is_some_and(|v| v == "txn1" || v == "txn3" || v == "txn5"),
            "aborted data visible"
        );
        match v {
            Some(v) => m.insert(s(r.key.expect("key")), v),
            None => m.remove(&s(r.key.expect("key"))),
        };
    }
    m
}

fn options(t: &TestLog, fs: Arc<dyn FileSystem>) -> LogOptions {
    LogOptions {
        fs,
        clock: Arc::new(t.clock.clone()),
    }
}

/// The log in `dir` on a disk that works until told to fail.
fn open_dying(t: &TestLog, dir: &Path) -> (Log, Arc<Disk>) {
    let disk = Arc::new(Disk {
        fail_at: AtomicU64::new(u64::MAX),
        ..Disk::default()
    });
    let log =
        Log::open_with(dir, t.config.clone(), options(t, Arc::new(DyingFs(disk.clone())))).expect("open");
    (log, disk)
}

/// A forced clean whose `n`-th I/O operation fails (and every one after it): its result,
/// and whether the failure fired.
fn clean_failing_at(
    log: &Log,
    disk: &Disk,
    n: u64,
) -> (Result<Option<eoslog::CleanReport>, eoslog::StorageError>, bool) {
    disk.count.store(0, Ordering::SeqCst);
    disk.fail_at.store(n, Ordering::SeqCst);
    let result = log.clean(&CleanerOptions::default(), true);
    (result, disk.dead.load(Ordering::SeqCst))
}

fn check(t: &TestLog, dir: &Path, expected: &Expected, what: &str) {
    // Producer state from the log alone: no snapshot, no checkpoint.
    for name in std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
    {
        if name.ends_with(".snapshot")
            || name == eoslog::CHECKPOINT_FILE
            || name == eoslog::CLEAN_SHUTDOWN_FILE
        {
            std::fs::remove_file(dir.join(name)).expect("remove");
        }
    }
    let log = Log::open_with(dir, t.config.clone(), options(t, Arc::new(StdFileSystem))).expect("reopen");
    let leftovers = files_with_suffix(dir, ".cleaned").len()
        + files_with_suffix(dir, ".swap").len()
        + files_with_suffix(dir, ".deleted").len();
    assert_eq!(leftovers, 0, "{what}: cleaner files left");
    assert_eq!(latest(&log), expected.latest, "{what}");
    for (bytes, at) in &expected.last_batches {
        match client(&log, bytes) {
            AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset.0, *at, "{what}"),
            other => panic!("{what}: a retry of a producer's last batch gave {other:?}"),
        }
    }
    log.clean(&CleanerOptions::default(), true)
        .expect("a clean after reopen");
    assert_eq!(latest(&log), expected.latest, "{what}: after the next clean");
}

#[test]
fn a_clean_interrupted_at_any_io_operation_leaves_old_or_new_segments() {
    interrupted_at_any_io_operation("60000");
}

#[test]
fn a_clean_that_unlinks_its_originals_interrupted_at_any_io_operation_leaves_old_or_new_segments() {
    interrupted_at_any_io_operation("0");
}

/// With `file.delete.delay.ms` = `delay`: the replaced segments set aside as `.deleted`
/// (Kafka's default) or unlinked at once (0).
fn interrupted_at_any_io_operation(delay: &str) {
    let t = TestLog::with_config(config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1500"),
        ("delete.retention.ms", "0"),
        ("producer.id.expiration.ms", "86400000"),
        ("file.delete.delay.ms", delay),
    ]));
    let expected = build(&t);
    let mut fired_any = false;
    let mut crashed_mid_swap = 0;
    for n in 0.. {
        let scratch = tempfile::tempdir().expect("dir");
        let dir = scratch.path().join("topic-0");
        copy_dir(&t.path(), &dir);
        let (log, disk) = open_dying(&t, &dir);
        let (result, fired) = clean_failing_at(&log, &disk, n);
        drop(log);
        if !fired {
            result.expect("an undisturbed clean").expect("something cleaned");
            assert!(fired_any && n > 20, "the clean did only {n} operations");
            assert!(crashed_mid_swap > 0, "no failure fell between commit and swap");
            check(&t, &dir, &expected, "after a whole clean");
            return;
        }
        assert!(result.is_err(), "operation {n}: a failure must surface");
        fired_any = true;
        if !files_with_suffix(&dir, ".log.swap").is_empty() {
            crashed_mid_swap += 1;
        }
        check(&t, &dir, &expected, &format!("failure at operation {n}"));
    }
}

/// Builds the recovery-position scenario on a log with deferred roll fsyncs: a flush leaves
/// the recovery position after one large batch that a clean removes (so in the copy it falls
/// inside a batch), then the segment is rolled without moving it. Returns the log end and
/// every key's latest value.
fn positioned_in_rolled_segment(log: &Log) -> (i64, BTreeMap<String, String>) {
    let big = "x".repeat(300);
    appended(client(log, &batch(BatchBuilder::new(), &[("a", Some(&big))])));
    log.flush().expect("flush");
    for i in 0..30 {
        appended(client(
            log,
            &batch(BatchBuilder::new(), &[(&format!("u{i}"), Some("v"))]),
        ));
    }
    appended(client(log, &batch(BatchBuilder::new(), &[("a", Some("v2"))])));
    log.roll_segment()
        .expect("roll: nothing fsynced, the position stays");
    appended(client(log, &batch(BatchBuilder::new(), &[("z", Some("v"))])));
    let expected = keyed_state(log);
    assert_eq!(expected.0, 33);
    expected
}

/// The log end and every key's latest value of the recovery-position scenario.
fn keyed_state(log: &Log) -> (i64, BTreeMap<String, String>) {
    (log.log_end_offset().0, latest(log))
}

/// With deferred rolls (`eoslog.roll.fsync=maintenance`) the checkpoint's recovery position
/// stays a byte position inside the rolled segment until maintenance. A clean that replaces
/// that segment and is interrupted after its commit must not leave that position durable:
/// recovery would resume inside the copy, whose batches lie elsewhere, and cut the log there.
/// Each run builds the state in the process that crashes (an open would move the position),
/// fails the clean at operation `n`, and reopens with the checkpoint the crash left.
#[test]
fn a_clean_interrupted_after_its_commit_never_resumes_recovery_inside_the_copy() {
    // Appends fsynced as they land (so the rolled segment is durable and cleanable) move the
    // durable offset but not the recovery position, which only a flush or maintenance moves.
    let t = TestLog::with_config(config(&[
        ("cleanup.policy", "compact"),
        ("eoslog.roll.fsync", "maintenance"),
        ("eoslog.durability", "sync"),
        ("delete.retention.ms", "0"),
    ]));
    let mut after_commit = 0;
    for n in 0.. {
        let scratch = tempfile::tempdir().expect("dir");
        let dir = scratch.path().join("topic-0");
        let (log, disk) = open_dying(&t, &dir);
        let expected = positioned_in_rolled_segment(&log);

        let (result, fired) = clean_failing_at(&log, &disk, n);
        drop(log); // a crash: no close, the checkpoint on disk is whatever the clean left
        if fired {
            assert!(result.is_err(), "operation {n}: a failure must surface");
            if !files_with_suffix(&dir, ".log.swap").is_empty() {
                after_commit += 1;
            }
        } else {
            result.expect("an undisturbed clean").expect("something cleaned");
            assert!(after_commit > 0, "no failure fell after the commit");
        }
        let log =
            Log::open_with(&dir, t.config.clone(), options(&t, Arc::new(StdFileSystem))).expect("reopen");
        assert_eq!(
            keyed_state(&log),
            expected,
            "failure at operation {n} (fired: {fired})"
        );
        if !fired {
            return;
        }
    }
}

/// The checkpoint a crash may leave can be older than the log's state in memory: maintenance
/// moves the recovery position out of the rolled segment under the writer lock and stores
/// the checkpoint after releasing it. A clean that runs in between must still see that the
/// checkpoint on disk names a position inside the segment it replaces, and make one without
/// it durable before its commit (while its copy is still `.cleaned`).
#[test]
fn a_clean_beside_a_checkpoint_not_yet_stored_drops_the_position_before_its_commit() {
    let t = TestLog::with_config(config(&[
        ("cleanup.policy", "compact"),
        ("eoslog.roll.fsync", "maintenance"),
        ("eoslog.durability", "sync"),
        ("delete.retention.ms", "0"),
    ]));
    let gate = Gate::new(GateOn::Write);
    let log = gate.open(&t, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("eoslog.checkpoint.") && n.ends_with(".tmp"))
    });
    let expected = positioned_in_rolled_segment(&log);
    std::thread::scope(|s| {
        // Maintenance moves the position to the new segment and blocks writing the
        // checkpoint that says so.
        gate.arm();
        let maintenance = s.spawn(|| log.run_maintenance());
        gate.wait_entered();
        // The clean's first checkpoint write must come before its commit.
        gate.arm();
        let clean = s.spawn(|| log.clean(&CleanerOptions::default(), true));
        gate.wait_entered();
        let dir = t.path();
        assert!(
            !files_with_suffix(&dir, ".log.cleaned").is_empty()
                && files_with_suffix(&dir, ".log.swap").is_empty(),
            "the clean's first checkpoint came after its commit: {:?}",
            files_with_suffix(&dir, "")
        );
        gate.release();
        maintenance.join().expect("maintenance").expect("maintenance ran");
        clean.join().expect("clean").expect("clean ran").expect("cleaned");
    });
    drop(log);
    let log = t.open();
    assert_eq!(keyed_state(&log), expected);
}
