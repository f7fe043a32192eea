//! Invariant: DescribeConfigs answers as Kafka's `ConfigHelper` does, one result per resource
//! in the request's order: a topic's configs with the values its logs apply and their
//! sources (TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG), synonyms only when asked,
//! types only from v3, only the keys asked for when a list is given; the broker's own configs
//! for its id and none for the empty name; UNKNOWN_TOPIC_OR_PARTITION without a message,
//! INVALID_TOPIC_EXCEPTION for a name no topic can have, INVALID_REQUEST for another broker id
//! and for a resource type it does not describe. A topic's configs are alterable but for the
//! two the store fixes; the broker's are read-only.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn resource(kind: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
    let mut r = DescribeConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = s(name);
    r.configuration_keys = keys.map(|ks| ks.iter().map(|k| s(k)).collect());
    r
}

fn describe(
    addr: &str,
    version: i16,
    synonyms: bool,
    resources: Vec<DescribeConfigsResource>,
) -> Vec<DescribeConfigsResult> {
    let mut r = DescribeConfigsRequest::default();
    r.resources = resources;
    r.include_synonyms = synonyms;
    let resp: DescribeConfigsResponse = call(&mut conn(addr), ApiKey::DescribeConfigs, version, &r);
    resp.results
}

/// Each config of a result: name, value, source, type.
fn configs(r: &DescribeConfigsResult) -> Vec<(String, String, i8, i8)> {
    r.configs
        .iter()
        .map(|c| {
            let fixed = ["eoslog.high.watermark", "eoslog.transaction.verification"];
            // A broker's topic defaults change dynamically; its other configs are static.
            let read_only = (r.resource_type == BROKER && !eoslog::is_dynamic_default(&c.name))
                || fixed.contains(&c.name.as_str());
            assert_eq!(c.read_only, read_only, "{}", c.name.as_str());
            assert!(!c.is_sensitive, "{}", c.name.as_str());
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
                c.config_type,
            )
        })
        .collect()
}

fn find<'a>(all: &'a [(String, String, i8, i8)], name: &str) -> &'a (String, String, i8, i8) {
    all.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn topic_and_broker_configs_are_described_as_kafka_describes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(
        dir.path(),
        &["log.retention.ms=3600000"],
        eoslog::LogOptions::default(),
    );
    broker
        .store()
        .create_topic(
            "t",
            1,
            &[
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.1"),
            ],
        )
        .expect("topic");
    let b = broker.local_addr().to_string();

    for version in [1, 2, 3, 4] {
        let results = describe(
            &b,
            version,
            false,
            vec![
                resource(TOPIC, "t", None),
                resource(TOPIC, "nope", None),
                resource(TOPIC, "no/such", None),
                resource(BROKER, "0", None),
                resource(BROKER, "", None),
                resource(BROKER, "7", None),
                resource(BROKER, "zero", None),
                resource(8, "0", None),
            ],
        );
        let answers: Vec<(i8, String, i16)> = results
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
            .collect();
        assert_eq!(
            answers,
            vec![
                (TOPIC, "t".into(), 0),
                (TOPIC, "nope".into(), 3),
                (TOPIC, "no/such".into(), 17),
                (BROKER, "0".into(), 0),
                (BROKER, "".into(), 0),
                (BROKER, "7".into(), 42),
                (BROKER, "zero".into(), 42),
                (8, "0".into(), 42),
            ],
            "v{version}"
        );
        assert_eq!(
            results[1].error_message, None,
            "Kafka's UNKNOWN_TOPIC_OR_PARTITION has none"
        );
        assert_eq!(
            results[5].error_message.as_deref(),
            Some("Unexpected broker id, expected 0 or empty string, but received 7")
        );
        assert_eq!(
            results[6].error_message.as_deref(),
            Some("Broker id must be an integer, but it is: zero")
        );
        assert!(results[4].configs.is_empty(), "no dynamic cluster defaults");

        let topic = configs(&results[0]);
        let typed = |t: i8| if version >= 3 { t } else { 0 };
        // (name, value, source, type)
        for (name, value, source, kind) in [
            ("cleanup.policy", "compact", 1, 7),
            ("min.cleanable.dirty.ratio", "0.1", 1, 6),
            ("retention.ms", "3600000", 4, 5),
            ("segment.bytes", "1073741824", 5, 3),
            ("eoslog.validate.records", "true", 5, 1),
            // The broker's own default (the library's is `inline`): not configured.
            ("eoslog.roll.fsync", "maintenance", 5, 2),
            // Kafka's types: INT levels, BOOLEAN flags, LIST throttles (empty too).
            ("compression.gzip.level", "-1", 5, 3),
            ("compression.lz4.level", "9", 5, 3),
            ("compression.zstd.level", "3", 5, 3),
            ("unclean.leader.election.enable", "false", 5, 1),
            ("remote.storage.enable", "false", 5, 1),
            ("leader.replication.throttled.replicas", "", 5, 7),
            ("follower.replication.throttled.replicas", "", 5, 7),
        ] {
            assert_eq!(
                find(&topic, name),
                &(name.into(), value.into(), source, typed(kind)),
                "v{version}"
            );
        }
        assert!(
            results[0].configs.iter().all(|c| c.synonyms.is_empty()),
            "not asked"
        );

        let own = configs(&results[3]);
        assert_eq!(find(&own, "log.retention.ms").2, 4);
        assert_eq!(
            find(&own, "num.partitions"),
            &("num.partitions".into(), "1".into(), 5, typed(3))
        );
        assert_eq!(find(&own, "node.id").1, "0");
        // The broker's own defaults are defaults, though the library's differ.
        for (name, value) in [
            ("log.cleaner.threads", "1"),
            ("log.retention.check.interval.ms", "300000"),
        ] {
            let c = find(&own, name);
            assert_eq!((c.1.as_str(), c.2), (value, 5), "{name}");
        }
        assert_eq!(
            find(&own, "log.cleaner.min.cleanable.ratio"),
            &(
                "log.cleaner.min.cleanable.ratio".into(),
                "0.5".into(),
                5,
                typed(6)
            )
        );
    }
}

#[test]
fn synonyms_come_when_asked_and_a_key_list_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(
        dir.path(),
        &["log.retention.ms=3600000"],
        eoslog::LogOptions::default(),
    );
    broker
        .store()
        .create_topic("t", 1, &[("retention.ms", "60000")])
        .expect("topic");
    let b = broker.local_addr().to_string();
    let results = describe(
        &b,
        4,
        true,
        vec![
            resource(
                TOPIC,
                "t",
                Some(&["retention.ms", "segment.bytes", "no.such.key"]),
            ),
            resource(BROKER, "0", Some(&["log.retention.ms"])),
        ],
    );
    let names: Vec<&str> = results[0].configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["segment.bytes", "retention.ms"],
        "the asked keys that exist"
    );
    let synonyms = |r: &DescribeConfigsResult, name: &str| -> Vec<(String, String, i8)> {
        r.configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .expect("config")
            .synonyms
            .iter()
            .map(|y| {
                (
                    y.name.to_string(),
                    y.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    y.source,
                )
            })
            .collect()
    };
    assert_eq!(
        synonyms(&results[0], "retention.ms"),
        vec![
            ("retention.ms".into(), "60000".into(), 1),
            ("log.retention.ms".into(), "3600000".into(), 4),
            ("log.retention.hours".into(), "168".into(), 5),
        ]
    );
    assert_eq!(
        synonyms(&results[0], "segment.bytes"),
        vec![("log.segment.bytes".into(), "1073741824".into(), 5)]
    );
    assert_eq!(
        synonyms(&results[1], "log.retention.ms"),
        vec![
            ("log.retention.ms".into(), "3600000".into(), 4),
            ("log.retention.hours".into(), "168".into(), 5),
        ]
    );
}
