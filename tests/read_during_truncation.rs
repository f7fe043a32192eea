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
