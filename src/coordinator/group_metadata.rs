//! Consumer groups' metadata records in `__consumer_offsets` (key version 2,
//! `GroupMetadataValue` version 3; `docs/FORMAT.md` §7.2).
//!
//! The embedding broker's group coordinator stores a group whenever it settles: Stable
//! after the leader's SyncGroup (members with their assignments), or Empty. After a
//! restart it reads them back ([`Offsets::stored_groups`]) and resumes each group at its
//! generation with its members, so that a broker restart costs no rebalance: Kafka's
//! coordinator loads the same records when it takes over a group. The offsets topic is
//! compacted, so only each group's latest record stays; a tombstone deletes a group.
//!
//! Records go through the group's offsets partition under its mutex, like offset
//! commits, so memory follows the log's order; the fsync (`eoslog.internal.durability`)
//! runs after the mutex is released.

use super::error::CoordinatorError;
use super::init_pid::MAX_STRING;
use super::offsets::{append_records, Offsets, PartState};
use super::offsets_codec as codec;
use super::records::GroupMetadataValue;

impl PartState {
    /// Applies a group metadata record (loading). A value of a newer version is skipped,
    /// as Kafka skips it. A damaged value forgets the group rather than failing the load
    /// (Kafka fails it): the record only spares a rebalance, and a forgotten group's
    /// members rejoin under new member ids, whereas resuming an older record could hand
    /// out a generation again.
    pub(super) fn replay_group(&mut self, group: String, value: Option<&[u8]>, at: i64) {
        match value.map(codec::decode_group_value) {
            None => {
                // The group is deleted: emptied or not, it is gone.
                self.emptied.remove(&group);
                self.groups.remove(&group);
            }
            Some(Ok(v)) => {
                self.groups.insert(group, v);
            }
            Some(Err(Some(version))) => {
                tracing::warn!(target: "eoslog::coordinator", version, offset = at, "skipping a group metadata value of unknown version");
            }
            Some(Err(None)) => {
                tracing::warn!(target: "eoslog::coordinator", %group, offset = at, "unreadable group metadata; the group is forgotten and its members rejoin");
                self.groups.remove(&group);
            }
        }
    }
}

impl Offsets<'_> {
    /// Stores `group_id`'s metadata (`None`: deletes it with a tombstone), durably as
    /// `eoslog.internal.durability` asks, before it returns.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`, `COORDINATOR_LOAD_IN_PROGRESS` while the group's offsets
    /// partition (re)loads, or the storage error of the append or its fsync.
    pub fn store_group(
        &self,
        group_id: &str,
        value: Option<&GroupMetadataValue>,
    ) -> Result<(), CoordinatorError> {
        if group_id.is_empty() || group_id.len() > MAX_STRING {
            return Err(CoordinatorError::InvalidGroupId);
        }
        let record = [(
            codec::encode_group_key(group_id),
            value.map(codec::encode_group_value),
        )];
        let now = self.store.now_ms();
        let (log, end) = self.with_group(group_id, |s| {
            let end = append_records(&s.log, &record, now, None, None)?;
            // Applied as the load replays it (a tombstone also forgets an emptied group).
            s.replay_group(group_id.to_owned(), record[0].1.as_deref(), end.0 - 1);
            Ok((s.log.clone(), end))
        })?;
        self.durable(&log, Some(end))
    }

    /// Every group's last stored metadata, by group id: what a restarted broker resumes.
    #[must_use]
    pub fn stored_groups(&self) -> Vec<(String, GroupMetadataValue)> {
        let mut out = Vec::new();
        for slot in &self.state().partitions {
            if let Some(s) = slot.lock().as_ref() {
                out.extend(s.groups.iter().map(|(g, v)| (g.clone(), v.clone())));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
