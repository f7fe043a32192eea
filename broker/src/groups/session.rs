//! A member's liveness: Heartbeat, LeaveGroup, and the timer that expires members (and
//! pending member ids) whose session ran out and completes rebalances whose time came.

use std::sync::Arc;
use std::time::Duration;

use eoslog::KafkaError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse};

use tokio::time::Instant;

use super::{lock_shard, publish, JoinAnswer, Partition, State};
use crate::handlers::{s, Ctx};
use crate::Shared;

pub(crate) fn heartbeat(ctx: &Ctx, r: HeartbeatRequest) -> HeartbeatResponse {
    let mut out = HeartbeatResponse::default();
    let mut all = ctx.shared.groups.lock(&ctx.shared.store, r.group_id.0.as_str());
    let Some(g) = all.get_mut(r.group_id.0.as_str()) else {
        out.error_code = KafkaError::UnknownMemberId.code();
        return out;
    };
    let state = g.state;
    let generation = g.generation;
    let instance = r.group_instance_id.as_ref().map(|i| i.as_str());
    if let Some(code) = g.validate_member(r.member_id.as_str(), instance) {
        out.error_code = code;
        return out;
    }
    let Some(m) = g.members.get_mut(r.member_id.as_str()) else {
        out.error_code = KafkaError::UnknownMemberId.code();
        return out;
    };
    m.last_seen = Instant::now();
    out.error_code = if r.generation_id != generation {
        KafkaError::IllegalGeneration.code()
    } else if state == State::PreparingRebalance {
        KafkaError::RebalanceInProgress.code()
    } else {
        0
    };
    out
}

pub(crate) fn leave(ctx: &Ctx, r: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = ctx.version;
    let shared = &ctx.shared;
    let group_id = r.group_id.0.to_string();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let mut out = LeaveGroupResponse::default();
    let mut all = shared.groups.lock(&shared.store, &group_id);
    let Some(g) = all.get_mut(&group_id) else {
        // Kafka: every leaving member is unknown (at v0-2, the request's one error).
        let code = KafkaError::UnknownMemberId.code();
        if version >= 3 {
            out.members = leaving
                .into_iter()
                .map(|(member_id, instance)| {
                    let mut mr = MemberResponse::default();
                    mr.member_id = s(member_id);
                    mr.group_instance_id = instance.map(s);
                    mr.error_code = code;
                    mr
                })
                .collect();
        } else {
            out.error_code = code;
        }
        return out;
    };
    let now = Instant::now();
    let mut removed = false;
    let mut pending_left = false;
    for (member_id, instance) in leaving {
        // A member id handed out with MEMBER_ID_REQUIRED leaves without having joined (a
        // client closed between its two JoinGroups): Kafka forgets the id and answers NONE,
        // and a rebalance no longer waits for it.
        if instance.is_none() && !member_id.is_empty() && g.pending.remove(&member_id).is_some() {
            pending_left = true;
            if version >= 3 {
                let mut mr = MemberResponse::default();
                mr.member_id = s(member_id);
                out.members.push(mr);
            }
            continue;
        }
        // A static member may leave by its instance id alone (an admin's removal); one that
        // names its member id is validated as Kafka validates it.
        let found: Result<String, i16> = if member_id.is_empty() {
            instance
                .as_ref()
                .and_then(|i| {
                    g.members
                        .iter()
                        .find(|(_, m)| m.instance_id.as_ref() == Some(i))
                        .map(|(id, _)| id.clone())
                })
                .ok_or(KafkaError::UnknownMemberId.code())
        } else {
            match g.validate_member(&member_id, instance.as_deref()) {
                Some(code) => Err(code),
                None => Ok(member_id.clone()),
            }
        };
        let code = match found.map(|id| g.members.shift_remove(&id)) {
            Err(code) => code,
            Ok(None) => KafkaError::UnknownMemberId.code(),
            Ok(Some(m)) => {
                if let Some(w) = m.join_waiter {
                    let _ = w.send(JoinAnswer {
                        error: KafkaError::UnknownMemberId.code(),
                        ..JoinAnswer::default()
                    });
                }
                removed = true;
                0
            }
        };
        if version >= 3 {
            let mut mr = MemberResponse::default();
            mr.member_id = s(member_id);
            mr.group_instance_id = instance.map(s);
            mr.error_code = code;
            out.members.push(mr);
        } else {
            out.error_code = code;
        }
    }
    if removed {
        g.prepare_rebalance(now);
        g.try_complete_join(now);
        publish(shared, &group_id, g);
    } else if pending_left && g.try_complete_join(now) {
        publish(shared, &group_id, g);
    }
    out
}

/// Expires the members of partition `partition`'s groups whose session ran out, and
/// completes their rebalances whose time came. One task per partition: a timer waiting
/// for a partition being swept holds up no other partition's expiries and rebalances.
pub(crate) async fn timer_loop(shared: Arc<Shared>, partition: usize) {
    let Some(Partition {
        groups: shard, added, ..
    }) = shared.groups.partitions.get(partition)
    else {
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    let mut idle = false;
    loop {
        // With no group, sleep until one is added (`notify_one` keeps a wake-up that comes
        // before the wait), then tick every 50 ms while there are groups.
        tokio::select! {
            () = added.notified(), if idle => {}
            () = tokio::time::sleep(Duration::from_millis(50)), if !idle => {}
            _ = shutdown.wait_for(|&stop| stop) => return,
        }
        let now = Instant::now();
        let mut all = lock_shard(shard);
        all.retain(|_, g| {
            g.expire_pending(now);
            !(g.never_formed() && g.state == State::Empty)
        });
        idle = all.is_empty();
        for (id, g) in all.iter_mut() {
            let before = g.members.len();
            g.members.retain(|_, m| {
                m.join_waiter.is_some() || now.duration_since(m.last_seen) <= m.session_timeout
            });
            let expired = g.members.len() != before;
            if expired && g.state != State::Empty {
                tracing::info!(target: "eoslog_broker", group = %id, expired = before - g.members.len(), "session timeout");
                g.prepare_rebalance(now);
            }
            let completed = g.try_complete_join(now);
            if expired || completed {
                publish(&shared, id, g);
            }
        }
    }
}
