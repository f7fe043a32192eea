//! Durable appends: one fsync covers every append that arrived while the previous one ran.

use std::sync::atomic::Ordering;

use crate::config::HighWatermarkMode;
use crate::error::StorageError;

use crate::types::Offset;

use super::Log;

/// The longest a group-commit leader waits for appends under way before its fsync.
const GROUP_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

#[derive(Debug)]
pub(super) struct SyncState {
    pub(super) durable: i64,
    pub(super) in_progress: bool,
    /// Bumped by every truncation ([`SyncState::truncated`]): a group-commit leader whose
    /// fsync began before one must not raise `durable` to the end it read then.
    pub(super) truncations: u64,
    /// Callers waiting for another caller's fsync to finish (a gauge in [`crate::LogStats`]).
    pub(super) waiting: u64,
    /// When the last fsync that moved `durable` finished (or the log opened), for `flush.ms`.
    pub(super) last_sync_ms: i64,
}

impl SyncState {
    /// A truncation set the durable offset to `durable`.
    pub(super) fn truncated(&mut self, durable: i64) {
        self.durable = durable;
        self.truncations += 1;
    }
}

/// Armed around a group-commit leader's fsync and forgotten once it returns: dropped only
/// by a panic unwinding through it.
pub(super) struct LeaderUnwind<'a>(&'a Log);

impl Drop for LeaderUnwind<'_> {
    fn drop(&mut self) {
        self.0.leader_panicked();
    }
}

impl Log {
    /// The offset up to which data is known to be fsynced.
    #[must_use]
    pub fn durable_offset(&self) -> Offset {
        Offset(self.sync.lock().durable)
    }

    /// Waits until every record below `end` is fsynced, and returns the durable offset then.
    ///
    /// The result is at least `end` unless the log ended before `end` at the call (a wait
    /// never waits for appends yet to come) or a truncation ([`Log::truncate_to`],
    /// [`Log::truncate_fully_and_start_at`]) ran while it waited. Acknowledge an append
    /// only when the result passes its last offset. That alone does not prove its records
    /// survived a truncation: records appended after one reuse offsets, and a log restarted
    /// at a higher offset is durable past them. A truncation is the embedder's act (a leader
    /// change), and Kafka fails the produce requests in flight when one happens; fail the
    /// waits of appends made before it the same way ([`Durability::SyncEachAppend`](crate::Durability::SyncEachAppend) appends
    /// do so themselves, with [`AppendError::TruncatedBeforeDurable`](crate::AppendError::TruncatedBeforeDurable)).
    ///
    /// This is the durable half of an append split in two, so that one producer can keep
    /// several appends in flight: append with [`Durability::Buffered`](crate::Durability::Buffered), then acknowledge
    /// each once `wait_durable(info.last_offset.next())` returns. Waiters share fsyncs with
    /// each other and with [`Durability::SyncEachAppend`](crate::Durability::SyncEachAppend) appends (group commit), so the
    /// more appends are in flight, the more each fsync covers. A wait for data that is
    /// already durable takes one uncontended lock and no system call. With
    /// `eoslog.high.watermark=durable`, the HW has reached the returned offset.
    ///
    /// # Errors
    /// [`StorageError::Poisoned`] if the log failed a write or fsync (nothing is durable
    /// past [`Log::durable_offset`] until a reopen runs recovery), or the fsync's error.
    pub fn wait_durable(&self, end: Offset) -> Result<Offset, StorageError> {
        let target = end.0.min(self.log_end.load(Ordering::Acquire));
        self.sync_to(target).map(Offset)
    }

    /// Group commit: waits until everything below `target` is fsynced. One caller fsyncs for
    /// every append that arrived while the previous fsync ran. With
    /// `eoslog.high.watermark=durable`, the HW has reached the durable offset (up to the log
    /// end) when this returns, whichever caller's fsync made the data durable.
    /// Returns the durable offset then: below `target` only if a truncation ran meanwhile.
    pub(super) fn sync_to(&self, target: i64) -> Result<i64, StorageError> {
        let durable = self.sync_to_inner(target)?;
        if self.config().high_watermark == HighWatermarkMode::Durable
            && self.high_watermark.load(Ordering::Acquire) < durable.min(self.log_end.load(Ordering::Acquire))
        {
            self.advance_durable_hw();
        }
        Ok(durable)
    }

    /// [`Log::sync_to`] without the HW step; returns the durable offset it saw.
    pub(super) fn sync_to_inner(&self, target: i64) -> Result<i64, StorageError> {
        let mut st = self.sync.lock();
        loop {
            if self.poisoned.load(Ordering::Acquire) {
                return Err(StorageError::Poisoned);
            }
            if st.durable >= target {
                return Ok(st.durable);
            }
            if !st.in_progress {
                break;
            }
            st.waiting += 1;
            self.sync_cv.wait(&mut st);
            st.waiting -= 1;
        }
        st.in_progress = true;
        // Appends already under way finish their writes first, so that this fsync covers
        // them rather than the next one. The leader blocks (the CPUs stay with the
        // appenders), at most GROUP_COMMIT_WAIT; a lone appender never waits.
        if self.appending.load(Ordering::Acquire) > 0 {
            let deadline = std::time::Instant::now() + GROUP_COMMIT_WAIT;
            self.leader_waiting.store(true, Ordering::Release);
            while self.appending.load(Ordering::Acquire) > 0 {
                if self.appends_done.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
            self.leader_waiting.store(false, Ordering::Release);
        }
        let (from, truncations) = (st.durable, st.truncations);
        drop(st);
        let upto = self.log_end.load(Ordering::Acquire);
        let unwinding = LeaderUnwind(self);
        let res = self.sync_segments_from(from);
        std::mem::forget(unwinding);
        let mut st = self.sync.lock();
        st.in_progress = false;
        let res = match res {
            // Another fsync of the same file (a flush or roll under the writer lock) may have
            // been the one told of a write-back error: this fsync's success then proves
            // nothing, and the log is already poisoned.
            Ok(()) if self.poisoned.load(Ordering::Acquire) => Err(StorageError::Poisoned),
            Ok(()) => {
                // A truncation while the fsync ran may have removed what it covered; the
                // data at those offsets now is newer. Waiters go round again.
                if st.truncations == truncations {
                    st.durable = st.durable.max(upto);
                }
                st.last_sync_ms = self.clock.now_ms();
                Ok(st.durable)
            }
            Err(e) => Err(self.poison(e)),
        };
        drop(st);
        self.sync_cv.notify_all();
        res
    }

    /// `flush.ms`: fsyncs what is not durable once `flush_ms` has passed since the last
    /// fsync that moved the durable offset (Kafka's `LogManager.flushDirtyLogs`, which runs
    /// every `log.flush.scheduler.interval.ms`, never by default; this runs at every
    /// maintenance). Returns whether it did.
    pub(super) fn flush_if_due(&self, flush_ms: i64, now: i64) -> Result<bool, StorageError> {
        let end = self.log_end.load(Ordering::Acquire);
        let due = {
            let st = self.sync.lock();
            st.durable < end && now.saturating_sub(st.last_sync_ms) >= flush_ms
        };
        if due {
            self.sync_to(end)?;
        }
        Ok(due)
    }

    /// Poisons the log and clears the leader's claim if the leader's fsync panics (an
    /// injected [`FileSystem`] may): waiters must not wait for a leader that is gone, and
    /// whether that fsync reached the disk is unknown.
    pub(super) fn leader_panicked(&self) {
        tracing::error!(dir = %self.dir.display(), "group-commit fsync panicked: the log refuses writes until reopened");
        self.poisoned.store(true, Ordering::Release);
        self.sync.lock().in_progress = false;
        self.sync_cv.notify_all();
    }

    pub(super) fn sync_segments_from(&self, from: i64) -> Result<(), StorageError> {
        let segs = self.segments.read().clone();
        let start = segs.partition_point(|s| s.base_offset <= from).saturating_sub(1);
        for s in &segs[start..] {
            s.sync_log()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        // A roll with `eoslog.roll.fsync=maintenance` left the new segment's entry unsynced.
        self.sync_dir_if_changed()
    }
}
