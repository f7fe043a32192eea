//! InitProducerId hands a transactional id one producer id and a strictly growing epoch:
//! a retry gets the same answer, a stale or foreign identity is fenced, an exhausted epoch
//! moves to a new producer id, and a failed fence never bumps the epoch twice. Scenarios of
//! Kafka's `TransactionCoordinatorTest` (handleInitProducerId).

mod common;

use common::{append_keyed, pe, tp, txn_key, txn_value_v0, FailSwitch, TestStore, T0};
use eoslog::{CoordinatorError, KafkaError, TxnApi, TxnState, TxnVersion};
use std::sync::Arc;

const TIMEOUT: i32 = 60_000;

#[test]
fn should_accept_init_pid_and_return_next_pid_when_transactional_id_is_null() {
    let t = TestStore::new(&[]);
    let a = t
        .txns()
        .init_producer_id(None, TIMEOUT, None)
        .expect("idempotent");
    let b = t
        .txns()
        .init_producer_id(None, TIMEOUT, None)
        .expect("idempotent");
    assert_eq!((a, b), (pe(0, 0), pe(1, 0)));
    assert!(
        t.txns().list(&Default::default()).is_empty(),
        "nothing stored for a null id"
    );
}

#[test]
fn should_init_pid_with_epoch_zero_for_new_transactional_id() {
    let t = TestStore::new(&[]);
    let p = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    assert_eq!(p.producer_epoch.0, 0);
    let d = t.txns().describe("a").expect("describe");
    assert_eq!(
        (d.state, d.producer_id, d.timeout_ms),
        (TxnState::Empty, p.producer_id, TIMEOUT)
    );
    // The next InitProducerId (no expected identity) bumps.
    let p2 = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    assert_eq!(p2, pe(p.producer_id.0, 1));
}

#[test]
fn test_validate_transaction_timeout() {
    let t = TestStore::new(&[("transaction.max.timeout.ms", "900000")]);
    for ok in [1, 900_000] {
        t.txns()
            .init_producer_id(Some("ok"), ok, None)
            .expect("valid timeout");
    }
    for bad in [-1, 0, 900_001] {
        let err = t
            .txns()
            .init_producer_id(Some("bad"), bad, None)
            .expect_err("invalid");
        assert_eq!(err.kafka_error(), KafkaError::InvalidTransactionTimeout, "{bad}");
    }
    let err = t
        .txns()
        .init_producer_id(Some(""), 1, None)
        .expect_err("empty id");
    assert_eq!(err.kafka_error(), KafkaError::InvalidRequest);
    let err = t
        .txns()
        .init_producer_id(Some("x"), 1, Some(pe(5, -1)))
        .expect_err("half set");
    assert_eq!(err.kafka_error(), KafkaError::InvalidRequest);
}

#[test]
fn test_init_producer_id_with_current_epoch_provided_and_retry() {
    let t = TestStore::new(&[]);
    let mut p = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    for _ in 0..10 {
        p = t
            .txns()
            .init_producer_id(Some("a"), TIMEOUT, Some(p))
            .expect("bump");
    }
    assert_eq!(p.producer_epoch.0, 10);
    let bumped = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(p))
        .expect("bump");
    assert_eq!(bumped.producer_epoch.0, 11);
    // A retry of that request (its answer was lost) gets the same answer.
    let retry = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(p))
        .expect("retry");
    assert_eq!(retry, bumped);
    // test_init_producer_id_stale_current_epoch_provided: an older epoch is fenced.
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(pe(p.producer_id.0, 9)))
        .expect_err("stale");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    assert_eq!(
        err.code_for(TxnApi::InitProducerId, 3),
        KafkaError::InvalidProducerEpoch.code()
    );
    // test_fence_producer_when_mapping_exists_with_different_producer_id
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(pe(p.producer_id.0 + 7, 11)))
        .expect_err("foreign");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
}

#[test]
fn test_init_producer_id_with_no_last_producer_data() {
    // The epoch before the last bump lives in memory only: after a restart a retry with it
    // is fenced (Kafka's behaviour).
    let mut t = TestStore::new(&[]);
    let p = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    let bumped = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(p))
        .expect("bump");
    t.reopen();
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(p))
        .expect_err("no last epoch");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    let ok = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(bumped))
        .expect("current");
    assert_eq!(ok.producer_epoch.0, bumped.producer_epoch.0 + 1);
}

/// A store whose transactional id `a` was left (by Kafka's own record format) at `epoch`.
fn store_at_epoch(config: &[(&str, &str)], epoch: i16, state: i8) -> TestStore {
    let mut t = TestStore::new(config);
    let p = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    t.s().create_topic("out", 1, &[]).expect("topic");
    let partition = t.txns().partition_for("a");
    let log = t.s().partition("__transaction_state", partition).expect("log");
    let parts: &[(&str, &[i32])] = &[("out", &[0])];
    let partitions = (state != 0).then_some(parts);
    let value = txn_value_v0(p.producer_id.0, epoch, TIMEOUT, state, partitions, T0, T0);
    append_keyed(&log, &txn_key("a"), Some(&value));
    drop(log);
    t.reopen();
    t
}

#[test]
fn test_retry_init_producer_id_after_producer_id_rotation() {
    let t = store_at_epoch(&[], 32766, 0);
    let old = t.txns().describe("a").expect("describe");
    let expected = pe(old.producer_id.0, 32766);
    let rotated = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(expected))
        .expect("rotate");
    assert_ne!(rotated.producer_id, old.producer_id);
    assert_eq!(rotated.producer_epoch.0, 0);
    // The retry (old identity) gets the same new identity.
    let retry = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(expected))
        .expect("retry");
    assert_eq!(retry, rotated);
    // test_init_producer_id_with_invalid_epoch_after_producer_id_rotation
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, Some(pe(old.producer_id.0, 32765)))
        .expect_err("stale");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
}

#[test]
fn should_use_last_epoch_to_fence_when_epochs_are_exhausted() {
    // transaction.version 0: an ongoing transaction at 32766 is aborted at 32767 (the
    // last epoch, fencing only), and the retry moves to a new producer id.
    let t = store_at_epoch(&[("transaction.version", "0")], 32766, 1);
    let old = t.txns().describe("a").expect("describe");
    assert_eq!(old.state, TxnState::Ongoing);
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect_err("fence");
    assert!(matches!(err, CoordinatorError::ConcurrentTransactions));
    let d = t.txns().describe("a").expect("describe");
    assert_eq!((d.state, d.producer_epoch), (TxnState::CompleteAbort, i16::MAX));
    let fresh = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect("rotate");
    assert_ne!(fresh.producer_id, old.producer_id);
    assert_eq!(fresh.producer_epoch.0, 0);
}

#[test]
fn a_tv2_fence_at_the_last_epoch_moves_to_a_new_producer_id_at_completion() {
    // KAFKA-20090: under transaction.version 2 the abort's completion already moves the id
    // to a new producer id, so 32767 is never an identity anyone holds.
    let t = store_at_epoch(&[], 32766, 1);
    let old = t.txns().describe("a").expect("describe");
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect_err("fence");
    assert!(matches!(err, CoordinatorError::ConcurrentTransactions));
    let d = t.txns().describe("a").expect("describe");
    assert_eq!(d.state, TxnState::CompleteAbort);
    assert_ne!(d.producer_id, old.producer_id);
    assert_eq!(d.producer_epoch, 0);
    // The fenced producer's TV2 retry of an abort is told the new identity.
    let answer = t
        .txns()
        .end_txn("a", pe(old.producer_id.0, 32766), false, TxnVersion::TV2)
        .expect("retry");
    assert_eq!(answer, pe(d.producer_id.0, 0));
    // A TV2 request to a store at transaction.version 0 is refused.
    let t0 = store_at_epoch(&[("transaction.version", "0")], 5, 0);
    let p = t0.txns().describe("a").expect("describe");
    let err = t0
        .txns()
        .end_txn("a", pe(p.producer_id.0, 5), false, TxnVersion::TV2)
        .expect_err("tv2 on a tv0 store");
    assert_eq!(err.kafka_error(), KafkaError::InvalidRequest);
}

#[test]
fn should_not_repeatedly_bump_epoch_due_to_init_pid_during_ongoing_txn_if_append_to_log_fails() {
    let switch = Arc::new(FailSwitch::default());
    let t = TestStore::with_fs(&[], common::switched_fs(switch.clone()));
    t.s().create_topic("out", 1, &[]).expect("topic");
    let p = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    t.txns()
        .add_partitions("a", p, &[tp("out", 0)], TxnVersion::TV0)
        .expect("add");
    switch.fail(&["__transaction_state"]);
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect_err("append fails");
    assert_eq!(err.kafka_error(), KafkaError::NotCoordinator);
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect_err("reloading");
    assert_eq!(err.kafka_error(), KafkaError::NotCoordinator);
    switch.heal();
    let report = t.s().run_maintenance();
    assert!(report.reopened >= 1, "{report:?}");
    // The fence retried: aborts at e+1 (not e+2), and the new instance gets e+2.
    let err = t
        .txns()
        .init_producer_id(Some("a"), TIMEOUT, None)
        .expect_err("fence");
    assert!(matches!(err, CoordinatorError::ConcurrentTransactions));
    let d = t.txns().describe("a").expect("describe");
    assert_eq!((d.state, d.producer_epoch), (TxnState::CompleteAbort, 1));
    let fresh = t.txns().init_producer_id(Some("a"), TIMEOUT, None).expect("init");
    assert_eq!(fresh, pe(p.producer_id.0, 2));
}
