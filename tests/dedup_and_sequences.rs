//! Invariant: a retried batch is recognised by (producer, epoch, exact sequence range) within the
//! producer's dedup window and answered with its original offsets, never written twice; any
//! other sequence that does not follow the producer's last one is OUT_OF_ORDER_SEQUENCE_NUMBER.
//! Scenarios 1, 3, 5, 8, 9, 11, 12 of the reference (`kafka-log-layer.md` section 5), issue #3.

mod common;
use common::*;
use eoslog::{AppendOrigin, AppendOutcome, KafkaError, Offset, Rejection, Sequence};

#[test]
fn duplicate_appends_return_original_offsets() {
    // ULT.testDuplicateAppends
    let t = TestLog::new();
    let log = t.open();
    for s in 0..6 {
        appended(client(&log, &idem(1, 0, s, 1)));
    }
    let multi = idem(1, 0, 6, 3);
    let first = appended(client(&log, &multi));
    assert_eq!((first.first_offset, first.last_offset), (off(6), off(8)));
    let end = log.log_end_offset();
    match client(&log, &multi) {
        AppendOutcome::Duplicate(i) => assert_eq!((i.first_offset, i.last_offset), (off(6), off(8))),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), end, "a duplicate writes nothing");
    // Partial overlap: s7..8.
    let r = rejected(client(&log, &idem(1, 0, 7, 2)));
    assert_eq!(r.kafka_error(), KafkaError::OutOfOrderSequenceNumber);
    // s2 is the 4th batch from the tail: still in the window of 5.
    assert!(
        matches!(client(&log, &idem(1, 0, 2, 1)), AppendOutcome::Duplicate(i) if i.first_offset == off(2))
    );
    // s1 fell out of the window.
    assert!(matches!(
        rejected(client(&log, &idem(1, 0, 1, 1))),
        Rejection::OutOfOrderSequence { .. }
    ));
    assert_eq!(log.stats().duplicates, 2);
}

#[test]
fn follower_appends_are_not_deduplicated() {
    // ULT.testDuplicateAppendToFollower
    let t = TestLog::new();
    let log = t.open();
    let mut a =
        eoslog::BatchBuilder::idempotent(eoslog::ProducerId(1), eoslog::ProducerEpoch(0), Sequence(0))
            .base_offset(Offset(0))
            .build(&[
                eoslog::NewRecord::value(T0, b"a"),
                eoslog::NewRecord::value(T0, b"b"),
            ])
            .expect("build");
    assert!(matches!(
        log.append(&a, AppendOrigin::Replication).expect("ok"),
        AppendOutcome::Appended(_)
    ));
    a[..8].copy_from_slice(&2i64.to_be_bytes());
    assert!(matches!(
        log.append(&a, AppendOrigin::Replication).expect("ok"),
        AppendOutcome::Appended(_)
    ));
    assert_eq!(log.log_end_offset(), off(4));
}

#[test]
fn sequence_wraps_at_int_max() {
    // PSMT.testProducerSequenceWrapAround
    let t = TestLog::new();
    let log = t.open();
    let b = eoslog::BatchBuilder::idempotent(
        eoslog::ProducerId(5),
        eoslog::ProducerEpoch(15),
        Sequence(i32::MAX),
    )
    .build(&[eoslog::NewRecord::value(T0, b"x")])
    .expect("build");
    let mut b = b;
    b[..8].copy_from_slice(&0i64.to_be_bytes());
    appended(log.append(&b, AppendOrigin::Replication).expect("replicated"));
    appended(client(&log, &idem(5, 15, 0, 1)));
    let p = log
        .producers()
        .into_iter()
        .find(|p| p.producer_id.0 == 5)
        .expect("producer");
    assert_eq!(p.last_sequence, Sequence(0));
    // A single batch straddling the wrap, then its retry.
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &idem(6, 0, i32::MAX - 10, 1)));
    let straddle = idem(6, 0, i32::MAX - 9, 20);
    appended(client(&log, &straddle));
    assert_eq!(log.producers()[0].last_sequence, Sequence(9));
    assert!(matches!(client(&log, &straddle), AppendOutcome::Duplicate(_)));
    appended(client(&log, &idem(6, 0, 10, 1)));
}

#[test]
fn unknown_producer_accepted_at_any_sequence() {
    // PSMT.testNoValidationOnFirstEntryWhenLoadingLog; KIP-360
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &idem(77, 5, 16, 1)));
    assert_eq!(log.producers()[0].last_sequence, Sequence(16));
    let r = rejected(client(&log, &idem(77, 6, 3, 1)));
    assert!(
        matches!(
            r,
            Rejection::OutOfOrderSequence {
                expected: Sequence(0),
                ..
            }
        ),
        "new epoch must start at 0"
    );
}

#[test]
fn gaps_rejected_from_clients_accepted_from_replication() {
    // PSMT.testAcceptAppendWithSequenceGapsOnReplica
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &idem(1, 0, 0, 1)));
    let end = log.log_end_offset();
    assert!(matches!(
        rejected(client(&log, &idem(1, 0, 3, 1))),
        Rejection::OutOfOrderSequence { .. }
    ));
    assert_eq!(log.log_end_offset(), end, "nothing written");
    assert_eq!(log.producers()[0].last_sequence, Sequence(0), "state unchanged");
    let mut b = idem(1, 0, 3, 1);
    b[..8].copy_from_slice(&end.0.to_be_bytes());
    appended(log.append(&b, AppendOrigin::Replication).expect("replicated"));
    assert_eq!(log.producers()[0].last_sequence, Sequence(3));
}

#[test]
fn producer_expires_after_expiration_ms() {
    // PSMT.testPidExpirationTimeout, with an injected clock.
    let t = TestLog::with_config(config(&[("producer.id.expiration.ms", "1000")]));
    let log = t.open();
    appended(client(&log, &idem(1, 5, 0, 1)));
    t.clock.advance(500);
    assert_eq!(log.run_maintenance().expect("maintenance").expired_producers, 0);
    // Batch timestamps are T0; expiry compares them to the clock.
    t.clock.set(T0 + 1001);
    assert_eq!(log.run_maintenance().expect("maintenance").expired_producers, 1);
    assert!(log.producers().is_empty());
    // A fresh producer: any sequence is accepted.
    appended(client(&log, &idem(1, 5, 1, 1)));
    assert_eq!(log.stats().producers_expired, 1);
}

#[test]
fn rejected_append_leaves_state_untouched() {
    // PSMT.testPrepareUpdateDoesNotMutate, seen through the log: a batch rejected by a later
    // check (here INVALID_TXN_STATE) must not have advanced the sequence.
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(3, 0, 0, 2)));
    let before = log.producers();
    let r = rejected(client(&log, &idem(3, 0, 2, 1)));
    assert_eq!(r.kafka_error(), KafkaError::InvalidTxnState);
    assert_eq!(log.producers(), before);
    appended(client(&log, &txn(3, 0, 2, 1)));
}

#[test]
fn window_is_configurable_up_to_128() {
    let t = TestLog::with_config(config(&[("eoslog.producer.window", "128")]));
    let log = t.open();
    let batches: Vec<Vec<u8>> = (0..200).map(|s| idem(4, 0, s, 1)).collect();
    for b in &batches {
        appended(client(&log, b));
    }
    // The 128 most recent batches are all recognised; the one before is not.
    for (s, b) in batches.iter().enumerate().skip(72) {
        assert!(
            matches!(client(&log, b), AppendOutcome::Duplicate(i) if i.first_offset == off(s as i64)),
            "seq {s}"
        );
    }
    assert!(matches!(client(&log, &batches[71]), AppendOutcome::Rejected(_)));
    assert!(eoslog::LogConfig::default()
        .set("eoslog.producer.window", "2000")
        .is_err());
}

#[test]
fn whole_window_survives_clean_restart_and_crash() {
    for crash in [false, true] {
        let t = TestLog::new();
        let batches: Vec<Vec<u8>> = (0..8).map(|s| idem(9, 2, 2 * s, 2)).collect();
        {
            let log = t.open();
            for b in &batches {
                appended(client(&log, b));
            }
            if crash {
                drop(log); // no clean shutdown: recovery runs on the next open
            } else {
                log.close().expect("close");
            }
        }
        let log = t.open();
        // Kafka keeps only the last batch across a restart; eoslog keeps all five.
        for (i, b) in batches.iter().enumerate().skip(3) {
            match client(&log, b) {
                AppendOutcome::Duplicate(info) => {
                    assert_eq!(info.first_offset, off(i as i64 * 2), "crash={crash}")
                }
                other => panic!("crash={crash} batch {i}: {other:?}"),
            }
        }
        assert!(matches!(client(&log, &batches[2]), AppendOutcome::Rejected(_)));
        appended(client(&log, &idem(9, 2, 16, 1)));
    }
}
