//! Invariant: the topics' defaults change while the store serves (Kafka's dynamic broker
//! configs). A value set for the cluster, or for the node over it, reaches every open log
//! of every topic without its own value before the call returns, and every topic created
//! after; a topic's own value still wins; a DELETE gives the layer below back; the layers
//! survive a crash and a reopen; a change is all or none (a failed write of its file
//! included), `validate_only` changes nothing, and a key that is not a topic default, or
//! compaction lags that conflict, are refused. DescribeConfigs' sources follow.

mod common;
use common::*;

use std::sync::Arc;

use eoslog::{ConfigError, ConfigSource, DynamicScope, StoreError, TopicConfigOp};

fn set<'a>(key: &'a str, value: &'a str) -> TopicConfigOp<'a> {
    TopicConfigOp::Set { key, value }
}

/// The retention a topic's partition 0 applies now, as its open log reads it.
fn retention(t: &TestStore, topic: &str) -> i64 {
    t.s()
        .partition(topic, 0)
        .expect("partition")
        .config()
        .retention_ms
}

#[test]
fn a_layer_reaches_open_logs_without_their_own_value_and_new_topics() {
    let t = TestStore::new(&[("log.retention.ms", "100000")]);
    t.s().create_topic("a", 1, &[]).expect("a");
    t.s()
        .create_topic("own", 1, &[("retention.ms", "1000")])
        .expect("own");
    assert_eq!((retention(&t, "a"), retention(&t, "own")), (100_000, 1000));
    assert_eq!(t.described("a", "retention.ms").1, ConfigSource::Store);

    t.s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "5000")], false)
        .expect("cluster");
    assert_eq!((retention(&t, "a"), retention(&t, "own")), (5000, 1000));
    assert_eq!(
        t.described("a", "retention.ms"),
        ("5000".into(), ConfigSource::DynamicCluster)
    );
    assert_eq!(t.described("own", "retention.ms").1, ConfigSource::Topic);
    t.s().create_topic("later", 1, &[]).expect("later");
    assert_eq!(retention(&t, "later"), 5000);

    t.s()
        .alter_dynamic_defaults(DynamicScope::Node, &[set("log.retention.ms", "7000")], false)
        .expect("node");
    assert_eq!(retention(&t, "a"), 7000, "the node's over the cluster's");
    let e = t
        .s()
        .topic_configs("a")
        .expect("configs")
        .into_iter()
        .find(|e| e.name == "retention.ms")
        .expect("key");
    assert_eq!(e.source, ConfigSource::DynamicNode);
    let d = e.store_default.expect("behind it");
    assert_eq!(
        (
            d.key,
            d.node.as_deref(),
            d.cluster.as_deref(),
            d.configured.as_str()
        ),
        ("log.retention.ms", Some("7000"), Some("5000"), "100000")
    );

    t.s()
        .alter_dynamic_defaults(
            DynamicScope::Node,
            &[TopicConfigOp::Delete {
                key: "log.retention.ms",
            }],
            false,
        )
        .expect("delete node");
    assert_eq!(retention(&t, "a"), 5000);
    t.s()
        .replace_dynamic_defaults(DynamicScope::Cluster, &[], false)
        .expect("replace cluster");
    assert_eq!(retention(&t, "a"), 100_000, "the store's own again");
    assert!(t.s().dynamic_defaults(DynamicScope::Cluster).is_empty());
}

#[test]
fn layers_survive_a_crash_and_a_reopen() {
    let mut t = TestStore::new(&[]);
    t.s().create_topic("a", 1, &[]).expect("a");
    t.s()
        .alter_dynamic_defaults(
            DynamicScope::Cluster,
            &[
                set("log.retention.ms", "5000"),
                TopicConfigOp::Append {
                    key: "log.cleanup.policy",
                    items: "compact",
                },
            ],
            false,
        )
        .expect("cluster");
    t.s()
        .alter_dynamic_defaults(DynamicScope::Node, &[set("message.max.bytes", "2000")], false)
        .expect("node");
    for round in ["crash", "reopen"] {
        if round == "crash" {
            t.crash();
        } else {
            t.reopen();
        }
        assert_eq!(
            t.s().dynamic_defaults(DynamicScope::Cluster),
            vec![
                ("log.retention.ms", "5000".to_owned()),
                ("log.cleanup.policy", "delete,compact".to_owned())
            ],
            "{round}"
        );
        assert_eq!(
            t.s().dynamic_defaults(DynamicScope::Node),
            vec![("message.max.bytes", "2000".to_owned())]
        );
        let c = t.s().partition("a", 0).expect("a").config();
        assert_eq!(
            (c.retention_ms, c.cleanup_policy.compact, c.max_message_bytes),
            (5000, true, 2000),
            "{round}"
        );
    }
}

#[test]
fn a_refused_change_or_a_validation_changes_nothing() {
    let t = TestStore::new(&[]);
    t.s().create_topic("a", 1, &[]).expect("a");
    let before = retention(&t, "a");
    // A broker config that is not a topic default, after a good op: nothing applies.
    let err = t
        .s()
        .alter_dynamic_defaults(
            DynamicScope::Cluster,
            &[set("log.retention.ms", "5000"), set("num.partitions", "3")],
            false,
        )
        .expect_err("not a topic default");
    assert!(
        matches!(err, StoreError::Config(ConfigError::UnknownKey { .. })),
        "{err:?}"
    );
    let err = t
        .s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "soon")], false)
        .expect_err("bad value");
    assert!(
        matches!(err, StoreError::Config(ConfigError::InvalidValue { .. })),
        "{err:?}"
    );
    t.s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "5000")], true)
        .expect("validate only");
    assert_eq!(retention(&t, "a"), before);
    assert!(t.s().dynamic_defaults(DynamicScope::Cluster).is_empty());
    assert!(!t.dir.path().join(eoslog::DYNAMIC_CONFIGS_FILE).exists());
    assert!(eoslog::is_dynamic_default("log.segment.bytes"));
    assert!(!eoslog::is_dynamic_default("num.partitions"));
}

#[test]
fn conflicting_lags_and_a_failed_write_change_nothing() {
    let switch = Arc::new(FailSwitch::default());
    let t = TestStore::with_fs(&[], switched_fs(switch.clone()));
    t.s().create_topic("a", 1, &[]).expect("a");
    let err = t
        .s()
        .alter_dynamic_defaults(
            DynamicScope::Cluster,
            &[
                set("log.cleaner.max.compaction.lag.ms", "1000"),
                set("log.cleaner.min.compaction.lag.ms", "2000"),
            ],
            false,
        )
        .expect_err("min above max");
    assert!(
        matches!(&err, StoreError::Config(ConfigError::InvalidValue { key, .. }) if key == "log.cleaner.min.compaction.lag.ms"),
        "{err:?}"
    );
    // The error names the key as the caller gave it.
    let err = t
        .s()
        .alter_dynamic_defaults(DynamicScope::Node, &[set("log.retention.ms", "soon")], false)
        .expect_err("bad value");
    assert!(
        matches!(&err, StoreError::Config(ConfigError::InvalidValue { key, .. }) if key == "log.retention.ms"),
        "{err:?}"
    );
    switch.fail(&["dynamic-configs"]);
    let err = t
        .s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "5000")], false)
        .expect_err("the file's write fails");
    assert!(matches!(err, StoreError::Storage(_)), "{err:?}");
    switch.heal();
    assert_ne!(retention(&t, "a"), 5000, "no log took it");
    assert!(t.s().dynamic_defaults(DynamicScope::Cluster).is_empty());
    t.s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "5000")], false)
        .expect("healed");
    assert_eq!(retention(&t, "a"), 5000);
}
