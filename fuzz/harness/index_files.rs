//! Harness of the `index_files` fuzz target, shared with `tests/fuzz_regressions.rs`.
//!
//! Invariant: whatever bytes a partition directory's files hold, `Log::open` and everything
//! after it (reads at every isolation, `verify`, an append, close, reopen) return values or
//! errors, never panic; and when only derived files were damaged (indexes, transaction
//! indexes, leader epochs), the opened log passes `verify`: open and first use rebuilt them.
//!
//! A small valid log is written once through the public API (three producers, committed and
//! aborted transactions, leader epochs, several segments, snapshots) and kept in memory as a
//! template. Each run copies it into a fresh temporary directory, applies up to four edits
//! chosen by the input, and opens the result.
//!
//! Input: `flags` byte (bit 0: remove the clean-shutdown marker so recovery runs; bit 1: remove
//! `eoslog.checkpoint`), then edits of a 6-byte head `kind | segment | mode | at (u16 BE) | len`
//! followed by `len` bytes of data (`len == 0`: the rest of the input).
//! * kind % 8: 0 `.index`, 1 `.timeindex`, 2 `.txnindex`, 3 `.snapshot`,
//!   4 `leader-epoch-checkpoint`, 5 `eoslog.checkpoint`, 6 `.log`, 7 a new `.log` segment above
//!   the last one (base offset = last base + 1 + `at` % 64);
//! * segment: which segment (modulo their count), or which snapshot;
//! * mode % 4: 0 replace the file, 1 overwrite at `at` (modulo length + 1), 2 append,
//!   3 truncate to `at` (modulo length + 1) then append.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use eoslog::{
    file_name, parse_file_name, AppendOptions, AppendOrigin, BatchBuilder, CoordinatorEpoch, Isolation, Log,
    LogConfig, LogOptions, ManualClock, MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, Sequence,
    StdFileSystem, TxnMarker, CHECKPOINT_FILE, CLEAN_SHUTDOWN_FILE,
};

const T0: i64 = 1_700_000_000_000;
const EPOCH_FILE: &str = "leader-epoch-checkpoint";

// Each harness stands alone in its fuzz target; tests/fuzz_regressions.rs includes both.
#[allow(clippy::duplicate_mod)]
#[path = "scratch.rs"]
mod scratch;
use scratch::scratch_dir;

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in [
        ("segment.bytes", "600"),
        ("segment.index.bytes", "4096"),
        ("index.interval.bytes", "0"),
        ("eoslog.snapshot.interval.bytes", "500"),
    ] {
        c.set(k, v).expect("valid config");
    }
    c
}

fn open(dir: &Path) -> Result<Log, eoslog::OpenError> {
    Log::open_with(
        dir,
        config(),
        LogOptions {
            fs: Arc::new(StdFileSystem),
            clock: Arc::new(ManualClock::new(T0)),
        },
    )
}

fn batch(pid: i64, epoch: i16, seq: i32, txn: bool, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("p{pid}-s{seq}-{i}").into_bytes())
        .collect();
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord::key_value(T0 + i as i64, b"k", v))
        .collect();
    let b = if txn {
        BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
    } else {
        BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
    };
    b.build(&recs).expect("build")
}

fn marker(pid: i64, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: ProducerId(pid),
        producer_epoch: ProducerEpoch(0),
        coordinator_epoch: CoordinatorEpoch(1),
        marker: if commit {
            MarkerType::Commit
        } else {
            MarkerType::Abort
        },
        timestamp: Some(T0),
    }
}

/// The files of the template log, by name (the lock file left out).
fn build_template() -> Vec<(String, Vec<u8>)> {
    let tmp = scratch_dir();
    let dir = tmp.path().join("topic-0");
    let log = open(&dir).expect("open template");
    let mut seqs = [0i32; 3];
    for round in 0..6 {
        let opts = AppendOptions {
            leader_epoch: Some(round / 2),
            ..AppendOptions::new(AppendOrigin::Client)
        };
        // Producer 1: idempotent. Producer 2: transactions, alternately aborted and committed.
        // Producer 3: a transaction left open at the end.
        let b = batch(1, 0, seqs[0], false, 2);
        seqs[0] += 2;
        let _ = log.append_with(&b, &opts).expect("append");
        let b = batch(2, 0, seqs[1], true, 1);
        seqs[1] += 1;
        let _ = log.append_with(&b, &opts).expect("append");
        let _ = log.write_marker(&marker(2, round % 2 == 1)).expect("marker");
        if round == 3 {
            log.roll_segment().expect("roll");
        }
    }
    let b = batch(3, 0, 0, true, 3);
    let _ = log.append(&b, AppendOrigin::Client).expect("append");
    log.close().expect("close");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("utf8 name");
        if name == ".lock" {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read");
        files.push((name, bytes));
    }
    files.sort();
    files
}

fn template() -> &'static [(String, Vec<u8>)] {
    static TEMPLATE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    TEMPLATE.get_or_init(build_template)
}

struct Edit<'a> {
    kind: u8,
    segment: u8,
    mode: u8,
    at: u16,
    data: &'a [u8],
}

fn parse_edits(mut input: &[u8]) -> Vec<Edit<'_>> {
    let mut edits = Vec::new();
    while edits.len() < 4 && input.len() >= 6 {
        let (head, rest) = input.split_at(6);
        let len = usize::from(head[5]);
        let take = if len == 0 { rest.len() } else { len.min(rest.len()) };
        let (data, rest) = rest.split_at(take);
        edits.push(Edit {
            kind: head[0],
            segment: head[1],
            mode: head[2],
            at: u16::from_be_bytes([head[3], head[4]]),
            data,
        });
        input = rest;
    }
    edits
}

fn apply(dir: &Path, edit: &Edit<'_>) {
    let mut bases: Vec<i64> = Vec::new();
    let mut snapshots: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        match parse_file_name(&name) {
            Some((base, "log")) => bases.push(base),
            Some((_, "snapshot")) => snapshots.push(name),
            _ => {}
        }
    }
    bases.sort_unstable();
    snapshots.sort();
    let pick = |v: &[i64]| {
        v.get(usize::from(edit.segment) % v.len().max(1))
            .copied()
            .unwrap_or(0)
    };
    let name = match edit.kind % 8 {
        0 => file_name(pick(&bases), "index"),
        1 => file_name(pick(&bases), "timeindex"),
        2 => file_name(pick(&bases), "txnindex"),
        3 => snapshots
            .get(usize::from(edit.segment) % snapshots.len().max(1))
            .cloned()
            .unwrap_or_else(|| file_name(pick(&bases), "snapshot")),
        4 => EPOCH_FILE.to_owned(),
        5 => CHECKPOINT_FILE.to_owned(),
        6 => file_name(pick(&bases), "log"),
        _ => file_name(
            bases.last().copied().unwrap_or(0) + 1 + i64::from(edit.at % 64),
            "log",
        ),
    };
    let path = dir.join(name);
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    let at = usize::from(edit.at) % (bytes.len() + 1);
    match edit.mode % 4 {
        0 => bytes = edit.data.to_vec(),
        1 => {
            let end = at + edit.data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[at..end].copy_from_slice(edit.data);
        }
        2 => bytes.extend_from_slice(edit.data),
        _ => {
            bytes.truncate(at);
            bytes.extend_from_slice(edit.data);
        }
    }
    std::fs::write(&path, &bytes).expect("write fuzzed file");
}

/// Everything a reader or operator does with an opened log; errors are fine, except one:
/// when only files eoslog derives and repairs were damaged (`.index`, `.timeindex`,
/// `.txnindex`, `leader-epoch-checkpoint`; not the data, the checkpoint that records what
/// the derived files held, or a snapshot, which is checked only when loaded), the log that
/// opened over them must pass `verify` once it has read every segment.
fn exercise(log: &Log, repairable: bool) {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let _ = (
        log.high_watermark(),
        log.last_stable_offset(),
        log.first_unstable_offset(),
    );
    let _ = (
        log.durable_offset(),
        log.segments(),
        log.producers(),
        log.open_transactions(),
    );
    let _ = (log.aborted_transactions(), log.leader_epochs(), log.stats());
    for epoch in [-1, 0, 1, 2, 3, 100] {
        let _ = log.end_offset_for_epoch(epoch);
    }
    for isolation in [
        Isolation::ReadCommitted,
        Isolation::ReadUncommitted,
        Isolation::Replica,
    ] {
        let _ = log.read_records(start, 1 << 20, isolation);
        let mut from = start;
        // Fetch batch by batch, as a consumer does, a bounded number of times.
        for _ in 0..64 {
            match log.read(from, 1, isolation) {
                Ok(fetch) if !fetch.slices.is_empty() => {
                    let Ok(bytes) = fetch.bytes() else { break };
                    let Ok((b, _)) = eoslog::RecordBatch::parse(&bytes) else {
                        break;
                    };
                    if b.next_offset() <= from.0 {
                        break;
                    }
                    from = Offset(b.next_offset());
                }
                _ => break,
            }
        }
        let _ = log.read(end, 1 << 16, isolation);
        let _ = log.offset_for_timestamp(T0, isolation);
        let _ = log.offset_for_timestamp(i64::MIN, isolation);
    }
    let verified = log.verify(|_, _| {});
    if repairable {
        if let Err(e) = verified {
            panic!("a log opened over damaged derived files fails verify: {e}");
        }
    }
}

/// Writes the template with the input's edits and drives the log over it.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let tmp = scratch_dir();
    let dir = tmp.path().join("topic-0");
    std::fs::create_dir(&dir).expect("mkdir");
    for (name, bytes) in template() {
        std::fs::write(dir.join(name), bytes).expect("write template");
    }
    if flags & 1 != 0 {
        let _ = std::fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE));
    }
    if flags & 2 != 0 {
        let _ = std::fs::remove_file(dir.join(CHECKPOINT_FILE));
    }
    let edits = parse_edits(rest);
    // Kinds 0 (.index), 1 (.timeindex), 2 (.txnindex) and 4 (leader epochs) are repaired.
    let repairable = edits.iter().all(|e| matches!(e.kind % 8, 0 | 1 | 2 | 4));
    for edit in &edits {
        apply(&dir, edit);
    }
    let Ok(log) = open(&dir) else {
        return;
    };
    exercise(&log, repairable);
    // The write path over recovered producer state: producer 1 continues, producer 3's open
    // transaction commits.
    let next = log
        .producers()
        .iter()
        .find(|p| p.producer_id == ProducerId(1))
        .map_or(0, |p| p.last_sequence.0.wrapping_add(1).max(0));
    let _ = log.append(&batch(1, 0, next, false, 1), AppendOrigin::Client);
    let _ = log.write_marker(&marker(3, true));
    exercise(&log, repairable);
    if log.close().is_err() {
        return;
    }
    if let Ok(log) = open(&dir) {
        exercise(&log, repairable);
        let _ = log.close();
    }
}
