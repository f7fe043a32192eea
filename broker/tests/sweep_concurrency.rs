//! Invariant: a group in the broker waits only for the `__consumer_offsets` partition it
//! lives in. While the broker's offsets retention sweep writes its tombstones to one
//! partition (holding that partition's membership and state), a sync and a join of other
//! groups of that partition wait for the write; a group of another partition heartbeats,
//! commits and is described, and a new group there joins (completed by its partition's
//! timer) and syncs (its record written), meanwhile. Once the write finishes, the waiting
//! requests complete and the swept group is gone.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{
    commit_offset, fetched_offsets, gated_fs, group_state, heartbeat, in_process, is_segment, join_and_sync,
    join_group, join_request, subscription, sync_alone, wall_clock, Gate, GateOn,
};
use eoslog::LogOptions;
use kafka_protocol::messages::JoinGroupResponse;

const MINUTE: i64 = 60_000;
const PARTITIONS: u32 = 4;

/// A JoinGroup v5 of a new member; its error code.
fn join(addr: &str, group: &str) -> i16 {
    let j: JoinGroupResponse = join_group(addr, &join_request(group, subscription(&["in"])), 5);
    j.error_code
}

/// Runs `f` on a thread of `scope` and checks that it does not finish within 300 ms: it
/// waits (for the gated write). The receiver gets its answer.
fn held<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    what: &str,
    f: impl FnOnce() -> i16 + Send + 'scope,
) -> mpsc::Receiver<i16> {
    let (tx, rx) = mpsc::channel();
    scope.spawn(move || tx.send(f()).expect("send"));
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "{what} did not wait for the sweep of its partition"
    );
    rx
}

#[test]
fn a_sweep_writing_one_partition_holds_up_no_group_of_another_in_the_broker() {
    // "swept" expires; "syncing" and "waiting" share its partition; "other" and "new"
    // live on others.
    let partition = |g: &str| eoslog::partition_for(g, PARTITIONS);
    let swept = "g0";
    let mut names = (1..).map(|i| format!("g{i}"));
    let mut same = names.clone().filter(|g| partition(g) == partition(swept));
    let (syncing, waiting) = (same.next().expect("a group"), same.next().expect("a group"));
    let mut others = names.by_ref().filter(|g| partition(g) != partition(swept));
    let (other, new) = (others.next().expect("a group"), others.next().expect("a group"));
    let gated_dir = format!("__consumer_offsets-{}", partition(swept));

    let gate = Gate::new(GateOn::Write);
    let clock = wall_clock();
    let options = LogOptions {
        fs: gated_fs(&gate, move |p| {
            is_segment(p) && p.parent().is_some_and(|d| d.ends_with(&gated_dir))
        }),
        clock: clock.clone(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let partitions = format!("offsets.topic.num.partitions={PARTITIONS}");
    let (rt, broker) = in_process(
        dir.path(),
        &[
            "offsets.retention.minutes=10",
            "offsets.retention.check.interval.ms=1",
            "eoslog.maintenance.interval.ms=20",
            // Joins of a new group complete on its partition's timer.
            "group.initial.rebalance.delay.ms=100",
            &partitions,
            "transaction.state.log.num.partitions=2",
        ],
        options,
    );
    broker.store().create_topic("in", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    assert_eq!(commit_offset(&b, swept, "", -1, 5), 0);
    let (member, generation) = join_and_sync(&b, &other, subscription(&["in"]));
    // A generation whose leader has not synced yet.
    let j: JoinGroupResponse = join_group(&b, &join_request(&syncing, subscription(&["in"])), 5);
    assert_eq!(j.error_code, 0);

    // The next write to the swept partition's segment is the sweep's tombstone: it blocks.
    gate.arm();
    clock.advance(11 * MINUTE);
    gate.wait_entered();

    std::thread::scope(|scope| {
        let b = &b;
        // The leader's sync queues the group's record, which waits for the partition.
        let synced = held(scope, "the sync", || {
            sync_alone(b, &syncing, &j.member_id, j.generation_id)
        });
        // A new member's join tells the store the group's membership, which waits too.
        let joined = held(scope, "the join", || join(b, &waiting));

        let (done, finished) = mpsc::channel();
        let (other, member, new) = (&other, &member, &new);
        scope.spawn(move || {
            let answers = (
                heartbeat(b, other, member, generation),
                commit_offset(b, other, member, generation, 9),
                group_state(b, other),
                join_and_sync(b, new, subscription(&["in"])).1,
            );
            done.send(answers).expect("send");
        });
        let outcome = finished.recv_timeout(Duration::from_secs(10));
        gate.release();
        assert_eq!(
            outcome.expect("a group of another partition waited for the sweep's write"),
            (0, 0, "Stable".to_owned(), 1)
        );
        let within = Duration::from_secs(20);
        assert_eq!(synced.recv_timeout(within), Ok(0), "the sync completes");
        assert_eq!(joined.recv_timeout(within), Ok(0), "the join completes");
    });
    assert_eq!(fetched_offsets(&b, swept, &["in"]), vec![-1]);
    assert_eq!(fetched_offsets(&b, &other, &["in"]), vec![9]);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
