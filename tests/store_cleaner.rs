//! Invariant: with `log.cleaner.threads` above 0 the store's maintenance never cleans, and
//! `Store::run_cleaner` cleans every due compacted log, once, however many threads run it at
//! the same time (each log is cleaned by one thread at a time); with 0 (the library's
//! default) maintenance cleans them itself, as before. A pass takes the due logs dirtiest
//! first (Kafka's cleaner grabs the filthiest log).

mod common;

use common::TestStore;
use eoslog::{AppendOrigin, AppendOutcome, BatchBuilder, NewRecord};

const TOPICS: usize = 4;

/// Appends `n` records over 4 keys to `topic`'s partition 0 and seals them in a segment.
fn append_keyed(t: &TestStore, topic: &str, n: usize) {
    let log = t.s().partition(topic, 0).expect("partition");
    for i in 0..n {
        let key = format!("k{}", i % 4);
        let value = format!("v{i}");
        let batch = BatchBuilder::new()
            .build(&[NewRecord::key_value(0, key.as_bytes(), value.as_bytes())])
            .expect("batch");
        let outcome = log.append(&batch, AppendOrigin::Client).expect("append");
        assert!(matches!(outcome, AppendOutcome::Appended(_)), "{outcome:?}");
    }
    log.roll_segment().expect("roll");
}

/// `TOPICS` compacted topics, each with 40 records over 4 keys in sealed segments.
fn dirty_store(threads: &str) -> TestStore {
    let t = TestStore::new(&[("log.cleaner.threads", threads), ("log.cleaner.backoff.ms", "0")]);
    for n in 0..TOPICS {
        let name = format!("c{n}");
        t.s()
            .create_topic(
                &name,
                1,
                &[
                    ("cleanup.policy", "compact"),
                    ("min.cleanable.dirty.ratio", "0.01"),
                ],
            )
            .expect("topic");
        append_keyed(&t, &name, 40);
    }
    t
}

#[test]
fn cleaner_threads_clean_each_due_log_once_and_maintenance_leaves_it_to_them() {
    let t = dirty_store("2");
    assert_eq!(
        t.s().run_maintenance().cleaned_logs,
        0,
        "maintenance does not clean"
    );
    let passes: Vec<eoslog::CleanerPassReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2).map(|_| scope.spawn(|| t.s().run_cleaner())).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("cleaner thread"))
            .collect()
    });
    assert_eq!(passes.iter().map(|p| p.failures).sum::<usize>(), 0, "{passes:?}");
    assert_eq!(
        passes.iter().map(|p| p.cleaned_logs).sum::<usize>(),
        TOPICS,
        "each due log cleaned exactly once: {passes:?}"
    );
    assert_eq!(t.s().run_cleaner().cleaned_logs, 0, "nothing is due any more");
    for n in 0..TOPICS {
        let log = t.s().partition(&format!("c{n}"), 0).expect("partition");
        let last = log.last_clean().expect("cleaned");
        assert!(last.records_kept < last.records_read, "{last:?}");
    }
}

#[test]
fn without_cleaner_threads_maintenance_cleans() {
    let t = dirty_store("0");
    assert_eq!(t.s().run_maintenance().cleaned_logs, TOPICS);
}

#[test]
fn a_pass_cleans_the_dirtiest_log_first() {
    let t = dirty_store("1");
    assert_eq!(t.s().run_cleaner().cleaned_logs, TOPICS);
    // New dirty data in different amounts: c1 the dirtiest, then c3, then c0; c2 none.
    for (topic, n) in [("c0", 8), ("c1", 80), ("c3", 24)] {
        append_keyed(&t, topic, n);
    }
    let ratio = |topic: &str| {
        let c = t
            .s()
            .partition(topic, 0)
            .expect("partition")
            .cleanability()
            .expect("cleanability");
        assert!(c.due, "{topic} {c:?}");
        c.dirty_ratio
    };
    assert!(ratio("c1") > ratio("c3") && ratio("c3") > ratio("c0"));
    let pass = t.s().run_cleaner();
    let order: Vec<&str> = pass.cleaned.iter().map(|tp| &*tp.topic).collect();
    assert_eq!(order, ["c1", "c3", "c0"], "{pass:?}");
}
