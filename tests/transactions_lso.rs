//! Invariant: the last stable offset is min(first unstable offset, high watermark), lower-bounded
//! by the log start offset; a completed transaction keeps pinning it until the high watermark
//! passes its marker; read_committed never returns data at or above it. Scenarios 24, 25, 26,
//! 29, 30, 32, 36, 37, 38 of the reference, issue #4.

mod common;
use common::*;
use eoslog::{Isolation, KafkaError, MarkerType, Offset, ProducerId};

fn manual() -> TestLog {
    TestLog::with_config(config(&[("eoslog.high.watermark", "manual")]))
}

#[test]
fn non_transactional_write_inside_transaction_is_invalid_txn_state() {
    // PSMT.testNonTransactionalAppendWithOngoingTransaction
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 1)));
    let r = rejected(client(&log, &idem(1, 0, 1, 1)));
    assert_eq!(r.kafka_error(), KafkaError::InvalidTxnState);
    assert_eq!(r.kafka_error().code(), 48);
}

#[test]
fn first_unstable_offset_follows_high_watermark() {
    // PSMT.testFirstUnstableOffset, through the log with a manual high watermark.
    let t = manual();
    let log = t.open();
    for _ in 0..5 {
        appended(client(&log, &plain(&["x"])));
    }
    appended(client(&log, &txn(1, 0, 0, 1))); // pid1 txn at 5
    appended(client(&log, &txn(2, 0, 0, 1))); // pid2 txn at 6
    assert_eq!(log.first_unstable_offset(), Some(Offset(5)));
    log.set_high_watermark(Offset(7));
    assert_eq!(log.last_stable_offset(), Offset(5));
    let c = commit(&log, 1, 0); // marker at 7
    assert_eq!(c.first_offset, Offset(7));
    assert_eq!(
        log.first_unstable_offset(),
        Some(Offset(5)),
        "pinned until HW passes the marker"
    );
    log.set_high_watermark(Offset(8));
    assert_eq!(log.first_unstable_offset(), Some(Offset(6)));
    assert_eq!(log.last_stable_offset(), Offset(6));
    abort(&log, 2, 0); // marker at 8
    log.set_high_watermark(Offset(8));
    assert_eq!(log.first_unstable_offset(), Some(Offset(6)));
    log.set_high_watermark(Offset(9));
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), Offset(9));
}

#[test]
fn no_transactional_data_means_no_unstable_offset() {
    // ULT.testFirstUnstableOffsetNoTransactionalData
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &plain(&["a", "b"])));
    appended(client(&log, &idem(1, 0, 0, 3)));
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn fetch_up_to_last_stable_offset() {
    // ULT.testFetchUpToLastStableOffset
    let t = manual();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 8))); // 0..7
    appended(client(&log, &txn(2, 0, 0, 8))); // 8..15
    appended(client(&log, &txn(1, 0, 8, 10))); // 16..25
    log.set_high_watermark(Offset(26));
    assert_eq!(log.last_stable_offset(), Offset(0));
    for o in 0..=26 {
        let f = log
            .read(Offset(o), 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        assert!(f.slices.is_empty(), "nothing below LSO 0 at {o}");
        assert_eq!(f.aborted_transactions, Some(vec![]));
    }
    commit(&log, 1, 0); // 26
    assert_eq!(log.last_stable_offset(), Offset(0));
    log.set_high_watermark(Offset(27));
    assert_eq!(log.last_stable_offset(), Offset(8));
    for o in 0..8 {
        let f = log
            .read(Offset(o), 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        assert!(!f.slices.is_empty(), "data below the LSO at {o}");
    }
    for o in 8..=27 {
        let f = log
            .read(Offset(o), 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        assert!(f.slices.is_empty(), "nothing at or above the LSO at {o}");
    }
    abort(&log, 2, 0); // 27
    assert_eq!(log.last_stable_offset(), Offset(8));
    log.set_high_watermark(Offset(28));
    assert_eq!(log.last_stable_offset(), Offset(28));
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert_eq!(
        f.aborted_transactions,
        Some(vec![eoslog::AbortedTransaction {
            producer_id: ProducerId(2),
            first_offset: Offset(8)
        }])
    );
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    assert_eq!(
        f.aborted_transactions, None,
        "read_uncommitted never returns an aborted list"
    );
    let vals = values(&log, Isolation::ReadCommitted);
    assert_eq!(vals.len(), 18);
    assert!(vals.iter().all(|v| v.starts_with("t1-")));
}

#[test]
fn completed_transaction_reports_first_offset_and_keeps_batches() {
    // PSMT.updateProducerTransactionState + ULT.testActiveProducers
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 5, 0, 5)));
    let p = log.producers()[0];
    assert_eq!(
        (
            p.last_sequence.0,
            p.current_txn_start_offset,
            p.coordinator_epoch.0
        ),
        (4, Some(Offset(0)), -1)
    );
    appended(marker(&log, 1, 5, 15, MarkerType::Commit));
    let p = log.producers()[0];
    assert_eq!(
        (
            p.last_sequence.0,
            p.current_txn_start_offset,
            p.coordinator_epoch.0
        ),
        (4, None, 15)
    );
    appended(client(&log, &idem(2, 0, 0, 3)));
    assert_eq!(log.producers()[1].last_sequence.0, 2);
}

#[test]
fn hanging_transactions_are_flagged_late_and_can_be_aborted() {
    // PSMT.testHasLateTransaction with the default max timeout (15 min) + 5 min buffer.
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 1)));
    t.clock.advance(500);
    let b = {
        let recs = [eoslog::NewRecord::value(T0 + 500, b"y")];
        eoslog::BatchBuilder::transactional(ProducerId(2), eoslog::ProducerEpoch(0), eoslog::Sequence(0))
            .build(&recs)
            .expect("b")
    };
    appended(client(&log, &b));
    let late_after = 900_000 + 300_000;
    t.clock.set(T0 + late_after);
    assert!(log.open_transactions().iter().all(|x| !x.is_late));
    t.clock.set(T0 + late_after + 1);
    let open = log.open_transactions();
    assert!(open[0].is_late && !open[1].is_late);
    assert_eq!(log.stats().oldest_open_transaction_age_ms, late_after + 1);
    // kafka-transactions.sh abort: an ABORT at the producer's current epoch.
    let _ = log
        .abort_transaction(ProducerId(1), open[0].first_offset)
        .expect("abort")
        .expect("was open");
    t.clock.set(T0 + 500 + late_after + 1);
    assert!(log.open_transactions()[0].is_late);
    let _ = log
        .abort_transaction(ProducerId(2), open[1].first_offset)
        .expect("abort")
        .expect("was open");
    assert!(log.open_transactions().is_empty());
    assert_eq!(log.stats().forced_aborts, 2);
    assert_eq!(log.aborted_transactions().len(), 2);
    assert!(log
        .abort_transaction(ProducerId(2), open[1].first_offset)
        .expect("ok")
        .is_none());
}

#[test]
fn open_transactions_never_expire() {
    // PSMT.testProducersWithOngoingTransactionsDontExpire
    let t = TestLog::with_config(config(&[("producer.id.expiration.ms", "1000")]));
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 1)));
    t.clock.advance(10_000_000);
    assert_eq!(log.run_maintenance().expect("m").expired_producers, 0);
    assert_eq!(log.producers().len(), 1);
}

#[test]
fn transaction_timeout_aborts_automatically_when_enabled() {
    let t = TestLog::with_config(config(&[("eoslog.transaction.timeout.ms", "60000")]));
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 2)));
    t.clock.advance(59_000);
    assert_eq!(log.run_maintenance().expect("m").aborted_transactions, 0);
    t.clock.advance(2_000);
    assert_eq!(log.run_maintenance().expect("m").aborted_transactions, 1);
    assert!(log.open_transactions().is_empty());
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
}

#[test]
fn lso_lower_bounded_by_log_start() {
    // UnifiedLog lower-bounds the FUO by the log start offset (DeleteRecords past a txn start).
    let t = manual();
    let log = t.open();
    appended(client(&log, &plain(&["a", "b", "c"])));
    appended(client(&log, &txn(1, 0, 0, 2))); // 3..4
    appended(client(&log, &plain(&["d"]))); // 5
    log.set_high_watermark(Offset(6));
    assert_eq!(log.last_stable_offset(), Offset(3));
    log.delete_records_before(Offset(4)).expect("delete");
    assert_eq!(log.first_unstable_offset(), Some(Offset(4)));
    assert_eq!(log.last_stable_offset(), Offset(4));
    assert!(matches!(
        log.delete_records_before(Offset(7)),
        Err(eoslog::ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn concurrent_high_watermark_updates_never_expose_unstable_data() {
    // ULT.testReadCommittedWithConcurrentHighWatermarkUpdates (KAFKA-9807).
    let t = manual();
    let log = std::sync::Arc::new(t.open());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hw = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                log.set_high_watermark(log.log_end_offset());
            }
        })
    };
    for i in 0..300 {
        let before = log.log_end_offset();
        appended(client(&log, &txn(1, 0, i, 1)));
        let f = log.read(before, 1 << 20, Isolation::ReadCommitted).expect("read");
        assert!(
            f.slices.is_empty(),
            "read_committed returned undecided data at {before:?}"
        );
        abort(&log, 1, 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hw.join().expect("join");
    log.set_high_watermark(log.log_end_offset());
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
}

#[test]
fn durable_high_watermark_follows_fsync() {
    // eoslog.high.watermark=durable: read_committed (and read_uncommitted) never see data a
    // power loss could take back.
    let t = TestLog::with_config(config(&[("eoslog.high.watermark", "durable")]));
    let log = t.open();
    appended(client(&log, &plain(&["a", "b"])));
    assert_eq!(
        log.high_watermark(),
        Offset(0),
        "buffered data is not durable yet"
    );
    assert!(values(&log, Isolation::ReadUncommitted).is_empty());
    log.flush().expect("flush");
    assert_eq!(log.high_watermark(), Offset(2));
    let sync = eoslog::AppendOptions {
        durability: Some(eoslog::Durability::SyncEachAppend),
        ..eoslog::AppendOptions::new(eoslog::AppendOrigin::Client)
    };
    appended(log.append_with(&plain(&["c"]), &sync).expect("append"));
    assert_eq!(log.high_watermark(), Offset(3), "a durable append moves it");
    assert_eq!(values(&log, Isolation::ReadCommitted), vec!["a", "b", "c"]);
}

#[test]
fn record_stream_yields_only_committed_records() {
    let t = TestLog::with_config(config(&[("segment.bytes", "300")]));
    let log = t.open();
    for p in 0..6 {
        appended(client(&log, &txn(p, 0, 0, 2)));
        if p % 2 == 0 {
            abort(&log, p, 0);
        } else {
            commit(&log, p, 0);
        }
    }
    appended(client(&log, &txn(9, 0, 0, 1))); // open: pins the LSO
    let mut stream = log.records(Offset(0), Isolation::ReadCommitted);
    let got: Vec<String> = stream
        .by_ref()
        .map(|r| String::from_utf8(r.expect("record").value.expect("v")).expect("utf8"))
        .collect();
    assert_eq!(got, vec!["t1-s0", "t1-s1", "t3-s0", "t3-s1", "t5-s0", "t5-s1"]);
    assert_eq!(stream.position(), log.last_stable_offset());
    assert!(log.segments().len() > 2, "the stream crossed segments");
    let all = log.records(Offset(0), Isolation::ReadUncommitted).count();
    assert_eq!(all, 13);
}
