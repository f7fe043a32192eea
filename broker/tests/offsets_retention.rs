//! Invariant: the broker applies Kafka's `offsets.retention.minutes` (KIP-211) on its
//! maintenance timer. A group whose last member left keeps its offsets for the retention,
//! counted from when it emptied by the store's clock, then loses them and is deleted: the
//! broker forgets it (DescribeGroups answers Dead, ListGroups omits it) and a new join starts
//! it afresh at generation 1. A group with a member keeps its offsets however old they are.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{commit_offset, fetched_offsets, group_state, in_process, join_and_sync, leave, listed_groups};
use eoslog::{LogOptions, ManualClock, StdFileSystem};

const MINUTE: i64 = 60_000;

fn commit(b: &str, group: &str, member: &str, generation: i32, offset: i64) {
    assert_eq!(commit_offset(b, group, member, generation, offset), 0);
}

/// The group's committed offset of `in`-0 (-1: none).
fn fetched(b: &str, group: &str) -> i64 {
    fetched_offsets(b, group, &["in"])[0]
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

    let (gone, generation) = join_and_sync(&b, "gone", Bytes::from_static(b"subscription"));
    commit(&b, "gone", &gone, generation, 5);
    let (live, live_generation) = join_and_sync(&b, "live", Bytes::from_static(b"subscription"));
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
    assert_eq!(group_state(&b, "gone"), "Empty");

    clock.advance(10 * MINUTE - 1);
    let_maintenance_run();
    assert_eq!(fetched(&b, "gone"), 5, "one millisecond short of the retention");
    assert_eq!(group_state(&b, "gone"), "Empty");

    clock.advance(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetched(&b, "gone") != -1 {
        assert!(Instant::now() < deadline, "the offset never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_state(&b, "gone") != "Dead" {
        assert!(Instant::now() < deadline, "the broker kept the deleted group");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listed_groups(&b), vec!["live".to_owned()]);
    assert_eq!(fetched(&b, "live"), 7, "a group with a member keeps its offsets");
    assert_eq!(group_state(&b, "live"), "Stable");

    // The deleted group's name is free: a join starts it afresh.
    let (_, again) = join_and_sync(&b, "gone", Bytes::from_static(b"subscription"));
    assert_eq!(again, 1);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
