//! Invariant: an offsets sweep (retention, or a DeleteGroups) holds up only the groups of
//! the `__consumer_offsets` partition it writes. While its tombstones are being written to
//! one partition, a group of another partition takes a membership change and commits
//! offsets; the sweep then finishes as it would have alone.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{commit_offsets, committed_offsets, gated_fs, is_segment, tp, Gate, GateOn, TestStore};
use eoslog::{GroupMember, GroupMembership, GroupState};

const MINUTE: i64 = 60_000;

#[test]
fn a_sweep_writing_one_partition_holds_up_no_other_partitions_groups() {
    let gate = Gate::new(GateOn::Write);
    // Groups "g0", "g1", ... until two land on different partitions.
    let probe = TestStore::new(&[]);
    let offsets = probe.s().offsets();
    let swept = "g0".to_owned();
    let other = (1..)
        .map(|i| format!("g{i}"))
        .find(|g| offsets.partition_for(g) != offsets.partition_for(&swept))
        .expect("a group on another partition");
    let gated_dir = format!("__consumer_offsets-{}", offsets.partition_for(&swept));
    drop(probe);

    let fs = gated_fs(&gate, move |p| {
        is_segment(p) && p.parent().is_some_and(|d| d.ends_with(&gated_dir))
    });
    let t = TestStore::with_fs(&[("offsets.retention.minutes", "10")], fs);
    t.s().create_topic("in", 2, &[]).expect("topic");
    commit_offsets(&t, &swept, -1, "", &[("in", 0, 5)]);
    t.clock.advance(11 * MINUTE);

    std::thread::scope(|scope| {
        gate.arm();
        let sweep = scope.spawn(|| t.s().offsets().remove_expired());
        gate.wait_entered(); // the sweep is writing its tombstone, its locks held

        let (done, finished) = mpsc::channel();
        let (t, other) = (&t, &other);
        scope.spawn(move || {
            let offsets = t.s().offsets();
            let membership = GroupMembership {
                generation: 1,
                members: vec![GroupMember {
                    member_id: "m1".into(),
                    instance_id: None,
                }],
                state: GroupState::Stable,
                protocol_type: "consumer".into(),
                subscribed_topics: None,
            };
            offsets
                .set_group_membership(other, membership)
                .expect("membership");
            commit_offsets(t, other, 1, "m1", &[("in", 1, 7)]);
            done.send(()).expect("send");
        });
        let outcome = finished.recv_timeout(Duration::from_secs(10));
        gate.release();
        assert!(
            outcome.is_ok(),
            "a group of another partition waited for the sweep's write"
        );
        let report = sweep.join().expect("sweep");
        assert_eq!(report.expired_offsets, 1);
        assert_eq!(report.deleted_groups, vec![(swept.clone(), -1)]);
    });
    assert!(committed_offsets(&t, &swept).is_empty());
    assert_eq!(committed_offsets(&t, &other), vec![(tp("in", 1), 7)]);
}
