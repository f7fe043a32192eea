//! Invariant: DeleteRecords never deletes what Kafka refuses to delete, checked in Kafka's
//! order (`KafkaApis.handleDeleteRecordsRequest`, `ReplicaManager.deleteRecordsOnLocalLog`,
//! `Partition.deleteRecordsOnLeader`): an unknown topic or partition is
//! UNKNOWN_TOPIC_OR_PARTITION, even of an internal topic; a partition of `__consumer_offsets`
//! or `__transaction_state` is INVALID_TOPIC_EXCEPTION and keeps its committed offsets and
//! transaction state; a topic whose `cleanup.policy` lacks `delete` is POLICY_VIOLATION
//! whatever the offset; other topics move their log start offset as asked.

mod common;

use common::{call, commit_offset_to, conn, in_process, s};
use eoslog::{AppendOrigin, BatchBuilder, NewRecord};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, TopicName};

/// DeleteRecords at `version` of `(topic, partition, offset)` each; each partition's
/// `(topic, partition, error code, low watermark)`, in order.
fn delete(addr: &str, version: i16, partitions: &[(&str, i32, i64)]) -> Vec<(String, i32, i16, i64)> {
    let mut r = DeleteRecordsRequest::default();
    r.timeout_ms = 10_000;
    r.topics = partitions
        .iter()
        .map(|(topic, partition, offset)| {
            let mut p = DeleteRecordsPartition::default();
            p.partition_index = *partition;
            p.offset = *offset;
            let mut t = DeleteRecordsTopic::default();
            t.name = TopicName(s(topic));
            t.partitions = vec![p];
            t
        })
        .collect();
    let resp: DeleteRecordsResponse = call(&mut conn(addr), ApiKey::DeleteRecords, version, &r);
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.low_watermark,
                )
            })
        })
        .collect()
}

fn append(broker: &eoslog_broker::Broker, topic: &str, records: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    let values: Vec<NewRecord> = (0..records)
        .map(|_| NewRecord::key_value(now, b"k", b"v"))
        .collect();
    let batch = BatchBuilder::new().build(&values).expect("batch");
    let log = broker.store().partition(topic, 0).expect("partition");
    let _ = log.append(&batch, AppendOrigin::Client).expect("append");
}

#[test]
fn internal_and_compacted_topics_keep_their_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let store = broker.store();
    store.create_topic("t", 1, &[]).expect("topic");
    store
        .create_topic("compacted", 1, &[("cleanup.policy", "compact")])
        .expect("topic");
    store
        .create_topic("both", 1, &[("cleanup.policy", "compact,delete")])
        .expect("topic");
    let b = broker.local_addr().to_string();
    // A committed offset: a record in a partition of `__consumer_offsets`.
    assert_eq!(commit_offset_to(&b, "g", "", -1, "t", 5), 0);
    for topic in ["t", "compacted", "both"] {
        append(&broker, topic, 3);
    }

    let internal: Vec<(String, u32)> = store
        .topics()
        .into_iter()
        .filter(|t| t.internal)
        .map(|t| (t.name, t.partitions))
        .collect();
    assert_eq!(internal.len(), 2);
    for version in [0, 1, 2] {
        for (topic, count) in &internal {
            let (topic, count) = (topic.as_str(), *count);
            for p in 0..count as i32 {
                for offset in [-1, 1, 1_000_000] {
                    assert_eq!(
                        delete(&b, version, &[(topic, p, offset)]),
                        vec![(topic.to_owned(), p, 17, -1)],
                        "v{version}: {topic}-{p} to {offset}"
                    );
                }
            }
            // An unknown partition is that first.
            assert_eq!(
                delete(&b, version, &[(topic, count as i32, -1)]),
                vec![(topic.to_owned(), count as i32, 3, -1)]
            );
        }
        for offset in [-1, 0, 2, -5] {
            assert_eq!(
                delete(&b, version, &[("compacted", 0, offset)]),
                vec![("compacted".to_owned(), 0, 44, -1)],
                "v{version}: a compact-only topic, to {offset}"
            );
        }
        assert_eq!(
            delete(&b, version, &[("compacted", 1, 0), ("nope", 0, 0)]),
            vec![("compacted".to_owned(), 1, 3, -1), ("nope".to_owned(), 0, 3, -1)]
        );
    }
    let mut committed = 0;
    for (topic, count) in &internal {
        for p in 0..*count as i32 {
            let log = store.partition(topic, p).expect("internal partition");
            assert_eq!(log.log_start_offset().0, 0, "{topic}-{p} keeps its records");
            committed += log.high_watermark().0;
        }
    }
    assert!(committed > 0, "the commit is in `__consumer_offsets`");
    assert_eq!(
        store.partition("compacted", 0).expect("log").log_start_offset().0,
        0
    );

    // A topic that deletes: the records go.
    assert_eq!(delete(&b, 2, &[("t", 0, 2)]), vec![("t".to_owned(), 0, 0, 2)]);
    let end = store.partition("both", 0).expect("log").high_watermark().0;
    assert!(end > 0);
    assert_eq!(
        delete(&b, 2, &[("both", 0, -1)]),
        vec![("both".to_owned(), 0, 0, end)]
    );
    assert_eq!(delete(&b, 2, &[("t", 0, -5)]), vec![("t".to_owned(), 0, 1, -1)]);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
