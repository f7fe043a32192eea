//! Invariant: producer state after any reopen, truncation or retention equals the state obtained
//! by applying the surviving log; snapshots are taken at rolls, at close and every
//! `eoslog.snapshot.interval.bytes`; a corrupt snapshot is deleted and an older one used; stray
//! snapshots are removed as Kafka does. Scenarios 45, 49, 50, 54, 57, 61, 63, 64, 78, issue #3.

mod common;
use common::*;
use eoslog::{AppendOutcome, Isolation, MarkerType, Offset, Sequence};

#[test]
fn open_transaction_survives_snapshot_reload() {
    // PSMT.testRecoverFromSnapshotUnfinishedTransaction
    let t = TestLog::new();
    {
        let log = t.open();
        appended(client(&log, &txn(1, 0, 0, 1)));
        appended(client(&log, &txn(1, 0, 1, 1)));
        log.close().expect("close");
    }
    assert_eq!(
        files_with_suffix(&t.path(), ".snapshot"),
        vec!["00000000000000000002.snapshot"]
    );
    let log = t.open();
    let p = log.producers()[0];
    assert_eq!(
        (p.last_sequence, p.current_txn_start_offset),
        (Sequence(1), Some(Offset(0)))
    );
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    appended(client(&log, &txn(1, 0, 2, 1)));
    commit(&log, 1, 0);
    assert_eq!(values(&log, Isolation::ReadCommitted).len(), 3);
}

#[test]
fn marker_only_producer_restores_timestamp() {
    // PSMT.testRecoverFromSnapshotEmptyTransaction
    let t = TestLog::new();
    {
        let log = t.open();
        appended(marker(&log, 4, 2, 3, MarkerType::Commit));
        log.close().expect("close");
    }
    let log = t.open();
    let p = log.producers()[0];
    assert_eq!(
        (
            p.producer_epoch.0,
            p.last_sequence.0,
            p.last_timestamp,
            p.coordinator_epoch.0
        ),
        (2, -1, T0, 3)
    );
    assert_eq!(p.current_txn_start_offset, None);
}

#[test]
fn corrupt_latest_snapshot_falls_back_to_older() {
    // PSMT.testLoadFromCorruptSnapshotFile (+ empty and truncated variants)
    for damage in ["flip", "empty", "truncate"] {
        let t = TestLog::with_config(config(&[("segment.bytes", "300")]));
        let expected;
        {
            let log = t.open();
            let mut s = 0;
            while log.segments().len() < 3 {
                appended(client(&log, &idem(1, 0, s, 1)));
                s += 1;
            }
            expected = log.producers();
            log.close().expect("close");
        }
        let snaps = files_with_suffix(&t.path(), ".snapshot");
        assert!(snaps.len() >= 2, "{snaps:?}");
        let latest = t.path().join(snaps.last().expect("latest"));
        let mut bytes = std::fs::read(&latest).expect("read");
        match damage {
            "flip" => bytes[12] ^= 0xff,
            "empty" => bytes.clear(),
            _ => bytes.truncate(bytes.len() - 3),
        }
        std::fs::write(&latest, &bytes).expect("write");
        let log = t.open();
        assert_eq!(log.producers(), expected, "{damage}");
        assert!(!files_with_suffix(&t.path(), ".snapshot").is_empty());
    }
}

#[test]
fn stray_snapshots_removed_clean_shutdown_snapshot_kept() {
    // PSMT.testRemoveStraySnapshotsKeepCleanShutdownSnapshot
    let t = TestLog::new();
    {
        let log = t.open();
        for s in 0..5 {
            appended(client(&log, &idem(1, 0, s, 1)));
        }
        log.close().expect("close");
    }
    // A stray snapshot at 2 (not a segment base) and one above the end.
    let good = t.path().join("00000000000000000005.snapshot");
    std::fs::copy(&good, t.path().join("00000000000000000002.snapshot")).expect("copy");
    std::fs::copy(&good, t.path().join("00000000000000000042.snapshot")).expect("copy");
    let log = t.open();
    let snaps = files_with_suffix(&t.path(), ".snapshot");
    assert_eq!(snaps, vec!["00000000000000000005.snapshot"]);
    assert_eq!(log.producers()[0].last_sequence, Sequence(4));
}

#[test]
fn snapshot_taken_on_roll_and_truncate_reloads_it() {
    // ULT.testProducerSnapshotAfterSegmentRollOnAppend
    let t = TestLog::with_config(config(&[("segment.bytes", "1024")]));
    let log = t.open();
    let big = "v".repeat(600);
    appended(client(&log, &{
        let recs = [eoslog::NewRecord::value(T0, big.as_bytes())];
        eoslog::BatchBuilder::idempotent(eoslog::ProducerId(1), eoslog::ProducerEpoch(0), Sequence(0))
            .build(&recs)
            .expect("b")
    }));
    appended(client(&log, &{
        let recs = [eoslog::NewRecord::value(T0, big.as_bytes())];
        eoslog::BatchBuilder::idempotent(eoslog::ProducerId(1), eoslog::ProducerEpoch(0), Sequence(1))
            .build(&recs)
            .expect("b")
    }));
    assert_eq!(log.segments().len(), 2);
    assert!(t.path().join("00000000000000000001.snapshot").exists());
    log.truncate_to(Offset(1)).expect("truncate");
    assert_eq!(log.log_end_offset(), Offset(1));
    assert_eq!(log.producers()[0].last_sequence, Sequence(0));
    // The truncated batch can be appended again.
    appended(client(&log, &idem(1, 0, 1, 1)));
}

#[test]
fn truncate_below_first_unstable_offset_clears_it() {
    // ULT.testTruncateBelowFirstUnstableOffset / testTruncateFullyAndStartBelowFirstUnstableOffset
    for fully in [false, true] {
        let t = TestLog::new();
        {
            let log = t.open();
            appended(client(&log, &plain(&["a", "b", "c"])));
            appended(client(&log, &txn(1, 0, 0, 2)));
            log.close().expect("close");
        }
        let log = t.open();
        assert_eq!(log.first_unstable_offset(), Some(Offset(3)));
        if fully {
            log.truncate_fully_and_start_at(Offset(0)).expect("truncate");
        } else {
            log.truncate_to(Offset(0)).expect("truncate");
        }
        assert_eq!(log.first_unstable_offset(), None);
        assert!(log.producers().is_empty());
        assert_eq!(log.log_end_offset(), Offset(0));
    }
}

#[test]
fn truncate_fully_and_start_at_deletes_everything() {
    // ULT.testProducerIdMapTruncateFullyAndStartAt
    let t = TestLog::with_config(config(&[("segment.bytes", "300")]));
    let log = t.open();
    let mut s = 0;
    while log.segments().len() < 3 {
        appended(client(&log, &idem(1, 0, s, 1)));
        s += 1;
    }
    log.truncate_fully_and_start_at(Offset(29)).expect("truncate");
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.segments()[0].base_offset, Offset(29));
    assert!(files_with_suffix(&t.path(), ".snapshot").is_empty());
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset(), log.high_watermark()),
        (Offset(29), Offset(29), Offset(29))
    );
    assert!(log.producers().is_empty());
    drop(log);
    let log = t.open();
    assert_eq!(log.log_end_offset(), Offset(29));
}

#[test]
fn truncate_straddling_batch_removed_whole() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &plain(&["a", "b", "c"]))); // 0..2
    appended(client(&log, &plain(&["d", "e", "f"]))); // 3..5
    log.truncate_to(Offset(4)).expect("truncate");
    // Kafka would report 4 here and 3 after a restart; eoslog reports where the data ends.
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["a", "b", "c"]);
    let info = appended(client(&log, &plain(&["g"])));
    assert_eq!(info.first_offset, Offset(3));
    drop(log);
    assert_eq!(t.open().log_end_offset(), Offset(4), "a restart agrees");
}

#[test]
fn truncation_restores_transaction_state() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &txn(1, 0, 0, 2))); // 0..1
    commit(&log, 1, 0); // 2
    appended(client(&log, &txn(1, 0, 2, 2))); // 3..4
    abort(&log, 1, 0); // 5
    assert_eq!(log.aborted_transactions().len(), 1);
    log.truncate_to(Offset(5)).expect("truncate");
    assert!(log.aborted_transactions().is_empty());
    assert_eq!(log.open_transactions().len(), 1);
    assert_eq!(log.first_unstable_offset(), Some(Offset(3)));
    log.truncate_to(Offset(2)).expect("truncate");
    assert_eq!(log.open_transactions()[0].first_offset, Offset(0));
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
}

#[test]
fn retention_deletes_segments_and_their_snapshots_but_not_producers() {
    // ULT.testRetentionDeletesProducerStateSnapshots, testProducerIdExpirationOnSegmentDeletion,
    // testCannotDeleteSegmentsAtOrAboveHighWatermark
    let t = TestLog::with_config(config(&[
        ("segment.bytes", "300"),
        ("retention.bytes", "1"),
        ("eoslog.high.watermark", "manual"),
    ]));
    let log = t.open();
    let mut s = 0;
    while log.segments().len() < 4 {
        appended(client(&log, &idem(1, 0, s, 1)));
        s += 1;
    }
    appended(client(&log, &idem(2, 0, 0, 1)));
    assert_eq!(
        log.apply_retention().expect("retention"),
        0,
        "nothing below the HW (at log start)"
    );
    log.set_high_watermark(log.log_end_offset());
    let deleted = log.apply_retention().expect("retention");
    assert!(deleted >= 3, "deleted {deleted}");
    assert_eq!(log.log_start_offset(), log.segments()[0].base_offset);
    assert_eq!(log.producers().len(), 2, "retention never drops producer state");
    let snaps = files_with_suffix(&t.path(), ".snapshot");
    assert!(
        snaps
            .iter()
            .all(|n| eoslog::parse_file_name(n).expect("name").0 >= log.log_start_offset().0),
        "{snaps:?}"
    );
    assert!(matches!(
        client(&log, &idem(1, 0, s, 1)),
        AppendOutcome::Appended(_)
    ));
}

#[test]
fn delete_records_mid_segment_keeps_producers_across_reload() {
    // LLT.testLoadProducersAfterDeleteRecordsMidSegment
    let t = TestLog::new();
    {
        let log = t.open();
        appended(client(&log, &idem(1, 0, 0, 1)));
        appended(client(&log, &idem(2, 0, 0, 1)));
        log.delete_records_before(Offset(1)).expect("delete");
        assert_eq!(log.producers().len(), 2);
        log.close().expect("close");
    }
    let log = t.open();
    assert_eq!(log.log_start_offset(), Offset(1));
    assert_eq!(log.producers().len(), 2);
    assert!(matches!(
        log.read(Offset(0), 100, Isolation::ReadUncommitted),
        Err(eoslog::ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn unclean_reopen_rebuilds_transactional_state() {
    // ULT.testRebuildTransactionalState
    let t = TestLog::new();
    {
        let log = t.open();
        appended(client(&log, &txn(1, 0, 0, 3)));
        commit(&log, 1, 0);
        appended(client(&log, &txn(2, 0, 0, 3)));
        abort(&log, 2, 0);
        drop(log);
    }
    let log = t.open();
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.aborted_transactions().len(), 1);
    assert_eq!(values(&log, Isolation::ReadCommitted).len(), 3);
    assert_eq!(log.stats().recoveries, 1);
}

#[test]
fn snapshot_interval_bounds_replay() {
    let t = TestLog::with_config(config(&[("eoslog.snapshot.interval.bytes", "2000")]));
    {
        let log = t.open();
        for s in 0..100 {
            appended(client(&log, &idem(1, 0, s, 1)));
        }
        drop(log);
    }
    let snaps = files_with_suffix(&t.path(), ".snapshot");
    assert!(!snaps.is_empty());
    let newest = eoslog::parse_file_name(snaps.last().expect("s")).expect("n").0;
    assert!(newest >= 80, "a recent snapshot exists: {snaps:?}");
    let log = t.open();
    assert_eq!(log.producers()[0].last_sequence, Sequence(99));
    assert!(matches!(
        client(&log, &idem(1, 0, 99, 1)),
        AppendOutcome::Duplicate(_)
    ));
}
