//! DescribeConfigs (`kafka-configs --describe`, the admin clients' `describe_configs`): a
//! topic's configs with the value its logs apply and where each comes from, and the
//! broker's own. Answered as Kafka's `ConfigHelper.describeConfigs` answers: one result per
//! resource in the request's order, an unknown topic as UNKNOWN_TOPIC_OR_PARTITION without
//! a message, a broker id other than this broker's (or not a number) as INVALID_REQUEST.
//!
//! A topic's configs are not read-only: AlterConfigs and IncrementalAlterConfigs change them
//! (`alter_configs.rs`), all but `eoslog.high.watermark` (fixed while its logs are open)
//! and `eoslog.transaction.verification` (the store's). Of the broker's, the topics'
//! defaults change dynamically (the cluster's layer, then the node's, over `--config`); the
//! others are read once at start.

use eoslog::{ConfigSource, DynamicScope, StoreError};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::{s, Ctx};
use crate::config::BrokerConfig;

/// Kafka's `ConfigResource.Type` ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// The topic configs a config change refuses ([`eoslog::Store::alter_topic_configs`]).
const TOPIC_READ_ONLY: &[&str] = &["eoslog.high.watermark", "eoslog.transaction.verification"];

/// Kafka's `ConfigSource` ids.
const TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

pub(crate) async fn describe_configs(ctx: &Ctx, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let (synonyms, version) = (r.include_synonyms, ctx.version);
    let results = ctx
        .blocking(move |sh| {
            // What every key is on a broker started with no `--config`: a value that differs
            // was configured (STATIC_BROKER_CONFIG), one that does not is DEFAULT_CONFIG.
            let defaults = Defaults(BrokerConfig::default().entries());
            r.resources
                .into_iter()
                .map(|resource| {
                    let configs = match resource.resource_type {
                        TOPIC => topic(&sh.store, &defaults, &resource, synonyms, version),
                        BROKER => broker(sh, &defaults, &resource, synonyms, version),
                        other => Err((
                            ResponseError::InvalidRequest.code(),
                            Some(format!("Unsupported resource type: {other}")),
                        )),
                    };
                    let mut out = DescribeConfigsResult::default();
                    out.resource_type = resource.resource_type;
                    out.resource_name = resource.resource_name;
                    match configs {
                        Ok(configs) => out.configs = configs,
                        Err((code, message)) => {
                            out.error_code = code;
                            out.error_message = message.map(s);
                        }
                    }
                    out
                })
                .collect()
        })
        .await;
    let mut out = DescribeConfigsResponse::default();
    out.results = results;
    out
}

/// A resource's refusal: the error code and message.
type Refusal = (i16, Option<String>);

/// Each broker config key with its value on a broker configured with nothing.
struct Defaults(Vec<(&'static str, String)>);

impl Defaults {
    fn of(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }
}

fn topic(
    store: &eoslog::Store,
    defaults: &Defaults,
    resource: &DescribeConfigsResource,
    synonyms: bool,
    version: i16,
) -> Result<Vec<DescribeConfigsResourceResult>, Refusal> {
    let entries = store
        .topic_configs(&resource.resource_name)
        .map_err(|e| match e {
            // Kafka's own answer carries no message.
            StoreError::UnknownTopic { .. } => (ResponseError::UnknownTopicOrPartition.code(), None),
            other => (other.kafka_error().code(), Some(other.to_string())),
        })?;
    Ok(entries
        .into_iter()
        .filter(|e| asked(resource, e.name))
        .map(|e| {
            // The broker config behind it: its value at start, and on a broker configured
            // with nothing (the broker's own defaults, which differ from the library's in
            // places); the dynamic layers over it.
            let behind = e.store_default.as_ref().map(|d| {
                let unconfigured = defaults.of(d.key).unwrap_or(&d.unconfigured);
                (d, unconfigured)
            });
            let configured = behind.is_some_and(|(d, unconfigured)| d.configured != unconfigured);
            let source = match e.source {
                ConfigSource::Topic => TOPIC_CONFIG,
                ConfigSource::DynamicNode => DYNAMIC_BROKER_CONFIG,
                ConfigSource::DynamicCluster => DYNAMIC_DEFAULT_BROKER_CONFIG,
                _ if configured => STATIC_BROKER_CONFIG,
                _ => DEFAULT_CONFIG,
            };
            let mut out = entry(e.name, e.value.clone(), source, version);
            out.read_only = TOPIC_READ_ONLY.contains(&e.name);
            if synonyms {
                // Most specific first: the topic's own value, the node's and the cluster's
                // dynamic defaults, the broker's configured default, the default.
                if e.source == ConfigSource::Topic {
                    out.synonyms.push(synonym(e.name, &e.value, TOPIC_CONFIG));
                }
                if let Some((d, unconfigured)) = behind {
                    if let Some(v) = &d.node {
                        out.synonyms.push(synonym(d.key, v, DYNAMIC_BROKER_CONFIG));
                    }
                    if let Some(v) = &d.cluster {
                        out.synonyms
                            .push(synonym(d.key, v, DYNAMIC_DEFAULT_BROKER_CONFIG));
                    }
                    if configured {
                        // Named as the broker was configured (`log.retention.hours=2`).
                        let (key, value) = d
                            .configured_as
                            .as_ref()
                            .map_or((d.key, d.configured.as_str()), |(k, v)| (*k, v.as_str()));
                        out.synonyms.push(synonym(key, value, STATIC_BROKER_CONFIG));
                    }
                    // Named as Kafka names its default (`log.retention.hours=168`).
                    let (key, value) = d
                        .unconfigured_as
                        .as_ref()
                        .filter(|_| unconfigured == d.unconfigured)
                        .map_or((d.key, unconfigured), |(k, v)| (*k, v.as_str()));
                    out.synonyms.push(synonym(key, value, DEFAULT_CONFIG));
                }
            }
            out
        })
        .collect())
}

fn broker(
    sh: &crate::Shared,
    defaults: &Defaults,
    resource: &DescribeConfigsResource,
    synonyms: bool,
    version: i16,
) -> Result<Vec<DescribeConfigsResourceResult>, Refusal> {
    let config = &sh.config;
    let name = resource.resource_name.as_str();
    let cluster = sh.store.dynamic_defaults(DynamicScope::Cluster);
    if name.is_empty() {
        // The cluster-wide dynamic defaults alone, as Kafka describes the default resource.
        return Ok(cluster
            .into_iter()
            .filter(|(k, _)| asked(resource, k))
            .map(|(k, v)| {
                let mut out = entry(k, v.clone(), DYNAMIC_DEFAULT_BROKER_CONFIG, version);
                out.read_only = false;
                if synonyms {
                    out.synonyms.push(synonym(k, &v, DYNAMIC_DEFAULT_BROKER_CONFIG));
                }
                out
            })
            .collect());
    }
    let id: i32 = name.parse().map_err(|_| {
        (
            ResponseError::InvalidRequest.code(),
            Some(format!("Broker id must be an integer, but it is: {name}")),
        )
    })?;
    if id != config.node_id {
        return Err((
            ResponseError::InvalidRequest.code(),
            Some(format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                config.node_id
            )),
        ));
    }
    let node = sh.store.dynamic_defaults(DynamicScope::Node);
    let layer = |layer: &[(&'static str, String)], k: &str| {
        layer.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone())
    };
    Ok(config
        .entries()
        .into_iter()
        .filter(|(k, _)| asked(resource, k))
        .map(|(k, v)| {
            let default = defaults.of(k);
            let static_source = if default == Some(v.as_str()) {
                DEFAULT_CONFIG
            } else {
                STATIC_BROKER_CONFIG
            };
            let (node_value, cluster_value) = (layer(&node, k), layer(&cluster, k));
            let (value, source) = match (&node_value, &cluster_value) {
                (Some(n), _) => (n.clone(), DYNAMIC_BROKER_CONFIG),
                (None, Some(c)) => (c.clone(), DYNAMIC_DEFAULT_BROKER_CONFIG),
                (None, None) => (v.clone(), static_source),
            };
            let mut out = entry(k, value, source, version);
            out.read_only = !eoslog::is_dynamic_default(k);
            if synonyms {
                out.synonyms
                    .extend(node_value.map(|n| synonym(k, &n, DYNAMIC_BROKER_CONFIG)));
                out.synonyms
                    .extend(cluster_value.map(|c| synonym(k, &c, DYNAMIC_DEFAULT_BROKER_CONFIG)));
                if static_source == STATIC_BROKER_CONFIG {
                    out.synonyms.push(synonym(k, &v, STATIC_BROKER_CONFIG));
                }
                // Named as Kafka names its default (`log.retention.hours=168`).
                out.synonyms.extend(default.map(|d| {
                    eoslog::default_in_other_units(k, d).map_or_else(
                        || synonym(k, d, DEFAULT_CONFIG),
                        |(k, d)| synonym(k, &d, DEFAULT_CONFIG),
                    )
                }));
            }
            out
        })
        .collect())
}

/// Whether the request asks for config `name` (no list: every config).
fn asked(resource: &DescribeConfigsResource, name: &str) -> bool {
    resource
        .configuration_keys
        .as_ref()
        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
}

fn entry(name: &str, value: String, source: i8, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default();
    if version >= 3 {
        out.config_type = config_type(name, &value);
    }
    out.name = s(name);
    out.value = Some(s(value));
    out.read_only = true;
    out.config_source = source;
    out
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    let mut out = DescribeConfigsSynonym::default();
    out.name = s(name);
    out.value = Some(s(value));
    out.source = source;
    out
}

/// Kafka's `ConfigType` id of a config (v3+): what its value is read as.
fn config_type(name: &str, value: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const DOUBLE: i8 = 6;
    const LIST: i8 = 7;
    // Kafka's INT configs among ours; every other whole number is a LONG.
    const INTS: &[&str] = &[
        "segment.bytes",
        "index.interval.bytes",
        "segment.index.bytes",
        "max.message.bytes",
        "producer.id.expiration.ms",
        "transaction.max.timeout.ms",
        "min.insync.replicas",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "num.partitions",
        "offsets.topic.num.partitions",
        "transaction.state.log.num.partitions",
        "offsets.topic.segment.bytes",
        "transaction.state.log.segment.bytes",
        "transactional.id.expiration.ms",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "offset.metadata.max.bytes",
        "offsets.retention.minutes",
        "log.cleaner.threads",
        "node.id",
        "broker.id",
        "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "socket.request.max.bytes",
        "max.connections",
        "log.segment.bytes",
        "log.index.interval.bytes",
        "log.index.size.max.bytes",
        "message.max.bytes",
    ];
    // Kafka's DOUBLE configs among ours (a whole value still prints as one: `1.0`).
    const DOUBLES: &[&str] = &[
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        "log.cleaner.io.max.bytes.per.second",
    ];
    if eoslog::is_list_config(name) {
        LIST
    } else if DOUBLES.contains(&name) {
        DOUBLE
    } else if value == "true" || value == "false" {
        BOOLEAN
    } else if value.parse::<i64>().is_ok() {
        if INTS.contains(&name) {
            INT
        } else {
            LONG
        }
    } else {
        STRING
    }
}
