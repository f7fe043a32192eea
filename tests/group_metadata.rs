//! Invariant: a consumer group's metadata stored in `__consumer_offsets` (Kafka's
//! GroupMetadata record, key version 2) is read back after a crash or a clean reopen exactly
//! as it was last stored: generation, protocol, leader, and every member with its
//! subscription and assignment. A tombstone deletes the group. Compaction of the offsets
//! topic keeps only each group's latest record, so the topic stays bounded by the number of
//! groups however often they rebalance, and what reloads is still the last stored value. A
//! damaged group record forgets that group (its members rejoin) and the store still opens.

mod common;

use common::TestStore;
use eoslog::{
    AppendOrigin, BatchBuilder, CoordinatorError, GroupMemberMetadata, GroupMetadataValue, NewRecord,
};

fn group(generation: i32, members: &[&str]) -> GroupMetadataValue {
    GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation,
        protocol: (!members.is_empty()).then(|| "range".to_owned()),
        leader: members.first().map(|m| (*m).to_owned()),
        current_state_timestamp: 1_700_000_000_000 + i64::from(generation),
        members: members
            .iter()
            .enumerate()
            .map(|(i, m)| GroupMemberMetadata {
                member_id: (*m).to_owned(),
                instance_id: (i == 0).then(|| format!("static-{m}")),
                client_id: "client".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 6_000 + i as i32,
                subscription: format!("subscription of {m}").into_bytes(),
                assignment: vec![generation as u8; 10 + i],
            })
            .collect(),
    }
}

fn stored(t: &TestStore) -> Vec<(String, GroupMetadataValue)> {
    t.s().offsets().stored_groups()
}

#[test]
fn stored_groups_come_back_after_a_crash_and_a_reopen() {
    let mut t = TestStore::new(&[]);
    let offsets = t.s().offsets();
    offsets.store_group("g1", Some(&group(1, &["a"]))).expect("store");
    offsets
        .store_group("g1", Some(&group(2, &["a", "b"])))
        .expect("store");
    offsets.store_group("g2", Some(&group(3, &[]))).expect("store");
    let want = vec![
        ("g1".to_owned(), group(2, &["a", "b"])),
        ("g2".to_owned(), group(3, &[])),
    ];
    assert_eq!(stored(&t), want);
    assert!(
        t.s().offsets().groups().contains(&"g1".to_owned()),
        "a stored group is listed"
    );

    t.crash();
    assert_eq!(stored(&t), want, "after a crash");
    t.reopen();
    assert_eq!(stored(&t), want, "after a clean reopen");

    t.s().offsets().store_group("g2", None).expect("tombstone");
    t.crash();
    assert_eq!(stored(&t), want[..1].to_vec(), "the tombstone deleted g2");
}

#[test]
fn a_damaged_group_record_forgets_the_group_and_the_store_opens() {
    let mut t = TestStore::new(&[]);
    t.s()
        .offsets()
        .store_group("g1", Some(&group(1, &["a"])))
        .expect("store");
    t.s()
        .offsets()
        .store_group("g2", Some(&group(1, &["b"])))
        .expect("store");
    // A CRC-valid batch whose group value breaks off after its protocol type's length.
    let log = t
        .s()
        .partition("__consumer_offsets", t.s().offsets().partition_for("g1"))
        .expect("offsets partition");
    let key = [0, 2, 0, 2, b'g', b'1'];
    let value = [0, 3, 0, 8];
    let batch = BatchBuilder::new()
        .build(&[NewRecord {
            timestamp: 1_700_000_000_000,
            key: Some(&key),
            value: Some(&value),
            headers: Vec::new(),
        }])
        .expect("batch");
    let _appended = log.append(&batch, AppendOrigin::Coordinator).expect("append");
    drop(log);
    t.crash();
    assert_eq!(stored(&t), vec![("g2".to_owned(), group(1, &["b"]))]);
}

#[test]
fn a_group_id_that_kafka_refuses_is_refused() {
    let t = TestStore::new(&[]);
    let err = t
        .s()
        .offsets()
        .store_group("", Some(&group(1, &["a"])))
        .expect_err("empty id");
    assert!(matches!(err, CoordinatorError::InvalidGroupId), "{err:?}");
    assert!(stored(&t).is_empty());
}

#[test]
fn compaction_keeps_each_groups_latest_record() {
    let mut t = TestStore::new(&[
        ("offsets.topic.segment.bytes", "4096"),
        ("log.cleaner.backoff.ms", "0"),
        ("log.cleaner.delete.retention.ms", "0"),
    ]);
    let groups = ["ga", "gb", "gc"];
    let mut cleaned = 0;
    let mut sizes = Vec::new();
    for generation in 1..=400 {
        for (i, g) in groups.iter().enumerate() {
            let members: Vec<String> = (0..=(generation as usize + i) % 3)
                .map(|m| format!("{g}-m{m}"))
                .collect();
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            t.s()
                .offsets()
                .store_group(g, Some(&group(generation, &members)))
                .expect("store");
        }
        if generation % 20 == 0 {
            t.clock.advance(1);
            cleaned += t.s().run_maintenance().cleaned_logs;
            sizes.push(t.log_bytes(&["__consumer_offsets-"]));
        }
    }
    assert!(cleaned > 0, "maintenance cleaned the offsets topic");
    let (early, late) = (sizes[2], *sizes.last().expect("sizes"));
    assert!(
        late < 2 * early.max(16 << 10),
        "the offsets topic grew from {early} to {late} bytes: {sizes:?}"
    );
    let last: Vec<(String, GroupMetadataValue)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let members: Vec<String> = (0..=(400 + i) % 3).map(|m| format!("{g}-m{m}")).collect();
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            ((*g).to_owned(), group(400, &members))
        })
        .collect();
    assert_eq!(stored(&t), last);
    t.crash();
    assert_eq!(stored(&t), last, "reloaded from the cleaned offsets topic");
}
