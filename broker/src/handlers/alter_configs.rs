//! IncrementalAlterConfigs and AlterConfigs (`kafka-configs --alter`, the admin clients'
//! `incremental_alter_configs` and `alter_configs`): a topic's own configs changed while its
//! partitions serve, through [`eoslog::Store::alter_topic_configs`] and
//! [`eoslog::Store::replace_topic_configs`]. Answered as Kafka 4's broker and controller
//! answer (`ConfigAdminManager.preprocess`, `ConfigurationControlManager`): one result per
//! resource in the request's order; a resource named twice, a key named twice or a null
//! value where one is needed refuses the resource with INVALID_REQUEST; a config the topic
//! would refuse is INVALID_CONFIG; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
//!
//! A BROKER resource changes the topics' defaults (`log.retention.ms`, `log.cleanup.policy`,
//! `message.max.bytes`, ... [`eoslog::is_dynamic_default`]) through
//! [`eoslog::Store::alter_dynamic_defaults`]: named `""`, the cluster-wide layer
//! (`--entity-default`); named by this node's id, the node's own. Every other broker config
//! is static (`--config` at start) and refused as Kafka refuses a config that is not dynamic.
//!
//! The synonyms in other units (`log.retention.hours`/`minutes`, `log.roll.hours`,
//! `log.roll.jitter.hours`) are static only, as in Kafka (its dynamic log configs are the
//! first name of each synonym list).
//!
//! Differences from Kafka: thread pools, listeners, quotas and the cleaner's settings are
//! not dynamic, nor are custom (unknown) keys, which Kafka stores; each is refused as a
//! static config; there are no BROKER_LOGGER, CLIENT_METRICS or GROUP configs; the internal
//! topics' configs are the store's and cannot be changed (INVALID_TOPIC_EXCEPTION); the
//! resource's name and existence are checked before its configs (Kafka's controller checks
//! an APPEND to a key that is not a list, then the values, then existence); an unknown
//! operation id is refused for every resource type with the message Kafka's broker gives a
//! BROKER resource; `cleanup.policy` may not become empty (Kafka 4 accepts an empty list);
//! a bad value's message is eoslog's (the code is Kafka's INVALID_CONFIG).

use std::collections::HashSet;

use eoslog::{ConfigError, DynamicScope, StoreError, TopicConfigOp};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{s, Ctx};
use crate::Shared;

/// Kafka's `ConfigResource.Type` ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// A resource's refusal: the error code and message.
type Refusal = (i16, Option<String>);

/// Kafka's `AlterConfigOp.OpType` id of SET (every config of an AlterConfigs).
const SET: i8 = 0;

/// Kafka's `AlterConfigOp.OpType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpType {
    Set,
    Delete,
    Append,
    Subtract,
}

impl OpType {
    fn from_id(id: i8) -> Option<OpType> {
        Some(match id {
            0 => OpType::Set,
            1 => OpType::Delete,
            2 => OpType::Append,
            3 => OpType::Subtract,
            _ => return None,
        })
    }

    fn kafka_name(self) -> &'static str {
        match self {
            OpType::Set => "SET",
            OpType::Delete => "DELETE",
            OpType::Append => "APPEND",
            OpType::Subtract => "SUBTRACT",
        }
    }
}

/// One resource of either request, read into one form.
struct Resource {
    resource_type: i8,
    name: StrBytes,
    /// Each config: its name, Kafka's op id and value.
    configs: Vec<(String, i8, Option<String>)>,
    /// AlterConfigs: the configs replace the topic's own.
    replace: bool,
}

/// The per-resource answers of either response type (the same four fields in each).
macro_rules! responses {
    ($ty:ty, $results:expr) => {
        $results
            .into_iter()
            .map(
                |(resource_type, name, (code, message)): (i8, StrBytes, Refusal)| {
                    let mut r = <$ty>::default();
                    r.resource_type = resource_type;
                    r.resource_name = name;
                    r.error_code = code;
                    r.error_message = message.map(s);
                    r
                },
            )
            .collect()
    };
}

/// The resources of either request type, each config with its op id (`$op`, given the
/// config as `$c`).
macro_rules! resources {
    ($resources:expr, $replace:expr, |$c:ident| $op:expr) => {
        $resources
            .into_iter()
            .map(|res| Resource {
                resource_type: res.resource_type,
                name: res.resource_name,
                configs: res
                    .configs
                    .into_iter()
                    .map(|$c| ($c.name.to_string(), $op, $c.value.map(|v| v.to_string())))
                    .collect(),
                replace: $replace,
            })
            .collect::<Vec<Resource>>()
    };
}

pub(crate) async fn incremental_alter_configs(
    ctx: &Ctx,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = resources!(r.resources, false, |c| c.config_operation);
    let results = answer(ctx, resources, r.validate_only).await;
    let mut out = IncrementalAlterConfigsResponse::default();
    out.responses = responses!(
        incremental_alter_configs_response::AlterConfigsResourceResponse,
        results
    );
    out
}

pub(crate) async fn alter_configs(ctx: &Ctx, r: AlterConfigsRequest) -> AlterConfigsResponse {
    // Every config is a SET, and the set replaces the topic's own.
    let resources = resources!(r.resources, true, |c| SET);
    let results = answer(ctx, resources, r.validate_only).await;
    let mut out = AlterConfigsResponse::default();
    out.responses = responses!(alter_configs_response::AlterConfigsResourceResponse, results);
    out
}

/// Every resource's answer, on a thread that may block (the topic file's fsyncs).
async fn answer(ctx: &Ctx, resources: Vec<Resource>, validate_only: bool) -> Vec<(i8, StrBytes, Refusal)> {
    ctx.blocking(move |sh| answer_all(sh, resources, validate_only))
        .await
}

/// Every resource's answer, in the request's order.
fn answer_all(sh: &Shared, resources: Vec<Resource>, validate_only: bool) -> Vec<(i8, StrBytes, Refusal)> {
    let mut seen = HashSet::new();
    let twice: HashSet<(i8, String)> = resources
        .iter()
        .map(|r| (r.resource_type, r.name.to_string()))
        .filter(|id| !seen.insert(id.clone()))
        .collect();
    resources
        .into_iter()
        .map(|r| {
            let result = if twice.contains(&(r.resource_type, r.name.to_string())) {
                Err(invalid_request("Each resource must appear at most once."))
            } else {
                answer_one(sh, &r, validate_only)
            };
            (r.resource_type, r.name, result.err().unwrap_or((0, None)))
        })
        .collect()
}

fn invalid_request(message: impl Into<String>) -> Refusal {
    (ResponseError::InvalidRequest.code(), Some(message.into()))
}

/// One resource: Kafka's broker checks first, then the change.
fn answer_one(sh: &Shared, r: &Resource, validate_only: bool) -> Result<(), Refusal> {
    let mut keys = HashSet::new();
    if !r.configs.iter().all(|(k, _, _)| keys.insert(k.as_str())) {
        return Err(invalid_request("Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = r
        .configs
        .iter()
        .filter(|(_, op, v)| OpType::from_id(*op) != Some(OpType::Delete) && v.is_none())
        .map(|(k, _, _)| k.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    let ops = r
        .configs
        .iter()
        .map(|(k, id, v)| {
            let op = OpType::from_id(*id)
                .ok_or_else(|| invalid_request(format!("Unknown operations type {id}")))?;
            Ok((k.as_str(), op, v.as_deref().unwrap_or_default()))
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    let name = r.name.as_str();
    match r.resource_type {
        TOPIC => {
            if name.is_empty() {
                return Err(invalid_request("Default topic resources are not allowed."));
            }
            super::topics::check_topic_name(name)?;
            alter(&sh.store, Target::Topic(name), &ops, r.replace, validate_only)
        }
        BROKER => {
            if !name.is_empty() {
                let id: i32 = name
                    .parse()
                    .map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
                if id != sh.config.node_id {
                    return Err(invalid_request(format!(
                        "Unexpected broker id, expected {}, but received {name}",
                        sh.config.node_id
                    )));
                }
            }
            // The topics' defaults (`log.*`) change dynamically; the broker's other configs
            // are read once, at start.
            let fixed: Vec<&str> = ops
                .iter()
                .map(|&(k, _, _)| k)
                .filter(|k| !eoslog::is_dynamic_default(k))
                .collect();
            if !fixed.is_empty() {
                return Err(invalid_request(format!(
                    "Cannot update these configs dynamically: Set({})",
                    fixed.join(", ")
                )));
            }
            let scope = if name.is_empty() {
                DynamicScope::Cluster
            } else {
                DynamicScope::Node
            };
            if r.configs.is_empty() && !r.replace {
                return Ok(());
            }
            alter(
                &sh.store,
                Target::Defaults(scope, name),
                &ops,
                r.replace,
                validate_only,
            )
        }
        BROKER_LOGGER if !r.replace => Err(invalid_request(
            "eoslog-broker has no BROKER_LOGGER resource: its log levels come from EOSLOG_LOG at start",
        )),
        CLIENT_METRICS | GROUP => Err(invalid_request(format!(
            "eoslog-broker has no configs of resource type {}",
            r.resource_type
        ))),
        other => Err(invalid_request(format!("Unknown resource type {other}"))),
    }
}

/// The request's ops as the store takes them.
fn store_ops<'a>(ops: &[(&'a str, OpType, &'a str)]) -> Vec<TopicConfigOp<'a>> {
    ops.iter()
        .map(|&(key, op, value)| match op {
            OpType::Set => TopicConfigOp::Set { key, value },
            OpType::Delete => TopicConfigOp::Delete { key },
            OpType::Append => TopicConfigOp::Append { key, items: value },
            OpType::Subtract => TopicConfigOp::Subtract { key, items: value },
        })
        .collect()
}

/// What a resource changes: a topic's own configs, or a layer of the topics' dynamic
/// defaults (a BROKER resource, every key checked dynamic).
#[derive(Clone, Copy)]
enum Target<'a> {
    Topic(&'a str),
    /// The layer, and the resource's name (`""` or the node id).
    Defaults(DynamicScope, &'a str),
}

fn alter(
    store: &eoslog::Store,
    target: Target<'_>,
    ops: &[(&str, OpType, &str)],
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let configs: Vec<(&str, &str)> = ops.iter().map(|&(k, _, v)| (k, v)).collect();
    let result = match (target, replace) {
        (Target::Topic(name), true) => store.replace_topic_configs(name, &configs, validate_only),
        (Target::Topic(name), false) => store.alter_topic_configs(name, &store_ops(ops), validate_only),
        (Target::Defaults(scope, _), true) => store.replace_dynamic_defaults(scope, &configs, validate_only),
        (Target::Defaults(scope, _), false) => {
            store.alter_dynamic_defaults(scope, &store_ops(ops), validate_only)
        }
    };
    result.map_err(|e| match target {
        Target::Topic(name) => refusal(name, ops, e),
        Target::Defaults(_, name) => defaults_refusal(name, ops, e),
    })
}

/// The list operation a refusal of `key` came from.
fn list_op(ops: &[(&str, OpType, &str)], key: &str) -> OpType {
    ops.iter()
        .find(|(k, _, _)| *k == key)
        .map_or(OpType::Append, |&(_, op, _)| op)
}

/// Kafka's broker answer to a refused change of the topics' defaults (its
/// `ConfigAdminManager` checks a BROKER resource and refuses with INVALID_REQUEST).
fn defaults_refusal(name: &str, ops: &[(&str, OpType, &str)], e: StoreError) -> Refusal {
    match e {
        StoreError::Config(ConfigError::NotAList { key }) => invalid_request(format!(
            "Config value {} is not allowed for config key: {key}",
            list_op(ops, &key).kafka_name().to_lowercase()
        )),
        StoreError::Config(e) => invalid_request(format!(
            "Invalid config value for resource ConfigResource(type=BROKER, name='{name}'): {e}"
        )),
        other => (other.kafka_error().code(), Some(other.to_string())),
    }
}

/// Kafka's answer to a refused change of topic `name` (or of the topics' defaults).
fn refusal(name: &str, ops: &[(&str, OpType, &str)], e: StoreError) -> Refusal {
    match e {
        StoreError::UnknownTopic { .. } => (
            ResponseError::UnknownTopicOrPartition.code(),
            Some(format!("The topic '{name}' does not exist.")),
        ),
        StoreError::Config(ConfigError::UnknownKey { key }) => (
            ResponseError::InvalidConfig.code(),
            Some(format!("Unknown topic config name: {key}")),
        ),
        StoreError::Config(ConfigError::NotAList { key }) => (
            ResponseError::InvalidConfig.code(),
            Some(format!(
                "Can't {} to key {key} because its type is not LIST.",
                list_op(ops, &key).kafka_name()
            )),
        ),
        other => (other.kafka_error().code(), Some(other.to_string())),
    }
}
