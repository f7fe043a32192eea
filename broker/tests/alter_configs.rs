//! Invariant: IncrementalAlterConfigs and AlterConfigs change a topic's own configs as Kafka 4
//! does, at every version served, and the topic's open partitions apply the change from
//! their next request: SET, DELETE, APPEND and SUBTRACT edit the configs (AlterConfigs
//! replaces them); `validate_only` changes nothing; each resource is answered in the
//! request's order with Kafka's code and message: a resource named twice, a key named
//! twice, a null value, an unknown operation, a default topic resource or a BROKER change
//! of a config that is not a topics' default (those are static) is INVALID_REQUEST, and
//! nothing of that resource applies; an unknown key, a bad value or a
//! list operation on a key that is not a list is INVALID_CONFIG; an unknown topic is
//! UNKNOWN_TOPIC_OR_PARTITION; a refused resource changes nothing. A BROKER resource changes
//! the topics' dynamic defaults (named `""`, the cluster's; by the node id, the node's):
//! every topic without its own value applies them, DescribeConfigs shows them with Kafka's
//! sources and synonyms, and they survive a restart.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest, AlterConfigsResponse,
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// A resource of an IncrementalAlterConfigs: (op, key, value) each.
fn inc(
    kind: i8,
    name: &str,
    ops: &[(i8, &str, Option<&str>)],
) -> incremental_alter_configs_request::AlterConfigsResource {
    let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = s(name);
    r.configs = ops
        .iter()
        .map(|&(op, k, v)| {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = s(k);
            c.config_operation = op;
            c.value = v.map(s);
            c
        })
        .collect();
    r
}

/// Each resource's (type, name, code, message).
type Answers = Vec<(i8, String, i16, Option<String>)>;

/// The [`Answers`] of either response type (the same four fields in each).
macro_rules! answers {
    ($responses:expr) => {
        $responses
            .iter()
            .map(|x| {
                (
                    x.resource_type,
                    x.resource_name.to_string(),
                    x.error_code,
                    x.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect()
    };
}

fn incremental(
    addr: &str,
    version: i16,
    validate_only: bool,
    resources: Vec<incremental_alter_configs_request::AlterConfigsResource>,
) -> Answers {
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources = resources;
    r.validate_only = validate_only;
    let resp: IncrementalAlterConfigsResponse =
        call(&mut conn(addr), ApiKey::IncrementalAlterConfigs, version, &r);
    answers!(resp.responses)
}

fn legacy(
    addr: &str,
    version: i16,
    validate_only: bool,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> Answers {
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = TOPIC;
    res.resource_name = s(name);
    res.configs = configs
        .iter()
        .map(|&(k, v)| {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = s(k);
            c.value = v.map(s);
            c
        })
        .collect();
    let mut r = AlterConfigsRequest::default();
    r.resources = vec![res];
    r.validate_only = validate_only;
    let resp: AlterConfigsResponse = call(&mut conn(addr), ApiKey::AlterConfigs, version, &r);
    answers!(resp.responses)
}

fn ok(kind: i8, name: &str) -> (i8, String, i16, Option<String>) {
    (kind, name.to_owned(), 0, None)
}

fn err(kind: i8, name: &str, code: i16, message: &str) -> (i8, String, i16, Option<String>) {
    (kind, name.to_owned(), code, Some(message.to_owned()))
}

/// The topic's own configs, sorted.
fn own(store: &eoslog::Store, name: &str) -> Vec<(String, String)> {
    let mut c = store
        .topics()
        .into_iter()
        .find(|t| t.name == name)
        .expect("topic")
        .configs;
    c.sort();
    c
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[test]
fn incremental_ops_change_an_open_topic_at_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let store = broker.store();
    let b = broker.local_addr().to_string();
    for version in [0, 1] {
        let topic = format!("t{version}");
        store
            .create_topic(&topic, 1, &[("retention.ms", "1000")])
            .expect("topic");
        let log = store.partition(&topic, 0).expect("open");

        let answers = incremental(
            &b,
            version,
            false,
            vec![inc(
                TOPIC,
                &topic,
                &[
                    (SET, "max.message.bytes", Some("2000")),
                    (DELETE, "retention.ms", None),
                    (APPEND, "cleanup.policy", Some("compact")),
                ],
            )],
        );
        assert_eq!(answers, vec![ok(TOPIC, &topic)], "v{version}");
        assert_eq!(
            own(store, &topic),
            pairs(&[
                ("cleanup.policy", "delete,compact"),
                ("max.message.bytes", "2000")
            ]),
            "v{version}"
        );
        // The log open before the change applies it.
        assert_eq!(log.config().max_message_bytes, 2000, "v{version}");
        assert!(log.config().cleanup_policy.compact, "v{version}");

        // validate_only: answered as a change, nothing changes.
        let answers = incremental(
            &b,
            version,
            true,
            vec![inc(
                TOPIC,
                &topic,
                &[(SUBTRACT, "cleanup.policy", Some("delete"))],
            )],
        );
        assert_eq!(answers, vec![ok(TOPIC, &topic)], "v{version}");
        assert!(
            log.config().cleanup_policy.delete,
            "v{version}: validate_only changed the log"
        );

        let answers = incremental(
            &b,
            version,
            false,
            vec![inc(
                TOPIC,
                &topic,
                &[(SUBTRACT, "cleanup.policy", Some("delete"))],
            )],
        );
        assert_eq!(answers, vec![ok(TOPIC, &topic)], "v{version}");
        assert!(!log.config().cleanup_policy.delete, "v{version}");
    }
}

#[test]
fn each_refusal_is_kafkas_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let store = broker.store();
    store
        .create_topic("t", 1, &[("retention.ms", "1000")])
        .expect("topic");
    store.create_topic("u", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let invalid_request = 42;
    let invalid_config = 40;
    let set = |k, v| (SET, k, Some(v));
    for version in [0, 1] {
        // A resource named twice: both refused, the rest answered.
        let once = "Each resource must appear at most once.";
        let answers = incremental(
            &b,
            version,
            false,
            vec![
                inc(TOPIC, "u", &[set("retention.ms", "5")]),
                inc(BROKER, "0", &[]),
                inc(TOPIC, "u", &[set("retention.ms", "6")]),
            ],
        );
        assert_eq!(
            answers,
            vec![
                err(TOPIC, "u", invalid_request, once),
                ok(BROKER, "0"),
                err(TOPIC, "u", invalid_request, once)
            ],
            "v{version}"
        );
        // One resource per request from here on.
        let cases = vec![
            (
                inc(TOPIC, "t", &[set("retention.ms", "5"), set("retention.ms", "6")]),
                err(TOPIC, "t", invalid_request, "Error due to duplicate config keys"),
            ),
            (
                inc(
                    TOPIC,
                    "t",
                    &[
                        set("segment.ms", "5"),
                        (SET, "retention.ms", None),
                        (APPEND, "x", None),
                    ],
                ),
                err(
                    TOPIC,
                    "t",
                    invalid_request,
                    "Null value not supported for : retention.ms, x",
                ),
            ),
            (
                inc(TOPIC, "t", &[(7, "retention.ms", Some("5"))]),
                // Kafka's broker text for a BROKER resource's unknown op.
                err(TOPIC, "t", invalid_request, "Unknown operations type 7"),
            ),
            (
                inc(TOPIC, "t", &[set("segment.ms", "5"), set("retention.msx", "5")]),
                err(
                    TOPIC,
                    "t",
                    invalid_config,
                    "Unknown topic config name: retention.msx",
                ),
            ),
            (
                inc(TOPIC, "t", &[set("segment.ms", "5"), set("retention.ms", "soon")]),
                (TOPIC, "t".into(), invalid_config, None),
            ),
            (
                inc(TOPIC, "t", &[(APPEND, "retention.ms", Some("5"))]),
                err(
                    TOPIC,
                    "t",
                    invalid_config,
                    "Can't APPEND to key retention.ms because its type is not LIST.",
                ),
            ),
            (
                inc(TOPIC, "t", &[(SUBTRACT, "segment.ms", Some("5"))]),
                err(
                    TOPIC,
                    "t",
                    invalid_config,
                    "Can't SUBTRACT to key segment.ms because its type is not LIST.",
                ),
            ),
            (
                inc(TOPIC, "missing", &[set("retention.ms", "5")]),
                err(TOPIC, "missing", 3, "The topic 'missing' does not exist."),
            ),
            (
                inc(TOPIC, "", &[set("retention.ms", "5")]),
                err(
                    TOPIC,
                    "",
                    invalid_request,
                    "Default topic resources are not allowed.",
                ),
            ),
            (
                inc(TOPIC, "no/such", &[set("retention.ms", "5")]),
                (TOPIC, "no/such".into(), 17, None),
            ),
            (
                inc(TOPIC, "__consumer_offsets", &[set("retention.ms", "5")]),
                (TOPIC, "__consumer_offsets".into(), 17, None),
            ),
            (
                inc(
                    BROKER,
                    "0",
                    &[set("num.partitions", "3"), set("log.retention.ms", "5")],
                ),
                err(
                    BROKER,
                    "0",
                    invalid_request,
                    "Cannot update these configs dynamically: Set(num.partitions)",
                ),
            ),
            (
                inc(BROKER, "7", &[set("num.partitions", "3")]),
                err(
                    BROKER,
                    "7",
                    invalid_request,
                    "Unexpected broker id, expected 0, but received 7",
                ),
            ),
            (
                inc(BROKER, "zero", &[set("num.partitions", "3")]),
                err(
                    BROKER,
                    "zero",
                    invalid_request,
                    "Node id must be an integer, but it is: zero",
                ),
            ),
            (
                inc(BROKER_LOGGER, "0", &[set("kafka", "DEBUG")]),
                (BROKER_LOGGER, "0".into(), invalid_request, None),
            ),
            (
                inc(99, "x", &[]),
                err(99, "x", invalid_request, "Unknown resource type 99"),
            ),
        ];
        for (i, (resource, want)) in cases.into_iter().enumerate() {
            let got = incremental(&b, version, false, vec![resource]);
            assert_eq!(got.len(), 1, "v{version} case {i}");
            let got = &got[0];
            assert_eq!(
                (got.0, &got.1, got.2),
                (want.0, &want.1, want.2),
                "v{version} case {i}"
            );
            match &want.3 {
                Some(m) => assert_eq!(got.3.as_deref(), Some(m.as_str()), "v{version} case {i}"),
                None => assert!(got.3.is_some(), "v{version} case {i}: a refusal says why"),
            }
        }
        assert_eq!(own(store, "t"), pairs(&[("retention.ms", "1000")]), "v{version}");
        assert!(own(store, "u").is_empty(), "v{version}");
    }
}

#[test]
fn alter_configs_replaces_the_topics_own_configs_at_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let store = broker.store();
    store
        .create_topic("t", 1, &[("retention.ms", "1000"), ("cleanup.policy", "compact")])
        .expect("topic");
    let log = store.partition("t", 0).expect("open");
    let b = broker.local_addr().to_string();
    for version in [0, 1, 2] {
        let value = format!("{}", 60_000 + i64::from(version));
        let answers = legacy(&b, version, true, "t", &[("segment.ms", Some(&value))]);
        assert_eq!(answers, vec![ok(TOPIC, "t")], "v{version} validate_only");
        assert_ne!(
            log.config().segment_ms.to_string(),
            value,
            "v{version}: validate_only changed it"
        );

        let answers = legacy(&b, version, false, "t", &[("segment.ms", Some(&value))]);
        assert_eq!(answers, vec![ok(TOPIC, "t")], "v{version}");
        // Every key not named went back to its default.
        assert_eq!(own(store, "t"), pairs(&[("segment.ms", &value)]), "v{version}");
        assert_eq!(log.config().segment_ms.to_string(), value, "v{version}");
        assert!(!log.config().cleanup_policy.compact, "v{version}");

        let answers = legacy(&b, version, false, "t", &[("retention.ms", None)]);
        assert_eq!(
            answers,
            vec![err(TOPIC, "t", 42, "Null value not supported for : retention.ms")],
            "v{version}"
        );
        assert_eq!(own(store, "t"), pairs(&[("segment.ms", &value)]), "v{version}");
    }
}

/// Config `key` of resource (`kind`, `name`) as DescribeConfigs v4 gives it: value, source,
/// read-only, and each synonym's (value, source); `None` when it is not listed.
#[allow(clippy::type_complexity)]
fn described(addr: &str, kind: i8, name: &str, key: &str) -> Option<(String, i8, bool, Vec<(String, i8)>)> {
    let mut res = DescribeConfigsResource::default();
    res.resource_type = kind;
    res.resource_name = s(name);
    res.configuration_keys = None;
    let mut r = DescribeConfigsRequest::default();
    r.resources = vec![res];
    r.include_synonyms = true;
    let resp: DescribeConfigsResponse = call(&mut conn(addr), ApiKey::DescribeConfigs, 4, &r);
    assert_eq!(
        resp.results[0].error_code, 0,
        "{:?}",
        resp.results[0].error_message
    );
    resp.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .map(|c| {
            let text = |v: &Option<kafka_protocol::protocol::StrBytes>| {
                v.as_ref().map(|v| v.to_string()).unwrap_or_default()
            };
            (
                text(&c.value),
                c.config_source,
                c.read_only,
                c.synonyms.iter().map(|y| (text(&y.value), y.source)).collect(),
            )
        })
}

#[test]
fn a_broker_resource_changes_the_topics_dynamic_defaults() {
    const DYNAMIC_BROKER: i8 = 2;
    const DYNAMIC_DEFAULT: i8 = 3;
    const STATIC: i8 = 4;
    const DEFAULT: i8 = 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(
        dir.path(),
        &["log.retention.ms=100000"],
        eoslog::LogOptions::default(),
    );
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let log = broker.store().partition("t", 0).expect("partition");

    let cluster = inc(BROKER, "", &[(SET, "log.retention.ms", Some("5000"))]);
    assert_eq!(incremental(&b, 1, false, vec![cluster]), vec![ok(BROKER, "")]);
    assert_eq!(log.config().retention_ms, 5000, "the open log applies it");
    assert_eq!(
        described(&b, TOPIC, "t", "retention.ms"),
        Some((
            "5000".into(),
            DYNAMIC_DEFAULT,
            false,
            vec![
                ("5000".into(), DYNAMIC_DEFAULT),
                ("100000".into(), STATIC),
                ("168".into(), DEFAULT)
            ]
        ))
    );
    let node = inc(BROKER, "0", &[(SET, "log.retention.ms", Some("7000"))]);
    assert_eq!(incremental(&b, 1, false, vec![node]), vec![ok(BROKER, "0")]);
    assert_eq!(log.config().retention_ms, 7000);
    let (value, source, read_only, synonyms) =
        described(&b, BROKER, "0", "log.retention.ms").expect("listed");
    assert_eq!(
        (value.as_str(), source, read_only),
        ("7000", DYNAMIC_BROKER, false)
    );
    assert_eq!(
        synonyms,
        vec![
            ("7000".into(), DYNAMIC_BROKER),
            ("5000".into(), DYNAMIC_DEFAULT),
            ("100000".into(), STATIC),
            ("168".into(), DEFAULT)
        ]
    );
    assert_eq!(
        described(&b, BROKER, "", "log.retention.ms").map(|d| (d.0, d.1)),
        Some(("5000".into(), DYNAMIC_DEFAULT))
    );
    assert!(
        described(&b, BROKER, "0", "num.partitions").expect("listed").2,
        "static: read-only"
    );
    // Refusals name the broker key, with the code Kafka's broker gives a BROKER resource.
    let invalid_request = 42;
    let refused = incremental(
        &b,
        1,
        false,
        vec![
            inc(BROKER, "0", &[(APPEND, "log.retention.ms", Some("1"))]),
            inc(BROKER, "", &[(SET, "log.retention.ms", Some("soon"))]),
        ],
    );
    assert_eq!(
        refused[0],
        err(
            BROKER,
            "0",
            invalid_request,
            "Config value append is not allowed for config key: log.retention.ms"
        )
    );
    assert_eq!(refused[1].2, invalid_request);
    let message = refused[1].3.clone().unwrap_or_default();
    assert!(
        message.contains("log.retention.ms") && message.contains("soon"),
        "{message}"
    );
    assert_eq!(log.config().retention_ms, 7000, "nothing applied");

    // A restart keeps both layers.
    drop(log);
    rt.block_on(broker.shutdown()).expect("shutdown");
    drop(rt);
    let (_rt, broker) = in_process(
        dir.path(),
        &["log.retention.ms=100000"],
        eoslog::LogOptions::default(),
    );
    let b = broker.local_addr().to_string();
    assert_eq!(
        broker
            .store()
            .partition("t", 0)
            .expect("partition")
            .config()
            .retention_ms,
        7000
    );
    let delete = inc(BROKER, "0", &[(DELETE, "log.retention.ms", None)]);
    assert_eq!(incremental(&b, 1, false, vec![delete]), vec![ok(BROKER, "0")]);
    assert_eq!(
        described(&b, TOPIC, "t", "retention.ms").map(|d| d.1),
        Some(DYNAMIC_DEFAULT)
    );
}
