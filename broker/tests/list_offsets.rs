//! Invariant: ListOffsets answers each partition asked for, and a partition asked for twice
//! (in one topic entry or in two) gets INVALID_REQUEST at each place it was asked, as
//! Kafka's `duplicatePartitions` answers; the other partitions of the request are answered
//! as usual. MAX_TIMESTAMP (-3) gives the first record with the largest timestamp.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};

const INVALID_REQUEST: i16 = 42;

fn asked(topic: &str, partitions: &[i32]) -> ListOffsetsTopic {
    asked_at(topic, partitions, -1)
}

/// Partitions of `topic` asked at `timestamp` (-1 latest, -2 earliest, -3 max timestamp).
fn asked_at(topic: &str, partitions: &[i32], timestamp: i64) -> ListOffsetsTopic {
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = partitions
        .iter()
        .map(|&i| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = i;
            p.timestamp = timestamp;
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

/// The offset and timestamp ListOffsets v7 gives `topic`'s partition 0 at `timestamp`.
fn offset_and_timestamp(addr: &str, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = kafka_protocol::messages::BrokerId(-1);
    r.topics = vec![asked_at(topic, &[0], timestamp)];
    let resp: ListOffsetsResponse = call(&mut conn(addr), ApiKey::ListOffsets, 7, &r);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[test]
fn max_timestamp_gives_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    assert_eq!(
        offset_and_timestamp(&b, "t", -3),
        (0, -1, -1),
        "an empty partition"
    );
    let log = broker.store().partition("t", 0).expect("partition");
    let t0 = 1_700_000_000_000;
    let recs: Vec<eoslog::NewRecord<'_>> = [3, 9, 5, 9]
        .iter()
        .map(|d| eoslog::NewRecord::value(t0 + d, b"v"))
        .collect();
    let batch = eoslog::BatchBuilder::new().build(&recs).expect("build");
    let outcome = log.append(&batch, eoslog::AppendOrigin::Client).expect("append");
    assert!(
        matches!(outcome, eoslog::AppendOutcome::Appended(_)),
        "{outcome:?}"
    );
    assert_eq!(offset_and_timestamp(&b, "t", -3), (0, 1, t0 + 9));
    rt.block_on(broker.shutdown()).expect("shutdown");
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
