//! Invariant: `Store::topic_configs` reports every config a topic's logs apply, with the
//! value they apply and where it comes from (Kafka's DescribeConfigs): the topic's own
//! configs, then the store's configuration for every topic, then the built-in default. It
//! says the same after a reopen, and an unknown topic is Kafka's UNKNOWN_TOPIC_OR_PARTITION (an invalid name,
//! INVALID_TOPIC_EXCEPTION).

mod common;

use common::TestStore;
use eoslog::{ConfigSource, KafkaError, StoreError, TopicConfigEntry, CONFIG_KEYS, CONSUMER_OFFSETS_TOPIC};

fn entry<'a>(entries: &'a [TopicConfigEntry], name: &str) -> &'a TopicConfigEntry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

fn check(t: &TestStore) {
    let entries = t.s().topic_configs("orders").expect("configs");
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    assert_eq!(names, CONFIG_KEYS, "every key, in CONFIG_KEYS order");

    let policy = entry(&entries, "cleanup.policy");
    assert_eq!(
        (policy.value.as_str(), policy.source),
        ("compact", ConfigSource::Topic)
    );
    let d = policy.store_default.as_ref().expect("log.cleanup.policy");
    assert_eq!(
        (d.key, d.value.as_str(), d.unconfigured.as_str()),
        ("log.cleanup.policy", "delete", "delete")
    );

    let segment = entry(&entries, "segment.bytes");
    assert_eq!(
        (segment.value.as_str(), segment.source),
        ("1048576", ConfigSource::Store)
    );
    let d = segment.store_default.as_ref().expect("log.segment.bytes");
    assert_eq!(
        (d.key, d.value.as_str(), d.unconfigured.as_str()),
        ("log.segment.bytes", "1048576", "1073741824")
    );

    let retention = entry(&entries, "retention.ms");
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("604800000", ConfigSource::Default)
    );

    // Set for every topic by the store, under another name.
    let verification = entry(&entries, "eoslog.transaction.verification");
    assert_eq!(
        (verification.value.as_str(), verification.source),
        ("false", ConfigSource::Store)
    );
    assert_eq!(
        verification.store_default.as_ref().map(|d| d.key),
        Some("transaction.partition.verification.enable")
    );

    // What each entry reports is what the topic's logs apply.
    let log = t.s().partition("orders", 0).expect("partition");
    assert_eq!(log.config().segment_bytes, 1 << 20);
    assert!(log.config().cleanup_policy.compact && !log.config().cleanup_policy.delete);

    // The internal topics carry their own configs, as Kafka creates them.
    let offsets = t
        .s()
        .topic_configs(CONSUMER_OFFSETS_TOPIC)
        .expect("offsets topic");
    assert_eq!(entry(&offsets, "cleanup.policy").source, ConfigSource::Topic);
    let durability = entry(&offsets, "eoslog.durability");
    assert_eq!(
        durability.store_default.as_ref().map(|d| d.key),
        Some("eoslog.internal.durability")
    );
    assert_eq!(
        (durability.value.as_str(), durability.source),
        ("sync", ConfigSource::Default)
    );
}

#[test]
fn each_config_has_its_applied_value_and_source_across_a_reopen() {
    let mut t = TestStore::new(&[
        ("log.segment.bytes", "1048576"),
        ("transaction.partition.verification.enable", "false"),
    ]);
    t.s()
        .create_topic("orders", 2, &[("cleanup.policy", "compact")])
        .expect("topic");
    check(&t);
    t.reopen();
    check(&t);
}

#[test]
fn unknown_and_invalid_names_get_kafkas_codes() {
    let t = TestStore::new(&[]);
    let err = t.s().topic_configs("nope").expect_err("unknown");
    assert!(matches!(err, StoreError::UnknownTopic { .. }), "{err:?}");
    assert_eq!(err.kafka_error(), KafkaError::UnknownTopicOrPartition);
    // A config the store decides for every topic is refused, not silently overridden.
    let err = t
        .s()
        .create_topic("v", 1, &[("eoslog.transaction.verification", "false")])
        .expect_err("store-decided config");
    assert_eq!(err.kafka_error(), KafkaError::InvalidConfig, "{err:?}");
    assert!(t
        .s()
        .check_topic_configs("v", &[("eoslog.transaction.verification", "true")])
        .is_err());
    let err = t.s().topic_configs("no/such").expect_err("invalid");
    assert!(matches!(err, StoreError::InvalidTopic { .. }), "{err:?}");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTopicException);
}
