//! SyncGroup: the leader hands out the assignment, which is stored before any member
//! learns of it; the group turns Stable once it is written (`settle_after_store`).

use bytes::Bytes;
use eoslog::KafkaError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{publish, store, stored, State, SyncAnswer};
use crate::handlers::{s, Ctx};
use crate::Shared;

/// After the leader's assignment was stored (or failed to be): if the group is still in
/// that rebalance, it turns Stable and every sync is answered with its assignment; on a
/// failed write every sync gets the error and the group rebalances, as in Kafka.
fn settle_after_store(shared: &Shared, group_id: &str, generation: i32, outcome: Result<(), i16>) {
    let mut all = shared.groups.lock(&shared.store, group_id);
    let Some(g) = all.get_mut(group_id) else {
        return;
    };
    if !g.storing || g.generation != generation || g.state != State::CompletingRebalance {
        return; // a rejoin restarted the rebalance meanwhile; its syncs were answered
    }
    g.storing = false;
    match outcome {
        Ok(()) => {
            g.state = State::Stable;
            for m in g.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncAnswer {
                        error: 0,
                        assignment: m.assignment.clone(),
                    });
                }
            }
        }
        Err(code) => {
            tracing::warn!(target: "eoslog_broker", group = group_id, code, "the group's assignment could not be stored; rebalancing");
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncAnswer {
                        error: code,
                        ..SyncAnswer::default()
                    });
                }
            }
            g.prepare_rebalance(Instant::now());
        }
    }
    publish(shared, group_id, g);
}

pub(crate) async fn sync(ctx: &Ctx, r: SyncGroupRequest) -> SyncGroupResponse {
    let version = ctx.version;
    let shared = &ctx.shared;
    let group_id = r.group_id.0.to_string();
    let member_id = r.member_id.to_string();
    let respond = |error: i16, assignment: Bytes, g: Option<(&str, &str)>| {
        let mut out = SyncGroupResponse::default();
        out.error_code = error;
        out.assignment = assignment;
        if version >= 5 {
            if let Some((t, p)) = g {
                out.protocol_type = Some(s(t));
                out.protocol_name = Some(s(p));
            }
        }
        out
    };
    let (rx, protocol_type, protocol, pending) = {
        let mut all = shared.groups.lock(&shared.store, &group_id);
        let Some(g) = all.get_mut(&group_id) else {
            return respond(KafkaError::UnknownMemberId.code(), Bytes::new(), None);
        };
        if let Some(code) = g.validate_member(&member_id, r.group_instance_id.as_ref().map(|i| i.as_str())) {
            return respond(code, Bytes::new(), None);
        }
        if r.generation_id != g.generation {
            return respond(KafkaError::IllegalGeneration.code(), Bytes::new(), None);
        }
        let type_differs = r
            .protocol_type
            .as_ref()
            .is_some_and(|t| t.as_str() != g.protocol_type);
        let name_differs = r.protocol_name.as_ref().is_some_and(|p| p.as_str() != g.protocol);
        if type_differs || name_differs {
            return respond(
                ResponseError::InconsistentGroupProtocol.code(),
                Bytes::new(),
                None,
            );
        }
        let names = (g.protocol_type.clone(), g.protocol.clone());
        match g.state {
            State::Empty => return respond(KafkaError::UnknownMemberId.code(), Bytes::new(), None),
            State::PreparingRebalance => {
                return respond(KafkaError::RebalanceInProgress.code(), Bytes::new(), None)
            }
            State::Stable => {
                let a = g
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                return respond(0, a, Some((&names.0, &names.1)));
            }
            State::CompletingRebalance => {}
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = g.members.get_mut(&member_id) {
            m.last_seen = Instant::now();
            m.sync_waiter = Some(tx);
        }
        let mut pending = None;
        if g.leader.as_deref() == Some(member_id.as_str()) && !g.storing {
            for a in &r.assignments {
                if let Some(m) = g.members.get_mut(a.member_id.as_str()) {
                    m.assignment = a.assignment.clone();
                }
            }
            g.storing = true;
            pending = Some((g.generation, store(shared, &group_id, g)));
        }
        (rx, names.0, names.1, pending)
    };
    if let Some((generation, rx)) = pending {
        let outcome = stored(rx).await;
        settle_after_store(shared, &group_id, generation, outcome);
    }
    match rx.await {
        Ok(a) if a.error == 0 => respond(0, a.assignment, Some((&protocol_type, &protocol))),
        Ok(a) => respond(a.error, Bytes::new(), None),
        Err(_) => respond(KafkaError::UnknownMemberId.code(), Bytes::new(), None),
    }
}
