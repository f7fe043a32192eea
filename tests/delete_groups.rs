//! Invariant: DeleteGroups and OffsetDelete remove exactly what Kafka's coordinator
//! removes, with its error codes, and durably (tombstones: a reopened store agrees).
//! DeleteGroups: an unknown group is GROUP_ID_NOT_FOUND, a group with members
//! NON_EMPTY_GROUP; an Empty group loses every offset (pending ones of an open transaction
//! too, which its later COMMIT does not bring back) and its stored record. OffsetDelete:
//! an Empty group loses the offsets asked for and keeps the others; a consumer group with
//! members keeps those of the topics it subscribes to (GROUP_SUBSCRIBED_TO_TOPIC) and loses
//! the others; a group with members whose subscriptions are unknown is NON_EMPTY_GROUP.
//! Scenarios of Kafka's `GroupCoordinatorTest` (`testDeleteGroups`,
//! `testDeleteNonEmptyGroup`, `testDeleteOffsetOfEmptyGroup`,
//! `testDeleteOffsetOfStableConsumerGroup`, `testDeleteOffsetOfNonConsumerGroupWithMembers`).

mod common;

use common::{commit_offsets, committed_offsets, open_txn_with_offset, tp, TestStore};
use eoslog::{
    CoordinatorError, GroupMember, GroupMembership, GroupMetadataValue, GroupState, KafkaError,
    TopicPartition, TxnVersion,
};

const GROUP: &str = "grp";

fn store() -> TestStore {
    let t = TestStore::new(&[]);
    t.s().create_topic("in", 2, &[]).expect("topic");
    t.s().create_topic("other", 2, &[]).expect("topic");
    t
}

fn commit(t: &TestStore, generation: i32, member: &str, parts: &[(&str, i32, i64)]) {
    commit_offsets(t, GROUP, generation, member, parts);
}

fn committed(t: &TestStore) -> Vec<(TopicPartition, i64)> {
    committed_offsets(t, GROUP)
}

fn with_members(protocol_type: &str, topics: Option<&[&str]>) -> GroupMembership {
    GroupMembership {
        generation: 2,
        members: vec![GroupMember {
            member_id: "m1".into(),
            instance_id: None,
        }],
        state: GroupState::Stable,
        protocol_type: protocol_type.into(),
        subscribed_topics: topics.map(|ts| ts.iter().map(|s| (*s).to_owned()).collect()),
    }
}

fn empty_membership() -> GroupMembership {
    GroupMembership {
        generation: 3,
        members: Vec::new(),
        state: GroupState::Empty,
        protocol_type: String::new(),
        subscribed_topics: None,
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, CoordinatorError>) -> KafkaError {
    r.expect_err("refused").kafka_error()
}

#[test]
fn test_delete_groups() {
    let mut t = store();
    let offsets = t.s().offsets();
    // Kafka accepts the empty id in DeleteGroups: no such group.
    assert_eq!(code(offsets.delete_group("")), KafkaError::GroupIdNotFound);
    assert_eq!(code(offsets.delete_group(GROUP)), KafkaError::GroupIdNotFound);

    // testDeleteNonEmptyGroup.
    offsets
        .set_group_membership(GROUP, with_members("consumer", Some(&["in"])))
        .expect("membership");
    commit(&t, 2, "m1", &[("in", 0, 5), ("in", 1, 6)]);
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::NonEmptyGroup
    );
    assert_eq!(committed(&t).len(), 2, "nothing removed");

    // The group empties and is stored so; an open transaction holds an offset of it.
    let offsets = t.s().offsets();
    offsets
        .set_group_membership(GROUP, empty_membership())
        .expect("membership");
    let record = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: None,
        leader: None,
        current_state_timestamp: 1,
        members: Vec::new(),
    };
    offsets.store_group(GROUP, Some(&record)).expect("store");
    let p = open_txn_with_offset(&t, "txn", GROUP, tp("other", 0), 50);
    t.s().offsets().delete_group(GROUP).expect("deleted");
    assert!(committed(&t).is_empty());
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::GroupIdNotFound,
        "the open transaction no longer holds an offset of the group"
    );
    assert!(t.s().offsets().stored_groups().is_empty());
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert!(
        committed(&t).is_empty(),
        "the deleted pending offset does not come back"
    );
    assert!(!t.s().offsets().groups().contains(&GROUP.to_owned()));
    t.crash();
    assert!(committed(&t).is_empty() && t.s().offsets().stored_groups().is_empty());
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::GroupIdNotFound
    );
}

#[test]
fn test_delete_offset_of_empty_group() {
    let mut t = store();
    commit(&t, -1, "", &[("in", 0, 5), ("in", 1, 6), ("other", 0, 7)]);
    let answers = t
        .s()
        .offsets()
        .delete_offsets(GROUP, &[tp("in", 0), tp("other", 1), tp("in", 0)])
        .expect("deleted");
    assert_eq!(answers.len(), 3);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let want = vec![(tp("in", 1), 6), (tp("other", 0), 7)];
    assert_eq!(committed(&t), want);
    t.reopen();
    assert_eq!(committed(&t), want, "the tombstone was written");
    assert_eq!(
        code(t.s().offsets().delete_offsets("nobody", &[tp("in", 0)])),
        KafkaError::GroupIdNotFound
    );
}

/// A simple consumer commits `offset` of `in`'s `partition` (generation -1), then
/// OffsetDelete removes it: the group's only offset.
fn empty_simple_group(t: &TestStore, partition: i32, offset: i64) {
    commit(t, -1, "", &[("in", partition, offset)]);
    t.s()
        .offsets()
        .delete_offsets(GROUP, &[tp("in", partition)])
        .expect("deleted");
}

fn listed(t: &TestStore) -> bool {
    t.s().offsets().groups().contains(&GROUP.to_owned())
}

/// A simple consumer's group (offsets committed with generation -1, no member, no stored
/// record) whose every offset OffsetDelete removed still exists, Empty, until the next
/// retention sweep deletes it, as Kafka's coordinator keeps such an empty classic group
/// until its next cleanup: DeleteGroups answers NONE for it and ListGroups lists it. A
/// reopened store knows it too (Kafka's replay re-creates it from its commit record), and
/// forgets it once deleted.
#[test]
fn a_simple_consumer_group_emptied_by_offset_delete_lives_until_the_next_sweep() {
    let mut t = store();
    empty_simple_group(&t, 0, 5);
    assert!(committed(&t).is_empty());
    assert!(listed(&t) && t.s().offsets().knows_group(GROUP), "still known");
    t.reopen();
    assert!(
        listed(&t) && t.s().offsets().knows_group(GROUP),
        "known after a reopen"
    );
    t.crash();
    assert!(listed(&t), "known after a crash");
    t.s()
        .offsets()
        .delete_group(GROUP)
        .expect("DeleteGroups answers NONE");
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::GroupIdNotFound
    );
    assert!(!listed(&t));

    // Emptied again; this time the sweep deletes it.
    empty_simple_group(&t, 1, 6);
    assert!(listed(&t));
    let swept = t.s().offsets().remove_expired();
    assert_eq!(swept.deleted_groups, vec![(GROUP.to_owned(), -1)]);
    assert!(!listed(&t) && !t.s().offsets().knows_group(GROUP));
    t.reopen();
    assert!(
        !listed(&t),
        "the sweep's group tombstone deletes it for a reopened store too"
    );
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::GroupIdNotFound
    );

    // Emptied once more; a group tombstone the broker stores deletes it too, live as after
    // a reopen.
    empty_simple_group(&t, 0, 8);
    assert!(listed(&t));
    t.s().offsets().store_group(GROUP, None).expect("tombstone");
    assert!(!listed(&t), "the group tombstone deletes it");
    t.reopen();
    assert!(!listed(&t));
}

/// A group known only by the offsets a transaction holds pending (a simple consumer's, or
/// a stream processor's before its first commit) outlives that transaction's abort, Empty,
/// until the next sweep: Kafka's coordinator created the simple group when it applied the
/// TxnOffsetCommit and keeps it until its cleanup. The same after a reopen, where the
/// abort marker is replayed.
#[test]
fn a_group_known_only_by_an_aborted_transactions_offsets_lives_until_the_next_sweep() {
    let mut t = store();
    let p = open_txn_with_offset(&t, "txn", GROUP, tp("in", 0), 9);
    assert!(listed(&t), "known by its pending offset");
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("abort");
    assert!(committed(&t).is_empty(), "the aborted offset is dropped");
    assert!(
        t.s().offsets().pending(GROUP).expect("pending").is_empty(),
        "the abort reached the offsets partition"
    );
    assert!(
        listed(&t) && t.s().offsets().knows_group(GROUP),
        "the group outlives the abort"
    );
    t.reopen();
    assert!(listed(&t), "and a reopen, which replays the abort");
    assert!(committed(&t).is_empty());
    let swept = t.s().offsets().remove_expired();
    assert_eq!(swept.deleted_groups, vec![(GROUP.to_owned(), -1)]);
    t.reopen();
    assert!(!listed(&t) && !t.s().offsets().knows_group(GROUP));
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::GroupIdNotFound
    );
}

#[test]
fn test_delete_offset_of_stable_consumer_group() {
    let t = store();
    t.s()
        .offsets()
        .set_group_membership(GROUP, with_members("consumer", Some(&["in"])))
        .expect("membership");
    commit(&t, 2, "m1", &[("in", 0, 5), ("other", 0, 7), ("other", 1, 8)]);
    let answers = t
        .s()
        .offsets()
        .delete_offsets(GROUP, &[tp("in", 0), tp("other", 0)])
        .expect("answered");
    assert_eq!(
        answers
            .iter()
            .map(|a| a.as_ref().err().map(CoordinatorError::kafka_error))
            .collect::<Vec<_>>(),
        vec![Some(KafkaError::GroupSubscribedToTopic), None]
    );
    assert_eq!(committed(&t), vec![(tp("in", 0), 5), (tp("other", 1), 8)]);
}

#[test]
fn test_delete_offset_of_group_with_members_and_unknown_subscriptions() {
    // A consumer group whose subscriptions are not known counts as subscribed to every
    // topic (Kafka's `isSubscribedToTopic`); a group of another protocol type with members
    // is NON_EMPTY_GROUP.
    let t = store();
    let offsets = t.s().offsets();
    offsets
        .set_group_membership(GROUP, with_members("consumer", None))
        .expect("membership");
    commit(&t, 2, "m1", &[("other", 0, 7)]);
    let answers = t
        .s()
        .offsets()
        .delete_offsets(GROUP, &[tp("other", 0)])
        .expect("answered");
    assert_eq!(
        answers[0].as_ref().map_err(CoordinatorError::kafka_error),
        Err(KafkaError::GroupSubscribedToTopic)
    );
    t.s()
        .offsets()
        .set_group_membership(GROUP, with_members("connect", None))
        .expect("membership");
    assert_eq!(
        code(t.s().offsets().delete_offsets(GROUP, &[tp("other", 0)])),
        KafkaError::NonEmptyGroup
    );
    assert_eq!(committed(&t).len(), 1);
}

#[test]
fn a_group_being_joined_is_not_empty() {
    // The first member is joining an Empty group (PreparingRebalance): DeleteGroups is
    // refused, and OffsetDelete keeps the offsets of every topic until subscriptions are known.
    let t = store();
    commit(&t, -1, "", &[("in", 0, 5)]);
    let mut joining = with_members("consumer", None);
    joining.state = GroupState::PreparingRebalance;
    t.s()
        .offsets()
        .set_group_membership(GROUP, joining)
        .expect("membership");
    assert_eq!(
        code(t.s().offsets().delete_group(GROUP)),
        KafkaError::NonEmptyGroup
    );
    let answers = t
        .s()
        .offsets()
        .delete_offsets(GROUP, &[tp("in", 0)])
        .expect("answered");
    assert!(answers[0].is_err());
    assert_eq!(committed(&t), vec![(tp("in", 0), 5)]);
}
