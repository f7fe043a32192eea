//! Invariants: an append split into a buffered write and `Log::wait_durable` is acknowledged
//! only once an fsync covers it, while one producer keeps several appends in flight and the
//! waiters share fsyncs; a retry answered as a duplicate under `SyncEachAppend` is durable
//! too, even when the original append has not been fsynced yet; a wait never outlives the
//! log end offset; the `durable` high watermark has reached what a wait returns, whichever
//! fsync made it durable; a truncation during a group-commit fsync never lets the log call
//! the records appended after it durable, and a `SyncEachAppend` append it overtakes (between
//! placing the records and their fsync) fails with `NOT_LEADER_OR_FOLLOWER` instead of being
//! acknowledged, whether it removed the records, restarted the log past them or spared them; a
//! group-commit leader whose fsync panics poisons the log and wakes its waiters instead of
//! leaving them waiting for it. Issue #6.

mod common;
use common::*;
use std::collections::VecDeque;
use std::sync::Arc;

use eoslog::{
    AppendError, AppendOptions, AppendOrigin, AppendOutcome, Durability, Isolation, KafkaError, Log, Offset,
    StorageError,
};

fn with(durability: Durability) -> AppendOptions {
    AppendOptions {
        durability: Some(durability),
        ..AppendOptions::new(AppendOrigin::Client)
    }
}

#[test]
fn pipelined_appends_are_acknowledged_only_once_durable() {
    const THREADS: i64 = 8;
    const BATCHES: i32 = 40;
    const IN_FLIGHT: usize = 5;
    let t = TestLog::new();
    let gate = Gate::new(GateOn::Sync);
    let log = Arc::new(gate.open(&t, is_segment));
    // The first group-commit fsync blocks until every producer has filled its pipeline and
    // waits: the next fsync then covers all of them, so sharing is certain, not likely.
    gate.arm();
    let threads: Vec<_> = (0..THREADS)
        .map(|pid| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut pending = VecDeque::new();
                let ack = |end: Offset| {
                    let durable = log.wait_durable(end).expect("wait_durable");
                    assert!(durable >= end, "returned {durable:?} below {end:?}");
                    assert!(log.durable_offset() >= end, "acknowledged only once durable");
                };
                for s in 0..BATCHES {
                    let o = log
                        .append_with(&idem(pid, 0, s, 1), &with(Durability::Buffered))
                        .expect("append");
                    pending.push_back(appended(o).last_offset.next());
                    if pending.len() == IN_FLIGHT {
                        ack(pending.pop_front().expect("pending"));
                    }
                }
                pending.into_iter().for_each(ack);
            })
        })
        .collect();
    gate.wait_entered();
    // The leader's thread is in the gate; every producer appended IN_FLIGHT batches, and
    // every other one waits for the leader's fsync.
    wait_until("every other producer waits on the blocked fsync", || {
        log.stats().durable_waiters == (THREADS - 1) as u64
    });
    let before = log.stats();
    assert_eq!(before.appends, THREADS as u64 * IN_FLIGHT as u64);
    gate.release();
    for th in threads {
        th.join().expect("join");
    }
    let appends = (THREADS * i64::from(BATCHES)) as u64;
    let stats = log.stats();
    assert_eq!(stats.appends, appends);
    assert_eq!(log.durable_offset(), Offset(appends as i64));
    // The fsync after the gated one covered the whole pipelines it had waited for: at
    // least (THREADS - 1) * IN_FLIGHT appends shared at most two fsyncs.
    assert!(
        stats.fsyncs <= appends - ((THREADS - 1) as u64 * IN_FLIGHT as u64) + 2,
        "fsyncs {} for {appends} appends",
        stats.fsyncs
    );
    assert!(stats.fsyncs < appends);
    eprintln!(
        "{appends} pipelined appends from {THREADS} threads took {} fsyncs",
        stats.fsyncs
    );
    // Each producer's records are in its sequence order.
    let got = values(&log, Isolation::ReadUncommitted);
    for pid in 0..THREADS {
        let mine: Vec<&String> = got
            .iter()
            .filter(|v| v.starts_with(&format!("p{pid}-")))
            .collect();
        let want: Vec<String> = (0..BATCHES).map(|s| format!("p{pid}-s{s}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "producer {pid}");
    }
}

#[test]
fn duplicate_of_an_unsynced_append_is_answered_once_durable() {
    let t = TestLog::new();
    let log = t.open();
    let batch = idem(7, 0, 0, 3);
    let first = appended(
        log.append_with(&batch, &with(Durability::Buffered))
            .expect("append"),
    );
    assert_eq!(
        log.durable_offset(),
        Offset(0),
        "a buffered append is not fsynced"
    );
    let fsyncs = log.stats().fsyncs;
    match log
        .append_with(&batch, &with(Durability::SyncEachAppend))
        .expect("retry")
    {
        AppendOutcome::Duplicate(info) => assert_eq!(info, first),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert!(
        log.durable_offset() > first.last_offset,
        "a durable answer to a retry covers the original"
    );
    assert!(log.stats().fsyncs > fsyncs);
    // A buffered retry waits for nothing.
    let batch = idem(7, 0, 3, 1);
    let second = appended(
        log.append_with(&batch, &with(Durability::Buffered))
            .expect("append"),
    );
    assert!(matches!(
        log.append_with(&batch, &with(Durability::Buffered))
            .expect("retry"),
        AppendOutcome::Duplicate(_)
    ));
    assert!(log.durable_offset() <= second.last_offset);
}

#[test]
fn a_wait_stops_at_the_log_end_and_costs_nothing_when_durable() {
    let t = TestLog::with_config(config(&[("eoslog.high.watermark", "durable")]));
    let log = t.open();
    for s in 0..4 {
        let _ = appended(
            log.append_with(&idem(1, 0, s, 1), &with(Durability::Buffered))
                .expect("append"),
        );
    }
    assert_eq!(
        log.high_watermark(),
        Offset(0),
        "the durable HW waits for an fsync"
    );
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
    // Past the log end: returns at the log end rather than waiting for appends to come.
    assert_eq!(log.wait_durable(Offset(1_000)).expect("wait"), Offset(4));
    assert_eq!(log.high_watermark(), Offset(4));
    assert_eq!(values(&log, Isolation::ReadCommitted).len(), 4);
    let fsyncs = log.stats().fsyncs;
    assert_eq!(log.wait_durable(Offset(2)).expect("wait"), Offset(4));
    assert_eq!(log.wait_durable(Offset(4)).expect("wait"), Offset(4));
    assert_eq!(log.stats().fsyncs, fsyncs, "no fsync for data already durable");
}

#[test]
fn durable_high_watermark_reaches_what_a_wait_returns() {
    let t = TestLog::with_config(config(&[("eoslog.high.watermark", "durable")]));
    let log = t.open();
    let info = appended(
        log.append_with(&idem(1, 0, 0, 3), &with(Durability::Buffered))
            .expect("append"),
    );
    // A roll fsyncs the data without a group commit: the wait finds it durable at once.
    log.roll_segment().expect("roll");
    assert!(log.durable_offset() > info.last_offset);
    assert_eq!(
        log.wait_durable(info.last_offset.next()).expect("wait"),
        Offset(3)
    );
    assert_eq!(
        log.high_watermark(),
        Offset(3),
        "HW follows the durable offset a wait saw"
    );
    assert_eq!(values(&log, Isolation::ReadCommitted).len(), 3);
}

#[test]
fn truncation_during_a_group_commit_fsync_does_not_make_later_appends_durable() {
    let t = TestLog::new();
    let gate = Gate::new(GateOn::Sync);
    let log = gate.open(&t, is_segment);
    let buffered = with(Durability::Buffered);
    for s in 0..10 {
        let _ = appended(log.append_with(&idem(1, 0, s, 1), &buffered).expect("append"));
    }
    assert_eq!(log.durable_offset(), Offset(0));
    gate.arm();
    std::thread::scope(|scope| {
        // The group-commit leader reads the log end (10), then blocks inside its fsync.
        let waiter = scope.spawn(|| log.wait_durable(Offset(10)).expect("wait"));
        gate.wait_entered();
        // Meanwhile a leader change truncates to 5, and a new producer appends 5..10 again.
        log.truncate_to(Offset(5)).expect("truncate");
        for s in 0..5 {
            let _ = appended(log.append_with(&idem(2, 0, s, 1), &buffered).expect("append"));
        }
        assert_eq!(log.log_end_offset(), Offset(10));
        gate.release();
        let got = waiter.join().expect("join");
        assert!(
            got < Offset(10),
            "the wait's records 5..10 were truncated, yet it returned {got:?}"
        );
    });
    assert!(
        log.durable_offset() <= Offset(5),
        "records appended after the truncation are not fsynced, yet durable is {:?}",
        log.durable_offset()
    );
    // A new wait fsyncs them.
    assert_eq!(log.wait_durable(Offset(10)).expect("wait"), Offset(10));
}

/// Appends producer 1's records 2..=4 with `SyncEachAppend` on a log holding 0..=1, runs
/// `truncate` while that append's fsync is blocked, and returns the append's result.
fn sync_append_across_a_truncation(
    t: &TestLog,
    truncate: impl FnOnce(&Log),
) -> (Log, Result<AppendOutcome, AppendError>) {
    let gate = Gate::new(GateOn::Sync);
    let log = gate.open(t, is_segment);
    let _ = appended(
        log.append(&idem(1, 0, 0, 2), AppendOrigin::Client)
            .expect("append"),
    );
    gate.arm();
    let result = std::thread::scope(|scope| {
        // The append writes 2..=4, then its fsync blocks in the gate.
        let sync = scope.spawn(|| log.append_with(&idem(1, 0, 2, 3), &with(Durability::SyncEachAppend)));
        gate.wait_entered();
        truncate(&log);
        gate.release();
        sync.join().expect("join")
    });
    (log, result)
}

fn assert_not_acknowledged(result: Result<AppendOutcome, AppendError>) {
    match result {
        Err(
            e @ AppendError::TruncatedBeforeDurable {
                first_offset,
                last_offset,
            },
        ) => {
            assert_eq!((first_offset, last_offset), (Offset(2), Offset(4)));
            assert_eq!(e.kafka_error(), KafkaError::NotLeaderOrFollower);
            assert_eq!(e.kafka_error().code(), 6);
        }
        other => panic!("an append a truncation overtook must not be acknowledged: {other:?}"),
    }
}

#[test]
fn sync_append_truncated_before_its_fsync_fails_with_not_leader() {
    let t = TestLog::new();
    // A leader change truncates the records before the fsync completes.
    let (log, result) =
        sync_append_across_a_truncation(&t, |log| log.truncate_to(Offset(2)).expect("truncate"));
    assert_not_acknowledged(result);
    assert_eq!(log.log_end_offset(), Offset(2));
    assert_eq!(log.stats().rejections, vec![("NOT_LEADER_OR_FOLLOWER", 1)]);
    // The records below the truncation remain.
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 2);
}

#[test]
fn sync_append_fails_when_the_log_restarts_past_it_before_its_fsync() {
    let t = TestLog::new();
    // The log restarts at 100: durable jumps past the append's offsets, which hold nothing.
    let (log, result) = sync_append_across_a_truncation(&t, |log| {
        log.truncate_fully_and_start_at(Offset(100))
            .expect("truncate fully");
    });
    assert_not_acknowledged(result);
    assert_eq!(log.log_start_offset(), Offset(100));
    assert!(values(&log, Isolation::ReadUncommitted).is_empty());
}

#[test]
fn sync_append_fails_when_a_truncation_above_it_runs_before_its_fsync_and_its_retry_is_a_duplicate() {
    let t = TestLog::new();
    // Another producer's records 5..=9 are appended, then truncated away; 2..=4 survive. The
    // append is still not acknowledged (Kafka fails every request pending at a leader change),
    // and the producer's retry finds its records and gets their offsets.
    let (log, result) = sync_append_across_a_truncation(&t, |log| {
        let _ = appended(
            log.append_with(&idem(2, 0, 0, 5), &with(Durability::Buffered))
                .expect("append"),
        );
        log.truncate_to(Offset(5)).expect("truncate");
    });
    assert_not_acknowledged(result);
    assert_eq!(log.log_end_offset(), Offset(5));
    match log
        .append_with(&idem(1, 0, 2, 3), &with(Durability::SyncEachAppend))
        .expect("retry")
    {
        AppendOutcome::Duplicate(info) => {
            assert_eq!((info.first_offset, info.last_offset), (Offset(2), Offset(4)));
        }
        other => panic!("the retry of surviving records is a duplicate: {other:?}"),
    }
    assert!(log.durable_offset() >= Offset(5));
}

#[test]
fn a_panic_in_the_leaders_fsync_poisons_the_log_and_wakes_its_waiters() {
    let t = TestLog::new();
    let gate = Gate::panicking(GateOn::Sync);
    let log = Arc::new(gate.open(&t, is_segment));
    for s in 0..4 {
        let _ = appended(
            log.append_with(&idem(1, 0, s, 1), &with(Durability::Buffered))
                .expect("append"),
        );
    }
    gate.arm();
    let leader = std::thread::spawn({
        let log = log.clone();
        move || log.wait_durable(Offset(2))
    });
    gate.wait_entered();
    // A second waiter queues behind the leader, which then panics inside its fsync. The
    // waiter is a detached thread, so that a waiter left hanging fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn({
        let log = log.clone();
        move || tx.send(log.wait_durable(Offset(4))).expect("send")
    });
    wait_until("the second waiter queues behind the leader", || {
        log.stats().durable_waiters == 1
    });
    gate.release();
    assert!(
        leader.join().is_err(),
        "the injected panic reaches the leader's caller"
    );
    let waited = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the waiter is woken, not left waiting for a leader that is gone");
    assert!(matches!(waited, Err(StorageError::Poisoned)), "{waited:?}");
    waiter.join().expect("waiter");
    assert!(matches!(log.wait_durable(Offset(4)), Err(StorageError::Poisoned)));
    assert!(matches!(
        log.append(&idem(1, 0, 4, 1), AppendOrigin::Client),
        Err(AppendError::Storage(StorageError::Poisoned))
    ));
    drop(Arc::try_unwrap(log).expect("the waiters are done"));
    // A reopen runs recovery and the log is writable again.
    let log = t.open();
    let end = log.log_end_offset();
    let info = appended(
        log.append_with(&idem(1, 0, end.0 as i32, 1), &with(Durability::SyncEachAppend))
            .expect("append after reopen"),
    );
    assert_eq!(info.first_offset, end);
}
