//! Invariant: from JoinGroup v4 a new dynamic member is not added to its group until it
//! joins with the id the broker gave it (MEMBER_ID_REQUIRED, KIP-394), as Kafka answers:
//! the id is pending until its session would expire, a rebalance waits for pending ids as
//! for members, and an expired id is unknown. Before v4, and for static members, the join
//! adds the member at once. A group that only ever had pending ids is forgotten with them,
//! and DeleteGroups deletes it. A pending id that leaves (LeaveGroup) is forgotten and no
//! longer holds up a rebalance, and a group's first rebalance does not wait for pending ids
//! (Kafka ends it with its initial delay).

mod common;

use std::thread;
use std::time::Duration;

use common::{
    call, conn, heartbeat, in_process, join_group, join_request, listed_groups, s, subscription, sync_alone,
};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, GroupId, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse,
};

const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// JoinGroup of `member` ("" for a new one) at `version`, with a session of `session_ms`.
fn join(addr: &str, member: &str, version: i16, session_ms: i32) -> JoinGroupResponse {
    join_to(addr, "g", member, version, session_ms)
}

/// The same to `group`.
fn join_to(addr: &str, group: &str, member: &str, version: i16, session_ms: i32) -> JoinGroupResponse {
    let mut r = join_request(group, subscription(&["t"]));
    r.member_id = s(member);
    r.session_timeout_ms = session_ms;
    call(&mut conn(addr), ApiKey::JoinGroup, version, &r)
}

/// A broker in this process whose groups start rebalancing at once and take sessions from
/// 100 ms.
fn broker(dir: &std::path::Path) -> (tokio::runtime::Runtime, eoslog_broker::Broker) {
    in_process(
        dir,
        &[
            "group.initial.rebalance.delay.ms=0",
            "group.min.session.timeout.ms=100",
        ],
        eoslog::LogOptions::default(),
    )
}

#[test]
fn a_new_member_joins_with_the_id_it_was_given_and_a_rebalance_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = broker(dir.path());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    // v4+: the id comes back with MEMBER_ID_REQUIRED and no generation; the member is not
    // in the group until it joins with it.
    let asked = join(&b, "", 5, 30_000);
    assert_eq!((asked.error_code, asked.generation_id), (MEMBER_ID_REQUIRED, -1));
    let a = asked.member_id.to_string();
    assert!(!a.is_empty());
    assert_eq!(
        heartbeat(&b, "g", &a, 0),
        UNKNOWN_MEMBER_ID,
        "pending, not a member"
    );
    let joined = join(&b, &a, 5, 30_000);
    assert_eq!((joined.error_code, joined.member_id.as_str()), (0, a.as_str()));
    assert_eq!(sync_alone(&b, "g", &a, joined.generation_id), 0);
    let generation = joined.generation_id;

    // A pending id holds up the rebalance the leader starts, until it joins with it.
    let pending = join(&b, "", 7, 30_000);
    assert_eq!(pending.error_code, MEMBER_ID_REQUIRED);
    let leader_rejoin = thread::spawn({
        let (b, a) = (b.clone(), a.clone());
        move || join(&b, &a, 5, 30_000)
    });
    // The leader's join has started the rebalance once its heartbeat says so.
    while heartbeat(&b, "g", &a, generation) != REBALANCE_IN_PROGRESS {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        !leader_rejoin.is_finished(),
        "the rebalance waits for the pending member"
    );
    let other = join(&b, &pending.member_id, 7, 30_000);
    let leader = leader_rejoin.join().expect("join thread");
    assert_eq!((leader.error_code, other.error_code), (0, 0));
    assert_eq!(leader.generation_id, generation + 1);
    assert_eq!(other.generation_id, generation + 1);
    assert_eq!(
        leader.members.len(),
        2,
        "the pending member joined this generation"
    );

    // An id whose session ran out is unknown.
    let expiring = join(&b, "", 5, 100);
    assert_eq!(expiring.error_code, MEMBER_ID_REQUIRED);
    thread::sleep(Duration::from_millis(400));
    let late = join(&b, &expiring.member_id, 5, 100);
    assert_eq!(late.error_code, UNKNOWN_MEMBER_ID);

    // v3 adds the member at once, and so does v5 for a static member.
    let direct = join_to(&b, "v3", "", 3, 30_000);
    assert_eq!(direct.error_code, 0, "v3 joins without MEMBER_ID_REQUIRED");
    let mut r = join_request("static", subscription(&["t"]));
    r.group_instance_id = Some(s("i1"));
    let j: JoinGroupResponse = call(&mut conn(&b), ApiKey::JoinGroup, 5, &r);
    assert_eq!(j.error_code, 0, "a static member joins at once");
    // The helper clients' flow: both answers in one call.
    let j = join_group(&b, &join_request("flow", subscription(&["t"])), 5);
    assert_eq!(j.error_code, 0);
}

#[test]
fn a_group_that_only_had_pending_ids_is_forgotten_once_they_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = broker(dir.path());
    let b = broker.local_addr().to_string();
    assert_eq!(join(&b, "", 5, 2_000).error_code, MEMBER_ID_REQUIRED);
    assert_eq!(
        listed_groups(&b),
        vec!["g".to_owned()],
        "listed as Kafka lists it"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !listed_groups(&b).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the group was never forgotten"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pending_id_that_leaves_no_longer_holds_up_the_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = broker(dir.path());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let a = join_group(&b, &join_request("g", subscription(&["t"])), 5);
    assert_eq!(sync_alone(&b, "g", &a.member_id, a.generation_id), 0);

    let pending = join(&b, "", 5, 30_000);
    assert_eq!(pending.error_code, MEMBER_ID_REQUIRED);
    let leader_rejoin = thread::spawn({
        let (b, a) = (b.clone(), a.member_id.to_string());
        move || join(&b, &a, 5, 30_000)
    });
    while heartbeat(&b, "g", &a.member_id, a.generation_id) != REBALANCE_IN_PROGRESS {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    assert!(!leader_rejoin.is_finished(), "held up by the pending id");
    // The client closes before its second JoinGroup: its LeaveGroup names the pending id.
    let mut m = MemberIdentity::default();
    m.member_id = pending.member_id.clone();
    let mut r = LeaveGroupRequest::default();
    r.group_id = GroupId(s("g"));
    r.members = vec![m];
    let left: LeaveGroupResponse = call(&mut conn(&b), ApiKey::LeaveGroup, 3, &r);
    assert_eq!(
        (left.error_code, left.members[0].error_code),
        (0, 0),
        "Kafka answers a pending id's leave NONE"
    );
    let started = std::time::Instant::now();
    let leader = leader_rejoin.join().expect("join thread");
    assert_eq!((leader.error_code, leader.members.len()), (0, 1));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the rebalance completed once the pending id left, not at its session's end"
    );
    assert_eq!(
        join(&b, &pending.member_id, 5, 30_000).error_code,
        UNKNOWN_MEMBER_ID,
        "the id is forgotten"
    );
}

#[test]
fn a_groups_first_rebalance_does_not_wait_for_pending_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = broker(dir.path());
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    // A client given an id that never comes back (its reply was lost).
    assert_eq!(join(&b, "", 5, 30_000).error_code, MEMBER_ID_REQUIRED);
    let started = std::time::Instant::now();
    let first = join_group(&b, &join_request("g", subscription(&["t"])), 5);
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the initial rebalance ends with its delay, as in Kafka, not with the pending id's session"
    );
}

#[test]
fn deleting_a_group_that_only_had_pending_ids_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = broker(dir.path());
    let b = broker.local_addr().to_string();
    assert_eq!(join(&b, "", 5, 30_000).error_code, MEMBER_ID_REQUIRED);
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = vec![GroupId(s("g")), GroupId(s("never"))];
    let resp: DeleteGroupsResponse = call(&mut conn(&b), ApiKey::DeleteGroups, 2, &r);
    let codes: Vec<i16> = resp.results.iter().map(|g| g.error_code).collect();
    assert_eq!(
        codes,
        vec![0, GROUP_ID_NOT_FOUND],
        "the group exists, as in Kafka"
    );
    assert!(listed_groups(&b).is_empty(), "and is gone");
}
