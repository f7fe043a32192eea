//! Deleting groups, and what the store needs to know to delete offsets: DeleteGroups
//! (`kafka-consumer-groups --delete`), the groups offsets retention deleted, and the topics
//! a Stable consumer group subscribes to (OffsetDelete and KIP-496 expiry spare them).

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
        let queued = {
            let all = shared.groups.groups.lock();
            match all.get(group) {
                Some(g) if g.state != State::Empty || !g.members.is_empty() => None,
                _ => Some(super::delete(shared, group)),
            }
        };
        let code = match queued {
            None => KafkaError::NonEmptyGroup.code(),
            Some(rx) => match stored(rx).await {
                Ok(()) => {
                    forget_deleted(shared, std::slice::from_ref(&group.to_owned()));
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
/// groups), unless a member joined since; a later join starts the group afresh.
pub(crate) fn forget_deleted(shared: &Shared, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let mut all = shared.groups.groups.lock();
    for id in ids {
        if all
            .get(id)
            .is_some_and(|g| g.state == State::Empty && g.members.is_empty())
        {
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
