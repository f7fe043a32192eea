//! Consumer offsets committed inside a transaction stay invisible until the COMMIT marker
//! lands on the offsets partition and vanish on ABORT; a fetch that asks for stable offsets
//! is told to retry while a transaction holds offsets for the partition; the offset written
//! later in the log wins; all of it survives a restart. Scenarios of Kafka's
//! `OffsetMetadataManagerTest` and `GroupCoordinatorTest`.

mod common;

use common::{pe, tp, TestStore};
use eoslog::{
    CoordinatorError, GroupMember, GroupMembership, GroupState, KafkaError, OffsetCommit, PartitionOffset,
    ProducerIdAndEpoch, TopicPartition, TxnApi, TxnOffsetCommit, TxnVersion,
};

const GROUP: &str = "grp";

fn offsets(parts: &[(&TopicPartition, i64)]) -> Vec<PartitionOffset<'static>> {
    parts
        .iter()
        .map(|(p, o)| PartitionOffset {
            partition: (*p).clone(),
            offset: *o,
            leader_epoch: -1,
            metadata: None,
        })
        .collect()
}

fn plain(parts: &[(&TopicPartition, i64)]) -> OffsetCommit<'static> {
    OffsetCommit {
        group_id: GROUP,
        generation_id: -1,
        member_id: "",
        group_instance_id: None,
        retention_ms: None,
        offsets: offsets(parts),
    }
}

fn txn_commit(p: ProducerIdAndEpoch, parts: &[(&TopicPartition, i64)]) -> TxnOffsetCommit<'static> {
    TxnOffsetCommit {
        transactional_id: "txn",
        producer: p,
        tv: TxnVersion::TV0,
        commit: plain(parts),
    }
}

fn ok(answers: Vec<Result<(), CoordinatorError>>) {
    for a in answers {
        a.expect("committed");
    }
}

/// The committed offset of `tp` for the group (`None`: none), or the error.
fn fetched(t: &TestStore, part: &TopicPartition, require_stable: bool) -> Result<Option<i64>, KafkaError> {
    let mut v = t
        .s()
        .offsets()
        .fetch(GROUP, Some(std::slice::from_ref(part)), require_stable)
        .expect("fetch");
    v.pop()
        .expect("one")
        .1
        .map(|c| c.map(|c| c.offset))
        .map_err(|e| e.kafka_error())
}

fn setup() -> (TestStore, ProducerIdAndEpoch, TopicPartition, TopicPartition) {
    let t = TestStore::new(&[]);
    t.s().create_topic("in", 2, &[]).expect("topic");
    let p = t
        .txns()
        .init_producer_id(Some("txn"), 60_000, None)
        .expect("init");
    (t, p, tp("in", 0), tp("in", 1))
}

#[test]
fn test_fetch_offsets_with_pending_transactional_offsets() {
    let (t, p, a, b) = setup();
    ok(t.s().offsets().commit(&plain(&[(&a, 5), (&b, 7)])));
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add offsets");
    ok(t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 10)])));
    assert_eq!(
        fetched(&t, &a, false),
        Ok(Some(5)),
        "pending offsets are invisible"
    );
    assert_eq!(fetched(&t, &a, true), Err(KafkaError::UnstableOffsetCommit));
    assert_eq!(fetched(&t, &b, true), Ok(Some(7)), "other partitions are stable");
    // test_fetch_all_offsets_with_pending_transactional_offsets: a pending-only partition
    // is not listed, a committed one with a pending offset is unstable.
    let c = tp("in", 1);
    let all = t.s().offsets().fetch(GROUP, None, true).expect("fetch all");
    assert_eq!(all.len(), 2);
    assert!(matches!(all[0].1, Err(CoordinatorError::UnstableOffsetCommit)));
    assert_eq!(all[1].0, c);
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert_eq!(
        fetched(&t, &a, true),
        Ok(Some(10)),
        "visible once the marker landed"
    );
}

#[test]
fn aborted_transactional_offsets_are_dropped() {
    let (t, p, a, _) = setup();
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add offsets");
    ok(t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 10)])));
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("abort");
    assert_eq!(fetched(&t, &a, true), Ok(None));
    assert!(t.s().offsets().pending(GROUP).expect("pending").is_empty());
}

#[test]
fn test_replay_transaction_end_marker_keeps_the_most_recent_committed_offset() {
    let (t, p, a, _) = setup();
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add offsets");
    ok(t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 10)])));
    // A plain commit written after the transactional one wins over it at COMMIT.
    ok(t.s().offsets().commit(&plain(&[(&a, 20)])));
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert_eq!(fetched(&t, &a, true), Ok(Some(20)));
}

#[test]
fn test_load_with_committed_and_aborted_and_pending_transactional_offset_commits() {
    let (mut t, p, a, b) = setup();
    let q = t
        .txns()
        .init_producer_id(Some("other"), 60_000, None)
        .expect("init");
    ok(t.s().offsets().commit(&plain(&[(&a, 1)])));
    // One committed, one aborted, one left open.
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add");
    ok(t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 2)])));
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add");
    ok(t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 3)])));
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("abort");
    t.txns()
        .add_offsets("other", q, GROUP, TxnVersion::TV0)
        .expect("add");
    let mut open = txn_commit(q, &[(&b, 4)]);
    open.transactional_id = "other";
    ok(t.s().offsets().txn_commit(&open));
    t.crash();
    assert_eq!(fetched(&t, &a, true), Ok(Some(2)));
    assert_eq!(
        fetched(&t, &b, true),
        Err(KafkaError::UnstableOffsetCommit),
        "still pending after the crash"
    );
    assert_eq!(
        t.s().offsets().pending(GROUP).expect("pending"),
        vec![(q.producer_id, vec![b.clone()])]
    );
    t.txns()
        .end_txn("other", q, true, TxnVersion::TV0)
        .expect("commit after restart");
    assert_eq!(fetched(&t, &b, true), Ok(Some(4)));
}

#[test]
fn test_verification_errors_for_txn_offset_commits() {
    let (t, p, a, _) = setup();
    // No AddOffsetsToTxn: the offsets partition is not in the transaction.
    let answers = t.s().offsets().txn_commit(&txn_commit(p, &[(&a, 1)]));
    let err = answers.into_iter().next().expect("one").expect_err("refused");
    assert_eq!(err.kafka_error(), KafkaError::TransactionAbortable);
    assert_eq!(
        err.code_for(TxnApi::TxnOffsetCommit, 3),
        KafkaError::InvalidTxnState.code()
    );
    assert!(t.s().offsets().pending(GROUP).expect("pending").is_empty());
    // A stale epoch is fenced.
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add");
    let stale = pe(p.producer_id.0, p.producer_epoch.0 - 1);
    let answers = t.s().offsets().txn_commit(&txn_commit(stale, &[(&a, 1)]));
    let fenced = answers[0].as_ref().expect_err("fenced");
    assert_eq!(fenced.kafka_error(), KafkaError::ProducerFenced);
    // Answered as Kafka answers a verification's fencing, at every version.
    for version in 0..=3 {
        assert_eq!(
            fenced.code_for(TxnApi::TxnOffsetCommit, version),
            KafkaError::InvalidProducerEpoch.code(),
            "v{version}"
        );
    }
    // With TV2 the offsets partition is added implicitly.
    let q = t
        .txns()
        .init_producer_id(Some("tv2"), 60_000, None)
        .expect("init");
    let mut c = txn_commit(q, &[(&a, 9)]);
    c.transactional_id = "tv2";
    c.tv = TxnVersion::TV2;
    ok(t.s().offsets().txn_commit(&c));
    t.txns().end_txn("tv2", q, true, TxnVersion::TV2).expect("commit");
    assert_eq!(fetched(&t, &a, true), Ok(Some(9)));
}

#[test]
fn commits_are_checked_against_the_group() {
    let (t, p, a, _) = setup();
    // test_consumer_group_transactional_offset_commit_with_unknown_group_id
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add");
    let mut c = txn_commit(p, &[(&a, 1)]);
    c.commit.generation_id = 1;
    c.commit.member_id = "m";
    let err = t
        .s()
        .offsets()
        .txn_commit(&c)
        .remove(0)
        .expect_err("unknown group");
    assert_eq!(err.kafka_error(), KafkaError::IllegalGeneration);
    let membership = GroupMembership {
        generation: 4,
        members: vec![GroupMember {
            member_id: "m".into(),
            instance_id: None,
        }],
        state: GroupState::Stable,
        protocol_type: "consumer".into(),
        subscribed_topics: None,
    };
    t.s()
        .offsets()
        .set_group_membership(GROUP, membership)
        .expect("membership");
    c.commit.generation_id = 4;
    ok(t.s().offsets().txn_commit(&c));
    let mut wrong = plain(&[(&a, 2)]);
    wrong.generation_id = 3;
    wrong.member_id = "m";
    let err = t.s().offsets().commit(&wrong).remove(0).expect_err("generation");
    assert_eq!(err.kafka_error(), KafkaError::IllegalGeneration);
    wrong.generation_id = 4;
    wrong.member_id = "stranger";
    let err = t.s().offsets().commit(&wrong).remove(0).expect_err("member");
    assert_eq!(err.kafka_error(), KafkaError::UnknownMemberId);
    // Metadata over offset.metadata.max.bytes is refused for that partition only.
    let big = "x".repeat(5000);
    let mut c = plain(&[(&a, 3), (&tp("in", 1), 4)]);
    c.generation_id = 4;
    c.member_id = "m";
    c.offsets[0].metadata = Some(Box::leak(big.into_boxed_str()));
    let answers = t.s().offsets().commit(&c);
    assert_eq!(
        answers[0].as_ref().expect_err("too large").kafka_error(),
        KafkaError::OffsetMetadataTooLarge
    );
    assert!(answers[1].is_ok());
    let err = t
        .s()
        .offsets()
        .commit(&OffsetCommit {
            group_id: "",
            ..plain(&[(&a, 1)])
        })
        .remove(0)
        .expect_err("empty group");
    assert_eq!(err.kafka_error(), KafkaError::InvalidGroupId);
}
