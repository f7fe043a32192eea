//! Invariant: DeleteGroups and OffsetDelete answer with Kafka's codes and remove exactly what
//! Kafka removes. A group with members is NON_EMPTY_GROUP for DeleteGroups; OffsetDelete
//! keeps the offsets of the topics its members subscribe to (read from their consumer
//! protocol subscriptions) and deletes the others; an unknown topic is
//! UNKNOWN_TOPIC_OR_PARTITION. Once Empty, DeleteGroups removes the group and its offsets:
//! DescribeGroups answers Dead, ListGroups omits it, OffsetFetch finds nothing. A group
//! known only by its offsets (a simple consumer's) describes as Empty and deletes the same,
//! also once OffsetDelete removed its last offset.

mod common;

use common::{
    call, commit_offset, commit_offset_to, conn, fetched_offsets, group_state, in_process, join_and_sync,
    leave, listed_groups, s, subscription,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, GroupId, OffsetDeleteRequest, OffsetDeleteResponse,
    TopicName,
};

fn commit_to(b: &str, group: &str, member: &str, generation: i32, topic: &str) {
    assert_eq!(commit_offset_to(b, group, member, generation, topic, 3), 0);
}

fn delete_groups(b: &str, groups: &[&str], version: i16) -> Vec<(String, i16)> {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = groups.iter().map(|g| GroupId(s(g))).collect();
    let resp: DeleteGroupsResponse = call(&mut conn(b), ApiKey::DeleteGroups, version, &r);
    resp.results
        .iter()
        .map(|g| (g.group_id.to_string(), g.error_code))
        .collect()
}

/// OffsetDelete of partition 0 of each topic: the top-level code and each partition's.
fn offset_delete(b: &str, group: &str, topics: &[&str]) -> (i16, Vec<(String, i16)>) {
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = topics
        .iter()
        .map(|t| {
            let mut x = OffsetDeleteRequestTopic::default();
            x.name = TopicName(s(t));
            x.partitions = vec![OffsetDeleteRequestPartition::default()];
            x
        })
        .collect();
    let resp: OffsetDeleteResponse = call(&mut conn(b), ApiKey::OffsetDelete, 0, &r);
    (
        resp.error_code,
        resp.topics
            .iter()
            .map(|t| (t.name.to_string(), t.partitions[0].error_code))
            .collect(),
    )
}

#[test]
fn groups_and_offsets_are_deleted_as_kafka_deletes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(
        dir.path(),
        &[
            "group.initial.rebalance.delay.ms=0",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.num.partitions=2",
        ],
        eoslog::LogOptions::default(),
    );
    for t in ["in", "other"] {
        broker.store().create_topic(t, 1, &[]).expect("topic");
    }
    let b = broker.local_addr().to_string();

    let (member, generation) = join_and_sync(&b, "g", subscription(&["in"]));
    commit_to(&b, "g", &member, generation, "in");
    commit_to(&b, "g", &member, generation, "other");
    assert_eq!(
        delete_groups(&b, &["g", "unknown", ""], 1),
        vec![
            ("g".to_owned(), 68),
            ("unknown".to_owned(), 69),
            (String::new(), 69)
        ],
        "NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND (the empty id too, as Kafka answers it)"
    );
    assert_eq!(
        offset_delete(&b, "g", &["in", "other", "nosuch"]),
        (
            0,
            vec![
                ("in".to_owned(), 86),
                ("other".to_owned(), 0),
                ("nosuch".to_owned(), 3)
            ]
        ),
        "GROUP_SUBSCRIBED_TO_TOPIC, deleted, UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(fetched_offsets(&b, "g", &["in", "other"]), vec![3, -1]);
    assert_eq!(offset_delete(&b, "missing", &["in"]).0, 69);

    leave(&b, "g", &member);
    assert_eq!(group_state(&b, "g"), "Empty");
    assert_eq!(delete_groups(&b, &["g"], 2), vec![("g".to_owned(), 0)]);
    assert_eq!(group_state(&b, "g"), "Dead");
    assert_eq!(fetched_offsets(&b, "g", &["in"]), vec![-1]);
    assert!(broker.store().offsets().stored_groups().is_empty());

    // A simple consumer's group: known by its offsets alone.
    assert_eq!(commit_offset(&b, "simple", "", -1, 9), 0);
    assert_eq!(group_state(&b, "simple"), "Empty");
    assert_eq!(listed_groups(&b), vec!["simple".to_owned()]);
    assert_eq!(delete_groups(&b, &["simple"], 0), vec![("simple".to_owned(), 0)]);
    assert_eq!(group_state(&b, "simple"), "Dead");
    assert!(listed_groups(&b).is_empty());

    // One whose offsets OffsetDelete removed lives on, Empty, until DeleteGroups (or the
    // next retention sweep), as Kafka keeps its empty classic group until its next cleanup.
    assert_eq!(commit_offset(&b, "simple", "", -1, 9), 0);
    assert_eq!(
        offset_delete(&b, "simple", &["in"]),
        (0, vec![("in".to_owned(), 0)])
    );
    assert_eq!(fetched_offsets(&b, "simple", &["in"]), vec![-1]);
    assert_eq!(group_state(&b, "simple"), "Empty");
    assert_eq!(listed_groups(&b), vec!["simple".to_owned()]);
    assert_eq!(delete_groups(&b, &["simple"], 0), vec![("simple".to_owned(), 0)]);
    assert_eq!(group_state(&b, "simple"), "Dead");
    rt.block_on(broker.shutdown()).expect("shutdown");
}
