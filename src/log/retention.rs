//! Maintenance: producer expiry, retention, DeleteRecords and transaction timeouts.

use std::sync::{atomic::Ordering, Arc};

use crate::error::{AppendError, ReadError, StorageError};

use crate::segment::{file_name, Segment};
use crate::types::{Offset, ProducerId};

use super::txn::Fence;
use super::watermarks::HwMove;
use super::{fs_remove, io_err, AppendOutcome, Log, Writer};

/// What maintenance did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Producers expired.
    pub expired_producers: usize,
    /// Segments deleted by retention.
    pub deleted_segments: usize,
    /// Transactions aborted by the transaction timeout.
    pub aborted_transactions: usize,
}

impl Log {
    /// Expires producers, applies retention and (when enabled) aborts timed-out transactions,
    /// and removes the files of deleted segments once `file.delete.delay.ms` has passed.
    /// An embedder calls it periodically (Kafka runs these every few minutes).
    ///
    /// # Errors
    /// Storage failures.
    pub fn run_maintenance(&self) -> Result<MaintenanceReport, StorageError> {
        self.maintain(true)
    }

    /// [`Log::run_maintenance`], with retention only when `retention` is set: an embedder
    /// that checks retention less often than it checks transaction timeouts (Kafka's
    /// `log.retention.check.interval.ms`, 5 minutes) calls this between retention checks.
    ///
    /// # Errors
    /// Storage failures.
    pub fn maintain(&self, retention: bool) -> Result<MaintenanceReport, StorageError> {
        // Also after `eoslog.roll.fsync` changed to inline: rolls made before may be pending.
        self.sync_rolled()?;
        let now = self.clock.now_ms();
        let flush_ms = self.config().flush_ms;
        if flush_ms != i64::MAX {
            self.flush_if_due(flush_ms, now)?;
        }
        let expired_producers = self.writer.lock().psm.remove_expired(now);
        let deleted_segments = if retention {
            self.apply_retention()?
        } else {
            self.remove_set_aside(false);
            0
        };
        let mut aborted_transactions = 0;
        let timeout = self.config().transaction_timeout_ms;
        if timeout > 0 {
            // Which transactions timed out, by producer and first offset: each abort checks
            // again under its own lock hold that the transaction is still the open one.
            let timed_out: Vec<(i64, i64)> = {
                let w = self.writer.lock();
                w.txn_started_ms
                    .iter()
                    .filter(|(_, &t)| now - t > timeout)
                    .filter_map(|(&p, _)| Some((p, w.psm.producers.get(p)?.txn_first_offset)))
                    .collect()
            };
            for (pid, first) in timed_out {
                match self.abort_open(ProducerId(pid), Offset(first), Fence::Bump) {
                    Ok(Some(AppendOutcome::Appended(_))) => aborted_transactions += 1,
                    Ok(_) => {}
                    Err(AppendError::Storage(e)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, pid, "timeout abort failed"),
                }
            }
        }
        Ok(MaintenanceReport {
            expired_producers,
            deleted_segments,
            aborted_transactions,
        })
    }

    /// Deletes segments by `retention.bytes`, `retention.ms` and the log start offset, never
    /// at or above the high watermark. Returns the number deleted.
    ///
    /// # Errors
    /// Storage failures.
    pub fn apply_retention(&self) -> Result<usize, StorageError> {
        self.remove_set_aside(false);
        let _swap = self.swap_lock.lock();
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.retention_locked(&mut w).map_err(|e| self.poison(e))
    }

    pub(super) fn retention_locked(&self, w: &mut Writer) -> Result<usize, StorageError> {
        let now = self.clock.now_ms();
        let hw = self.high_watermark.load(Ordering::Acquire);
        let log_end = self.log_end.load(Ordering::Acquire);
        let log_start = self.log_start.load(Ordering::Acquire);
        let mut total: u64 = w.segments.iter().map(|s| s.size()).sum();
        let mut n = 0usize;
        let count = w.segments.len();
        for (i, s) in w.segments.iter().enumerate() {
            let upper = w.segments.get(i + 1).map_or(log_end, |nx| nx.base_offset);
            if upper > hw || (i + 1 == count && s.size() == 0) {
                break;
            }
            let by_start = upper <= log_start;
            let deletes = self.config().cleanup_policy.delete;
            let by_size = deletes
                && self.config().retention_bytes >= 0
                && total.saturating_sub(s.size()) >= self.config().retention_bytes as u64;
            let by_time = deletes && self.config().retention_ms >= 0 && {
                let ts = s.max_timestamp(&*self.fs)?;
                ts >= 0 && now - ts > self.config().retention_ms
            };
            if !(by_start || by_size || by_time) {
                break;
            }
            total -= s.size();
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        if n == count {
            // Everything goes: roll an empty active segment first.
            self.roll(w, log_end)?;
        }
        let deleted: Vec<Arc<Segment>> = w.segments.drain(..n).collect();
        let new_start = w
            .segments
            .first()
            .map_or(log_end, |s| s.base_offset)
            .max(log_start);
        *self.segments.write() = Arc::new(w.segments.clone());
        self.log_start.store(new_start, Ordering::Release);
        self.publish_watermarks(w, HwMove::Keep);
        for s in &deleted {
            self.delete_segment(s)?;
            tracing::info!(dir = %self.dir.display(), base = s.base_offset, "segment deleted by retention");
        }
        // The deleted segments' snapshots go; the one at the oldest remaining segment's base
        // stays even when the log start offset lies above it, so that recovery and truncation
        // still find the producer state of the deleted data (Kafka keeps it too).
        let first_base = w.segments.first().map_or(log_end, |s| s.base_offset);
        let old_snaps: Vec<i64> = w.snapshots.range(..first_base).copied().collect();
        for o in old_snaps {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        self.aborted.write().drop_below(first_base);
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        w.epochs.truncate_from_start(&*self.fs, new_start)?;
        self.write_checkpoint(w)?;
        Ok(deleted.len())
    }

    /// Moves the log start offset to `offset` (Kafka's DeleteRecords) and deletes the segments
    /// wholly below it. Returns the new log start offset.
    ///
    /// # Errors
    /// `OFFSET_OUT_OF_RANGE` above the high watermark; storage failures.
    pub fn delete_records_before(&self, offset: Offset) -> Result<Offset, ReadError> {
        self.remove_set_aside(false);
        let _swap = self.swap_lock.lock();
        let mut w = self.writer.lock();
        self.check_writable()?;
        let hw = self.high_watermark.load(Ordering::Acquire);
        let start = self.log_start.load(Ordering::Acquire);
        if offset.0 > hw || offset.0 < 0 {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start: Offset(start),
                log_end: Offset(hw),
            });
        }
        if offset.0 > start {
            self.log_start.store(offset.0, Ordering::Release);
            self.publish_watermarks(&mut w, HwMove::Keep);
            self.write_checkpoint(&w).map_err(|e| self.poison(e))?;
            self.retention_locked(&mut w).map_err(|e| self.poison(e))?;
        }
        Ok(self.log_start_offset())
    }
}
