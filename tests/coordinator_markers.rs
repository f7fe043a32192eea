//! Once a transaction's outcome is durable (PrepareCommit/PrepareAbort), every partition of
//! it gets its marker, whatever fails in between: a partition that cannot take it now gets
//! it from maintenance or from the next open, a crash between the decision and the last
//! marker never leaves a partition undecided, and a deleted partition is skipped. Scenarios
//! of Kafka's `TransactionMarkerChannelManagerTest` and `TransactionStateManagerTest`.

mod common;

use std::sync::Arc;

use common::{append_keyed, tp, txn_key, txn_value_v0, FailSwitch, TestStore, T0};
use eoslog::{AppendOutcome, CoordinatorError, Isolation, KafkaError, TxnState, TxnVersion};

const TIMEOUT: i32 = 60_000;

fn ongoing(t: &TestStore, parts: &[eoslog::TopicPartition]) -> eoslog::ProducerIdAndEpoch {
    let p = t
        .txns()
        .init_producer_id(Some("txn"), TIMEOUT, None)
        .expect("init");
    t.txns()
        .add_partitions("txn", p, parts, TxnVersion::TV0)
        .expect("add");
    for (i, part) in parts.iter().enumerate() {
        let out = t
            .produce_txn("txn", part, p, 0, &[&format!("v{i}")], TxnVersion::TV0)
            .expect("produce");
        assert!(matches!(out, AppendOutcome::Appended(_)), "{out:?}");
    }
    p
}

#[test]
fn should_complete_append_to_log_on_end_txn_when_send_markers_succeed() {
    let t = TestStore::new(&[]);
    t.s().create_topic("out", 3, &[]).expect("topic");
    let parts: Vec<_> = (0..3).map(|i| tp("out", i)).collect();
    let p = ongoing(&t, &parts);
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!(d.state, TxnState::CompleteCommit);
    for part in &parts {
        let log = t.s().partition(&part.topic, part.partition).expect("log");
        assert!(log.open_transactions().is_empty(), "{part} decided");
        assert_eq!(
            log.durable_offset(),
            log.log_end_offset(),
            "{part}: the marker is durable"
        );
    }
    let stats = t.s().coordinator_stats();
    assert_eq!(stats.markers_written, 3);
    assert_eq!(stats.completions, 1);
}

#[test]
fn should_skip_send_markers_when_leader_not_found() {
    // A partition deleted after it joined the transaction is skipped; the others get
    // their markers and the transaction completes.
    let t = TestStore::new(&[]);
    t.s().create_topic("gone", 1, &[]).expect("topic");
    t.s().create_topic("kept", 1, &[]).expect("topic");
    let p = ongoing(&t, &[tp("gone", 0), tp("kept", 0)]);
    t.s().delete_topic("gone").expect("delete");
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::CompleteCommit
    );
    assert_eq!(t.values(&tp("kept", 0), Isolation::ReadCommitted), vec!["v1"]);
}

#[test]
fn a_partition_that_fails_gets_its_marker_from_maintenance() {
    let switch = Arc::new(FailSwitch::default());
    let t = TestStore::with_fs(&[], common::switched_fs(switch.clone()));
    t.s().create_topic("out", 2, &[]).expect("topic");
    let p = ongoing(&t, &[tp("out", 0), tp("out", 1)]);
    switch.fail(&["out-1"]);
    // The decision is durable: EndTxn succeeds although out-1 cannot take its marker.
    t.txns()
        .end_txn("txn", p, true, TxnVersion::TV0)
        .expect("decided");
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::PrepareCommit
    );
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadCommitted), vec!["v0"]);
    let err = t
        .txns()
        .add_partitions("txn", p, &[tp("out", 0)], TxnVersion::TV0)
        .expect_err("busy");
    assert!(matches!(err, CoordinatorError::ConcurrentTransactions), "{err:?}");
    switch.heal();
    let out0_end = t.s().partition("out", 0).expect("log").log_end_offset();
    let report = t.s().run_maintenance();
    assert_eq!(
        (report.reopened, report.completed_transactions),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::CompleteCommit
    );
    assert_eq!(t.values(&tp("out", 1), Isolation::ReadCommitted), vec!["v1"]);
    assert_eq!(
        t.s().partition("out", 0).expect("log").log_end_offset(),
        out0_end,
        "only the partition that lacked its marker gets one"
    );
}

#[test]
fn prepare_commit_is_completed_on_open_after_a_crash() {
    // A crash between the decision and the last marker: the next open writes every marker
    // (again, where one landed) and completes, before it answers anyone.
    let switch = Arc::new(FailSwitch::default());
    let mut t = TestStore::with_fs(&[], common::switched_fs(switch.clone()));
    t.s().create_topic("out", 2, &[]).expect("topic");
    let p = ongoing(&t, &[tp("out", 0), tp("out", 1)]);
    switch.fail(&["out-1"]);
    t.txns()
        .end_txn("txn", p, true, TxnVersion::TV0)
        .expect("decided");
    switch.heal();
    t.crash();
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::CompleteCommit
    );
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadCommitted), vec!["v0"]);
    assert_eq!(t.values(&tp("out", 1), Isolation::ReadCommitted), vec!["v1"]);
    // The producer continues with its epoch (TV0 keeps it).
    t.txns()
        .add_partitions("txn", p, &[tp("out", 0)], TxnVersion::TV0)
        .expect("next txn");
}

#[test]
fn a_prepare_abort_written_by_kafka_is_completed_on_open() {
    // State written in Kafka's own record format (version 0 values) loads, and a
    // PrepareAbort found at open is completed: its data never becomes visible.
    let mut t = TestStore::new(&[]);
    t.s().create_topic("out", 1, &[]).expect("topic");
    let p = ongoing(&t, &[tp("out", 0)]);
    let log = t
        .s()
        .partition("__transaction_state", t.txns().partition_for("txn"))
        .expect("log");
    // An unknown key version first: skipped, as Kafka skips it.
    append_keyed(&log, &[0x7f, 0xff, 0, 1, b'x'], Some(b"ignored"));
    let parts: &[(&str, &[i32])] = &[("out", &[0])];
    let value = txn_value_v0(
        p.producer_id.0,
        p.producer_epoch.0,
        TIMEOUT,
        3,
        Some(parts),
        T0,
        T0,
    );
    append_keyed(&log, &txn_key("txn"), Some(&value));
    drop(log);
    t.crash();
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!((d.state, d.producer_epoch), (TxnState::CompleteAbort, 0));
    assert!(t.values(&tp("out", 0), Isolation::ReadCommitted).is_empty());
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadUncommitted), vec!["v0"]);
}

#[test]
fn a_failed_transaction_log_write_reloads_at_a_higher_coordinator_epoch() {
    let switch = Arc::new(FailSwitch::default());
    let t = TestStore::with_fs(&[], common::switched_fs(switch.clone()));
    t.s().create_topic("out", 1, &[]).expect("topic");
    let p = ongoing(&t, &[tp("out", 0)]);
    let part = t.txns().partition_for("txn");
    let epoch_before = t
        .s()
        .partition("__transaction_state", part)
        .expect("log")
        .leader_epochs()
        .last()
        .map(|e| e.epoch);
    switch.fail(&["__transaction_state"]);
    let err = t
        .txns()
        .end_txn("txn", p, true, TxnVersion::TV0)
        .expect_err("not written");
    assert_eq!(err.kafka_error(), KafkaError::NotCoordinator);
    switch.heal();
    t.s().run_maintenance();
    // Nothing was decided: the transaction is still open, and commits now.
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::Ongoing
    );
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    let epoch_after = t
        .s()
        .partition("__transaction_state", part)
        .expect("log")
        .leader_epochs()
        .last()
        .map(|e| e.epoch);
    assert!(epoch_after > epoch_before, "{epoch_before:?} -> {epoch_after:?}");
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadCommitted), vec!["v0"]);
}

#[test]
fn test_append_fail_to_unknown_error() {
    // A transition whose record exceeds the transaction log's max.message.bytes is not
    // written: UNKNOWN_SERVER_ERROR, and the id's state is unchanged.
    let t = TestStore::new(&[("message.max.bytes", "300")]);
    t.s()
        .create_topic("wide-topic-with-a-long-name", 40, &[])
        .expect("topic");
    let p = t
        .txns()
        .init_producer_id(Some("txn"), TIMEOUT, None)
        .expect("init");
    let parts: Vec<_> = (0..40).map(|i| tp("wide-topic-with-a-long-name", i)).collect();
    let err = t
        .txns()
        .add_partitions("txn", p, &parts, TxnVersion::TV0)
        .expect_err("too large");
    assert_eq!(err.kafka_error(), KafkaError::UnknownServerError);
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!((d.state, d.partitions.len()), (TxnState::Empty, 0));
    // A smaller transaction still works.
    t.txns()
        .add_partitions("txn", p, &parts[..2], TxnVersion::TV0)
        .expect("add");
}
