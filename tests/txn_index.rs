//! Invariant: every aborted transaction is indexed once, in the segment holding its ABORT marker,
//! with Kafka's 34-byte layout and LSO-at-abort; a read_committed fetch returns exactly the
//! aborted transactions overlapping the returned range; followers and recovery build the same
//! index. Scenarios 40, 41 and 3.3 of the reference, issue #4.

mod common;
use common::*;
use eoslog::{AbortedTransaction, AbortedTxn, AppendOrigin, Isolation, Offset, ProducerId};

fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

/// ULT.testTransactionIndexUpdated's shape: interleaved transactions; the LSO stored with each
/// abort is the first offset of the earliest other open transaction.
fn build(log: &eoslog::Log) {
    appended(client(log, &txn(1, 0, 0, 3))); // 0..2
    appended(client(log, &txn(2, 0, 0, 3))); // 3..5
    abort(log, 1, 0); // 6: pid2 open from 3
    appended(client(log, &txn(3, 0, 0, 2))); // 7..8
    commit(log, 3, 0); // 9
    abort(log, 2, 0); // 10: nobody else open
    appended(client(log, &plain(&["x"]))); // 11
}

#[test]
fn abort_entries_carry_lso_at_abort() {
    let t = TestLog::new();
    let log = t.open();
    build(&log);
    assert_eq!(
        log.aborted_transactions(),
        vec![entry(1, 0, 6, 3), entry(2, 3, 10, 11)]
    );
    // On disk: one 34-byte entry each, in the active segment's .txnindex.
    let idx = t.path().join("00000000000000000000.txnindex");
    let bytes = std::fs::read(&idx).expect("txnindex");
    assert_eq!(bytes.len(), 68);
    assert_eq!(&bytes[0..2], &[0, 0]);
    assert_eq!(&bytes[2..10], &1i64.to_be_bytes());
    assert_eq!(&bytes[18..26], &6i64.to_be_bytes());
    assert_eq!(&bytes[26..34], &3i64.to_be_bytes());
    // Commits are never indexed.
    assert!(log.aborted_transactions().iter().all(|e| e.producer_id != 3));
}

#[test]
fn replicated_log_builds_identical_index() {
    // ULT.testTransactionIndexUpdatedThroughReplication
    let t = TestLog::new();
    let leader = t.open();
    build(&leader);
    let bytes = leader
        .read(Offset(0), usize::MAX / 2, Isolation::Replica)
        .expect("read")
        .bytes()
        .expect("bytes");
    let f = TestLog::new();
    let follower = f.open();
    appended(
        follower
            .append(&bytes, AppendOrigin::Replication)
            .expect("replicate"),
    );
    assert_eq!(follower.aborted_transactions(), leader.aborted_transactions());
    assert_eq!(follower.first_unstable_offset(), leader.first_unstable_offset());
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
}

#[test]
fn aborted_transaction_spanning_segments() {
    // ULT.testAbortedTransactionSpanningMultipleSegments
    let t = TestLog::with_config(config(&[("segment.bytes", "400")]));
    let log = t.open();
    let mut seq = 0;
    while log.segments().len() < 3 {
        appended(client(&log, &txn(1, 0, seq, 1)));
        seq += 1;
    }
    let a = abort(&log, 1, 0);
    let segs = log.segments();
    assert!(segs.len() >= 3);
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert_eq!(
        f.aborted_transactions,
        Some(vec![AbortedTransaction {
            producer_id: ProducerId(1),
            first_offset: Offset(0)
        }])
    );
    // The entry lives in the marker's segment only.
    let marker_seg = segs
        .iter()
        .rev()
        .find(|s| s.base_offset <= a.first_offset)
        .expect("seg");
    let name = eoslog::file_name(marker_seg.base_offset.0, "txnindex");
    assert_eq!(
        std::fs::metadata(t.path().join(name)).expect("txnindex").len(),
        34
    );
    assert!(
        !t.path().join("00000000000000000000.txnindex").exists(),
        "created lazily"
    );
    // A fetch in a later segment still sees the transaction that began earlier.
    let last_seg = segs.last().expect("last").base_offset;
    let f = log
        .read(last_seg, 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    if !f.slices.is_empty() {
        assert_eq!(f.aborted_transactions.as_ref().map(Vec::len), Some(1));
    }
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), seq as usize);
}

#[test]
fn fetch_returns_only_overlapping_aborts() {
    let t = TestLog::new();
    let log = t.open();
    build(&log);
    // Only the batch at 11 lies beyond both aborts.
    let f = log
        .read(Offset(11), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert_eq!(f.aborted_transactions, Some(vec![]));
    // From 7: pid2's transaction (3..10) overlaps; pid1's (0..6) does not.
    let f = log
        .read(Offset(7), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert_eq!(
        f.aborted_transactions,
        Some(vec![AbortedTransaction {
            producer_id: ProducerId(2),
            first_offset: Offset(3)
        }])
    );
    // A small fetch from 0 returning one batch (0..2) sees only pid1.
    let f = log.read(Offset(0), 1, Isolation::ReadCommitted).expect("read");
    assert_eq!(
        f.aborted_transactions,
        Some(vec![AbortedTransaction {
            producer_id: ProducerId(1),
            first_offset: Offset(0)
        }])
    );
    assert_eq!(
        values(&log, Isolation::ReadCommitted),
        vec!["t3-s0", "t3-s1", "x"]
    );
}

/// Two producers' aborted transactions interleave so that the one that starts first ends
/// last: the index holds them in marker order, a fetch lists them by first offset (kafkajs
/// walks the list alongside the records and needs that order).
#[test]
fn fetch_lists_aborted_transactions_by_first_offset() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 3))); // 0..2
    abort(&log, 1, 0); // 3
    appended(client(&log, &txn(1, 0, 3, 3))); // 4..6, pid 1 again
    appended(client(&log, &txn(2, 0, 0, 3))); // 7..9
    abort(&log, 2, 0); // 10: ends before pid 1's second transaction, which started first
    abort(&log, 1, 0); // 11
    appended(client(&log, &plain(&["x"]))); // 12
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    let firsts: Vec<(i64, i64)> = f
        .aborted_transactions
        .expect("read_committed")
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset.0))
        .collect();
    assert_eq!(firsts, vec![(1, 0), (1, 4), (2, 7)]);
    assert_eq!(values(&log, Isolation::ReadCommitted), vec!["x"]);
}

#[test]
fn index_rebuilt_by_recovery_including_earlier_segment_starts() {
    // LST.testRecoverTransactionIndex: a crash loses the .txnindex; recovery rewrites it,
    // including a transaction whose data began in an earlier segment.
    let t = TestLog::with_config(config(&[("segment.bytes", "300")]));
    let expected;
    {
        let log = t.open();
        let mut seq = 0;
        appended(client(&log, &txn(2, 0, 0, 1)));
        while log.segments().len() < 3 {
            appended(client(&log, &txn(1, 0, seq, 1)));
            seq += 1;
        }
        abort(&log, 1, 0);
        abort(&log, 2, 0);
        expected = log.aborted_transactions();
        assert_eq!(expected.len(), 2);
        drop(log);
    }
    for name in files_with_suffix(&t.path(), ".txnindex") {
        std::fs::remove_file(t.path().join(name)).expect("rm");
    }
    // Force recovery of every segment.
    std::fs::remove_file(t.path().join(eoslog::CHECKPOINT_FILE)).expect("rm checkpoint");
    let log = t.open();
    assert_eq!(log.aborted_transactions(), expected);
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
}
