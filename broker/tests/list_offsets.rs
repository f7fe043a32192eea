//! Invariant: ListOffsets answers each partition asked for, and a partition asked for twice
//! (in one topic entry or in two) gets INVALID_REQUEST at each place it was asked, as
//! Kafka's `duplicatePartitions` answers; the other partitions of the request are answered
//! as usual.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};

const INVALID_REQUEST: i16 = 42;

fn asked(topic: &str, partitions: &[i32]) -> ListOffsetsTopic {
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = partitions
        .iter()
        .map(|&i| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = i;
            p.timestamp = -1;
            p
        })
        .collect();
    t
}

/// Each answer's topic, partition, error code and offset, in order.
fn list(addr: &str, version: i16, topics: Vec<ListOffsetsTopic>) -> Vec<(String, i32, i16, i64)> {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = kafka_protocol::messages::BrokerId(-1);
    r.topics = topics;
    let resp: ListOffsetsResponse = call(&mut conn(addr), ApiKey::ListOffsets, version, &r);
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code, p.offset))
        })
        .collect()
}

#[test]
fn a_partition_asked_twice_is_an_invalid_request_at_each_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 3, &[]).expect("topic");
    broker.store().create_topic("u", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let row = |t: &str, p: i32, code: i16, offset: i64| (t.to_owned(), p, code, offset);
    for version in [1, 4, 7] {
        assert_eq!(
            list(
                &b,
                version,
                vec![asked("t", &[0, 1, 0]), asked("u", &[0]), asked("t", &[2, 1])]
            ),
            vec![
                row("t", 0, INVALID_REQUEST, -1),
                row("t", 1, INVALID_REQUEST, -1),
                row("t", 0, INVALID_REQUEST, -1),
                row("u", 0, 0, 0),
                row("t", 2, 0, 0),
                row("t", 1, INVALID_REQUEST, -1),
            ],
            "v{version}"
        );
        assert_eq!(
            list(&b, version, vec![asked("t", &[0, 1])]),
            vec![row("t", 0, 0, 0), row("t", 1, 0, 0)],
            "v{version}: once each is answered"
        );
    }
    rt.block_on(broker.shutdown()).expect("shutdown");
}
