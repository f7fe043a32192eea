//! Invariant: CreateTopics answers as Kafka's controller (`ControllerApis.createTopics`,
//! `ReplicationControlManager.createTopics`/`createTopic`), with its codes and messages and
//! in its order of checks: a name given twice gets one INVALID_REQUEST result and is not
//! created; a bad name, then an existing topic (before any replication factor check), then
//! a name that collides with an existing one ('.' against '_'), then a config without a value,
//! then a manual assignment beside a partition count or replication factor (INVALID_REQUEST) or
//! with replicas other than this broker (INVALID_REPLICA_ASSIGNMENT), then a replication
//! factor or partition count of 0 or below -1, then a replication factor the one broker cannot
//! place (unless `eoslog.accept.replication.factor`). `validate_only` runs the very checks a
//! creation runs and creates nothing. A request whose topics would make more than Kafka's
//! 10,000 metadata records (a topic, its configs, its partitions) creates nothing and answers
//! every topic POLICY_VIOLATION, so one request never makes the broker allocate for more.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, TopicName};

fn topic(name: &str, partitions: i32, replication: i16) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = partitions;
    t.replication_factor = replication;
    t
}

/// A topic placed by a manual assignment: `(partition, replicas)` each.
fn assigned(name: &str, partitions: i32, replication: i16, assignment: &[(i32, &[i32])]) -> CreatableTopic {
    let mut t = topic(name, partitions, replication);
    t.assignments = assignment
        .iter()
        .map(|(p, ids)| {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = *p;
            a.broker_ids = ids.iter().copied().map(BrokerId).collect();
            a
        })
        .collect();
    t
}

fn with_config(mut t: CreatableTopic, key: &str, value: &str) -> CreatableTopic {
    let mut c = CreatableTopicConfig::default();
    c.name = s(key);
    c.value = Some(s(value));
    t.configs.push(c);
    t
}

/// CreateTopics at `version`: each result's name, error code and message, in order.
fn create(
    addr: &str,
    version: i16,
    validate_only: bool,
    topics: Vec<CreatableTopic>,
) -> Vec<(String, i16, Option<String>)> {
    let mut r = CreateTopicsRequest::default();
    r.topics = topics;
    r.timeout_ms = 10_000;
    r.validate_only = validate_only;
    let resp: CreateTopicsResponse = call(&mut conn(addr), ApiKey::CreateTopics, version, &r);
    resp.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.error_code,
                t.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn answer(name: &str, code: i16, message: &str) -> (String, i16, Option<String>) {
    (name.to_owned(), code, Some(message.to_owned()))
}

fn created(name: &str) -> (String, i16, Option<String>) {
    (name.to_owned(), 0, None)
}

/// The partition count of `name`, if it exists.
fn partitions(broker: &eoslog_broker::Broker, name: &str) -> Option<u32> {
    broker
        .store()
        .topics()
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| t.partitions)
}

/// The store's message for an invalid topic config.
fn config_error(key: &str, value: &str) -> String {
    let mut config = eoslog::LogConfig::default();
    config.set(key, value).expect_err("invalid").to_string()
}

const TOO_LARGE: &str = "Unable to perform excessively large batch operation.";
const BAD_FACTOR: &str = "Replication factor must be larger than 0, or -1 to use the default value.";
const BAD_COUNT: &str = "Number of partitions was set to an invalid non-positive value.";

#[test]
fn a_topic_named_twice_is_refused_and_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let b = broker.local_addr().to_string();
    for version in [2, 5] {
        let dup = format!("dup{version}");
        let ok = format!("ok{version}");
        let answers = create(
            &b,
            version,
            false,
            vec![
                topic(&dup, 1, 1),
                topic(&ok, 2, -1),
                topic(&dup, 3, 1),
                topic(&dup, 1, 1),
            ],
        );
        assert_eq!(
            answers,
            vec![created(&ok), answer(&dup, 42, "Duplicate topic name.")],
            "v{version}: one result for the name given three times, after the others"
        );
        assert_eq!(partitions(&broker, &dup), None, "no copy of {dup} is created");
        assert_eq!(partitions(&broker, &ok), Some(2));
    }
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn a_colliding_name_or_a_null_config_is_refused_with_kafkas_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("a.b", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let mut nulls = with_config(topic("n", 1, 1), "retention.ms", "1000");
    for key in ["segment.bytes", "segment.ms"] {
        let mut c = CreatableTopicConfig::default();
        c.name = s(key);
        c.value = None;
        nulls.configs.push(c);
    }
    for validate_only in [true, false] {
        assert_eq!(
            create(
                &b,
                5,
                validate_only,
                vec![topic("a_b", 1, 1), topic("a.b", 1, 1), nulls.clone()]
            ),
            vec![
                answer("a_b", 17, "Topic 'a_b' collides with existing topic: a.b"),
                answer("a.b", 36, "Topic 'a.b' already exists."),
                answer(
                    "n",
                    40,
                    "Null value not supported for topic configs: segment.bytes,segment.ms"
                ),
            ],
            "validate_only={validate_only}"
        );
    }
    assert_eq!(partitions(&broker, "a_b"), None);
    assert_eq!(
        partitions(&broker, "n"),
        None,
        "a null config is not dropped and created"
    );
    // Two new names that collide in one request: the second is refused, by a validation
    // as by a creation.
    for validate_only in [true, false] {
        assert_eq!(
            create(&b, 5, validate_only, vec![topic("x.y", 1, 1), topic("x_y", 1, 1)]),
            vec![
                created("x.y"),
                answer("x_y", 17, "Topic 'x_y' collides with existing topic: x.y"),
            ],
            "validate_only={validate_only}"
        );
    }
    assert_eq!(partitions(&broker, "x_y"), None);
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn create_topics_checks_in_kafkas_order_with_its_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let one_broker = "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
                      cannot be reached because only 1 broker(s) are registered.";
    let cases = vec![
        // An existing topic is that before its replication factor is looked at.
        (topic("t", 1, 3), answer("t", 36, "Topic 't' already exists.")),
        (
            topic("__consumer_offsets", 1, 1),
            answer(
                "__consumer_offsets",
                36,
                "Topic '__consumer_offsets' already exists.",
            ),
        ),
        (topic("rf0", 1, 0), answer("rf0", 38, BAD_FACTOR)),
        (topic("rf-2", 1, -2), answer("rf-2", 38, BAD_FACTOR)),
        (topic("rf3", 1, 3), answer("rf3", 38, one_broker)),
        // The replication factor before the partition count.
        (topic("both0", 0, 0), answer("both0", 38, BAD_FACTOR)),
        (topic("p0", 0, 1), answer("p0", 37, BAD_COUNT)),
        (topic("p-2", -2, -1), answer("p-2", 37, BAD_COUNT)),
        (
            assigned("a1", -1, 1, &[(0, &[0])]),
            answer(
                "a1",
                42,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ),
        ),
        (
            assigned("a2", 1, -1, &[(0, &[0])]),
            answer(
                "a2",
                42,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ),
        ),
        (
            assigned("a3", -1, -1, &[(0, &[0]), (1, &[1])]),
            answer(
                "a3",
                39,
                "The manual partition assignment includes broker 1, but no such broker is registered.",
            ),
        ),
        (
            assigned("a4", -1, -1, &[(0, &[0, 0])]),
            answer(
                "a4",
                39,
                "The manual partition assignment includes the broker 0 more than once.",
            ),
        ),
        (
            assigned("a5", -1, -1, &[(0, &[])]),
            answer(
                "a5",
                39,
                "The manual partition assignment includes an empty replica list.",
            ),
        ),
        (
            assigned("a6", -1, -1, &[(0, &[0]), (0, &[0])]),
            answer(
                "a6",
                39,
                "Found multiple manual partition assignments for partition 0",
            ),
        ),
        (
            assigned("a7", -1, -1, &[(0, &[0]), (2, &[0])]),
            answer(
                "a7",
                39,
                "partitions should be a consecutive 0-based integer sequence",
            ),
        ),
        (
            topic("bad name", 1, 1),
            answer(
                "bad name",
                17,
                "Topic name is invalid: 'bad name' contains one or more characters other than \
                 ASCII alphanumerics, '.', '_' and '-'",
            ),
        ),
        (
            topic("", 1, 1),
            answer("", 17, "Topic name is invalid: the empty string is not allowed"),
        ),
        (
            topic("..", 1, 1),
            answer("..", 17, "Topic name is invalid: '..' is not allowed"),
        ),
        (
            topic(&"x".repeat(250), 1, 1),
            answer(
                &"x".repeat(250),
                17,
                &format!(
                    "Topic name is invalid: the length of '{}' is longer than the max allowed length 249",
                    "x".repeat(250)
                ),
            ),
        ),
        (
            topic("__mine", 1, 1),
            answer(
                "__mine",
                17,
                "invalid topic name \"__mine\": names starting with \"__\" are Kafka's internal topics",
            ),
        ),
        // An invalid config: Kafka's code, the store's message.
        (
            with_config(topic("cfg", 1, 1), "cleanup.policy", "bogus"),
            answer("cfg", 40, &config_error("cleanup.policy", "bogus")),
        ),
        (
            with_config(topic("cfg2", 1, 1), "eoslog.transaction.timeout.ms", "5"),
            answer(
                "cfg2",
                40,
                "invalid value \"5\" for eoslog.transaction.timeout.ms: in a store, the transaction \
                 coordinator times transactions out",
            ),
        ),
    ];
    // `validate_only` and a creation answer alike, case by case and all in one request,
    // and neither creates what it refuses.
    let (topics, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    for validate_only in [true, false] {
        for (t, e) in topics.iter().zip(&expected) {
            let got = create(&b, 5, validate_only, vec![t.clone()]);
            assert_eq!(got, vec![e.clone()], "validate_only {validate_only}");
        }
        let all = create(&b, 5, validate_only, topics.clone());
        assert_eq!(all, expected, "validate_only {validate_only}, one request");
    }
    // An existing topic before its partition count too.
    for validate_only in [true, false] {
        assert_eq!(
            create(&b, 5, validate_only, vec![topic("t", 0, 0)]),
            vec![answer("t", 36, "Topic 't' already exists.")]
        );
    }
    for (name, _, _) in &expected {
        if name != "t" && name != "__consumer_offsets" {
            assert_eq!(partitions(&broker, name), None, "{name} is not created");
        }
    }

    // What passes the checks: validate_only creates nothing, a creation creates it.
    let good = vec![
        topic("d", -1, -1),
        topic("two", 2, 1),
        assigned("manual", -1, -1, &[(1, &[0]), (0, &[0]), (2, &[0])]),
    ];
    let ok = vec![created("d"), created("two"), created("manual")];
    assert_eq!(create(&b, 5, true, good.clone()), ok);
    assert_eq!(partitions(&broker, "d"), None);
    assert_eq!(create(&b, 5, false, good), ok);
    assert_eq!(partitions(&broker, "d"), Some(1));
    assert_eq!(partitions(&broker, "two"), Some(2));
    assert_eq!(partitions(&broker, "manual"), Some(3));
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn accepted_replication_factor_and_another_node_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(
        dir.path(),
        &["eoslog.accept.replication.factor=true", "node.id=5"],
        eoslog::LogOptions::default(),
    );
    let b = broker.local_addr().to_string();
    assert_eq!(
        create(&b, 5, false, vec![topic("rf3", 2, 3)]),
        vec![created("rf3")]
    );
    assert_eq!(partitions(&broker, "rf3"), Some(2));
    // Still Kafka's rules for what is not a placement on more brokers.
    assert_eq!(
        create(&b, 5, false, vec![topic("rf0", 1, 0), topic("rf3", 1, 3)]),
        vec![
            answer("rf0", 38, BAD_FACTOR),
            answer("rf3", 36, "Topic 'rf3' already exists.")
        ]
    );
    // The broker registered is node 5.
    assert_eq!(
        create(&b, 5, false, vec![assigned("m0", -1, -1, &[(0, &[0])])]),
        vec![answer(
            "m0",
            39,
            "The manual partition assignment includes broker 0, but no such broker is registered."
        )]
    );
    assert_eq!(
        create(&b, 5, false, vec![assigned("m5", -1, -1, &[(0, &[5])])]),
        vec![created("m5")]
    );
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn a_request_past_ten_thousand_records_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    for validate_only in [true, false] {
        // 1 + 5000 and 1 + 4999 records, and refused topics write none: 10,001.
        let answers = create(
            &b,
            5,
            validate_only,
            vec![
                topic("a", 5000, 1),
                topic("t", 9000, 1),
                topic("b", 4999, -1),
                topic("c", 9000, 0),
                topic("d", 1, 1),
                topic("d", 1, 1),
            ],
        );
        let all_too_large: Vec<_> = ["a", "t", "b", "c", "d", "d"]
            .iter()
            .map(|n| answer(n, 44, TOO_LARGE))
            .collect();
        assert_eq!(
            answers, all_too_large,
            "validate_only {validate_only}: every topic of the request"
        );
        // One topic of more partitions than the store allows at all: the same.
        assert_eq!(
            create(&b, 5, validate_only, vec![topic("huge", (1 << 20) + 1, 1)]),
            vec![answer("huge", 44, TOO_LARGE)]
        );
        assert_eq!(
            create(&b, 5, validate_only, vec![topic("huge", i32::MAX, 1)]),
            vec![answer("huge", 44, TOO_LARGE)]
        );
        // Each config is a record too.
        assert_eq!(
            create(
                &b,
                5,
                validate_only,
                vec![with_config(topic("cfg", 9999, 1), "retention.ms", "1000")]
            ),
            vec![answer("cfg", 44, TOO_LARGE)]
        );
        for name in ["a", "b", "d", "huge", "cfg"] {
            assert_eq!(partitions(&broker, name), None, "{name}");
        }
    }
    // 1 + 4998 + 1 and 1 + 4999: exactly 10,000.
    let answers = create(
        &b,
        5,
        false,
        vec![
            with_config(topic("a", 4998, 1), "retention.ms", "1000"),
            topic("t", 9000, 1),
            topic("b", 4999, 1),
        ],
    );
    assert_eq!(
        answers,
        vec![
            created("a"),
            answer("t", 36, "Topic 't' already exists."),
            created("b")
        ]
    );
    assert_eq!(partitions(&broker, "a"), Some(4998));
    assert_eq!(partitions(&broker, "b"), Some(4999));
    rt.block_on(broker.shutdown()).expect("shutdown");
}
