//! Invariant: CreatePartitions (`kafka-topics --alter --partitions`) raises a topic's
//! partition count as Kafka does: Metadata lists the new partitions and the store opens
//! them at once; `validate_only` and every refusal leave the count alone, each refusal with
//! Kafka's code: INVALID_PARTITIONS for a count that does not grow, UNKNOWN_TOPIC_OR_PARTITION,
//! INVALID_REPLICA_ASSIGNMENT for replicas elsewhere than this broker or a wrong number of
//! assignments, one INVALID_REQUEST for a topic named twice, checked in Kafka's order and
//! with its messages at every version. Replicas are this broker's `node.id`, checked with
//! Kafka's messages. One request adds at most Kafka's 10,000 partitions (its controller's
//! records per operation): the topic that would pass the bound, and every later one that adds
//! any, is UNKNOWN_SERVER_ERROR and keeps its count, with or without `validate_only`; more
//! than 10,000 topics refuse the whole request, POLICY_VIOLATION.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, MetadataRequest, MetadataResponse,
    TopicName,
};

fn topic(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    let mut t = CreatePartitionsTopic::default();
    t.name = TopicName(s(name));
    t.count = count;
    t.assignments = assignments.map(|a| {
        a.into_iter()
            .map(|ids| {
                let mut x = CreatePartitionsAssignment::default();
                x.broker_ids = ids.into_iter().map(BrokerId).collect();
                x
            })
            .collect()
    });
    t
}

/// CreatePartitions at `version`; each result's error code and message, in order.
fn create(
    addr: &str,
    version: i16,
    validate_only: bool,
    topics: Vec<CreatePartitionsTopic>,
) -> Vec<(i16, Option<String>)> {
    let mut r = CreatePartitionsRequest::default();
    r.topics = topics;
    r.timeout_ms = 10_000;
    r.validate_only = validate_only;
    let resp: CreatePartitionsResponse = call(&mut conn(addr), ApiKey::CreatePartitions, version, &r);
    resp.results
        .iter()
        .map(|t| (t.error_code, t.error_message.as_ref().map(|m| m.to_string())))
        .collect()
}

/// The error codes of [`create`].
fn codes(addr: &str, version: i16, validate_only: bool, topics: Vec<CreatePartitionsTopic>) -> Vec<i16> {
    create(addr, version, validate_only, topics)
        .into_iter()
        .map(|(code, _)| code)
        .collect()
}

/// The partition count Metadata v9 gives for `name`.
fn listed(addr: &str, name: &str) -> usize {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(s(name)));
    let mut r = MetadataRequest::default();
    r.topics = Some(vec![t]);
    let resp: MetadataResponse = call(&mut conn(addr), ApiKey::Metadata, 9, &r);
    assert_eq!(resp.topics[0].error_code, 0, "{name}");
    resp.topics[0].partitions.len()
}

#[test]
fn create_partitions_grows_a_topic_and_refuses_what_kafka_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 2, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    assert_eq!(codes(&b, 0, true, vec![topic("t", 3, None)]), vec![0]);
    assert_eq!(listed(&b, "t"), 2, "validate_only changes nothing");

    // Refusals, at the first and the last version served, with Kafka's messages.
    for version in [0, 3] {
        let answers = create(
            &b,
            version,
            false,
            vec![topic("t", 2, None), topic("nope", 4, Some(vec![vec![0]]))],
        );
        assert_eq!(
            answers,
            vec![
                (37, Some("Topic already has 2 partition(s).".to_owned())),
                (3, None),
            ],
            "v{version}: an unknown topic is that before its assignment is looked at"
        );
        let answers = create(&b, version, false, vec![topic("t", 1, None)]);
        assert_eq!(
            answers,
            vec![(
                37,
                Some("The topic t currently has 2 partition(s); 1 would not be an increase.".to_owned())
            )]
        );
        assert_eq!(
            codes(&b, version, false, vec![topic("t", 9, None), topic("t", 9, None)]),
            vec![42],
            "a topic named twice: one result"
        );
        assert_eq!(
            codes(&b, version, false, vec![topic("t", 3, Some(vec![vec![1]]))]),
            vec![39]
        );
        assert_eq!(
            codes(&b, version, false, vec![topic("t", 4, Some(vec![vec![0]]))]),
            vec![39],
            "one assignment for two new partitions"
        );
        assert_eq!(codes(&b, version, true, vec![topic("t", 2, None)]), vec![37]);
        assert_eq!(listed(&b, "t"), 2, "v{version}: refusals change nothing");
    }

    assert_eq!(
        codes(&b, 3, false, vec![topic("t", 4, Some(vec![vec![0], vec![0]]))]),
        vec![0]
    );
    assert_eq!(listed(&b, "t"), 4);
    let log = broker.store().partition("t", 3).expect("a new partition");
    assert_eq!(log.log_end_offset().0, 0);
    assert_eq!(codes(&b, 0, false, vec![topic("t", 5, None)]), vec![0]);
    assert_eq!(listed(&b, "t"), 5);
    drop(log);
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn replicas_are_this_brokers_node_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &["node.id=3"], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let unknown = |id: i32| {
        Some(format!(
            "The manual partition assignment includes broker {id}, but no such broker is registered."
        ))
    };
    assert_eq!(
        create(&b, 3, false, vec![topic("t", 2, Some(vec![vec![0]]))]),
        vec![(39, unknown(0))]
    );
    assert_eq!(
        create(&b, 3, false, vec![topic("t", 2, Some(vec![vec![3, 4]]))]),
        vec![(39, unknown(4))]
    );
    assert_eq!(
        create(&b, 3, false, vec![topic("t", 2, Some(vec![vec![3, 3]]))]),
        vec![(
            39,
            Some("The manual partition assignment includes the broker 3 more than once.".to_owned())
        )]
    );
    assert_eq!(
        create(&b, 3, false, vec![topic("t", 2, Some(vec![vec![]]))]),
        vec![(
            39,
            Some("The manual partition assignment includes an empty replica list.".to_owned())
        )]
    );
    assert_eq!(listed(&b, "t"), 1);
    assert_eq!(
        create(&b, 3, false, vec![topic("t", 3, Some(vec![vec![3], vec![3]]))]),
        vec![(0, None)]
    );
    assert_eq!(listed(&b, "t"), 3);
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn one_request_adds_at_most_ten_thousand_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    for name in ["a", "b", "c", "d"] {
        broker.store().create_topic(name, 1, &[]).expect("topic");
    }
    let b = broker.local_addr().to_string();
    let count = |name: &str| {
        broker
            .store()
            .topics()
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.partitions)
    };
    for validate_only in [true, false] {
        // 5000 new partitions, then 5001 (past 10,000), then one more: Kafka's list of
        // records is full from the second on.
        let answers = create(
            &b,
            3,
            validate_only,
            vec![
                topic("a", 5001, None),
                topic("b", 5002, None),
                topic("nope", 2, None),
                topic("c", 2, None),
                topic("d", 1, None),
            ],
        );
        assert_eq!(
            answers,
            vec![
                (0, None),
                (-1, None),
                (3, None),
                (-1, None),
                (37, Some("Topic already has 1 partition(s).".to_owned())),
            ],
            "validate_only {validate_only}"
        );
        assert_eq!(count("b"), Some(1), "validate_only {validate_only}");
        assert_eq!(count("c"), Some(1));
        assert_eq!(count("a"), Some(if validate_only { 1 } else { 5001 }));
        // A single topic past the bound; past the store's largest partition count (2^20),
        // the store's refusal, as before the bound.
        assert_eq!(
            create(&b, 3, validate_only, vec![topic("c", 10_002, None)]),
            vec![(-1, None)]
        );
        assert_eq!(
            create(&b, 3, validate_only, vec![topic("c", 1 << 20, None)]),
            vec![(-1, None)]
        );
        let too_many = eoslog::StoreError::InvalidPartitions {
            topic: "c".to_owned(),
            partitions: (1 << 20) + 1,
        };
        assert_eq!(
            create(&b, 3, validate_only, vec![topic("c", (1 << 20) + 1, None)]),
            vec![(37, Some(too_many.to_string()))]
        );
        assert_eq!(count("c"), Some(1));
    }
    // Exactly 10,000.
    assert_eq!(
        create(&b, 3, false, vec![topic("b", 5001, None), topic("c", 5001, None)]),
        vec![(0, None), (0, None)]
    );
    assert_eq!((count("b"), count("c")), (Some(5001), Some(5001)));

    // More than 10,000 topics (a name given twice aside): the whole request, every entry.
    let mut many: Vec<CreatePartitionsTopic> =
        (0..10_002).map(|i| topic(&format!("u{i}"), 2, None)).collect();
    many.push(topic("u0", 2, None));
    let answers = create(&b, 3, false, many);
    assert_eq!(answers.len(), 10_003);
    let too_large = (
        44,
        Some("Unable to perform excessively large batch operation.".to_owned()),
    );
    assert!(answers.iter().all(|a| *a == too_large), "{:?}", &answers[..2]);
    // 10,000 topics (and one named twice) are looked at.
    let mut most: Vec<CreatePartitionsTopic> =
        (0..10_000).map(|i| topic(&format!("u{i}"), 2, None)).collect();
    most.push(topic("d", 2, None));
    most.push(topic("d", 2, None));
    let answers = create(&b, 3, false, most);
    assert_eq!(answers.len(), 10_001);
    assert!(answers[..10_000].iter().all(|a| *a == (3, None)));
    assert_eq!(answers[10_000], (42, Some("Duplicate topic name.".to_owned())));
    rt.block_on(broker.shutdown()).expect("shutdown");
}
