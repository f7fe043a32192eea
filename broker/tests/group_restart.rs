//! Invariant: a consumer group survives a broker SIGKILL as Kafka's survives a coordinator
//! failover. Once the leader's SyncGroup is answered the group is stored, and the restarted
//! broker resumes it at the same generation with the same members and assignments:
//! heartbeats of the old generation are answered NONE (no rebalance), SyncGroup gives each
//! member its assignment again, offset commits of that generation are accepted, and a new
//! member still triggers a normal rebalance to the next generation. A member that never
//! comes back is dropped when its session, counted from the restart, runs out. A group whose
//! record cannot be stored is never answered as settled: its syncs get Kafka's error and it
//! rebalances.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, commit_offset, conn, heartbeat, join_group, s, BrokerProcess};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};

const GROUP: &str = "resumed";
const CONFIGS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=500",
];

fn join(b: &str, member_id: &str, session_ms: i32) -> JoinGroupResponse {
    join_with(b, member_id, session_ms, Bytes::from_static(b"subscription"))
}

fn join_with(b: &str, member_id: &str, session_ms: i32, subscription: Bytes) -> JoinGroupResponse {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = 10_000;
    r.member_id = s(member_id);
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = subscription;
    r.protocols = vec![p];
    join_group(b, &r, 5)
}

fn sync(b: &str, member_id: &str, generation: i32, assign: &[(&str, &'static [u8])]) -> SyncGroupResponse {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member_id);
    r.generation_id = generation;
    r.assignments = assign
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::from_static(a);
            x
        })
        .collect();
    call(&mut conn(b), ApiKey::SyncGroup, 3, &r)
}

fn describe(b: &str) -> (String, Vec<(String, Bytes)>) {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s(GROUP))];
    let resp: DescribeGroupsResponse = call(&mut conn(b), ApiKey::DescribeGroups, 4, &r);
    let g = &resp.groups[0];
    (
        g.group_state.to_string(),
        g.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.member_assignment.clone()))
            .collect(),
    )
}

fn commit(b: &str, member_id: &str, generation: i32) -> i16 {
    commit_offset(b, GROUP, member_id, generation, 5)
}

/// One member joins and syncs (generation 1, assignment "a1"), then the broker is killed.
fn stable_group_then_kill(dir: &std::path::Path, session_ms: i32) -> String {
    let b = BrokerProcess::start(dir, CONFIGS);
    let mut t = CreatableTopic::default();
    t.name = TopicName(s("in"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 5000;
    let created: CreateTopicsResponse = call(&mut conn(&b.addr), ApiKey::CreateTopics, 5, &r);
    assert_eq!(created.topics[0].error_code, 0);
    let j = join(&b.addr, "", session_ms);
    assert_eq!((j.error_code, j.generation_id), (0, 1));
    let member = j.member_id.to_string();
    assert_eq!(j.leader.as_str(), member);
    let sy = sync(&b.addr, &member, 1, &[(&member, b"a1")]);
    assert_eq!((sy.error_code, &sy.assignment[..]), (0, &b"a1"[..]));
    drop(b); // SIGKILL
    member
}

#[test]
fn a_stable_group_resumes_after_a_broker_kill_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let member = stable_group_then_kill(dir.path(), 30_000);

    let b = BrokerProcess::start(dir.path(), CONFIGS);
    assert_eq!(
        describe(&b.addr),
        (
            "Stable".to_owned(),
            vec![(member.clone(), Bytes::from_static(b"a1"))]
        ),
        "the group resumed as stored"
    );
    assert_eq!(
        heartbeat(&b.addr, GROUP, &member, 1),
        0,
        "a heartbeat of the stored generation is answered NONE"
    );
    let again = sync(&b.addr, &member, 1, &[]);
    assert_eq!((again.error_code, &again.assignment[..]), (0, &b"a1"[..]));
    assert_eq!(
        commit(&b.addr, &member, 1),
        0,
        "a commit of the stored generation is accepted"
    );
    assert_eq!(
        commit(&b.addr, &member, 0),
        22,
        "a commit of another generation is ILLEGAL_GENERATION"
    );

    // A new member: a normal rebalance. The old member rejoins with its id; both land in
    // generation 2.
    let addr = b.addr.clone();
    let newcomer = std::thread::spawn(move || {
        let j = join(&addr, "", 30_000);
        (j.error_code, j.generation_id)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&b.addr, GROUP, &member, 1) != 27 {
        assert!(
            Instant::now() < deadline,
            "the newcomer's join started no rebalance"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rejoin = join(&b.addr, &member, 30_000);
    assert_eq!((rejoin.error_code, rejoin.generation_id), (0, 2));
    assert_eq!(newcomer.join().expect("newcomer"), (0, 2));
}

#[test]
fn a_member_that_never_comes_back_is_dropped_after_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    stable_group_then_kill(dir.path(), 1_000);
    let b = BrokerProcess::start(dir.path(), CONFIGS);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (state, members) = describe(&b.addr);
        if state == "Empty" {
            assert!(members.is_empty());
            break;
        }
        assert!(Instant::now() < deadline, "still {state} with {members:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_group_that_cannot_be_stored_is_not_answered_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BrokerProcess::start(dir.path(), CONFIGS);
    // A subscription past the offsets topic's max.message.bytes (1 MiB): the group's record
    // cannot be written.
    let j = join_with(&b.addr, "", 30_000, Bytes::from(vec![7u8; 1_200_000]));
    assert_eq!((j.error_code, j.generation_id), (0, 1));
    let member = j.member_id.to_string();
    let sy = sync(&b.addr, &member, 1, &[(&member, b"a1")]);
    assert_eq!(
        sy.error_code, -1,
        "a record too large to store is UNKNOWN_SERVER_ERROR, as in Kafka"
    );
    assert!(sy.assignment.is_empty());
    assert_eq!(heartbeat(&b.addr, GROUP, &member, 1), 27, "the group rebalances");
    assert_eq!(describe(&b.addr).0, "PreparingRebalance");
}

/// A static member's JoinGroup listing several protocols, each with `subscription`.
fn join_static(b: &str, instance: &str, subscription: &'static [u8]) -> JoinGroupResponse {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.session_timeout_ms = 30_000;
    r.rebalance_timeout_ms = 10_000;
    r.member_id = s("");
    r.group_instance_id = Some(s(instance));
    r.protocol_type = s("consumer");
    r.protocols = ["cooperative-sticky", "range"]
        .into_iter()
        .map(|name| {
            let mut p = JoinGroupRequestProtocol::default();
            p.name = s(name);
            p.metadata = Bytes::from_static(subscription);
            p
        })
        .collect();
    call(&mut conn(b), ApiKey::JoinGroup, 5, &r)
}

/// The stored record keeps only each member's selected protocol, so a restarted static
/// member listing several protocols no longer equals what the reloaded group knows of it.
/// Kafka's `updateStaticMemberAndRebalance` compares the selected protocol instead: if the
/// member's protocols leave it unchanged, the member takes its old place and assignment
/// with no rebalance (KIP-345), even with a new subscription. A returning leader is
/// answered with the old leader id, as Kafka answers it, so that it assigns nothing.
#[test]
fn a_static_member_with_several_protocols_rejoins_a_reloaded_group_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BrokerProcess::start(dir.path(), CONFIGS);
    let j = join_static(&b.addr, "inst-a", b"sub-a");
    assert_eq!(
        (
            j.error_code,
            j.generation_id,
            j.protocol_name.as_ref().map(|p| p.to_string())
        ),
        (0, 1, Some("cooperative-sticky".to_owned()))
    );
    let first = j.member_id.to_string();
    let sy = sync(&b.addr, &first, 1, &[(&first, b"a1")]);
    assert_eq!((sy.error_code, &sy.assignment[..]), (0, &b"a1"[..]));
    drop(b); // SIGKILL

    let b = BrokerProcess::start(dir.path(), CONFIGS);
    assert_eq!(describe(&b.addr).0, "Stable");
    // The client restarted too: no member id, its instance id, both protocols, and a
    // subscription that changed.
    let again = join_static(&b.addr, "inst-a", b"sub-a2");
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, 1, "no rebalance: the generation stays");
    let second = again.member_id.to_string();
    assert_ne!(second, first, "a new member id for the returning instance");
    // The returning leader gets the roster but the old leader id (Kafka before JoinGroup v9),
    // so it runs no assignment that the Stable group would never hand out.
    assert_eq!(again.leader.as_str(), first);
    assert_eq!(again.members.len(), 1);
    assert_eq!(
        describe(&b.addr),
        (
            "Stable".to_owned(),
            vec![(second.clone(), Bytes::from_static(b"a1"))]
        ),
        "the instance kept its assignment under its new id"
    );
    assert_eq!(heartbeat(&b.addr, GROUP, &second, 1), 0);
    assert_eq!(
        heartbeat(&b.addr, GROUP, &first, 1),
        25,
        "the old member id is gone (UNKNOWN_MEMBER_ID)"
    );
}
