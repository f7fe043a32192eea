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

#[test]
fn an_altered_but_plausible_transaction_index_is_detected_by_its_checksum() {
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    // Same length, same order: only the producer id of the first entry differs. Kafka would
    // use it; eoslog's checkpoint recorded the entries' checksum.
    let path = t.path().join(eoslog::file_name(0, "txnindex"));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[9] ^= 0x10;
    std::fs::write(&path, bytes).expect("write");
    let log = t.open();
    assert_eq!(log.stats().recoveries, 1);
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn an_altered_but_plausible_offset_index_is_never_used() {
    // One record per batch, all the same size; an index entry every other batch.
    let t = TestLog::with_config(config(&[("index.interval.bytes", "100")]));
    let log = t.open();
    for i in 0..40 {
        appended(client(&log, &plain(&[&format!("v{i:03}")])));
    }
    let size = log.segments()[0].size / 40;
    log.roll_segment().expect("roll");
    log.close().expect("close");
    // Move an entry's position one batch later: still ordered and inside the file, but it
    // now names a batch that starts after the entry's offset.
    let path = t.path().join(eoslog::file_name(0, "index"));
    let mut bytes = std::fs::read(&path).expect("read index");
    assert!(bytes.len() >= 3 * 8);
    let at = 8; // the second entry
    let rel = i64::from(i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4")));
    let pos = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
    let next_pos = u32::from_be_bytes(bytes[at + 12..at + 16].try_into().expect("4"));
    let moved = pos + size as u32;
    assert!(moved < next_pos, "the moved entry stays below the next one");
    bytes[at + 4..at + 8].copy_from_slice(&moved.to_be_bytes());
    std::fs::write(&path, &bytes).expect("write index");
    let check = |log: &Log| {
        let (records, _) = log
            .read_records(eoslog::Offset(rel), 1 << 10, Isolation::ReadUncommitted)
            .expect("read");
        assert_eq!(
            records[0].offset.0, rel,
            "the read starts at the offset asked for"
        );
        assert_eq!(records[0].value.as_deref(), Some(format!("v{rel:03}").as_bytes()));
    };
    // The checkpoint's checksum rejects the file at its first load: it is rebuilt.
    let log = t.open();
    check(&log);
    log.verify(|_, _| {}).expect("rebuilt");
    log.close().expect("close");
    // Without a recorded checksum (a version-0 checkpoint, as earlier eoslog versions wrote),
    // the read checks the header the entry leads to, and walks the segment instead.
    std::fs::write(&path, &bytes).expect("write index");
    let end = 41;
    std::fs::write(
        t.path().join(eoslog::CHECKPOINT_FILE),
        format!("eoslog-checkpoint 0\nrecovery_point {end}\nlog_start_offset 0\n"),
    )
    .expect("write checkpoint");
    let log = t.open();
    check(&log);
}

#[test]
fn recovery_started_by_a_lost_index_reports_damage_below_the_recovery_point_and_cuts_nothing() {
    // Rebuilding derived files never discards data known durable: a damaged batch below the
    // recovery point is reported, as it would be without the lost index.
    let t = TestLog::new();
    let (aborted, committed) = build(&t);
    let first_log = t.path().join(eoslog::file_name(0, "log"));
    let pristine = std::fs::read(&first_log).expect("read");
    let mut damaged = pristine.clone();
    damaged[40] ^= 0x20; // inside the first batch's CRC-covered bytes
    std::fs::write(&first_log, &damaged).expect("write");
    assert!(remove(&t, ".index") > 0);
    let before: Vec<u64> = files_with_suffix(&t.path(), ".log")
        .iter()
        .map(|n| std::fs::metadata(t.path().join(n)).expect("meta").len())
        .collect();
    let err = eoslog::Log::open_with(
        t.path(),
        t.config.clone(),
        eoslog::LogOptions {
            fs: std::sync::Arc::new(eoslog::StdFileSystem),
            clock: std::sync::Arc::new(t.clock.clone()),
        },
    )
    .expect_err("damage below the recovery point is reported");
    assert!(err.to_string().contains("00000000000000000000.log"), "{err}");
    let after: Vec<u64> = files_with_suffix(&t.path(), ".log")
        .iter()
        .map(|n| std::fs::metadata(t.path().join(n)).expect("meta").len())
        .collect();
    assert_eq!(after, before, "no segment was cut or deleted");
    // Once the operator restores the batch, everything is there.
    std::fs::write(&first_log, &pristine).expect("restore");
    let log = t.open();
    assert_intact(&log, &aborted, &committed);
}

#[test]
fn an_altered_index_is_not_trusted_by_recovery_resuming_in_its_segment() {
    // Closed cleanly (the checkpoint recorded the indexes' checksums), then the clean marker
    // lost (a crash before it was durable) and an index entry altered: recovery resumes in
    // that segment, finds the checksum wrong, and scans the whole segment instead of keeping
    // the altered entries.
    let t = TestLog::with_config(config(&[("index.interval.bytes", "100")]));
    let log = t.open();
    for i in 0..40 {
        appended(client(&log, &plain(&[&format!("v{i:03}")])));
    }
    log.close().expect("close");
    std::fs::remove_file(t.path().join(eoslog::CLEAN_SHUTDOWN_FILE)).expect("unclean");
    let path = t.path().join(eoslog::file_name(0, "index"));
    let mut bytes = std::fs::read(&path).expect("read index");
    let at = 8;
    let pos = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
    bytes[at + 4..at + 8].copy_from_slice(&(pos + 1).to_be_bytes());
    std::fs::write(&path, &bytes).expect("write index");
    let log = t.open();
    assert_eq!(log.stats().recoveries, 1);
    for from in [0, 2, 5, 17, 39] {
        let (records, _) = log
            .read_records(eoslog::Offset(from), 1 << 10, Isolation::ReadUncommitted)
            .expect("read");
        assert_eq!(records[0].offset.0, from);
    }
    log.verify(|_, _| {}).expect("verify");
}

#[test]
fn recovery_never_resumes_over_indexes_that_changed_since_the_checkpoint() {
    // Found by the SIGKILL test: a close records the active segment's trimmed indexes; the
    // next open extends them (the segment is active again) and is killed before it writes its
    // own checkpoint. Recovery must not resume in that segment with producer state loaded up to
    // the recovery point while scanning the segment from its start (it did: the transaction
    // open across the segment boundary was forgotten, and its data became visible).
    let t = TestLog::with_config(config(&[("index.interval.bytes", "64")]));
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 2))); // 0..1, open across the boundary
    log.roll_segment().expect("roll");
    for seq in 0..20 {
        appended(client(&log, &idem(2, 0, seq, 1)));
    }
    appended(client(&log, &txn(1, 0, 2, 1)));
    log.close().expect("close");
    let checkpoint = std::fs::read(t.path().join(eoslog::CHECKPOINT_FILE)).expect("checkpoint");
    drop(t.open()); // made the last segment active again, then "killed"
    std::fs::write(t.path().join(eoslog::CHECKPOINT_FILE), &checkpoint).expect("the close's checkpoint");
    let _ = std::fs::remove_file(t.path().join(eoslog::CLEAN_SHUTDOWN_FILE));
    let log = t.open();
    let open = log.open_transactions();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].first_offset.0, 0,
        "the transaction still begins in the first segment"
    );
    abort(&log, 1, 0);
    assert!(
        values(&log, Isolation::ReadCommitted)
            .iter()
            .all(|v| !v.starts_with("t1-")),
        "no aborted record visible"
    );
    log.verify(|_, _| {}).expect("verify");
}
