//! Invariant: a member that rejoins its group with the protocols it already has does not
//! start a rebalance, as Kafka's `classicGroupJoinExistingMember` answers: while the group
//! completes a rebalance it gets the current generation (the roster if it leads), and while
//! the group is Stable a follower gets the current generation with no roster. A leader's
//! rejoin, or a rejoin with changed protocols, rebalances.

mod common;

use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::{call, conn, heartbeat, in_process, join_group, join_request, s, subscription};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{ApiKey, GroupId, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse};

const REBALANCE_IN_PROGRESS: i16 = 27;

/// JoinGroup v5 of `member` ("" for a new one) with a subscription to `topics`.
fn join(addr: &str, member: &str, topics: &[&str]) -> JoinGroupResponse {
    let mut r = join_request("g", subscription(topics));
    r.member_id = s(member);
    join_group(addr, &r, 5)
}

/// SyncGroup v3 of `member`; a leader hands every member in `assign` its bytes. The
/// assignment it receives.
fn sync(addr: &str, member: &str, generation: i32, assign: &[(&str, &'static [u8])]) -> (i16, Bytes) {
    let mut y = SyncGroupRequest::default();
    y.group_id = GroupId(s("g"));
    y.member_id = s(member);
    y.generation_id = generation;
    y.assignments = assign
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::from_static(a);
            x
        })
        .collect();
    let r: SyncGroupResponse = call(&mut conn(addr), ApiKey::SyncGroup, 3, &y);
    (r.error_code, r.assignment)
}

/// `first` rejoins, which rebalances the group; once `second` is told so by its heartbeat
/// of `generation`, it rejoins too. Their answers.
fn both_rejoin(
    addr: &str,
    generation: i32,
    first: (&str, &'static [&'static str]),
    second: (&str, &[&str]),
) -> (JoinGroupResponse, JoinGroupResponse) {
    let (addr2, id, topics) = (addr.to_owned(), first.0.to_owned(), first.1);
    let rejoin = thread::spawn(move || join(&addr2, &id, topics));
    while heartbeat(addr, "g", second.0, generation) != REBALANCE_IN_PROGRESS {
        thread::sleep(Duration::from_millis(10));
    }
    let other = join(addr, second.0, second.1);
    (rejoin.join().expect("join thread"), other)
}

/// Leader and follower sync generation `generation`; both must succeed.
fn sync_both(addr: &str, leader: &str, follower: &str, generation: i32) {
    let (addr2, f) = (addr.to_owned(), follower.to_owned());
    let follower_sync = thread::spawn(move || sync(&addr2, &f, generation, &[]));
    let (code, got) = sync(addr, leader, generation, &[(leader, b"L"), (follower, b"F")]);
    assert_eq!((code, &got[..]), (0, &b"L"[..]));
    let (code, got) = follower_sync.join().expect("sync thread");
    assert_eq!((code, &got[..]), (0, &b"F"[..]));
}

#[test]
fn an_unchanged_rejoin_answers_the_current_generation_and_a_leaders_or_a_changed_one_rebalances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(
        dir.path(),
        &["group.initial.rebalance.delay.ms=0"],
        eoslog::LogOptions::default(),
    );
    broker.store().create_topic("t", 1, &[]).expect("topic");
    broker.store().create_topic("u", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();

    // A leads alone, then B's join rebalances the group with both.
    let first = join(&b, "", &["t"]);
    let a = first.member_id.to_string();
    assert_eq!(sync(&b, &a, first.generation_id, &[(&a, b"L")]).0, 0);
    let late = thread::spawn({
        let b = b.clone();
        move || join(&b, "", &["t"])
    });
    while heartbeat(&b, "g", &a, first.generation_id) != REBALANCE_IN_PROGRESS {
        thread::sleep(Duration::from_millis(10));
    }
    let ja = join(&b, &a, &["t"]);
    let jb = late.join().expect("join thread");
    let bid = jb.member_id.to_string();
    let generation = ja.generation_id;
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!(jb.generation_id, generation);
    assert_eq!(ja.leader.as_str(), a, "the leader stays");
    assert_eq!(ja.members.len(), 2);

    // CompletingRebalance: an unchanged rejoin (its answer was lost) gets this generation at
    // once; the leader gets the roster again, a follower none.
    let again = join(&b, &bid, &["t"]);
    assert_eq!(
        (
            again.error_code,
            again.generation_id,
            again.leader.as_str(),
            again.members.len()
        ),
        (0, generation, a.as_str(), 0)
    );
    let again = join(&b, &a, &["t"]);
    assert_eq!(
        (again.error_code, again.generation_id, again.members.len()),
        (0, generation, 2)
    );
    // CompletingRebalance: a changed rejoin rebalances.
    let (jb, ja) = both_rejoin(&b, generation, (&bid, &["t", "u"]), (&a, &["t"]));
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!(
        (ja.generation_id, jb.generation_id),
        (generation + 1, generation + 1),
        "a changed rejoin while completing rebalances"
    );
    // And back to the one subscription, for what follows.
    let (jb, ja) = both_rejoin(&b, ja.generation_id, (&bid, &["t"]), (&a, &["t"]));
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    let generation = ja.generation_id;
    sync_both(&b, &a, &bid, generation);

    // Stable: a follower's unchanged rejoin gets this generation, and nobody is told to
    // rebalance.
    let again = join(&b, &bid, &["t"]);
    assert_eq!(
        (
            again.error_code,
            again.generation_id,
            again.leader.as_str(),
            again.members.len()
        ),
        (0, generation, a.as_str(), 0)
    );
    assert_eq!(heartbeat(&b, "g", &a, generation), 0, "no rebalance");
    assert_eq!(heartbeat(&b, "g", &bid, generation), 0);

    // Stable: a follower that subscribes to more topics rebalances the group.
    let (jb, ja) = both_rejoin(&b, generation, (&bid, &["t", "u"]), (&a, &["t"]));
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!(
        ja.generation_id,
        generation + 1,
        "a changed subscription rebalances"
    );
    let generation = ja.generation_id;
    sync_both(&b, &a, &bid, generation);

    // Stable: the leader's unchanged rejoin rebalances too.
    let (ja, jb) = both_rejoin(&b, generation, (&a, &["t"]), (&bid, &["t", "u"]));
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!(
        (ja.generation_id, jb.generation_id),
        (generation + 1, generation + 1),
        "a leader's rejoin rebalances"
    );
    assert_eq!(ja.leader.as_str(), a);
}
