//! Invariant: a group in the broker waits only for the `__consumer_offsets` partition it
//! lives in. While the broker's offsets retention sweep writes its tombstones to one
//! partition (holding that partition's membership), a join to another group of that
//! partition waits for the write, and a group of another partition heartbeats, commits and
//! is described meanwhile; once the write finishes, the join completes and the swept
//! group is gone.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{
    call, commit_offset, conn, fetched_offsets, gated_fs, group_state, heartbeat, in_process, is_segment,
    join_and_sync, join_request, subscription, wall_clock, Gate, GateOn,
};
use eoslog::LogOptions;
use kafka_protocol::messages::{ApiKey, JoinGroupResponse};

const MINUTE: i64 = 60_000;
const PARTITIONS: u32 = 4;

/// A JoinGroup v5 of a new member; its error code.
fn join(addr: &str, group: &str) -> i16 {
    let j: JoinGroupResponse = call(
        &mut conn(addr),
        ApiKey::JoinGroup,
        5,
        &join_request(group, subscription(&["in"])),
    );
    j.error_code
}

#[test]
fn a_sweep_writing_one_partition_holds_up_no_group_of_another_in_the_broker() {
    // "swept" expires; "waiting" shares its partition; "other" lives on another.
    let partition = |g: &str| eoslog::partition_for(g, PARTITIONS);
    let swept = "g0";
    let mut names = (1..).map(|i| format!("g{i}"));
    let waiting = names
        .by_ref()
        .find(|g| partition(g) == partition(swept))
        .expect("a group on the swept partition");
    let other = names
        .find(|g| partition(g) != partition(swept))
        .expect("a group on another partition");
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
            "group.initial.rebalance.delay.ms=0",
            &partitions,
            "transaction.state.log.num.partitions=2",
        ],
        options,
    );
    broker.store().create_topic("in", 1, &[]).expect("topic");
    let b = broker.local_addr().to_string();
    assert_eq!(commit_offset(&b, swept, "", -1, 5), 0);
    let (member, generation) = join_and_sync(&b, &other, subscription(&["in"]));

    // The next write to the swept partition's segment is the sweep's tombstone: it blocks.
    gate.arm();
    clock.advance(11 * MINUTE);
    gate.wait_entered();

    std::thread::scope(|scope| {
        // A new member of a group on the swept partition: its join tells the store the
        // group's membership, which waits for the sweep's write.
        let (joined, join_done) = mpsc::channel();
        let (b, waiting) = (&b, &waiting);
        scope.spawn(move || joined.send(join(b, waiting)).expect("send"));
        assert!(
            join_done.recv_timeout(Duration::from_millis(300)).is_err(),
            "the join did not wait for the sweep of its partition"
        );

        let (done, finished) = mpsc::channel();
        let (other, member) = (&other, &member);
        scope.spawn(move || {
            let answers = (
                heartbeat(b, other, member, generation),
                commit_offset(b, other, member, generation, 9),
                group_state(b, other),
            );
            done.send(answers).expect("send");
        });
        let outcome = finished.recv_timeout(Duration::from_secs(10));
        gate.release();
        assert_eq!(
            outcome.expect("a group of another partition waited for the sweep's write"),
            (0, 0, "Stable".to_owned())
        );
        assert_eq!(
            join_done.recv_timeout(Duration::from_secs(20)),
            Ok(0),
            "the join completes once the write is done"
        );
    });
    assert_eq!(fetched_offsets(&b, swept, &["in"]), vec![-1]);
    assert_eq!(fetched_offsets(&b, &other, &["in"]), vec![9]);
    rt.block_on(broker.shutdown()).expect("shutdown");
}
