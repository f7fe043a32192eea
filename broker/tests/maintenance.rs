//! Invariant: a broker embedded in a process runs the store's maintenance on its own timer:
//! segments past `retention.bytes` are deleted while clients produce, without a request
//! asking for it.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, in_process};
use eoslog::{BatchBuilder, NewRecord};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

#[test]
fn retention_runs_in_an_embedded_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(
        dir.path(),
        &[
            "log.segment.bytes=65536",
            "log.retention.bytes=131072",
            "eoslog.maintenance.interval.ms=100",
            "log.retention.check.interval.ms=100",
            "eoslog.preallocate.bytes=0",
        ],
        eoslog::LogOptions::default(),
    );
    broker.store().create_topic("r", 1, &[]).expect("topic");
    let mut s = std::net::TcpStream::connect(broker.local_addr()).expect("connect");
    let value = vec![b'v'; 1000];
    let batch = BatchBuilder::new()
        .build(
            &(0..10)
                .map(|_| NewRecord::value(1_700_000_000_000, &value))
                .collect::<Vec<_>>(),
        )
        .expect("batch");
    for _ in 0..100 {
        let mut p = PartitionProduceData::default();
        p.records = Some(Bytes::from(batch.clone()));
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("r"));
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &req);
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    let log = broker.store().partition("r", 0).expect("log");
    assert_eq!(log.log_end_offset().0, 1000);
    // Wait for a pass after the last produce: one that ran while the produces went on may
    // already have moved the log start and left more behind it (seen under CI load).
    let kept = || -> u64 { log.segments().iter().map(|s| s.size).sum() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while (log.log_start_offset().0 == 0 || kept() > 131_072 + 65_536 + 10_100) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let size = kept();
    assert!(
        log.log_start_offset().0 > 0,
        "no segment deleted ({size} bytes kept)"
    );
    assert!(size <= 131_072 + 65_536 + 10_100, "{size} bytes kept");
    drop(log);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
