//! Metadata, DescribeCluster and FindCoordinator: one broker leads every partition at leader
//! epoch 0 (the epoch stamped into every batch it appends), and coordinates every group and
//! transaction.

use std::collections::HashSet;

use eoslog::{KafkaError, StoreError};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::ResponseError;

use super::{s, topic_name, Ctx};

/// The leader epoch of every partition: the broker stamps it into each batch it appends and
/// reports it in Metadata and OffsetForLeaderEpoch, so clients' offset validation agrees.
pub(crate) const LEADER_EPOCH: i32 = 0;

pub(crate) async fn metadata(ctx: &Ctx, r: MetadataRequest) -> MetadataResponse {
    let version = ctx.version;
    let node = BrokerId(ctx.shared.config.node_id);
    if let Some(asked) = &r.topics {
        // As Kafka's `KafkaApis.handleTopicMetadataRequest`: before v12 every topic is asked
        // by name, without an id; a request that breaks this is refused whole.
        if version < 12 && asked.iter().any(|t| t.name.is_none() || !t.topic_id.is_nil()) {
            return refused_metadata(asked, ResponseError::InvalidRequest.code());
        }
        // From v12 a topic may be asked by id. The broker has no topic ids (it reports id
        // zero for every topic), so every non-zero id is unknown: as Kafka answers a request
        // with ids, one UNKNOWN_TOPIC_ID per distinct id, and the topics asked by name are
        // not looked at.
        let mut seen = HashSet::new();
        let unknown: Vec<MetadataResponseTopic> = asked
            .iter()
            .filter(|t| !t.topic_id.is_nil() && seen.insert(t.topic_id))
            .map(|t| {
                let mut u = MetadataResponseTopic::default();
                u.name = None;
                u.topic_id = t.topic_id;
                u.error_code = ResponseError::UnknownTopicId.code();
                u
            })
            .collect();
        if !unknown.is_empty() {
            let mut out = metadata_frame(ctx, node);
            out.topics = unknown;
            return out;
        }
        // Neither a name nor an id: Kafka fails on it; refused here as before v12.
        if asked.iter().any(|t| t.name.is_none()) {
            return refused_metadata(asked, ResponseError::InvalidRequest.code());
        }
    }
    let ops_asked = (
        r.include_cluster_authorized_operations,
        r.include_topic_authorized_operations,
    );
    // Before v4 a request may always create topics; from v4 the client says.
    let may_create = version < 4 || r.allow_auto_topic_creation;
    let requested: Option<Vec<String>> = match r.topics {
        // In v0 an empty list asks for every topic (Kafka's `MetadataRequest.isAllTopics`);
        // from v1 that is a null list, and an empty one asks for none.
        Some(ts) if ts.is_empty() && version == 0 => None,
        // A name asked twice is answered once, as Kafka reads the names into a set.
        Some(ts) => {
            let mut seen = HashSet::new();
            Some(
                ts.into_iter()
                    .filter_map(|t| t.name.map(|n| n.0.to_string()))
                    .filter(|n| seen.insert(n.clone()))
                    .collect(),
            )
        }
        None => None,
    };
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
    let mut out = metadata_frame(ctx, node);
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
    // v8+: the operations asked for, every one a broker without an authorizer allows
    // (the cluster's only up to v10, as Kafka's `handleTopicMetadataRequest`).
    if (8..=10).contains(&version) && ops_asked.0 {
        out.cluster_authorized_operations = CLUSTER_OPERATIONS;
    }
    if version >= 8 && ops_asked.1 {
        for t in &mut out.topics {
            t.topic_authorized_operations = TOPIC_OPERATIONS;
        }
    }
    out
}

/// The cluster id Metadata and DescribeCluster give.
const CLUSTER_ID: &str = "eoslog";

/// The operations Kafka allows on its CLUSTER resource (`AclEntry.supportedOperations`:
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE),
/// as the bit field an authorizer that allows everything reports.
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;

/// The operations Kafka allows on a TOPIC resource (READ, WRITE, CREATE, DELETE, ALTER,
/// DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS), as the same bit field.
const TOPIC_OPERATIONS: i32 = 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11;

/// Kafka's `EndpointType.BROKER` and `CONTROLLER`.
const BROKER_ENDPOINT: i8 = 1;
const CONTROLLER_ENDPOINT: i8 = 2;

/// DescribeCluster (the admin clients' `describe_cluster`, `kafka-cluster cluster-id`): the
/// cluster id, this broker, and itself as the controller, as a KRaft broker names one of its
/// live brokers there. As Kafka's broker: asked for the controllers' endpoint (v1+),
/// MISMATCHED_ENDPOINT_TYPE, for an unknown one UNSUPPORTED_ENDPOINT_TYPE; the cluster's authorized operations when asked, every one a
/// broker without an authorizer allows, else `i32::MIN`; there are no fenced brokers (v2).
pub(crate) fn describe_cluster(ctx: &Ctx, r: &DescribeClusterRequest) -> DescribeClusterResponse {
    let mut out = DescribeClusterResponse::default();
    if ctx.version >= 1 {
        out.endpoint_type = BROKER_ENDPOINT;
        if r.endpoint_type == CONTROLLER_ENDPOINT {
            out.error_code = ResponseError::MismatchedEndpointType.code();
            out.error_message = Some(s("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"));
            return out;
        }
        if r.endpoint_type != BROKER_ENDPOINT {
            out.error_code = ResponseError::UnsupportedEndpointType.code();
            out.error_message = Some(s(format!("Unknown endpoint type {}", r.endpoint_type)));
            return out;
        }
    }
    let node = BrokerId(ctx.shared.config.node_id);
    out.cluster_id = s(CLUSTER_ID);
    out.controller_id = node;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = node;
    b.host = s(ctx.shared.advertised.ip().to_string());
    b.port = i32::from(ctx.shared.advertised.port());
    out.brokers = vec![b];
    out.cluster_authorized_operations = if r.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
    } else {
        i32::MIN
    };
    out
}

/// A Metadata answer without topics: this broker, the cluster id and the controller.
fn metadata_frame(ctx: &Ctx, node: BrokerId) -> MetadataResponse {
    let version = ctx.version;
    let mut out = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = node;
    b.host = s(ctx.shared.advertised.ip().to_string());
    b.port = i32::from(ctx.shared.advertised.port());
    out.brokers = vec![b];
    if version >= 2 {
        out.cluster_id = Some(s(CLUSTER_ID));
    }
    if version >= 1 {
        out.controller_id = node;
    }
    out
}

/// A Metadata request refused whole, as Kafka's `MetadataRequest.getErrorResponse` answers
/// it: each topic asked, by its name (empty if none) and id, with `code`; no brokers.
fn refused_metadata(asked: &[MetadataRequestTopic], code: i16) -> MetadataResponse {
    let mut out = MetadataResponse::default();
    out.topics = asked
        .iter()
        .map(|t| {
            let mut u = MetadataResponseTopic::default();
            u.name = Some(t.name.clone().unwrap_or_else(|| topic_name("")));
            u.topic_id = t.topic_id;
            u.error_code = code;
            u
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
