//! Invariant: Metadata reads the topic list as Kafka's `MetadataRequest` and
//! `KafkaApis.handleTopicMetadataRequest` do: in v0 an empty list asks for every topic (from
//! v1 a null list does, and an empty one for none). From v12 a topic asked by id is never
//! dropped: the broker has no topic ids (every topic it lists has id zero), so each distinct
//! non-zero id is answered UNKNOWN_TOPIC_ID with that id and no name, and as in Kafka the
//! topics named beside ids are not looked at. Before v12 a topic without a name or with an id
//! refuses the whole request, each topic INVALID_REQUEST, as Kafka's error response. A name
//! asked twice is answered once. DescribeCluster names the same cluster and broker, and the
//! authorized operations asked for are every one a broker without an authorizer allows.

mod common;

use bytes::{BufMut, BytesMut};
use common::{call, conn, in_process, s};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::Decodable;

fn named(name: &str) -> MetadataRequestTopic {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(s(name)));
    t
}

/// A topic asked by `id` (and `name`, if any), decoded from its v12 encoding.
fn by_id(id: u128, name: Option<&str>) -> MetadataRequestTopic {
    let mut b = BytesMut::new();
    b.put_u128(id);
    match name {
        None => b.put_u8(0),
        Some(n) => {
            b.put_u8(n.len() as u8 + 1);
            b.put_slice(n.as_bytes());
        }
    }
    b.put_u8(0);
    MetadataRequestTopic::decode(&mut b.freeze(), 12).expect("topic")
}

fn metadata(addr: &str, version: i16, topics: Option<Vec<MetadataRequestTopic>>) -> MetadataResponse {
    let mut r = MetadataRequest::default();
    r.topics = topics;
    r.allow_auto_topic_creation = version < 4;
    call(&mut conn(addr), ApiKey::Metadata, version, &r)
}

/// Each topic's name, error code and partition count.
fn topics(resp: &MetadataResponse) -> Vec<(Option<String>, i16, usize)> {
    resp.topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()),
                t.error_code,
                t.partitions.len(),
            )
        })
        .collect()
}

#[test]
fn an_empty_list_asks_for_every_topic_only_in_v0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 2, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let every: Vec<String> = broker.store().topics().into_iter().map(|t| t.name).collect();
    assert!(every.len() >= 3, "t and the internal topics: {every:?}");

    let listed = |resp: &MetadataResponse| -> Vec<String> {
        let mut names: Vec<String> = topics(resp)
            .into_iter()
            .map(|(n, code, _)| {
                assert_eq!(code, 0);
                n.expect("name")
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        listed(&metadata(&b, 0, Some(vec![]))),
        every,
        "v0: empty is every topic"
    );
    for version in [1, 4, 9, 12] {
        assert_eq!(
            listed(&metadata(&b, version, None)),
            every,
            "v{version}: null is every topic"
        );
        assert!(
            metadata(&b, version, Some(vec![])).topics.is_empty(),
            "v{version}: empty is none"
        );
    }
    assert_eq!(
        topics(&metadata(&b, 0, Some(vec![named("t")]))),
        vec![(Some("t".to_owned()), 0, 2)]
    );
    for version in [0, 4, 12] {
        assert_eq!(
            topics(&metadata(&b, version, Some(vec![named("t"), named("t")]))),
            vec![(Some("t".to_owned()), 0, 2)],
            "v{version}: a name asked twice is answered once, as Kafka's set of names"
        );
    }
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn topics_asked_by_id_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 2, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    // Every topic listed has id zero.
    let resp = metadata(&b, 12, Some(vec![named("t")]));
    assert_eq!(topics(&resp), vec![(Some("t".to_owned()), 0, 2)]);
    assert!(resp.topics[0].topic_id.is_nil());
    assert!(metadata(&b, 12, None).topics.iter().all(|t| t.topic_id.is_nil()));

    // v12: each distinct id, UNKNOWN_TOPIC_ID with it and no name; the names beside are not
    // looked at.
    let one = by_id(7, None);
    let two = by_id(u128::MAX, Some("t"));
    let resp = metadata(
        &b,
        12,
        Some(vec![one.clone(), named("t"), two.clone(), by_id(7, None)]),
    );
    assert_eq!(topics(&resp), vec![(None, 100, 0), (None, 100, 0)]);
    assert_eq!(resp.topics[0].topic_id, one.topic_id);
    assert_eq!(resp.topics[1].topic_id, two.topic_id);
    assert_eq!(resp.brokers.len(), 1, "an answer, not a refusal");
    assert!(!resp.topics[0].topic_id.is_nil());
    let resp = metadata(&b, 12, Some(vec![by_id(1, None)]));
    assert_eq!(topics(&resp), vec![(None, 100, 0)]);

    // Before v12 ids and null names are refused whole: each topic INVALID_REQUEST, its name
    // or "", its id; no brokers.
    for version in [10, 11] {
        let resp = metadata(&b, version, Some(vec![named("t"), one.clone()]));
        assert_eq!(
            topics(&resp),
            vec![(Some("t".to_owned()), 42, 0), (Some(String::new()), 42, 0)],
            "v{version}"
        );
        assert_eq!(resp.topics[1].topic_id, one.topic_id);
        assert!(resp.brokers.is_empty());
        let resp = metadata(&b, version, Some(vec![by_id(0, None)]));
        assert_eq!(topics(&resp), vec![(Some(String::new()), 42, 0)], "v{version}");
    }
    // v12: neither a name nor an id.
    let resp = metadata(&b, 12, Some(vec![named("t"), by_id(0, None)]));
    assert_eq!(
        topics(&resp),
        vec![(Some("t".to_owned()), 42, 0), (Some(String::new()), 42, 0)]
    );
    rt.block_on(broker.shutdown()).expect("shutdown");
}

/// DescribeCluster names the cluster and this broker as Metadata does, with itself as the
/// controller; asked for the controllers' endpoint (v1+) it answers MISMATCHED_ENDPOINT_TYPE
/// and for an unknown one UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker; the cluster's authorized operations come only when asked.
#[test]
fn describe_cluster_names_this_broker_as_metadata_does() {
    use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &["node.id=3"], eoslog::LogOptions::default());
    let b = broker.local_addr().to_string();
    let md = metadata(&b, 12, None);
    for version in 0..=2 {
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = 1;
        r.include_cluster_authorized_operations = version == 2;
        let resp: DescribeClusterResponse = call(&mut conn(&b), ApiKey::DescribeCluster, version, &r);
        assert_eq!(resp.error_code, 0, "v{version}");
        assert_eq!(Some(&resp.cluster_id), md.cluster_id.as_ref(), "v{version}");
        assert_eq!(resp.controller_id.0, 3);
        let brokers: Vec<_> = resp
            .brokers
            .iter()
            .map(|x| (x.broker_id.0, x.host.to_string(), x.port, x.is_fenced))
            .collect();
        let expected: Vec<_> = md
            .brokers
            .iter()
            .map(|x| (x.node_id.0, x.host.to_string(), x.port, false))
            .collect();
        assert_eq!(brokers, expected, "v{version}");
        let ops = resp.cluster_authorized_operations;
        if version == 2 {
            // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
            // IDEMPOTENT_WRITE.
            assert_eq!(ops, 0b1_1111_1010_0000);
        } else {
            assert_eq!(ops, i32::MIN);
        }
    }
    // CONTROLLER: MISMATCHED_ENDPOINT_TYPE; an unknown type: UNSUPPORTED_ENDPOINT_TYPE.
    for (endpoint, code) in [(2, 114), (0, 115), (3, 115)] {
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = endpoint;
        let resp: DescribeClusterResponse = call(&mut conn(&b), ApiKey::DescribeCluster, 1, &r);
        assert_eq!(resp.error_code, code, "endpoint type {endpoint}");
        assert!(resp.brokers.is_empty());
    }
}

/// Metadata v8+ answers the authorized operations a client asks for as a broker without an
/// authorizer: every operation Kafka allows on a topic, and on the cluster up to v10 (the
/// field is gone from v11); not asked, `i32::MIN`.
#[test]
fn authorized_operations_come_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    for version in [8, 10, 11, 12] {
        for asked in [false, true] {
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![named("t")]);
            r.include_cluster_authorized_operations = asked && version <= 10;
            r.include_topic_authorized_operations = asked;
            let resp: MetadataResponse = call(&mut conn(&b), ApiKey::Metadata, version, &r);
            let cluster = if asked && version <= 10 { 8096 } else { i32::MIN };
            // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
            let topic = if asked { 0b1101_1111_1000 } else { i32::MIN };
            if version <= 10 {
                assert_eq!(resp.cluster_authorized_operations, cluster, "v{version} {asked}");
            }
            assert_eq!(
                resp.topics[0].topic_authorized_operations, topic,
                "v{version} {asked}"
            );
        }
    }
}
