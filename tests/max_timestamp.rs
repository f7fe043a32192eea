//! Invariant: `Log::offset_of_max_timestamp` (ListOffsets MAX_TIMESTAMP, -3) answers as
//! Kafka's `UnifiedLog.fetchOffsetByTimestamp` and `Partition.fetchOffsetForTimestamp` do:
//! the first record carrying the log's largest timestamp (the earliest segment, batch and
//! record among equals), whether data or a transaction marker, committed or aborted; and
//! nothing at all when that record is not below the isolation's bound (never a smaller
//! timestamp instead). Records below the log start offset are not considered, and the answer
//! is the same after a reopen rebuilds what the segments keep.

mod common;
use common::*;
use eoslog::{
    BatchBuilder, CoordinatorEpoch, Isolation, Log, MarkerType, NewRecord, ProducerEpoch, ProducerId,
    Sequence, TxnMarker,
};

/// A plain batch of one record per timestamp (offsets from T0).
fn stamped(ts: &[i64]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = ts.iter().map(|t| NewRecord::value(T0 + t, b"v")).collect();
    BatchBuilder::new().build(&recs).expect("build")
}

/// An answer: offset and timestamp (from T0).
type Found = Option<(i64, i64)>;

fn max(log: &Log, isolation: Isolation) -> Found {
    log.offset_of_max_timestamp(isolation)
        .expect("max timestamp")
        .map(|(o, ts)| (o.0, ts - T0))
}

/// read_uncommitted's answer, then read_committed's.
fn both(log: &Log) -> (Found, Found) {
    (
        max(log, Isolation::ReadUncommitted),
        max(log, Isolation::ReadCommitted),
    )
}

fn end_txn(log: &Log, pid: i64, kind: MarkerType, ts: i64) -> i64 {
    appended(
        log.write_marker(&TxnMarker {
            producer_id: ProducerId(pid),
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker: kind,
            timestamp: Some(T0 + ts),
        })
        .expect("marker"),
    )
    .first_offset
    .0
}

#[test]
fn the_first_record_with_the_largest_timestamp_across_segments_and_the_log_start() {
    let t = TestLog::new();
    let log = t.open();
    assert_eq!(both(&log), (None, None), "an empty log");
    appended(client(&log, &stamped(&[1, 5, 3]))); // offsets 0-2
    log.roll_segment().expect("roll");
    appended(client(&log, &stamped(&[2, 9]))); // 3-4
    appended(client(&log, &stamped(&[9, 4]))); // 5-6
    log.roll_segment().expect("roll");
    appended(client(&log, &stamped(&[9, 7]))); // 7-8
    assert_eq!(
        both(&log),
        (Some((4, 9)), Some((4, 9))),
        "the first 9, not a later one"
    );
    log.close().expect("close");

    let log = t.open();
    assert_eq!(
        both(&log),
        (Some((4, 9)), Some((4, 9))),
        "the same after a reopen"
    );
    log.delete_records_before(off(5)).expect("delete records");
    assert_eq!(
        max(&log, Isolation::ReadUncommitted),
        Some((5, 9)),
        "offset 4 is below the log start; 5 is the first 9 left, in the segment holding the start"
    );
    log.delete_records_before(off(6)).expect("delete records");
    assert_eq!(
        max(&log, Isolation::ReadUncommitted),
        Some((7, 9)),
        "the segment holding the start has 4 at most from it"
    );
    log.delete_records_before(off(8)).expect("delete records");
    assert_eq!(max(&log, Isolation::ReadUncommitted), Some((8, 7)));
}

#[test]
fn a_largest_timestamp_above_the_stable_offset_answers_nothing_and_markers_and_aborted_data_count() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &stamped(&[1]))); // 0
    let recs = [NewRecord::value(T0 + 50, b"open")];
    let open = BatchBuilder::transactional(ProducerId(1), ProducerEpoch(0), Sequence(0))
        .build(&recs)
        .expect("build");
    appended(client(&log, &open)); // 1, undecided
    assert_eq!(
        both(&log),
        (Some((1, 50)), None),
        "read_committed: the largest is at the LSO, so nothing (not offset 0)"
    );
    let marker = end_txn(&log, 1, MarkerType::Commit, 60);
    assert_eq!(marker, 2);
    assert_eq!(
        both(&log),
        (Some((2, 60)), Some((2, 60))),
        "the COMMIT marker is the latest record"
    );

    let recs = [NewRecord::value(T0 + 100, b"aborted")];
    let aborted = BatchBuilder::transactional(ProducerId(2), ProducerEpoch(0), Sequence(0))
        .build(&recs)
        .expect("build");
    appended(client(&log, &aborted)); // 3
    end_txn(&log, 2, MarkerType::Abort, 70); // 4
    assert_eq!(
        both(&log),
        (Some((3, 100)), Some((3, 100))),
        "aborted data counts, as in Kafka"
    );
}

#[test]
fn the_largest_timestamp_of_an_unindexed_tail_survives_a_close_and_a_crash() {
    for crash in [false, true] {
        let t = TestLog::new();
        let log = t.open();
        // Small batches: the time index takes an entry only every 4 KiB.
        for i in 0..20 {
            appended(client(&log, &stamped(&[i])));
        }
        appended(client(&log, &stamped(&[500, 2])));
        appended(client(&log, &stamped(&[3])));
        assert_eq!(max(&log, Isolation::ReadUncommitted), Some((20, 500)));
        if crash {
            log.flush().expect("flush");
            drop(log);
        } else {
            log.close().expect("close");
        }
        let log = t.open();
        assert_eq!(
            max(&log, Isolation::ReadUncommitted),
            Some((20, 500)),
            "crash={crash}: the tail's maximum is known after the reopen"
        );
    }
}

#[test]
fn a_truncation_keeps_the_largest_timestamp_of_what_remains() {
    let t = TestLog::new();
    let log = t.open();
    for ts in [1, 9, 2, 30] {
        appended(client(&log, &stamped(&[ts]))); // offsets 0-3
    }
    assert_eq!(max(&log, Isolation::ReadUncommitted), Some((3, 30)));
    log.truncate_to(off(3)).expect("truncate");
    assert_eq!(
        max(&log, Isolation::ReadUncommitted),
        Some((1, 9)),
        "the kept records after the last index entry still count"
    );
    log.close().expect("close");
    let log = t.open();
    assert_eq!(
        max(&log, Isolation::ReadUncommitted),
        Some((1, 9)),
        "and after a reopen"
    );
}

/// `bytes` (one batch) with its header's max timestamp set to `ts` and a valid CRC: what a
/// client that miscomputes the header sends.
fn with_header_max(mut bytes: Vec<u8>, ts: i64) -> Vec<u8> {
    const MAX_TIMESTAMP: usize = 35; // baseOffset 8, length 4, epoch 4, magic 1, crc 4, attributes 2, lastOffsetDelta 4, baseTimestamp 8
    const CRC: usize = 17;
    const ATTRIBUTES: usize = 21;
    bytes[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = eoslog::crc32c(&bytes[ATTRIBUTES..]);
    bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// The max timestamp each stored batch's header holds, from T0.
fn stored_maxima(log: &Log) -> Vec<i64> {
    let read = log
        .read(off(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    let bytes = read.bytes().expect("bytes");
    eoslog::BatchIter::new(&bytes)
        .map(|b| {
            let (_, b) = b.expect("batch");
            b.validate_crc().expect("stored CRC valid");
            b.max_timestamp() - T0
        })
        .collect()
}

#[test]
fn a_create_time_header_that_disagrees_with_its_records_is_set_from_them_as_kafka_does() {
    let t = TestLog::new();
    let log = t.open();
    appended(client(&log, &with_header_max(stamped(&[4, 7, 2]), T0 + 1000))); // 0-2, claims 1000
    appended(client(&log, &with_header_max(stamped(&[5]), T0 + 1))); // 3, claims 1
    appended(client(&log, &stamped(&[6]))); // 4, right
    assert_eq!(
        stored_maxima(&log),
        vec![7, 5, 6],
        "each header carries its records' maximum"
    );
    assert_eq!(max(&log, Isolation::ReadUncommitted), Some((1, 7)));
    log.close().expect("close");
    let log = t.open();
    assert_eq!(
        max(&log, Isolation::ReadUncommitted),
        Some((1, 7)),
        "after a reopen"
    );

    // With record validation off the records are not read, and the header is kept.
    let t = TestLog::with_config(config(&[("eoslog.validate.records", "false")]));
    let log = t.open();
    appended(client(&log, &with_header_max(stamped(&[4, 7, 2]), T0 + 1000)));
    assert_eq!(stored_maxima(&log), vec![1000]);
}
