//! Invariant: a forced abort (`Log::abort_transaction`, what `kafka-transactions.sh abort`
//! does) and a transaction-timeout abort land on the transaction they were decided for and on
//! no other: the check that the transaction is still open and the ABORT marker happen under
//! one hold of the writer lock, keyed by the transaction's first offset. A timed-out
//! transaction also fences its producer (the marker carries the next epoch, as Kafka's
//! coordinator aborts with a bumped epoch), so a zombie cannot continue it. Issue #13, item 3.

mod common;
use common::*;
use eoslog::{AppendOutcome, Isolation, Offset, ProducerId, Rejection};

#[test]
fn a_forced_abort_names_its_transaction_and_spares_a_newer_one() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 2))); // 0..1
    let seen = log.open_transactions();
    assert_eq!(seen[0].first_offset, Offset(0));
    // Meanwhile the producer commits and begins another transaction.
    commit(&log, 1, 0); // 2
    appended(client(&log, &txn(1, 0, 2, 1))); // 3
    assert!(
        log.abort_transaction(ProducerId(1), seen[0].first_offset)
            .expect("abort")
            .is_none(),
        "the transaction the operator saw is gone: nothing is written"
    );
    assert!(log.aborted_transactions().is_empty());
    assert_eq!(log.open_transactions()[0].first_offset, Offset(3));
    assert_eq!(log.stats().forced_aborts, 0);
    // Aborting the one that is open works, at the producer's epoch (no fencing).
    let outcome = log.abort_transaction(ProducerId(1), Offset(3)).expect("abort");
    assert!(matches!(outcome, Some(AppendOutcome::Appended(_))));
    assert_eq!(log.aborted_transactions()[0].first_offset, 3);
    assert_eq!(log.producers()[0].producer_epoch.0, 0);
    appended(client(&log, &txn(1, 0, 3, 1)));
    assert_eq!(log.stats().forced_aborts, 1);
}

#[test]
fn a_timed_out_transaction_is_aborted_with_the_next_epoch_and_its_producer_is_fenced() {
    let t = TestLog::with_config(config(&[("eoslog.transaction.timeout.ms", "60000")]));
    let log = t.open();
    appended(client(&log, &txn(7, 3, 0, 2)));
    t.clock.advance(60_001);
    assert_eq!(
        log.run_maintenance().expect("maintenance").aborted_transactions,
        1
    );
    assert!(log.open_transactions().is_empty());
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
    let p = log.producers();
    assert_eq!(p[0].producer_epoch.0, 4, "the abort marker bumped the epoch");
    // The zombie continues its transaction with its old epoch: fenced.
    let r = rejected(client(&log, &txn(7, 3, 2, 1)));
    assert!(matches!(r, Rejection::InvalidProducerEpoch { .. }), "{r:?}");
    // Its coordinator's late COMMIT at the old epoch is fenced too.
    assert!(matches!(
        marker(&log, 7, 3, 0, eoslog::MarkerType::Commit),
        AppendOutcome::Rejected(Rejection::InvalidProducerEpoch { .. })
    ));
    // The producer re-initialised at a new epoch goes on.
    appended(client(&log, &txn(7, 5, 0, 1)));
}

#[test]
fn concurrent_forced_aborts_only_hit_the_transactions_they_name() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let t = TestLog::new();
    let log = t.open();
    let stop = AtomicBool::new(false);
    let landed = AtomicUsize::new(0);
    let requested = std::thread::scope(|s| {
        s.spawn(|| {
            // Transactions begin and commit back to back until enough aborts raced them.
            let mut seq = 0;
            while landed.load(Ordering::Acquire) < 50 && seq < 200_000 {
                appended(client(&log, &txn(1, 0, seq, 1)));
                seq += 1;
                let _ = marker(&log, 1, 0, 0, eoslog::MarkerType::Commit);
            }
            stop.store(true, Ordering::Release);
        });
        let aborter = s.spawn(|| {
            let mut aborted = Vec::new();
            while !stop.load(Ordering::Acquire) {
                for o in log.open_transactions() {
                    if let Some(AppendOutcome::Appended(_)) = log
                        .abort_transaction(o.producer_id, o.first_offset)
                        .expect("abort")
                    {
                        aborted.push(o.first_offset.0);
                        landed.fetch_add(1, Ordering::Release);
                    }
                }
            }
            aborted
        });
        aborter.join().expect("aborter")
    });
    assert!(
        requested.len() >= 50,
        "only {} aborts raced the producer",
        requested.len()
    );
    let indexed: Vec<i64> = log
        .aborted_transactions()
        .iter()
        .map(|a| a.first_offset)
        .collect();
    assert_eq!(
        indexed, requested,
        "every abort landed on the transaction it named"
    );
}
