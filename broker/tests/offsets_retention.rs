//! Invariant: the broker applies Kafka's `offsets.retention.minutes` (KIP-211) on its
//! maintenance timer. A group whose last member left keeps its offsets for the retention,
//! counted from when it emptied by the store's clock, then loses them and is deleted: the
//! broker forgets it (DescribeGroups answers Dead, ListGroups omits it) and a new join starts
//! it afresh at generation 1. A group with a member keeps its offsets however old they are.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, commit_offset, conn, in_process, s};
use eoslog::{LogOptions, ManualClock, StdFileSystem};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};

const MINUTE: i64 = 60_000;

/// Joins `group` alone and syncs: a Stable group at the returned generation.
fn join_and_sync(b: &str, group: &str) -> (String, i32) {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.session_timeout_ms = 30_000;
    r.rebalance_timeout_ms = 10_000;
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"subscription");
    r.protocols = vec![p];
    let j: JoinGroupResponse = call(&mut conn(b), ApiKey::JoinGroup, 5, &r);
    assert_eq!(j.error_code, 0);
    let member = j.member_id.to_string();
    let mut y = SyncGroupRequest::default();
    y.group_id = GroupId(s(group));
    y.member_id = s(&member);
    y.generation_id = j.generation_id;
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(&member);
    a.assignment = Bytes::from_static(b"in-0");
    y.assignments = vec![a];
    let sy: SyncGroupResponse = call(&mut conn(b), ApiKey::SyncGroup, 3, &y);
    assert_eq!(sy.error_code, 0);
    (member, j.generation_id)
}

fn commit(b: &str, group: &str, member: &str, generation: i32, offset: i64) {
    assert_eq!(commit_offset(b, group, member, generation, offset), 0);
}

/// The group's committed offset of `in`-0 (-1: none).
fn fetched(b: &str, group: &str) -> i64 {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s("in"));
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = call(&mut conn(b), ApiKey::OffsetFetch, 7, &r);
    assert_eq!(resp.error_code, 0);
    resp.topics[0].partitions[0].committed_offset
}

fn state(b: &str, group: &str) -> String {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s(group))];
    let resp: DescribeGroupsResponse = call(&mut conn(b), ApiKey::DescribeGroups, 4, &r);
    resp.groups[0].group_state.to_string()
}

fn listed(b: &str) -> Vec<String> {
    let resp: ListGroupsResponse = call(&mut conn(b), ApiKey::ListGroups, 3, &ListGroupsRequest::default());
    let mut out: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
    out.sort();
    out
}

fn leave(b: &str, group: &str, member: &str) {
    let mut m = MemberIdentity::default();
    m.member_id = s(member);
    let mut r = LeaveGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.members = vec![m];
    let resp: LeaveGroupResponse = call(&mut conn(b), ApiKey::LeaveGroup, 3, &r);
    assert_eq!(resp.error_code, 0);
}

/// Waits a few maintenance runs (every 20 ms) of the broker.
fn let_maintenance_run() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn an_empty_groups_offsets_expire_and_the_group_is_forgotten_while_a_live_group_keeps_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    let clock = Arc::new(ManualClock::new(now));
    let options = LogOptions {
        fs: Arc::new(StdFileSystem),
        clock: clock.clone(),
    };
    let (rt, broker) = in_process(
        dir.path(),
        &[
            "offsets.retention.minutes=10",
            "offsets.retention.check.interval.ms=1",
            "eoslog.maintenance.interval.ms=20",
            "group.initial.rebalance.delay.ms=0",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.num.partitions=2",
        ],
        options,
    );
    broker.store().create_topic("in", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    let (gone, generation) = join_and_sync(&b, "gone");
    commit(&b, "gone", &gone, generation, 5);
    let (live, live_generation) = join_and_sync(&b, "live");
    commit(&b, "live", &live, live_generation, 7);
    leave(&b, "gone", &gone);
    // Let the Empty record be written (stamped with the store's clock, now).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker
        .store()
        .offsets()
        .stored_groups()
        .iter()
        .any(|(g, v)| g == "gone" && v.members.is_empty())
    {
        assert!(Instant::now() < deadline, "the Empty record was never stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state(&b, "gone"), "Empty");

    clock.advance(10 * MINUTE - 1);
    let_maintenance_run();
    assert_eq!(fetched(&b, "gone"), 5, "one millisecond short of the retention");
    assert_eq!(state(&b, "gone"), "Empty");

    clock.advance(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetched(&b, "gone") != -1 {
        assert!(Instant::now() < deadline, "the offset never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&b, "gone") != "Dead" {
        assert!(Instant::now() < deadline, "the broker kept the deleted group");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listed(&b), vec!["live".to_owned()]);
    assert_eq!(fetched(&b, "live"), 7, "a group with a member keeps its offsets");
    assert_eq!(state(&b, "live"), "Stable");

    // The deleted group's name is free: a join starts it afresh.
    let (_, again) = join_and_sync(&b, "gone");
    assert_eq!(again, 1);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
