//! Invariant: the store's maintenance cleans the coordinator's compacted internal topics, so
//! `__transaction_state` and `__consumer_offsets` stay bounded by the number of live keys
//! (transactional ids, group offsets), not by the number of transactions; and what the
//! coordinator reloads from the cleaned topics after a crash is what it had: the last
//! committed offset, no aborted one, and the transactional id's state.

mod common;

use common::{tp, TestStore};
use eoslog::{OffsetCommit, PartitionOffset, TxnOffsetCommit, TxnVersion};

const GROUP: &str = "grp";

fn committed(t: &TestStore) -> Option<i64> {
    let part = tp("in", 0);
    let mut v = t
        .s()
        .offsets()
        .fetch(GROUP, Some(std::slice::from_ref(&part)), true)
        .expect("fetch");
    v.pop().expect("one").1.expect("stable").map(|c| c.offset)
}

#[test]
fn internal_topics_stay_bounded_and_reload_the_same_state() {
    let mut t = TestStore::new(&[
        ("offsets.topic.segment.bytes", "4096"),
        ("transaction.state.log.segment.bytes", "4096"),
        ("log.cleaner.backoff.ms", "0"),
        ("log.cleaner.delete.retention.ms", "0"),
    ]);
    t.s().create_topic("in", 1, &[]).expect("topic");
    let part = tp("in", 0);
    let mut last_committed = None;
    let mut sizes = Vec::new();
    let mut cleaned = 0;
    for i in 0..600i64 {
        let p = t
            .txns()
            .init_producer_id(Some("txn"), 60_000, None)
            .expect("init");
        t.txns()
            .add_offsets("txn", p, GROUP, TxnVersion::TV0)
            .expect("add offsets");
        let commit = TxnOffsetCommit {
            transactional_id: "txn",
            producer: p,
            tv: TxnVersion::TV0,
            commit: OffsetCommit {
                group_id: GROUP,
                generation_id: -1,
                member_id: "",
                group_instance_id: None,
                retention_ms: None,
                offsets: vec![PartitionOffset {
                    partition: part.clone(),
                    offset: i,
                    leader_epoch: -1,
                    metadata: None,
                }],
            },
        };
        for r in t.s().offsets().txn_commit(&commit) {
            r.expect("txn offset commit");
        }
        let keep = i % 4 != 3;
        t.txns().end_txn("txn", p, keep, TxnVersion::TV0).expect("end");
        if keep {
            last_committed = Some(i);
        }
        if i % 20 == 19 {
            t.clock.advance(1);
            cleaned += t.s().run_maintenance().cleaned_logs;
            sizes.push(t.log_bytes(&["__transaction_state-", "__consumer_offsets-"]));
        }
    }
    eprintln!("internal topic .log bytes every 20 transactions: {sizes:?}");
    assert!(cleaned > 0, "maintenance cleaned the internal topics");
    let (early, late) = (sizes[4], *sizes.last().expect("sizes"));
    assert!(
        late < 2 * early.max(16 << 10),
        "internal topics grew from {early} to {late} bytes: {sizes:?}"
    );
    assert_eq!(committed(&t), last_committed);
    t.crash();
    assert_eq!(
        committed(&t),
        last_committed,
        "reloaded from the cleaned offsets topic"
    );
    let described = t.txns().describe("txn").expect("described");
    assert!(
        matches!(
            described.state,
            eoslog::TxnState::CompleteCommit | eoslog::TxnState::CompleteAbort
        ),
        "{described:?}"
    );
    let p = t
        .txns()
        .init_producer_id(Some("txn"), 60_000, None)
        .expect("init after reload");
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("a new transaction");
}
