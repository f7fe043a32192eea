//! Invariant: a segment that leaves the log (retention, DeleteRecords, truncation, or replaced
//! by a clean) is never read as part of the log again, and its files do not outlive
//! `file.delete.delay.ms` by more than one maintenance pass: they wait under Kafka's
//! `.deleted` names until then, a clean close removes them, the next open removes them after
//! a crash, and a delay of 0 leaves none behind. Readers holding such a segment read on.

mod common;
use common::*;
use eoslog::{AppendOrigin, BatchBuilder, CleanerOptions, Isolation, Log, NewRecord, Offset};

/// One keyed record per batch; with `segment.bytes=100` each batch gets its own segment.
fn keyed(log: &Log, key: &str, value: &str) {
    let bytes = BatchBuilder::new()
        .build(&[NewRecord::key_value(T0, key.as_bytes(), value.as_bytes())])
        .expect("build");
    appended(log.append(&bytes, AppendOrigin::Client).expect("append"));
}

/// Opens `t`'s log and appends `records`, one batch (and segment) each.
fn filled(t: &TestLog, records: &[(&str, &str)]) -> Log {
    let log = t.open();
    for (k, v) in records {
        keyed(&log, k, v);
    }
    log
}

fn small_segments(extra: &[(&str, &str)]) -> TestLog {
    let mut pairs = vec![("segment.bytes", "100")];
    pairs.extend_from_slice(extra);
    TestLog::with_config(config(&pairs))
}

fn deleted_logs(t: &TestLog) -> Vec<String> {
    files_with_suffix(&t.path(), ".log.deleted")
}

fn name(base: i64, kind: &str) -> String {
    eoslog::file_name(base, kind)
}

#[test]
fn deleted_segments_wait_under_deleted_names_until_the_delay_has_passed() {
    let t = small_segments(&[("file.delete.delay.ms", "60000")]);
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    assert_eq!(log.segments().len(), 4, "one batch a segment");
    log.delete_records_before(Offset(2)).expect("delete records");
    assert_eq!(log.log_start_offset(), Offset(2));
    assert_eq!(
        deleted_logs(&t),
        vec![
            format!("{}.deleted", name(0, "log")),
            format!("{}.deleted", name(1, "log"))
        ]
    );
    // Neither the log's list nor its `.log` names hold them any more.
    assert_eq!(
        files_with_suffix(&t.path(), ".log"),
        vec![name(2, "log"), name(3, "log")]
    );
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["3", "4"]);
    t.clock.advance(59_999);
    log.run_maintenance().expect("maintenance");
    assert_eq!(deleted_logs(&t).len(), 2, "kept until the delay has passed");
    t.clock.advance(1);
    log.run_maintenance().expect("maintenance");
    assert!(
        files_with_suffix(&t.path(), ".deleted").is_empty(),
        "removed once due"
    );
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["3", "4"]);
}

#[test]
fn truncation_sets_the_cut_segments_aside_and_the_log_grows_again_past_their_names() {
    let t = small_segments(&[]);
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("c", "3")]);
    // Segment 1 stays, cut to empty; segment 2 goes.
    log.truncate_to(Offset(1)).expect("truncate");
    assert_eq!(deleted_logs(&t), vec![format!("{}.deleted", name(2, "log"))]);
    // A new segment takes the base the set-aside one had.
    for (k, v) in [("x", "9"), ("y", "10")] {
        keyed(&log, k, v);
    }
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["1", "9", "10"]);
    let first_aside = std::fs::read(t.path().join(format!("{}.deleted", name(2, "log")))).expect("aside");
    // Cut again within the delay: the new segment 2 is set aside under a numbered name, and
    // the first one set aside stays as it was.
    log.truncate_to(Offset(1)).expect("truncate");
    assert_eq!(
        files_with_suffix(&t.path(), ".log.1.deleted"),
        vec![format!("{}.1.deleted", name(2, "log"))]
    );
    assert_eq!(deleted_logs(&t), vec![format!("{}.deleted", name(2, "log"))]);
    assert_eq!(
        std::fs::read(t.path().join(format!("{}.deleted", name(2, "log")))).expect("aside"),
        first_aside
    );
    for (k, v) in [("x", "9"), ("y", "10")] {
        keyed(&log, k, v);
    }
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["1", "9", "10"]);
    assert_eq!(
        files_with_suffix(&t.path(), ".log"),
        vec![name(0, "log"), name(1, "log"), name(2, "log")]
    );
    t.clock.advance(60_000);
    log.run_maintenance().expect("maintenance");
    assert!(files_with_suffix(&t.path(), ".deleted").is_empty());
    assert_eq!(
        files_with_suffix(&t.path(), ".log"),
        vec![name(0, "log"), name(1, "log"), name(2, "log")],
        "removing the set-aside files left the new segments of the same bases alone"
    );
    drop(log);
    assert_eq!(
        values(&t.open(), Isolation::ReadUncommitted),
        vec!["1", "9", "10"]
    );
}

#[test]
fn a_clean_close_removes_the_files_set_aside() {
    let t = small_segments(&[]);
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("c", "3")]);
    log.delete_records_before(Offset(2)).expect("delete records");
    assert_eq!(deleted_logs(&t).len(), 2);
    log.close().expect("close");
    assert!(files_with_suffix(&t.path(), ".deleted").is_empty());
    assert_eq!(values(&t.open(), Isolation::ReadUncommitted), vec!["3"]);
}

#[test]
fn after_a_crash_the_next_open_removes_the_files_set_aside() {
    let t = small_segments(&[]);
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("c", "3")]);
    log.delete_records_before(Offset(2)).expect("delete records");
    assert_eq!(deleted_logs(&t).len(), 2);
    drop(log); // no close: as a crash leaves the directory
    let log = t.open();
    assert!(files_with_suffix(&t.path(), ".deleted").is_empty());
    assert_eq!(log.log_start_offset(), Offset(2));
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["3"]);
}

#[test]
fn a_delay_of_zero_unlinks_at_once() {
    let t = small_segments(&[("file.delete.delay.ms", "0")]);
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]);
    log.delete_records_before(Offset(2)).expect("delete records");
    log.truncate_to(Offset(3)).expect("truncate");
    assert!(files_with_suffix(&t.path(), ".deleted").is_empty());
    assert_eq!(
        files_with_suffix(&t.path(), ".log"),
        vec![name(2, "log"), name(3, "log")]
    );
    assert_eq!(values(&log, Isolation::ReadUncommitted), vec!["3"]);
}

#[test]
fn a_clean_sets_its_originals_aside_while_a_reader_holding_them_reads_on() {
    let t = TestLog::with_config(config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "100"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]));
    let log = filled(&t, &[("a", "1"), ("b", "2"), ("a", "3"), ("b", "4"), ("c", "5")]);
    // A fetch taken before the clean holds the original segments.
    let before = log
        .read(Offset(0), usize::MAX / 2, Isolation::ReadUncommitted)
        .expect("read");
    let bytes_before: Vec<Vec<u8>> = before.slices.iter().map(|s| s.read().expect("read")).collect();
    let report = log
        .clean(&CleanerOptions::default(), true)
        .expect("clean")
        .expect("cleaned");
    assert!(report.segments_read >= 2, "{report:?}");
    // The copy took the first base; the originals' files wait as `.deleted`.
    let aside = deleted_logs(&t);
    assert!(
        aside.contains(&format!("{}.deleted", name(0, "log"))),
        "{aside:?}"
    );
    assert_eq!(aside.len(), report.segments_read, "{aside:?}");
    let after: Vec<Vec<u8>> = before.slices.iter().map(|s| s.read().expect("read")).collect();
    assert_eq!(after, bytes_before, "the reader's view did not change under it");
    assert_eq!(values(&log, Isolation::ReadCommitted), vec!["3", "4", "5"]);
    // A second clean of the same base, within the delay, sets the first clean's copy aside
    // under a numbered name: the originals the first clean set aside stay as they were.
    let first_copy = std::fs::read(t.path().join(name(0, "log"))).expect("copy");
    let aside_path = |n: &str| t.path().join(format!("{}{n}.deleted", name(0, "log")));
    let first_original = std::fs::read(aside_path("")).expect("aside");
    assert_ne!(first_copy, first_original, "the copy holds a3, the original a1");
    keyed(&log, "c", "6");
    keyed(&log, "d", "7");
    log.clean(&CleanerOptions::default(), true)
        .expect("clean")
        .expect("cleaned");
    assert_eq!(std::fs::read(aside_path("")).expect("set aside"), first_original);
    assert_eq!(std::fs::read(aside_path(".1")).expect("set aside"), first_copy);
    assert_eq!(values(&log, Isolation::ReadCommitted), vec!["3", "4", "6", "7"]);
    t.clock.advance(60_000);
    log.run_maintenance().expect("maintenance");
    assert!(files_with_suffix(&t.path(), ".deleted").is_empty());
    drop(log);
    assert_eq!(
        values(&t.open(), Isolation::ReadCommitted),
        vec!["3", "4", "6", "7"]
    );
}

#[test]
fn the_broker_default_log_segment_delete_delay_ms_sets_the_topics_delay() {
    let mut t = TestStore::new(&[("log.segment.delete.delay.ms", "5000")]);
    t.s().create_topic("events", 1, &[]).expect("create");
    t.s()
        .create_topic("own", 1, &[("file.delete.delay.ms", "0")])
        .expect("create");
    assert_eq!(t.described("events", "file.delete.delay.ms").0, "5000");
    assert_eq!(
        t.described("own", "file.delete.delay.ms"),
        ("0".to_owned(), eoslog::ConfigSource::Topic)
    );
    t.reopen();
    assert_eq!(t.described("events", "file.delete.delay.ms").0, "5000");
    let err = t
        .s()
        .create_topic("bad", 1, &[("file.delete.delay.ms", "-1")])
        .expect_err("negative delay");
    assert!(err.to_string().contains("file.delete.delay.ms"), "{err}");
}
