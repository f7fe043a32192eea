//! Replica truncation.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::error::StorageError;

use crate::segment::{file_name, Segment};
use crate::types::Offset;

use super::recovery::segment_next_offset;
use super::snapshots::load_producer_state;
use super::watermarks::HwMove;
use super::{fs_remove, Log, Writer};

impl Log {
    /// Truncates the log to end at `offset` (replica divergence). A batch straddling `offset`
    /// is removed whole; producer state is rebuilt from the newest snapshot at or below it.
    ///
    /// # Errors
    /// Storage failures.
    pub fn truncate_to(&self, offset: Offset) -> Result<(), StorageError> {
        self.remove_set_aside(false);
        let _swap = self.swap_lock.lock();
        let mut w = self.writer.lock();
        self.check_writable()?;
        if offset.0 < 0 {
            return Err(StorageError::InvalidOffset { offset });
        }
        self.truncate_locked(&mut w, offset.0).map_err(|e| self.poison(e))
    }

    pub(super) fn truncate_locked(&self, w: &mut Writer, target: i64) -> Result<(), StorageError> {
        let log_end = self.log_end.load(Ordering::Acquire);
        if target >= log_end {
            return Ok(());
        }
        if w.segments.first().is_none_or(|s| s.base_offset > target) {
            return self.truncate_fully_locked(w, target);
        }
        tracing::info!(dir = %self.dir.display(), target, log_end, "truncating");
        self.truncate_cleaner_state(target);
        let _cutting = TruncationUnderWay::begin(&self.truncation_seq);
        let keep = w.segments.partition_point(|s| s.base_offset <= target);
        let removed: Vec<Arc<Segment>> = w.segments.drain(keep..).collect();
        *self.segments.write() = Arc::new(w.segments.clone());
        for s in &removed {
            self.delete_segment(s)?;
        }
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        active.make_active(&*self.fs)?;
        active.truncate_to(&*self.fs, target)?;
        active.flush()?;
        // With `eoslog.roll.fsync=maintenance` the segments rolled since the recovery point
        // may not be durable yet; the recovery point set below covers them.
        self.sync_rolled_below_active(w)?;
        // The new end is where the remaining data ends. Kafka sets it to `target` even when a
        // batch straddling `target` was removed whole, which leaves a hole a follower would
        // never refetch and which a restart silently undoes; eoslog keeps the two equal.
        let target = segment_next_offset(&*self.fs, &active)?;
        self.sync_dir()?;
        self.aborted.write().truncate_to(target);
        w.epochs.truncate_from_end(&*self.fs, target)?;
        // Producer state: newest snapshot <= target, replayed up to target.
        let stale: Vec<i64> = w.snapshots.range(target + 1..).copied().collect();
        for o in stale {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        self.log_end.store(target, Ordering::Release);
        let segments = w.segments.clone();
        load_producer_state(
            &*self.fs,
            &self.dir,
            &mut w.psm,
            &mut w.snapshots,
            &segments,
            target,
        )?;
        w.psm.map_end_offset = target;
        // A reload from an older snapshot must not bring back producers expired since.
        w.psm.remove_expired(self.clock.now_ms());
        w.txn_started_ms
            .retain(|pid, _| w.psm.producers.get(*pid).is_some_and(|e| e.txn_first_offset >= 0));
        let start = self.log_start.load(Ordering::Acquire).min(target);
        self.log_start.store(start, Ordering::Release);
        // The active segment was flushed above and the earlier ones at their rolls (or
        // above, when rolls defer their fsyncs): the recovery point is the new end.
        w.recovery_point = target;
        w.recovery_position = w.segments.last().map(|s| (s.base_offset, s.size()));
        // Everything below the new end was fsynced (the kept segment just now, the earlier
        // ones when they rolled or just now): that is the durable offset, up or down.
        self.sync.lock().truncated(target);
        let hw = self.high_watermark.load(Ordering::Acquire).min(target);
        self.publish_watermarks(w, HwMove::Reset(hw));
        w.bytes_since_snapshot = w.bytes_since_snapshot.max(1);
        self.take_snapshot(w, target)?;
        self.write_checkpoint(w)
    }

    /// Deletes everything and starts an empty log at `offset` (a follower too far behind).
    /// No producer state survives.
    ///
    /// # Errors
    /// Storage failures.
    pub fn truncate_fully_and_start_at(&self, offset: Offset) -> Result<(), StorageError> {
        self.remove_set_aside(false);
        let _swap = self.swap_lock.lock();
        let mut w = self.writer.lock();
        self.check_writable()?;
        if offset.0 < 0 {
            return Err(StorageError::InvalidOffset { offset });
        }
        self.truncate_fully_locked(&mut w, offset.0)
            .map_err(|e| self.poison(e))
    }

    pub(super) fn truncate_fully_locked(&self, w: &mut Writer, offset: i64) -> Result<(), StorageError> {
        tracing::info!(dir = %self.dir.display(), offset, "truncating fully");
        self.truncate_cleaner_state(offset);
        let _cutting = TruncationUnderWay::begin(&self.truncation_seq);
        let now = self.clock.now_ms();
        for s in w.segments.drain(..) {
            self.delete_segment(&s)?;
        }
        for o in std::mem::take(&mut w.snapshots) {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
        }
        let seg = Arc::new(Segment::create(&*self.fs, &self.dir, offset, self.limits(), now)?);
        self.sync_dir()?;
        w.segments.push(seg);
        *self.segments.write() = Arc::new(w.segments.clone());
        w.psm.clear(offset);
        w.txn_started_ms.clear();
        w.epochs.clear(&*self.fs)?;
        self.aborted.write().clear();
        self.log_start.store(offset, Ordering::Release);
        self.log_end.store(offset, Ordering::Release);
        self.publish_watermarks(w, HwMove::Reset(offset));
        w.recovery_point = offset;
        w.recovery_position = Some((offset, 0));
        w.bytes_since_snapshot = 0;
        self.sync.lock().truncated(offset);
        self.write_checkpoint(w)
    }
}

/// Makes the log's truncation sequence odd while a truncation runs and even again when it
/// ends, however it ends: a reader that saw it odd, or saw it change, reads again
/// ([`Log::racing_truncations`]).
struct TruncationUnderWay<'a>(&'a AtomicU64);

impl<'a> TruncationUnderWay<'a> {
    fn begin(seq: &'a AtomicU64) -> Self {
        seq.fetch_add(1, Ordering::AcqRel);
        TruncationUnderWay(seq)
    }
}

impl Drop for TruncationUnderWay<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
