//! Invariant: a producer whose last batch is older than `producer.id.expiration.ms` is gone
//! after an open (or a truncation) however its state was built: loaded from a snapshot,
//! rebuilt by replaying segments (no snapshot, as in a directory Kafka wrote), or both. It is
//! no longer listed and no longer deduplicates. Issue #13, item 2.

mod common;
use common::*;
use eoslog::{AppendOutcome, Offset};

const DAY: i64 = 86_400_000;

/// Producer 1 writes at T0 (its batch timestamps are T0); producer 2 almost a day later.
fn build(t: &TestLog) {
    let log = t.open();
    appended(client(&log, &idem(1, 0, 0, 2)));
    log.roll_segment().expect("roll");
    t.clock.advance(DAY - 10);
    let late: Vec<u8> = {
        let v = b"late".to_vec();
        eoslog::BatchBuilder::idempotent(
            eoslog::ProducerId(2),
            eoslog::ProducerEpoch(0),
            eoslog::Sequence(0),
        )
        .build(&[eoslog::NewRecord::value(T0 + DAY - 10, &v)])
        .expect("build")
    };
    appended(client(&log, &late));
    log.close().expect("close");
}

fn producer_ids(log: &eoslog::Log) -> Vec<i64> {
    log.producers().iter().map(|p| p.producer_id.0).collect()
}

#[test]
fn a_producer_expired_while_closed_is_gone_when_state_comes_from_a_snapshot() {
    let t = TestLog::new();
    build(&t);
    t.clock.advance(11);
    let log = t.open();
    assert_eq!(producer_ids(&log), vec![2]);
}

#[test]
fn a_producer_expired_while_closed_is_gone_when_state_is_replayed_from_segments() {
    let t = TestLog::new();
    build(&t);
    for name in files_with_suffix(&t.path(), ".snapshot") {
        std::fs::remove_file(t.path().join(name)).expect("rm snapshot");
    }
    t.clock.advance(11);
    let log = t.open();
    assert_eq!(
        producer_ids(&log),
        vec![2],
        "the replay rebuilt producer 1, then open expired it"
    );
    assert_eq!(log.stats().producers_expired, 1);
    // It no longer deduplicates: its retry is written as new data.
    assert!(matches!(
        client(&log, &idem(1, 0, 0, 2)),
        AppendOutcome::Appended(_)
    ));
}

#[test]
fn a_producer_expired_while_closed_is_gone_after_crash_recovery() {
    let t = TestLog::new();
    build(&t);
    std::fs::remove_file(t.path().join(eoslog::CLEAN_SHUTDOWN_FILE)).expect("unclean");
    std::fs::remove_file(t.path().join(eoslog::CHECKPOINT_FILE)).expect("recover everything");
    t.clock.advance(11);
    let log = t.open();
    assert_eq!(log.stats().recoveries, 1);
    assert_eq!(producer_ids(&log), vec![2]);
}

#[test]
fn a_truncation_does_not_bring_back_an_expired_producer() {
    let t = TestLog::new();
    build(&t);
    let log = t.open();
    assert_eq!(producer_ids(&log), vec![1, 2], "not expired yet at open");
    t.clock.advance(11);
    assert_eq!(log.run_maintenance().expect("maintenance").expired_producers, 1);
    // The truncation reloads producer state from the snapshot at the second segment's base,
    // which still lists producer 1.
    log.truncate_to(Offset(2)).expect("truncate");
    assert!(producer_ids(&log).is_empty(), "{:?}", log.producers());
}
