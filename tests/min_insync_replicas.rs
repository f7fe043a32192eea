//! Invariant: a store is one replica, so a produce that asks for `acks=all` to a topic whose
//! `min.insync.replicas` is above 1 is refused with `NOT_ENOUGH_REPLICAS` and stores
//! nothing, as a Kafka partition with fewer in-sync replicas refuses it; the same produce
//! without `acks=all` is stored, and so is every produce once the config is back to 1 (a
//! live change, or the store-wide default `min.insync.replicas`).

mod common;
use common::*;

use eoslog::{KafkaError, ProduceContext, ProduceError, TopicConfigOp};

fn produce(t: &TestStore, topic: &str, acks_all: bool) -> Result<eoslog::AppendOutcome, ProduceError> {
    let ctx = ProduceContext {
        acks_all,
        ..Default::default()
    };
    t.s().produce(topic, 0, &plain(&["v"]), &ctx)
}

#[test]
fn acks_all_is_refused_while_the_topic_asks_for_more_replicas_than_one() {
    let t = TestStore::new(&[]);
    t.s()
        .create_topic("two", 1, &[("min.insync.replicas", "2")])
        .expect("topic");
    let err = produce(&t, "two", true).expect_err("refused");
    assert_eq!(err.kafka_error(), KafkaError::NotEnoughReplicas);
    assert_eq!(err.code_for(9), 19);
    assert!(
        matches!(
            &err,
            ProduceError::NotEnoughReplicas {
                partition: 0,
                min_insync_replicas: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let log = t.s().partition("two", 0).expect("partition");
    assert_eq!(log.log_end_offset(), off(0), "nothing stored");
    // acks=1 (or 0) does not wait for other replicas.
    appended(produce(&t, "two", false).expect("acks=1"));
    t.s()
        .alter_topic_configs(
            "two",
            &[TopicConfigOp::Set {
                key: "min.insync.replicas",
                value: "1",
            }],
            false,
        )
        .expect("alter");
    appended(produce(&t, "two", true).expect("acks=all after the change"));
    assert_eq!(log.log_end_offset(), off(2));
}

#[test]
fn the_store_default_applies_to_topics_without_their_own() {
    let t = TestStore::new(&[("min.insync.replicas", "3")]);
    t.s().create_topic("d", 1, &[]).expect("topic");
    t.s()
        .create_topic("own", 1, &[("min.insync.replicas", "1")])
        .expect("topic");
    assert!(matches!(
        produce(&t, "d", true),
        Err(ProduceError::NotEnoughReplicas {
            min_insync_replicas: 3,
            ..
        })
    ));
    appended(produce(&t, "own", true).expect("its own value"));
    assert!(t
        .s()
        .create_topic("bad", 1, &[("min.insync.replicas", "0")])
        .is_err());
}
