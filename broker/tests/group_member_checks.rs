//! Invariant: the classic group APIs (JoinGroup of a known member id, Heartbeat, SyncGroup,
//! LeaveGroup) check a member as Kafka's `validateMember` does: a
//! static instance id that belongs to a member must come with that member's id
//! (FENCED_INSTANCE_ID), one that nobody holds is unknown (UNKNOWN_MEMBER_ID), and every
//! request must come from a member (UNKNOWN_MEMBER_ID). LeaveGroup of a
//! group that does not exist answers each member UNKNOWN_MEMBER_ID (v3+). DescribeGroups
//! shows the protocol and each member's metadata and assignment only while the group is
//! Stable, as Kafka's group summary does.

mod common;

use bytes::Bytes;
use common::{call, conn, in_process, join_group, join_request, s, subscription, sync_alone};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
};

const FENCED_INSTANCE_ID: i16 = 82;
const UNKNOWN_MEMBER_ID: i16 = 25;

fn heartbeat(addr: &str, group: &str, member: &str, generation: i32, instance: Option<&str>) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.generation_id = generation;
    r.group_instance_id = instance.map(s);
    let resp: HeartbeatResponse = call(&mut conn(addr), ApiKey::Heartbeat, 4, &r);
    resp.error_code
}

/// LeaveGroup v4 of `(member id, instance id)`s: top-level code and each member's.
fn leave(addr: &str, group: &str, members: &[(&str, Option<&str>)]) -> (i16, Vec<i16>) {
    let mut r = LeaveGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.members = members
        .iter()
        .map(|(m, i)| {
            let mut x = MemberIdentity::default();
            x.member_id = s(m);
            x.group_instance_id = i.map(s);
            x
        })
        .collect();
    let resp: LeaveGroupResponse = call(&mut conn(addr), ApiKey::LeaveGroup, 4, &r);
    (
        resp.error_code,
        resp.members.iter().map(|m| m.error_code).collect(),
    )
}

/// Joins `group` as a static member with `instance`, alone; member id and generation.
fn join_static(addr: &str, group: &str, instance: &str) -> (String, i32) {
    let mut r = join_request(group, subscription(&["t"]));
    r.group_instance_id = Some(s(instance));
    let j: JoinGroupResponse = call(&mut conn(addr), ApiKey::JoinGroup, 5, &r);
    assert_eq!(j.error_code, 0);
    (j.member_id.to_string(), j.generation_id)
}

/// DescribeGroups v4 of one group: state, protocol, and each member's metadata and
/// assignment sizes.
fn describe(addr: &str, group: &str) -> (String, String, Vec<(usize, usize)>) {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s(group))];
    let resp: DescribeGroupsResponse = call(&mut conn(addr), ApiKey::DescribeGroups, 4, &r);
    let g = &resp.groups[0];
    (
        g.group_state.to_string(),
        g.protocol_data.to_string(),
        g.members
            .iter()
            .map(|m| (m.member_metadata.len(), m.member_assignment.len()))
            .collect(),
    )
}

#[test]
fn members_are_checked_as_kafka_validates_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(
        dir.path(),
        &["group.initial.rebalance.delay.ms=0"],
        eoslog::LogOptions::default(),
    );
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    let (member, generation) = join_static(&b, "g", "i1");
    assert_eq!(sync_alone(&b, "g", &member, generation), 0);
    assert_eq!(heartbeat(&b, "g", &member, generation, Some("i1")), 0);
    assert_eq!(heartbeat(&b, "g", &member, generation, None), 0);
    assert_eq!(
        heartbeat(&b, "g", "someone-else", generation, Some("i1")),
        FENCED_INSTANCE_ID,
        "i1 is the static member's"
    );
    // An instance id nobody holds is unknown, even from a member.
    assert_eq!(
        heartbeat(&b, "g", &member, generation, Some("i9")),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        heartbeat(&b, "g", "nobody", generation, Some("i9")),
        UNKNOWN_MEMBER_ID
    );

    // JoinGroup checks the instance id first, as `validateMember`: an unknown member id
    // naming i1 is fenced, not unknown; a member naming an instance id nobody holds is
    // unknown.
    let mut r = join_request("g", subscription(&["t"]));
    r.member_id = s("someone-else");
    r.group_instance_id = Some(s("i1"));
    let j: JoinGroupResponse = call(&mut conn(&b), ApiKey::JoinGroup, 5, &r);
    assert_eq!(j.error_code, FENCED_INSTANCE_ID, "a zombie of i1 is fenced");
    r.member_id = s(&member);
    r.group_instance_id = Some(s("i9"));
    let j: JoinGroupResponse = call(&mut conn(&b), ApiKey::JoinGroup, 5, &r);
    assert_eq!(j.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(
        heartbeat(&b, "g", &member, generation, Some("i1")),
        0,
        "refused joins change nothing"
    );

    // LeaveGroup checks the same way; a refused leave removes nobody.
    assert_eq!(
        leave(&b, "g", &[("someone-else", Some("i1"))]),
        (0, vec![FENCED_INSTANCE_ID])
    );
    assert_eq!(leave(&b, "g", &[("nobody", None)]), (0, vec![UNKNOWN_MEMBER_ID]));
    assert_eq!(
        heartbeat(&b, "g", &member, generation, Some("i1")),
        0,
        "still a member"
    );
    // By its instance id alone (an admin's removal), it leaves.
    assert_eq!(leave(&b, "g", &[("", Some("i1"))]), (0, vec![0]));
    assert_eq!(heartbeat(&b, "g", &member, generation, None), UNKNOWN_MEMBER_ID);

    assert_eq!(
        leave(&b, "no-such-group", &[("a", None), ("", Some("i2"))]),
        (0, vec![UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]),
        "each member of a group that does not exist is unknown"
    );
}

#[test]
fn describe_shows_protocol_and_member_bytes_only_while_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(
        dir.path(),
        &["group.initial.rebalance.delay.ms=0"],
        eoslog::LogOptions::default(),
    );
    broker.store().create_topic("t", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    let r = join_request("g", subscription(&["t"]));
    let j: JoinGroupResponse = join_group(&b, &r, 5);
    assert_eq!(j.error_code, 0);
    let (state, protocol, members) = describe(&b, "g");
    assert_eq!(state, "CompletingRebalance");
    assert_eq!(
        (protocol.as_str(), members),
        ("", vec![(0, 0)]),
        "no protocol nor bytes before Stable"
    );

    // The leader's assignment makes the group Stable.
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
    let mut y = SyncGroupRequest::default();
    y.group_id = GroupId(s("g"));
    y.member_id = j.member_id.clone();
    y.generation_id = j.generation_id;
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = j.member_id.clone();
    a.assignment = Bytes::from_static(b"assigned");
    y.assignments = vec![a];
    let sy: SyncGroupResponse = call(&mut conn(&b), ApiKey::SyncGroup, 3, &y);
    assert_eq!(sy.error_code, 0);
    let (state, protocol, members) = describe(&b, "g");
    assert_eq!(state, "Stable");
    assert_eq!(protocol, "range");
    assert_eq!(members, vec![(subscription(&["t"]).len(), 8)]);
}
