//! Invariant: with `segment.jitter.ms=J` a segment rolls once its first batch is older than
//! `segment.ms - j`, where `j` lies in `[0, min(J, segment.ms))` for that segment (Kafka's
//! `randomSegmentJitter`), is spread across partitions, and is the same after a reopen; with
//! the default 0 every segment rolls exactly past `segment.ms`.

mod common;
use common::*;

use eoslog::{BatchBuilder, Log, NewRecord};

const STEP: i64 = 10;

fn at(ts: i64) -> Vec<u8> {
    BatchBuilder::new()
        .build(&[NewRecord::value(ts, b"v")])
        .expect("build")
}

fn segments(log: &Log) -> usize {
    files_with_suffix(log.dir(), ".log").len()
}

/// Appends a batch every `STEP` ms of record time after a first one at `T0` until the log
/// rolls; returns the age of the segment's first batch at the roll. `reopen` reopens the log
/// after the first batch.
fn roll_age(t: &TestLog, name: &str, reopen: bool) -> i64 {
    let dir = t.dir.path().join(name);
    let mut log = t.open_at(&dir);
    appended(client(&log, &at(T0)));
    if reopen {
        drop(log);
        log = t.open_at(&dir);
    }
    for k in 1..=1000 {
        appended(client(&log, &at(T0 + STEP * k)));
        if segments(&log) > 1 {
            return STEP * k;
        }
    }
    panic!("{name} never rolled");
}

#[test]
fn jitter_spreads_rolls_below_segment_ms_and_survives_a_reopen() {
    let t = TestLog::with_config(config(&[("segment.ms", "2000"), ("segment.jitter.ms", "1000")]));
    let ages: Vec<i64> = (0..20).map(|i| roll_age(&t, &format!("t-{i}"), false)).collect();
    for age in &ages {
        assert!(
            *age > 1000 && *age <= 2000 + STEP,
            "rolled at {age} ms: outside (segment.ms - jitter, segment.ms]: {ages:?}"
        );
    }
    let mut distinct = ages.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 5, "jitter spreads the rolls: {ages:?}");
    // The same partition's segment gets the same jitter after a reopen.
    let again = TestLog::with_config(t.config.clone());
    assert_eq!(roll_age(&again, "t-3", true), ages[3]);
}

#[test]
fn without_jitter_every_segment_rolls_just_past_segment_ms() {
    let t = TestLog::with_config(config(&[("segment.ms", "2000")]));
    for i in 0..5 {
        assert_eq!(roll_age(&t, &format!("t-{i}"), false), 2000 + STEP);
    }
}

#[test]
fn the_jitter_never_reaches_segment_ms() {
    // A jitter bound above `segment.ms` is cut to it: a segment never rolls for a batch as
    // old as its first one, in any partition.
    let t = TestLog::with_config(config(&[("segment.ms", "100"), ("segment.jitter.ms", "100000")]));
    for i in 0..20 {
        let log = t.open_at(&t.dir.path().join(format!("t-{i}")));
        appended(client(&log, &at(T0)));
        appended(client(&log, &at(T0)));
        assert_eq!(segments(&log), 1, "t-{i} rolled with no time passed");
    }
}
