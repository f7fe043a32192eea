//! Metadata, FindCoordinator, CreateTopics, CreatePartitions, DeleteTopics and
//! DeleteRecords: one broker leads every
//! partition at leader epoch 0 (the epoch stamped into every batch it appends).

use eoslog::{KafkaError, StoreError};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::{s, topic_name, Ctx};

/// The leader epoch of every partition: the broker stamps it into each batch it appends and
/// reports it in Metadata and OffsetForLeaderEpoch, so clients' offset validation agrees.
pub(crate) const LEADER_EPOCH: i32 = 0;

pub(crate) async fn metadata(ctx: &Ctx, r: MetadataRequest) -> MetadataResponse {
    let version = ctx.version;
    // Before v4 a request may always create topics; from v4 the client says.
    let may_create = version < 4 || r.allow_auto_topic_creation;
    let requested: Option<Vec<String>> = r.topics.map(|ts| {
        ts.into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect()
    });
    let topics = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            let known = store.topics();
            let names: Vec<String> = match requested {
                Some(names) => names,
                None => known.iter().map(|t| t.name.clone()).collect(),
            };
            names
                .into_iter()
                .map(|name| {
                    let mut found = known.iter().find(|t| t.name == name).cloned();
                    let mut error = 0;
                    if found.is_none() {
                        error = KafkaError::UnknownTopicOrPartition.code();
                        if may_create && store.config().auto_create_topics {
                            match store.create_topic(&name, store.config().num_partitions, &[]) {
                                Ok(()) | Err(StoreError::TopicExists { .. }) => {
                                    found = store.topics().into_iter().find(|t| t.name == name);
                                    error = 0;
                                }
                                Err(e) => error = e.kafka_error().code(),
                            }
                        }
                    }
                    (name, found.map(|t| (t.partitions, t.internal)), error)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let node = BrokerId(ctx.shared.config.node_id);
    let mut out = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = node;
    b.host = s(ctx.shared.advertised.ip().to_string());
    b.port = i32::from(ctx.shared.advertised.port());
    out.brokers = vec![b];
    if version >= 2 {
        out.cluster_id = Some(s("eoslog"));
    }
    if version >= 1 {
        out.controller_id = node;
    }
    out.topics = topics
        .into_iter()
        .map(|(name, found, error)| {
            let mut t = MetadataResponseTopic::default();
            t.name = Some(topic_name(&name));
            t.error_code = error;
            if let Some((count, internal)) = found {
                if version >= 1 {
                    t.is_internal = internal;
                }
                t.partitions = (0..count as i32)
                    .map(|i| {
                        let mut p = MetadataResponsePartition::default();
                        p.partition_index = i;
                        p.leader_id = node;
                        if version >= 7 {
                            p.leader_epoch = LEADER_EPOCH;
                        }
                        p.replica_nodes = vec![node];
                        p.isr_nodes = vec![node];
                        p
                    })
                    .collect();
            }
            t
        })
        .collect();
    out
}

pub(crate) fn find_coordinator(ctx: &Ctx, r: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let mut out = FindCoordinatorResponse::default();
    // Key type 0 is a group, 1 a transactional id; both live here.
    if r.key_type > 1 || r.key.is_empty() {
        out.error_code = if r.key_type > 1 {
            KafkaError::InvalidRequest.code()
        } else {
            KafkaError::InvalidGroupId.code()
        };
        out.node_id = BrokerId(-1);
        out.port = -1;
        return out;
    }
    out.node_id = BrokerId(ctx.shared.config.node_id);
    out.host = s(ctx.shared.advertised.ip().to_string());
    out.port = i32::from(ctx.shared.advertised.port());
    out
}

pub(crate) async fn create_topics(ctx: &Ctx, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let version = ctx.version;
    let validate_only = r.validate_only;
    let any_replication = ctx.shared.config.accept_replication_factor;
    let results = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            r.topics
                .into_iter()
                .map(|t| {
                    let name = t.name.0.to_string();
                    let count = if t.num_partitions == -1 {
                        if t.assignments.is_empty() {
                            store.config().num_partitions as i32
                        } else {
                            t.assignments.len() as i32
                        }
                    } else {
                        t.num_partitions
                    };
                    let result = if t.replication_factor > 1 && !any_replication {
                        Err((
                            ResponseError::InvalidReplicationFactor.code(),
                            format!("replication factor {} on a single broker", t.replication_factor),
                        ))
                    } else if count < 1 {
                        Err((
                            ResponseError::InvalidPartitions.code(),
                            format!("{count} partitions"),
                        ))
                    } else {
                        let configs: Vec<(String, String)> = t
                            .configs
                            .iter()
                            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                            .collect();
                        let pairs: Vec<(&str, &str)> =
                            configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        if validate_only {
                            check_new_topic(store, &name, &pairs)
                        } else {
                            store
                                .create_topic(&name, count as u32, &pairs)
                                .map_err(create_error)
                        }
                    };
                    (name, count, result)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = CreateTopicsResponse::default();
    out.topics = results
        .into_iter()
        .map(|(name, count, result)| {
            let mut t = CreatableTopicResult::default();
            t.name = topic_name(&name);
            if let Err((code, message)) = result {
                t.error_code = code;
                if version >= 1 {
                    t.error_message = Some(s(message));
                }
            } else if version >= 5 {
                t.num_partitions = count;
                t.replication_factor = 1;
            }
            t
        })
        .collect();
    out
}

fn create_error(e: StoreError) -> (i16, String) {
    let code = match &e {
        StoreError::TopicExists { .. } => ResponseError::TopicAlreadyExists.code(),
        StoreError::InvalidPartitions { .. } => ResponseError::InvalidPartitions.code(),
        StoreError::Config(_) => ResponseError::InvalidConfig.code(),
        other => other.kafka_error().code(),
    };
    (code, e.to_string())
}

/// CreatePartitions (`kafka-topics --alter --partitions`): raises each topic's partition
/// count; with `validate_only`, only the checks. As Kafka's controller: a name given twice
/// gets one INVALID_REQUEST result and is not changed; then, per topic, an unknown topic,
/// a count that does not grow, a manual assignment of the wrong size and replicas other
/// than this broker are refused in that order, with Kafka's messages. Unlike Kafka, an
/// internal topic is refused (INVALID_TOPIC_EXCEPTION): the coordinators place their ids by
/// its partition count.
pub(crate) async fn create_partitions(ctx: &Ctx, r: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let validate_only = r.validate_only;
    let results = ctx
        .blocking(move |sh| {
            let store = &sh.store;
            let count_of = |name: &TopicName| r.topics.iter().filter(|t| t.name == *name).count();
            let mut duplicated: Vec<String> = Vec::new();
            let mut results: Vec<(String, Result<(), Refusal>)> = Vec::new();
            for t in &r.topics {
                let name = t.name.0.to_string();
                if count_of(&t.name) > 1 {
                    if !duplicated.contains(&name) {
                        duplicated.push(name);
                    }
                    continue;
                }
                let count = u32::try_from(t.count).unwrap_or(0);
                let result = store
                    .check_increase_partitions(&name, count)
                    .map_err(|e| increase_error(&name, e))
                    .and_then(|current| check_assignments(t, count - current))
                    .and_then(|()| {
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
            let duplicate = || {
                Err((
                    ResponseError::InvalidRequest.code(),
                    Some("Duplicate topic name.".to_owned()),
                ))
            };
            results.extend(duplicated.into_iter().map(|name| (name, duplicate())));
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

/// A topic's CreatePartitions refusal: the error code and message.
type Refusal = (i16, Option<String>);

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
) -> Result<(), Refusal> {
    let Some(assignments) = &t.assignments else {
        return Ok(());
    };
    let invalid = |message: String| Err((ResponseError::InvalidReplicaAssignment.code(), Some(message)));
    if assignments.len() != added as usize {
        return invalid(format!(
            "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
            assignments.len()
        ));
    }
    match assignments.iter().find(|a| a.broker_ids != [BrokerId(0)]) {
        Some(a) => invalid(format!(
            "The manual partition assignment {:?} is not this broker's: broker 0 is the only one.",
            a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>()
        )),
        None => Ok(()),
    }
}

/// CreateTopics with `validate_only`: the checks a creation makes, nothing written.
fn check_new_topic(store: &eoslog::Store, name: &str, configs: &[(&str, &str)]) -> Result<(), (i16, String)> {
    if store.topics().iter().any(|t| t.name == name) {
        return Err((
            ResponseError::TopicAlreadyExists.code(),
            format!("topic {name} exists"),
        ));
    }
    let mut config = store.config().log_defaults.clone();
    for (k, v) in configs {
        config
            .set(k, v)
            .map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
    }
    Ok(())
}

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
            names
                .into_iter()
                .map(|n| {
                    let r = sh.store.delete_topic(&n);
                    (n, r.map_err(|e| (e.kafka_error().code(), e.to_string())))
                })
                .collect::<Vec<_>>()
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
                    t.error_message = Some(s(message));
                }
            }
            t
        })
        .collect();
    out
}

/// DeleteRecords: moves each partition's log start offset (-1: to the high watermark) and
/// deletes the segments wholly below it.
pub(crate) async fn delete_records(ctx: &Ctx, r: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = ctx
        .blocking(move |sh| {
            r.topics
                .iter()
                .map(|t| {
                    let mut tr = DeleteRecordsTopicResult::default();
                    tr.name = t.name.clone();
                    tr.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr = DeleteRecordsPartitionResult::default();
                            pr.partition_index = p.partition_index;
                            pr.low_watermark = -1;
                            let moved = sh
                                .store
                                .partition(t.name.0.as_str(), p.partition_index)
                                .map_err(|e| e.kafka_error().code())
                                .and_then(|log| {
                                    let to = if p.offset == -1 {
                                        log.high_watermark().0
                                    } else {
                                        p.offset
                                    };
                                    if to < 0 {
                                        return Err(KafkaError::OffsetOutOfRange.code());
                                    }
                                    log.delete_records_before(eoslog::Offset(to))
                                        .map_err(|e| e.kafka_error().code())
                                });
                            match moved {
                                Ok(start) => pr.low_watermark = start.0,
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
