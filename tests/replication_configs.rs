//! Invariant: the topic configs that only a replicating broker acts on are taken, kept and
//! shown as Kafka takes them, and change nothing a one-replica store does:
//! `unclean.leader.election.enable` (a boolean in either case, with its broker default), the
//! leader and follower `replication.throttled.replicas` lists (`*` or `partition:broker`
//! pairs, empty items allowed, Kafka's validator and message; APPEND and SUBTRACT apply),
//! and `remote.storage.enable`, which takes `false` and refuses `true` with Kafka's reason
//! where tiered storage is off. Every produce is
//! stored whatever they say, and the values survive a reopen.

mod common;
use common::*;

use eoslog::{ConfigError, ConfigSource, ProduceContext, StoreError, TopicConfigOp};

fn refused_reason(result: Result<(), StoreError>) -> &'static str {
    match result {
        Err(StoreError::Config(ConfigError::InvalidValue { reason, .. })) => reason,
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn replication_configs_are_kept_and_shown_and_change_nothing() {
    let mut t = TestStore::new(&[("unclean.leader.election.enable", "true")]);
    t.s()
        .create_topic(
            "t",
            1,
            &[
                ("unclean.leader.election.enable", "false"),
                ("leader.replication.throttled.replicas", " 0:1 , 0:2 "),
                ("follower.replication.throttled.replicas", "*"),
                ("remote.storage.enable", "false"),
            ],
        )
        .expect("topic");
    t.s().create_topic("d", 1, &[]).expect("topic");
    for topic in ["t", "d"] {
        appended(
            t.s()
                .produce(topic, 0, &plain(&["v"]), &ProduceContext::default())
                .expect("produce"),
        );
    }
    t.reopen();
    assert_eq!(
        t.described("t", "unclean.leader.election.enable"),
        ("false".to_owned(), ConfigSource::Topic)
    );
    assert_eq!(
        t.described("d", "unclean.leader.election.enable"),
        ("true".to_owned(), ConfigSource::Store),
        "the store's default"
    );
    assert_eq!(
        t.described("t", "leader.replication.throttled.replicas").0,
        " 0:1 , 0:2 ",
        "the topic's own value as given"
    );
    let log = t.s().partition("t", 0).expect("partition");
    assert_eq!(log.config().leader_replication_throttled_replicas, "0:1,0:2");
    assert_eq!(log.config().follower_replication_throttled_replicas, "*");
    assert!(!log.config().unclean_leader_election_enable);
    assert_eq!(t.described("d", "remote.storage.enable").0, "false");

    // The lists take APPEND and SUBTRACT.
    let op = |items| TopicConfigOp::Append {
        key: "leader.replication.throttled.replicas",
        items,
    };
    t.s()
        .alter_topic_configs("t", &[op("1:0,0:1")], false)
        .expect("append");
    assert_eq!(log.config().leader_replication_throttled_replicas, "0:1,0:2,1:0");
    t.s()
        .alter_topic_configs(
            "t",
            &[TopicConfigOp::Subtract {
                key: "leader.replication.throttled.replicas",
                items: "0:2",
            }],
            false,
        )
        .expect("subtract");
    assert_eq!(log.config().leader_replication_throttled_replicas, "0:1,1:0");
    appended(
        t.s()
            .produce("t", 0, &plain(&["w"]), &ProduceContext::default())
            .expect("produce"),
    );
}

#[test]
fn bad_values_are_refused_as_kafka_refuses_them() {
    let t = TestStore::new(&[]);
    t.s().create_topic("t", 1, &[]).expect("topic");
    let set = |key, value| {
        t.s()
            .alter_topic_configs("t", &[TopicConfigOp::Set { key, value }], false)
    };
    for bad in ["0", "0:x", "0-1", "*,0:1", ":1", "**"] {
        assert_eq!(
            refused_reason(set("follower.replication.throttled.replicas", bad)),
            "follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
            "{bad}"
        );
    }
    // Kafka's list keeps empty items, and its validator takes them.
    for (good, kept) in [("0:1,", "0:1"), ("0:1,,0:2", "0:1,0:2"), ("*,", "*"), ("", "")] {
        set("leader.replication.throttled.replicas", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        let log = t.s().partition("t", 0).expect("partition");
        assert_eq!(log.config().leader_replication_throttled_replicas, kept);
    }
    // Kafka's BOOLEAN takes either case.
    set("unclean.leader.election.enable", "TRUE").expect("either case");
    assert_eq!(
        refused_reason(set("remote.storage.enable", "true")),
        "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
    );
    refused_reason(set("unclean.leader.election.enable", "yes"));
    // Nothing was stored by the refusals.
    assert_eq!(
        t.described("t", "follower.replication.throttled.replicas"),
        (String::new(), ConfigSource::Default)
    );
    assert_eq!(t.described("t", "unclean.leader.election.enable").0, "TRUE");
    assert!(
        t.s()
            .partition("t", 0)
            .expect("partition")
            .config()
            .unclean_leader_election_enable
    );
}
