//! Invariant: segments roll on size, time, full index and relative-offset overflow with Kafka's
//! 20-digit names; reads return whole batches from the first batch holding the offset; the
//! leader refuses what Kafka's leader refuses, with Kafka's error codes, and writes nothing.
//! Scenarios 70, 71, 73, 79 of the reference and the append validation rules, issue #2.

mod common;
use common::*;
use eoslog::{
    AppendError, AppendOptions, AppendOrigin, BatchBuilder, InvalidRecordReason, Isolation, KafkaError,
    NewRecord, Offset, ReadError, RecordBatch,
};

#[test]
fn rolls_on_size_with_twenty_digit_names() {
    let t = TestLog::with_config(config(&[("segment.bytes", "500")]));
    let log = t.open();
    for i in 0..20 {
        appended(client(&log, &plain(&[&format!("record-{i:03}-padding-padding")])));
    }
    let segs = log.segments();
    assert!(segs.len() > 3);
    for s in &segs {
        assert!(s.size <= 500);
        assert!(t.path().join(format!("{:020}.log", s.base_offset.0)).exists());
        assert!(t.path().join(format!("{:020}.index", s.base_offset.0)).exists());
        assert!(t
            .path()
            .join(format!("{:020}.timeindex", s.base_offset.0))
            .exists());
    }
    // Inactive segments' indexes are trimmed to their entries.
    let idx = std::fs::metadata(t.path().join("00000000000000000000.index"))
        .expect("m")
        .len();
    assert_eq!(idx % 8, 0);
    assert!(idx < 10 << 20);
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 20);
}

#[test]
fn rolls_on_time_but_not_while_empty() {
    // LST.testTruncateEmptySegment: no time-based roll while empty even past segment.ms.
    let t = TestLog::with_config(config(&[("segment.ms", "1000")]));
    let log = t.open();
    t.clock.advance(5_000);
    appended(client(&log, &plain(&["a"])));
    assert_eq!(log.segments().len(), 1);
    // Batch timestamps drive the roll (CreateTime): a batch 1001 ms newer than the first.
    let later = BatchBuilder::new()
        .build(&[NewRecord::value(T0 + 1001, b"b")])
        .expect("b");
    appended(client(&log, &later));
    assert_eq!(log.segments().len(), 2);
}

#[test]
fn rolls_when_the_index_is_full() {
    let t = TestLog::with_config(config(&[
        ("segment.index.bytes", "32"),
        ("index.interval.bytes", "0"),
    ]));
    let log = t.open();
    for i in 0..20 {
        appended(client(&log, &plain(&[&format!("{i}")])));
    }
    assert!(log.segments().len() > 3, "{:?}", log.segments());
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 20);
}

#[test]
fn rolls_on_relative_offset_overflow() {
    // LST.testAppendForLogSegmentOffsetOverflowException: a follower batch too far above the
    // segment base lands in a new segment based at its first offset.
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &plain(&["a"])));
    let far = i64::from(i32::MAX) + 10;
    let b = BatchBuilder::new()
        .base_offset(Offset(far))
        .build(&[NewRecord::value(T0, b"z")])
        .expect("b");
    appended(log.append(&b, AppendOrigin::Replication).expect("replicate"));
    let segs = log.segments();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].base_offset, Offset(far));
    assert_eq!(log.log_end_offset(), Offset(far + 1));
    drop(log);
    let log = t.open();
    assert_eq!(log.log_end_offset(), Offset(far + 1));
    let (recs, _) = log
        .read_records(Offset(1), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    assert_eq!(recs[0].offset, Offset(far));
}

#[test]
fn reads_return_the_first_batch_at_or_after_the_offset() {
    // LST.testReadFromGap / testReadBeforeFirstOffset / testReadAfterLast / testReadOnEmptySegment
    let t = TestLog::new();
    let log = t.open();
    let f = log
        .read(Offset(0), 100, Isolation::ReadUncommitted)
        .expect("empty log");
    assert!(f.slices.is_empty());
    appended(client(&log, &plain(&["a", "b", "c"]))); // 0..2
                                                      // A gap: a follower batch at 10.
    let b = BatchBuilder::new()
        .base_offset(Offset(10))
        .build(&[NewRecord::value(T0, b"k")])
        .expect("b");
    appended(log.append(&b, AppendOrigin::Replication).expect("replicate"));
    let f = log.read(Offset(1), 1, Isolation::ReadUncommitted).expect("read");
    let bytes = f.bytes().expect("bytes");
    assert_eq!(
        RecordBatch::parse_exact(&bytes).expect("one batch").base_offset(),
        0,
        "whole batch, starting before 1"
    );
    let f = log
        .read(Offset(5), 1, Isolation::ReadUncommitted)
        .expect("read in gap");
    assert_eq!(
        RecordBatch::parse_exact(&f.bytes().expect("b"))
            .expect("batch")
            .base_offset(),
        10
    );
    let f = log
        .read(Offset(11), 1, Isolation::ReadUncommitted)
        .expect("at end");
    assert!(f.slices.is_empty());
    assert!(matches!(
        log.read(Offset(12), 1, Isolation::ReadUncommitted),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read(Offset(12), 1, Isolation::ReadUncommitted)
            .expect_err("out of range")
            .kafka_error()
            .code(),
        1
    );
    // Zero-copy form: the slice names the file and range.
    let f = log
        .read(Offset(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    assert_eq!(f.slices.len(), 1);
    assert!(f.slices[0].path.ends_with("00000000000000000000.log"));
    assert_eq!(f.slices[0].position, 0);
    assert_eq!(
        f.slices[0].file().metadata().expect("meta").len(),
        f.slices[0].len
    );
}

#[test]
fn client_validation_matches_kafka_leader() {
    // LVT.testControlRecordsNotAllowedFromClients / testBatchWithoutRecordsNotAllowed and friends.
    let t = TestLog::with_config(config(&[("max.message.bytes", "200")]));
    let log = t.open();
    let check = |bytes: &[u8], code: KafkaError| {
        let end = log.log_end_offset();
        let e = log.append(bytes, AppendOrigin::Client).expect_err("rejected");
        assert_eq!(e.kafka_error(), code, "{e}");
        assert_eq!(log.log_end_offset(), end, "nothing written");
    };
    // A marker from a client.
    let m = eoslog::build_marker(
        eoslog::ControlType::Commit,
        eoslog::ProducerId(1),
        eoslog::ProducerEpoch(0),
        0,
        T0,
    );
    check(&m, KafkaError::InvalidRecord);
    // A header-only batch (0 records).
    let empty = BatchBuilder::new().build(&[]).expect("empty");
    check(&empty, KafkaError::InvalidRecord);
    // A bad CRC.
    let mut bad = plain(&["x"]);
    let n = bad.len();
    bad[n - 1] ^= 1;
    check(&bad, KafkaError::CorruptMessage);
    // Too large.
    check(&plain(&[&"y".repeat(300)]), KafkaError::MessageTooLarge);
    // Two batches in one produce.
    let mut two = plain(&["a"]);
    two.extend_from_slice(&plain(&["b"]));
    check(&two, KafkaError::InvalidRecord);
    // A non-zero base offset from a client.
    let b = BatchBuilder::new()
        .base_offset(Offset(5))
        .build(&[NewRecord::value(T0, b"z")])
        .expect("b");
    check(&b, KafkaError::InvalidRecord);
    // An idempotent batch without a sequence.
    let ns = BatchBuilder::idempotent(
        eoslog::ProducerId(3),
        eoslog::ProducerEpoch(0),
        eoslog::Sequence(-1),
    )
    .build(&[NewRecord::value(T0, b"z")])
    .expect("b");
    check(&ns, KafkaError::InvalidRecord);
    // Garbage and a huge length field.
    check(b"\x00\x01\x02", KafkaError::CorruptMessage);
    let mut huge = plain(&["a"]);
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    check(&huge, KafkaError::CorruptMessage);
    // A legacy magic.
    let mut legacy = plain(&["a"]);
    legacy[16] = 1;
    check(&legacy, KafkaError::InvalidRecord);
    assert!(matches!(
        log.append(&[], AppendOrigin::Client),
        Err(AppendError::Empty)
    ));
    match log.append(&m, AppendOrigin::Client) {
        Err(AppendError::InvalidRecord {
            reason: InvalidRecordReason::ControlBatchFromClient,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), Offset(0));
}

#[test]
fn follower_must_append_at_or_above_log_end() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &plain(&["a", "b"])));
    let b = BatchBuilder::new()
        .base_offset(Offset(1))
        .build(&[NewRecord::value(T0, b"z")])
        .expect("b");
    let e = log.append(&b, AppendOrigin::Replication).expect_err("below LEO");
    assert!(matches!(
        e,
        AppendError::UnexpectedOffset {
            expected: Offset(2),
            got: Offset(1)
        }
    ));
}

#[test]
fn leader_epoch_is_stamped_and_cached() {
    let t = TestLog::new();
    let log = t.open();
    let opts = |e| AppendOptions {
        leader_epoch: Some(e),
        ..AppendOptions::new(AppendOrigin::Client)
    };
    appended(log.append_with(&plain(&["a", "b"]), &opts(3)).expect("a"));
    appended(log.append_with(&plain(&["c"]), &opts(3)).expect("a"));
    appended(log.append_with(&plain(&["d"]), &opts(5)).expect("a"));
    let f = log.read(Offset(0), 1, Isolation::ReadUncommitted).expect("read");
    assert_eq!(
        RecordBatch::parse_exact(&f.bytes().expect("b"))
            .expect("b")
            .partition_leader_epoch(),
        3
    );
    assert_eq!(log.end_offset_for_epoch(3), Some((3, Offset(3))));
    assert_eq!(log.end_offset_for_epoch(4), Some((3, Offset(3))));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, Offset(4))));
    assert_eq!(log.end_offset_for_epoch(2), None);
    let text = std::fs::read_to_string(t.path().join("leader-epoch-checkpoint")).expect("checkpoint");
    assert_eq!(text, "0\n2\n3 0\n5 3\n");
    log.truncate_to(Offset(3)).expect("truncate");
    assert_eq!(log.leader_epochs().len(), 1);
}

#[test]
fn client_bytes_stored_unchanged_except_offset_and_leader_epoch() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &plain(&["first"])));
    let sent = idem(8, 1, 0, 3);
    let info = appended(
        log.append_with(
            &sent,
            &AppendOptions {
                leader_epoch: Some(9),
                ..AppendOptions::new(AppendOrigin::Client)
            },
        )
        .expect("a"),
    );
    let f = log
        .read(info.first_offset, 1, Isolation::ReadUncommitted)
        .expect("read");
    let stored = f.bytes().expect("bytes");
    assert_eq!(stored.len(), sent.len());
    assert_eq!(&stored[..8], &1i64.to_be_bytes());
    assert_eq!(&stored[12..16], &9i32.to_be_bytes());
    assert_eq!(&stored[8..12], &sent[8..12]);
    assert_eq!(
        &stored[16..],
        &sent[16..],
        "CRC and everything it covers untouched"
    );
}

#[test]
fn offset_by_timestamp() {
    let t = TestLog::with_config(config(&[("index.interval.bytes", "1")]));
    let log = t.open();
    for i in 0..10i64 {
        let b = BatchBuilder::new()
            .build(&[NewRecord::value(T0 + i * 100, b"v")])
            .expect("b");
        appended(client(&log, &b));
    }
    assert_eq!(
        log.offset_for_timestamp(T0 + 350, Isolation::ReadUncommitted)
            .expect("ts"),
        Some((Offset(4), T0 + 400))
    );
    assert_eq!(
        log.offset_for_timestamp(T0, Isolation::ReadUncommitted)
            .expect("ts"),
        Some((Offset(0), T0))
    );
    assert_eq!(
        log.offset_for_timestamp(T0 + 5000, Isolation::ReadUncommitted)
            .expect("ts"),
        None
    );
}

#[test]
fn log_append_time_is_stamped_with_crc_recomputed() {
    let t = TestLog::with_config(config(&[("message.timestamp.type", "LogAppendTime")]));
    let log = t.open();
    t.clock.set(T0 + 777);
    let info = appended(client(&log, &plain(&["a"])));
    assert_eq!(info.log_append_time, T0 + 777);
    let f = log.read(Offset(0), 1, Isolation::ReadUncommitted).expect("read");
    let bytes = f.bytes().expect("b");
    let b = RecordBatch::parse_exact(&bytes).expect("crc still valid");
    assert_eq!(b.max_timestamp(), T0 + 777);
    let (recs, _) = log
        .read_records(Offset(0), 1 << 10, Isolation::ReadUncommitted)
        .expect("r");
    assert_eq!(recs[0].timestamp, T0 + 777);
}

#[test]
fn time_retention_deletes_old_segments_below_the_high_watermark() {
    let t = TestLog::with_config(config(&[("segment.bytes", "300"), ("retention.ms", "60000")]));
    let log = t.open();
    for i in 0..10i64 {
        let b = BatchBuilder::new()
            .build(&[NewRecord::value(T0 + i * 10_000, b"0123456789")])
            .expect("b");
        appended(client(&log, &b));
    }
    let before = log.segments().len();
    assert!(before >= 3);
    // At T0 + 100 s, records older than T0 + 40 s are past retention.ms.
    t.clock.set(T0 + 100_000);
    let deleted = log.apply_retention().expect("retention");
    assert!(deleted >= 1);
    let start = log.log_start_offset();
    assert_eq!(start, log.segments()[0].base_offset);
    let (recs, _) = log
        .read_records(start, 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    assert!(recs
        .iter()
        .all(|r| r.timestamp >= T0 + 10_000 || r.offset >= start));
    assert!(matches!(
        log.read(Offset(0), 1, Isolation::ReadUncommitted),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // A clean reopen skips recovery.
    log.close().expect("close");
    let log = t.open();
    assert_eq!(log.stats().recoveries, 0);
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn replica_append_of_more_batches_than_iov_max() {
    // A follower appends a whole fetch response in one call. Each batch is written as two
    // parts (patched head and the rest), so 1,500 batches are 3,000 parts, more than one
    // pwritev takes (Linux's IOV_MAX is 1,024; eoslog hands it 64 at a time): the write must
    // still land whole and in order, and survive a reopen.
    let t = TestLog::new();
    let log = t.open();
    let mut fetched = Vec::new();
    for i in 0..1500i64 {
        let value = format!("replicated-{i}");
        fetched.extend(
            BatchBuilder::new()
                .base_offset(Offset(i))
                .build(&[NewRecord::value(T0, value.as_bytes())])
                .expect("batch"),
        );
    }
    appended(
        log.append(&fetched, AppendOrigin::Replication)
            .expect("replicate"),
    );
    assert_eq!(log.log_end_offset(), Offset(1500));
    drop(log);
    let log = t.open();
    assert_eq!(log.log_end_offset(), Offset(1500));
    let (recs, _) = log
        .read_records(Offset(0), 1 << 22, Isolation::ReadUncommitted)
        .expect("read");
    assert_eq!(recs.len(), 1500);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, Offset(i as i64));
        assert_eq!(r.value.as_deref(), Some(format!("replicated-{i}").as_bytes()));
    }
}
