//! Invariant: committed offsets expire as Kafka's do (`offsets.retention.minutes`, KIP-211)
//! and never earlier: a group with members keeps every offset however old; an Empty group's
//! offsets expire the retention after it became Empty; a simple consumer's each the retention
//! after its own commit; an offset with an explicit expire timestamp (value version 1) then;
//! an offset a transaction still holds pending stays. A group left Empty with no offsets
//! and no pending transaction is deleted (tombstoned). Expiry is written as tombstones, so
//! a reopened store agrees with the one that expired them. Scenarios of Kafka's
//! `GroupMetadataManagerTest` (`testExpireOffset`, `testExpireGroupWithOffsetsOnly`,
//! `testOffsetExpirationSemantics`, `testOffsetExpirationOfActiveGroupSemantics`,
//! `testExpiredOffsetsWithPendingTransactionalOffsets`).

mod common;

use common::{commit_offsets, committed_offsets, tp, txn_offset_commit, TestStore, T0};
use eoslog::{
    GroupMember, GroupMembership, GroupMetadataValue, GroupState, OffsetCommit, PartitionOffset,
    ProducerIdAndEpoch, TopicPartition, TxnVersion,
};

const GROUP: &str = "grp";
const MINUTE: i64 = 60_000;

/// Retention of 10 minutes, checked at every maintenance run.
fn store(extra: &[(&str, &str)]) -> TestStore {
    let mut pairs = vec![
        ("offsets.retention.minutes", "10"),
        ("offsets.retention.check.interval.ms", "1"),
    ];
    pairs.extend_from_slice(extra);
    let t = TestStore::new(&pairs);
    t.s().create_topic("in", 4, &[]).expect("topic");
    t
}

fn commit(t: &TestStore, generation: i32, member: &str, parts: &[(i32, i64)]) {
    let parts: Vec<(&str, i32, i64)> = parts.iter().map(|&(p, o)| ("in", p, o)).collect();
    commit_offsets(t, GROUP, generation, member, &parts);
}

/// The group's committed offsets, by partition of `in`.
fn committed(t: &TestStore) -> Vec<(i32, i64)> {
    committed_offsets(t, GROUP)
        .into_iter()
        .map(|(p, o)| (p.partition, o))
        .collect()
}

/// The names of deleted groups.
fn names(deleted: &[(String, i32)]) -> Vec<String> {
    deleted.iter().map(|(g, _)| g.clone()).collect()
}

fn known(t: &TestStore) -> bool {
    t.s().offsets().groups().contains(&GROUP.to_owned())
}

fn members(generation: i32, ids: &[&str]) -> GroupMembership {
    GroupMembership {
        generation,
        members: ids
            .iter()
            .map(|m| GroupMember {
                member_id: (*m).to_owned(),
                instance_id: None,
            })
            .collect(),
        state: if ids.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        },
        protocol_type: "consumer".into(),
        subscribed_topics: None,
    }
}

fn empty_record(generation: i32, since: i64) -> GroupMetadataValue {
    GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation,
        protocol: None,
        leader: None,
        current_state_timestamp: since,
        members: Vec::new(),
    }
}

#[test]
fn test_expire_offset_of_a_simple_consumer_counts_from_each_commit() {
    let mut t = store(&[]);
    commit(&t, -1, "", &[(0, 5)]);
    t.clock.advance(5 * MINUTE);
    commit(&t, -1, "", &[(1, 7)]);
    t.clock.advance(5 * MINUTE - 1);
    let r = t.s().run_maintenance();
    assert_eq!(r.expired_offsets, 0, "one millisecond short of the retention");
    t.clock.advance(1);
    let r = t.s().run_maintenance();
    assert_eq!(r.expired_offsets, 1, "{r:?}");
    assert!(r.deleted_groups.is_empty(), "an offset is left");
    assert_eq!(committed(&t), vec![(1, 7)]);
    t.reopen();
    assert_eq!(committed(&t), vec![(1, 7)], "the tombstone was written");
    // testExpireGroupWithOffsetsOnly: once the last offset expired the group is deleted.
    t.clock.advance(5 * MINUTE);
    let r = t.s().run_maintenance();
    assert_eq!(
        (r.expired_offsets, names(&r.deleted_groups)),
        (1, vec![GROUP.to_owned()])
    );
    assert!(!known(&t));
    t.crash();
    assert!(committed(&t).is_empty() && !known(&t), "the same after a crash");
}

#[test]
fn test_offsets_of_a_group_with_members_never_expire_and_an_empty_groups_count_from_when_it_emptied() {
    let mut t = store(&[]);
    let offsets = t.s().offsets();
    offsets
        .set_group_membership(GROUP, members(3, &["m1"]))
        .expect("membership");
    commit(&t, 3, "m1", &[(0, 5), (1, 6)]);
    t.clock.advance(7 * 24 * 60 * MINUTE);
    let r = t.s().offsets().remove_expired();
    assert_eq!(r.expired_offsets, 0, "a week old, but the group has a member");
    assert_eq!(committed(&t), vec![(0, 5), (1, 6)]);

    // The member leaves: the broker says the group is Empty, but until the Empty record is
    // stored the group's last record still lists the member, and nothing expires.
    let mut stable = empty_record(3, T0);
    stable.protocol = Some("range".into());
    stable.leader = Some("m1".into());
    stable.members = vec![eoslog::GroupMemberMetadata {
        member_id: "m1".into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 1000,
        session_timeout_ms: 1000,
        subscription: Vec::new(),
        assignment: Vec::new(),
    }];
    let offsets = t.s().offsets();
    offsets.store_group(GROUP, Some(&stable)).expect("store");
    offsets
        .set_group_membership(GROUP, members(4, &[]))
        .expect("membership");
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);

    // Stored Empty now: the offsets, committed a week ago, expire 10 minutes from now.
    let emptied = T0 + 7 * 24 * 60 * MINUTE;
    t.s()
        .offsets()
        .store_group(GROUP, Some(&empty_record(4, emptied)))
        .expect("store");
    t.clock.advance(10 * MINUTE - 1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    // A member comes back and goes again before the retention ran out: it counts again
    // from the new Empty record.
    t.clock.advance(1);
    t.s()
        .offsets()
        .set_group_membership(GROUP, members(5, &["m2"]))
        .expect("membership");
    assert_eq!(
        t.s().offsets().remove_expired().expired_offsets,
        0,
        "a member again"
    );
    t.s()
        .offsets()
        .set_group_membership(GROUP, members(6, &[]))
        .expect("membership");
    t.s()
        .offsets()
        .store_group(GROUP, Some(&empty_record(6, emptied + 10 * MINUTE)))
        .expect("store");
    t.clock.advance(10 * MINUTE - 1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    t.clock.advance(1);
    let r = t.s().offsets().remove_expired();
    assert_eq!(r.expired_offsets, 2);
    assert_eq!(
        r.deleted_groups,
        vec![(GROUP.to_owned(), 6)],
        "with the generation the broker last reported"
    );
    assert!(
        t.s().offsets().stored_groups().is_empty(),
        "the group's record is tombstoned"
    );
    // Forgotten: a commit with generation 6 is now one for a group that does not exist.
    let refused = t.s().offsets().commit(&OffsetCommit {
        group_id: GROUP,
        generation_id: 6,
        member_id: "m2",
        group_instance_id: None,
        retention_ms: None,
        offsets: vec![PartitionOffset {
            partition: tp("in", 0),
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }],
    });
    assert!(refused[0].is_err(), "{refused:?}");
    t.reopen();
    assert!(t.s().offsets().stored_groups().is_empty() && committed(&t).is_empty() && !known(&t));
}

#[test]
fn test_expired_offsets_with_pending_transactional_offsets() {
    let mut t = store(&[]);
    let p: ProducerIdAndEpoch = t
        .txns()
        .init_producer_id(Some("txn"), 900_000, None)
        .expect("init");
    commit(&t, -1, "", &[(0, 5), (1, 6)]);
    t.txns()
        .add_offsets("txn", p, GROUP, TxnVersion::TV0)
        .expect("add offsets");
    let pending = txn_offset_commit("txn", p, GROUP, tp("in", 0), 50);
    for a in t.s().offsets().txn_commit(&pending) {
        a.expect("pending");
    }
    t.clock.advance(10 * MINUTE);
    let r = t.s().offsets().remove_expired();
    assert_eq!(
        r.expired_offsets, 1,
        "partition 1 expires; partition 0 has a pending offset"
    );
    assert!(
        r.deleted_groups.is_empty(),
        "a transaction still holds offsets of the group"
    );
    assert_eq!(committed(&t), vec![(0, 5)]);
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert_eq!(committed(&t), vec![(0, 50)], "the pending offset materialized");
    t.crash();
    assert_eq!(committed(&t), vec![(0, 50)], "and reloads so");
    t.clock.advance(10 * MINUTE);
    let r = t.s().offsets().remove_expired();
    assert_eq!((r.expired_offsets, r.deleted_groups.len()), (1, 1));
}

/// An offset key (version 1) and a value of version 1, which carries an explicit expire
/// timestamp (what OffsetCommit v1 with a retention time wrote in old Kafka).
fn v1_record(partition: i32, offset: i64, commit_ts: i64, expire_ts: i64) -> (Vec<u8>, Vec<u8>) {
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as i16).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    let mut key = 1i16.to_be_bytes().to_vec();
    string(&mut key, GROUP);
    string(&mut key, "in");
    key.extend_from_slice(&partition.to_be_bytes());
    let mut value = 1i16.to_be_bytes().to_vec();
    value.extend_from_slice(&offset.to_be_bytes());
    string(&mut value, "");
    value.extend_from_slice(&commit_ts.to_be_bytes());
    value.extend_from_slice(&expire_ts.to_be_bytes());
    (key, value)
}

#[test]
fn an_explicit_expire_timestamp_is_honoured() {
    let mut t = store(&[]);
    let k = t.s().offsets().partition_for(GROUP);
    let log = t.s().partition("__consumer_offsets", k).expect("offsets log");
    // Expires one minute after its commit, long before the 10-minute retention.
    let (key, value) = v1_record(2, 9, T0, T0 + MINUTE);
    common::append_keyed(&log, &key, Some(&value));
    drop(log);
    t.reopen();
    assert_eq!(committed(&t), vec![(2, 9)]);
    t.clock.advance(MINUTE - 1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    t.clock.advance(1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 1);
    assert!(committed(&t).is_empty());
}

#[test]
fn tombstones_of_many_offsets_are_split_into_batches_within_max_message_bytes() {
    let mut t = store(&[("message.max.bytes", "2048")]);
    t.s().create_topic("wide", 400, &[]).expect("topic");
    let parts: Vec<TopicPartition> = (0..400).map(|p| tp("wide", p)).collect();
    for chunk in parts.chunks(10) {
        let answers = t.s().offsets().commit(&OffsetCommit {
            group_id: GROUP,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            retention_ms: None,
            offsets: chunk
                .iter()
                .map(|p| PartitionOffset {
                    partition: p.clone(),
                    offset: 1,
                    leader_epoch: -1,
                    metadata: None,
                })
                .collect(),
        });
        for a in answers {
            a.expect("committed");
        }
    }
    t.clock.advance(10 * MINUTE);
    let r = t.s().offsets().remove_expired();
    assert_eq!(r.failures, 0, "{r:?}");
    assert_eq!(r.expired_offsets, 400);
    assert_eq!(names(&r.deleted_groups), vec![GROUP.to_owned()]);
    t.crash();
    assert!(!known(&t), "every batch of tombstones reloads");
}

#[test]
fn test_offset_expiration_of_a_stable_consumer_group_spares_its_subscribed_topics() {
    // KIP-496: a Stable consumer group whose subscriptions are known loses, the retention
    // after their commit, the offsets of topics no member subscribes to.
    let t = store(&[]);
    t.s().create_topic("old", 1, &[]).expect("topic");
    let mut m = members(3, &["m1"]);
    m.subscribed_topics = Some(vec!["in".to_owned()]);
    t.s()
        .offsets()
        .set_group_membership(GROUP, m.clone())
        .expect("membership");
    commit(&t, 3, "m1", &[(0, 5)]);
    let answers = t.s().offsets().commit(&OffsetCommit {
        group_id: GROUP,
        generation_id: 3,
        member_id: "m1",
        group_instance_id: None,
        retention_ms: None,
        offsets: vec![PartitionOffset {
            partition: tp("old", 0),
            offset: 9,
            leader_epoch: -1,
            metadata: None,
        }],
    });
    answers.into_iter().for_each(|a| a.expect("committed"));
    // Rebalancing (a member joining, or between join and sync): nothing expires.
    t.clock.advance(10 * MINUTE);
    let mut rebalancing = m.clone();
    rebalancing.state = GroupState::PreparingRebalance;
    t.s()
        .offsets()
        .set_group_membership(GROUP, rebalancing.clone())
        .expect("membership");
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    rebalancing.state = GroupState::CompletingRebalance;
    t.s()
        .offsets()
        .set_group_membership(GROUP, rebalancing)
        .expect("membership");
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    t.s()
        .offsets()
        .set_group_membership(GROUP, m)
        .expect("membership");
    let r = t.s().offsets().remove_expired();
    assert_eq!(r.expired_offsets, 1);
    assert!(r.deleted_groups.is_empty(), "the group has members");
    let left = t.s().offsets().fetch(GROUP, None, false).expect("fetch");
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].0,
        tp("in", 0),
        "the subscribed topic's offset stays however old"
    );
}

#[test]
fn a_sweep_whose_writes_fail_changes_nothing_and_the_next_one_finishes() {
    let switch = std::sync::Arc::new(common::FailSwitch::default());
    let mut t = TestStore::with_fs(
        &[
            ("offsets.retention.minutes", "10"),
            ("offsets.retention.check.interval.ms", "1"),
        ],
        common::switched_fs(switch.clone()),
    );
    t.s().create_topic("in", 4, &[]).expect("topic");
    commit(&t, -1, "", &[(0, 5), (1, 6)]);
    t.clock.advance(10 * MINUTE);
    switch.fail(&["__consumer_offsets"]);
    let r = t.s().offsets().remove_expired();
    assert!(r.failures >= 1, "{r:?}");
    assert_eq!((r.expired_offsets, r.deleted_groups.len()), (0, 0), "{r:?}");
    assert_eq!(
        committed(&t),
        vec![(0, 5), (1, 6)],
        "nothing removed in memory either"
    );
    switch.heal();
    // The next maintenance reopens the failed log, then sweeps again.
    let r = t.s().run_maintenance();
    assert_eq!(r.failures, 0, "{r:?}");
    assert_eq!(r.expired_offsets, 2, "{r:?}");
    assert_eq!(names(&r.deleted_groups), vec![GROUP.to_owned()]);
    t.crash();
    assert!(committed(&t).is_empty() && !known(&t));
}

#[test]
fn a_commit_with_a_retention_time_expires_that_long_after_it() {
    // OffsetCommit v2-v4's retention_time_ms: Kafka writes an explicit expire timestamp
    // (value version 1) and the offset expires then, before the broker's retention.
    let mut t = store(&[]);
    let answers = t.s().offsets().commit(&OffsetCommit {
        group_id: GROUP,
        generation_id: -1,
        member_id: "",
        group_instance_id: None,
        retention_ms: Some(MINUTE),
        offsets: vec![PartitionOffset {
            partition: tp("in", 0),
            offset: 4,
            leader_epoch: 9,
            metadata: Some("m"),
        }],
    });
    answers.into_iter().for_each(|a| a.expect("committed"));
    t.reopen();
    let got = t.s().offsets().fetch(GROUP, None, false).expect("fetch");
    let c = got[0].1.as_ref().expect("answer").as_ref().expect("committed");
    assert_eq!(
        (c.offset, c.leader_epoch, c.metadata.as_str()),
        (4, -1, "m"),
        "version 1 has no leader epoch"
    );
    t.clock.advance(MINUTE - 1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 0);
    t.clock.advance(1);
    assert_eq!(t.s().offsets().remove_expired().expired_offsets, 1);
}
