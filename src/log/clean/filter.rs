//! What a clean keeps: the offset map of the dirty section, the transaction bookkeeping
//! that tells aborted data from committed, and the decision for each batch (Kafka's
//! `LogCleaner` rules, written out in `docs/FORMAT.md` §8).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::batch::{empty_batch_like, rebuild_with, ControlType, Record, RecordBatch};
use crate::error::BatchError;
use crate::txn_index::AbortedTxn;

/// Heap bytes an entry of the offset map costs beyond its key: the boxed key's pointer and
/// length and the offset (24 bytes a bucket), the table's control byte and spare capacity
/// (up to half the buckets empty after a doubling), and the allocator's rounding of the key.
const ENTRY_OVERHEAD: usize = 64;

/// The latest offset of each key in the dirty section (Kafka's `OffsetMap`). Kafka keeps an
/// MD5 of each key, which two keys can share; this keeps the key itself, so a collision can
/// never remove the wrong record.
#[derive(Debug, Default)]
pub(super) struct OffsetMap {
    map: hashbrown::HashMap<Box<[u8]>, i64, foldhash::fast::RandomState>,
    bytes: usize,
}

impl OffsetMap {
    pub(super) fn put(&mut self, key: &[u8], offset: i64) {
        match self.map.get_mut(key) {
            Some(o) => *o = offset,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.map.insert(key.into(), offset);
            }
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Estimated heap bytes held (compared with `log.cleaner.dedupe.buffer.size`).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Aborted transactions met while walking the cleaned range in offset order (Kafka's
/// `CleanedTransactionMetadata`): which data batches are aborted, and whether a marker may
/// go because no data of its transaction was met.
#[derive(Debug, Default)]
pub(super) struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset.
    upcoming: VecDeque<AbortedTxn>,
    /// Aborted transactions whose data is being walked: the entry and whether a batch of it
    /// was met in this clean.
    aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers with committed (not aborted) transactional data met since their last marker.
    committed: HashSet<i64>,
}

impl TxnTracker {
    /// `aborted`: every aborted transaction whose marker lies at or after the cleaned range's
    /// start, from the segments' transaction indexes.
    pub(super) fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|e| e.first_offset);
        TxnTracker {
            upcoming: aborted.into(),
            ..TxnTracker::default()
        }
    }

    fn reach(&mut self, offset: i64) {
        while self.upcoming.front().is_some_and(|e| e.first_offset <= offset) {
            if let Some(e) = self.upcoming.pop_front() {
                self.aborted.insert(e.producer_id, (e, false));
            }
        }
    }

    /// A data batch: whether it belongs to an aborted transaction (its records go).
    pub(super) fn on_data(&mut self, batch: &RecordBatch<'_>) -> bool {
        self.reach(batch.last_offset());
        if !batch.is_transactional() {
            return false;
        }
        let pid = batch.producer_id().0;
        match self.aborted.get_mut(&pid) {
            // Data of an aborted transaction lies between its first offset and its marker.
            Some((e, seen)) if batch.base_offset() < e.last_offset => {
                *seen = true;
                true
            }
            _ => {
                self.committed.insert(pid);
                false
            }
        }
    }

    /// A control batch: whether the marker may be removed (no data of its transaction met in
    /// this clean), and for an ABORT whose data was met, its index entry, which the cleaned
    /// segment keeps (KAFKA-13727).
    pub(super) fn on_control(
        &mut self,
        batch: &RecordBatch<'_>,
        control: Option<ControlType>,
    ) -> (bool, Option<AbortedTxn>) {
        self.reach(batch.last_offset());
        let pid = batch.producer_id().0;
        match control {
            // An empty control batch was cleaned before: nothing depends on it.
            None => (true, None),
            Some(ControlType::Abort) => match self.aborted.remove(&pid) {
                Some((e, true)) => (false, Some(e)),
                _ => (true, None),
            },
            Some(ControlType::Commit) => (!self.committed.remove(&pid), None),
            Some(ControlType::Other(_)) => (false, None),
        }
    }
}

/// The last batch of a producer the log still tracks: kept (emptied if need be) so that its
/// sequence and epoch survive a rebuild of producer state from the log.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastOfProducer {
    /// Last offset of its last data batch, if it has one in the producer state.
    pub(super) last_data_offset: Option<i64>,
    pub(super) epoch: i16,
}

/// The fixed inputs of one clean.
#[derive(Debug)]
pub(super) struct Rules<'a> {
    pub(super) map: &'a OffsetMap,
    /// End of the mapped range: records from here on were not mapped and are kept as they
    /// are (Kafka's `pastLatestOffset`).
    pub(super) map_end: i64,
    pub(super) producers: &'a HashMap<i64, LastOfProducer>,
    /// The clean's clock reading.
    pub(super) now_ms: i64,
    pub(super) delete_retention_ms: i64,
}

/// What becomes of one batch.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Written as it was, byte for byte.
    Original,
    /// Re-encoded with fewer records or a new delete horizon.
    Rebuilt(Vec<u8>),
    /// Every record goes but the batch stays, empty.
    Emptied(Vec<u8>),
    /// Removed.
    Dropped,
}

/// Counts a clean reports.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FilterStats {
    pub(super) records_read: u64,
    pub(super) records_kept: u64,
    pub(super) aborted_batches_removed: u64,
    pub(super) markers_removed: u64,
    pub(super) tombstones_removed: u64,
}

impl Rules<'_> {
    fn is_last_of_producer(&self, batch: &RecordBatch<'_>) -> bool {
        let pid = batch.producer_id().0;
        pid >= 0
            && self
                .producers
                .get(&pid)
                .is_some_and(|p| match p.last_data_offset {
                    Some(last) => batch.last_offset() == last,
                    None => batch.is_control() && batch.producer_epoch().0 == p.epoch,
                })
    }

    /// Decides `batch` (Kafka's `checkBatchRetention` and `shouldRetainRecord`). Returns the
    /// outcome and, for an ABORT marker kept with data of its transaction, the index entry
    /// the cleaned segment carries.
    pub(super) fn decide(
        &self,
        batch: &RecordBatch<'_>,
        txns: &mut TxnTracker,
        stats: &mut FilterStats,
    ) -> Result<(Outcome, Option<AbortedTxn>), BatchError> {
        let (can_discard, entry, discard_records) = if batch.is_control() {
            let control = batch.marker()?.map(|m| m.control_type);
            let (can, entry) = txns.on_control(batch, control);
            let past_horizon = batch.has_delete_horizon() && batch.base_timestamp() <= self.now_ms;
            (can, entry, can && past_horizon)
        } else {
            let aborted = txns.on_data(batch);
            if aborted {
                stats.aborted_batches_removed += 1;
            }
            (aborted, None, aborted)
        };
        let retain_empty = self.is_last_of_producer(batch);
        let records = batch.records()?;
        let mut kept: Vec<Record<'_>> = Vec::new();
        let mut total = 0usize;
        let mut tombstones = false;
        for r in records.iter() {
            let r = r?;
            total += 1;
            if discard_records {
                continue;
            }
            let keep = batch.is_control() || self.keeps_record(batch, &r, stats);
            if keep {
                tombstones |= !batch.is_control() && r.value.is_none();
                kept.push(r);
            }
        }
        stats.records_read += total as u64;
        stats.records_kept += kept.len() as u64;
        if batch.is_control() && discard_records && !retain_empty {
            stats.markers_removed += 1;
        }
        if kept.is_empty() {
            let outcome = match (retain_empty, total) {
                (true, 0) => Outcome::Original, // already empty
                (true, _) => Outcome::Emptied(empty_batch_like(batch)),
                (false, _) => Outcome::Dropped,
            };
            return Ok((outcome, entry));
        }
        // A tombstone, or a marker whose transaction has no data left, starts its delete
        // horizon at the first clean that keeps it (KIP-534).
        let needs_horizon =
            (tombstones || (batch.is_control() && can_discard)) && !batch.has_delete_horizon();
        if kept.len() == total && !needs_horizon {
            return Ok((Outcome::Original, entry));
        }
        let horizon = if batch.has_delete_horizon() {
            Some(batch.base_timestamp())
        } else if needs_horizon {
            Some(self.now_ms.saturating_add(self.delete_retention_ms))
        } else {
            None
        };
        Ok((Outcome::Rebuilt(rebuild_with(batch, &kept, horizon)?), entry))
    }

    /// Kafka's `shouldRetainRecord` for a data record: past the mapped range, or the latest
    /// of its key and either a value or a tombstone whose delete horizon has not passed. A
    /// record without a key has no place in a compacted log and goes (once mapped past).
    fn keeps_record(&self, batch: &RecordBatch<'_>, r: &Record<'_>, stats: &mut FilterStats) -> bool {
        if r.offset >= self.map_end {
            return true;
        }
        let Some(key) = r.key else {
            return false;
        };
        if self.map.get(key).is_some_and(|latest| r.offset < latest) {
            return false;
        }
        if r.value.is_some() {
            return true;
        }
        let keep = !batch.has_delete_horizon() || self.now_ms < batch.base_timestamp();
        if !keep {
            stats.tombstones_removed += 1;
        }
        keep
    }
}
