//! Invariant: recovery repairs what is derived and refuses what it cannot repair safely: a
//! damaged transaction index makes its segment be recovered (not the open fail), missing index
//! files are rebuilt, the leader-epoch cache never names offsets recovery cut away, a Kafka
//! compaction `.swap` leftover stops the open instead of being deleted, and a poisoned log never
//! moves its last stable offset. Issues #2, #4 (review findings on the first implementation).

mod common;
use common::*;
use eoslog::{AppendOptions, AppendOrigin, Isolation, Log, LogConfig, Offset, OpenError, StorageError};

#[test]
fn damaged_txn_index_is_rebuilt_by_recovery() {
    let t = TestLog::with_config(config(&[("segment.bytes", "400")]));
    let expected;
    {
        let log = t.open();
        appended(client(&log, &txn(1, 0, 0, 1)));
        abort(&log, 1, 0);
        let mut s = 0;
        while log.segments().len() < 3 {
            appended(client(&log, &idem(2, 0, s, 1)));
            s += 1;
        }
        expected = log.aborted_transactions();
        log.close().expect("close");
    }
    // A torn write left a zero-filled entry after the real one.
    let idx = t.path().join("00000000000000000000.txnindex");
    let mut bytes = std::fs::read(&idx).expect("txnindex");
    bytes.extend_from_slice(&[0u8; 34]);
    std::fs::write(&idx, &bytes).expect("write");
    let log = t.open();
    assert_eq!(log.aborted_transactions(), expected);
    assert!(values(&log, Isolation::ReadCommitted)
        .iter()
        .all(|v| !v.starts_with("t1-")));
    assert_eq!(std::fs::metadata(&idx).expect("m").len(), 34);
}

#[test]
fn missing_index_files_are_rebuilt() {
    let t = TestLog::with_config(config(&[("segment.bytes", "400"), ("index.interval.bytes", "1")]));
    {
        let log = t.open();
        for i in 0..30 {
            appended(client(&log, &plain(&[&format!("r{i}")])));
        }
        log.close().expect("close");
    }
    std::fs::remove_file(t.path().join("00000000000000000000.index")).expect("rm");
    std::fs::remove_file(t.path().join("00000000000000000000.timeindex")).expect("rm");
    let log = t.open();
    for o in 0..30 {
        let (recs, _) = log
            .read_records(Offset(o), 1, Isolation::ReadUncommitted)
            .expect("read");
        assert_eq!(recs[0].offset, Offset(o));
    }
    // The rebuilt time index gives retention the segment's max timestamp.
    assert_eq!(
        log.offset_for_timestamp(T0, Isolation::ReadUncommitted)
            .expect("ts"),
        Some((Offset(0), T0))
    );
    assert!(t.path().join("00000000000000000000.index").exists());
}

#[test]
fn leader_epochs_follow_recovered_data() {
    let t = TestLog::new();
    {
        let log = t.open();
        let opts = |e| AppendOptions {
            leader_epoch: Some(e),
            ..AppendOptions::new(AppendOrigin::Client)
        };
        appended(log.append_with(&plain(&["a"]), &opts(1)).expect("a"));
        appended(log.append_with(&plain(&["b"]), &opts(2)).expect("a"));
        appended(log.append_with(&plain(&["c"]), &opts(3)).expect("a"));
        drop(log);
    }
    // Tear the last batch (epoch 3, offset 2).
    let seg = t.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&seg).expect("m").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("o")
        .set_len(len - 5)
        .expect("cut");
    let log = t.open();
    assert_eq!(log.log_end_offset(), Offset(2));
    let epochs: Vec<(i32, i64)> = log
        .leader_epochs()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect();
    assert_eq!(epochs, vec![(1, 0), (2, 1)]);
}

/// An empty `.log.swap` cannot come from eoslog's cleaner (its copies keep their group's
/// last batch): completing it would replace data with nothing, so the open refuses.
#[test]
fn empty_swap_leftover_refuses_open() {
    let t = TestLog::new();
    {
        let log = t.open();
        appended(client(&log, &plain(&["a"])));
        log.close().expect("close");
    }
    std::fs::write(t.path().join("00000000000000000000.log.swap"), b"").expect("swap");
    let e = Log::open(t.path(), LogConfig::default()).expect_err("refused");
    assert!(matches!(e, OpenError::Storage(StorageError::Corrupt(_))), "{e:?}");
    assert!(
        t.path().join("00000000000000000000.log.swap").exists(),
        "never deleted"
    );
}

#[test]
fn time_roll_measures_from_the_first_batch_after_reopen() {
    let t = TestLog::with_config(config(&[("segment.ms", "1000")]));
    {
        let log = t.open();
        appended(client(&log, &plain(&["a"])));
        log.close().expect("close");
    }
    let log = t.open();
    let later = eoslog::BatchBuilder::new()
        .build(&[eoslog::NewRecord::value(T0 + 1500, b"b")])
        .expect("b");
    appended(client(&log, &later));
    assert_eq!(
        log.segments().len(),
        2,
        "the first batch (T0) is older than segment.ms"
    );
}

#[test]
fn negative_offsets_are_refused() {
    let t = TestLog::new();
    let log = t.open();
    let e = log.truncate_to(Offset(-5)).expect_err("negative");
    assert_eq!(e.kafka_error(), eoslog::KafkaError::OffsetOutOfRange);
    assert!(log.truncate_fully_and_start_at(Offset(-1)).is_err());
    appended(client(&log, &plain(&["still works"])));
}
