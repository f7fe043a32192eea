//! Invariant: `min.insync.replicas` is a topic config a store takes, keeps and shows, and,
//! as in Kafka since 3.7 (KAFKA-15583: the effective minimum is
//! `min(min.insync.replicas, replicas)`), it never refuses a produce to a partition of one
//! replica: a store takes every produce to a topic asking for 2, and a value below 1 is
//! refused at creation.

mod common;
use common::*;

use eoslog::{ConfigSource, ProduceContext};

#[test]
fn a_one_replica_store_takes_every_produce_whatever_the_topic_asks() {
    let t = TestStore::new(&[("min.insync.replicas", "3")]);
    t.s()
        .create_topic("two", 1, &[("min.insync.replicas", "2")])
        .expect("topic");
    t.s().create_topic("d", 1, &[]).expect("topic");
    for topic in ["two", "d"] {
        appended(
            t.s()
                .produce(topic, 0, &plain(&["v"]), &ProduceContext::default())
                .expect("produce"),
        );
    }
    let log = t.s().partition("two", 0).expect("partition");
    assert_eq!(log.config().min_insync_replicas, 2);
    assert_eq!(
        t.s()
            .partition("d", 0)
            .expect("partition")
            .config()
            .min_insync_replicas,
        3,
        "the store's default"
    );
    let entry = t
        .s()
        .topic_configs("two")
        .expect("configs")
        .into_iter()
        .find(|e| e.name == "min.insync.replicas")
        .expect("listed");
    assert_eq!((entry.value.as_str(), entry.source), ("2", ConfigSource::Topic));
    assert!(t
        .s()
        .create_topic("bad", 1, &[("min.insync.replicas", "0")])
        .is_err());
}
