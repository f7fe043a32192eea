//! A store holds many partition logs in Kafka's `topic-partition` layout: topics and their
//! configs survive reopening, partitions open only when used (an idle partition costs no
//! file handle and no read), producer ids are never handed out twice across restarts, and
//! one directory has one owner.

mod common;

use common::{tp, TestStore};
use eoslog::{KafkaError, StorageError, Store, StoreConfig, StoreError};

#[test]
fn topics_are_created_listed_and_deleted_with_their_configs() {
    let mut t = TestStore::new(&[]);
    t.s()
        .create_topic("orders", 3, &[("segment.bytes", "1048576")])
        .expect("create");
    t.s().create_topic("events", 1, &[]).expect("create");
    let err = t.s().create_topic("orders", 1, &[]).expect_err("exists");
    assert_eq!(err.kafka_error(), KafkaError::TopicAlreadyExists);
    let err = t.s().create_topic("bad/name", 1, &[]).expect_err("invalid");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTopicException);
    let err = t
        .s()
        .create_topic("x", 1, &[("segment.bytez", "1")])
        .expect_err("config");
    assert_eq!(err.kafka_error(), KafkaError::InvalidConfig);
    let err = t.s().create_topic("y", 0, &[]).expect_err("partitions");
    assert_eq!(err.kafka_error(), KafkaError::InvalidPartitions);

    t.reopen();
    let topics = t.s().topics();
    let user: Vec<_> = topics
        .iter()
        .filter(|t| !t.internal)
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    assert_eq!(user, vec![("events", 1), ("orders", 3)]);
    let orders = topics.iter().find(|t| t.name == "orders").expect("orders");
    assert_eq!(
        orders.configs,
        vec![("segment.bytes".to_owned(), "1048576".to_owned())]
    );
    assert_eq!(
        t.s().partition("orders", 2).expect("open").config().segment_bytes,
        1 << 20,
        "the topic's config reaches its logs"
    );
    assert!(topics
        .iter()
        .any(|t| t.internal && t.name == "__transaction_state" && t.partitions == 4));

    t.s().delete_topic("orders").expect("delete");
    assert!(
        !t.dir.path().join("orders-2").exists(),
        "partition directories removed"
    );
    assert!(matches!(
        t.s().partition("orders", 0),
        Err(StoreError::UnknownTopic { .. })
    ));
    t.crash();
    assert!(
        t.s().topics().iter().all(|t| t.name != "orders"),
        "deletion is durable"
    );
    let err = t.s().delete_topic("__consumer_offsets").expect_err("internal");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTopicException);
}

/// Kafka refuses a topic whose name differs from an existing one's only in `.` against
/// `_`: their metric names would be the same.
#[test]
fn a_name_colliding_with_a_topic_in_dot_against_underscore_is_refused() {
    let mut t = TestStore::new(&[]);
    t.s().create_topic("a.b_c", 1, &[]).expect("create");
    assert_eq!(t.s().colliding_topic("a_b.c").as_deref(), Some("a.b_c"));
    assert_eq!(
        t.s().colliding_topic("a.b_c"),
        None,
        "a topic does not collide with itself"
    );
    assert_eq!(
        t.s().colliding_topic("a-b_c"),
        None,
        "only '.' and '_' are unified"
    );
    for name in ["a_b_c", "a.b.c", "a_b.c"] {
        let err = t.s().create_topic(name, 1, &[]).expect_err("collides");
        assert!(
            matches!(&err, StoreError::TopicCollides { topic, existing } if topic == name && existing == "a.b_c"),
            "{err:?}"
        );
        assert_eq!(err.kafka_error(), KafkaError::InvalidTopicException);
        assert_eq!(
            err.to_string(),
            format!("Topic '{name}' collides with existing topic: a.b_c"),
            "Kafka's message"
        );
    }
    let err = t.s().create_topic("a.b_c", 1, &[]).expect_err("exists");
    assert_eq!(
        err.kafka_error(),
        KafkaError::TopicAlreadyExists,
        "existing, not colliding"
    );
    t.s().create_topic("a-b_c", 1, &[]).expect("no collision");
    t.reopen();
    assert!(
        t.s().create_topic("a_b_c", 1, &[]).is_err(),
        "the rule holds after a reopen"
    );
}

#[test]
fn opening_a_store_opens_no_user_partition() {
    let mut t = TestStore::new(&[]);
    t.s().create_topic("idle", 50, &[]).expect("create");
    t.reopen();
    let dirs: Vec<_> = std::fs::read_dir(t.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .filter(|n| n.starts_with("idle-"))
        .collect();
    assert!(
        dirs.is_empty(),
        "no partition directory before first use: {dirs:?}"
    );
    let log = t.s().partition("idle", 7).expect("open");
    assert_eq!(log.log_end_offset().0, 0);
    assert!(t.dir.path().join("idle-7").is_dir());
    assert!(!t.dir.path().join("idle-8").exists());
    assert!(matches!(
        t.s().partition("idle", 50),
        Err(StoreError::UnknownPartition { partition: 50, .. })
    ));
}

#[test]
fn producer_ids_are_never_reused_across_restarts() {
    let mut t = TestStore::new(&[("eoslog.producer.id.block.size", "10")]);
    let mut seen = Vec::new();
    for _ in 0..25 {
        seen.push(t.s().allocate_producer_id().expect("pid").0);
    }
    t.crash();
    let next = t.s().allocate_producer_id().expect("pid").0;
    assert!(next > *seen.iter().max().expect("ids"), "{next} after {seen:?}");
    // A transactional id's producer id comes from the same allocator.
    let p = t
        .txns()
        .init_producer_id(Some("txn"), 60_000, None)
        .expect("init");
    assert!(p.producer_id.0 > next);
    seen.push(next);
    seen.push(p.producer_id.0);
    t.reopen();
    let after = t.s().allocate_producer_id().expect("pid").0;
    assert!(after > *seen.iter().max().expect("ids"));
}

#[test]
fn a_store_directory_has_one_owner() {
    let t = TestStore::new(&[]);
    match Store::open(t.dir.path(), t.config.clone()) {
        Err(StoreError::Storage(StorageError::Locked { .. })) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn internal_topic_partition_counts_are_fixed_at_creation() {
    let mut t = TestStore::new(&[]);
    t.close();
    let dir = t.dir.path().to_path_buf();
    let mut config = StoreConfig::default();
    config.set("offsets.topic.num.partitions", "4").expect("config");
    match Store::open(&dir, config) {
        Err(StoreError::PartitionCountChanged {
            stored: 4,
            configured: 50,
            ..
        }) => {}
        other => panic!("expected PartitionCountChanged, got {other:?}"),
    }
}

#[test]
fn clients_cannot_write_internal_topics_and_topics_cannot_time_out_transactions() {
    let t = TestStore::new(&[]);
    let bytes = common::plain(&["x"]);
    let err = t
        .s()
        .produce(
            "__transaction_state",
            0,
            &bytes,
            &eoslog::ProduceContext::default(),
        )
        .expect_err("internal");
    assert_eq!(err.kafka_error(), KafkaError::InvalidTopicException);
    let err = t
        .s()
        .create_topic("t", 1, &[("eoslog.transaction.timeout.ms", "1000")])
        .expect_err("refused");
    assert_eq!(err.kafka_error(), KafkaError::InvalidConfig);
    // A plain produce lands.
    t.s().create_topic("plain", 1, &[]).expect("create");
    let out = t
        .s()
        .produce("plain", 0, &bytes, &eoslog::ProduceContext::default())
        .expect("produce");
    assert!(out.info().is_some());
    assert_eq!(
        t.values(&tp("plain", 0), eoslog::Isolation::ReadCommitted),
        vec!["x"]
    );
}

#[test]
fn idle_partitions_beyond_the_open_limit_are_closed_and_reopen_on_use() {
    let t = TestStore::new(&[("eoslog.max.open.partitions", "3")]);
    t.s().create_topic("many", 10, &[]).expect("create");
    for p in 0..10 {
        let bytes = common::plain(&[&format!("v{p}")]);
        let out = t
            .s()
            .produce("many", p, &bytes, &eoslog::ProduceContext::default())
            .expect("produce");
        assert!(out.info().is_some());
        assert!(
            t.s().open_partition_count() <= 3,
            "{} open",
            t.s().open_partition_count()
        );
    }
    // A held log is never closed under its holder.
    let held = t.s().partition("many", 0).expect("open");
    for p in 1..10 {
        drop(t.s().partition("many", p).expect("open"));
    }
    assert_eq!(held.log_end_offset().0, 1);
    assert!(!held.is_poisoned());
    drop(held);
    // Every partition reopens with its data (closed cleanly: no recovery needed).
    for p in 0..10 {
        assert_eq!(
            t.values(&tp("many", p), eoslog::Isolation::ReadCommitted),
            vec![format!("v{p}")]
        );
        let log = t.s().partition("many", p).expect("open");
        assert_eq!(log.stats().recoveries, 0, "partition {p} was closed cleanly");
    }
}

#[test]
fn retention_runs_at_its_check_interval_and_other_maintenance_at_every_call() {
    // log.retention.check.interval.ms = 60 s: a run within the interval leaves segments past
    // retention.ms alone; the first run after it deletes them.
    let t = TestStore::new(&[
        ("log.retention.check.interval.ms", "60000"),
        ("log.retention.ms", "1000"),
        ("log.segment.bytes", "1024"),
    ]);
    t.s().create_topic("old", 1, &[]).expect("topic");
    let log = t.s().partition("old", 0).expect("log");
    for _ in 0..10 {
        let batch = eoslog::BatchBuilder::new()
            .build(&[eoslog::NewRecord::value(common::T0, &[b'x'; 300])])
            .expect("batch");
        assert!(log
            .append(&batch, eoslog::AppendOrigin::Client)
            .expect("append")
            .info()
            .is_some());
    }
    assert!(log.segments().len() > 2);
    // The first run checks retention (nothing is old yet) and starts the interval.
    assert_eq!(t.s().run_maintenance().logs_report.deleted_segments, 0);
    t.clock.advance(30_000);
    assert_eq!(
        t.s().run_maintenance().logs_report.deleted_segments,
        0,
        "inside the interval"
    );
    assert_eq!(log.log_start_offset().0, 0);
    t.clock.advance(30_000);
    assert!(
        t.s().run_maintenance().logs_report.deleted_segments > 0,
        "after the interval"
    );
    assert!(log.log_start_offset().0 > 0);
}
