//! A broker process on a free loopback port, and raw protocol requests to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

// The library's test file systems (a gate that holds a file operation, and the wrapper
// it is built on).
#[path = "../../../tests/common/gate.rs"]
mod gate;
#[allow(unused_imports)]
pub use gate::{gated_fs, is_segment, Gate, GateOn, WrappedFs};

/// A running `eoslog-broker`.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
}

impl BrokerProcess {
    pub fn start(dir: &Path, configs: &[&str]) -> BrokerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eoslog-broker"));
        cmd.arg("--data-dir").arg(dir).arg("--listen").arg("127.0.0.1:0");
        for c in configs {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn broker");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        BrokerProcess { child, addr }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .expect("kill");
        self.child.wait().expect("wait")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `body` as request `api` at `version` and decodes the response as `R`.
pub fn call<Q: Encodable, R: Decodable>(stream: &mut TcpStream, api: ApiKey, version: i16, body: &Q) -> R {
    send(stream, api, version, body);
    let mut frame = read_frame(stream).expect("response");
    let rh =
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).expect("response header");
    assert_eq!(rh.correlation_id, 42);
    R::decode(&mut frame, version).expect("response body")
}

/// Sends `body` as request `api` at `version` (correlation id 42), reading nothing.
pub fn send<Q: Encodable>(stream: &mut TcpStream, api: ApiKey, version: i16, body: &Q) {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let mut h = RequestHeader::default();
    h.request_api_key = api as i16;
    h.request_api_version = version;
    h.correlation_id = 42;
    h.client_id = Some(StrBytes::from_static_str("bad-input-test"));
    h.encode(&mut buf, api.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&buf).expect("write");
}

/// One response frame, or `None` when the broker closed the connection.
pub fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return None
        }
        Err(e) => panic!("read: {e}"),
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("frame body");
    Some(Bytes::from(body))
}

/// Whether the broker closed `stream` (reads end) within the read timeout.
pub fn closed(stream: &mut TcpStream) -> bool {
    read_frame(stream).is_none()
}

/// A fresh connection with a 20 s read timeout (one request each: a JoinGroup may wait
/// for a rebalance).
pub fn conn(addr: &str) -> TcpStream {
    let c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    c
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// OffsetCommit v8 of `offset` for partition 0 of topic `in`; the partition's error code.
pub fn commit_offset(addr: &str, group: &str, member_id: &str, generation: i32, offset: i64) -> i16 {
    commit_offset_to(addr, group, member_id, generation, "in", offset)
}

/// OffsetCommit v8 of `offset` for partition 0 of `topic`; the partition's error code.
pub fn commit_offset_to(
    addr: &str,
    group: &str,
    member_id: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName};
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member_id);
    r.topics = vec![t];
    let resp: OffsetCommitResponse = call(&mut conn(addr), ApiKey::OffsetCommit, 8, &r);
    resp.topics[0].partitions[0].error_code
}

/// A consumer-protocol subscription (version 1) to `topics`, as a consumer's JoinGroup
/// metadata carries it.
pub fn subscription(topics: &[&str]) -> Bytes {
    let mut sub = kafka_protocol::messages::ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| s(t)).collect();
    let mut b = BytesMut::new();
    b.put_i16(1);
    sub.encode(&mut b, 1).expect("encode");
    b.freeze()
}

/// A broker in this process, on a runtime of two workers, with `configs` (`KEY=VALUE`) and
/// the store's file system and clock.
pub fn in_process(
    dir: &Path,
    configs: &[&str],
    options: eoslog::LogOptions,
) -> (tokio::runtime::Runtime, eoslog_broker::Broker) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = eoslog_broker::BrokerConfig::default();
    for c in configs {
        config.set_pair(c).expect("config");
    }
    let broker = rt
        .block_on(eoslog_broker::Broker::start_with(
            dir,
            "127.0.0.1:0".parse().expect("addr"),
            config,
            options,
        ))
        .expect("start");
    (rt, broker)
}

/// A JoinGroup of a new member of `group` with `subscription` (protocol type `consumer`,
/// assignor `range`; sessions of 30 s, rebalances of 10 s).
pub fn join_request(group: &str, subscription: Bytes) -> kafka_protocol::messages::JoinGroupRequest {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{GroupId, JoinGroupRequest};
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.session_timeout_ms = 30_000;
    r.rebalance_timeout_ms = 10_000;
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = subscription;
    r.protocols = vec![p];
    r
}

/// JoinGroup at `version`. A new dynamic member asked for its id (MEMBER_ID_REQUIRED, from
/// v4) joins again with that id, as clients do; the second answer.
pub fn join_group(
    addr: &str,
    r: &kafka_protocol::messages::JoinGroupRequest,
    version: i16,
) -> kafka_protocol::messages::JoinGroupResponse {
    use kafka_protocol::messages::JoinGroupResponse;
    let j: JoinGroupResponse = call(&mut conn(addr), ApiKey::JoinGroup, version, r);
    if j.error_code != 79 {
        return j;
    }
    assert!(
        r.member_id.is_empty() && version >= 4,
        "MEMBER_ID_REQUIRED only for a new member"
    );
    let mut again = r.clone();
    again.member_id = j.member_id;
    call(&mut conn(addr), ApiKey::JoinGroup, version, &again)
}

/// Joins `group` alone with `subscription` (protocol type `consumer`, assignor `range`) and
/// syncs with an empty assignment: a Stable group. Returns the member id and generation.
pub fn join_and_sync(addr: &str, group: &str, subscription: Bytes) -> (String, i32) {
    use kafka_protocol::messages::JoinGroupResponse;
    let j: JoinGroupResponse = join_group(addr, &join_request(group, subscription), 5);
    assert_eq!(j.error_code, 0);
    let member = j.member_id.to_string();
    assert_eq!(sync_alone(addr, group, &member, j.generation_id), 0);
    (member, j.generation_id)
}

/// SyncGroup v3 of the only member of `group`, as its leader, with an empty assignment;
/// the error code.
pub fn sync_alone(addr: &str, group: &str, member: &str, generation: i32) -> i16 {
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{GroupId, SyncGroupRequest, SyncGroupResponse};
    let mut y = SyncGroupRequest::default();
    y.group_id = GroupId(s(group));
    y.member_id = s(member);
    y.generation_id = generation;
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(member);
    y.assignments = vec![a];
    let sy: SyncGroupResponse = call(&mut conn(addr), ApiKey::SyncGroup, 3, &y);
    sy.error_code
}

/// Heartbeat v3 of a member of `group`; its error code.
pub fn heartbeat(addr: &str, group: &str, member_id: &str, generation: i32) -> i16 {
    use kafka_protocol::messages::{GroupId, HeartbeatRequest, HeartbeatResponse};
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member_id);
    r.generation_id = generation;
    let resp: HeartbeatResponse = call(&mut conn(addr), ApiKey::Heartbeat, 3, &r);
    resp.error_code
}

/// A manual clock for the store, starting at the wall clock's now (the broker's own
/// timers run on the wall clock).
pub fn wall_clock() -> std::sync::Arc<eoslog::ManualClock> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    std::sync::Arc::new(eoslog::ManualClock::new(now))
}

/// LeaveGroup v3 of one member; must succeed.
pub fn leave(addr: &str, group: &str, member: &str) {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::{GroupId, LeaveGroupRequest, LeaveGroupResponse};
    let mut m = MemberIdentity::default();
    m.member_id = s(member);
    let mut r = LeaveGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.members = vec![m];
    let resp: LeaveGroupResponse = call(&mut conn(addr), ApiKey::LeaveGroup, 3, &r);
    assert_eq!(resp.error_code, 0);
}

/// The group's state as DescribeGroups v4 gives it.
pub fn group_state(addr: &str, group: &str) -> String {
    use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s(group))];
    let resp: DescribeGroupsResponse = call(&mut conn(addr), ApiKey::DescribeGroups, 4, &r);
    resp.groups[0].group_state.to_string()
}

/// Every group ListGroups v3 lists, sorted.
pub fn listed_groups(addr: &str) -> Vec<String> {
    use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};
    let resp: ListGroupsResponse = call(
        &mut conn(addr),
        ApiKey::ListGroups,
        3,
        &ListGroupsRequest::default(),
    );
    let mut out: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
    out.sort();
    out
}

/// The group's committed offsets of partition 0 of `topics` (-1: none), by OffsetFetch v7.
pub fn fetched_offsets(addr: &str, group: &str, topics: &[&str]) -> Vec<i64> {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = Some(
        topics
            .iter()
            .map(|t| {
                let mut x = OffsetFetchRequestTopic::default();
                x.name = TopicName(s(t));
                x.partition_indexes = vec![0];
                x
            })
            .collect(),
    );
    let resp: OffsetFetchResponse = call(&mut conn(addr), ApiKey::OffsetFetch, 7, &r);
    assert_eq!(resp.error_code, 0);
    resp.topics
        .iter()
        .map(|t| t.partitions[0].committed_offset)
        .collect()
}
