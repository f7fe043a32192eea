//! Invariant: under random sequences of plain, idempotent and transactional writes (with
//! tombstones), commits, aborts, rolls, cleans, producer expiry, the passing of delete
//! horizons, clean reopens and crashes, a read_committed consumer folding the log by key
//! sees exactly the model's latest committed value of every key, never an aborted record,
//! every batch keeps a valid CRC, and a retry of any tracked producer's last batch is still a
//! duplicate with its original offset.
//!
//! The model and driver live in `fuzz/harness/compaction_model.rs`, shared with the
//! `compaction_model` fuzz target. `EOSLOG_COMPACTION_CASES` sets the number of cases
//! (default 64).

#[path = "../fuzz/harness/compaction_model.rs"]
mod model;

use model::Op;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..5u8, 0..6u8, 0..3u8, prop::bool::weighted(0.2)).prop_map(|(slot, key, n, tombstone)| Op::Put { slot, key, n, tombstone }),
        3 => (0..2u8, any::<bool>()).prop_map(|(slot, commit)| Op::End { slot, commit }),
        3 => Just(Op::Roll),
        3 => any::<u8>().prop_map(|keys| Op::Clean { keys }),
        1 => Just(Op::Advance),
        1 => Just(Op::Expire),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("EOSLOG_COMPACTION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn prop_compaction_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        model::run(&ops);
    }
}
