//! Invariant: any failed write, partial write, fsync, truncate, rename, mmap, create, delete or
//! directory sync surfaces as a typed storage error (KAFKA_STORAGE_ERROR), after which the log
//! refuses every write until reopened; reopening yields a consistent log that lost nothing that
//! was reported durable, shows no aborted data to read_committed and recognises retries of
//! acknowledged batches. This walks every I/O operation of a mixed workload (issues #2, #5).

mod common;
use common::*;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eoslog::{
    AppendError, AppendOptions, AppendOrigin, AppendOutcome, Durability, FileSystem, Isolation, Log,
    LogOptions, Offset, StdFileSystem, StorageError, StorageFile,
};

#[derive(Debug, Default)]
struct Faults {
    count: AtomicU64,
    fail_at: AtomicU64,
    fired: AtomicBool,
    ops: Mutex<Vec<&'static str>>,
}

impl Faults {
    fn hit(&self, op: &'static str) -> io::Result<()> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        self.ops.lock().expect("ops").push(op);
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.fired.store(true, Ordering::SeqCst);
            return Err(io::Error::other(format!("injected failure of {op}")));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultyFs(Arc<Faults>);
#[derive(Debug)]
struct FaultyFile(Arc<dyn StorageFile>, Arc<Faults>);

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if let Err(e) = self.1.hit("write") {
            // A torn write: half the bytes reach the file before the error.
            let _ = self.0.write_all_at(&buf[..buf.len() / 2], pos);
            return Err(e);
        }
        self.0.write_all_at(buf, pos)
    }
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.1.hit("preallocate")?;
        self.0.preallocate(offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.1.hit("set_len")?;
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.hit("fsync")?;
        self.0.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.0.as_file()
    }
    fn before_mmap(&self) -> io::Result<()> {
        self.1.hit("mmap")
    }
}

impl FileSystem for FaultyFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if create {
            self.0.hit("create")?;
        }
        Ok(Arc::new(FaultyFile(
            StdFileSystem.open(path, create)?,
            self.0.clone(),
        )))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.hit("remove")?;
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hit("rename")?;
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.hit("fsync dir")?;
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

/// What the workload saw acknowledged as durable: (producer, sequence) -> batch bytes.
#[derive(Default)]
struct Acked {
    /// Batches acknowledged after fsync, with their first offset.
    durable: Vec<(Vec<u8>, i64)>,
    /// The batches whose append or durability wait reported a failure, in append order
    /// (each may or may not have been written).
    in_flight: Vec<Vec<u8>>,
}

fn is_storage(e: &AppendError) -> bool {
    matches!(e, AppendError::Storage(_)) && e.kafka_error() == eoslog::KafkaError::KafkaStorageError
}

/// A mixed workload; stops at the first error and returns it.
fn workload(log: &Log, acked: &mut Acked) -> Result<(), String> {
    let sync = AppendOptions {
        durability: Some(Durability::SyncEachAppend),
        ..AppendOptions::new(AppendOrigin::Client)
    };
    let fail = |e: AppendError| {
        assert!(is_storage(&e), "not a storage error: {e:?}");
        format!("{e}")
    };
    for s in 0..6 {
        let b = idem(1, 0, 2 * s, 2);
        acked.in_flight = vec![b.clone()];
        match log.append_with(&b, &sync).map_err(fail)? {
            AppendOutcome::Appended(i) => {
                acked.in_flight.clear();
                acked.durable.push((b, i.first_offset.0));
            }
            other => panic!("{other:?}"),
        }
    }
    // Pipelined: three buffered appends in flight, acknowledged once one wait covers them.
    let buffered = AppendOptions {
        durability: Some(Durability::Buffered),
        ..AppendOptions::new(AppendOrigin::Client)
    };
    let mut pending = Vec::new();
    for s in 6..9 {
        let b = idem(1, 0, 2 * s, 2);
        acked.in_flight.push(b.clone());
        match log.append_with(&b, &buffered).map_err(fail)? {
            AppendOutcome::Appended(i) => pending.push((b, i)),
            other => panic!("{other:?}"),
        }
    }
    let end = pending
        .last()
        .map(|(_, i)| i.last_offset.next())
        .expect("pending");
    let durable = log.wait_durable(end).map_err(|e| fail(e.into()))?;
    assert!(durable >= end, "wait_durable returned {durable:?} below {end:?}");
    acked.in_flight.clear();
    acked
        .durable
        .extend(pending.into_iter().map(|(b, i)| (b, i.first_offset.0)));
    for round in 0..4 {
        let b = txn(2, 0, round * 2, 2);
        let _ = log.append_with(&b, &sync).map_err(fail)?;
        let kind = if round % 2 == 0 {
            eoslog::MarkerType::Abort
        } else {
            eoslog::MarkerType::Commit
        };
        let _ = marker(log, 2, 0, 0, kind).map_err(fail)?;
    }
    log.flush().map_err(|e| format!("{e}"))?;
    log.set_high_watermark(log.log_end_offset());
    log.apply_retention().map_err(|e| format!("{e}"))?;
    log.truncate_to(Offset(log.log_end_offset().0 - 1))
        .map_err(|e| format!("{e}"))?;
    log.delete_records_before(Offset(2)).map_err(|e| format!("{e}"))?;
    Ok(())
}

fn marker(
    log: &Log,
    pid: i64,
    epoch: i16,
    coord: i32,
    kind: eoslog::MarkerType,
) -> Result<AppendOutcome, AppendError> {
    log.write_marker(&eoslog::TxnMarker {
        producer_id: eoslog::ProducerId(pid),
        producer_epoch: eoslog::ProducerEpoch(epoch),
        coordinator_epoch: eoslog::CoordinatorEpoch(coord),
        marker: kind,
        timestamp: Some(T0),
    })
}

fn run(t: &TestLog, faults: &Arc<Faults>, acked: &mut Acked) -> (Option<Log>, Result<(), String>) {
    let opts = LogOptions {
        fs: Arc::new(FaultyFs(faults.clone())),
        clock: Arc::new(t.clock.clone()),
    };
    let log = match Log::open_with(t.path(), t.config.clone(), opts) {
        Ok(l) => l,
        Err(e) => return (None, Err(format!("open: {e}"))),
    };
    let r = workload(&log, acked);
    (Some(log), r)
}

#[test]
fn every_io_failure_poisons_and_recovers() {
    every_io_failure("60000");
}

#[test]
fn every_io_failure_poisons_and_recovers_with_deleted_segments_unlinked_at_once() {
    every_io_failure("0");
}

/// With `file.delete.delay.ms` = `delay`: retention's and truncation's segments set aside as
/// `.deleted` (Kafka's default) or unlinked at once (0).
fn every_io_failure(delay: &str) {
    let cfg = config(&[
        ("segment.bytes", "600"),
        ("retention.bytes", "700"),
        ("eoslog.snapshot.interval.bytes", "500"),
        ("file.delete.delay.ms", delay),
    ]);
    // Count the operations of a clean run.
    let total = {
        let t = TestLog::with_config(cfg.clone());
        let faults = Arc::new(Faults {
            fail_at: AtomicU64::new(u64::MAX),
            ..Faults::default()
        });
        let (log, r) = run(&t, &faults, &mut Acked::default());
        r.expect("clean run");
        let n = faults.count.load(Ordering::SeqCst);
        drop(log);
        n
    };
    assert!(total > 50, "the workload performs {total} I/O operations");
    let mut kinds = std::collections::BTreeSet::new();
    for k in 0..total {
        let t = TestLog::with_config(cfg.clone());
        let faults = Arc::new(Faults {
            fail_at: AtomicU64::new(k),
            ..Faults::default()
        });
        let mut acked = Acked::default();
        let (log, r) = run(&t, &faults, &mut acked);
        assert!(faults.fired.load(Ordering::SeqCst), "failpoint {k} not reached");
        let op = faults.ops.lock().expect("ops")[k as usize];
        kinds.insert(op);
        if op == "preallocate" {
            // Preallocation is advisory: a failure only means appends allocate as they go.
            r.unwrap_or_else(|e| panic!("op {k}: a failed preallocation failed the workload: {e}"));
            let log = log.expect("open");
            appended(client(&log, &plain(&["after"])));
            drop(log);
            let log = t.open();
            log.verify(|_, _| {})
                .unwrap_or_else(|e| panic!("op {k} ({op}): {e}"));
            continue;
        }
        assert!(r.is_err(), "failure of op {k} ({op}) was swallowed");
        if let Some(log) = log {
            // Fail-stop: every further write is refused.
            let e = log
                .append(&plain(&["after"]), AppendOrigin::Client)
                .expect_err("poisoned");
            assert!(
                matches!(e, AppendError::Storage(StorageError::Poisoned)),
                "op {k} ({op}): {e:?}"
            );
            assert!(matches!(log.flush(), Err(StorageError::Poisoned)));
            drop(log);
        }
        // Reopen without faults: consistent, nothing durable lost.
        let log = t.open();
        // A retry of the last acknowledged batch is a duplicate; a retry of the batch whose
        // append failed is either a duplicate (it reached the log) or appended now, never
        // out of order.
        if let Some((b, _)) = acked.durable.last() {
            assert!(
                matches!(client(&log, b), AppendOutcome::Duplicate(_)),
                "op {k} ({op}): last acknowledged batch not recognised"
            );
        }
        for b in &acked.in_flight {
            let o = client(&log, b);
            assert!(
                matches!(o, AppendOutcome::Duplicate(_) | AppendOutcome::Appended(_)),
                "op {k} ({op}): retry of the failed append: {o:?}"
            );
        }
        // Every acknowledged batch not removed by retention is still readable.
        for (b, first) in &acked.durable {
            if *first < log.log_start_offset().0 {
                continue;
            }
            let (recs, _) = log
                .read_records(Offset(*first), 1, Isolation::ReadUncommitted)
                .expect("read");
            let batch = eoslog::RecordBatch::parse_exact(b).expect("batch");
            let sent: Vec<Vec<u8>> = batch
                .records()
                .expect("r")
                .iter()
                .map(|r| r.expect("r").value.expect("v").to_vec())
                .collect();
            let got: Vec<Vec<u8>> = recs
                .iter()
                .take(sent.len())
                .map(|r| r.value.clone().expect("v"))
                .collect();
            assert_eq!(got, sent, "op {k} ({op}): durable batch at {first} lost");
        }
        let committed = values(&log, Isolation::ReadCommitted);
        assert!(
            committed
                .iter()
                .all(|v| !v.starts_with("t2-s0") && !v.starts_with("t2-s4")),
            "op {k} ({op}): aborted data visible: {committed:?}"
        );
        log.verify(|_, _| {})
            .unwrap_or_else(|e| panic!("op {k} ({op}): {e}"));
        drop(log);
    }
    for expected in [
        "write",
        "fsync",
        "set_len",
        "mmap",
        "create",
        "remove",
        "rename",
        "fsync dir",
        "preallocate",
    ] {
        assert!(
            kinds.contains(expected),
            "operation kind {expected} never failed: {kinds:?}"
        );
    }
    eprintln!("failpoints walked: {total} ({kinds:?})");
}

/// Fails every write (used for `.txnindex` files).
#[derive(Debug)]
struct FailingWrites(Arc<dyn StorageFile>);

impl StorageFile for FailingWrites {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(io::Error::other("injected txn index write failure"))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.0.as_file()
    }
}

#[test]
fn failed_txn_index_append_keeps_lso_pinned() {
    // ULT.testAppendToTransactionIndexFailure (KAFKA-7866): the ABORT marker reaches the log but
    // its .txnindex entry does not; the LSO must not pass the aborted data until recovery has
    // rewritten the entry.
    let t = TestLog::with_config(config(&[("eoslog.high.watermark", "manual")]));
    let opts = LogOptions {
        fs: Arc::new(WrappedFs(
            |path: &Path, f: Arc<dyn StorageFile>| -> Arc<dyn StorageFile> {
                if path.extension().is_some_and(|e| e == "txnindex") {
                    Arc::new(FailingWrites(f))
                } else {
                    f
                }
            },
        )),
        clock: Arc::new(t.clock.clone()),
    };
    let log = Log::open_with(t.path(), t.config.clone(), opts).expect("open");
    for i in 0..10 {
        appended(client(&log, &txn(1, 0, i, 1)));
    }
    let e = log
        .write_marker(&eoslog::TxnMarker {
            producer_id: eoslog::ProducerId(1),
            producer_epoch: eoslog::ProducerEpoch(0),
            coordinator_epoch: eoslog::CoordinatorEpoch(0),
            marker: eoslog::MarkerType::Abort,
            timestamp: Some(T0),
        })
        .expect_err("txn index write fails");
    assert_eq!(e.kafka_error(), eoslog::KafkaError::KafkaStorageError);
    assert_eq!(log.log_end_offset(), Offset(11), "the marker itself was written");
    log.set_high_watermark(Offset(11));
    assert_eq!(log.last_stable_offset(), Offset(0), "LSO stays pinned");
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert!(f.slices.is_empty());
    assert!(matches!(
        log.append(&plain(&["x"]), AppendOrigin::Client),
        Err(AppendError::Storage(StorageError::Poisoned))
    ));
    drop(log);
    // Unclean reopen: recovery writes the index entry.
    let log = t.open();
    assert_eq!(log.aborted_transactions().len(), 1);
    log.set_high_watermark(Offset(11));
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), Offset(11));
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
}
