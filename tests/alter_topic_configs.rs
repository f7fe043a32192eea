//! Invariant: a topic's configs change while its partitions are open (Kafka's
//! IncrementalAlterConfigs and AlterConfigs): the change is in the topic's file before the
//! call returns, survives a reopen, and every log of the topic applies it from its next
//! operation without being reopened, a log open before the change and one opened after it
//! alike. A change is applied whole or not at all: a refused one (an unknown key, a bad
//! value, a list operation on a key that is not a list, a fixed key, an internal or unknown
//! topic) and a `validate_only` one leave the file, the described configs and the open logs
//! as they were.

mod common;

use common::{appended, plain, TestStore};
use eoslog::{
    AppendError, AppendOrigin, ConfigError, ConfigSource, KafkaError, Store, StoreError, TopicConfigOp,
    CONSUMER_OFFSETS_TOPIC,
};

/// The value topic `name` describes for `key`, and where it comes from.
fn described(s: &Store, name: &str, key: &str) -> (String, ConfigSource) {
    let e = s
        .topic_configs(name)
        .expect("configs")
        .into_iter()
        .find(|e| e.name == key)
        .unwrap_or_else(|| panic!("{key} missing"));
    (e.value, e.source)
}

/// The topic's own configs as the store lists them.
fn own(s: &Store, name: &str) -> Vec<(String, String)> {
    s.topics()
        .into_iter()
        .find(|t| t.name == name)
        .expect("topic")
        .configs
}

/// Whether a refusal is the one a case expects.
type Expected = fn(&StoreError) -> bool;

fn set<'a>(key: &'a str, value: &'a str) -> TopicConfigOp<'a> {
    TopicConfigOp::Set { key, value }
}

#[test]
fn a_change_applies_to_an_open_log_at_once_and_survives_a_reopen() {
    let mut t = TestStore::new(&[]);
    t.s().create_topic("orders", 2, &[]).expect("create");
    let log = t.s().partition("orders", 0).expect("open");
    let big = plain(&[&"x".repeat(2000)]);
    appended(log.append(&big, AppendOrigin::Client).expect("append"));

    t.s()
        .alter_topic_configs(
            "orders",
            &[set("max.message.bytes", "1000"), set("segment.bytes", "4096")],
            false,
        )
        .expect("alter");
    // The log opened before the change refuses what it accepted a moment ago.
    match log.append(&big, AppendOrigin::Client) {
        Err(AppendError::MessageTooLarge { max, .. }) => assert_eq!(max, 1000),
        other => panic!("a batch over the new max.message.bytes was {other:?}"),
    }
    assert_eq!(log.config().max_message_bytes, 1000);
    // And rolls at the new segment size.
    let small = plain(&["y"; 20]);
    for _ in 0..40 {
        appended(log.append(&small, AppendOrigin::Client).expect("append"));
    }
    assert!(
        log.segments().len() > 2,
        "rolled at 4096 bytes: {:?}",
        log.segments().len()
    );
    // The partition opened after the change has it from its first append.
    let other = t.s().partition("orders", 1).expect("open");
    assert_eq!(other.config().max_message_bytes, 1000);
    assert_eq!(
        described(t.s(), "orders", "max.message.bytes"),
        ("1000".to_owned(), ConfigSource::Topic)
    );
    drop((log, other));

    t.reopen();
    assert_eq!(
        described(t.s(), "orders", "max.message.bytes"),
        ("1000".to_owned(), ConfigSource::Topic)
    );
    let log = t.s().partition("orders", 0).expect("open");
    assert!(matches!(
        log.append(&big, AppendOrigin::Client),
        Err(AppendError::MessageTooLarge { .. })
    ));
}

#[test]
fn set_delete_append_and_subtract_edit_the_topics_own_configs_as_kafka_does() {
    let t = TestStore::new(&[("log.retention.ms", "3600000")]);
    let s = t.s();
    s.create_topic("t", 1, &[("retention.ms", "1000")])
        .expect("create");
    let log = s.partition("t", 0).expect("open");

    // DELETE: the store's default applies again.
    s.alter_topic_configs("t", &[TopicConfigOp::Delete { key: "retention.ms" }], false)
        .expect("delete");
    assert_eq!(
        described(s, "t", "retention.ms"),
        ("3600000".to_owned(), ConfigSource::Store)
    );
    assert_eq!(log.config().retention_ms, 3_600_000);
    // Of a key the topic has no value of: nothing to do.
    s.alter_topic_configs("t", &[TopicConfigOp::Delete { key: "segment.ms" }], false)
        .expect("delete absent");
    assert!(own(s, "t").is_empty(), "{:?}", own(s, "t"));

    // APPEND starts from the value in force ("delete") and adds what is missing.
    let append = |items| TopicConfigOp::Append {
        key: "cleanup.policy",
        items,
    };
    s.alter_topic_configs("t", &[append("compact,delete")], false)
        .expect("append");
    assert_eq!(
        own(s, "t"),
        [("cleanup.policy".to_owned(), "delete,compact".to_owned())]
    );
    assert!(log.config().cleanup_policy.compact && log.config().cleanup_policy.delete);
    // SUBTRACT removes an item; the ops of one call apply in order.
    s.alter_topic_configs(
        "t",
        &[
            TopicConfigOp::Subtract {
                key: "cleanup.policy",
                items: "delete",
            },
            set("min.cleanable.dirty.ratio", "0.2"),
        ],
        false,
    )
    .expect("subtract");
    assert_eq!(
        described(s, "t", "cleanup.policy"),
        ("compact".to_owned(), ConfigSource::Topic)
    );
    assert!(log.config().cleanup_policy.compact && !log.config().cleanup_policy.delete);
    assert!((log.config().min_cleanable_dirty_ratio - 0.2).abs() < 1e-9);

    // AlterConfigs replaces: a key it does not name goes back to its default.
    s.replace_topic_configs("t", &[("segment.ms", "60000")], false)
        .expect("replace");
    assert_eq!(own(s, "t"), [("segment.ms".to_owned(), "60000".to_owned())]);
    assert_eq!(
        described(s, "t", "cleanup.policy"),
        ("delete".to_owned(), ConfigSource::Default)
    );
    assert!(!log.config().cleanup_policy.compact);
    assert_eq!(log.config().segment_ms, 60_000);
}

#[test]
fn a_refused_or_validate_only_change_changes_nothing() {
    let t = TestStore::new(&[]);
    let s = t.s();
    s.create_topic("t", 1, &[("retention.ms", "1000")])
        .expect("create");
    let log = s.partition("t", 0).expect("open");
    let file = t.dir.path().join(eoslog::TOPICS_DIR).join("t.topic");
    let before = std::fs::read(&file).expect("topic file");
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read(&file).expect("topic file"),
            before,
            "{what}: the file changed"
        );
        assert_eq!(
            own(s, "t"),
            [("retention.ms".to_owned(), "1000".to_owned())],
            "{what}"
        );
        assert_eq!(log.config().retention_ms, 1000, "{what}: the open log changed");
        assert!(!log.config().cleanup_policy.compact, "{what}");
    };

    // A good op before a bad one is not applied either.
    let cases: Vec<(&str, Vec<TopicConfigOp<'_>>, Expected)> = vec![
        (
            "unknown key",
            vec![set("cleanup.policy", "compact"), set("retention.msx", "1")],
            |e| matches!(e, StoreError::Config(ConfigError::UnknownKey { key }) if key == "retention.msx"),
        ),
        (
            "bad value",
            vec![set("cleanup.policy", "compact"), set("retention.ms", "soon")],
            |e| matches!(e, StoreError::Config(ConfigError::InvalidValue { key, .. }) if key == "retention.ms"),
        ),
        (
            "append to a key that is not a list",
            vec![TopicConfigOp::Append {
                key: "retention.ms",
                items: "5",
            }],
            |e| matches!(e, StoreError::Config(ConfigError::NotAList { key }) if key == "retention.ms"),
        ),
        (
            "a fixed key",
            vec![set("eoslog.high.watermark", "durable")],
            |e| matches!(e, StoreError::Config(ConfigError::InvalidValue { key, .. }) if key == "eoslog.high.watermark"),
        ),
        (
            "the store's key",
            vec![set("eoslog.transaction.verification", "true")],
            |e| matches!(e, StoreError::Config(_)),
        ),
        (
            "a partition's own timeout",
            vec![set("eoslog.transaction.timeout.ms", "1000")],
            |e| matches!(e, StoreError::Config(_)),
        ),
        (
            "conflicting compaction lags",
            vec![
                set("min.compaction.lag.ms", "10"),
                set("max.compaction.lag.ms", "5"),
            ],
            |e| matches!(e, StoreError::Config(ConfigError::InvalidValue { key, .. }) if key == "min.compaction.lag.ms"),
        ),
    ];
    for (what, ops, expected) in cases {
        let e = s.alter_topic_configs("t", &ops, false).expect_err(what);
        assert!(expected(&e), "{what}: {e:?}");
        assert_eq!(e.kafka_error(), KafkaError::InvalidConfig, "{what}");
        unchanged(what);
        // validate_only refuses the same.
        let v = s.alter_topic_configs("t", &ops, true).expect_err(what);
        assert_eq!(format!("{v:?}"), format!("{e:?}"), "{what}");
    }
    s.alter_topic_configs("t", &[set("cleanup.policy", "compact")], true)
        .expect("validate_only accepts a good change");
    unchanged("validate_only");
    s.replace_topic_configs("t", &[], true)
        .expect("validate_only replace");
    unchanged("validate_only replace");

    // A creation checks the lags the same way, as Kafka's `LogConfig.validateValues`.
    let e = s
        .create_topic(
            "lags",
            1,
            &[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")],
        )
        .expect_err("conflicting lags");
    assert_eq!(e.kafka_error(), KafkaError::InvalidConfig);
    let e = s
        .alter_topic_configs("missing", &[set("retention.ms", "1")], false)
        .expect_err("unknown topic");
    assert_eq!(e.kafka_error(), KafkaError::UnknownTopicOrPartition);
    let e = s
        .alter_topic_configs(CONSUMER_OFFSETS_TOPIC, &[set("retention.ms", "1")], false)
        .expect_err("internal topic");
    assert!(matches!(e, StoreError::InvalidTopic { .. }), "{e:?}");
    let e = s
        .alter_topic_configs("bad name", &[set("retention.ms", "1")], false)
        .expect_err("invalid name");
    assert!(matches!(e, StoreError::InvalidTopic { .. }), "{e:?}");
}

#[test]
fn logs_opening_and_closing_during_changes_end_with_the_last_change() {
    // Two partitions may be open at once: the 8 partitions below are opened, closed (least
    // recently used) and reopened while another thread changes the topic's config.
    let t = TestStore::new(&[("eoslog.max.open.partitions", "2")]);
    let s = t.s();
    s.create_topic("t", 8, &[]).expect("create");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..200 {
                let v = (10_000 + i).to_string();
                s.alter_topic_configs("t", &[set("max.message.bytes", &v)], false)
                    .expect("alter");
            }
        });
        scope.spawn(|| {
            for i in 0..2_000 {
                let log = s.partition("t", i % 8).expect("open");
                let max = log.config().max_message_bytes;
                assert!(
                    (1_000_000..=1_100_000).contains(&max) || (10_000..10_200).contains(&max),
                    "{max}"
                );
            }
        });
    });
    for p in 0..8 {
        let log = s.partition("t", p).expect("open");
        assert_eq!(log.config().max_message_bytes, 10_199, "partition {p}");
    }
}

#[test]
fn a_list_op_starts_from_kafkas_default_not_the_stores() {
    // Kafka's controller starts an APPEND to a key the topic has no value of from the
    // config's static default (`delete`), whatever the broker's `log.cleanup.policy`.
    let t = TestStore::new(&[("log.cleanup.policy", "compact")]);
    let s = t.s();
    s.create_topic("c", 1, &[]).expect("create");
    assert_eq!(
        described(s, "c", "cleanup.policy"),
        ("compact".to_owned(), ConfigSource::Store)
    );
    s.alter_topic_configs(
        "c",
        &[TopicConfigOp::Append {
            key: "cleanup.policy",
            items: "compact",
        }],
        false,
    )
    .expect("append");
    assert_eq!(
        own(s, "c"),
        [("cleanup.policy".to_owned(), "delete,compact".to_owned())]
    );
}
