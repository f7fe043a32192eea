//! Invariant: a store's transaction coordinator agrees with a small reference model of two
//! transactional ids, two partitions and one group's offsets under random sequences of
//! InitProducerId (with and without the current identity), AddPartitionsToTxn, TV0 and TV2
//! transactional produces, AddOffsetsToTxn, TxnOffsetCommit, EndTxn (commit and abort, TV0
//! and TV2), OffsetDelete and DeleteGroups of the group, zombie requests one epoch behind
//! or ahead, clock jumps past the transaction timeout, clean reopens and crashes. Compared after every step: each answer, each id's
//! state and epoch, the read_committed view of each partition, and the committed offsets
//! (stable and not).
//!
//! The model and the driver live in `fuzz/harness/coordinator_model.rs`, shared with the
//! `coordinator_model` fuzz target. `EOSLOG_COORDINATOR_CASES` sets the number of cases
//! (default 64; the long run in BENCHMARKS.md uses 10,000).

#[path = "../fuzz/harness/coordinator_model.rs"]
mod model;

use model::Op;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let delta = prop_oneof![6 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)];
    prop_oneof![
        3 => (0..2u8, any::<bool>()).prop_map(|(id, expected)| Op::InitPid { id, expected }),
        3 => (0..2u8, 1..4u8, delta.clone()).prop_map(|(id, parts, epoch_delta)| Op::AddPartitions { id, parts, epoch_delta }),
        6 => (0..2u8, 0..2u8, any::<bool>(), delta.clone())
            .prop_map(|(id, part, tv2, epoch_delta)| Op::Produce { id, part, tv2, epoch_delta }),
        2 => (0..2u8, delta.clone()).prop_map(|(id, epoch_delta)| Op::AddOffsets { id, epoch_delta }),
        3 => (0..2u8, 0..2u8, 0..100u8, any::<bool>(), delta.clone())
            .prop_map(|(id, part, offset, tv2, epoch_delta)| Op::TxnOffsetCommit { id, part, offset, tv2, epoch_delta }),
        4 => (0..2u8, any::<bool>(), any::<bool>(), delta)
            .prop_map(|(id, commit, tv2, epoch_delta)| Op::EndTxn { id, commit, tv2, epoch_delta }),
        2 => (0..1501u16).prop_map(|ms| Op::ClockJump { ms }),
        1 => (0..2u8).prop_map(|part| Op::OffsetDelete { part }),
        1 => Just(Op::DeleteGroup),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("EOSLOG_COORDINATOR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn prop_coordinator_matches_model(ops in proptest::collection::vec(op(), 1..50)) {
        model::run(&ops);
    }
}

/// A TV2 abort of a transaction whose partition is also written by the other id: the
/// epoch bump reaches only the transaction's partitions, and the next transaction starts
/// its sequences at 0.
#[test]
fn tv2_abort_then_next_transaction() {
    model::run(&[
        Op::InitPid {
            id: 0,
            expected: false,
        },
        Op::Produce {
            id: 0,
            part: 0,
            tv2: true,
            epoch_delta: 0,
        },
        Op::EndTxn {
            id: 0,
            commit: false,
            tv2: true,
            epoch_delta: 0,
        },
        Op::Produce {
            id: 0,
            part: 0,
            tv2: true,
            epoch_delta: 0,
        },
        Op::Produce {
            id: 0,
            part: 1,
            tv2: true,
            epoch_delta: 0,
        },
        Op::EndTxn {
            id: 0,
            commit: true,
            tv2: true,
            epoch_delta: 0,
        },
        Op::EndTxn {
            id: 0,
            commit: true,
            tv2: true,
            epoch_delta: -1,
        },
    ]);
}
