//! The transaction coordinator's requests (InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, TxnOffsetCommit) and the admin views of transactions
//! (DescribeProducers, DescribeTransactions, ListTransactions). The coordinator is the
//! store's; this layer decodes, calls it, and rewrites each error for the request's
//! version ([`eoslog::CoordinatorError::code_for`]: `PRODUCER_FENCED` becomes
//! `INVALID_PRODUCER_EPOCH` for clients that predate it, as aiokafka and kafkajs need).

use eoslog::{
    KafkaError, ListFilter, OffsetCommit, PartitionOffset, ProducerIdAndEpoch, TopicPartition, TxnApi,
    TxnOffsetCommit, TxnState, TxnVersion,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::{per_partition, s, topic_name, Asked, Ctx};

/// Transaction version 0/1: the versions of these APIs served here predate KIP-890's.
const TV: TxnVersion = TxnVersion::TV0;

pub(crate) async fn init_producer_id(ctx: &Ctx, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let version = ctx.version;
    let txn_id = r.transactional_id.map(|t| t.0.to_string());
    let expected = (version >= 3).then(|| ProducerIdAndEpoch::new(r.producer_id.0, r.producer_epoch));
    let timeout = r.transaction_timeout_ms;
    let answer = ctx
        .blocking(move |sh| {
            sh.store
                .transactions()
                .init_producer_id(txn_id.as_deref(), timeout, expected)
        })
        .await;
    let mut out = InitProducerIdResponse::default();
    match answer {
        Ok(p) => {
            out.producer_id = ProducerId(p.producer_id.0);
            out.producer_epoch = p.producer_epoch.0;
        }
        Err(e) => {
            out.error_code = e.code_for(TxnApi::InitProducerId, version);
            out.producer_id = ProducerId(-1);
            out.producer_epoch = -1;
        }
    }
    ctx.shared.data_arrived.notify_waiters();
    out
}

pub(crate) async fn add_partitions(ctx: &Ctx, r: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let version = ctx.version;
    let id = r.v3_and_below_transactional_id.0.to_string();
    let producer = ProducerIdAndEpoch::new(r.v3_and_below_producer_id.0, r.v3_and_below_producer_epoch);
    let partitions: Vec<TopicPartition> = r
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.name.0.as_str(), p))
        })
        .collect();
    // As Kafka's `handleAddPartitionsToTxnRequest`: partitions the broker does not have are
    // checked before the coordinator is asked; then each of them is UNKNOWN_TOPIC_OR_PARTITION
    // and every other OPERATION_NOT_ATTEMPTED (nothing is added). A coordinator's error goes
    // to every partition.
    let (unknown, answer) = ctx
        .blocking(move |sh| {
            let unknown: Vec<TopicPartition> = partitions
                .iter()
                .filter(|tp| !sh.store.has_partition(&tp.topic, tp.partition))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return (unknown, Ok(()));
            }
            let answer = sh
                .store
                .transactions()
                .add_partitions(&id, producer, &partitions, TV);
            (unknown, answer)
        })
        .await;
    let code_of = |tp: &TopicPartition| match &answer {
        _ if unknown.contains(tp) => KafkaError::UnknownTopicOrPartition.code(),
        _ if !unknown.is_empty() => KafkaError::OperationNotAttempted.code(),
        Ok(()) => 0,
        Err(e) => e.code_for(TxnApi::AddPartitionsToTxn, version),
    };
    let mut out = AddPartitionsToTxnResponse::default();
    for t in &r.v3_and_below_topics {
        let mut result = AddPartitionsToTxnTopicResult::default();
        result.name = t.name.clone();
        result.results_by_partition = t
            .partitions
            .iter()
            .map(|&p| {
                let mut pr = AddPartitionsToTxnPartitionResult::default();
                pr.partition_index = p;
                pr.partition_error_code = code_of(&TopicPartition::new(t.name.0.as_str(), p));
                pr
            })
            .collect();
        out.results_by_topic_v3_and_below.push(result);
    }
    out
}

pub(crate) async fn add_offsets(ctx: &Ctx, r: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let version = ctx.version;
    let id = r.transactional_id.0.to_string();
    let group = r.group_id.0.to_string();
    let producer = ProducerIdAndEpoch::new(r.producer_id.0, r.producer_epoch);
    let answer = ctx
        .blocking(move |sh| sh.store.transactions().add_offsets(&id, producer, &group, TV))
        .await;
    let mut out = AddOffsetsToTxnResponse::default();
    if let Err(e) = answer {
        out.error_code = e.code_for(TxnApi::AddOffsetsToTxn, version);
    }
    out
}

pub(crate) async fn end_txn(ctx: &Ctx, r: EndTxnRequest) -> EndTxnResponse {
    let version = ctx.version;
    let id = r.transactional_id.0.to_string();
    let producer = ProducerIdAndEpoch::new(r.producer_id.0, r.producer_epoch);
    let commit = r.committed;
    let answer = ctx
        .blocking(move |sh| sh.store.transactions().end_txn(&id, producer, commit, TV))
        .await;
    // The markers are written: read_committed fetches waiting on the LSO look again.
    ctx.shared.data_arrived.notify_waiters();
    let mut out = EndTxnResponse::default();
    if let Err(e) = answer {
        tracing::debug!(target: "eoslog_broker", error = %e, commit, "EndTxn refused");
        out.error_code = e.code_for(TxnApi::EndTxn, version);
    }
    out
}

pub(crate) async fn txn_offset_commit(ctx: &Ctx, r: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let version = ctx.version;
    let asked: Asked = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let answers = ctx
        .blocking(move |sh| {
            let offsets: Vec<PartitionOffset<'_>> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| PartitionOffset {
                        partition: TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.as_str()),
                    })
                })
                .collect();
            // Before v3 a request carries no member: Kafka's "no generation" commit.
            let (generation, member, instance) = if version >= 3 {
                (
                    r.generation_id,
                    r.member_id.as_str(),
                    r.group_instance_id.as_ref().map(|i| i.as_str()),
                )
            } else {
                (-1, "", None)
            };
            let req = TxnOffsetCommit {
                transactional_id: r.transactional_id.0.as_str(),
                producer: ProducerIdAndEpoch::new(r.producer_id.0, r.producer_epoch),
                tv: TV,
                commit: OffsetCommit {
                    group_id: r.group_id.0.as_str(),
                    generation_id: generation,
                    member_id: member,
                    group_instance_id: instance,
                    retention_ms: None,
                    offsets,
                },
            };
            sh.store
                .offsets()
                .txn_commit(&req)
                .into_iter()
                .map(|a| {
                    a.err()
                        .map_or(0, |e| e.code_for(TxnApi::TxnOffsetCommit, version))
                })
                .collect::<Vec<i16>>()
        })
        .await;
    let mut out = TxnOffsetCommitResponse::default();
    out.topics = per_partition(
        asked,
        answers,
        |name, partitions| {
            let mut t = TxnOffsetCommitResponseTopic::default();
            t.name = name;
            t.partitions = partitions;
            t
        },
        |index, code| {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = index;
            pr.error_code = code;
            pr
        },
    );
    out
}

pub(crate) async fn describe_producers(ctx: &Ctx, r: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = ctx
        .blocking(move |sh| {
            r.topics
                .into_iter()
                .map(|t| {
                    let mut tr = TopicResponse::default();
                    tr.name = t.name.clone();
                    tr.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            let mut pr = PartitionResponse::default();
                            pr.partition_index = p;
                            match sh.store.partition(t.name.0.as_str(), p) {
                                Err(e) => {
                                    pr.error_code = e.kafka_error().code();
                                    pr.error_message = Some(s(e.to_string()));
                                }
                                Ok(log) => {
                                    pr.active_producers = log
                                        .producers()
                                        .into_iter()
                                        .map(|info| {
                                            let mut ps = ProducerState::default();
                                            ps.producer_id = ProducerId(info.producer_id.0);
                                            ps.producer_epoch = i32::from(info.producer_epoch.0);
                                            ps.last_sequence = info.last_sequence.0;
                                            ps.last_timestamp = info.last_timestamp;
                                            ps.coordinator_epoch = info.coordinator_epoch.0;
                                            ps.current_txn_start_offset =
                                                info.current_txn_start_offset.map_or(-1, |o| o.0);
                                            ps
                                        })
                                        .collect();
                                }
                            }
                            pr
                        })
                        .collect();
                    tr
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = DescribeProducersResponse::default();
    out.topics = topics;
    out
}

pub(crate) async fn describe_transactions(
    ctx: &Ctx,
    r: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = ctx
        .blocking(move |sh| {
            r.transactional_ids
                .into_iter()
                .map(|id| {
                    let mut st = TransactionState::default();
                    st.transactional_id = id.clone();
                    match sh.store.transactions().describe(id.0.as_str()) {
                        Err(e) => {
                            st.error_code = e.kafka_error().code();
                            st.producer_id = ProducerId(-1);
                            st.producer_epoch = -1;
                        }
                        Ok(d) => {
                            st.transaction_state = s(d.state.name());
                            st.transaction_timeout_ms = d.timeout_ms;
                            st.transaction_start_time_ms = d.start_ms;
                            st.producer_id = ProducerId(d.producer_id.0);
                            st.producer_epoch = d.producer_epoch;
                            let mut by_topic: Vec<TopicData> = Vec::new();
                            for tp in d.partitions {
                                match by_topic.iter_mut().find(|t| t.topic.0.as_str() == &*tp.topic) {
                                    Some(t) => t.partitions.push(tp.partition),
                                    None => {
                                        let mut t = TopicData::default();
                                        t.topic = topic_name(&tp.topic);
                                        t.partitions = vec![tp.partition];
                                        by_topic.push(t);
                                    }
                                }
                            }
                            st.topics = by_topic;
                        }
                    }
                    st
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = DescribeTransactionsResponse::default();
    out.transaction_states = states;
    out
}

pub(crate) async fn list_transactions(ctx: &Ctx, r: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut out = ListTransactionsResponse::default();
    let mut filter = ListFilter::default();
    for name in &r.state_filters {
        match TxnState::from_name(name.as_str()) {
            Some(st) => filter.states.push(st),
            None => out.unknown_state_filters.push(name.clone()),
        }
    }
    filter.producer_ids = r
        .producer_id_filters
        .iter()
        .map(|p| eoslog::ProducerId(p.0))
        .collect();
    if ctx.version >= 1 && r.duration_filter >= 0 {
        filter.min_duration_ms = Some(r.duration_filter);
    }
    // Every state filter unknown: nothing can match.
    if !r.state_filters.is_empty() && filter.states.is_empty() {
        return out;
    }
    let listed = ctx
        .blocking(move |sh| sh.store.transactions().list(&filter))
        .await;
    out.transaction_states = listed
        .into_iter()
        .map(|l| {
            let mut st = ListedState::default();
            st.transactional_id = TransactionalId(s(l.transactional_id));
            st.producer_id = ProducerId(l.producer_id.0);
            st.transaction_state = s(l.state.name());
            st
        })
        .collect();
    out
}
