//! Invariant: no input a client can send crashes the broker or changes what is stored.
//! A frame size of 2 GiB or below a header, an unknown API key, a version outside the
//! served range, a body that does not decode, a forged array count of 2^31 - 1, a client
//! that disconnects mid-request, a batch with a wrong CRC and ten thousand idle
//! connections each get a closed connection or an error response; afterwards the broker
//! still serves, the partition's end offset is what the good produce left, and SIGTERM
//! exits 0 with the log intact on reopen.

mod common;

use std::io::Write;
use std::net::TcpStream;

use bytes::Bytes;
use common::{call, closed, read_frame, BrokerProcess};
use eoslog::{BatchBuilder, NewRecord};
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest, ListOffsetsResponse,
    ProduceRequest, ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

fn raw(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
}

fn frame(header_and_body: &[u8]) -> Vec<u8> {
    let mut v = (header_and_body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(header_and_body);
    v
}

/// key, version, correlation id, client id "" (a v1 request header).
fn header_v1(key: i16, version: i16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&key.to_be_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&7i32.to_be_bytes());
    v.extend_from_slice(&0i16.to_be_bytes());
    v
}

fn produce(stream: &mut TcpStream, records: Bytes) -> i16 {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    let resp: ProduceResponse = call(stream, ApiKey::Produce, 9, &req);
    resp.responses[0].partition_responses[0].error_code
}

fn end_offset(b: &BrokerProcess) -> i64 {
    let mut s = b.connect();
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.topics = vec![t];
    let resp: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 7, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn bad_input_never_crashes_the_broker_nor_changes_stored_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = BrokerProcess::start(dir.path(), &["socket.request.max.bytes=1048576"]);
    let mut s = b.connect();
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_static_str("t"));
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    req.timeout_ms = 5000;
    let created: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 5, &req);
    assert_eq!(created.topics[0].error_code, 0);
    let batch = BatchBuilder::new()
        .build(&[
            NewRecord::value(1_700_000_000_000, b"kept"),
            NewRecord::value(1_700_000_000_000, b"kept too"),
        ])
        .expect("batch");
    assert_eq!(produce(&mut s, Bytes::from(batch.clone())), 0);
    assert_eq!(end_offset(&b), 2);

    // A wrong CRC: CORRUPT_MESSAGE, nothing appended.
    let mut corrupt = batch.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(produce(&mut s, Bytes::from(corrupt)), 2);
    // A truncated batch: also refused.
    assert_ne!(produce(&mut s, Bytes::from(batch[..batch.len() - 3].to_vec())), 0);

    // ApiVersions above the served range: a v0 answer, UNSUPPORTED_VERSION (35), and the
    // ApiVersions range to retry with.
    let mut v = b.connect();
    raw(&mut v, &frame(&header_v1(18, 99)));
    let mut resp = read_frame(&mut v).expect("downgrade answer");
    let h = ResponseHeader::decode(&mut resp, 0).expect("header");
    assert_eq!(h.correlation_id, 7);
    let body = ApiVersionsResponse::decode(&mut resp, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert_eq!(body.api_keys.len(), 1);
    assert_eq!((body.api_keys[0].api_key, body.api_keys[0].max_version), (18, 4));

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a 2 GiB size field", 0x7fff_ffffi32.to_be_bytes().to_vec()),
        ("a negative size field", (-1i32).to_be_bytes().to_vec()),
        ("a size below a header", frame(&[0, 3])),
        ("an unknown API key", frame(&header_v1(999, 0))),
        ("a version below the served range", frame(&header_v1(0, 2))),
        ("a version above the served range", frame(&header_v1(3, 13))),
        (
            "a body that ends early",
            frame(&[header_v1(3, 1), vec![0, 0, 0, 5, 0]].concat()),
        ),
        (
            "an array count of 2^31 - 1",
            frame(&[header_v1(3, 1), 0x7fff_ffffi32.to_be_bytes().to_vec()].concat()),
        ),
        (
            "a compact array count of 2^32 - 1",
            frame(&[header_v1(3, 9), vec![0], vec![0xff, 0xff, 0xff, 0xff, 0x0f]].concat()),
        ),
        (
            "a produce whose topic count is forged",
            frame(
                &[
                    header_v1(0, 3),
                    vec![0xff, 0xff, 0, 0, 0, 0, 0x13, 0x88, 0x7f, 0xff, 0xff, 0xff],
                ]
                .concat(),
            ),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = b.connect();
        raw(&mut c, &bytes);
        assert!(closed(&mut c), "{what}: connection not closed");
        assert!(b.is_running(), "{what}: broker died");
    }

    // A client that sends half a request and disconnects.
    {
        let mut c = b.connect();
        raw(&mut c, &100i32.to_be_bytes());
        raw(&mut c, &header_v1(3, 1));
    }

    // Ten thousand idle connections (fewer if this process may not open them), then a
    // request on a new one is still served.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let wanted = 10_000usize.min(limit.current.unwrap_or(u64::MAX).saturating_sub(200) as usize);
    let idle: Vec<TcpStream> = (0..wanted).map(|_| b.connect()).collect();
    assert_eq!(end_offset(&b), 2);
    eprintln!("{} idle connections held", idle.len());
    drop(idle);

    assert!(b.is_running());
    assert_eq!(end_offset(&b), 2, "stored data changed");
    let status = b.terminate();
    assert!(status.success(), "SIGTERM exit: {status:?}");

    // The log reopens with the two records and nothing else.
    let store = eoslog::Store::open(dir.path(), eoslog::StoreConfig::default()).expect("reopen");
    let log = store.partition("t", 0).expect("partition");
    assert_eq!(log.log_end_offset().0, 2);
    store.close().expect("close");
}
