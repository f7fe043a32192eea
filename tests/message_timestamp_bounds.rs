//! Invariant: a CreateTime log refuses, with `INVALID_TIMESTAMP` and nothing stored, a
//! client record stamped more than `message.timestamp.before.max.ms` before its clock or
//! more than `message.timestamp.after.max.ms` after it (Kafka 4's defaults: no bound
//! behind, one hour ahead), naming the batch and the record; a record without a timestamp
//! (-1) is never judged, every record at fault is named (Kafka's `record_errors`), and a
//! timestamp error wins over a missing key as in Kafka. A
//! LogAppendTime log ignores the bounds but refuses a producer's batch that sets the
//! LogAppendTime bit itself; a CreateTime log stores such a batch as CreateTime, as Kafka's
//! leader does. A bound changed on the open log applies to the next append.

mod common;
use common::*;

use eoslog::{
    AppendError, BatchBuilder, InvalidTimestampReason, KafkaError, Log, NewRecord, ProducerEpoch, ProducerId,
    RecordRefusal, RefusedRecord, Sequence, TimestampType,
};

const HOUR: i64 = 3_600_000;

/// A plain batch of one record per timestamp.
fn stamped(ts: &[i64]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = ts.iter().map(|t| NewRecord::value(*t, b"v")).collect();
    BatchBuilder::new().build(&recs).expect("build")
}

/// `batch` with the LogAppendTime bit set and `max` as its max timestamp (CRC recomputed).
fn with_log_append_time(mut batch: Vec<u8>, max: i64) -> Vec<u8> {
    let attrs = i16::from_be_bytes([batch[21], batch[22]]) | 0x08;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&max.to_be_bytes());
    let crc = eoslog::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The refusal of appending `bytes`, with the log end checked unchanged.
fn refused(log: &Log, bytes: &[u8]) -> AppendError {
    let end = log.log_end_offset();
    let err = log
        .append(bytes, eoslog::AppendOrigin::Client)
        .expect_err("refused");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTimestamp, "{err}");
    assert_eq!(KafkaError::InvalidTimestamp.code(), 32);
    assert_eq!(log.log_end_offset(), end, "nothing stored");
    err
}

/// The records a refusal names, as (index, reason); panics on another kind of refusal.
fn faults(err: &AppendError) -> Vec<(Option<usize>, RecordRefusal)> {
    match err {
        AppendError::RecordsRefused { batch: 0, records } => records
            .iter()
            .map(|RefusedRecord { index, reason }| (*index, *reason))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Every stored batch's (timestamp type, max timestamp), each CRC checked.
fn stored(log: &Log) -> Vec<(TimestampType, i64)> {
    map_batches(log, |b| (b.timestamp_type(), b.max_timestamp()))
}

#[test]
fn kafka_4_defaults_refuse_only_records_more_than_an_hour_ahead() {
    let t = TestLog::new();
    let log = t.open();
    // A record from 1970, one without a timestamp, and one exactly an hour ahead.
    appended(client(&log, &stamped(&[0, -1, T0 + HOUR])));
    let err = refused(&log, &stamped(&[T0, T0 + HOUR + 1]));
    match faults(&err)[..] {
        [(
            Some(1),
            RecordRefusal::Timestamp(InvalidTimestampReason::OutOfRange {
                timestamp,
                earliest,
                latest,
            }),
        )] => {
            assert_eq!(timestamp, T0 + HOUR + 1);
            assert_eq!(latest, T0 + HOUR);
            assert_eq!(earliest, T0 - i64::MAX, "no bound behind");
        }
        ref other => panic!("unexpected {other:?}"),
    }
    // Every record at fault is named, in order; the ones in range are not.
    let err = refused(&log, &stamped(&[T0 + 2 * HOUR, T0, T0 + 3 * HOUR]));
    let named: Vec<Option<usize>> = faults(&err).iter().map(|(i, _)| *i).collect();
    assert_eq!(named, [Some(0), Some(2)], "{err:?}");
    assert!(err.to_string().contains("2 record(s) refused"), "{err}");
    // The clock moves on, and the same batch is now in range.
    t.clock.advance(1);
    appended(client(&log, &stamped(&[T0, T0 + HOUR + 1])));
    assert_eq!(log.log_end_offset(), off(5));
}

#[test]
fn both_bounds_are_inclusive_and_follow_a_live_change() {
    let t = TestLog::with_config(config(&[
        ("message.timestamp.before.max.ms", "1000"),
        ("message.timestamp.after.max.ms", "10"),
    ]));
    let log = t.open();
    appended(client(&log, &stamped(&[T0 - 1000, T0 + 10])));
    let err = refused(&log, &stamped(&[T0 - 1001]));
    assert!(
        matches!(
            faults(&err)[..],
            [(
                Some(0),
                RecordRefusal::Timestamp(InvalidTimestampReason::OutOfRange { earliest, latest, .. }),
            )] if earliest == T0 - 1000 && latest == T0 + 10
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("within"), "{err}");
    refused(&log, &stamped(&[T0 + 11]));
    let mut c = (*log.config()).clone();
    c.set("message.timestamp.before.max.ms", "5000").expect("set");
    log.set_config(c).expect("set_config");
    appended(client(&log, &stamped(&[T0 - 1001])));
    refused(&log, &stamped(&[T0 - 5001]));
}

#[test]
fn a_timestamp_error_wins_over_another_records_missing_key_and_leaves_no_producer_state() {
    let t = TestLog::with_config(config(&[("cleanup.policy", "compact")]));
    let log = t.open();
    let recs = [
        NewRecord {
            timestamp: T0,
            key: None,
            value: Some(b"v"),
            headers: Vec::new(),
        },
        NewRecord::key_value(T0 + 2 * HOUR, b"k", b"v"),
    ];
    let batch = BatchBuilder::idempotent(ProducerId(3), ProducerEpoch(0), Sequence(0))
        .build(&recs)
        .expect("build");
    let err = refused(&log, &batch);
    // Both records are named, each with its own rule, as in Kafka's `record_errors`.
    assert!(
        matches!(
            faults(&err)[..],
            [
                (Some(0), RecordRefusal::MissingKeyInCompactedLog),
                (
                    Some(1),
                    RecordRefusal::Timestamp(InvalidTimestampReason::OutOfRange { .. })
                ),
            ]
        ),
        "{err:?}"
    );
    // Nothing of the producer was recorded: its first sequence is still the one expected.
    let good = BatchBuilder::idempotent(ProducerId(3), ProducerEpoch(0), Sequence(0))
        .build(&[NewRecord::key_value(T0, b"k", b"v")])
        .expect("build");
    assert_eq!(appended(client(&log, &good)).first_offset, off(0));
    // A record without a key is not judged by its timestamp: INVALID_RECORD, as in Kafka.
    let keyless_future = BatchBuilder::new()
        .build(&[NewRecord {
            timestamp: T0 + 2 * HOUR,
            key: None,
            value: Some(b"v"),
            headers: Vec::new(),
        }])
        .expect("build");
    assert_eq!(
        log.append(&keyless_future, eoslog::AppendOrigin::Client)
            .expect_err("keyless")
            .kafka_error(),
        KafkaError::InvalidRecord
    );
    // Without the bad timestamp, the missing key is what is refused.
    let keyless = BatchBuilder::new().build(&recs[..1]).expect("build");
    assert_eq!(
        log.append(&keyless, eoslog::AppendOrigin::Client)
            .expect_err("keyless")
            .kafka_error(),
        KafkaError::InvalidRecord
    );
}

#[test]
fn without_record_validation_the_header_timestamps_are_judged() {
    let t = TestLog::with_config(config(&[("eoslog.validate.records", "false")]));
    let log = t.open();
    // The max timestamp comes from the header: a record past the bound is found there.
    let err = refused(&log, &stamped(&[T0, T0 + 2 * HOUR, T0]));
    assert!(
        matches!(faults(&err)[..], [(None, RecordRefusal::Timestamp(_))]),
        "{err:?}"
    );
    appended(client(&log, &stamped(&[T0, T0 + HOUR])));
    // The first record's timestamp is the header's base timestamp: judged behind.
    let mut c = (*log.config()).clone();
    c.set("message.timestamp.before.max.ms", "1000").expect("set");
    log.set_config(c).expect("set_config");
    let err = refused(&log, &stamped(&[T0 - 1001, T0]));
    assert!(
        matches!(faults(&err)[..], [(None, RecordRefusal::Timestamp(_))]),
        "{err:?}"
    );
}

#[test]
fn a_log_append_time_log_ignores_the_bounds_and_refuses_the_bit_from_a_producer() {
    let t = TestLog::with_config(config(&[
        ("message.timestamp.type", "LogAppendTime"),
        ("message.timestamp.after.max.ms", "0"),
    ]));
    let log = t.open();
    let info = appended(client(&log, &stamped(&[T0 + 10 * HOUR])));
    assert_eq!(info.log_append_time, T0);
    let err = refused(&log, &with_log_append_time(stamped(&[T0]), T0));
    assert!(
        matches!(
            faults(&err)[..],
            [(
                Some(0),
                RecordRefusal::Timestamp(InvalidTimestampReason::LogAppendTimeFromProducer)
            )]
        ),
        "{err:?}"
    );
    assert_eq!(stored(&log), vec![(TimestampType::LogAppendTime, T0)]);
}

#[test]
fn a_create_time_log_stores_a_producers_log_append_time_batch_as_create_time() {
    for validate in ["true", "false"] {
        let t = TestLog::with_config(config(&[("eoslog.validate.records", validate)]));
        let log = t.open();
        // Its records read the header's max timestamp, which is what the bounds judge.
        let lat = with_log_append_time(stamped(&[T0 - 5, T0 - 3]), T0 - 1);
        let info = appended(client(&log, &lat));
        assert_eq!((info.max_timestamp, info.log_append_time), (T0 - 1, -1));
        assert_eq!(
            stored(&log),
            vec![(TimestampType::CreateTime, T0 - 1)],
            "validate.records={validate}"
        );
        // A LogAppendTime header stamped past the bound is refused.
        refused(&log, &with_log_append_time(stamped(&[T0]), T0 + 2 * HOUR));
        drop(log);
        let log = t.open();
        assert_eq!(
            stored(&log),
            vec![(TimestampType::CreateTime, T0 - 1)],
            "after a reopen"
        );
    }
}
