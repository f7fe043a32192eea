//! Offsets retention (`offsets.retention.minutes`, KIP-211) and the deletion of the groups
//! it leaves with nothing: Kafka's `GroupMetadataManager.cleanupGroupMetadata`, which the
//! store's maintenance runs every `offsets.retention.check.interval.ms`.
//!
//! Which offsets of a group expire (Kafka's `GroupMetadata.removeExpiredOffsets`):
//! - a group with members keeps them all. (Kafka also expires, in a Stable consumer group,
//!   the offsets of topics no member subscribes to (KIP-496); eoslog does not read the
//!   members' subscriptions and keeps those.)
//! - an Empty group's expire once the retention has passed since it became Empty: the
//!   `current_state_timestamp` of its stored record. A group emptied but not yet stored
//!   as Empty waits for its record.
//! - a group never stored (a simple consumer committing with generation -1, or one that
//!   emptied before it first settled): each offset the retention after its own commit.
//! - an offset written with an explicit expire timestamp (value version 1) expires then.
//! - an offset with a transactional commit pending stays until that transaction ends (its
//!   tombstone would also drop the pending offset when the partition reloads).
//!
//! Expired offsets get tombstones. A group that is then Empty, with no offset left and no
//! transaction pending, turns Dead: a tombstone for its metadata, and its membership is
//! forgotten, so the embedding broker forgets it too. The check and the tombstones happen
//! under one hold of the partition's mutex and of the membership map, so a commit, a
//! fetch or a join lands wholly before or wholly after a sweep.

use std::collections::HashSet;

use super::groups::GroupMembership;
use super::offsets::{append_records, Offsets, PartState};
use super::offsets_codec as codec;
use super::records::GroupMetadataValue;
use super::TopicPartition;

/// Bytes a tombstone record adds to a batch beyond its key (length, attributes, deltas,
/// null value, header count: at most this many varint bytes).
const TOMBSTONE_OVERHEAD: usize = 24;

/// What one retention sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffsetsExpiry {
    /// Committed offsets removed.
    pub expired_offsets: usize,
    /// Groups deleted (Empty with no offset left), by name.
    pub deleted_groups: Vec<String>,
    /// Offsets partitions whose tombstones could not be written (retried next sweep).
    pub failures: usize,
}

/// From when an offset's retention counts, for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// The group has members (or is about to be stored Empty): nothing expires.
    Keep,
    /// Empty since then (its stored record's timestamp).
    EmptySince(i64),
    /// Each offset from its own commit.
    EachCommit,
}

fn basis(membership: Option<&GroupMembership>, stored: Option<&GroupMetadataValue>) -> Basis {
    let live = match membership {
        Some(m) => !m.members.is_empty(),
        // Not described since the store opened: its stored record says.
        None => stored.is_some_and(|v| !v.members.is_empty()),
    };
    match stored {
        _ if live => Basis::Keep,
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

impl Offsets<'_> {
    /// Removes the committed offsets past `offsets.retention.minutes` and deletes the
    /// groups left Empty with nothing (module docs give Kafka's rules), writing tombstones
    /// in batches no larger than the offsets topic's `max.message.bytes`, durably as
    /// `eoslog.internal.durability` asks. The store's maintenance calls it every
    /// `offsets.retention.check.interval.ms`. A partition whose write fails keeps what it
    /// had and is retried by the next sweep.
    pub fn remove_expired(&self) -> OffsetsExpiry {
        let now = self.store.now_ms();
        let retention = self.store.config().offsets_retention_ms;
        let mut out = OffsetsExpiry::default();
        for k in 0..self.state().partitions.len() {
            match self.sweep_partition(k, now, retention, &mut out) {
                Ok(()) => {}
                Err(e) => {
                    out.failures += 1;
                    tracing::warn!(target: "eoslog::coordinator", partition = k, error = %e, "offsets expiry failed; retried at the next sweep");
                }
            }
        }
        out
    }

    fn sweep_partition(
        &self,
        k: usize,
        now: i64,
        retention: i64,
        out: &mut OffsetsExpiry,
    ) -> Result<(), super::CoordinatorError> {
        let mut slot = self.state().partitions[k].lock();
        let Some(s) = slot.as_mut() else {
            return Ok(()); // reloading: the next sweep sees it
        };
        let mut members = self.state().members.lock();
        let mut groups: HashSet<&str> = HashSet::new();
        groups.extend(s.committed.keys().map(String::as_str));
        groups.extend(s.groups.keys().map(String::as_str));
        groups.extend(
            members
                .keys()
                .map(String::as_str)
                .filter(|g| self.partition_for(g) as usize == k),
        );
        let mut removals = Vec::new();
        let mut groups: Vec<&str> = groups.into_iter().collect();
        groups.sort_unstable();
        for g in groups {
            let b = basis(members.get(g), s.groups.get(g));
            if b == Basis::Keep {
                continue;
            }
            let pending = pending_partitions(s, g);
            let mut left = 0;
            let mut expired: Vec<&TopicPartition> = Vec::new();
            for (tp, c) in s.committed.get(g).into_iter().flatten() {
                let v = &c.value;
                let due = if v.expire_timestamp >= 0 {
                    now >= v.expire_timestamp
                } else {
                    let from = match b {
                        Basis::EmptySince(t) => t,
                        _ => v.commit_timestamp,
                    };
                    now.saturating_sub(from) >= retention
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
            if left == 0 && s.open_by_group.get(g).is_none_or(HashSet::is_empty) {
                removals.push(Removal::Group(g.to_owned()));
            }
        }
        if removals.is_empty() {
            return Ok(());
        }
        let max_batch = usize::try_from(s.log.config().max_message_bytes).unwrap_or(usize::MAX);
        let mut end = None;
        let mut chunk: Vec<(Removal, Vec<u8>)> = Vec::new();
        let mut size = crate::batch::HEADER_SIZE;
        for r in removals {
            let key = match &r {
                Removal::Offset(g, tp) => codec::encode_offset_key(g, &tp.topic, tp.partition),
                Removal::Group(g) => codec::encode_group_key(g),
            };
            let len = key.len() + TOMBSTONE_OVERHEAD;
            if !chunk.is_empty() && size + len > max_batch {
                end = Some(self.write_removals(s, &mut members, std::mem::take(&mut chunk), now, out)?);
                size = crate::batch::HEADER_SIZE;
            }
            size += len;
            chunk.push((r, key));
        }
        if !chunk.is_empty() {
            end = Some(self.write_removals(s, &mut members, chunk, now, out)?);
        }
        let log = s.log.clone();
        drop(members);
        drop(slot);
        self.durable(&log, end)
    }

    /// Writes one batch of tombstones and applies them: offsets and stored groups leave
    /// the partition's state, a deleted group's membership is forgotten.
    fn write_removals(
        &self,
        s: &mut PartState,
        members: &mut std::collections::HashMap<String, GroupMembership>,
        chunk: Vec<(Removal, Vec<u8>)>,
        now: i64,
        out: &mut OffsetsExpiry,
    ) -> Result<crate::types::Offset, super::CoordinatorError> {
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = chunk.iter().map(|(_, k)| (k.clone(), None)).collect();
        let end = append_records(&s.log, &records, now, None, None)?;
        let first = end.0 - records.len() as i64;
        for (n, (r, _)) in chunk.into_iter().enumerate() {
            match r {
                Removal::Offset(g, tp) => {
                    tracing::debug!(target: "eoslog::coordinator", group = %g, partition = %tp, "offset expired");
                    s.replay_committed(g, tp, first + n as i64, None);
                    out.expired_offsets += 1;
                }
                Removal::Group(g) => {
                    tracing::info!(target: "eoslog::coordinator", group = %g, "group deleted: Empty with no offsets left");
                    s.groups.remove(&g);
                    s.committed.remove(&g);
                    members.remove(&g);
                    out.deleted_groups.push(g);
                }
            }
        }
        Ok(end)
    }
}

/// The partitions for which an open transaction holds offsets of `group`.
fn pending_partitions<'s>(s: &'s PartState, group: &str) -> HashSet<&'s TopicPartition> {
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

    fn stored(members: usize, at: i64) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            current_state_timestamp: at,
            members: (0..members)
                .map(|i| crate::GroupMemberMetadata {
                    member_id: format!("m{i}"),
                    instance_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    rebalance_timeout_ms: 1,
                    session_timeout_ms: 1,
                    subscription: Vec::new(),
                    assignment: Vec::new(),
                })
                .collect(),
        }
    }

    fn membership(members: usize) -> GroupMembership {
        GroupMembership {
            generation: 4,
            members: (0..members)
                .map(|i| GroupMember {
                    member_id: format!("m{i}"),
                    instance_id: None,
                })
                .collect(),
            rebalancing: false,
        }
    }

    #[test]
    fn retention_counts_from_when_the_group_emptied_or_from_each_commit() {
        // A simple consumer's group: nobody described it and nothing is stored.
        assert_eq!(basis(None, None), Basis::EachCommit);
        // Members: nothing expires, whether the broker said so or the stored record does.
        assert_eq!(basis(Some(&membership(2)), Some(&stored(0, 5))), Basis::Keep);
        assert_eq!(basis(None, Some(&stored(2, 5))), Basis::Keep);
        // Empty and stored Empty: from the record's timestamp.
        assert_eq!(
            basis(Some(&membership(0)), Some(&stored(0, 5))),
            Basis::EmptySince(5)
        );
        assert_eq!(basis(None, Some(&stored(0, 7))), Basis::EmptySince(7));
        // Emptied, but its last record still lists members: wait for the Empty record.
        assert_eq!(basis(Some(&membership(0)), Some(&stored(3, 5))), Basis::Keep);
        // Empty and never stored, or stored without a timestamp (old record versions).
        assert_eq!(basis(Some(&membership(0)), None), Basis::EachCommit);
        assert_eq!(basis(None, Some(&stored(0, -1))), Basis::EachCommit);
    }
}
