//! Invariant: the broker applies Kafka's `offsets.retention.minutes` (KIP-211) on its
//! maintenance timer. A group whose last member left keeps its offsets for the retention,
//! counted from when it emptied by the store's clock, then loses them and is deleted: the
//! broker forgets it (DescribeGroups answers Dead, ListGroups omits it) and a new join starts
//! it afresh at generation 1. A group with a member keeps its offsets however old they are.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    commit_offset, commit_offset_to, fetched_offsets, group_state, in_process, join_and_sync, leave,
    listed_groups, subscription, wall_clock,
};
use eoslog::{LogOptions, ManualClock, StdFileSystem};

const MINUTE: i64 = 60_000;

fn commit(b: &str, group: &str, member: &str, generation: i32, offset: i64) {
    assert_eq!(commit_offset(b, group, member, generation, offset), 0);
}

/// The group's committed offset of `in`-0 (-1: none).
fn fetched(b: &str, group: &str) -> i64 {
    fetched_offsets(b, group, &["in"])[0]
}

/// The store's clock, starting at the wall clock's now, and a broker in this process on it
/// (retention 10 minutes, checked at every maintenance run, every 20 ms).
fn broker_with_clock(
    dir: &std::path::Path,
    initial_delay_ms: u32,
) -> (Arc<ManualClock>, tokio::runtime::Runtime, eoslog_broker::Broker) {
    let clock = wall_clock();
    let options = LogOptions {
        fs: Arc::new(StdFileSystem),
        clock: clock.clone(),
    };
    let delay = format!("group.initial.rebalance.delay.ms={initial_delay_ms}");
    let (rt, broker) = in_process(
        dir,
        &[
            "offsets.retention.minutes=10",
            "offsets.retention.check.interval.ms=1",
            "eoslog.maintenance.interval.ms=20",
            &delay,
            "offsets.topic.num.partitions=4",
            "transaction.state.log.num.partitions=2",
        ],
        options,
    );
    for t in ["in", "other"] {
        broker.store().create_topic(t, 1, &[]).expect("topic");
    }
    (clock, rt, broker)
}

/// Waits until `cond` holds (maintenance runs every 20 ms).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_empty_groups_offsets_expire_and_the_group_is_forgotten_while_a_live_group_keeps_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, rt, broker) = broker_with_clock(dir.path(), 0);
    let b = broker.local_addr().to_string();

    // At t: a simple consumer's offset (the probe: it shows a sweep ran), and a live
    // consumer group subscribed to `in` with offsets on `in` and `other`.
    assert_eq!(commit_offset(&b, "probe", "", -1, 1), 0);
    let (live, live_generation) = join_and_sync(&b, "live", subscription(&["in"]));
    assert_eq!(commit_offset_to(&b, "live", &live, live_generation, "in", 7), 0);
    assert_eq!(
        commit_offset_to(&b, "live", &live, live_generation, "other", 8),
        0
    );
    // At t + 1 ms: a group whose only member leaves.
    clock.advance(1);
    let (gone, generation) = join_and_sync(&b, "gone", subscription(&["in"]));
    commit(&b, "gone", &gone, generation, 5);
    leave(&b, "gone", &gone);
    // Let the Empty record be written (stamped with the store's clock, t + 1 ms).
    eventually("the Empty record was never stored", || {
        broker
            .store()
            .offsets()
            .stored_groups()
            .iter()
            .any(|(g, v)| g == "gone" && v.members.is_empty())
    });
    assert_eq!(group_state(&b, "gone"), "Empty");

    // At t + 10 min: the probe's offset and the live group's offset of a topic it does not
    // subscribe to (KIP-496) expire; "gone" emptied one millisecond too late.
    clock.advance(10 * MINUTE - 1);
    eventually("the probe never expired", || fetched(&b, "probe") == -1);
    eventually("the unsubscribed topic's offset stayed", || {
        fetched_offsets(&b, "live", &["other"]) == vec![-1]
    });
    assert_eq!(fetched(&b, "gone"), 5, "one millisecond short of the retention");
    assert_eq!(group_state(&b, "gone"), "Empty");
    assert_eq!(
        fetched(&b, "live"),
        7,
        "a subscribed topic's offset stays however old"
    );

    clock.advance(1);
    eventually("the offset never expired", || fetched(&b, "gone") == -1);
    eventually("the broker kept the deleted group", || {
        group_state(&b, "gone") == "Dead"
    });
    assert_eq!(listed_groups(&b), vec!["live".to_owned()]);
    assert_eq!(group_state(&b, "live"), "Stable");

    // The deleted group's name is free: a join starts it afresh.
    let (_, again) = join_and_sync(&b, "gone", subscription(&["in"]));
    assert_eq!(again, 1);
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn a_group_being_joined_keeps_its_offsets() {
    // Kafka expires nothing of a group in PreparingRebalance: a consumer joining a group
    // whose offsets are past the retention must find them.
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, rt, broker) = broker_with_clock(dir.path(), 2_000);
    let b = broker.local_addr().to_string();
    assert_eq!(commit_offset(&b, "joined", "", -1, 5), 0);
    assert_eq!(commit_offset(&b, "probe", "", -1, 1), 0);
    // The join waits out the initial rebalance delay (2 s) in its own thread.
    let addr = b.clone();
    let joining = std::thread::spawn(move || join_and_sync(&addr, "joined", subscription(&["in"])));
    eventually("the join never reached the broker", || {
        group_state(&b, "joined") == "PreparingRebalance"
    });
    clock.advance(11 * MINUTE);
    eventually("the probe never expired", || fetched(&b, "probe") == -1);
    assert_eq!(fetched(&b, "joined"), 5, "the group being joined lost its offset");
    let (_, generation) = joining.join().expect("join");
    assert_eq!(generation, 1);
    assert_eq!(fetched(&b, "joined"), 5);
    rt.block_on(broker.shutdown()).expect("shutdown");
}

#[test]
fn an_offset_commit_with_a_retention_time_expires_then() {
    // OffsetCommit v2's retention_time_ms (Kafka honours it as an explicit expire
    // timestamp), well before the broker's 10-minute retention.
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName};
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, rt, broker) = broker_with_clock(dir.path(), 0);
    let b = broker.local_addr().to_string();
    let commit_v2 = |group: &str, retention_ms: i64| {
        let mut p = OffsetCommitRequestPartition::default();
        p.committed_offset = 3;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(common::s("in"));
        t.partitions = vec![p];
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(common::s(group));
        r.generation_id_or_member_epoch = -1;
        r.retention_time_ms = retention_ms;
        r.topics = vec![t];
        let resp: OffsetCommitResponse = common::call(&mut common::conn(&b), ApiKey::OffsetCommit, 2, &r);
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    };
    commit_v2("short", MINUTE);
    commit_v2("shorter", MINUTE - 1);
    commit_v2("broker-default", -1);
    clock.advance(MINUTE - 1);
    eventually("the shorter retention never expired", || {
        fetched(&b, "shorter") == -1
    });
    assert_eq!(
        fetched(&b, "short"),
        3,
        "one millisecond short of its retention time"
    );
    clock.advance(1);
    eventually("the offset never expired", || fetched(&b, "short") == -1);
    assert_eq!(fetched(&b, "broker-default"), 3, "-1 is the broker's retention");
    rt.block_on(broker.shutdown()).expect("shutdown");
}
