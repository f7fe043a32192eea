//! JoinGroup: a member joins (or rejoins) a group, which rebalances; the join is answered
//! when the rebalance completes (`Group::try_complete_join`), or at once for a static
//! member that takes its old place in a Stable group.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use eoslog::KafkaError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{publish, select_protocol, store, stored, Group, JoinAnswer, Member, State};
use crate::handlers::{s, Ctx};

/// How a JoinGroup goes on once the lock of the group's partition is released.
enum Joining {
    /// It waits for the rebalance to complete.
    Rebalance(oneshot::Receiver<JoinAnswer>, String),
    /// A static member took its old place in a Stable group; it is answered once the
    /// group's record holds its new id.
    Replaced(JoinAnswer, oneshot::Receiver<Result<(), i16>>),
}

/// The part of a client id that starts its members' ids: cut at a character boundary so
/// that the id (prefix, then `-`, 16 and up to 16 hex digits) fits a Kafka string of
/// 32767 bytes, as the group's stored record needs.
pub(super) fn client_prefix(client_id: &str) -> &str {
    let mut n = client_id.len().min(i16::MAX as usize - 34);
    while !client_id.is_char_boundary(n) {
        n -= 1;
    }
    &client_id[..n]
}

pub(crate) async fn join(ctx: &Ctx, r: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.version;
    let shared = &ctx.shared;
    let group_id = r.group_id.0.to_string();
    let error = |code: i16, member_id: String| {
        let mut out = JoinGroupResponse::default();
        out.error_code = code;
        out.generation_id = -1;
        out.member_id = s(member_id);
        if version >= 7 {
            out.protocol_name = None;
        } else {
            out.protocol_name = Some(s(""));
        }
        out
    };
    if group_id.is_empty() {
        return error(KafkaError::InvalidGroupId.code(), r.member_id.to_string());
    }
    let groups = &shared.groups;
    if r.session_timeout_ms < groups.min_session_ms || r.session_timeout_ms > groups.max_session_ms {
        return error(
            ResponseError::InvalidSessionTimeout.code(),
            r.member_id.to_string(),
        );
    }
    if r.protocol_type.is_empty() || r.protocols.is_empty() {
        return error(
            ResponseError::InconsistentGroupProtocol.code(),
            r.member_id.to_string(),
        );
    }
    let instance_id = r.group_instance_id.as_ref().map(|i| i.to_string());
    let now = Instant::now();
    let joining = 'locked: {
        let mut all = groups.lock(&shared.store, &group_id);
        if !r.member_id.is_empty() && !all.contains_key(&group_id) {
            return error(KafkaError::UnknownMemberId.code(), r.member_id.to_string());
        }
        if !all.contains_key(&group_id) {
            groups.added(&shared.store, &group_id);
        }
        let g = all.entry(group_id.clone()).or_insert_with(|| Group::new(now));
        let protocols: Vec<(String, Bytes)> = r
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        if !g.members.is_empty() {
            let same_type = g
                .members
                .values()
                .all(|m| m.protocol_type == r.protocol_type.as_str());
            let shared_protocol = protocols.iter().any(|(n, _)| {
                g.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == n))
            });
            let alone = g.members.len() == 1 && g.members.contains_key(r.member_id.as_str());
            if !alone && (!same_type || !shared_protocol) {
                return error(
                    ResponseError::InconsistentGroupProtocol.code(),
                    r.member_id.to_string(),
                );
            }
        }
        let member_id = if r.member_id.is_empty() {
            // A static member that restarts takes its old place; the old id is fenced.
            let previous = instance_id.as_ref().and_then(|i| {
                g.members
                    .iter()
                    .find(|(_, m)| m.instance_id.as_ref() == Some(i))
                    .map(|(id, _)| id.clone())
            });
            let client = if ctx.client_id.is_empty() {
                "member"
            } else {
                client_prefix(&ctx.client_id)
            };
            let fresh = format!(
                "{client}-{:016x}-{:x}",
                groups.instance,
                groups.next_member.fetch_add(1, Ordering::Relaxed)
            );
            // From v4 a new dynamic member is given its id and asked to join with it
            // (KIP-394): a join the client gave up on and retried leaves no member behind
            // to hold up the rebalance, only an id that expires with its session.
            if instance_id.is_none() && version >= 4 {
                let session = Duration::from_millis(u64::try_from(r.session_timeout_ms).unwrap_or(0));
                g.pending.insert(fresh.clone(), now + session);
                return error(ResponseError::MemberIdRequired.code(), fresh);
            }
            if let Some(mut m) = previous.as_ref().and_then(|old| g.members.shift_remove(old)) {
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(JoinAnswer {
                        error: ResponseError::FencedInstanceId.code(),
                        ..JoinAnswer::default()
                    });
                }
                // A static member back while the group is Stable keeps its assignment under
                // its new id, without a rebalance, when its protocols leave the group's
                // selected protocol as it is (KIP-345; Kafka's `updateStaticMemberAndRebalance`
                // compares the selection, not the subscriptions: a group reloaded from its
                // record knows only each member's selected protocol).
                let selected = select_protocol(
                    g.members
                        .values()
                        .map(|o| o.protocols.as_slice())
                        .chain(std::iter::once(protocols.as_slice())),
                    Some(&g.protocol),
                );
                if g.state == State::Stable
                    && m.protocol_type == r.protocol_type.as_str()
                    && selected.as_deref() == Some(g.protocol.as_str())
                {
                    m.protocols = protocols;
                    m.last_seen = now;
                    m.client_id = ctx.client_id.clone();
                    m.client_host = ctx.client_host.clone();
                    g.members.insert(fresh.clone(), m);
                    let leader_before = g.leader.clone();
                    if g.leader.as_deref() == previous.as_deref() {
                        g.leader = Some(fresh.clone());
                    }
                    publish(shared, &group_id, g);
                    let answer = g.generation_answer(&fresh, leader_before);
                    break 'locked Joining::Replaced(answer, store(shared, &group_id, g));
                }
            }
            fresh
        } else {
            let id = r.member_id.to_string();
            // A member id handed out with MEMBER_ID_REQUIRED joins as a new member.
            if instance_id.is_none() && !g.members.contains_key(&id) && g.take_pending(&id, now) {
                break 'locked join_rebalance(ctx, g, &group_id, id, &r, protocols, now);
            }
            // Checked as Kafka's `validateMember`, the instance id first: an unknown member
            // id naming another member's instance id is fenced, not unknown.
            if let Some(code) = g.validate_member(&id, instance_id.as_deref()) {
                return error(code, id);
            }
            let Some(m) = g.members.get_mut(&id) else {
                return error(KafkaError::UnknownMemberId.code(), id);
            };
            // A member that rejoins with the protocols it has is answered with the current
            // generation, without a rebalance, as Kafka's `classicGroupJoinExistingMember`
            // does: while the group completes a rebalance (its join answer may have been
            // lost), and while it is Stable unless it is the leader (a leader's rejoin is
            // how a client asks for a new assignment, for example after a topic grew).
            let unchanged = m.protocol_type == r.protocol_type.as_str() && m.protocols == protocols;
            let leads = g.leader.as_deref() == Some(id.as_str());
            if unchanged && (g.state == State::CompletingRebalance || (g.state == State::Stable && !leads)) {
                m.last_seen = now;
                return join_response(version, g.generation_answer(&id, g.leader.clone()));
            }
            id
        };
        join_rebalance(ctx, g, &group_id, member_id, &r, protocols, now)
    };
    let (rx, member_id) = match joining {
        Joining::Rebalance(rx, member_id) => (rx, member_id),
        // The new id is answered once it is stored (KIP-345); if the write fails, the group
        // rebalances and the member rejoins.
        Joining::Replaced(answer, rx) => {
            if let Err(code) = stored(rx).await {
                if let Some(g) = groups.lock(&shared.store, &group_id).get_mut(&group_id) {
                    g.prepare_rebalance(Instant::now());
                    g.tell_membership(&shared.store, &group_id);
                }
                return error(code, answer.member_id);
            }
            return join_response(version, answer);
        }
    };
    let answer = match rx.await {
        Ok(a) => a,
        // The member was removed (its group was reset) before its join completed.
        Err(_) => JoinAnswer {
            error: KafkaError::UnknownMemberId.code(),
            member_id: member_id.clone(),
            ..JoinAnswer::default()
        },
    };
    let answer = JoinAnswer {
        member_id: if answer.member_id.is_empty() {
            member_id
        } else {
            answer.member_id.clone()
        },
        ..answer
    };
    join_response(version, answer)
}

/// Adds (or updates) member `member_id` with this request's protocols and timeouts and
/// rebalances the group; the join is answered when the rebalance completes.
fn join_rebalance(
    ctx: &Ctx,
    g: &mut Group,
    group_id: &str,
    member_id: String,
    r: &JoinGroupRequest,
    protocols: Vec<(String, Bytes)>,
    now: Instant,
) -> Joining {
    let (shared, groups) = (&ctx.shared, &ctx.shared.groups);
    // Before v1 the rebalance timeout is the session timeout.
    let rebalance_ms = if ctx.version >= 1 {
        r.rebalance_timeout_ms
    } else {
        r.session_timeout_ms
    };
    let (tx, rx) = oneshot::channel();
    let was_empty = g.state == State::Empty;
    let member = g.members.entry(member_id.clone()).or_insert_with(|| Member {
        instance_id: r.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout: Duration::ZERO,
        rebalance_timeout: Duration::ZERO,
        protocol_type: String::new(),
        protocols: Vec::new(),
        last_seen: now,
        join_waiter: None,
        sync_waiter: None,
        assignment: Bytes::new(),
    });
    member.session_timeout = Duration::from_millis(u64::try_from(r.session_timeout_ms).unwrap_or(0));
    member.rebalance_timeout = Duration::from_millis(u64::try_from(rebalance_ms).unwrap_or(0));
    member.protocol_type = r.protocol_type.to_string();
    member.protocols = protocols;
    member.last_seen = now;
    if let Some(old) = member.join_waiter.replace(tx) {
        let _ = old.send(JoinAnswer {
            error: KafkaError::RebalanceInProgress.code(),
            ..JoinAnswer::default()
        });
    }
    if was_empty {
        g.initial_until = now + groups.initial_delay;
    }
    g.prepare_rebalance(now);
    if was_empty {
        g.rebalance_deadline = g.rebalance_deadline.max(g.initial_until);
    }
    if g.try_complete_join(now) {
        publish(shared, group_id, g);
    } else {
        // The store learns at once that the group is rebalancing with a member: offsets
        // retention and DeleteGroups must not treat a group being joined as Empty.
        g.tell_membership(&shared.store, group_id);
    }
    Joining::Rebalance(rx, member_id)
}

fn join_response(version: i16, answer: JoinAnswer) -> JoinGroupResponse {
    let mut out = JoinGroupResponse::default();
    out.error_code = answer.error;
    out.generation_id = if answer.error == 0 { answer.generation } else { -1 };
    out.member_id = s(answer.member_id);
    out.leader = s(answer.leader);
    if version >= 7 {
        out.protocol_type = (answer.error == 0).then(|| s(answer.protocol_type));
        out.protocol_name = (answer.error == 0).then(|| s(answer.protocol.clone()));
    } else {
        out.protocol_name = Some(s(answer.protocol));
    }
    out.members = answer
        .members
        .into_iter()
        .map(|(id, instance, meta)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = s(id);
            if version >= 5 {
                m.group_instance_id = instance.map(s);
            }
            m.metadata = meta;
            m
        })
        .collect();
    out
}
