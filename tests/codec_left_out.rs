//! Invariant: a store written by a build with the zstd codec opens in a build without it
//! (this file runs only there: `cargo test --no-default-features --test codec_left_out`,
//! a stage of `.ci/run`). A topic's `compression.type=zstd`, and the same dynamic default,
//! are kept and described, also through changes of other keys; only the appends that
//! would need the codec are refused, with UNSUPPORTED_COMPRESSION_TYPE and nothing stored.
//! No creation or change may bring the codec in (a topic that would take it from the
//! defaults, a topic's or a default's value set to it, a new store config); one that sets
//! another codec is taken.
#![cfg(not(feature = "zstd"))]

mod common;
use common::*;

use std::path::Path;

use eoslog::{DynamicScope, KafkaError, ProduceContext, StoreError, TopicConfigOp};

/// Replaces `from` with `to` in the sealed text file at `path` and seals it again (its last
/// line is `crc <CRC-32C of every byte above>`), as a build with the codec wrote it.
fn rewrite_sealed(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    let body_end = text.trim_end_matches('\n').rfind('\n').expect("crc line") + 1;
    let body = text[..body_end].replace(from, to);
    assert_ne!(body, text[..body_end], "{from} in {}", path.display());
    let sealed = format!("{body}crc {}\n", eoslog::crc32c(body.as_bytes()));
    std::fs::write(path, sealed).expect("write");
}

fn produce(t: &TestStore, topic: &str) -> Result<eoslog::AppendOutcome, eoslog::ProduceError> {
    t.s()
        .produce(topic, 0, &plain(&["v"]), &ProduceContext::default())
}

#[test]
fn a_store_naming_a_codec_this_build_leaves_out_opens_and_refuses_only_what_needs_it() {
    let mut t = TestStore::new(&[]);
    t.s()
        .create_topic("t", 1, &[("compression.type", "uncompressed")])
        .expect("topic");
    t.s().create_topic("other", 1, &[]).expect("topic");
    t.s()
        .alter_dynamic_defaults(
            DynamicScope::Cluster,
            &[TopicConfigOp::Set {
                key: "compression.type",
                value: "uncompressed",
            }],
            false,
        )
        .expect("dynamic default");
    appended(produce(&t, "t").expect("produce"));
    t.close();
    let dir = t.dir.path().to_path_buf();
    rewrite_sealed(
        &dir.join("eoslog.topics").join("t.topic"),
        "compression.type=uncompressed",
        "compression.type=zstd",
    );
    rewrite_sealed(
        &dir.join("eoslog.dynamic-configs"),
        "compression.type=uncompressed",
        "compression.type=zstd",
    );
    t.open();

    // Kept and described.
    let described = |topic: &str| {
        t.s()
            .topic_configs(topic)
            .expect("configs")
            .into_iter()
            .find(|e| e.name == "compression.type")
            .expect("compression.type")
            .value
    };
    assert_eq!(described("t"), "zstd");
    assert_eq!(described("other"), "zstd", "the dynamic default");
    assert_eq!(
        t.s().dynamic_defaults(DynamicScope::Cluster),
        vec![("compression.type", "zstd".to_owned())]
    );

    // An append that needs the codec is refused, with nothing stored.
    let log = t.s().partition("t", 0).expect("partition");
    let end = log.log_end_offset();
    let err = produce(&t, "t").expect_err("needs zstd");
    assert_eq!(
        err.code_for(9),
        KafkaError::UnsupportedCompressionType.code(),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), end, "nothing stored");
    // What was stored before reads back.
    assert_eq!(
        values(&log, eoslog::Isolation::ReadCommitted),
        vec!["v".to_owned()]
    );

    // A change of other keys keeps the codec, on a topic and on the defaults' layer.
    let set = |key, value| TopicConfigOp::Set { key, value };
    t.s()
        .alter_topic_configs("t", &[set("retention.ms", "100000")], false)
        .expect("another key of the topic");
    t.s()
        .alter_dynamic_defaults(DynamicScope::Cluster, &[set("log.retention.ms", "200000")], false)
        .expect("another key of the layer");
    assert_eq!(described("t"), "zstd");
    // A new topic would take it from the defaults: refused, as every append to it would be.
    let refused = t
        .s()
        .create_topic("new", 1, &[])
        .expect_err("a topic that takes zstd");
    assert!(matches!(refused, StoreError::Config(_)), "{refused:?}");
    assert!(t.s().partition("new", 0).is_err(), "not created");

    // One that sets another codec is taken; setting the codec again is refused.
    t.s()
        .alter_topic_configs("t", &[set("compression.type", "producer")], false)
        .expect("another codec");
    appended(produce(&t, "t").expect("produce"));
    let refused = t
        .s()
        .alter_topic_configs("t", &[set("compression.type", "zstd")], false)
        .expect_err("zstd now");
    assert!(matches!(refused, StoreError::Config(_)), "{refused:?}");
    assert_eq!(described("t"), "producer");
    t.s()
        .alter_dynamic_defaults(
            DynamicScope::Cluster,
            &[set("compression.type", "producer")],
            false,
        )
        .expect("another default");
    appended(produce(&t, "other").expect("produce"));
    t.s()
        .alter_dynamic_defaults(DynamicScope::Node, &[set("compression.type", "zstd")], false)
        .expect_err("zstd as a default now");
    t.s().create_topic("new", 1, &[]).expect("a topic without zstd");
}

#[test]
fn a_new_store_config_naming_the_codec_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = eoslog::StoreConfig::default();
    assert!(config.set("compression.type", "zstd").is_err());
    // The field set directly, past `set`'s check.
    config.log_defaults.compression_type = Some(eoslog::Compression::Zstd);
    let refused = eoslog::Store::open(dir.path(), config).expect_err("zstd");
    assert!(matches!(refused, StoreError::Config(_)), "{refused:?}");
}
