//! One handler per request: each turns a decoded request into its response, calling the
//! store (on a blocking thread: appends and markers may fsync) and answering every error
//! with Kafka's code for the request's version.

mod acls;
mod alter_configs;
mod configs;
mod data;
mod meta;
mod offsets;
mod topics;
mod txn;

use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::Shared;

/// What a handler knows about its request beyond the body.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) version: i16,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

impl Ctx {
    /// Runs store work (file I/O, fsync waits) where it may block: on a multi-thread
    /// runtime in place (`block_in_place`: this worker's other tasks move to another
    /// thread), so that a Produce's records are appended by the thread that just read them
    /// from the socket, with them still in its cache; on a current-thread runtime on the
    /// blocking pool. Measured on the raw-client produce row (BENCHMARKS.md, session 12):
    /// 88.4 and 93.0 ms per 100,000 records in place against 108.2 and 104.2 ms on the pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> T {
        let shared = self.shared.clone();
        if multi_thread() {
            return tokio::task::block_in_place(move || f(&shared));
        }
        match tokio::task::spawn_blocking(move || f(&shared)).await {
            Ok(v) => v,
            // A panic in store code is a bug; keep the broker up and surface it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Runs `f`, which may wait for a lock that a store write holds, without stalling the
/// runtime: on a multi-thread runtime in place (`block_in_place`), so that this worker's
/// other tasks, and its turn at polling sockets and timers, move to another thread (a
/// worker blocked in a plain call can leave every connection unserved: no other worker
/// may be polling for I/O); elsewhere (a current-thread runtime, no runtime) as it is.
/// For short synchronous work under the groups' locks; what may fsync goes through
/// [`Ctx::blocking`].
pub(crate) fn in_place<R>(f: impl FnOnce() -> R) -> R {
    if multi_thread() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

fn multi_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Answers one request; `None` when Kafka sends no response (Produce with `acks=0` that
/// succeeded everywhere; one that failed is answered, and the connection closes instead).
pub(crate) async fn dispatch(ctx: Ctx, request: RequestKind) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(crate::versions::api_versions_response()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(meta::metadata(&ctx, r).await),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(meta::describe_cluster(&ctx, &r)),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(meta::find_coordinator(&ctx, r)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(topics::create_topics(&ctx, r).await),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(topics::create_partitions(&ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe_configs(&ctx, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(alter_configs::incremental_alter_configs(&ctx, r).await)
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter_configs::alter_configs(&ctx, r).await)
        }
        RequestKind::DescribeAcls(_) => ResponseKind::DescribeAcls(acls::describe_acls()),
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(acls::create_acls(&r)),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(acls::delete_acls(&r)),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(topics::delete_records(&ctx, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(topics::delete_topics(&ctx, r).await),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let response = data::produce(&ctx, r).await;
            // acks=0: no response, unless a partition failed (the connection then closes).
            if acks == 0 && !data::any_failed(&response) {
                return None;
            }
            ResponseKind::Produce(response)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(data::fetch(&ctx, r).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(data::list_offsets(&ctx, r).await),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(data::offset_for_leader_epoch(&ctx, r).await)
        }
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(txn::init_producer_id(&ctx, r).await),
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(txn::add_partitions(&ctx, r).await)
        }
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(txn::add_offsets(&ctx, r).await),
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(txn::end_txn(&ctx, r).await),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn::txn_offset_commit(&ctx, r).await)
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(txn::describe_producers(&ctx, r).await)
        }
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(txn::describe_transactions(&ctx, r).await)
        }
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(txn::list_transactions(&ctx, r).await)
        }
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offsets::offset_commit(&ctx, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offsets::offset_fetch(&ctx, r).await),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(crate::groups::join(&ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(crate::groups::sync(&ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(crate::groups::heartbeat(&ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(crate::groups::leave(&ctx, r)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(crate::groups::describe(&ctx, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(crate::groups::list(&ctx, r)),
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(crate::groups::delete_groups(&ctx, r).await)
        }
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offsets::offset_delete(&ctx, r).await),
        other => {
            // The version check before decoding admits only the APIs above.
            tracing::error!(target: "eoslog_broker", request = ?std::mem::discriminant(&other), "request without a handler");
            return None;
        }
    })
}

/// A protocol string.
pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// A topic name.
pub(crate) fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// The partitions of a request, by topic, in the request's order.
pub(crate) type Asked = Vec<(String, Vec<i32>)>;

/// A per-partition response in the request's topic and partition order: `codes` holds one
/// error code per asked partition, in that order (a missing one is `UNKNOWN_SERVER_ERROR`).
pub(crate) fn per_partition<T, P>(
    asked: Asked,
    codes: Vec<i16>,
    topic: impl Fn(kafka_protocol::messages::TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i16) -> P,
) -> Vec<T> {
    let mut codes = codes.into_iter();
    asked
        .into_iter()
        .map(|(name, parts)| {
            let parts = parts
                .into_iter()
                .map(|p| {
                    partition(
                        p,
                        codes
                            .next()
                            .unwrap_or(eoslog::KafkaError::UnknownServerError.code()),
                    )
                })
                .collect();
            topic(topic_name(&name), parts)
        })
        .collect()
}
