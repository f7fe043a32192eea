//! Invariant: a topic's partition count only grows (Kafka's CreatePartitions). The new
//! partitions take appends at once and survive a reopen and a crash with the rest; the
//! existing partitions keep their records, and a log open before the increase is the one
//! the store hands out after it. A count not above the current one, an unknown topic and an
//! internal topic are refused with Kafka's codes, and a refused or validate-only request
//! changes nothing.

mod common;

use std::sync::Arc;

use common::{appended, client, plain, values, TestStore};
use eoslog::{Isolation, KafkaError, StoreError};

fn partitions(t: &TestStore, topic: &str) -> u32 {
    t.s()
        .topics()
        .into_iter()
        .find(|x| x.name == topic)
        .expect("topic")
        .partitions
}

#[test]
fn new_partitions_take_appends_and_survive_a_reopen_and_a_crash() {
    let mut t = TestStore::new(&[]);
    t.s()
        .create_topic("t", 2, &[("cleanup.policy", "delete")])
        .expect("topic");
    let before = t.s().partition("t", 0).expect("partition 0");
    appended(client(&before, &plain(&["a"])));

    assert_eq!(t.s().check_increase_partitions("t", 4).expect("validates"), 2);
    assert_eq!(partitions(&t, "t"), 2, "a validation changes nothing");
    t.s().increase_partitions("t", 4).expect("increase");
    assert_eq!(partitions(&t, "t"), 4);
    let after = t.s().partition("t", 0).expect("partition 0");
    assert!(
        Arc::ptr_eq(&before, &after),
        "the open log of an existing partition is the one handed out after the increase"
    );
    appended(client(
        &t.s().partition("t", 3).expect("partition 3"),
        &plain(&["d"]),
    ));
    assert!(t.s().partition("t", 4).is_err(), "only 4 partitions");
    let configs = &t
        .s()
        .topics()
        .into_iter()
        .find(|x| x.name == "t")
        .expect("t")
        .configs;
    assert_eq!(configs, &[("cleanup.policy".to_owned(), "delete".to_owned())]);
    drop((before, after));

    for restart in ["reopen", "crash"] {
        if restart == "reopen" {
            t.reopen();
        } else {
            t.crash();
        }
        assert_eq!(partitions(&t, "t"), 4, "after a {restart}");
        let p0 = t.s().partition("t", 0).expect("partition 0");
        let p3 = t.s().partition("t", 3).expect("partition 3");
        assert_eq!(
            values(&p0, Isolation::ReadUncommitted),
            vec!["a"],
            "after a {restart}"
        );
        assert_eq!(
            values(&p3, Isolation::ReadUncommitted),
            vec!["d"],
            "after a {restart}"
        );
    }
}

#[test]
fn a_count_that_does_not_grow_an_unknown_and_an_internal_topic_are_refused() {
    let t = TestStore::new(&[]);
    t.s().create_topic("t", 3, &[]).expect("topic");
    for count in [2, 3] {
        for outcome in [
            t.s().check_increase_partitions("t", count).map(drop),
            t.s().increase_partitions("t", count),
        ] {
            let e = outcome.expect_err("no growth");
            assert!(
                matches!(
                    e,
                    StoreError::PartitionsNotIncreased { current: 3, requested, .. } if requested == count
                ),
                "{e:?}"
            );
            assert_eq!(e.kafka_error(), KafkaError::InvalidPartitions);
        }
    }
    let e = t
        .s()
        .increase_partitions("t", (1 << 20) + 1)
        .expect_err("too many");
    assert_eq!(e.kafka_error(), KafkaError::InvalidPartitions);
    let e = t.s().increase_partitions("nope", 5).expect_err("unknown");
    assert_eq!(e.kafka_error(), KafkaError::UnknownTopicOrPartition);
    let e = t
        .s()
        .increase_partitions("__consumer_offsets", 8)
        .expect_err("internal");
    assert!(matches!(e, StoreError::InvalidTopic { .. }), "{e:?}");
    assert_eq!(partitions(&t, "t"), 3, "nothing changed");
    assert_eq!(partitions(&t, "__consumer_offsets"), 4, "nothing changed");
}
