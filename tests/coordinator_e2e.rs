//! A transaction over many partitions commits or aborts as one: read_committed sees all of
//! it or none of it, never data whose outcome is undecided; a new instance of a
//! transactional id fences its predecessor (its commit, adds and writes are refused) and
//! aborts what it left open; KIP-890's checks keep a batch outside the transaction from
//! opening one that no coordinator would end. Scenarios of Kafka's `TransactionsTest`.

mod common;

use common::{pe, tp, TestStore};
use eoslog::{
    AppendOutcome, CoordinatorError, Isolation, KafkaError, ProducerIdAndEpoch, Rejection, TxnApi, TxnState,
    TxnVersion,
};

const TIMEOUT: i32 = 60_000;

fn store_with_topics() -> TestStore {
    let t = TestStore::new(&[]);
    t.s().create_topic("out", 2, &[]).expect("create");
    t.s().create_topic("other", 1, &[]).expect("create");
    t
}

fn init(t: &TestStore, id: &str) -> ProducerIdAndEpoch {
    t.txns().init_producer_id(Some(id), TIMEOUT, None).expect("init")
}

fn appended(o: AppendOutcome) {
    assert!(matches!(o, AppendOutcome::Appended(_)), "{o:?}");
}

#[test]
fn test_read_committed_consumer_should_not_see_undecided_data() {
    let t = store_with_topics();
    let p = init(&t, "txn");
    let (a, b) = (tp("out", 0), tp("out", 1));
    t.txns()
        .add_partitions("txn", p, &[a.clone(), b.clone()], TxnVersion::TV0)
        .expect("add");
    appended(
        t.produce_txn("txn", &a, p, 0, &["a1", "a2"], TxnVersion::TV0)
            .expect("produce"),
    );
    appended(
        t.produce_txn("txn", &b, p, 0, &["b1"], TxnVersion::TV0)
            .expect("produce"),
    );
    assert!(
        t.values(&a, Isolation::ReadCommitted).is_empty(),
        "undecided data is invisible"
    );
    assert_eq!(t.values(&a, Isolation::ReadUncommitted), vec!["a1", "a2"]);
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::Ongoing
    );

    let answer = t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    assert_eq!(answer, pe(-1, -1), "TV0 answers no identity");
    assert_eq!(t.values(&a, Isolation::ReadCommitted), vec!["a1", "a2"]);
    assert_eq!(t.values(&b, Isolation::ReadCommitted), vec!["b1"]);
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!((d.state, d.producer_epoch), (TxnState::CompleteCommit, 0));
    assert!(d.partitions.is_empty());
    let stats = t.s().coordinator_stats();
    assert_eq!((stats.transactions_committed, stats.markers_written), (1, 2));

    // The next transaction aborts: none of it is visible.
    t.txns()
        .add_partitions("txn", p, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    appended(
        t.produce_txn("txn", &a, p, 2, &["lost"], TxnVersion::TV0)
            .expect("produce"),
    );
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("abort");
    assert_eq!(t.values(&a, Isolation::ReadCommitted), vec!["a1", "a2"]);
    assert_eq!(t.values(&a, Isolation::ReadUncommitted), vec!["a1", "a2", "lost"]);
    // A retry of the abort succeeds without writing; a commit after it is invalid.
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("retry");
    let err = t
        .txns()
        .end_txn("txn", p, true, TxnVersion::TV0)
        .expect_err("commit after abort");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTxnState);
}

#[test]
fn markers_carry_the_coordinator_epoch_which_grows_with_each_load() {
    let mut t = store_with_topics();
    let p = init(&t, "txn");
    let a = tp("out", 0);
    t.txns()
        .add_partitions("txn", p, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    appended(
        t.produce_txn("txn", &a, p, 0, &["x"], TxnVersion::TV0)
            .expect("produce"),
    );
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    let first = t.s().partition("out", 0).expect("log").producers()[0].coordinator_epoch;
    t.reopen();
    t.txns()
        .add_partitions("txn", p, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    appended(
        t.produce_txn("txn", &a, p, 1, &["y"], TxnVersion::TV0)
            .expect("produce"),
    );
    t.txns().end_txn("txn", p, true, TxnVersion::TV0).expect("commit");
    let second = t.s().partition("out", 0).expect("log").producers()[0].coordinator_epoch;
    assert!(second > first, "coordinator epoch {first:?} then {second:?}");
}

#[test]
fn test_fencing_on_commit() {
    let t = store_with_topics();
    let old = init(&t, "txn");
    let a = tp("out", 0);
    t.txns()
        .add_partitions("txn", old, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    appended(
        t.produce_txn("txn", &a, old, 0, &["zombie"], TxnVersion::TV0)
            .expect("produce"),
    );

    // A new instance: its first InitProducerId fences and aborts, the retry gets e+2.
    let err = t
        .txns()
        .init_producer_id(Some("txn"), TIMEOUT, None)
        .expect_err("fence");
    assert!(matches!(err, CoordinatorError::ConcurrentTransactions), "{err:?}");
    let new = init(&t, "txn");
    assert_eq!((new.producer_id, new.producer_epoch.0), (old.producer_id, 2));
    assert_eq!(t.txns().describe("txn").expect("describe").state, TxnState::Empty);
    assert!(
        t.values(&a, Isolation::ReadCommitted).is_empty(),
        "the zombie's data was aborted"
    );

    let err = t
        .txns()
        .end_txn("txn", old, true, TxnVersion::TV0)
        .expect_err("fenced");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    assert_eq!(
        err.code_for(TxnApi::EndTxn, 1),
        KafkaError::InvalidProducerEpoch.code()
    );
    // The zombie's next batch is refused: its coordinator check answers PRODUCER_FENCED,
    // which a produce response carries as INVALID_PRODUCER_EPOCH.
    let err = t
        .produce_txn("txn", &a, old, 1, &["late"], TxnVersion::TV0)
        .expect_err("fenced");
    assert_eq!(err.code_for(11), KafkaError::InvalidProducerEpoch.code());
    // And the partition itself fences the old epoch (the abort marker carried a newer one).
    let log = t.s().partition("out", 0).expect("log");
    let out = log
        .append(
            &common::txn(old.producer_id.0, old.producer_epoch.0, 1, 1),
            eoslog::AppendOrigin::Client,
        )
        .expect("answered");
    assert!(
        matches!(
            out,
            AppendOutcome::Rejected(Rejection::InvalidProducerEpoch { .. })
        ),
        "{out:?}"
    );
    assert_eq!(t.s().coordinator_stats().producers_fenced, 1);
}

#[test]
fn test_fencing_on_add_partitions() {
    let t = store_with_topics();
    let old = init(&t, "txn");
    let _ = t
        .txns()
        .init_producer_id(Some("txn"), TIMEOUT, None)
        .expect("bump");
    let err = t
        .txns()
        .add_partitions("txn", old, &[tp("out", 0)], TxnVersion::TV0)
        .expect_err("fenced");
    assert_eq!(err.kafka_error(), KafkaError::ProducerFenced);
    assert_eq!(err.code_for(TxnApi::AddPartitionsToTxn, 1), 47);
    let err = t
        .txns()
        .add_partitions(
            "txn",
            pe(old.producer_id.0 + 100, 1),
            &[tp("out", 0)],
            TxnVersion::TV0,
        )
        .expect_err("mapping");
    assert_eq!(err.kafka_error(), KafkaError::InvalidProducerIdMapping);
    let err = t
        .txns()
        .add_partitions("nobody", old, &[tp("out", 0)], TxnVersion::TV0)
        .expect_err("unknown id");
    assert_eq!(err.kafka_error(), KafkaError::InvalidProducerIdMapping);
    let err = t
        .txns()
        .add_partitions("txn", old, &[tp("missing", 0)], TxnVersion::TV0)
        .expect_err("unknown topic");
    assert_eq!(err.kafka_error(), KafkaError::UnknownTopicOrPartition);
}

#[test]
fn a_transactional_batch_outside_the_transaction_is_refused_at_the_partition() {
    let t = store_with_topics();
    let p = init(&t, "txn");
    let (a, b) = (tp("out", 0), tp("out", 1));
    t.txns()
        .add_partitions("txn", p, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    // out-1 was never added: TV0 verification answers TRANSACTION_ABORTABLE.
    let err = t
        .produce_txn("txn", &b, p, 0, &["stray"], TxnVersion::TV0)
        .expect_err("refused");
    assert_eq!(err.code_for(11), KafkaError::TransactionAbortable.code());
    assert_eq!(err.code_for(10), KafkaError::InvalidTxnState.code());
    let log = t.s().partition("out", 1).expect("log");
    assert_eq!(log.log_end_offset().0, 0, "nothing appended");
    assert!(log.open_transactions().is_empty(), "no hanging transaction");
    // Without a transactional id the batch is malformed for a store.
    let bytes = common::txn(p.producer_id.0, p.producer_epoch.0, 0, 1);
    let err = t
        .s()
        .produce("out", 0, &bytes, &eoslog::ProduceContext::default())
        .expect_err("no id");
    assert_eq!(err.kafka_error(), KafkaError::InvalidRequest);
}

#[test]
fn a_guard_voided_by_a_marker_refuses_the_late_batch() {
    // The race KIP-890 closes: the coordinator said "in the transaction", then the
    // transaction ended before the batch was appended.
    let t = store_with_topics();
    let p = init(&t, "txn");
    let a = tp("out", 0);
    t.txns()
        .add_partitions("txn", p, std::slice::from_ref(&a), TxnVersion::TV0)
        .expect("add");
    let log = t.s().partition("out", 0).expect("log");
    let guard = match log.start_verification(p.producer_id, p.producer_epoch) {
        eoslog::Verification::Required(g) => g,
        other => panic!("{other:?}"),
    };
    assert!(t.txns().verify_partitions("txn", p, std::slice::from_ref(&a))[0].is_ok());
    // The transaction ends (an empty one: its marker still reaches out-0).
    t.txns().end_txn("txn", p, false, TxnVersion::TV0).expect("abort");
    let bytes = common::txn(p.producer_id.0, p.producer_epoch.0, 0, 1);
    let out = log
        .append_with(
            &bytes,
            &eoslog::AppendOptions {
                verification_guard: Some(guard),
                ..eoslog::AppendOptions::new(eoslog::AppendOrigin::Client)
            },
        )
        .expect("answered");
    assert!(
        matches!(out, AppendOutcome::Rejected(Rejection::NotVerified { .. })),
        "{out:?}"
    );
    assert!(log.open_transactions().is_empty());
}

#[test]
fn tv2_adds_partitions_on_produce_and_bumps_the_epoch_at_every_end() {
    let t = store_with_topics();
    let p = init(&t, "txn");
    let a = tp("out", 0);
    appended(
        t.produce_txn("txn", &a, p, 0, &["one"], TxnVersion::TV2)
            .expect("implicit add"),
    );
    let d = t.txns().describe("txn").expect("describe");
    assert_eq!(
        (d.state, d.partitions.clone()),
        (TxnState::Ongoing, vec![a.clone()])
    );
    let next = t.txns().end_txn("txn", p, true, TxnVersion::TV2).expect("commit");
    assert_eq!(next, pe(p.producer_id.0, 1));
    assert_eq!(t.values(&a, Isolation::ReadCommitted), vec!["one"]);
    // A retry of that commit with the old epoch answers the same identity.
    assert_eq!(
        t.txns().end_txn("txn", p, true, TxnVersion::TV2).expect("retry"),
        next
    );
    // A stale batch at the old epoch is fenced by the marker's epoch.
    let err = t
        .produce_txn("txn", &a, p, 1, &["stale"], TxnVersion::TV2)
        .expect_err("stale");
    assert_eq!(err.code_for(11), KafkaError::InvalidProducerEpoch.code());
    // The next transaction at the new epoch.
    appended(
        t.produce_txn("txn", &a, next, 0, &["two"], TxnVersion::TV2)
            .expect("produce"),
    );
    let after = t
        .txns()
        .end_txn("txn", next, false, TxnVersion::TV2)
        .expect("abort");
    assert_eq!(after, pe(p.producer_id.0, 2));
    assert_eq!(t.values(&a, Isolation::ReadCommitted), vec!["one"]);
}

#[test]
fn test_empty_abort_after_commit() {
    let t = store_with_topics();
    let p = init(&t, "txn");
    let a = tp("out", 0);
    appended(
        t.produce_txn("txn", &a, p, 0, &["x"], TxnVersion::TV2)
            .expect("produce"),
    );
    let p1 = t.txns().end_txn("txn", p, true, TxnVersion::TV2).expect("commit");
    // An abort with nothing open bumps the epoch again (and writes no marker).
    let before = t.s().coordinator_stats().markers_written;
    let p2 = t
        .txns()
        .end_txn("txn", p1, false, TxnVersion::TV2)
        .expect("empty abort");
    assert_eq!(p2.producer_epoch.0, p1.producer_epoch.0 + 1);
    assert_eq!(t.s().coordinator_stats().markers_written, before);
    assert_eq!(
        t.txns().describe("txn").expect("describe").state,
        TxnState::CompleteAbort
    );
    // Commit at the current epoch with nothing open is invalid.
    let err = t
        .txns()
        .end_txn("txn", p2, true, TxnVersion::TV2)
        .expect_err("nothing to commit");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTxnState);
}
