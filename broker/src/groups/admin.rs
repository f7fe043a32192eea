//! Deleting groups, and what the store needs to know to delete offsets: DeleteGroups
//! (`kafka-consumer-groups --delete`), the groups offsets retention deleted, and the topics
//! a consumer group's generation subscribes to (OffsetDelete and KIP-496 expiry spare
//! them).

use eoslog::KafkaError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{stored, Group, State};
use crate::handlers::Ctx;
use crate::Shared;

/// DeleteGroups: a group with members is `NON_EMPTY_GROUP`; an Empty one (or one known only
/// by its offsets) is deleted from the store with its offsets through the ordered writer,
/// so that a record queued before the delete never lands after it, and forgotten here once
/// that succeeded (unless a member joined meanwhile: the store then refused, or the new
/// members start the group afresh).
pub(crate) async fn delete_groups(ctx: &Ctx, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let shared = &ctx.shared;
    let mut out = DeleteGroupsResponse::default();
    for id in r.groups_names {
        let group = id.0.as_str();
        // The generation the group had, to forget it only if it has not moved on.
        let queued = {
            let all = shared.groups.lock(&shared.store, group);
            match all.get(group) {
                Some(g) if g.state != State::Empty || !g.members.is_empty() => None,
                g => Some((
                    super::delete(shared, group),
                    g.map(|g| g.membership().generation),
                    g.is_some_and(Group::unformed),
                )),
            }
        };
        let code = match queued {
            None => KafkaError::NonEmptyGroup.code(),
            Some((rx, generation, unformed)) => match stored(rx).await {
                Ok(()) => {
                    if let Some(generation) = generation {
                        forget_deleted(shared, &[(group.to_owned(), generation)]);
                    }
                    0
                }
                // A group that only ever had MEMBER_ID_REQUIRED ids exists here and not in
                // the store (Kafka stores it Empty): deleting it forgets it.
                Err(code) if unformed && code == KafkaError::GroupIdNotFound.code() => {
                    let mut all = shared.groups.lock(&shared.store, group);
                    if all.get(group).is_some_and(Group::unformed) {
                        all.remove(group);
                    }
                    0
                }
                Err(code) => code,
            },
        };
        let mut result = DeletableGroupResult::default();
        result.group_id = id;
        result.error_code = code;
        out.results.push(result);
    }
    out
}

/// Forgets the groups the store deleted (Empty, every offset expired: Kafka's Dead
/// groups), each given with the generation it had then, unless it moved on since (a member
/// joined, or joined and left, storing the group again); a later join starts it afresh.
pub(crate) fn forget_deleted(shared: &Shared, deleted: &[(String, i32)]) {
    if deleted.is_empty() {
        return;
    }
    for (id, generation) in deleted {
        let mut all = shared.groups.lock(&shared.store, id);
        if all.get(id).is_some_and(|g| {
            g.state == State::Empty && g.members.is_empty() && g.membership().generation == *generation
        }) {
            all.remove(id);
        }
    }
}

/// The topics the members of a consumer group subscribe to (Kafka's `subscribedTopics`),
/// sorted; `None` for another protocol type, before a protocol is chosen, or when a
/// member's subscription does not read.
pub(super) fn subscribed_topics(g: &Group) -> Option<Vec<String>> {
    if g.joined_protocol_type() != "consumer" {
        return None;
    }
    let mut topics = Vec::new();
    for m in g.members.values() {
        let (_, metadata) = m.protocols.iter().find(|(n, _)| *n == g.protocol)?;
        topics.extend(eoslog::decode::subscription_topics(metadata)?);
    }
    topics.sort();
    topics.dedup();
    Some(topics)
}
