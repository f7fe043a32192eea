//! Invariant: `Log::set_config` changes an open log's config without a reopen and without
//! breaking what the old config built: a smaller dedup window still answers a retry of a
//! producer's last batch with its own offsets (and never an older retry with another
//! batch's), before and after a reopen; a lower producer-id cap is reached at the next new
//! producer; a clean running when compaction is turned off installs nothing, so a
//! delete-only log keeps every record; the high watermark mode cannot change.

mod common;
use common::*;

use std::sync::Arc;

use eoslog::{
    AppendOutcome, CleanerOptions, ConfigError, Isolation, Log, LogConfig, LogOptions, StdFileSystem,
};

fn with(log: &Log, key: &str, value: &str) -> LogConfig {
    let mut c = (*log.config()).clone();
    c.set(key, value).expect(key);
    c
}

#[test]
fn a_smaller_window_answers_retries_with_their_own_offsets() {
    let t = TestLog::new();
    let log = t.open();
    // An inline window packs each batch relative to the next newer one: the last two are
    // alike, and another producer's batch comes before the next, so that a stale packed
    // entry would decode to the sequences of a real batch at other offsets.
    let mut batches = Vec::new();
    let mut next = 0;
    for n in [3usize, 1, 4, 2, 2] {
        let info = appended(client(&log, &idem(1, 0, next, n)));
        batches.push((next, n, info.first_offset, info.last_offset));
        next += n as i32;
    }
    appended(client(&log, &idem(2, 0, 0, 3)));
    log.set_config(with(&log, "eoslog.producer.window", "1"))
        .expect("window 1");
    let last = appended(client(&log, &idem(1, 0, next, 2)));
    batches.push((next, 2, last.first_offset, last.last_offset));
    let check = |log: &Log, case: &str| {
        let &(seq, n, first, last) = batches.last().expect("last");
        match client(log, &idem(1, 0, seq, n)) {
            AppendOutcome::Duplicate(info) => {
                assert_eq!((info.first_offset, info.last_offset), (first, last), "{case}");
            }
            other => panic!("{case}: a retry of the last batch was {other:?}"),
        }
        // Older batches have left the window: whatever the answer, never a duplicate with
        // another batch's offsets.
        for &(seq, n, first, last) in &batches[..batches.len() - 1] {
            if let AppendOutcome::Duplicate(info) = client(log, &idem(1, 0, seq, n)) {
                assert_eq!(
                    (info.first_offset, info.last_offset),
                    (first, last),
                    "{case}: seq {seq}"
                );
            }
        }
    };
    check(&log, "open");
    log.close().expect("close");
    let options = LogOptions {
        fs: Arc::new(StdFileSystem),
        clock: Arc::new(t.clock.clone()),
    };
    let log = Log::open_with(t.path(), config(&[("eoslog.producer.window", "1")]), options).expect("reopen");
    check(&log, "reopened");
    assert_eq!(
        log.log_end_offset(),
        off(i64::from(next) + 5),
        "no retry was written twice"
    );
}

#[test]
fn a_lower_producer_cap_is_reached_at_the_next_new_producer() {
    let t = TestLog::new();
    let log = t.open();
    for pid in 1..=10 {
        appended(client(&log, &idem(pid, 0, 0, 1)));
    }
    assert_eq!(log.producers().len(), 10);
    log.set_config(with(&log, "eoslog.max.producer.ids", "3"))
        .expect("cap 3");
    assert_eq!(
        log.producers().len(),
        10,
        "nothing is evicted by the change itself"
    );
    appended(client(&log, &idem(11, 0, 0, 1)));
    let left: Vec<i64> = log.producers().iter().map(|p| p.producer_id.0).collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&11), "the new producer stays: {left:?}");
}

#[test]
fn a_clean_running_when_compaction_is_turned_off_installs_nothing() {
    let gate = Gate::new(GateOn::Read);
    let t = TestLog::with_config(config(&[("cleanup.policy", "compact")]));
    let log = gate.open(&t, is_segment);
    for i in 0..40 {
        append_keyed(&log, format!("k{}", i % 4).as_bytes(), Some(b"v"));
    }
    log.roll_segment().expect("roll");
    append_keyed(&log, b"k0", Some(b"v"));
    let before = values(&log, Isolation::ReadUncommitted).len();

    gate.arm();
    let log = Arc::new(log);
    let cleaning = {
        let log = log.clone();
        std::thread::spawn(move || log.clean(&CleanerOptions::default(), true))
    };
    gate.wait_entered();
    log.set_config(with(&log, "cleanup.policy", "delete"))
        .expect("delete only");
    gate.release();
    let cleaned = cleaning.join().expect("clean thread").expect("clean");
    assert!(
        cleaned.as_ref().is_none_or(|r| r.segments_written == 0),
        "a clean installed a copy into a delete-only log: {cleaned:?}"
    );
    assert_eq!(
        values(&log, Isolation::ReadUncommitted).len(),
        before,
        "every record of the delete-only log is kept"
    );
    let dir = t.path();
    assert!(files_with_suffix(&dir, ".cleaned").is_empty() && files_with_suffix(&dir, ".swap").is_empty());
}

#[test]
fn the_high_watermark_mode_cannot_change() {
    let t = TestLog::new();
    let log = t.open();
    let e = log
        .set_config(with(&log, "eoslog.high.watermark", "durable"))
        .expect_err("refused");
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "eoslog.high.watermark"),
        "{e:?}"
    );
    assert_eq!(
        log.config().get("eoslog.high.watermark").as_deref(),
        Some("log-end")
    );
}
