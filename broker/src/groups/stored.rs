//! Groups across broker restarts. A group that settles (Stable after its leader's
//! SyncGroup, or Empty) is stored in `__consumer_offsets` as Kafka's GroupMetadata record;
//! at start the broker resumes every stored group at its generation, with its members and
//! their assignments, as Kafka's coordinator does when it loads a group. Members that are
//! still alive go on heartbeating with no rebalance; the others are dropped when their
//! session, counted from the restart, runs out.
//!
//! The records are written by one task, in the order the changes happened (they are
//! queued under the groups' lock), so that the group handlers never wait for the disk.
//! A change not yet written when the broker dies is lost, and the group resumes from its
//! previous record: members of the newer generation then get `ILLEGAL_GENERATION` or
//! `UNKNOWN_MEMBER_ID` and rejoin, which fences nothing that should pass (member ids are
//! never reused across starts).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eoslog::{GroupMemberMetadata, GroupMetadataValue, Store};
use indexmap::IndexMap;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Group, Member, State};
use crate::Shared;

/// A group's record to write (`None` deletes it), and whom to tell once it is written.
pub(super) type Change = (String, Option<GroupMetadataValue>, oneshot::Sender<()>);

impl Group {
    /// The record of a settled group.
    pub(super) fn to_stored(&self) -> GroupMetadataValue {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol: (!self.members.is_empty()).then(|| self.protocol.clone()),
            leader: self.leader.clone().filter(|_| !self.members.is_empty()),
            current_state_timestamp: millis,
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
        g.leader = v.leader.filter(|l| g.members.contains_key(l));
        if g.leader.is_none() {
            g.leader = g.members.keys().next().cloned();
        }
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
            if let Err(e) = store.offsets().set_group_membership(&id, g.membership()) {
                tracing::warn!(target: "eoslog_broker", group = %id, error = %e, "membership not recorded");
            }
            tracing::info!(target: "eoslog_broker", group = %id, generation = g.generation, members = g.members.len(), "group resumed");
            (id, g)
        })
        .collect()
}

/// Writes queued group records in order until shutdown, then what is still queued.
pub(crate) async fn writer_loop(shared: Arc<Shared>) {
    let Some(mut rx) = shared.groups.changes.lock().take() else {
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let change = tokio::select! {
            c = rx.recv() => c,
            _ = shutdown.changed() => break,
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
    let result =
        tokio::task::spawn_blocking(move || s.store.offsets().store_group(&id, value.as_ref())).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(target: "eoslog_broker", %group, error = %e, "group metadata not stored")
        }
        Err(e) => tracing::warn!(target: "eoslog_broker", %group, error = %e, "group metadata writer failed"),
    }
    let _ = written.send(());
}

/// The queue between the group handlers and [`writer_loop`].
pub(super) fn queue() -> (mpsc::UnboundedSender<Change>, mpsc::UnboundedReceiver<Change>) {
    mpsc::unbounded_channel()
}
