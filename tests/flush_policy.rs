//! Invariant: Kafka's per-topic flush policy holds on a buffered log. With
//! `flush.messages=N` an append that leaves N or more offsets past the durable offset is
//! fsynced before it returns (so it is durable when acknowledged), and one that leaves fewer
//! is not; with `flush.ms=T` a maintenance run fsyncs what is not durable once T has passed
//! since the last group-commit fsync (or the open), and not before. With Kafka's defaults
//! (both `i64::MAX`) nothing is fsynced by either, and a change on the open log applies to
//! the next append and maintenance.

mod common;
use common::*;

use eoslog::Log;

fn durable(log: &Log) -> i64 {
    log.durable_offset().0
}

#[test]
fn flush_messages_fsyncs_the_append_that_reaches_the_count() {
    let t = TestLog::with_config(config(&[("flush.messages", "3")]));
    let log = t.open();
    appended(client(&log, &plain(&["a"])));
    appended(client(&log, &plain(&["b"])));
    assert_eq!(durable(&log), 0, "two offsets past the durable one: no flush yet");
    let info = appended(client(&log, &plain(&["c"])));
    assert_eq!(info.last_offset, off(2));
    assert_eq!(
        durable(&log),
        3,
        "the third flushed everything before it returned"
    );
    appended(client(&log, &plain(&["d", "e"])));
    assert_eq!(durable(&log), 3);
    // One batch may carry the log over the count by itself.
    appended(client(&log, &plain(&["f", "g", "h", "i"])));
    assert_eq!(durable(&log), 9);
    let fsyncs = log.stats().fsyncs;
    appended(client(&log, &plain(&["j"])));
    assert_eq!(log.stats().fsyncs, fsyncs, "no fsync below the count");
}

#[test]
fn flush_ms_fsyncs_at_maintenance_once_the_interval_has_passed() {
    let t = TestLog::with_config(config(&[("flush.ms", "1000")]));
    let log = t.open();
    appended(client(&log, &plain(&["a"])));
    t.clock.advance(999);
    log.run_maintenance().expect("maintenance");
    assert_eq!(durable(&log), 0, "999 ms after the open");
    t.clock.advance(1);
    log.run_maintenance().expect("maintenance");
    assert_eq!(durable(&log), 1, "1000 ms after the open");
    // The interval counts from that fsync.
    appended(client(&log, &plain(&["b"])));
    t.clock.advance(500);
    log.run_maintenance().expect("maintenance");
    assert_eq!(durable(&log), 1);
    t.clock.advance(500);
    log.run_maintenance().expect("maintenance");
    assert_eq!(durable(&log), 2);
    // Nothing to flush: no fsync however long it has been.
    let fsyncs = log.stats().fsyncs;
    t.clock.advance(10_000);
    log.run_maintenance().expect("maintenance");
    assert_eq!(log.stats().fsyncs, fsyncs);
}

#[test]
fn kafkas_defaults_never_flush_and_a_live_change_applies_next() {
    let t = TestLog::new();
    let log = t.open();
    assert_eq!(
        (log.config().flush_messages, log.config().flush_ms),
        (i64::MAX, i64::MAX)
    );
    for i in 0..50 {
        appended(client(&log, &plain(&[&i.to_string()])));
    }
    t.clock.advance(86_400_000); // a day: within retention.ms and segment.ms
    log.run_maintenance().expect("maintenance");
    assert_eq!(
        durable(&log),
        0,
        "the defaults leave flushing to the OS (Kafka's)"
    );
    let mut c = (*log.config()).clone();
    c.set("flush.messages", "1").expect("set");
    log.set_config(c).expect("set_config");
    appended(client(&log, &plain(&["now durable"])));
    assert_eq!(durable(&log), 51);
}
