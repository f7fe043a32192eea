//! Deleting groups, and what the store needs to know to delete offsets: DeleteGroups
//! (`kafka-consumer-groups --delete`), the groups offsets retention deleted, and the topics
//! a Stable consumer group subscribes to (OffsetDelete and KIP-496 expiry spare them).

use bytes::{Buf, Bytes};
use eoslog::KafkaError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{stored, Group, State};
use crate::handlers::Ctx;
use crate::Shared;

/// DeleteGroups: a group with members is `NON_EMPTY_GROUP`; an Empty one (or one known only
/// by its offsets) is forgotten here and deleted from the store with its offsets, through
/// the ordered writer, so that a record queued before the delete never lands after it.
pub(crate) async fn delete_groups(ctx: &Ctx, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let shared = &ctx.shared;
    let mut out = DeleteGroupsResponse::default();
    for id in r.groups_names {
        let queued = {
            let mut all = shared.groups.groups.lock();
            match all.get(id.0.as_str()) {
                Some(g) if g.state != State::Empty || !g.members.is_empty() => None,
                _ => {
                    all.remove(id.0.as_str());
                    Some(super::delete(shared, id.0.as_str()))
                }
            }
        };
        let code = match queued {
            None => KafkaError::NonEmptyGroup.code(),
            Some(rx) => stored(rx).await.err().unwrap_or(0),
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
/// sorted; `None` for another protocol type or when a member's subscription does not read.
pub(super) fn subscribed_topics(g: &Group) -> Option<Vec<String>> {
    if g.protocol_type != "consumer" {
        return None;
    }
    let mut topics = Vec::new();
    for m in g.members.values() {
        let (_, metadata) = m.protocols.iter().find(|(n, _)| *n == g.protocol)?;
        topics.extend(subscription_topics(metadata.clone())?);
    }
    topics.sort();
    topics.dedup();
    Some(topics)
}

/// The topics of a `ConsumerProtocolSubscription`: an int16 version, then the topics as an
/// array of strings, in every version (later fields are not needed). Read by hand: the
/// protocol crate would reserve room for the count on the wire before reading a topic.
fn subscription_topics(mut b: Bytes) -> Option<Vec<String>> {
    if b.remaining() < 6 || b.get_i16() < 0 {
        return None;
    }
    let count = usize::try_from(b.get_i32()).ok()?;
    // Each topic takes at least its two length bytes.
    if count > b.remaining() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        if b.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(b.get_i16()).ok()?;
        if b.remaining() < len {
            return None;
        }
        topics.push(String::from_utf8(b.split_to(len).to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn encoded(version: i16, topics: &[&str]) -> Bytes {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = topics
            .iter()
            .map(|t| StrBytes::from_string((*t).to_owned()))
            .collect();
        let mut b = bytes::BytesMut::new();
        b.put_i16(version);
        s.encode(&mut b, version.min(3)).expect("encode");
        b.freeze()
    }

    #[test]
    fn subscriptions_read_at_every_version_and_damage_is_unknown() {
        for v in 0..=3 {
            assert_eq!(
                subscription_topics(encoded(v, &["a", "b"])),
                Some(vec!["a".to_owned(), "b".to_owned()]),
                "version {v}"
            );
        }
        assert_eq!(
            subscription_topics(encoded(7, &["x"])),
            Some(vec!["x".to_owned()])
        );
        assert_eq!(subscription_topics(Bytes::from_static(b"\x00")), None);
        assert_eq!(subscription_topics(Bytes::from_static(b"\xff\xff\x00\x00")), None);
        // A topic count larger than the bytes that follow.
        assert_eq!(
            subscription_topics(Bytes::from_static(b"\x00\x00\x7f\xff\xff\xff")),
            None
        );
        assert_eq!(subscription_topics(Bytes::from_static(b"subscription")), None);
    }
}
