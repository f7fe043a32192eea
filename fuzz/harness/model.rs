//! Harness of the `log_model` fuzz target, shared with `tests/fuzz_regressions.rs`.
//!
//! Invariant: the engine agrees with a small in-memory model of one partition (the model of
//! `tests/model_based.rs`, adapted) under any operation sequence: idempotent and transactional
//! appends with retries and stale epochs, COMMIT/ABORT markers with epoch and coordinator
//! deltas, rolls, clean reopen, a crash that tears the tail, `truncate_to` and
//! `truncate_fully_and_start_at`. Compared after every step: each append's outcome and offsets,
//! the log end offset, the last stable offset, the aborted-transaction index, and the
//! read_committed and read_uncommitted values. The high watermark follows the log end (the
//! default mode).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig, LogOptions,
    ManualClock, MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, Rejection, Sequence,
    StdFileSystem, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const WINDOW: usize = 5;

/// One step, with every field already in its bounded range (see [`Op::normalized`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// pid 0..3; n 1..=3; seq_choice: 0 = next, 1..=6 = retry the k-th most recent batch sent
    /// by the producer, 7 = a wrong sequence; epoch_delta -1..=1 from the producer's epoch.
    Append {
        pid: i64,
        txn: bool,
        n: usize,
        seq_choice: u8,
        epoch_delta: i8,
    },
    /// pid 0..3; epoch and coordinator deltas -1..=1.
    Marker {
        pid: i64,
        commit: bool,
        epoch_delta: i8,
        coord_delta: i8,
    },
    Roll,
    Reopen,
    /// Drop the log without closing it and cut 1..=cut bytes (modulo its size) of the last
    /// batch.
    Crash {
        cut: u16,
    },
    /// truncate_to(log end - back), back 1..=5.
    Truncate {
        back: u8,
    },
    TruncateFully,
}

impl Op {
    /// The same operation with every field brought into its range; the identity on an
    /// operation already in range.
    #[must_use]
    pub fn normalized(self) -> Op {
        let delta = |d: i8| (i16::from(d) + 1).rem_euclid(3) as i8 - 1;
        match self {
            Op::Append {
                pid,
                txn,
                n,
                seq_choice,
                epoch_delta,
            } => Op::Append {
                pid: pid.rem_euclid(3),
                txn,
                n: n.wrapping_sub(1) % 3 + 1,
                seq_choice: seq_choice % 8,
                epoch_delta: delta(epoch_delta),
            },
            Op::Marker {
                pid,
                commit,
                epoch_delta,
                coord_delta,
            } => Op::Marker {
                pid: pid.rem_euclid(3),
                commit,
                epoch_delta: delta(epoch_delta),
                coord_delta: delta(coord_delta),
            },
            Op::Crash { cut } => Op::Crash {
                cut: cut.wrapping_sub(1) % 399 + 1,
            },
            Op::Truncate { back } => Op::Truncate {
                back: back.wrapping_sub(1) % 5 + 1,
            },
            other => other,
        }
    }
}

#[derive(Debug, Clone)]
struct MBatch {
    pid: i64,
    epoch: i16,
    first_seq: i32,
    first: i64,
    last: i64,
    txn: bool,
    /// Some((true, coord)) = COMMIT marker, Some((false, coord)) = ABORT marker.
    marker: Option<(bool, i32)>,
    values: Vec<String>,
    bytes: Vec<u8>,
}

/// A batch as sent: (bytes, epoch, first sequence, record count, transactional).
type Sent = (Vec<u8>, i16, i32, usize, bool);

#[derive(Debug, Clone, Default)]
struct MProducer {
    epoch: i16,
    coord: i32,
    txn_first: Option<i64>,
    /// (first_seq, last_seq, first_offset, last_offset), oldest first.
    window: VecDeque<(i32, i32, i64, i64)>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<MBatch>,
    leo: i64,
    start: i64,
    producers: HashMap<i64, MProducer>,
    /// (pid, first, last, lso)
    aborted: Vec<(i64, i64, i64, i64)>,
    /// Every batch ever sent per producer (for retries).
    sent: HashMap<i64, Vec<Sent>>,
}

#[derive(Debug, PartialEq)]
enum Out {
    Appended(i64, i64),
    Duplicate(i64, i64),
    Rejected(&'static str),
}

impl Model {
    /// Applies a batch that the rules accepted (also used to rebuild by replay).
    fn apply(&mut self, b: &MBatch) {
        let p = self.producers.entry(b.pid).or_insert(MProducer {
            epoch: -1,
            coord: -1,
            ..MProducer::default()
        });
        if b.epoch != p.epoch {
            p.window.clear();
            p.epoch = b.epoch;
        }
        match b.marker {
            None => {
                let last_seq = b.first_seq + (b.last - b.first) as i32;
                if p.window.len() == WINDOW {
                    p.window.pop_front();
                }
                p.window.push_back((b.first_seq, last_seq, b.first, b.last));
                if b.txn && p.txn_first.is_none() {
                    p.txn_first = Some(b.first);
                }
            }
            Some((commit, coord)) => {
                if let Some(first) = p.txn_first.take() {
                    if !commit {
                        let lso = self
                            .producers
                            .iter()
                            .filter(|(pid, _)| **pid != b.pid)
                            .filter_map(|(_, q)| q.txn_first)
                            .min()
                            .unwrap_or(b.first + 1);
                        self.aborted.push((b.pid, first, b.first, lso));
                    }
                }
                let p = self.producers.get_mut(&b.pid).expect("exists");
                p.coord = coord;
            }
        }
        self.leo = b.last + 1;
    }

    fn check_append(
        &self,
        pid: i64,
        epoch: i16,
        seq: i32,
        n: usize,
        txn: bool,
    ) -> Result<Option<(i64, i64)>, &'static str> {
        let Some(p) = self.producers.get(&pid) else {
            return Ok(None);
        };
        let last_seq = seq + n as i32 - 1;
        if p.epoch == epoch {
            if let Some(w) = p.window.iter().find(|w| w.0 == seq && w.1 == last_seq) {
                return Ok(Some((w.2, w.3)));
            }
        }
        if epoch < p.epoch {
            return Err("INVALID_PRODUCER_EPOCH");
        }
        if epoch != p.epoch {
            if seq != 0 && p.epoch != -1 {
                return Err("OUT_OF_ORDER_SEQUENCE_NUMBER");
            }
        } else {
            let last = p.window.back().map_or(-1, |w| w.1);
            if seq != last + 1 {
                return Err("OUT_OF_ORDER_SEQUENCE_NUMBER");
            }
        }
        if p.txn_first.is_some() && !txn {
            return Err("INVALID_TXN_STATE");
        }
        Ok(None)
    }

    fn check_marker(&self, pid: i64, epoch: i16, coord: i32) -> Result<(), &'static str> {
        if let Some(p) = self.producers.get(&pid) {
            if epoch < p.epoch {
                return Err("INVALID_PRODUCER_EPOCH");
            }
            if p.coord > coord {
                return Err("TRANSACTION_COORDINATOR_FENCED");
            }
        }
        Ok(())
    }

    fn rebuild(&mut self) {
        let batches = std::mem::take(&mut self.batches);
        let leo = self.leo;
        self.producers.clear();
        self.aborted.clear();
        for b in &batches {
            self.apply(b);
        }
        self.batches = batches;
        self.leo = leo;
    }

    fn lso(&self) -> i64 {
        self.producers
            .values()
            .filter_map(|p| p.txn_first)
            .min()
            .map_or(self.leo, |f| f.max(self.start).min(self.leo))
    }

    fn view(&self, committed: bool) -> Vec<String> {
        let lso = self.lso();
        let aborted: Vec<(i64, i64, i64)> = self.aborted.iter().map(|a| (a.0, a.1, a.2)).collect();
        self.batches
            .iter()
            .filter(|b| b.marker.is_none() && b.first >= self.start)
            .filter(|b| !committed || b.last < lso)
            .filter(|b| {
                !committed
                    || !b.txn
                    || !aborted
                        .iter()
                        .any(|(pid, f, l)| *pid == b.pid && b.first >= *f && b.last < *l)
            })
            .flat_map(|b| b.values.clone())
            .collect()
    }
}

fn outcome(o: AppendOutcome) -> Out {
    match o {
        AppendOutcome::Appended(i) => Out::Appended(i.first_offset.0, i.last_offset.0),
        AppendOutcome::Duplicate(i) => Out::Duplicate(i.first_offset.0, i.last_offset.0),
        AppendOutcome::Rejected(r) => Out::Rejected(match r {
            Rejection::InvalidProducerEpoch { .. } => "INVALID_PRODUCER_EPOCH",
            Rejection::OutOfOrderSequence { .. } => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            Rejection::InvalidTxnState { .. } => "INVALID_TXN_STATE",
            Rejection::CoordinatorFenced { .. } => "TRANSACTION_COORDINATOR_FENCED",
            _ => "OTHER",
        }),
    }
}

/// A fresh temporary directory, on tmpfs (`/dev/shm`) when there is one: runs do many small
/// writes and fsyncs, several times faster there than on disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("eoslog-fuzz").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in [
        ("segment.bytes", "700"),
        ("segment.index.bytes", "4096"),
        ("eoslog.snapshot.interval.bytes", "900"),
    ] {
        c.set(k, v).expect("valid config");
    }
    c
}

fn open(path: &Path, clock: &ManualClock) -> Log {
    Log::open_with(
        path,
        config(),
        LogOptions {
            fs: Arc::new(StdFileSystem),
            clock: Arc::new(clock.clone()),
        },
    )
    .expect("open log")
}

fn values(log: &Log, isolation: Isolation) -> Vec<String> {
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, isolation)
        .expect("read");
    recs.into_iter()
        .map(|r| String::from_utf8(r.value.unwrap_or_default()).expect("utf8"))
        .collect()
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

fn build(pid: i64, epoch: i16, seq: i32, txn: bool, values: &[String]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(T0, v.as_bytes()))
        .collect();
    let b = if txn {
        BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
    } else {
        BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
    };
    b.build(&recs).expect("build")
}

/// Drives the engine and the model side by side over `ops` (normalised first), asserting
/// identical answers after every step.
pub fn run(ops: &[Op]) {
    let tmp = scratch_dir();
    let path: PathBuf = tmp.path().join("topic-0");
    let clock = ManualClock::new(T0);
    let mut log = Some(open(&path, &clock));
    let mut m = Model::default();
    let mut counter = 0u64;
    for (step, op) in ops.iter().cloned().map(Op::normalized).enumerate() {
        let l = log.as_ref().expect("open");
        match op.clone() {
            Op::Append {
                pid,
                txn,
                n,
                seq_choice,
                epoch_delta,
            } => {
                let p = m.producers.get(&pid).cloned().unwrap_or(MProducer {
                    epoch: -1,
                    ..MProducer::default()
                });
                let sent = m.sent.entry(pid).or_default();
                let (bytes, epoch, seq, n, txn) =
                    if (1..=6).contains(&seq_choice) && sent.len() >= usize::from(seq_choice) {
                        sent[sent.len() - usize::from(seq_choice)].clone()
                    } else {
                        let epoch = (p.epoch.max(0) + i16::from(epoch_delta)).max(0);
                        let next = if epoch == p.epoch {
                            p.window.back().map_or(0, |w| w.1 + 1)
                        } else {
                            0
                        };
                        let seq = if seq_choice == 7 { (next + 3) % 11 } else { next };
                        counter += 1;
                        let values: Vec<String> = (0..n).map(|i| format!("v{counter}-{i}")).collect();
                        let b = build(pid, epoch, seq, txn, &values);
                        sent.push((b.clone(), epoch, seq, n, txn));
                        (b, epoch, seq, n, txn)
                    };
                let got = outcome(l.append(&bytes, AppendOrigin::Client).expect("append"));
                let expected = match m.check_append(pid, epoch, seq, n, txn) {
                    Ok(Some((f, last))) => Out::Duplicate(f, last),
                    Err(e) => Out::Rejected(e),
                    Ok(None) => {
                        let first = m.leo;
                        let batch = eoslog::RecordBatch::parse_exact(&bytes).expect("batch");
                        let values = batch
                            .records()
                            .expect("records")
                            .iter()
                            .map(|r| {
                                let value = r.expect("record").value.expect("value").to_vec();
                                String::from_utf8(value).expect("utf8")
                            })
                            .collect();
                        let b = MBatch {
                            pid,
                            epoch,
                            first_seq: seq,
                            first,
                            last: first + n as i64 - 1,
                            txn,
                            marker: None,
                            values,
                            bytes: bytes.clone(),
                        };
                        m.apply(&b);
                        m.batches.push(b);
                        Out::Appended(first, first + n as i64 - 1)
                    }
                };
                assert_eq!(
                    got, expected,
                    "step {step}: append pid {pid} epoch {epoch} seq {seq} n {n} txn {txn}"
                );
            }
            Op::Marker {
                pid,
                commit,
                epoch_delta,
                coord_delta,
            } => {
                let p = m.producers.get(&pid).cloned().unwrap_or(MProducer {
                    epoch: 0,
                    coord: 0,
                    ..MProducer::default()
                });
                let epoch = (p.epoch.max(0) + i16::from(epoch_delta)).max(0);
                let coord = (p.coord.max(0) + i32::from(coord_delta)).max(0);
                let marker = TxnMarker {
                    producer_id: ProducerId(pid),
                    producer_epoch: ProducerEpoch(epoch),
                    coordinator_epoch: CoordinatorEpoch(coord),
                    marker: if commit {
                        MarkerType::Commit
                    } else {
                        MarkerType::Abort
                    },
                    timestamp: Some(T0),
                };
                let got = outcome(l.write_marker(&marker).expect("marker"));
                let expected = match m.check_marker(pid, epoch, coord) {
                    Err(e) => Out::Rejected(e),
                    Ok(()) => {
                        let first = m.leo;
                        let b = MBatch {
                            pid,
                            epoch,
                            first_seq: -1,
                            first,
                            last: first,
                            txn: true,
                            marker: Some((commit, coord)),
                            values: vec![],
                            bytes: vec![],
                        };
                        m.apply(&b);
                        m.batches.push(b);
                        Out::Appended(first, first)
                    }
                };
                assert_eq!(
                    got, expected,
                    "step {step}: marker pid {pid} epoch {epoch} coord {coord} commit {commit}"
                );
            }
            Op::Roll => l.roll_segment().expect("roll"),
            Op::Reopen => {
                log.take().expect("log").close().expect("close");
                log = Some(open(&path, &clock));
            }
            Op::Crash { cut } => {
                drop(log.take());
                // Tear the tail of the last segment inside its last batch.
                let segs = log_files(&path);
                let last = path.join(segs.last().expect("segment"));
                let len = std::fs::metadata(&last).expect("metadata").len();
                let in_last = m
                    .batches
                    .last()
                    .filter(|b| !b.bytes.is_empty() || b.marker.is_some());
                if let (true, Some(b)) = (len > 0, in_last) {
                    let size = if b.marker.is_some() {
                        78
                    } else {
                        b.bytes.len() as u64
                    };
                    if size <= len && m.batches.last().is_some_and(|b| b.last + 1 == m.leo) {
                        let cut = 1 + u64::from(cut) % size;
                        let f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&last)
                            .expect("open segment");
                        f.set_len(len - cut).expect("cut");
                        m.batches.pop();
                        m.leo = m.batches.last().map_or(m.start, |b| b.last + 1);
                        m.rebuild();
                    }
                }
                let reopened = open(&path, &clock);
                // The engine's end may sit above the last batch (an empty segment or a gap).
                assert!(
                    reopened.log_end_offset().0 >= m.batches.last().map_or(0, |b| b.last + 1),
                    "step {step}: log end after crash"
                );
                m.leo = reopened.log_end_offset().0;
                log = Some(reopened);
            }
            Op::Truncate { back } => {
                let target = (m.leo - i64::from(back)).max(m.start);
                l.truncate_to(Offset(target)).expect("truncate");
                if target < m.leo {
                    m.batches.retain(|b| b.last < target);
                    // The end is where the remaining data ends (or the active segment base).
                    m.leo = l.log_end_offset().0;
                    assert!(
                        m.leo <= target && m.leo >= m.batches.last().map_or(m.start, |b| b.last + 1),
                        "step {step}: end after truncation"
                    );
                    m.rebuild();
                }
            }
            Op::TruncateFully => {
                let at = m.leo + 3;
                l.truncate_fully_and_start_at(Offset(at)).expect("truncate fully");
                m.batches.clear();
                m.producers.clear();
                m.aborted.clear();
                m.leo = at;
                m.start = at;
            }
        }
        let l = log.as_ref().expect("open");
        assert_eq!(l.log_end_offset().0, m.leo, "step {step} {op:?}: log end offset");
        assert_eq!(
            l.last_stable_offset().0,
            m.lso(),
            "step {step} {op:?}: last stable offset"
        );
        let aborted: Vec<(i64, i64, i64, i64)> = l
            .aborted_transactions()
            .iter()
            .map(|a| (a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset))
            .collect();
        assert_eq!(aborted, m.aborted, "step {step} {op:?}: aborted index");
        assert_eq!(
            values(l, Isolation::ReadUncommitted),
            m.view(false),
            "step {step} {op:?}: read_uncommitted"
        );
        assert_eq!(
            values(l, Isolation::ReadCommitted),
            m.view(true),
            "step {step} {op:?}: read_committed"
        );
    }
}
