//! CreateTopics, CreatePartitions, DeleteTopics and DeleteRecords: changes to topics, each
//! checked in the order of Kafka's controller and answered with its codes and messages.

use std::collections::{HashMap, HashSet};

use eoslog::{KafkaError, StoreError};
use indexmap::IndexSet;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::ResponseError;

use super::{s, topic_name, Ctx};

/// Kafka's `QuorumController.MAX_RECORDS_PER_USER_OP`: the most metadata records one
/// CreateTopics or CreatePartitions may write (a new topic is one record, each of its configs
/// one, each new partition one). It bounds what a single request makes the broker allocate.
const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// Kafka's answer (POLICY_VIOLATION) to a request past [`MAX_RECORDS_PER_USER_OP`]
/// (`EventHandlerExceptionInfo` for a `BoundedListTooLongException`).
const BATCH_TOO_LARGE: &str = "Unable to perform excessively large batch operation.";

/// Kafka's answer (INVALID_REQUEST) to a topic named twice in one request.
const DUPLICATE_TOPIC: &str = "Duplicate topic name.";

/// A refusal of one topic: the error code and message.
type Refusal = (i16, Option<String>);

fn refusal(error: ResponseError, message: impl Into<String>) -> Refusal {
    (error.code(), Some(message.into()))
}

/// The names given more than once, each once, in the order of its first copy.
fn duplicated<'a>(names: &[&'a str]) -> IndexSet<&'a str> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    names
        .iter()
        .filter(|name| counts.get(*name).is_some_and(|&n| n > 1))
        .copied()
        .collect()
}

/// CreateTopics, as Kafka's controller answers it (`ControllerApis.createTopics`,
/// `ReplicationControlManager.createTopics`): a name given twice gets one INVALID_REQUEST
/// result, after the others, and is not created; every other topic is checked by
/// [`check_new_topic`], with or without `validate_only`; if the topics that pass would write
/// more than [`MAX_RECORDS_PER_USER_OP`] records, nothing is created and every topic of the
/// request is answered POLICY_VIOLATION.
pub(crate) async fn create_topics(ctx: &Ctx, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let version = ctx.version;
    let node = ctx.shared.config.node_id;
    let any_replication = ctx.shared.config.accept_replication_factor;
    let results = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            let names: Vec<&str> = r.topics.iter().map(|t| t.name.0.as_str()).collect();
            let duplicates = duplicated(&names);
            let checked: Vec<(&str, Result<NewTopic, Refusal>)> = r
                .topics
                .iter()
                .filter(|t| !duplicates.contains(t.name.0.as_str()))
                .map(|t| {
                    (
                        t.name.0.as_str(),
                        check_new_topic(store, node, any_replication, t),
                    )
                })
                .collect();
            let records = checked
                .iter()
                .filter_map(|(_, c)| c.as_ref().ok())
                .fold(0usize, |n, t| n.saturating_add(t.records()));
            if records > MAX_RECORDS_PER_USER_OP {
                return names
                    .iter()
                    .map(|name| {
                        let too_large = refusal(ResponseError::PolicyViolation, BATCH_TOO_LARGE);
                        (name.to_string(), Err(too_large))
                    })
                    .collect();
            }
            // A real creation refuses a name colliding with one created just before it in
            // this request (the store checks under its lock); `validate_only` answers the
            // same. (Kafka checks only the topics that existed before the request.)
            let mut passed: Vec<&str> = Vec::new();
            let mut results: Vec<(String, Result<u32, Refusal>)> = checked
                .into_iter()
                .map(|(name, checked)| {
                    let result = checked.and_then(|t| {
                        if !r.validate_only {
                            return t.create(store, name);
                        }
                        match passed
                            .iter()
                            .find(|p| eoslog::Store::topic_names_collide(name, p))
                        {
                            Some(earlier) => Err(refusal(
                                ResponseError::InvalidTopicException,
                                format!("Topic '{name}' collides with existing topic: {earlier}"),
                            )),
                            None => Ok(t.count),
                        }
                    });
                    if result.is_ok() {
                        passed.push(name);
                    }
                    (name.to_owned(), result)
                })
                .collect();
            results.extend(duplicates.into_iter().map(|name| {
                let duplicate = refusal(ResponseError::InvalidRequest, DUPLICATE_TOPIC);
                (name.to_owned(), Err(duplicate))
            }));
            results
        })
        .await;
    let mut out = CreateTopicsResponse::default();
    out.topics = results
        .into_iter()
        .map(|(name, result)| {
            let mut t = CreatableTopicResult::default();
            t.name = topic_name(&name);
            // Kafka's success has no message (the default is an empty one).
            t.error_message = None;
            match result {
                Err((code, message)) => {
                    t.error_code = code;
                    if version >= 1 {
                        t.error_message = message.map(s);
                    }
                }
                Ok(count) if version >= 5 => {
                    t.num_partitions = count as i32;
                    t.replication_factor = 1;
                }
                Ok(_) => {}
            }
            t
        })
        .collect();
    out
}

/// A topic CreateTopics may create: its partition count and its own configs.
struct NewTopic {
    count: u32,
    configs: Vec<(String, String)>,
}

impl NewTopic {
    /// The metadata records Kafka's controller writes for it: the topic, each config set,
    /// each partition.
    fn records(&self) -> usize {
        let keys: HashSet<&str> = self.configs.iter().map(|(k, _)| k.as_str()).collect();
        (self.count as usize).saturating_add(keys.len()).saturating_add(1)
    }

    fn create(&self, store: &eoslog::Store, name: &str) -> Result<u32, Refusal> {
        let pairs: Vec<(&str, &str)> = self
            .configs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        store
            .create_topic(name, self.count, &pairs)
            .map(|()| self.count)
            .map_err(|e| create_error(name, e))
    }
}

/// The checks of one CreateTopics topic, with or without `validate_only`, in the order of
/// Kafka's `ReplicationControlManager.createTopics` and `createTopic`, with its codes and
/// messages: the name; an existing topic; a name colliding with an existing one (`.`
/// against `_`); (this broker's rule) a name starting with `__`; a config without a value;
/// the configs; then a manual assignment (no replication factor nor partition count beside
/// it, each partition once, on this broker alone, partitions 0 to n-1), or the replication
/// factor and partition count (-1: the defaults), a factor above 1 placed on this one
/// broker only with `eoslog.accept.replication.factor`.
fn check_new_topic(
    store: &eoslog::Store,
    node: i32,
    any_replication: bool,
    t: &CreatableTopic,
) -> Result<NewTopic, Refusal> {
    let name = t.name.0.as_str();
    check_topic_name(name)?;
    // Every topic has a partition 0.
    if store.has_partition(name, 0) {
        return Err(already_exists(name));
    }
    if let Some(existing) = store.colliding_topic(name) {
        return Err(refusal(
            ResponseError::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {existing}"),
        ));
    }
    if name.starts_with("__") {
        return Err(refusal(
            ResponseError::InvalidTopicException,
            format!("invalid topic name {name:?}: names starting with \"__\" are Kafka's internal topics"),
        ));
    }
    let nulls: Vec<&str> = t
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(refusal(
            ResponseError::InvalidConfig,
            format!("Null value not supported for topic configs: {}", nulls.join(",")),
        ));
    }
    let configs: Vec<(String, String)> = t
        .configs
        .iter()
        .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
        .collect();
    check_topic_configs(store, name, &configs)?;
    let count = if !t.assignments.is_empty() {
        let invalid_request = |message| Err(refusal(ResponseError::InvalidRequest, message));
        if t.replication_factor != -1 {
            return invalid_request(
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            );
        }
        if t.num_partitions != -1 {
            return invalid_request(
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            );
        }
        let mut partitions = HashSet::new();
        for a in &t.assignments {
            if !partitions.insert(a.partition_index) {
                return Err(refusal(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Found multiple manual partition assignments for partition {}",
                        a.partition_index
                    ),
                ));
            }
            check_replicas(&a.broker_ids, node)?;
        }
        let count = t.assignments.len();
        if (0..count).any(|p| !partitions.contains(&(p as i32))) {
            return Err(refusal(
                ResponseError::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ));
        }
        count as u32
    } else if t.replication_factor < -1 || t.replication_factor == 0 {
        return Err(refusal(
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    } else if t.num_partitions < -1 || t.num_partitions == 0 {
        return Err(refusal(
            ResponseError::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    } else {
        // Kafka's `StripedReplicaPlacer`, over the one broker registered.
        let factor = t.replication_factor;
        if factor > 1 && !any_replication {
            return Err(refusal(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {factor} time(s): The target replication \
                     factor of {factor} cannot be reached because only 1 broker(s) are registered."
                ),
            ));
        }
        if t.num_partitions == -1 {
            store.config().num_partitions
        } else {
            t.num_partitions as u32
        }
    };
    Ok(NewTopic { count, configs })
}

/// Kafka's `Topic.validate`: INVALID_TOPIC_EXCEPTION with its message.
pub(super) fn check_topic_name(name: &str) -> Result<(), Refusal> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_owned()
    } else if name == "." {
        "'.' is not allowed".to_owned()
    } else if name == ".." {
        "'..' is not allowed".to_owned()
    } else if name.encode_utf16().count() > 249 {
        format!("the length of '{name}' is longer than the max allowed length 249")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return Ok(());
    };
    Err(refusal(
        ResponseError::InvalidTopicException,
        format!("Topic name is invalid: {reason}"),
    ))
}

/// Whether a topic's own configs are valid over the store's defaults, as the store checks
/// them when it creates the topic: INVALID_CONFIG with the store's message if not.
fn check_topic_configs(
    store: &eoslog::Store,
    name: &str,
    configs: &[(String, String)],
) -> Result<(), Refusal> {
    let pairs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    store
        .check_topic_configs(name, &pairs)
        .map_err(|e| (ResponseError::InvalidConfig.code(), Some(e.to_string())))
}

/// Kafka's TOPIC_ALREADY_EXISTS answer.
fn already_exists(name: &str) -> Refusal {
    refusal(
        ResponseError::TopicAlreadyExists,
        format!("Topic '{name}' already exists."),
    )
}

/// A creation the store refused after the checks passed (a topic created meanwhile, storage).
fn create_error(name: &str, e: StoreError) -> Refusal {
    let code = match &e {
        StoreError::TopicExists { .. } => return already_exists(name),
        StoreError::InvalidPartitions { .. } => ResponseError::InvalidPartitions.code(),
        StoreError::Config(_) => ResponseError::InvalidConfig.code(),
        other => other.kafka_error().code(),
    };
    (code, Some(e.to_string()))
}

/// Kafka's `ReplicationControlManager.validateManualPartitionAssignment` on a cluster of
/// this broker alone: the replicas of one partition must be this broker, once.
fn check_replicas(broker_ids: &[BrokerId], node: i32) -> Result<(), Refusal> {
    let invalid = |message: String| Err(refusal(ResponseError::InvalidReplicaAssignment, message));
    if broker_ids.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".to_owned());
    }
    let mut sorted: Vec<i32> = broker_ids.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if id != node {
            return invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if previous == Some(id) {
            return invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            ));
        }
        previous = Some(id);
    }
    Ok(())
}

/// CreatePartitions (`kafka-topics --alter --partitions`): raises each topic's partition
/// count; with `validate_only`, only the checks. As Kafka's controller: a name given twice
/// gets one INVALID_REQUEST result and is not changed; then, per topic, an unknown topic,
/// a count that does not grow, a manual assignment of the wrong size and replicas other
/// than this broker are refused in that order, with Kafka's messages. Unlike Kafka, an
/// internal topic is refused (INVALID_TOPIC_EXCEPTION): the coordinators place their ids by
/// its partition count.
///
/// The request's new partitions are bounded by [`MAX_RECORDS_PER_USER_OP`] as Kafka bounds
/// them: the topic whose partitions would pass it, and every later one that adds any, is
/// answered UNKNOWN_SERVER_ERROR without a message (Kafka catches the overflow per topic),
/// and more than that many topics refuse the whole request (POLICY_VIOLATION). Unlike Kafka,
/// which keeps the partitions of the overflowing topic that fitted, that topic is left as it
/// was.
pub(crate) async fn create_partitions(ctx: &Ctx, r: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let validate_only = r.validate_only;
    let node = ctx.shared.config.node_id;
    let results = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            let names: Vec<&str> = r.topics.iter().map(|t| t.name.0.as_str()).collect();
            let duplicates = duplicated(&names);
            let topics: Vec<_> = r
                .topics
                .iter()
                .filter(|t| !duplicates.contains(t.name.0.as_str()))
                .collect();
            if topics.len() > MAX_RECORDS_PER_USER_OP {
                return names
                    .iter()
                    .map(|name| {
                        let too_large = refusal(ResponseError::PolicyViolation, BATCH_TOO_LARGE);
                        (name.to_string(), Err(too_large))
                    })
                    .collect();
            }
            let mut records = 0usize;
            let mut results: Vec<(String, Result<(), Refusal>)> = Vec::new();
            for t in topics {
                let name = t.name.0.to_string();
                let count = u32::try_from(t.count).unwrap_or(0);
                let result = store
                    .check_increase_partitions(&name, count)
                    .map_err(|e| increase_error(&name, e))
                    .and_then(|current| {
                        let added = count - current;
                        check_assignments(t, added, node)?;
                        if records.saturating_add(added as usize) > MAX_RECORDS_PER_USER_OP {
                            records = MAX_RECORDS_PER_USER_OP;
                            return Err((ResponseError::UnknownServerError.code(), None));
                        }
                        records += added as usize;
                        if validate_only {
                            Ok(())
                        } else {
                            store
                                .increase_partitions(&name, count)
                                .map_err(|e| increase_error(&name, e))
                        }
                    });
                results.push((name, result));
            }
            results.extend(duplicates.into_iter().map(|name| {
                let duplicate = refusal(ResponseError::InvalidRequest, DUPLICATE_TOPIC);
                (name.to_owned(), Err(duplicate))
            }));
            results
        })
        .await;
    let mut out = CreatePartitionsResponse::default();
    out.results = results
        .into_iter()
        .map(|(name, result)| {
            let mut t = CreatePartitionsTopicResult::default();
            t.name = topic_name(&name);
            if let Err((code, message)) = result {
                t.error_code = code;
                t.error_message = message.map(s);
            }
            t
        })
        .collect();
    out
}

/// A refused increase as Kafka's controller answers it (`ReplicationControlManager`).
fn increase_error(name: &str, e: StoreError) -> Refusal {
    let message = match &e {
        StoreError::UnknownTopic { .. } => None,
        StoreError::PartitionsNotIncreased {
            current, requested, ..
        } if current == requested => Some(format!("Topic already has {current} partition(s).")),
        StoreError::PartitionsNotIncreased {
            current, requested, ..
        } => Some(format!(
            "The topic {name} currently has {current} partition(s); {requested} would not be an increase."
        )),
        other => Some(other.to_string()),
    };
    (e.kafka_error().code(), message)
}

/// A manual assignment, if given, must place each of the `added` partitions on this broker
/// alone.
fn check_assignments(
    t: &kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic,
    added: u32,
    node: i32,
) -> Result<(), Refusal> {
    let Some(assignments) = &t.assignments else {
        return Ok(());
    };
    if assignments.len() != added as usize {
        return Err(refusal(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                assignments.len()
            ),
        ));
    }
    assignments
        .iter()
        .try_for_each(|a| check_replicas(&a.broker_ids, node))
}

/// DeleteTopics: a name given twice gets one INVALID_REQUEST result (Kafka's
/// `ControllerApis.deleteTopics`), after the others, and is not deleted.
pub(crate) async fn delete_topics(ctx: &Ctx, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let version = ctx.version;
    let names: Vec<String> = if version >= 6 {
        r.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect()
    } else {
        r.topic_names.iter().map(|n| n.0.to_string()).collect()
    };
    let results = ctx
        .blocking(move |sh| {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let duplicates = duplicated(&refs);
            let mut results: Vec<(String, Result<(), Refusal>)> = refs
                .iter()
                .filter(|n| !duplicates.contains(*n))
                .map(|n| {
                    let r = sh.store.delete_topic(n);
                    (
                        n.to_string(),
                        r.map_err(|e| (e.kafka_error().code(), Some(e.to_string()))),
                    )
                })
                .collect();
            results.extend(duplicates.into_iter().map(|name| {
                let duplicate = refusal(ResponseError::InvalidRequest, DUPLICATE_TOPIC);
                (name.to_owned(), Err(duplicate))
            }));
            results
        })
        .await;
    let mut out = DeleteTopicsResponse::default();
    out.responses = results
        .into_iter()
        .map(|(name, r)| {
            let mut t = DeletableTopicResult::default();
            t.name = Some(topic_name(&name));
            if let Err((code, message)) = r {
                t.error_code = code;
                if version >= 5 {
                    t.error_message = message.map(s);
                }
            }
            t
        })
        .collect();
    out
}

/// DeleteRecords: moves each partition's log start offset (-1: to the high watermark) and
/// deletes the segments wholly below it. As Kafka (`KafkaApis.handleDeleteRecordsRequest`,
/// `ReplicaManager.deleteRecordsOnLocalLog`, `Partition.deleteRecordsOnLeader`), checked in
/// this order: an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION); an internal topic,
/// whose records hold committed offsets and transaction state (INVALID_TOPIC_EXCEPTION); a
/// topic whose `cleanup.policy` lacks `delete` (POLICY_VIOLATION); then the offset.
pub(crate) async fn delete_records(ctx: &Ctx, r: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            r.topics
                .iter()
                .map(|t| {
                    let topic = t.name.0.as_str();
                    let mut tr = DeleteRecordsTopicResult::default();
                    tr.name = t.name.clone();
                    tr.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr = DeleteRecordsPartitionResult::default();
                            pr.partition_index = p.partition_index;
                            pr.low_watermark = -1;
                            let moved = if !store.has_partition(topic, p.partition_index) {
                                Err(KafkaError::UnknownTopicOrPartition.code())
                            } else if store.is_internal(topic) {
                                Err(ResponseError::InvalidTopicException.code())
                            } else {
                                store
                                    .partition(topic, p.partition_index)
                                    .map_err(|e| e.kafka_error().code())
                                    .and_then(|log| delete_before(&log, p.offset))
                            };
                            match moved {
                                Ok(start) => pr.low_watermark = start,
                                Err(code) => pr.error_code = code,
                            }
                            pr
                        })
                        .collect();
                    tr
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = DeleteRecordsResponse::default();
    out.topics = topics;
    out
}

/// One partition's DeleteRecords on its log: the new log start offset, or the error code.
fn delete_before(log: &eoslog::Log, offset: i64) -> Result<i64, i16> {
    if !log.config().cleanup_policy.delete {
        return Err(ResponseError::PolicyViolation.code());
    }
    let to = if offset == -1 {
        log.high_watermark().0
    } else {
        offset
    };
    if to < 0 {
        return Err(KafkaError::OffsetOutOfRange.code());
    }
    log.delete_records_before(eoslog::Offset(to))
        .map(|start| start.0)
        .map_err(|e| e.kafka_error().code())
}
