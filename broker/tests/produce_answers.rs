//! Invariant: Produce, Fetch and AddPartitionsToTxn answer in Kafka's order and with its
//! codes. A produce partition is checked for existence first (UNKNOWN_TOPIC_OR_PARTITION),
//! then for records (none: INVALID_RECORD), then for `acks` (INVALID_REQUIRED_ACKS); a
//! produce with acks=0 gets no response when it succeeds and a closed connection when any
//! partition fails. A fetch of no partition is answered at once, whatever its wait.
//! AddPartitionsToTxn answers every partition the broker does not have with
//! UNKNOWN_TOPIC_OR_PARTITION and the others with OPERATION_NOT_ATTEMPTED, adding nothing.
//! A record refused on its own (a timestamp out of `message.timestamp.*.max.ms`, a record
//! without a key in a compacted topic) is answered from v8 with Kafka's summary message and
//! every refused record's index in its batch with Kafka's reason, and with the code alone
//! before v8; its log start offset is the partition's, as Kafka answers a record validation
//! error.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, closed, conn, in_process, s, send};
use eoslog::{BatchBuilder, NewRecord};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, TopicName,
    TransactionalId,
};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUIRED_ACKS: i16 = 21;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;

fn batch() -> Bytes {
    Bytes::from(
        BatchBuilder::new()
            .build(&[NewRecord::value(1_700_000_000_000, b"v")])
            .expect("batch"),
    )
}

/// A produce of `(topic, partition, records)` with `acks`.
fn request(acks: i16, parts: &[(&str, i32, Option<Bytes>)]) -> ProduceRequest {
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 5000;
    req.topic_data = parts
        .iter()
        .map(|(t, p, records)| {
            let mut pd = PartitionProduceData::default();
            pd.index = *p;
            pd.records = records.clone();
            let mut td = TopicProduceData::default();
            td.name = TopicName(s(t));
            td.partition_data = vec![pd];
            td
        })
        .collect();
    req
}

fn codes(resp: &ProduceResponse) -> Vec<i16> {
    resp.responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
        .collect()
}

#[test]
fn produce_and_fetch_answer_in_kafkas_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let log = broker.store().partition("t", 0).expect("partition");

    let parts = [
        ("t", 0, Some(batch())),
        ("t", 7, Some(batch())),
        ("t", 0, Some(Bytes::new())),
        ("t", 0, None),
    ];
    let resp: ProduceResponse = call(&mut conn(&b), ApiKey::Produce, 9, &request(5, &parts));
    assert_eq!(
        codes(&resp),
        vec![
            INVALID_REQUIRED_ACKS,
            UNKNOWN_TOPIC_OR_PARTITION,
            INVALID_RECORD,
            INVALID_RECORD
        ]
    );
    assert_eq!(log.log_end_offset().0, 0, "nothing stored");

    // acks=0 that succeeds: no response, and the connection serves the next request.
    let mut c = conn(&b);
    send(
        &mut c,
        ApiKey::Produce,
        9,
        &request(0, &[("t", 0, Some(batch()))]),
    );
    let resp: ProduceResponse = call(
        &mut c,
        ApiKey::Produce,
        9,
        &request(-1, &[("t", 0, Some(batch()))]),
    );
    assert_eq!(codes(&resp), vec![0]);
    assert_eq!(
        resp.responses[0].partition_responses[0].base_offset, 1,
        "the unanswered produce stored"
    );
    // acks=0 that fails: the connection closes, so the client learns of it.
    let mut c = conn(&b);
    send(
        &mut c,
        ApiKey::Produce,
        9,
        &request(0, &[("t", 7, Some(batch()))]),
    );
    assert!(closed(&mut c), "a failed acks=0 produce closes the connection");

    // A fetch of nothing returns at once, though it would wait 10 s for a byte.
    let mut f = FetchRequest::default();
    f.max_wait_ms = 10_000;
    f.min_bytes = 1;
    f.max_bytes = 1 << 20;
    let started = Instant::now();
    let resp: FetchResponse = call(&mut conn(&b), ApiKey::Fetch, 12, &f);
    assert_eq!(resp.error_code, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn add_partitions_to_txn_names_every_unknown_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 2, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(s("tx")));
    init.transaction_timeout_ms = 60_000;
    let pid: InitProducerIdResponse = call(&mut conn(&b), ApiKey::InitProducerId, 4, &init);
    assert_eq!(pid.error_code, 0);

    let add = |topics: &[(&str, &[i32])]| -> Vec<(String, Vec<(i32, i16)>)> {
        let mut r = AddPartitionsToTxnRequest::default();
        r.v3_and_below_transactional_id = TransactionalId(s("tx"));
        r.v3_and_below_producer_id = pid.producer_id;
        r.v3_and_below_producer_epoch = pid.producer_epoch;
        r.v3_and_below_topics = topics
            .iter()
            .map(|(t, ps)| {
                let mut x = AddPartitionsToTxnTopic::default();
                x.name = TopicName(s(t));
                x.partitions = ps.to_vec();
                x
            })
            .collect();
        let resp: AddPartitionsToTxnResponse = call(&mut conn(&b), ApiKey::AddPartitionsToTxn, 3, &r);
        resp.results_by_topic_v3_and_below
            .iter()
            .map(|t| {
                (
                    t.name.to_string(),
                    t.results_by_partition
                        .iter()
                        .map(|p| (p.partition_index, p.partition_error_code))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        add(&[("t", &[0, 5, 1]), ("nope", &[0])]),
        vec![
            (
                "t".to_owned(),
                vec![
                    (0, OPERATION_NOT_ATTEMPTED),
                    (5, UNKNOWN_TOPIC_OR_PARTITION),
                    (1, OPERATION_NOT_ATTEMPTED)
                ]
            ),
            ("nope".to_owned(), vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]),
        ]
    );
    let described = broker.store().transactions().describe("tx").expect("describe");
    assert!(
        described.partitions.is_empty(),
        "nothing was added: {described:?}"
    );
    assert_eq!(
        add(&[("t", &[0, 1])]),
        vec![("t".to_owned(), vec![(0, 0), (1, 0)])]
    );
}

#[test]
fn every_refused_record_is_named_with_its_index_and_why_from_v8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    broker
        .store()
        .create_topic("c", 1, &[("cleanup.policy", "compact")])
        .expect("compacted topic");
    let b = broker.local_addr().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // The second and third records are two and three hours ahead: past Kafka 4's default
    // `after.max.ms` of one hour.
    let future = Bytes::from(
        BatchBuilder::new()
            .build(&[
                NewRecord::value(now, b"v"),
                NewRecord::value(now + 2 * 3_600_000, b"v"),
                NewRecord::value(now + 3 * 3_600_000, b"v"),
            ])
            .expect("batch"),
    );
    // The first and last records have no key.
    let keyless = Bytes::from(
        BatchBuilder::new()
            .build(&[
                NewRecord::value(now, b"v"),
                NewRecord::key_value(now, b"k", b"v"),
                NewRecord::value(now, b"v"),
            ])
            .expect("batch"),
    );
    let parts = [("t", 0, Some(future)), ("c", 0, Some(keyless))];
    let mut c = conn(&b);
    let resp: ProduceResponse = call(&mut c, ApiKey::Produce, 9, &request(-1, &parts));
    assert_eq!(codes(&resp), vec![INVALID_TIMESTAMP, INVALID_RECORD]);
    let details: Vec<_> = resp
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .map(|p| {
            (
                p.error_message.as_ref().map(ToString::to_string),
                p.record_errors
                    .iter()
                    .map(|e| {
                        (
                            e.batch_index,
                            e.batch_index_error_message.as_ref().map(ToString::to_string),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        details[0].0.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    let indexes = |d: &[(i32, Option<String>)]| d.iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(indexes(&details[0].1), [1, 2], "the second and third records");
    let why = details[0].1[0].1.clone().expect("a reason");
    assert!(
        why.contains("out of range") && why.contains(&(now + 2 * 3_600_000).to_string()),
        "{why}"
    );
    // As Kafka's ReplicaManager answers a record validation error: the log start offset.
    assert!(resp
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .all(|p| p.log_start_offset == 0));
    assert_eq!(indexes(&details[1].1), [0, 2], "the records without a key");
    for (_, why) in &details[1].1 {
        assert_eq!(
            why.as_deref(),
            Some("Compacted topic cannot accept message without key in topic partition c-0")
        );
    }
    assert!(
        details[1]
            .0
            .as_deref()
            .is_some_and(|m| m.contains("due to 2 record errors in total") && m.contains("batchIndex=2")),
        "{:?}",
        details[1]
    );
    // Nothing was stored.
    for t in ["t", "c"] {
        let log = broker.store().partition(t, 0).expect("partition");
        assert_eq!(log.log_end_offset().0, 0, "{t}");
    }
    // Before v8 the answer has no room for them: the code alone.
    let resp: ProduceResponse = call(&mut c, ApiKey::Produce, 7, &request(-1, &parts));
    assert_eq!(codes(&resp), vec![INVALID_TIMESTAMP, INVALID_RECORD]);
    assert!(resp
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .all(|p| p.error_message.is_none() && p.record_errors.is_empty()));
}
