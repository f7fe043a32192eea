//! Invariant: a clean keeps the latest committed record of every key at its original offset
//! and removes everything else it may — superseded records, aborted data, tombstones and
//! markers past their delete horizon — but never a marker whose transaction still has data,
//! never anything at or above the last stable offset, and never the last batch of a producer
//! the log tracks, so a retry of it is still a duplicate after producer state is rebuilt
//! from the log. Every batch written keeps valid Kafka bytes. (Kafka's `LogCleanerTest`.)

mod common;
use common::*;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eoslog::{
    AppendOutcome, BatchBuilder, CleanerOptions, Isolation, Log, NewRecord, Offset, ProducerEpoch,
    ProducerId, RecordBatch, Sequence,
};

fn compacted(extra: &[(&str, &str)]) -> TestLog {
    let mut pairs = vec![
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("delete.retention.ms", "0"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    pairs.extend_from_slice(extra);
    TestLog::with_config(config(&pairs))
}

/// A batch of `(key, value)` records (`None` value: a tombstone).
fn kv(records: &[(&str, Option<&str>)]) -> Vec<u8> {
    kv_with(BatchBuilder::new(), records)
}

fn kv_with(builder: BatchBuilder, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .map(|(k, v)| NewRecord {
            timestamp: T0,
            key: Some(k.as_bytes()),
            value: v.map(str::as_bytes),
            headers: Vec::new(),
        })
        .collect();
    builder.build(&recs).expect("build")
}

fn txn_kv(pid: i64, seq: i32, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    kv_with(
        BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), Sequence(seq)),
        records,
    )
}

/// Every record visible with the isolation: (offset, key, value).
fn records(log: &Log, isolation: Isolation) -> Vec<(i64, String, Option<String>)> {
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, isolation)
        .expect("read");
    recs.into_iter()
        .map(|r| {
            let s = |b: Vec<u8>| String::from_utf8(b).expect("utf8");
            (r.offset.0, r.key.map(s).unwrap_or_default(), r.value.map(s))
        })
        .collect()
}

/// The latest value per key a read_committed consumer rebuilds.
fn latest(log: &Log) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (_, k, v) in records(log, Isolation::ReadCommitted) {
        match v {
            Some(v) => m.insert(k, v),
            None => m.remove(&k),
        };
    }
    m
}

/// Every batch in the log, parsed and CRC-checked: (base offset, last offset, records,
/// control, producer id).
fn batches(log: &Log) -> Vec<(i64, i64, i32, bool, i64)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    loop {
        let r = log
            .read(from, usize::MAX / 2, Isolation::ReadUncommitted)
            .expect("read");
        if r.slices.is_empty() {
            return out;
        }
        for slice in &r.slices {
            let bytes = slice.read().expect("bytes");
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let (b, tail) = RecordBatch::parse(rest).expect("batch");
                b.validate_crc().expect("crc");
                out.push((
                    b.base_offset(),
                    b.last_offset(),
                    b.records_count(),
                    b.is_control(),
                    b.producer_id().0,
                ));
                from = off(b.next_offset());
                rest = tail;
            }
        }
    }
}

fn clean(log: &Log) -> eoslog::CleanReport {
    log.clean(&CleanerOptions::default(), true)
        .expect("clean")
        .expect("something to clean")
}

/// Rolls so that everything written so far is cleanable (the active segment never is).
fn seal(log: &Log) {
    log.roll_segment().expect("roll");
}

#[test]
fn keeps_the_latest_value_of_each_key_at_its_offset() {
    let t = compacted(&[]);
    let log = t.open();
    for round in 0..20 {
        for key in ["a", "b", "c"] {
            let v = format!("{key}{round}");
            appended(client(&log, &kv(&[(key, Some(&v))])));
        }
    }
    seal(&log);
    let before = latest(&log);
    let report = clean(&log);
    assert_eq!(report.records_kept, 3);
    assert_eq!(latest(&log), before);
    let offsets: Vec<i64> = records(&log, Isolation::ReadCommitted)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(offsets, vec![57, 58, 59], "original offsets");
    assert_eq!(log.log_end_offset(), off(60));
    // A reopen reads the cleaned segments back the same.
    drop(log);
    let log = t.open();
    assert_eq!(latest(&log), before);
}

#[test]
fn unchanged_batches_are_kept_byte_for_byte() {
    let t = compacted(&[]);
    let log = t.open();
    appended(client(&log, &kv(&[("x", Some("1")), ("y", Some("1"))])));
    let untouched = kv(&[("z", Some("1"))]);
    appended(client(&log, &untouched));
    appended(client(&log, &kv(&[("x", Some("2"))])));
    seal(&log);
    clean(&log);
    let r = log
        .read(off(2), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    let bytes = r.slices[0].read().expect("bytes");
    let (first, _) = RecordBatch::parse(&bytes).expect("batch");
    assert_eq!(first.base_offset(), 2);
    assert_eq!(
        &first.as_bytes()[12..],
        &untouched[12..],
        "same bytes after the base offset"
    );
    // The rebuilt batch lost `x` but kept its offsets: base 0, last offset 1.
    assert_eq!(batches(&log)[0], (0, 1, 1, false, -1));
}

/// Cleans until nothing changes: at most `n` cleans, each after a roll of fresh data so
/// that the clean is due.
fn clean_rounds(log: &Log, n: usize) {
    for i in 0..n {
        appended(client(log, &kv(&[("filler", Some(&format!("{i}")))])));
        seal(log);
        clean(log);
    }
}

/// Expires every producer (`producer.id.expiration.ms` is 1000 in these tests).
fn expire_producers(t: &TestLog, log: &Log) {
    t.clock.advance(2_000);
    log.run_maintenance().expect("maintenance");
    assert!(log.producers().is_empty());
}

#[test]
fn aborted_transaction_data_is_removed_and_its_marker_kept_until_no_data_remains() {
    // Kafka: LogCleanerTest.testAbortMarkerRemoval
    let t = compacted(&[("producer.id.expiration.ms", "1000")]);
    let log = t.open();
    appended(client(&log, &txn_kv(1, 0, &[("k", Some("aborted"))])));
    let abort_at = abort(&log, 1, 0).first_offset.0;
    appended(client(&log, &kv(&[("k", Some("plain"))])));
    seal(&log);
    assert_eq!(latest(&log)["k"], "plain");
    clean(&log);
    let all = batches(&log);
    assert_eq!(
        all[0],
        (0, 0, 0, false, 1),
        "the producer's last batch stays, emptied: {all:?}"
    );
    assert!(
        all.iter().any(|b| b.3 && b.0 == abort_at && b.2 == 1),
        "the marker stays while its data does"
    );
    assert_eq!(
        records(&log, Isolation::ReadUncommitted).len(),
        1,
        "not even read_uncommitted sees aborted data"
    );
    // Once the producer expires its empty batch goes; the marker then starts its horizon
    // and goes with the clean after it.
    expire_producers(&t, &log);
    clean_rounds(&log, 1);
    let all = batches(&log);
    assert!(!all.iter().any(|b| b.4 == 1 && !b.3), "data batch gone: {all:?}");
    assert!(
        all.iter().any(|b| b.3 && b.0 == abort_at),
        "marker kept by the clean that removed its data"
    );
    clean_rounds(&log, 2);
    let all = batches(&log);
    assert!(!all.iter().any(|b| b.4 == 1), "marker removed: {all:?}");
    assert_eq!(latest(&log)["k"], "plain");
}

#[test]
fn commit_marker_removed_only_after_its_data_is_gone_and_the_horizon_passed() {
    // Kafka: LogCleanerTest.testCommitMarkerRemoval
    let t = compacted(&[
        ("delete.retention.ms", "10000"),
        ("producer.id.expiration.ms", "1000"),
    ]);
    let log = t.open();
    appended(client(&log, &txn_kv(1, 0, &[("k", Some("committed"))])));
    let commit_at = commit(&log, 1, 0).first_offset.0;
    seal(&log);
    clean(&log);
    assert!(
        batches(&log).iter().any(|b| b.3 && b.0 == commit_at && b.2 == 1),
        "kept: its data remains"
    );
    // The data is superseded and the producer expires: the data goes, then the marker starts
    // its horizon, and goes once the horizon passed.
    appended(client(&log, &kv(&[("k", Some("newer"))])));
    expire_producers(&t, &log);
    clean_rounds(&log, 2);
    let all = batches(&log);
    assert!(!all.iter().any(|b| b.4 == 1 && !b.3), "data gone: {all:?}");
    assert!(
        all.iter().any(|b| b.3 && b.0 == commit_at && b.2 == 1),
        "within the horizon the marker stays: {all:?}"
    );
    t.clock.advance(10_001);
    clean_rounds(&log, 1);
    let all = batches(&log);
    assert!(!all.iter().any(|b| b.4 == 1), "marker removed: {all:?}");
    assert_eq!(latest(&log)["k"], "newer");
}

#[test]
fn retains_each_producers_last_sequence_and_duplicate_detection() {
    // Kafka: LogCleanerTest.testLogCleanerRetainsProducerLastSequence
    let t = compacted(&[]);
    let log = t.open();
    let idem_kv = |pid: i64, seq: i32, recs: &[(&str, Option<&str>)]| {
        kv_with(
            BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq)),
            recs,
        )
    };
    appended(client(&log, &idem_kv(1, 0, &[("1", Some("a"))])));
    appended(client(&log, &idem_kv(2, 0, &[("2", Some("b"))])));
    let last2 = idem_kv(2, 1, &[("2", Some("c"))]);
    let last2_at = appended(client(&log, &last2)).first_offset;
    appended(client(
        &log,
        &idem_kv(3, 0, &[("1", Some("d")), ("2", Some("e"))]),
    ));
    // Everything producers 1 and 2 wrote is superseded by producer 3.
    seal(&log);
    clean(&log);
    assert_eq!(
        latest(&log),
        BTreeMap::from([("1".into(), "d".into()), ("2".into(), "e".into())])
    );
    let all = batches(&log);
    assert!(
        all.contains(&(0, 0, 0, false, 1)),
        "producer 1's last batch kept empty: {all:?}"
    );
    assert!(
        all.contains(&(2, 2, 0, false, 2)),
        "producer 2's last batch kept empty: {all:?}"
    );
    // Rebuild producer state from the log alone: remove every snapshot and reopen unclean.
    drop(log);
    for name in files_with_suffix(&t.path(), ".snapshot") {
        std::fs::remove_file(t.path().join(name)).expect("remove snapshot");
    }
    std::fs::remove_file(t.path().join(eoslog::CHECKPOINT_FILE)).ok();
    let log = t.open();
    let seqs: BTreeMap<i64, i32> = log
        .producers()
        .iter()
        .map(|p| (p.producer_id.0, p.last_sequence.0))
        .collect();
    assert_eq!(seqs, BTreeMap::from([(1, 0), (2, 1), (3, 1)]));
    match client(&log, &last2) {
        AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset, last2_at),
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

#[test]
fn nothing_at_or_above_the_last_stable_offset_is_cleaned() {
    // KAFKA-13194: an open transaction's data, and everything after it, stays as written.
    let t = compacted(&[]);
    let log = t.open();
    appended(client(&log, &kv(&[("k", Some("1"))])));
    appended(client(&log, &kv(&[("k", Some("2"))])));
    seal(&log);
    appended(client(&log, &txn_kv(7, 0, &[("k", Some("open"))])));
    seal(&log);
    appended(client(&log, &kv(&[("k", Some("3"))])));
    seal(&log);
    let info = log.cleanability().expect("cleanability");
    assert_eq!(info.first_uncleanable_offset, off(2), "the LSO bounds the clean");
    clean(&log);
    let uncommitted = records(&log, Isolation::ReadUncommitted);
    assert_eq!(
        uncommitted.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{uncommitted:?}"
    );
    commit(&log, 7, 0);
    seal(&log);
    clean(&log);
    assert_eq!(latest(&log)["k"], "3");
}

#[test]
fn tombstones_go_after_delete_retention() {
    // Kafka: LogCleanerTest.testDeletesRetainedUntilHorizon (KIP-534 horizon in the batch)
    let t = compacted(&[("delete.retention.ms", "5000")]);
    let log = t.open();
    appended(client(&log, &kv(&[("k", Some("v")), ("j", Some("v"))])));
    appended(client(&log, &kv(&[("k", None)])));
    seal(&log);
    clean(&log);
    let kept = records(&log, Isolation::ReadCommitted);
    assert_eq!(
        kept.iter()
            .map(|r| (r.1.as_str(), r.2.is_some()))
            .collect::<Vec<_>>(),
        vec![("j", true), ("k", false)]
    );
    t.clock.advance(4999);
    appended(client(&log, &kv(&[("j", Some("w"))])));
    seal(&log);
    clean(&log);
    assert!(
        records(&log, Isolation::ReadCommitted).iter().any(|r| r.1 == "k"),
        "within the horizon"
    );
    t.clock.advance(2);
    appended(client(&log, &kv(&[("j", Some("x"))])));
    seal(&log);
    clean(&log);
    let kept = records(&log, Isolation::ReadCommitted);
    assert!(kept.iter().all(|r| r.1 != "k"), "tombstone removed: {kept:?}");
    assert_eq!(latest(&log), BTreeMap::from([("j".into(), "x".into())]));
}

#[test]
fn record_timestamps_at_the_ends_of_the_range_survive_building_and_a_rebuild() {
    // Timestamp deltas are taken modulo 2^64, as Kafka's readers add them: a record far from
    // its batch's base timestamp (here a tombstone at the bottom of the range, rebased on the
    // delete horizon by the clean) is written and read back unchanged, never an overflow.
    // (Kafka 4 refuses a record more than an hour ahead of the clock by default.)
    let t = compacted(&[
        ("delete.retention.ms", "86400000"),
        ("message.timestamp.after.max.ms", &i64::MAX.to_string()),
    ]);
    let log = t.open();
    let at = |timestamp: i64, key: &'static str, value: Option<&'static str>| NewRecord {
        timestamp,
        key: Some(key.as_bytes()),
        value: value.map(str::as_bytes),
        headers: Vec::new(),
    };
    let first = BatchBuilder::new()
        .build(&[at(i64::MIN + 5, "k", None), at(i64::MAX - 5, "a", Some("1"))])
        .expect("build");
    appended(client(&log, &first));
    appended(client(&log, &kv(&[("a", Some("2"))])));
    seal(&log);
    clean(&log);
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, Isolation::ReadCommitted)
        .expect("read");
    let kept: Vec<(i64, Option<Vec<u8>>, i64)> = recs
        .into_iter()
        .map(|r| (r.offset.0, r.key, r.timestamp))
        .collect();
    assert_eq!(
        kept,
        vec![
            (0, Some(b"k".to_vec()), i64::MIN + 5),
            (2, Some(b"a".to_vec()), T0)
        ],
        "the tombstone kept with its timestamp, the superseded record gone"
    );
}

#[test]
fn a_control_record_never_shadows_a_user_key() {
    // KAFKA-14055: the COMMIT marker's record key is 0x00000001; a user record with that
    // key written before it must survive.
    let t = compacted(&[]);
    let log = t.open();
    let key = [0u8, 0, 0, 1];
    let user = BatchBuilder::new()
        .build(&[NewRecord::key_value(T0, &key, b"user")])
        .expect("build");
    appended(client(&log, &user));
    appended(client(&log, &txn_kv(1, 0, &[("other", Some("v"))])));
    commit(&log, 1, 0);
    seal(&log);
    clean(&log);
    let (recs, _) = log
        .read_records(off(0), 1 << 20, Isolation::ReadCommitted)
        .expect("read");
    assert!(
        recs.iter().any(|r| r.key.as_deref() == Some(&key[..])),
        "user record kept"
    );
}

#[test]
fn partially_cleaned_segments_keep_their_txn_index_entries() {
    // KAFKA-13727: an aborted transaction whose data survives one clean keeps its entry, so
    // read_committed still filters it.
    let t = compacted(&[("segment.bytes", "100000")]);
    let log = t.open();
    appended(client(&log, &txn_kv(1, 0, &[("a", Some("aborted"))])));
    abort(&log, 1, 0);
    seal(&log);
    // A clean that removes the data: the marker keeps the entry while data was seen.
    clean(&log);
    let r = log.read(off(0), 1 << 20, Isolation::ReadCommitted).expect("read");
    assert!(latest(&log).is_empty(), "aborted data never visible");
    drop(r);
    drop(log);
    let log = t.open();
    assert!(latest(&log).is_empty(), "after reopen too");
}

#[test]
fn dirty_ratio_and_compaction_lags_decide_when_a_clean_is_due() {
    let t = compacted(&[
        ("min.cleanable.dirty.ratio", "0.5"),
        ("min.compaction.lag.ms", "10000"),
    ]);
    let log = t.open();
    appended(client(&log, &kv(&[("k", Some("1"))])));
    seal(&log);
    let info = log.cleanability().expect("info");
    assert!(!info.due, "younger than min.compaction.lag.ms: {info:?}");
    assert_eq!(info.dirty_bytes, 0);
    t.clock.advance(10_001);
    let info = log.cleanability().expect("info");
    assert!(info.due && info.dirty_ratio == 1.0, "{info:?}");
    assert!(log
        .clean(&CleanerOptions::default(), false)
        .expect("clean")
        .is_some());
    let info = log.cleanability().expect("info");
    assert!(
        !info.due && info.dirty_bytes == 0 && info.clean_bytes > 0,
        "{info:?}"
    );
    assert_eq!(log.last_clean().expect("report").end_offset, off(1));
    assert!(
        log.clean(&CleanerOptions::default(), false)
            .expect("clean")
            .is_none(),
        "nothing dirty"
    );
}

#[test]
fn a_log_that_is_not_compacted_is_never_cleaned() {
    let t = TestLog::with_config(config(&[("segment.bytes", "1024")]));
    let log = t.open();
    appended(client(&log, &kv(&[("k", Some("1"))])));
    appended(client(&log, &kv(&[("k", Some("2"))])));
    seal(&log);
    assert!(log
        .clean(&CleanerOptions::default(), true)
        .expect("clean")
        .is_none());
    assert_eq!(records(&log, Isolation::ReadCommitted).len(), 2);
}

#[test]
fn groups_merge_small_segments_up_to_segment_bytes() {
    let t = compacted(&[("segment.bytes", "2000")]);
    let log = t.open();
    for i in 0..30 {
        appended(client(&log, &kv(&[(&format!("k{}", i % 3), Some("v"))])));
        if i % 3 == 2 {
            seal(&log);
        }
    }
    let before = log.segments().len();
    let report = clean(&log);
    let after = log.segments().len();
    assert!(after < before, "{before} segments became {after}");
    assert_eq!(report.segments_read, before - 1);
    assert_eq!(latest(&log).len(), 3);
}

/// Segments that roll at `segment.bytes` and lose nearly every record: Kafka's grouping
/// (by the originals' sizes) would copy each alone; these merge by what their copies hold.
#[test]
fn a_first_clean_merges_full_segments_by_what_their_copies_keep() {
    let t = compacted(&[("segment.bytes", "2000")]);
    let log = t.open();
    let value = "v".repeat(100);
    for _ in 0..200 {
        appended(client(&log, &kv(&[("k0", Some(&value)), ("k1", Some(&value))])));
    }
    seal(&log);
    let before = log.segments();
    assert!(before.len() > 10, "{} segments", before.len());
    let sealed = &before[..before.len() - 1];
    assert!(
        sealed.iter().all(|s| s.size > 1000),
        "each original is nearly full: {sealed:?}"
    );
    let report = clean(&log);
    assert_eq!(report.segments_read, before.len() - 1);
    assert_eq!(report.segments_written, 1, "{report:?}");
    let after = log.segments();
    assert_eq!(
        after.len(),
        2,
        "one cleaned segment and the active one: {after:?}"
    );
    assert_eq!(latest(&log).len(), 2);
    assert_eq!(records(&log, Isolation::ReadCommitted).len(), 2);
}

/// Nothing is removed: no copy may exceed `segment.bytes`, so none merges.
#[test]
fn no_copy_grows_past_segment_bytes() {
    let t = compacted(&[("segment.bytes", "2000")]);
    let log = t.open();
    let value = "v".repeat(100);
    for i in 0..100 {
        appended(client(&log, &kv(&[(&format!("key-{i}"), Some(&value))])));
    }
    seal(&log);
    let before = log.segments().len();
    let report = clean(&log);
    assert_eq!(report.segments_written, before - 1, "{report:?}");
    let after = log.segments();
    assert_eq!(after.len(), before);
    assert!(after.iter().all(|s| s.size <= 2000), "{after:?}");
    assert_eq!(latest(&log).len(), 100);
}

/// Indexes of one slot: a copy stops taking segments when its indexes have no room for
/// the next one's entries (Kafka bounds groups by index size too).
#[test]
fn a_group_ends_where_its_copy_indexes_would_overflow() {
    let t = compacted(&[
        ("segment.bytes", "100000"),
        ("segment.index.bytes", "24"),
        ("index.interval.bytes", "0"),
    ]);
    let log = t.open();
    for i in 0..12 {
        appended(client(&log, &kv(&[(&format!("key-{}", i % 2), Some("v"))])));
        if i % 2 == 1 {
            seal(&log);
        }
    }
    let before = log.segments().len();
    let report = clean(&log);
    assert_eq!(
        report.segments_written,
        before - 1,
        "one copy per original: {report:?}"
    );
    assert_eq!(latest(&log).len(), 2);
    // Every batch is still found through a lookup from any offset.
    for o in 0..12 {
        let r = log
            .read(off(o), 1 << 20, Isolation::ReadUncommitted)
            .expect("read");
        assert!(!r.slices.is_empty(), "offset {o}");
    }
}

#[test]
fn a_small_dedupe_buffer_cleans_what_fits() {
    let t = compacted(&[]);
    let log = t.open();
    for i in 0..40 {
        appended(client(&log, &kv(&[(&format!("key-{i}"), Some("v"))])));
        if i % 10 == 9 {
            seal(&log);
        }
    }
    let small = CleanerOptions::default().dedupe_buffer_bytes(100);
    let report = log.clean(&small, true).expect("clean").expect("report");
    assert!(report.end_offset < off(40), "stopped early: {report:?}");
    assert_eq!(latest(&log).len(), 40, "every key kept");
}

/// A segment holding more keys than `log.cleaner.dedupe.buffer.size` is cleaned in several
/// passes, each mapping from where the last stopped inside the segment (Kafka's partially
/// mapped segment), rather than one map that outgrows its budget.
#[test]
fn a_segment_with_more_keys_than_the_dedupe_buffer_is_cleaned_in_passes() {
    let t = compacted(&[("segment.bytes", "1048576")]);
    let log = t.open();
    for round in ["old", "new"] {
        for i in 0..40 {
            appended(client(&log, &kv(&[(&format!("key-{i:02}"), Some(round))])));
        }
    }
    seal(&log);
    assert_eq!(log.segments().len(), 2, "one sealed segment of 80 records");
    // Room for a handful of keys: far fewer than the segment's 40.
    let small = CleanerOptions::default().dedupe_buffer_bytes(500);
    let mut ends = Vec::new();
    while ends.last().is_none_or(|&e| e < off(80)) {
        let report = log.clean(&small, true).expect("clean").expect("report");
        assert!(
            ends.last().is_none_or(|&e| report.end_offset > e),
            "every clean maps further: {ends:?} then {report:?}"
        );
        let c = log.cleanability().expect("cleanability");
        assert_eq!(
            c.first_dirty_offset, report.end_offset,
            "the next clean starts where this one stopped"
        );
        if report.end_offset < off(80) {
            assert_eq!(
                (c.clean_bytes, c.dirty_bytes),
                (log.segments()[0].size, log.segments()[0].size),
                "the segment a clean stopped inside counts as clean and as dirty (Kafka's LogToClean)"
            );
        }
        ends.push(report.end_offset);
        assert!(ends.len() <= 40, "cleans never reach the end: {ends:?}");
        // Whatever the passes so far, a consumer sees the latest value of every key.
        let seen = latest(&log);
        assert_eq!(seen.len(), 40);
        assert!(
            seen.values().all(|v| v == "new"),
            "after {} passes: {seen:?}",
            ends.len()
        );
    }
    assert!(ends.len() > 2, "the map filled inside the segment: {ends:?}");
    assert!(ends[0] > off(0) && ends[0] < off(40), "{ends:?}");
    // Every superseded record is gone; each kept one is at its original offset.
    let left = records(&log, Isolation::ReadUncommitted);
    assert_eq!(
        left.iter().map(|(o, ..)| *o).collect::<Vec<_>>(),
        (40..80).collect::<Vec<_>>()
    );
}

/// Three sealed segments of distinct keys, each its own group of a clean, "dup" in the first
/// and again in the last, and a record in the active segment; then a forced clean during
/// whose copy of the second group the log is truncated to `cut(log, segment bases)`.
/// Returns the test log, the log, the segment bases, the keys written and the clean's answer.
fn clean_cut_short(
    cut: fn(&Log, &[Offset]) -> Offset,
) -> (
    TestLog,
    Log,
    Vec<Offset>,
    Vec<String>,
    Option<eoslog::CleanReport>,
) {
    let t = compacted(&[]);
    let target = Arc::new(Mutex::new(String::new()));
    let gate = Gate::new(GateOn::Write);
    let name = target.clone();
    let log = t.open_with_fs(gated_fs(&gate, move |p| {
        p.file_name()
            .is_some_and(|f| *f.to_string_lossy() == *name.lock().expect("name"))
    }));
    let value = "v".repeat(100);
    let mut keys: Vec<String> = vec!["dup".into()];
    appended(client(&log, &kv(&[("dup", Some("old"))])));
    while log.segments().len() < 4 {
        let key = format!("key-{:02}", keys.len());
        appended(client(&log, &kv(&[(&key, Some(&value))])));
        keys.push(key);
    }
    appended(client(&log, &kv(&[("dup", Some("new"))])));
    seal(&log);
    appended(client(&log, &kv(&[("tail", Some("x"))])));
    let bases: Vec<_> = log.segments().iter().map(|s| s.base_offset).collect();
    assert!(bases.len() >= 4, "sealed segments to clean: {bases:?}");
    *target.lock().expect("name") = format!("{:020}.log.cleaned", bases[1].0);
    let report = std::thread::scope(|scope| {
        gate.arm();
        let cleaning = scope.spawn(|| log.clean(&CleanerOptions::default(), true));
        gate.wait_entered(); // the first group is installed; the second is being copied
        log.truncate_to(cut(&log, &bases)).expect("truncate");
        gate.release();
        cleaning.join().expect("clean").expect("clean")
    });
    (t, log, bases, keys, report)
}

/// A clean whose segments change under it (here a truncation of the tail while it copies
/// its second group) keeps the groups it already installed: it reports them, and the next
/// clean maps from the first group it left instead of starting over.
#[test]
fn a_clean_stopped_by_a_change_reports_what_it_installed_and_the_next_goes_on_from_there() {
    let (_t, log, bases, keys, report) = clean_cut_short(|log, _| off(log.log_end_offset().0 - 1));
    let report = report.expect("a report of the group installed");
    assert_eq!(report.segments_written, 1, "{report:?}");
    assert_eq!(report.end_offset, bases[1], "{report:?}");
    assert_eq!(
        log.cleanability().expect("cleanability").first_dirty_offset,
        bases[1]
    );
    let offsets: Vec<i64> = records(&log, Isolation::ReadUncommitted)
        .into_iter()
        .map(|(o, ..)| o)
        .collect();
    assert!(!offsets.contains(&0), "the first group was cleaned");
    let have = |log: &Log| latest(log).into_keys().collect::<Vec<_>>();
    assert_eq!(have(&log), keys, "every key, the truncated tail gone");
    assert_eq!(latest(&log)["dup"], "new");

    let next = clean(&log);
    assert!(next.end_offset > bases[1], "{next:?}");
    assert_eq!(have(&log), keys);
    assert_eq!(latest(&log)["dup"], "new");
}

/// A truncation below what a running clean installed (Kafka's `maybeTruncateCheckpoint`):
/// the clean's new first dirty offset is not above the cut, so what is written again from
/// there is mapped by the next clean rather than taken for clean.
#[test]
fn a_clean_cut_short_by_a_truncation_below_it_records_no_first_dirty_offset_above_the_cut() {
    let (_t, log, bases, _, report) = clean_cut_short(|_, bases| off(bases[1].0 - 2));
    let cut = log.log_end_offset();
    assert!(cut < bases[1], "{cut:?} {bases:?}");
    let report = report.expect("a report of the group installed");
    assert!(report.end_offset <= cut, "{report:?} cut at {cut:?}");
    let first_dirty = log.cleanability().expect("cleanability").first_dirty_offset;
    assert!(first_dirty <= cut, "{first_dirty:?} cut at {cut:?}");
    // Written again past the cut: a new value of a key of the first group, then sealed.
    appended(client(&log, &kv(&[("key-01", Some("again"))])));
    seal(&log);
    clean(&log);
    let kept = latest(&log);
    assert_eq!(kept["key-01"], "again");
    let key_01 = records(&log, Isolation::ReadUncommitted)
        .into_iter()
        .filter(|(_, k, _)| k == "key-01")
        .count();
    assert_eq!(key_01, 1, "the rewritten key was mapped: its old record is gone");
}

#[test]
fn a_fetch_taken_before_a_swap_reads_the_old_bytes_after_it() {
    let t = compacted(&[]);
    let log = t.open();
    for round in 0..30 {
        appended(client(&log, &kv(&[("k", Some(&format!("v{round}")))])));
    }
    seal(&log);
    let before = log
        .read(off(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    let old: Vec<Vec<u8>> = before.slices.iter().map(|s| s.read().expect("bytes")).collect();
    let size_before = log.segments()[0].size;
    clean(&log);
    assert!(
        log.segments()[0].size < size_before,
        "the first segment was replaced by its copy"
    );
    let after: Vec<Vec<u8>> = before
        .slices
        .iter()
        .map(|s| s.read().expect("bytes after the swap"))
        .collect();
    assert_eq!(old, after, "a reader holding the old segments keeps its view");
    let mut rest = &after[0][..];
    let mut n = 0;
    while !rest.is_empty() {
        let (b, tail) = RecordBatch::parse(rest).expect("batch");
        b.validate_crc().expect("crc");
        n += 1;
        rest = tail;
    }
    assert!(n > 1);
}

#[test]
fn readers_and_appenders_run_while_the_cleaner_swaps() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let t = compacted(&[("segment.bytes", "2048")]);
    let log = Arc::new(t.open());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (_, k, v) in records(&log, Isolation::ReadCommitted) {
                    let v = v.expect("no tombstones written");
                    assert!(v.starts_with(&k) && !v.contains("aborted"), "{k} = {v}");
                }
                reads += 1;
            }
            reads
        })
    };
    for round in 0..300 {
        let key = format!("k{}", round % 7);
        appended(client(&log, &kv(&[(&key, Some(&format!("{key}-{round}")))])));
        if round % 5 == 0 {
            appended(client(
                &log,
                &txn_kv(1, round / 5, &[(&key, Some(&format!("{key}-aborted")))]),
            ));
            abort(&log, 1, 0);
        }
        if round % 20 == 19 {
            seal(&log);
            log.clean(&CleanerOptions::default(), true).expect("clean");
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("reader") > 0);
    assert_eq!(latest(&log).len(), 7);
}

#[test]
fn a_compacted_log_refuses_a_record_without_a_key() {
    // Kafka's LogValidator: "Compacted topic cannot accept message without key".
    let t = compacted(&[("eoslog.validate.records", "false")]);
    let log = t.open();
    let keyless = plain(&["no key"]);
    let e = log
        .append(&keyless, eoslog::AppendOrigin::Client)
        .expect_err("refused");
    assert!(
        matches!(
            e,
            eoslog::AppendError::RecordsRefused { ref records, .. }
                if records[..] == [eoslog::RefusedRecord {
                    index: Some(0),
                    reason: eoslog::RecordRefusal::MissingKeyInCompactedLog,
                }]
        ),
        "{e:?}"
    );
    assert_eq!(e.kafka_error(), eoslog::KafkaError::InvalidRecord);
    assert_eq!(log.log_end_offset(), off(0), "nothing written");
}

#[test]
fn a_removed_abort_marker_takes_its_index_entry_with_it() {
    // A consumer handed an aborted transaction whose ABORT marker is gone would skip every
    // later batch of that producer in the fetch: the entry must go with the marker.
    let t = compacted(&[]);
    let log = t.open();
    appended(client(&log, &txn_kv(1, 0, &[("a", Some("aborted"))])));
    abort(&log, 1, 0);
    seal(&log);
    appended(client(&log, &txn_kv(1, 1, &[("b", Some("committed"))])));
    commit(&log, 1, 0);
    for _ in 0..3 {
        seal(&log);
        clean(&log);
        t.clock.advance(1);
    }
    let all = batches(&log);
    assert!(
        !all.iter().any(|b| b.3 && b.2 > 0 && b.0 == 1),
        "the ABORT marker is gone: {all:?}"
    );
    assert_eq!(latest(&log), BTreeMap::from([("b".into(), "committed".into())]));
    let r = log.read(off(0), 1 << 20, Isolation::ReadCommitted).expect("read");
    assert_eq!(
        r.aborted_transactions.expect("read_committed").len(),
        0,
        "no entry without its marker"
    );
    drop(log);
    let log = t.open();
    assert_eq!(latest(&log), BTreeMap::from([("b".into(), "committed".into())]));
}

#[test]
fn a_damaged_swap_file_refuses_open_and_deletes_nothing() {
    // Open completes a `.log.swap` by deleting the segments it replaces: it must not do so
    // on the word of a batch that does not check out.
    let t = compacted(&[]);
    let log = t.open();
    for round in 0..30 {
        appended(client(&log, &kv(&[("k", Some(&format!("v{round}")))])));
    }
    seal(&log);
    log.close().expect("close");
    let logs_before = files_with_suffix(&t.path(), ".log");
    let mut bytes = std::fs::read(t.path().join(&logs_before[0])).expect("segment");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // the last batch's CRC no longer matches
    std::fs::write(t.path().join(format!("{}.swap", logs_before[0])), bytes).expect("swap");
    let e = Log::open_with(
        t.path(),
        t.config.clone(),
        eoslog::LogOptions {
            fs: std::sync::Arc::new(eoslog::StdFileSystem),
            clock: std::sync::Arc::new(t.clock.clone()),
        },
    )
    .expect_err("refused");
    assert!(
        matches!(e, eoslog::OpenError::Storage(eoslog::StorageError::Corrupt(_))),
        "{e:?}"
    );
    assert_eq!(
        files_with_suffix(&t.path(), ".log"),
        logs_before,
        "nothing deleted"
    );
}

#[test]
fn a_truncation_lowers_the_first_dirty_offset() {
    let t = compacted(&[]);
    let log = t.open();
    for round in 0..30 {
        appended(client(&log, &kv(&[("k", Some(&format!("v{round}")))])));
    }
    seal(&log);
    let end = clean(&log).end_offset;
    assert_eq!(log.cleanability().expect("info").first_dirty_offset, end);
    log.truncate_to(off(5)).expect("truncate");
    assert!(log.cleanability().expect("info").first_dirty_offset <= off(5));
    drop(log);
    let log = t.open();
    assert!(
        log.cleanability().expect("info").first_dirty_offset <= off(5),
        "recorded in eoslog.cleaner"
    );
}
