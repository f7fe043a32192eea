//! Invariant: DeleteTopics answers a topic named more than once in one request as Kafka's
//! `ControllerApis.deleteTopics` does: one INVALID_REQUEST result ("Duplicate topic name.",
//! the message from v5), and the topic is not deleted; the other topics of the request are
//! deleted as asked.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

/// DeleteTopics at `version`: each result's name, error code and message, in order.
fn delete(addr: &str, version: i16, names: &[&str]) -> Vec<(String, i16, Option<String>)> {
    let mut r = DeleteTopicsRequest::default();
    r.topic_names = names.iter().map(|n| TopicName(s(n))).collect();
    r.timeout_ms = 10_000;
    let resp: DeleteTopicsResponse = call(&mut conn(addr), ApiKey::DeleteTopics, version, &r);
    resp.responses
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                t.error_code,
                t.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn exists(broker: &eoslog_broker::Broker, name: &str) -> bool {
    broker.store().topics().iter().any(|t| t.name == name)
}

#[test]
fn a_topic_named_twice_is_refused_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let b = broker.local_addr().to_string();
    for (version, message) in [
        (1, None),
        (4, None),
        (5, Some("Duplicate topic name.".to_owned())),
    ] {
        for name in ["a", "b", "c"] {
            broker.store().create_topic(name, 1, &[]).expect("topic");
        }
        let answers = delete(&b, version, &["a", "b", "a", "c", "a"]);
        assert_eq!(
            answers,
            vec![
                ("b".to_owned(), 0, None),
                ("c".to_owned(), 0, None),
                ("a".to_owned(), 42, message)
            ],
            "v{version}: one result for the name given three times, after the others"
        );
        assert!(
            exists(&broker, "a"),
            "v{version}: a duplicated name is not deleted"
        );
        assert!(!exists(&broker, "b") && !exists(&broker, "c"));
        assert_eq!(delete(&b, version, &["a"]), vec![("a".to_owned(), 0, None)]);
    }
    rt.block_on(broker.shutdown()).expect("shutdown");
}
