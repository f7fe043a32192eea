//! Invariant: a file the log derives from its segments (`.index`, `.timeindex`, `.txnindex`,
//! `.snapshot`) that is missing, short or inconsistent is never trusted: eoslog rebuilds what
//! it derives from that segment on, so no aborted record becomes visible to read_committed
//! and no retry is written twice, whatever an operator or a backup lost. A `.txnindex` lost
//! on its own is detected too (the checkpoint records how many entries each segment holds),
//! which Kafka cannot do. Issue #13, item 1; docs/FORMAT.md §5.

mod common;
use common::*;
use eoslog::{Isolation, Log};

/// Three segments, each with one aborted and one committed transaction, plus idempotent data;
/// closed cleanly. Returns the aborted list and the read_committed values.
fn build(t: &TestLog) -> (Vec<eoslog::AbortedTxn>, Vec<String>) {
    let log = t.open();
    let mut seq = [0i32; 3];
    for round in 0..3 {
        for (pid, kind) in [(1i64, "abort"), (2, "commit")] {
            appended(client(&log, &txn(pid, 0, seq[pid as usize], 2)));
            seq[pid as usize] += 2;
            if kind == "abort" {
                abort(&log, pid, 0);
            } else {
                commit(&log, pid, 0);
            }
        }
        appended(client(&log, &idem(9, 0, round, 1)));
        log.roll_segment().expect("roll");
    }
    let aborted = log.aborted_transactions();
    assert_eq!(aborted.len(), 3);
    let committed = values(&log, Isolation::ReadCommitted);
    assert!(committed.iter().all(|v| !v.starts_with("t1-")));
    log.close().expect("close");
    (aborted, committed)
}

fn remove(t: &TestLog, suffix: &str) -> usize {
    let names = files_with_suffix(&t.path(), suffix);
    for n in &names {
        std::fs::remove_file(t.path().join(n)).expect("rm");
    }
    names.len()
}

fn assert_intact(log: &Log, aborted: &[eoslog::AbortedTxn], committed: &[String]) {
    assert_eq!(log.aborted_transactions(), aborted, "transaction index rebuilt");
    assert_eq!(
        values(log, Isolation::ReadCommitted),
        committed,
        "no aborted record visible"
    );
    // Fetches segment by segment carry every aborted transaction between them.
    let mut carried = std::collections::BTreeSet::new();
    for seg in log.segments() {
        let fetch = log
            .read(seg.base_offset, usize::MAX / 2, Isolation::ReadCommitted)
            .expect("fetch");
        for a in fetch.aborted_transactions.expect("read_committed") {
            carried.insert((a.producer_id.0, a.first_offset.0));
        }
    }
    let all: std::collections::BTreeSet<_> =
        aborted.iter().map(|a| (a.producer_id, a.first_offset)).collect();
    assert_eq!(carried, all, "fetches carry every aborted transaction");
    log.verify(|_, _| {}).expect("verify passes after the rebuild");
}

#[test]
fn lost_offset_and_transaction_indexes_are_rebuilt_with_their_segments() {
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    assert!(remove(&t, ".index") >= 3);
    assert_eq!(remove(&t, ".txnindex"), 3);
    let log = t.open();
    assert_eq!(
        log.stats().recoveries,
        1,
        "segments without their indexes are recovered"
    );
    assert_intact(&log, &aborted, &committed);
    // A retry of the last idempotent batch is still a duplicate.
    assert!(matches!(
        client(&log, &idem(9, 0, 2, 1)),
        eoslog::AppendOutcome::Duplicate(_)
    ));
    log.close().expect("close");
    // The files are back: the next open needs no recovery.
    assert_eq!(files_with_suffix(&t.path(), ".txnindex").len(), 3);
    let log = t.open();
    assert_eq!(log.stats().recoveries, 0);
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn a_transaction_index_lost_on_its_own_is_detected() {
    // Kafka cannot tell a lost .txnindex from a segment without aborts; eoslog's checkpoint
    // records each segment's count.
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    let names = files_with_suffix(&t.path(), ".txnindex");
    std::fs::remove_file(t.path().join(&names[1])).expect("rm the middle segment's txnindex");
    let log = t.open();
    assert_eq!(log.stats().recoveries, 1);
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn a_short_or_emptied_transaction_index_is_recovered() {
    for cut in [1u64, 33, 34] {
        let t = TestLog::new();
        let (aborted, committed) = build(&t);
        let name = &files_with_suffix(&t.path(), ".txnindex")[0];
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(t.path().join(name))
            .expect("open");
        let len = f.metadata().expect("meta").len();
        f.set_len(len - cut).expect("shorten");
        drop(f);
        let log = t.open();
        assert_eq!(log.stats().recoveries, 1, "cut {cut}");
        assert_intact(&log, &aborted, &committed);
    }
}

#[test]
fn a_lost_time_index_is_rebuilt_and_offsets_by_time_still_answer() {
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    let before = {
        let log = t.open();
        let r = log
            .offset_for_timestamp(T0, Isolation::ReadUncommitted)
            .expect("by time");
        log.close().expect("close");
        r
    };
    assert!(before.is_some());
    assert_eq!(remove(&t, ".timeindex"), 4);
    let log = t.open();
    assert_eq!(
        log.offset_for_timestamp(T0, Isolation::ReadUncommitted)
            .expect("by time"),
        before
    );
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn lost_snapshots_are_rebuilt_by_replay_and_retries_stay_duplicates() {
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    assert!(remove(&t, ".snapshot") > 0);
    let log = t.open();
    for seq in 0..3 {
        assert!(
            matches!(
                client(&log, &idem(9, 0, seq, 1)),
                eoslog::AppendOutcome::Duplicate(_)
            ),
            "seq {seq}"
        );
    }
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn a_lost_checkpoint_recovers_every_segment() {
    // Without the checkpoint nothing says which derived files can be trusted, even after a
    // clean shutdown: the transaction indexes are lost too here, and must come back.
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    std::fs::remove_file(t.path().join(eoslog::CHECKPOINT_FILE)).expect("rm checkpoint");
    assert_eq!(remove(&t, ".txnindex"), 3);
    assert!(t.path().join(eoslog::CLEAN_SHUTDOWN_FILE).exists());
    let log = t.open();
    assert_eq!(log.stats().recoveries, 1);
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn an_index_damaged_while_the_log_is_open_is_reported_by_verify() {
    let t = TestLog::new();
    build(&t);
    let log = t.open();
    log.verify(|_, _| {}).expect("intact");
    let name = files_with_suffix(&t.path(), ".txnindex").remove(0);
    std::fs::remove_file(t.path().join(&name)).expect("rm");
    let err = log
        .verify(|_, _| {})
        .expect_err("a lost transaction index is reported");
    assert!(err.to_string().contains(&name), "{err}");
    drop(log);
    // The next open (unclean: the log was dropped) rebuilds it.
    let log = t.open();
    log.verify(|_, _| {}).expect("rebuilt");
}
