//! Invariant: the engine agrees with a small, obviously correct in-memory model of one
//! partition under random operation sequences: idempotent and transactional appends with
//! retries and stale epochs, markers (including fencing aborts with a higher epoch), rolls,
//! truncate_to, truncate_fully_and_start_at, clean reopen, and a crash that tears the tail.
//! Compared after every step: each append's outcome and offsets, the log end offset, the last
//! stable offset, the aborted-transaction index, and the read_committed and read_uncommitted
//! views (issue #5).

mod common;
use common::*;
use std::collections::{HashMap, VecDeque};

use eoslog::{AppendOrigin, AppendOutcome, Isolation, MarkerType, Offset, Rejection};
use proptest::prelude::*;

const WINDOW: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    /// pid (0..3); seq choice: 0 = next, 1..=6 = retry the k-th most recent batch, 7 = random.
    Append {
        pid: i64,
        txn: bool,
        n: usize,
        seq_choice: u8,
        epoch_delta: i8,
    },
    Marker {
        pid: i64,
        commit: bool,
        epoch_delta: i8,
        coord_delta: i8,
    },
    Roll,
    Reopen,
    Crash {
        cut: u16,
    },
    Truncate {
        back: u8,
    },
    TruncateFully,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..3i64, any::<bool>(), 1..4usize, 0..8u8, -1..2i8).prop_map(|(pid, txn, n, seq_choice, epoch_delta)| Op::Append { pid, txn, n, seq_choice, epoch_delta }),
        3 => (0..3i64, any::<bool>(), -1..2i8, -1..2i8).prop_map(|(pid, commit, epoch_delta, coord_delta)| Op::Marker { pid, commit, epoch_delta, coord_delta }),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
        1 => (1..400u16).prop_map(|cut| Op::Crash { cut }),
        1 => (1..6u8).prop_map(|back| Op::Truncate { back }),
        1 => Just(Op::TruncateFully),
    ]
}

#[derive(Debug, Clone)]
struct MBatch {
    pid: i64,
    epoch: i16,
    first_seq: i32,
    first: i64,
    last: i64,
    txn: bool,
    /// Some(true) = COMMIT marker, Some(false) = ABORT marker.
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

fn run(ops: Vec<Op>) {
    let t = TestLog::with_config(config(&[
        ("segment.bytes", "700"),
        ("segment.index.bytes", "4096"),
        ("eoslog.snapshot.interval.bytes", "900"),
    ]));
    let mut log = Some(t.open());
    let mut m = Model::default();
    let mut counter = 0u64;
    for (step, op) in ops.into_iter().enumerate() {
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
                    if (1..=6).contains(&seq_choice) && sent.len() >= seq_choice as usize {
                        sent[sent.len() - seq_choice as usize].clone()
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
                        let recs: Vec<eoslog::NewRecord<'_>> = values
                            .iter()
                            .map(|v| eoslog::NewRecord::value(T0, v.as_bytes()))
                            .collect();
                        let b = if txn {
                            eoslog::BatchBuilder::transactional(
                                eoslog::ProducerId(pid),
                                eoslog::ProducerEpoch(epoch),
                                eoslog::Sequence(seq),
                            )
                        } else {
                            eoslog::BatchBuilder::idempotent(
                                eoslog::ProducerId(pid),
                                eoslog::ProducerEpoch(epoch),
                                eoslog::Sequence(seq),
                            )
                        }
                        .build(&recs)
                        .expect("build");
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
                            .expect("r")
                            .iter()
                            .map(|r| {
                                String::from_utf8(r.expect("r").value.expect("v").to_vec()).expect("utf8")
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
                let kind = if commit {
                    MarkerType::Commit
                } else {
                    MarkerType::Abort
                };
                let got = outcome(marker(l, pid, epoch, coord, kind));
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
                log = Some(t.open());
            }
            Op::Crash { cut } => {
                drop(log.take());
                // Tear the tail of the last segment inside its last batch.
                let segs = files_with_suffix(&t.path(), ".log");
                let last = t.path().join(segs.last().expect("segment"));
                let len = std::fs::metadata(&last).expect("m").len();
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
                        let f = std::fs::OpenOptions::new().write(true).open(&last).expect("open");
                        f.set_len(len - cut).expect("cut");
                        m.batches.pop();
                        m.leo = m.batches.last().map_or(m.start, |b| b.last + 1);
                        m.rebuild();
                    }
                }
                let reopened = t.open();
                // The engine's end may sit above the last batch (an empty segment or a gap).
                assert!(
                    reopened.log_end_offset().0 >= m.batches.last().map_or(0, |b| b.last + 1),
                    "step {step}"
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
        if std::env::var("EOSLOG_MODEL_DEBUG").is_ok() {
            eprintln!(
                "step {step} {op:?}: leo {:?} segments {:?} files {:?}",
                l.log_end_offset(),
                l.segments(),
                files_with_suffix(&t.path(), "")
            );
        }
        assert_eq!(l.log_end_offset().0, m.leo, "step {step}: log end offset");
        assert_eq!(
            l.last_stable_offset().0,
            m.lso(),
            "step {step}: last stable offset"
        );
        let aborted: Vec<(i64, i64, i64, i64)> = l
            .aborted_transactions()
            .iter()
            .map(|a| (a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset))
            .collect();
        assert_eq!(aborted, m.aborted, "step {step}: aborted index");
        assert_eq!(
            values(l, Isolation::ReadUncommitted),
            m.view(false),
            "step {step}: read_uncommitted"
        );
        assert_eq!(
            values(l, Isolation::ReadCommitted),
            m.view(true),
            "step {step}: read_committed"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("EOSLOG_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]
    #[test]
    fn prop_engine_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
