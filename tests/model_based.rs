//! Invariant: the engine agrees with a small, obviously correct in-memory model of one
//! partition under random operation sequences (issue #5): idempotent and transactional
//! appends with retries and stale epochs, markers (including fencing aborts with a higher
//! epoch), high-watermark moves, rolls, retention and DeleteRecords, truncate_to,
//! truncate_fully_and_start_at, clean reopen, and a crash that tears the tail. Compared after
//! every step: each append's outcome and offsets, the log start and end offsets, the high
//! watermark, the last stable offset, the aborted-transaction index, the read_committed
//! and read_uncommitted views, and the read_committed view again in small fetches. At the
//! end of a sequence whose log still starts at 0, a follower that replicates it in
//! multi-batch fetches must build the same transaction index and show the same views.
//!
//! The model and the driver live in `fuzz/harness/model.rs`, shared with the `log_model` fuzz
//! target; this file generates the operation sequences with proptest (which shrinks a
//! failure to a minimal sequence). `EOSLOG_MODEL_CASES` sets the number of cases (default 48).

#[path = "../fuzz/harness/model.rs"]
mod model;

use model::Op;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..3i64, any::<bool>(), 1..4usize, 0..8u8, -1..2i8).prop_map(|(pid, txn, n, seq_choice, epoch_delta)| Op::Append { pid, txn, n, seq_choice, epoch_delta }),
        3 => (0..3i64, any::<bool>(), -1..2i8, -1..2i8).prop_map(|(pid, commit, epoch_delta, coord_delta)| Op::Marker { pid, commit, epoch_delta, coord_delta }),
        4 => (0..4u8).prop_map(|back| Op::SetHighWatermark { back }),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
        1 => (1..400u16).prop_map(|cut| Op::Crash { cut }),
        1 => (1..6u8).prop_map(|back| Op::Truncate { back }),
        1 => Just(Op::TruncateFully),
        1 => (0..4u8).prop_map(|back| Op::DeleteRecords { back }),
        1 => Just(Op::Retention),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("EOSLOG_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn prop_engine_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        model::run(&ops);
    }
}

// ---- Sequences the model found, kept as fixed cases (minimised by proptest) ----

fn put(pid: i64, n: usize, seq_choice: u8) -> Op {
    Op::Append {
        pid,
        txn: false,
        n,
        seq_choice,
        epoch_delta: 0,
    }
}

/// Recovery resuming inside the active segment took an unwritten time-index slot for an entry
/// with timestamp 0; time retention then deleted the segment (fixed in `Segment::recover`).
#[test]
fn found_time_retention_after_resumed_recovery() {
    model::run(&[
        put(0, 1, 0),
        put(0, 1, 0),
        Op::TruncateFully,
        put(1, 1, 0),
        put(0, 1, 0),
        put(0, 2, 4),
        Op::Truncate { back: 3 },
        put(0, 1, 0),
        Op::Crash { cut: 1 },
        Op::SetHighWatermark { back: 0 },
        Op::Retention,
    ]);
}

/// DeleteRecords into the second segment deleted the snapshot at its base; after a crash the
/// first segment's producer was forgotten and its retry written twice (fixed in retention).
#[test]
fn found_snapshot_at_oldest_segment_base_is_kept() {
    model::run(&[
        put(2, 1, 0),
        put(2, 1, 0),
        put(2, 1, 0),
        Op::Roll,
        put(0, 1, 0),
        Op::SetHighWatermark { back: 0 },
        put(0, 1, 0),
        Op::DeleteRecords { back: 1 },
        Op::Crash { cut: 1 },
        put(2, 1, 1),
    ]);
}

/// A crash that left no data at or above the log start offset restarted the log empty but
/// left a snapshot behind, which the next open loaded: producer state came back (fixed in
/// `Log::open`).
#[test]
fn found_restart_below_log_start_drops_snapshots() {
    model::run(&[
        Op::Marker {
            pid: 2,
            commit: false,
            epoch_delta: 1,
            coord_delta: 0,
        },
        Op::SetHighWatermark { back: 0 },
        put(0, 1, 0),
        Op::DeleteRecords { back: 1 },
        Op::Crash { cut: 1 },
        Op::Crash { cut: 1 },
        Op::Crash { cut: 1 },
        put(2, 1, 0),
    ]);
}

/// A transaction completed above the high watermark stopped holding the last stable offset
/// after a restart once its marker lay below the snapshot (fixed by the snapshot's
/// unreplicated-transactions section).
#[test]
fn found_unreplicated_transaction_survives_reopen() {
    model::run(&[
        Op::Append {
            pid: 0,
            txn: true,
            n: 1,
            seq_choice: 0,
            epoch_delta: 0,
        },
        Op::SetHighWatermark { back: 0 },
        Op::Marker {
            pid: 0,
            commit: false,
            epoch_delta: 0,
            coord_delta: 0,
        },
        put(0, 1, 0),
        Op::Roll,
        put(0, 1, 0),
        Op::Reopen,
    ]);
}
