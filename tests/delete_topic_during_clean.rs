//! Invariant: deleting a topic stops every writer of its logs before the directories go,
//! a clean in progress above all (Kafka aborts the cleaning of a deleted partition). A
//! clean held in the middle of its reads while the topic is deleted never writes again:
//! the deletion waits for it, it ends with `Closed`, and a topic created again under the
//! same name holds exactly its own records across a reopen, with no `.cleaned` or `.swap`
//! file left. A throttled clean waiting out its I/O budget does not hold the deletion up.

mod common;

use std::time::Duration;

use common::*;
use eoslog::{CleanerOptions, Isolation, StorageError};

#[test]
fn a_clean_in_progress_never_writes_into_a_topic_created_again_under_the_name() {
    let gate = Gate::new(GateOn::Read);
    let t = TestStore::with_fs(&[], gated_fs(&gate, is_segment));
    t.s()
        .create_topic("t", 1, &[("cleanup.policy", "compact")])
        .expect("topic");
    let old = t.s().partition("t", 0).expect("partition");
    for i in 0..40 {
        append_keyed(&old, format!("k{}", i % 4).as_bytes(), Some(b"old"));
    }
    old.roll_segment().expect("roll");
    append_keyed(&old, b"k0", Some(b"old"));

    // The clean stops inside its first read of a segment.
    gate.arm();
    let cleaning = {
        let log = old.clone();
        std::thread::spawn(move || log.clean(&CleanerOptions::default(), true))
    };
    gate.wait_entered();
    drop(old);

    // The gate opens 500 ms from now: a deletion that does not wait for the clean returns
    // before, and the topic is created again and written while the old clean still runs.
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            gate.release();
        })
    };
    let started = std::time::Instant::now();
    t.s().delete_topic("t").expect("deleted");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the deletion waits for the clean in progress"
    );
    t.s()
        .create_topic("t", 1, &[("cleanup.policy", "compact")])
        .expect("created again");
    let new = t.s().partition("t", 0).expect("new partition");
    append_keyed(&new, b"n", Some(b"new"));
    drop(new);
    opener.join().expect("opener");
    let cleaned = cleaning.join().expect("clean thread");
    assert!(
        matches!(cleaned, Err(StorageError::Closed)),
        "the clean stops once its log is retired: {cleaned:?}"
    );
    let mut t = t;
    t.reopen();
    let log = t.s().partition("t", 0).expect("reopened");
    assert_eq!(log.log_end_offset().0, 1, "only the new topic's record");
    assert_eq!(values(&log, Isolation::ReadCommitted), vec!["new".to_owned()]);
    let dir = t.s().partition_dir("t", 0);
    assert!(files_with_suffix(&dir, ".cleaned").is_empty() && files_with_suffix(&dir, ".swap").is_empty());
}

#[test]
fn a_throttled_clean_does_not_hold_up_the_deletion() {
    let t = TestStore::new(&[]);
    t.s()
        .create_topic("t", 1, &[("cleanup.policy", "compact")])
        .expect("topic");
    let log = t.s().partition("t", 0).expect("partition");
    for i in 0..40 {
        append_keyed(&log, format!("k{}", i % 4).as_bytes(), Some(b"old"));
    }
    log.roll_segment().expect("roll");
    append_keyed(&log, b"k0", Some(b"old"));
    // One byte a second: the clean's first wait is measured in hours.
    let options = CleanerOptions::default().io_max_bytes_per_second(1.0);
    let cleaning = std::thread::spawn(move || log.clean(&options, true));
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = std::sync::mpsc::channel();
    let store = std::sync::Arc::new(t);
    let deleting = {
        let store = store.clone();
        std::thread::spawn(move || {
            let _ = tx.send(store.s().delete_topic("t"));
        })
    };
    let deleted = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the deletion ends within 10 s, the throttled clean stopping");
    deleted.expect("deleted");
    deleting.join().expect("delete thread");
    let cleaned = cleaning.join().expect("clean thread");
    assert!(matches!(cleaned, Err(StorageError::Closed)), "{cleaned:?}");
}
