//! Groups across broker restarts. A group that settles (Stable after its leader's
//! SyncGroup, or Empty) is stored in `__consumer_offsets` as Kafka's GroupMetadata record;
//! at start the broker resumes every stored group at its generation, with its members and
//! their assignments, as Kafka's coordinator does when it loads a group. Members that are
//! still alive go on heartbeating with no rebalance; the others are dropped when their
//! session, counted from the restart, runs out.
//!
//! The records are written by one task per `__consumer_offsets` partition, in the order
//! the changes happened (they are queued under the lock of the group's partition), so
//! that no handler blocks a thread on the disk and no partition's write waits for
//! another's. A member learns of what a record holds only once it is written: the syncs of a new generation
//! are answered, and a static member's new id is given, after the write succeeded, as in
//! Kafka; a failed write is answered with an error and the group rebalances. So a broker
//! that dies before a write resumes the group from a record no member has gone past, and a
//! generation is never handed out twice with different assignments (KIP-447 fencing
//! checks the member id and the generation). An Empty group is stored without waiting.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eoslog::{CoordinatorError, GroupMemberMetadata, GroupMetadataValue, KafkaError, Store};
use indexmap::IndexMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Group, Member, State};
use crate::Shared;

/// A group's record to write (`None` deletes the group with its offsets), and whom to tell the outcome (an error
/// as the Kafka code to answer with).
pub(super) type Change = (
    String,
    Option<GroupMetadataValue>,
    oneshot::Sender<Result<(), i16>>,
);

impl Group {
    /// The record of a settled group, stamped `now_ms` (the store's clock: an Empty
    /// group's offsets expire `offsets.retention.minutes` after it).
    pub(super) fn to_stored(&self, now_ms: i64) -> GroupMetadataValue {
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol: (!self.members.is_empty()).then(|| self.protocol.clone()),
            leader: self.leader.clone().filter(|_| !self.members.is_empty()),
            current_state_timestamp: now_ms,
            members: self
                .members
                .iter()
                .map(|(id, m)| GroupMemberMetadata {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: ms(m.rebalance_timeout),
                    session_timeout_ms: ms(m.session_timeout),
                    subscription: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == self.protocol)
                        .map(|(_, b)| b.to_vec())
                        .unwrap_or_default(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// A stored group as it resumes: Stable with its members (their sessions start now),
    /// or Empty at its generation.
    pub(super) fn from_stored(v: GroupMetadataValue, now: Instant) -> Group {
        let mut g = Group::new(now);
        g.generation = v.generation;
        let protocol = v.protocol.unwrap_or_default();
        if v.members.is_empty() || protocol.is_empty() {
            return g;
        }
        let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        g.members = v
            .members
            .into_iter()
            .map(|m| {
                let member = Member {
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: ms(m.session_timeout_ms),
                    rebalance_timeout: ms(m.rebalance_timeout_ms),
                    protocol_type: v.protocol_type.clone(),
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                    last_seen: now,
                    join_waiter: None,
                    sync_waiter: None,
                    assignment: Bytes::from(m.assignment),
                };
                (m.member_id, member)
            })
            .collect::<IndexMap<_, _>>();
        g.state = State::Stable;
        g.protocol_type = v.protocol_type;
        g.protocol = protocol;
        g.leader = v.leader;
        g.keep_leader_a_member();
        g.subscribed_topics = super::admin::subscribed_topics(&g);
        g
    }
}

/// Every stored group, resumed; the store learns each one's membership (offset commits
/// are checked against it).
pub(super) fn resume(store: &Store) -> std::collections::HashMap<String, Group> {
    let now = Instant::now();
    store
        .offsets()
        .stored_groups()
        .into_iter()
        .map(|(id, v)| {
            let g = Group::from_stored(v, now);
            g.tell_membership(store, &id);
            tracing::info!(target: "eoslog_broker", group = %id, generation = g.generation, members = g.members.len(), "group resumed");
            (id, g)
        })
        .collect()
}

/// Writes the queued group records of `__consumer_offsets` partition `partition` in
/// order until shutdown, then what is still queued.
pub(crate) async fn writer_loop(shared: Arc<Shared>, partition: usize) {
    let Some(mut rx) = shared
        .groups
        .partitions
        .get(partition)
        .and_then(|p| p.changes.lock().take())
    else {
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        // `wait_for` also sees a shutdown that came before this task first ran.
        let change = tokio::select! {
            c = rx.recv() => c,
            _ = shutdown.wait_for(|&stop| stop) => break,
        };
        let Some(change) = change else { return };
        write(&shared, change).await;
    }
    while let Ok(change) = rx.try_recv() {
        write(&shared, change).await;
    }
}

async fn write(shared: &Arc<Shared>, (group, value, written): Change) {
    let s = shared.clone();
    let id = group.clone();
    // No value: DeleteGroups (the group and its offsets).
    let result = tokio::task::spawn_blocking(move || match value {
        Some(v) => s.store.offsets().store_group(&id, Some(&v)),
        None => s.store.offsets().delete_group(&id),
    })
    .await;
    let outcome = match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(target: "eoslog_broker", %group, error = %e, "group metadata not stored");
            Err(store_error_code(&e))
        }
        Err(e) => {
            tracing::warn!(target: "eoslog_broker", %group, error = %e, "group metadata writer failed");
            Err(KafkaError::UnknownServerError.code())
        }
    };
    let _ = written.send(outcome);
}

/// Kafka's answer to a SyncGroup or JoinGroup whose group could not be stored
/// (`GroupMetadataManager.storeGroup`): a storage failure sends the client to find the
/// coordinator again; a record too large, or anything else unexpected, is
/// UNKNOWN_SERVER_ERROR.
fn store_error_code(e: &CoordinatorError) -> i16 {
    match e {
        CoordinatorError::Storage(_) => KafkaError::NotCoordinator.code(),
        CoordinatorError::CoordinatorLoadInProgress => KafkaError::CoordinatorLoadInProgress.code(),
        CoordinatorError::InvalidGroupId
        | CoordinatorError::NonEmptyGroup
        | CoordinatorError::GroupIdNotFound => e.kafka_error().code(),
        _ => KafkaError::UnknownServerError.code(),
    }
}
