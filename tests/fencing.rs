//! Invariant: a zombie producer or coordinator can never write: a lower producer epoch is
//! INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED, and a
//! marker with a higher epoch fences the producer. Scenarios 13, 14, 17, 18, 19, 20, 22 of the
//! reference, issues #3 and #4.

mod common;
use common::*;
use eoslog::{AppendOutcome, KafkaError, MarkerType, ProducerEpoch, Rejection, Sequence};

#[test]
fn old_producer_epoch_is_fenced() {
    // ULT.testOldProducerEpoch
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &idem(1, 1, 0, 1)));
    let r = rejected(client(&log, &idem(1, 0, 1, 1)));
    assert_eq!(r.kafka_error(), KafkaError::InvalidProducerEpoch);
    assert_eq!(r.kafka_error().code(), 47);
    assert_eq!(log.stats().rejections, vec![("INVALID_PRODUCER_EPOCH", 1)]);
}

#[test]
fn abort_marker_with_higher_epoch_bumps_epoch() {
    // PSMT.testControlRecordBumpsProducerEpoch
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &idem(1, 0, 0, 1)));
    appended(marker(&log, 1, 1, 0, MarkerType::Abort));
    let p = &log.producers()[0];
    assert_eq!(p.producer_epoch, ProducerEpoch(1));
    assert_eq!(p.last_sequence, Sequence(-1));
    assert_eq!(p.current_txn_start_offset, None);
    // Only a marker is known at epoch 1: the next batch must start at 0.
    assert!(matches!(
        rejected(client(&log, &idem(1, 1, 1, 1))),
        Rejection::OutOfOrderSequence { .. }
    ));
    appended(client(&log, &idem(1, 1, 0, 1)));
    // The zombie at epoch 0 is fenced.
    assert_eq!(
        rejected(client(&log, &idem(1, 0, 1, 1))).kafka_error(),
        KafkaError::InvalidProducerEpoch
    );
}

#[test]
fn marker_with_old_epoch_is_fenced() {
    // PSMT.testOldEpochForControlRecord / ULT.testEndTxnWithFencedProducerEpoch
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 5, 0, 1)));
    for e in [3, 4] {
        let r = rejected(marker(&log, 1, e, 0, MarkerType::Commit));
        assert_eq!(r.kafka_error(), KafkaError::InvalidProducerEpoch);
    }
    assert_eq!(log.open_transactions().len(), 1, "the transaction is still open");
}

#[test]
fn coordinator_epoch_fencing() {
    // PSMT.testCoordinatorFencing, ULT.testZombieCoordinatorFenced
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 1)));
    appended(marker(&log, 1, 0, 1, MarkerType::Commit));
    appended(client(&log, &txn(1, 0, 1, 1)));
    appended(marker(&log, 1, 0, 1, MarkerType::Commit));
    appended(client(&log, &txn(1, 0, 2, 1)));
    appended(marker(&log, 1, 0, 2, MarkerType::Commit));
    appended(client(&log, &txn(1, 0, 3, 1)));
    let r = rejected(marker(&log, 1, 0, 1, MarkerType::Commit));
    assert_eq!(r.kafka_error(), KafkaError::TransactionCoordinatorFenced);
    assert_eq!(r.kafka_error().code(), 52);
}

#[test]
fn coordinator_epoch_survives_reload() {
    // PSMT.testCoordinatorFencedAfterReload
    let t = TestLog::new();
    {
        let log = t.open();
        appended(client(&log, &txn(1, 0, 0, 1)));
        appended(marker(&log, 1, 0, 7, MarkerType::Commit));
        log.close().expect("close");
    }
    let log = t.open();
    assert_eq!(log.producers()[0].coordinator_epoch.0, 7);
    appended(client(&log, &txn(1, 0, 1, 1)));
    assert_eq!(
        rejected(marker(&log, 1, 0, 6, MarkerType::Abort)).kafka_error(),
        KafkaError::TransactionCoordinatorFenced
    );
}

#[test]
fn fencing_abort_survives_expiry() {
    // PSMT.testProducerStateAfterFencingAbortMarker
    let t = TestLog::with_config(config(&[("producer.id.expiration.ms", "1000")]));
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 1)));
    appended(marker(&log, 1, 1, 0, MarkerType::Abort));
    assert!(log.open_transactions().is_empty());
    let p = log.producers()[0];
    assert_eq!(p.producer_epoch, ProducerEpoch(1));
    assert_eq!(p.current_txn_start_offset, None);
    // The marker timestamp is T0; before expiry the fencing epoch is enforced.
    t.clock.set(T0 + 999);
    log.run_maintenance().expect("maintenance");
    assert_eq!(
        rejected(client(&log, &txn(1, 0, 1, 1))).kafka_error(),
        KafkaError::InvalidProducerEpoch
    );
    assert!(matches!(
        client(&log, &txn(1, 1, 0, 1)),
        AppendOutcome::Appended(_)
    ));
}
