//! Invariant: a read that meets a segment shortened by a concurrent `truncate_to` is not
//! corruption (which a Kafka-like broker answers with `KAFKA_STORAGE_ERROR` and takes the log
//! directory offline): the read returns what still exists, or `OFFSET_OUT_OF_RANGE`.
//! Issue #13, item 5.

mod common;
use common::*;
use eoslog::{Isolation, KafkaError, Offset, ReadError};

fn fill(log: &eoslog::Log, n: usize) {
    for i in 0..n {
        appended(client(log, &plain(&[&format!("v{i}")])));
    }
}

fn truncated_under(
    read: impl FnOnce(&eoslog::Log) -> Result<Vec<String>, ReadError> + Send,
) -> Result<Vec<String>, ReadError> {
    let t = TestLog::new();
    fill(&t.open(), 10);
    let gate = Gate::new(GateOn::Read);
    let log = gate.open(&t, is_segment);
    gate.arm();
    std::thread::scope(|s| {
        // The read takes the segment's size, then blocks on its first header read.
        let reader = s.spawn(|| read(&log));
        gate.wait_entered();
        log.truncate_to(Offset(2)).expect("truncate");
        gate.release();
        reader.join().expect("reader")
    })
}

#[test]
fn a_fetch_racing_a_truncation_answers_out_of_range_not_corrupt() {
    let result = truncated_under(|log| {
        log.read(Offset(7), 1 << 20, Isolation::ReadUncommitted)
            .and_then(|f| Ok(vec![format!("{} bytes", f.bytes()?.len())]))
    });
    match result {
        Err(e @ ReadError::OffsetOutOfRange { .. }) => {
            assert_eq!(e.kafka_error(), KafkaError::OffsetOutOfRange);
        }
        other => panic!("expected OFFSET_OUT_OF_RANGE, got {other:?}"),
    }
}

#[test]
fn a_record_read_racing_a_truncation_returns_what_still_exists() {
    let result = truncated_under(|log| {
        let (records, _) = log.read_records(Offset(0), 1 << 20, Isolation::ReadUncommitted)?;
        Ok(records
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap_or_default()).expect("utf8"))
            .collect())
    });
    assert_eq!(result.expect("not corruption"), vec!["v0", "v1"]);
}

/// Truncations and re-appends while readers fetch and read records from random offsets:
/// every read is served from one consistent state, so no read ever reports corruption, and a
/// read never returns a record the truncation removed.
#[test]
fn concurrent_reads_and_truncations_never_report_corruption() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = TestLog::new();
    let log = t.open();
    fill(&log, 20);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..300 {
                log.truncate_to(Offset(5 + round % 7)).expect("truncate");
                for i in 0..20 {
                    appended(client(&log, &plain(&[&format!("r{round}-{i}")])));
                }
            }
            done.store(true, Ordering::Release);
        });
        for reader in 0..2u64 {
            let (log, done) = (&log, &done);
            s.spawn(move || {
                let mut x = reader + 1;
                while !done.load(Ordering::Acquire) {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let from = Offset((x >> 33) as i64 % 30);
                    match log.read_records(from, 4096, Isolation::ReadUncommitted) {
                        Ok((records, _)) => {
                            let values: Vec<_> = records.iter().map(|r| r.offset.0).collect();
                            assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
                        }
                        Err(ReadError::OffsetOutOfRange { .. }) => {}
                        Err(e) => panic!("a read racing truncations failed: {e}"),
                    }
                    match log.read(from, 4096, Isolation::ReadUncommitted) {
                        Ok(f) => {
                            let _ = f.bytes().expect("bytes");
                        }
                        Err(ReadError::OffsetOutOfRange { .. }) => {}
                        Err(e) => panic!("a fetch racing truncations failed: {e}"),
                    }
                }
            });
        }
    });
}
