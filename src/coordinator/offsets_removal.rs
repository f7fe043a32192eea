//! Removing offsets and groups from `__consumer_offsets`: retention
//! (`offsets.retention.minutes`, KIP-211), DeleteGroups and OffsetDelete (KIP-496). Each
//! writes tombstones, so a reopened store agrees with the one that removed them.
//!
//! **Retention** (Kafka's `GroupMetadataManager.cleanupGroupMetadata`, which the store's
//! maintenance runs every `offsets.retention.check.interval.ms`): which offsets of a group
//! expire (`GroupMetadata.removeExpiredOffsets`):
//! - a group with members keeps them, except that a Stable consumer group whose
//!   subscriptions are known loses, the retention after their commit, the offsets of topics
//!   no member subscribes to (KIP-496);
//! - an Empty group's expire once the retention has passed since it became Empty: the
//!   `current_state_timestamp` of its stored record. A group emptied but not yet stored
//!   as Empty waits for its record;
//! - a group never stored (a simple consumer committing with generation -1, or one that
//!   emptied before it first settled): each offset the retention after its own commit;
//! - an offset written with an explicit expire timestamp (value version 1) expires then;
//! - an offset with a transactional commit pending stays until that transaction ends (its
//!   tombstone would also drop the pending offset).
//!
//! A group that is then Empty, with no offset left and no transaction pending, turns Dead:
//! a tombstone for its metadata, and its membership is forgotten, so the embedding broker
//! forgets it too.
//!
//! A simple consumer's group (no stored record) that lost its last offset (to OffsetDelete,
//! or when the transaction that held its only pending offsets aborted) stays known, Empty,
//! until then, and across a reopen while the log still holds the records it was known by:
//! Kafka's coordinator creates a simple classic group for every offset commit it applies or
//! replays and keeps it until its next cleanup.
//!
//! **DeleteGroups** deletes an Empty group (or a simple consumer's) with every offset,
//! pending ones included, as Kafka's coordinator does; a group with members is
//! `NON_EMPTY_GROUP`. **OffsetDelete** deletes offsets of an Empty group, or of topics a
//! consumer group does not subscribe to (`GROUP_SUBSCRIBED_TO_TOPIC` for the others).
//!
//! Every check and its tombstones happen under one hold of the partition's mutex and of
//! its membership map, so a commit, a fetch or a join lands wholly before or wholly after;
//! the other partitions' groups go on meanwhile.

use std::collections::{BTreeSet, HashMap, HashSet};

use parking_lot::MutexGuard;

use super::error::CoordinatorError;
use super::groups::{GroupMembership, GroupState, CONSUMER_PROTOCOL_TYPE};
use super::init_pid::MAX_STRING;
use super::offsets::{append_records, Offsets, PartState};
use super::offsets_codec as codec;
use super::records::GroupMetadataValue;
use super::TopicPartition;
use crate::types::Offset;

/// Bytes a tombstone record adds to a batch beyond its key (length, attributes, deltas,
/// null value, header count: at most this many varint bytes).
const TOMBSTONE_OVERHEAD: usize = 24;

/// What one retention sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffsetsExpiry {
    /// Committed offsets removed.
    pub expired_offsets: usize,
    /// Groups deleted (Empty with no offset left): each name, and the generation its
    /// coordinator last reported (or its stored record had; -1 for none), so that an
    /// embedding broker forgets only a group that has not moved on since.
    pub deleted_groups: Vec<(String, i32)>,
    /// Offsets partitions whose tombstones could not be written (retried next sweep).
    pub failures: usize,
}

/// Which offsets of a group may expire, and from when their retention counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis<'a> {
    /// The group has members (or is about to be stored Empty): nothing expires.
    Keep,
    /// A Stable consumer group: the offsets of topics outside these, from each commit.
    Unsubscribed(&'a [String]),
    /// Empty since then (its stored record's timestamp).
    EmptySince(i64),
    /// Each offset from its own commit.
    EachCommit,
}

/// What the removal rules need of a group: from its coordinator's membership, or, for a
/// group the coordinator has not described since the store opened (an offline tool), from
/// its stored record (a record with members is a Stable group).
#[derive(Debug, PartialEq, Eq)]
struct GroupView {
    /// It has members (joining ones included).
    live: bool,
    stable: bool,
    consumer: bool,
    /// The topics its members subscribe to, when known.
    topics: Option<Vec<String>>,
}

fn view(membership: Option<&GroupMembership>, stored: Option<&GroupMetadataValue>) -> GroupView {
    match (membership, stored) {
        (Some(m), _) => GroupView {
            // A group whose last member left during a rebalance is not Empty yet (Kafka's
            // state decides, not the member count).
            live: !m.members.is_empty() || m.state != GroupState::Empty,
            stable: m.state == GroupState::Stable,
            consumer: m.is_consumer_group(),
            topics: m.subscribed_topics.clone(),
        },
        (None, Some(v)) if !v.members.is_empty() => {
            let consumer = v.protocol_type == CONSUMER_PROTOCOL_TYPE;
            let topics = consumer
                .then(|| {
                    let mut all = Vec::new();
                    for member in &v.members {
                        all.extend(codec::subscription_topics(&member.subscription)?);
                    }
                    all.sort();
                    all.dedup();
                    Some(all)
                })
                .flatten();
            GroupView {
                live: true,
                stable: true,
                consumer,
                topics,
            }
        }
        (None, _) => GroupView {
            live: false,
            stable: false,
            consumer: false,
            topics: None,
        },
    }
}

fn basis<'a>(view: &'a GroupView, stored: Option<&GroupMetadataValue>) -> Basis<'a> {
    if view.live {
        return match view.topics.as_deref() {
            Some(topics) if view.stable && view.consumer => Basis::Unsubscribed(topics),
            _ => Basis::Keep,
        };
    }
    match stored {
        // Emptied, but the Empty record is still on its way.
        Some(v) if !v.members.is_empty() => Basis::Keep,
        Some(v) if v.current_state_timestamp >= 0 => Basis::EmptySince(v.current_state_timestamp),
        _ => Basis::EachCommit,
    }
}

/// A tombstone to write, and what it removes.
enum Removal {
    Offset(String, TopicPartition),
    Group(String),
}

/// What a run of removals did: what was applied (and written) before it stopped, and
/// why it stopped early, if it did.
#[derive(Default)]
struct Removed {
    offsets: usize,
    groups: Vec<(String, i32)>,
    end: Option<Offset>,
    error: Option<CoordinatorError>,
}

impl Offsets<'_> {
    /// Removes the committed offsets past `offsets.retention.minutes` and deletes the
    /// groups left Empty with nothing (module docs give Kafka's rules), durably as
    /// `eoslog.internal.durability` asks. The store's maintenance calls it every
    /// `offsets.retention.check.interval.ms`. A partition whose write fails keeps what it
    /// had and is retried by the next sweep.
    pub fn remove_expired(&self) -> OffsetsExpiry {
        let now = self.store.now_ms();
        let retention = self.store.config().offsets_retention_ms;
        let mut out = OffsetsExpiry::default();
        for k in 0..self.state().partitions.len() {
            // What was removed before a failure is reported too: it is gone from memory.
            let r = self.sweep_partition(k, now, retention);
            out.expired_offsets += r.offsets;
            out.deleted_groups.extend(r.groups);
            if let Some(e) = r.error {
                out.failures += 1;
                tracing::warn!(target: "eoslog::coordinator", partition = k, error = %e, "offsets expiry failed; retried at the next sweep");
            }
        }
        out
    }

    /// DeleteGroups for one group: an Empty group (or a simple consumer's) loses every
    /// offset, pending ones included, and its stored record; its membership is forgotten.
    ///
    /// # Errors
    /// `GROUP_ID_NOT_FOUND` for a group with no member, offset or record, and not a
    /// simple group emptied since it was last deleted (the empty id among them: Kafka
    /// accepts it in DeleteGroups); `INVALID_GROUP_ID` for an id longer
    /// than a Kafka string; `NON_EMPTY_GROUP` for a group with members; `COORDINATOR_LOAD_IN_PROGRESS`;
    /// the storage error of the append or its fsync.
    pub fn delete_group(&self, group_id: &str) -> Result<(), CoordinatorError> {
        self.remove_in_group(group_id, |s, members| {
            if view(members.get(group_id), s.groups.get(group_id)).live {
                return Err(CoordinatorError::NonEmptyGroup);
            }
            let mut tps: BTreeSet<&TopicPartition> = pending_partitions(s, group_id);
            tps.extend(s.committed.get(group_id).into_iter().flat_map(|c| c.keys()));
            let mut removals: Vec<Removal> = tps
                .into_iter()
                .map(|tp| Removal::Offset(group_id.to_owned(), tp.clone()))
                .collect();
            removals.push(Removal::Group(group_id.to_owned()));
            Ok((removals, ()))
        })
    }

    /// OffsetDelete (KIP-496): deletes `group_id`'s offsets of `partitions`, answering per
    /// partition in order. An Empty group loses any; a consumer group with members only
    /// those of topics no member subscribes to (the others, and every topic while the
    /// subscriptions are not known, answer `GROUP_SUBSCRIBED_TO_TOPIC`, as Kafka's
    /// `isSubscribedToTopic` does). A partition with no offset answers success. A
    /// transaction's pending offset of a deleted partition is dropped with it.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`; `GROUP_ID_NOT_FOUND`; `NON_EMPTY_GROUP` for a group with members
    /// that is not a consumer group; `COORDINATOR_LOAD_IN_PROGRESS`; the storage error of
    /// the append or its fsync.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Result<(), CoordinatorError>>, CoordinatorError> {
        if group_id.is_empty() {
            return Err(CoordinatorError::InvalidGroupId);
        }
        self.remove_in_group(group_id, |s, members| {
            let v = view(members.get(group_id), s.groups.get(group_id));
            if v.live && !v.consumer {
                return Err(CoordinatorError::NonEmptyGroup);
            }
            let subscribed = |topic: &str| match (&v.topics, v.live) {
                (_, false) => false,
                (Some(topics), true) => topics.iter().any(|t| t == topic),
                (None, true) => true,
            };
            let pending = pending_partitions(s, group_id);
            let committed = s.committed.get(group_id);
            let mut answers = Vec::with_capacity(partitions.len());
            let mut removals = Vec::new();
            let mut seen = HashSet::new();
            for tp in partitions {
                if subscribed(&tp.topic) {
                    answers.push(Err(CoordinatorError::GroupSubscribedToTopic {
                        topic: tp.topic.to_string(),
                    }));
                    continue;
                }
                let stored = committed.is_some_and(|c| c.contains_key(tp)) || pending.contains(tp);
                if stored && seen.insert(tp) {
                    removals.push(Removal::Offset(group_id.to_owned(), tp.clone()));
                }
                answers.push(Ok(()));
            }
            Ok((removals, answers))
        })
    }

    /// Runs `plan` on `group_id`'s partition state and membership, both held, and writes
    /// and applies the removals it returns before they are released; then waits for
    /// durability. `GROUP_ID_NOT_FOUND` for a group nothing is known of.
    fn remove_in_group<T>(
        &self,
        group_id: &str,
        plan: impl FnOnce(
            &PartState,
            &HashMap<String, GroupMembership>,
        ) -> Result<(Vec<Removal>, T), CoordinatorError>,
    ) -> Result<T, CoordinatorError> {
        if group_id.len() > MAX_STRING {
            return Err(CoordinatorError::InvalidGroupId);
        }
        let now = self.store.now_ms();
        let k = self.partition_for(group_id) as usize;
        let mut slot = self.state().partitions[k].lock();
        let s = slot.as_mut().ok_or(CoordinatorError::CoordinatorLoadInProgress)?;
        let members = self.state().members[k].lock();
        if !s.knows(&members, group_id) {
            return Err(CoordinatorError::GroupIdNotFound);
        }
        let (removals, answer) = plan(s, &members)?;
        match self.apply_removals(slot, members, removals, now).error {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }

    fn sweep_partition(&self, k: usize, now: i64, retention: i64) -> Removed {
        let mut slot = self.state().partitions[k].lock();
        let Some(s) = slot.as_mut() else {
            return Removed::default(); // reloading: the next sweep sees it
        };
        let members = self.state().members[k].lock();
        let mut groups: BTreeSet<&str> = BTreeSet::new();
        groups.extend(s.committed.keys().map(String::as_str));
        groups.extend(s.groups.keys().map(String::as_str));
        groups.extend(s.emptied.iter().map(String::as_str));
        groups.extend(members.keys().map(String::as_str));
        let mut removals = Vec::new();
        for g in groups {
            let v = view(members.get(g), s.groups.get(g));
            let b = basis(&v, s.groups.get(g));
            if b == Basis::Keep {
                continue;
            }
            let pending = pending_partitions(s, g);
            let mut left = 0;
            let mut expired: Vec<&TopicPartition> = Vec::new();
            for (tp, c) in s.committed.get(g).into_iter().flatten() {
                let v = &c.value;
                let from = match b {
                    Basis::EmptySince(t) => t,
                    _ => v.commit_timestamp,
                };
                let due = match b {
                    Basis::Unsubscribed(topics) if topics.iter().any(|t| *t == *tp.topic) => false,
                    _ if v.expire_timestamp >= 0 => now >= v.expire_timestamp,
                    _ => now.saturating_sub(from) >= retention,
                };
                if due && !pending.contains(tp) {
                    expired.push(tp);
                } else {
                    left += 1;
                }
            }
            expired.sort();
            removals.extend(
                expired
                    .into_iter()
                    .map(|tp| Removal::Offset(g.to_owned(), tp.clone())),
            );
            let empty = !matches!(b, Basis::Unsubscribed(_));
            if empty && left == 0 && s.open_by_group.get(g).is_none_or(HashSet::is_empty) {
                removals.push(Removal::Group(g.to_owned()));
            }
        }
        self.apply_removals(slot, members, removals, now)
    }

    /// Writes and applies `removals` with both locks still held, then releases them and
    /// waits for durability.
    fn apply_removals(
        &self,
        mut slot: MutexGuard<'_, Option<PartState>>,
        mut members: MutexGuard<'_, HashMap<String, GroupMembership>>,
        removals: Vec<Removal>,
        now: i64,
    ) -> Removed {
        let Some(s) = slot.as_mut() else {
            return Removed::default();
        };
        let mut removed = self.write_removals(s, &mut members, removals, now);
        let log = s.log.clone();
        drop(members);
        drop(slot);
        if let Err(e) = self.durable(&log, removed.end) {
            removed.error.get_or_insert(e);
        }
        removed
    }

    /// Writes tombstones for `removals` in batches no larger than the offsets topic's
    /// `max.message.bytes`, applying each batch once appended.
    fn write_removals(
        &self,
        s: &mut PartState,
        members: &mut HashMap<String, GroupMembership>,
        removals: Vec<Removal>,
        now: i64,
    ) -> Removed {
        let max_batch = usize::try_from(s.log.config().max_message_bytes).unwrap_or(usize::MAX);
        let mut out = Removed::default();
        let mut chunk: Vec<(Removal, Vec<u8>)> = Vec::new();
        let mut size = crate::batch::HEADER_SIZE;
        for r in removals {
            let key = match &r {
                Removal::Offset(g, tp) => codec::encode_offset_key(g, &tp.topic, tp.partition),
                Removal::Group(g) => codec::encode_group_key(g),
            };
            let len = key.len() + TOMBSTONE_OVERHEAD;
            if !chunk.is_empty() && size + len > max_batch {
                if let Err(e) = write_chunk(s, members, std::mem::take(&mut chunk), now, &mut out) {
                    out.error = Some(e);
                    return out;
                }
                size = crate::batch::HEADER_SIZE;
            }
            size += len;
            chunk.push((r, key));
        }
        if !chunk.is_empty() {
            if let Err(e) = write_chunk(s, members, chunk, now, &mut out) {
                out.error = Some(e);
            }
        }
        out
    }
}

/// Appends one batch of tombstones and applies it: offsets (and the pending ones of the
/// same partitions) and stored groups leave the partition's state, and a deleted group's
/// membership is forgotten.
fn write_chunk(
    s: &mut PartState,
    members: &mut HashMap<String, GroupMembership>,
    chunk: Vec<(Removal, Vec<u8>)>,
    now: i64,
    out: &mut Removed,
) -> Result<(), CoordinatorError> {
    let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = chunk.iter().map(|(_, k)| (k.clone(), None)).collect();
    let end = append_records(&s.log, &records, now, None, None)?;
    let first = end.0 - records.len() as i64;
    for (n, (r, _)) in chunk.into_iter().enumerate() {
        match r {
            Removal::Offset(g, tp) => {
                tracing::debug!(target: "eoslog::coordinator", group = %g, partition = %tp, "offset removed");
                // A simple consumer's group left with nothing lives on, Empty, until the
                // next sweep, a DeleteGroups or the Group removal that follows in this run
                // (`PartState::note_loss`).
                s.replay_committed(g, tp, first + n as i64, None);
                out.offsets += 1;
            }
            Removal::Group(g) => {
                tracing::info!(target: "eoslog::coordinator", group = %g, "group deleted");
                let stored = s.groups.get(&g).map(|v| v.generation);
                s.replay_group(g.clone(), None, first + n as i64);
                s.committed.remove(&g);
                let generation = match members.remove(&g) {
                    Some(m) => m.generation,
                    None => stored.unwrap_or(-1),
                };
                out.groups.push((g, generation));
            }
        }
    }
    out.end = Some(end);
    Ok(())
}

/// The partitions for which an open transaction holds offsets of `group`.
fn pending_partitions<'s>(s: &'s PartState, group: &str) -> BTreeSet<&'s TopicPartition> {
    s.open_by_group
        .get(group)
        .into_iter()
        .flatten()
        .filter_map(|pid| s.pending.get(pid).and_then(|g| g.get(group)))
        .flat_map(|o| o.keys())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupMember;

    /// A stored record; each member subscribes to `topics` (consumer protocol, version 0).
    fn stored(members: usize, at: i64, topics: &[&str]) -> GroupMetadataValue {
        let mut subscription = 0i16.to_be_bytes().to_vec();
        subscription.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            subscription.extend_from_slice(&(t.len() as i16).to_be_bytes());
            subscription.extend_from_slice(t.as_bytes());
        }
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            current_state_timestamp: at,
            members: (0..members)
                .map(|i| crate::GroupMemberMetadata {
                    member_id: format!("m{i}"),
                    subscription: subscription.clone(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn membership(members: usize, topics: Option<&[&str]>, state: GroupState) -> GroupMembership {
        GroupMembership {
            generation: 4,
            members: (0..members)
                .map(|i| GroupMember {
                    member_id: format!("m{i}"),
                    instance_id: None,
                })
                .collect(),
            state,
            protocol_type: "consumer".into(),
            subscribed_topics: topics.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn basis_of(m: Option<&GroupMembership>, v: Option<&GroupMetadataValue>) -> String {
        format!("{:?}", basis(&view(m, v), v))
    }

    #[test]
    fn retention_counts_from_when_the_group_emptied_or_from_each_commit() {
        use GroupState::{Empty, PreparingRebalance, Stable};
        let keep = format!("{:?}", Basis::Keep);
        // A simple consumer's group: nobody described it and nothing is stored.
        assert_eq!(basis_of(None, None), "EachCommit");
        // Members: nothing expires, whether the broker said so or the stored record does.
        assert_eq!(
            basis_of(Some(&membership(2, None, Stable)), Some(&stored(0, 5, &[]))),
            keep
        );
        assert_eq!(
            basis_of(None, Some(&stored(2, 5, &["in"]))),
            r#"Unsubscribed(["in"])"#
        );
        // ... unless the group is a Stable consumer group whose subscriptions are known.
        let known = membership(2, Some(&["in"]), Stable);
        assert_eq!(basis_of(Some(&known), None), r#"Unsubscribed(["in"])"#);
        // Joining (a member is joining an Empty group) or rebalancing: nothing expires.
        assert_eq!(
            basis_of(
                Some(&membership(1, None, PreparingRebalance)),
                Some(&stored(0, 5, &[]))
            ),
            keep
        );
        assert_eq!(
            basis_of(Some(&membership(2, Some(&["in"]), PreparingRebalance)), None),
            keep
        );
        // Empty and stored Empty: from the record's timestamp.
        let empty = membership(0, None, Empty);
        assert_eq!(basis_of(Some(&empty), Some(&stored(0, 5, &[]))), "EmptySince(5)");
        assert_eq!(basis_of(None, Some(&stored(0, 7, &[]))), "EmptySince(7)");
        // Emptied, but its last record still lists members: wait for the Empty record.
        assert_eq!(basis_of(Some(&empty), Some(&stored(3, 5, &[]))), keep);
        // Empty and never stored, or stored without a timestamp (old record versions).
        assert_eq!(basis_of(Some(&empty), None), "EachCommit");
        assert_eq!(basis_of(None, Some(&stored(0, -1, &[]))), "EachCommit");
    }

    #[test]
    fn subscriptions_read_at_every_version_and_damage_is_unknown() {
        let sub = stored(1, 0, &["a", "b"]).members[0].subscription.clone();
        assert_eq!(
            codec::subscription_topics(&sub),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        let mut later = sub.clone();
        later[1] = 3;
        later.extend_from_slice(b"user data and owned partitions follow");
        assert_eq!(codec::subscription_topics(&later).map(|t| t.len()), Some(2));
        assert_eq!(codec::subscription_topics(b"\x00"), None);
        assert_eq!(
            codec::subscription_topics(b"\xff\xff\x00\x00\x00\x00"),
            None,
            "negative version"
        );
        assert_eq!(
            codec::subscription_topics(b"\x00\x00\x7f\xff\xff\xff"),
            None,
            "count past the end"
        );
        assert_eq!(
            codec::subscription_topics(b"\x00\x00\x00\x00\x00\x01\x00\x09ab"),
            None,
            "short topic"
        );
    }
}
