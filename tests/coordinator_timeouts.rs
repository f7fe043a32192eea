//! A transaction that outlives its timeout is aborted with an epoch bump that fences its
//! producer, during the store's life or at its next open; only Ongoing transactions time
//! out. A transactional id idle past `transactional.id.expiration.ms` is forgotten (with
//! tombstones in batches that fit the partition), and its producer starts afresh.
//! Scenarios of Kafka's `TransactionStateManagerTest` and `TransactionsExpirationTest`.

mod common;

use common::{tp, TestStore};
use eoslog::{AppendOutcome, Isolation, KafkaError, TxnState, TxnVersion};

const FAST_SWEEPS: &[(&str, &str)] = &[
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1"),
    ("transaction.remove.expired.transaction.cleanup.interval.ms", "1"),
];

fn begin(t: &TestStore, id: &str, timeout_ms: i32) -> eoslog::ProducerIdAndEpoch {
    let p = t
        .txns()
        .init_producer_id(Some(id), timeout_ms, None)
        .expect("init");
    t.txns()
        .add_partitions(id, p, &[tp("out", 0)], TxnVersion::TV0)
        .expect("add");
    let out = t
        .produce_txn(id, &tp("out", 0), p, 0, &[id], TxnVersion::TV0)
        .expect("produce");
    assert!(matches!(out, AppendOutcome::Appended(_)), "{out:?}");
    p
}

#[test]
fn test_fencing_on_transaction_expiration() {
    let t = TestStore::new(FAST_SWEEPS);
    t.s().create_topic("out", 1, &[]).expect("topic");
    let p = begin(&t, "txn", 100);
    t.clock.advance(50);
    t.s().run_maintenance();
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::Ongoing,
        "not yet"
    );
    t.clock.advance(600);
    let report = t.s().run_maintenance();
    assert_eq!(report.timed_out_transactions, 1);
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!(
        (d.state, d.producer_epoch),
        (TxnState::CompleteAbort, 1),
        "aborted with a bump"
    );
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadUncommitted), vec!["txn"]);
    assert!(t.values(&tp("out", 0), Isolation::ReadCommitted).is_empty());
    // should_not_accept_smaller_epoch_during_transaction_expiration: the producer is fenced.
    let err = t
        .txns()
        .end_txn("txn", p, true, TxnVersion::TV0)
        .expect_err("fenced");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    let err = t
        .txns()
        .add_partitions("txn", p, &[tp("out", 0)], TxnVersion::TV0)
        .expect_err("fenced");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    // A KIP-360 InitProducerId with the old identity is fenced too (no last epoch).
    let err = t
        .txns()
        .init_producer_id(Some("txn"), 100, Some(p))
        .expect_err("fenced");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    let stats = t.s().coordinator_stats();
    assert_eq!((stats.transactions_timed_out, stats.producers_fenced), (1, 1));
}

#[test]
fn should_only_consider_transactions_in_the_ongoing_state_to_abort() {
    let t = TestStore::new(FAST_SWEEPS);
    t.s().create_topic("out", 1, &[]).expect("topic");
    let empty = t.txns().init_producer_id(Some("empty"), 100, None).expect("init");
    let done = begin(&t, "done", 100);
    t.txns()
        .end_txn("done", done, true, TxnVersion::TV0)
        .expect("commit");
    begin(&t, "open", 100);
    t.clock.advance(1_000);
    assert_eq!(t.txns().abort_timed_out_transactions(), 1);
    assert_eq!(
        t.txns().describe("empty").expect("d").producer_epoch,
        empty.producer_epoch.0
    );
    assert_eq!(
        t.txns().describe("done").expect("d").state,
        TxnState::CompleteCommit
    );
    assert_eq!(
        t.txns().describe("open").expect("d").state,
        TxnState::CompleteAbort
    );
}

#[test]
fn transactions_that_expired_while_closed_abort_at_open() {
    let mut t = TestStore::new(&[]);
    t.s().create_topic("out", 1, &[]).expect("topic");
    begin(&t, "txn", 1_000);
    t.crash();
    assert_eq!(
        t.txns().describe("txn").expect("d").state,
        TxnState::Ongoing,
        "timeout from the persisted start"
    );
    t.clock.advance(5_000);
    t.crash();
    assert_eq!(
        t.txns().describe("txn").expect("d").state,
        TxnState::CompleteAbort
    );
    let log = t.s().partition("out", 0).expect("log");
    assert!(
        log.open_transactions().is_empty(),
        "nothing hangs at the partition"
    );
}

#[test]
fn test_bump_transactional_epoch_after_invalid_producer_id_mapping() {
    let t = TestStore::new(&[
        ("transaction.remove.expired.transaction.cleanup.interval.ms", "1"),
        ("transactional.id.expiration.ms", "1000"),
    ]);
    t.s().create_topic("out", 1, &[]).expect("topic");
    let p = t
        .txns()
        .init_producer_id(Some("txn"), 60_000, None)
        .expect("init");
    t.clock.advance(2_000);
    let report = t.s().run_maintenance();
    assert_eq!(report.expired_transactional_ids, 1);
    let err = t.txns().describe("txn").expect_err("gone");
    assert_eq!(err.kafka_error(), KafkaError::TransactionalIdNotFound);
    let err = t
        .txns()
        .add_partitions("txn", p, &[tp("out", 0)], TxnVersion::TV0)
        .expect_err("unknown");
    assert_eq!(err.kafka_error(), KafkaError::InvalidProducerIdMapping);
    // The producer's KIP-360 InitProducerId starts afresh; its transaction commits.
    let fresh = t
        .txns()
        .init_producer_id(Some("txn"), 60_000, Some(p))
        .expect("afresh");
    assert_ne!(fresh.producer_id, p.producer_id, "producer ids are never reused");
    t.txns()
        .add_partitions("txn", fresh, &[tp("out", 0)], TxnVersion::TV0)
        .expect("add");
    let out = t
        .produce_txn("txn", &tp("out", 0), fresh, 0, &["ok"], TxnVersion::TV0)
        .expect("produce");
    assert!(matches!(out, AppendOutcome::Appended(_)), "{out:?}");
    t.txns()
        .end_txn("txn", fresh, true, TxnVersion::TV0)
        .expect("commit");
    assert_eq!(t.values(&tp("out", 0), Isolation::ReadCommitted), vec!["ok"]);
}

#[test]
fn test_transaction_expiration_should_respect_batch_size() {
    // A small max.message.bytes for the transaction log: the tombstones of many ids take
    // several batches, and every id goes.
    let mut t = TestStore::new(&[
        ("transaction.state.log.num.partitions", "1"),
        ("message.max.bytes", "512"),
        ("transactional.id.expiration.ms", "1000"),
        ("transaction.remove.expired.transaction.cleanup.interval.ms", "1"),
    ]);
    for i in 0..100 {
        t.txns()
            .init_producer_id(Some(&format!("id-{i:03}")), 60_000, None)
            .expect("init");
    }
    let log = t.s().partition("__transaction_state", 0).expect("log");
    let before = log.log_end_offset();
    drop(log);
    t.clock.advance(2_000);
    assert_eq!(t.txns().expire_transactional_ids(), 100);
    assert!(t.txns().list(&Default::default()).is_empty());
    let log = t.s().partition("__transaction_state", 0).expect("log");
    let fetch = log.read(before, 1 << 20, Isolation::Replica).expect("read");
    let batches = eoslog::BatchIter::new(&fetch.bytes().expect("bytes")).count();
    assert!(batches > 1, "tombstones in {batches} batch(es)");
    drop(log);
    t.reopen();
    assert!(
        t.txns().list(&Default::default()).is_empty(),
        "the tombstones are durable"
    );
}

#[test]
fn ids_with_a_transaction_never_expire() {
    let t = TestStore::new(&[("transactional.id.expiration.ms", "1000")]);
    t.s().create_topic("out", 1, &[]).expect("topic");
    begin(&t, "open", 60_000);
    t.clock.advance(10_000);
    assert_eq!(t.txns().expire_transactional_ids(), 0);
    assert!(matches!(t.txns().describe("open"), Ok(d) if d.state == TxnState::Ongoing));
}
