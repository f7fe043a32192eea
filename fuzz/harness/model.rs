//! The reference model of one partition and the driver that runs it against the engine,
//! shared by the `log_model` fuzz target, `tests/model_based.rs` (proptest) and
//! `tests/fuzz_regressions.rs`.
//!
//! Invariant: the engine agrees with a small in-memory model of one partition under any
//! operation sequence: idempotent and transactional appends with retries and stale epochs,
//! COMMIT/ABORT markers with epoch and coordinator deltas (a higher epoch fences), high
//! watermark moves (the log runs with `eoslog.high.watermark=manual`, as under replication),
//! rolls, retention by size and DeleteRecords, clean reopen, a crash that tears the tail,
//! `truncate_to` and `truncate_fully_and_start_at`. Compared after every step: each append's
//! outcome and offsets, the log start and end offsets, the high watermark, the last stable
//! offset, the aborted-transaction index, and the read_committed and read_uncommitted values.
//!
//! The model knows nothing of files: the only engine facts it takes as input are the segment
//! bases and sizes that retention decides by (Kafka's rule, applied by the model itself).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig, LogOptions,
    ManualClock, MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, ReadError, Rejection, SegmentInfo,
    Sequence, StdFileSystem, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const WINDOW: usize = 5;
/// `retention.bytes` of the log under test (segments roll at 700 bytes).
const RETENTION_BYTES: u64 = 2100;

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
    /// batch, when that batch was not fsynced.
    Crash {
        cut: u16,
    },
    /// truncate_to(log end - back), back 1..=5.
    Truncate {
        back: u8,
    },
    TruncateFully,
    /// Raise the high watermark to the end of the `back`-th newest batch above it (0 = the
    /// log end), back 0..=3. The high watermark never moves back except by truncation.
    SetHighWatermark {
        back: u8,
    },
    /// delete_records_before(high watermark + 1 - back), back 0..=3 (0 is out of range).
    DeleteRecords {
        back: u8,
    },
    /// apply_retention() with `retention.bytes` = 2100.
    Retention,
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
            Op::SetHighWatermark { back } => Op::SetHighWatermark { back: back % 4 },
            Op::DeleteRecords { back } => Op::DeleteRecords { back: back % 4 },
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
    /// Every batch still in the log, including those below the log start offset (their
    /// producer state outlives them, as in Kafka).
    batches: Vec<MBatch>,
    leo: i64,
    start: i64,
    hw: i64,
    producers: HashMap<i64, MProducer>,
    /// (pid, first, last, lso)
    aborted: Vec<(i64, i64, i64, i64)>,
    /// (first offset, marker offset) of completed transactions whose marker is not yet below
    /// the high watermark: they still hold the last stable offset back.
    unreplicated: Vec<(i64, i64)>,
    /// Base offset of the oldest remaining segment: aborted transactions whose marker lies
    /// below it went with their segment.
    floor: i64,
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
                    if b.first >= self.hw {
                        self.unreplicated.push((first, b.first));
                    }
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

    /// Rebuilds the producer state, the aborted list and the unreplicated transactions by
    /// replaying the batches (after a truncation or a crash); `hw` must already be final.
    fn rebuild(&mut self) {
        let batches = std::mem::take(&mut self.batches);
        let leo = self.leo;
        self.producers.clear();
        self.aborted.clear();
        self.unreplicated.clear();
        for b in &batches {
            self.apply(b);
        }
        self.batches = batches;
        self.leo = leo;
        let floor = self.floor;
        self.aborted.retain(|a| a.2 >= floor);
    }

    fn set_hw(&mut self, hw: i64) {
        self.hw = hw;
        self.unreplicated.retain(|u| u.1 >= hw);
    }

    /// Everything gone; the log restarts empty at `at`.
    fn restart_at(&mut self, at: i64) {
        self.batches.clear();
        self.producers.clear();
        self.aborted.clear();
        self.unreplicated.clear();
        self.leo = at;
        self.start = at;
        self.hw = at;
        self.floor = at;
    }

    /// `min(first unstable offset, high watermark)`, the first unstable offset being the
    /// earliest open or unreplicated transaction, lower-bounded by the log start offset.
    fn lso(&self) -> i64 {
        let open = self.producers.values().filter_map(|p| p.txn_first);
        let unreplicated = self.unreplicated.iter().map(|u| u.0);
        open.chain(unreplicated)
            .min()
            .map_or(self.hw, |f| f.max(self.start).min(self.hw))
    }

    /// The values a consumer sees from the log start offset: whole batches below the high
    /// watermark (read_uncommitted) or the last stable offset without aborted data
    /// (read_committed), and only the records at or above the log start offset.
    fn view(&self, committed: bool) -> Vec<String> {
        let bound = if committed { self.lso() } else { self.hw };
        let aborted = |b: &MBatch| {
            self.aborted
                .iter()
                .any(|a| a.0 == b.pid && b.first >= a.1 && b.last < a.2)
        };
        self.batches
            .iter()
            .filter(|b| b.marker.is_none() && b.last < bound)
            .filter(|b| !committed || !b.txn || !aborted(b))
            .flat_map(|b| {
                (b.first..)
                    .zip(&b.values)
                    .filter(|(o, _)| *o >= self.start)
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }

    /// Kafka's retention over `segments` (oldest first): delete from the oldest while each
    /// segment lies wholly below the high watermark, is not an empty active segment, and is
    /// either wholly below the log start offset or not needed to keep `retention.bytes`.
    /// Returns how many go and the base offset of the oldest that remains.
    fn retention(&self, segments: &[SegmentInfo]) -> (usize, i64) {
        let mut total: u64 = segments.iter().map(|s| s.size).sum();
        let mut n = 0;
        for (i, s) in segments.iter().enumerate() {
            let upper = segments.get(i + 1).map_or(self.leo, |nx| nx.base_offset.0);
            if upper > self.hw || (i + 1 == segments.len() && s.size == 0) {
                break;
            }
            let by_start = upper <= self.start;
            let by_size = total - s.size >= RETENTION_BYTES;
            if !(by_start || by_size) {
                break;
            }
            total -= s.size;
            n += 1;
        }
        (n, segments.get(n).map_or(self.leo, |s| s.base_offset.0))
    }

    /// Applies a retention pass that deleted the segments below `floor`.
    fn retain_from(&mut self, floor: i64) {
        self.floor = self.floor.max(floor);
        self.start = self.start.max(floor);
        let floor = self.floor;
        self.aborted.retain(|a| a.2 >= floor);
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

// Each harness stands alone in its fuzz target; tests/fuzz_regressions.rs includes both.
#[allow(clippy::duplicate_mod)]
#[path = "scratch.rs"]
mod scratch;
use scratch::scratch_dir;

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in [
        ("segment.bytes", "700"),
        ("segment.index.bytes", "4096"),
        ("index.interval.bytes", "100"),
        ("eoslog.snapshot.interval.bytes", "900"),
        ("eoslog.high.watermark", "manual"),
        ("retention.bytes", "2100"),
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

/// Opens the log again the way a replica does: the high watermark starts at the log start
/// offset (it is not the log's to persist) and the embedder restores the one it knew.
fn reopen(path: &Path, clock: &ManualClock, m: &mut Model, step: usize) -> Log {
    let log = open(path, clock);
    assert_eq!(
        log.high_watermark(),
        log.log_start_offset(),
        "step {step}: high watermark after open"
    );
    let hw = m.hw.min(log.log_end_offset().0);
    assert_eq!(
        log.set_high_watermark(Offset(hw)).0,
        hw,
        "step {step}: restored high watermark"
    );
    m.set_hw(hw);
    log
}

fn values(log: &Log, isolation: Isolation) -> Vec<String> {
    values_in_fetches(log, isolation, usize::MAX / 2)
}

/// Values visible from the log start with the isolation, read in fetches of at most
/// `budget` bytes (at least one batch each).
fn values_in_fetches(log: &Log, isolation: Isolation, budget: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    loop {
        let (recs, after) = log.read_records(next, budget, isolation).expect("read");
        out.extend(
            recs.into_iter()
                .map(|r| String::from_utf8(r.value.unwrap_or_default()).expect("utf8")),
        );
        if after <= next {
            return out;
        }
        next = after;
    }
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
                log = Some(reopen(&path, &clock, &mut m, step));
            }
            Op::Crash { cut } => {
                // A crash tears only what was not fsynced: data below the durable offset
                // survives it (and damage there is reported by recovery, never cut away).
                let durable = l.durable_offset().0;
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
                    if size <= len
                        && b.first >= durable
                        && m.batches.last().is_some_and(|b| b.last + 1 == m.leo)
                    {
                        let cut = 1 + u64::from(cut) % size;
                        let f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&last)
                            .expect("open segment");
                        f.set_len(len - cut).expect("cut");
                        let cut_batch = m.batches.pop().expect("last batch");
                        m.leo = cut_batch.first;
                        if m.leo < m.start {
                            // The data ends below the log start offset: the log restarts
                            // empty there (Kafka's recovery does the same).
                            m.restart_at(m.start);
                        } else {
                            m.hw = m.hw.min(m.leo);
                            m.rebuild();
                        }
                    }
                }
                let reopened = reopen(&path, &clock, &mut m, step);
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
                        m.leo <= target && m.leo >= m.batches.last().map_or(m.floor, |b| b.last + 1),
                        "step {step}: end after truncation"
                    );
                    m.start = m.start.min(m.leo);
                    m.hw = m.hw.min(m.leo);
                    m.rebuild();
                }
            }
            Op::TruncateFully => {
                let at = m.leo + 3;
                l.truncate_fully_and_start_at(Offset(at)).expect("truncate fully");
                m.restart_at(at);
            }
            Op::SetHighWatermark { back } => {
                let mut ends: Vec<i64> = m
                    .batches
                    .iter()
                    .map(|b| b.last + 1)
                    .filter(|&e| e > m.hw && e < m.leo)
                    .collect();
                ends.push(m.leo);
                let target = ends[ends.len().saturating_sub(1 + usize::from(back))];
                let got = l.set_high_watermark(Offset(target));
                assert_eq!(got.0, target, "step {step}: set_high_watermark({target})");
                m.set_hw(target);
            }
            Op::DeleteRecords { back } => {
                let target = m.hw + 1 - i64::from(back);
                let before = l.segments();
                let got = l.delete_records_before(Offset(target));
                if target > m.hw || target < 0 {
                    assert!(
                        matches!(got, Err(ReadError::OffsetOutOfRange { .. })),
                        "step {step}: delete_records_before({target}) outside [0, high watermark]: {got:?}"
                    );
                } else {
                    if target > m.start {
                        m.start = target;
                        let (n, floor) = m.retention(&before);
                        if n > 0 {
                            m.retain_from(floor);
                        }
                    }
                    assert_eq!(
                        got.expect("delete records").0,
                        m.start,
                        "step {step}: delete_records_before({target})"
                    );
                }
            }
            Op::Retention => {
                let before = l.segments();
                let (n, floor) = m.retention(&before);
                let got = l.apply_retention().expect("retention");
                assert_eq!(got, n, "step {step}: segments deleted by retention of {before:?}");
                if n > 0 {
                    m.retain_from(floor);
                }
            }
        }
        let l = log.as_ref().expect("open");
        if std::env::var_os("EOSLOG_MODEL_DEBUG").is_some() {
            eprintln!(
                "step {step} {op:?}: engine start {} end {} hw {} segments {:?}; model start {} end {} hw {} floor {}",
                l.log_start_offset().0,
                l.log_end_offset().0,
                l.high_watermark().0,
                l.segments(),
                m.start,
                m.leo,
                m.hw,
                m.floor
            );
        }
        assert_eq!(l.log_end_offset().0, m.leo, "step {step} {op:?}: log end offset");
        assert_eq!(
            l.log_start_offset().0,
            m.start,
            "step {step} {op:?}: log start offset"
        );
        assert_eq!(l.high_watermark().0, m.hw, "step {step} {op:?}: high watermark");
        assert_eq!(
            l.segments().first().map(|s| s.base_offset.0),
            Some(m.floor),
            "step {step} {op:?}: oldest segment"
        );
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
        // Small fetches, one after another, see what one large fetch sees: each ends on a
        // batch boundary found through the offset index.
        let budget = 1 + (step * 733) % 4_000;
        assert_eq!(
            values_in_fetches(l, Isolation::ReadCommitted, budget),
            m.view(true),
            "step {step} {op:?}: read_committed in fetches of {budget} bytes"
        );
    }
    if let Some(l) = log.as_ref() {
        check_follower(l, &tmp.path().join("follower-0"), &clock);
    }
}

/// A follower that replicates the whole log in fetches of several batches builds the same
/// transaction index and shows the same records. Only for a log that still starts at 0: a
/// follower that starts later never sees the first offsets of transactions open at its start.
fn check_follower(leader: &Log, path: &Path, clock: &ManualClock) {
    if leader.log_start_offset() != Offset(0) {
        return;
    }
    let follower = open(path, clock);
    let mut next = Offset(0);
    let mut chunk = 300;
    while next < leader.log_end_offset() {
        let fetch = leader
            .read(next, chunk, Isolation::Replica)
            .expect("leader fetch");
        let bytes = fetch.bytes().expect("fetch bytes");
        let info = match follower.append(&bytes, AppendOrigin::Replication) {
            Ok(AppendOutcome::Appended(info)) => info,
            other => panic!("follower append at {next:?}: {other:?}"),
        };
        next = info.last_offset.next();
        chunk = chunk * 7 % 2_000 + 100;
    }
    let hw = leader.high_watermark();
    follower.set_high_watermark(hw);
    assert_eq!(
        follower.aborted_transactions(),
        leader.aborted_transactions(),
        "follower's transaction index"
    );
    for isolation in [Isolation::ReadUncommitted, Isolation::ReadCommitted] {
        assert_eq!(
            values(&follower, isolation),
            values(leader, isolation),
            "follower's {isolation:?} records"
        );
    }
}
