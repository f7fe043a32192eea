//! Rolling, flushing and closing: the segment-level writes of the log.

use std::sync::{atomic::Ordering, Arc};

use crate::config::{HighWatermarkMode, RollFsync};
use crate::error::StorageError;
use crate::segment::{file_name, Segment};

use super::snapshots::SnapshotWrite;
use super::watermarks::HwMove;
use super::{io_err, Log, Writer, CLEAN_SHUTDOWN_FILE};

impl Log {
    /// fsyncs every segment, index and the directory, and advances the recovery point to the
    /// log end offset: everything appended before the call survives a power loss.
    ///
    /// # Errors
    /// Storage failures (the log is then poisoned).
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.flush_locked(&mut w).map_err(|e| self.poison(e))?;
        if self.config().high_watermark == HighWatermarkMode::Durable {
            let end = self.log_end.load(Ordering::Acquire);
            self.publish_watermarks(&mut w, HwMove::Advance(end));
        }
        Ok(())
    }

    pub(super) fn flush_locked(&self, w: &mut Writer) -> Result<(), StorageError> {
        let end = self.log_end.load(Ordering::Acquire);
        let start = w
            .segments
            .partition_point(|s| s.base_offset <= w.recovery_point)
            .saturating_sub(1);
        for s in &w.segments[start..] {
            s.flush()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        let snapshots = snapshots_between(w, w.recovery_point, end);
        self.sync_snapshots(&snapshots)?;
        self.sync_dir()?;
        w.recovery_point = end;
        w.recovery_position = w.segments.last().map(|s| (s.base_offset, s.size()));
        self.write_checkpoint(w)?;
        let mut st = self.sync.lock();
        st.durable = st.durable.max(end);
        st.last_sync_ms = self.clock.now_ms();
        Ok(())
    }

    pub(super) fn roll(&self, w: &mut Writer, new_base: i64) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let old = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        let inline = self.config().roll_fsync == RollFsync::Inline;
        if inline {
            // Segments and snapshots a roll left to maintenance before the config changed
            // to inline are made durable first: the recovery point moves past them below.
            self.sync_rolled_below_active(w)?;
        }
        if old.size() == 0 {
            // An empty active segment is replaced rather than left behind (KAFKA-6388).
            if old.base_offset == new_base {
                return Ok(());
            }
            old.delete(&*self.fs)?;
            w.segments.pop();
        } else {
            old.make_inactive()?;
            // The `.log` and `.txnindex` are made durable (here, or by the next maintenance);
            // the offset and time indexes need not be: the checkpoint records their
            // checksums, and an index that does not match them after a crash is rebuilt from
            // the log.
            if inline {
                self.sync_rolled_segments(std::slice::from_ref(&old))?;
            }
        }
        let seg = Arc::new(Segment::create(
            &*self.fs,
            &self.dir,
            new_base,
            self.limits(),
            now,
        )?);
        w.segments.push(seg);
        *self.segments.write() = Arc::new(w.segments.clone());
        if !inline {
            // Nothing is fsynced: [`Log::sync_rolled`] (maintenance), a flush or a durable
            // append does it, and the recovery point stays where it is until then. Counted
            // before any data can land in the new segment, so whatever makes that data
            // durable also fsyncs the directory entry.
            self.dir_changes.fetch_add(1, Ordering::AcqRel);
            self.write_snapshot(w, new_base, SnapshotWrite::SyncLater)?;
            self.stats.rolls.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(dir = %self.dir.display(), new_base, "rolled segment (fsyncs deferred)");
            return Ok(());
        }
        let point = new_base.min(self.log_end.load(Ordering::Acquire));
        if point >= w.recovery_point {
            w.recovery_point = point;
            w.recovery_position = Some((new_base, 0));
        }
        {
            let mut st = self.sync.lock();
            st.durable = st.durable.max(w.recovery_point);
            st.last_sync_ms = now;
        }
        self.write_snapshot(w, new_base, SnapshotWrite::DirSyncLater)?;
        let checkpoint = self.checkpoint_text(w);
        self.store_checkpoint_with(checkpoint, false)?;
        // One directory fsync for the new segment, the snapshot and the checkpoint (each
        // file's content was fsynced before its rename). IMPORTANT: the new segment's entry
        // must be durable before data lands in it, so this comes before the roll returns to
        // the append that asked for it. A crash before it leaves any mix of the renames, and
        // each mix opens: an older snapshot is replayed forward, and an older checkpoint
        // sends the rolled segment through recovery.
        self.sync_dir()?;
        self.stats.rolls.fetch_add(1, Ordering::Relaxed);
        tracing::info!(dir = %self.dir.display(), new_base, "rolled segment");
        Ok(())
    }

    /// fsyncs the directory, and records that it covers every change counted so far.
    pub(super) fn sync_dir(&self) -> Result<(), StorageError> {
        let changes = self.dir_changes.load(Ordering::Acquire);
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        self.dir_synced.fetch_max(changes, Ordering::AcqRel);
        Ok(())
    }

    /// fsyncs the directory if a deferred roll changed it since the last directory fsync.
    pub(super) fn sync_dir_if_changed(&self) -> Result<(), StorageError> {
        if self.dir_synced.load(Ordering::Acquire) < self.dir_changes.load(Ordering::Acquire) {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// fsyncs the producer snapshots at `offsets` that still exist (a deferred roll wrote
    /// them without fsync; retention or a truncation may have removed one since).
    fn sync_snapshots(&self, offsets: &[i64]) -> Result<(), StorageError> {
        for &o in offsets {
            let path = self.dir.join(file_name(o, "snapshot"));
            match self.fs.open(&path, false) {
                Ok(f) => f.sync_data().map_err(io_err("fsync", &path))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("open", &path, e)),
            }
        }
        Ok(())
    }

    /// fsyncs what a roll leaves to make durable of the segments it closed: `.log` and
    /// `.txnindex` (the offset and time indexes are checked against the checkpoint instead).
    fn sync_rolled_segments(&self, segments: &[Arc<Segment>]) -> Result<(), StorageError> {
        for s in segments {
            s.sync_log()?;
            s.flush_txn_index()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Under the writer lock: fsyncs the segments rolled since the recovery point (`.log`
    /// and `.txnindex`) and their snapshots, for a caller about to move the recovery point
    /// past them (a truncation, an inline roll). Only rolls left to maintenance
    /// (`eoslog.roll.fsync=maintenance`, now or before the config changed) leave any. The
    /// caller fsyncs the directory.
    pub(super) fn sync_rolled_below_active(&self, w: &Writer) -> Result<(), StorageError> {
        if w.segments.is_empty() {
            return Ok(());
        }
        self.sync_rolled_segments(rolled_since_recovery_point(w))?;
        let end = w.segments.last().map_or(w.recovery_point, |s| s.base_offset);
        self.sync_snapshots(&snapshots_between(w, w.recovery_point, end))
    }

    /// With `eoslog.roll.fsync=maintenance`: makes the segments rolled since the recovery
    /// point durable (their `.log` and `.txnindex`, the snapshots at their bases, the
    /// directory) and then moves the recovery point to the active segment's base, as an
    /// inline roll would have. The writer lock is held only to read what to fsync and then
    /// to install the new recovery point, so appends go on while the fsyncs wait for the
    /// disk. A truncation in between leaves the recovery point alone (the next call
    /// retries). Returns whether the recovery point moved.
    ///
    /// # Errors
    /// Storage failures (the log is then poisoned).
    pub(super) fn sync_rolled(&self) -> Result<bool, StorageError> {
        let (target, base, rolled, snapshots, truncations) = {
            let w = self.writer.lock();
            self.check_writable()?;
            let Some(active) = w.segments.last() else {
                return Ok(false);
            };
            let target = active.base_offset.min(self.log_end.load(Ordering::Acquire));
            let dir_changed =
                self.dir_synced.load(Ordering::Acquire) < self.dir_changes.load(Ordering::Acquire);
            if target <= w.recovery_point && !dir_changed {
                return Ok(false);
            }
            let rolled = rolled_since_recovery_point(&w).to_vec();
            let snapshots = snapshots_between(&w, w.recovery_point, target);
            let truncations = self.truncation_seq.load(Ordering::Acquire);
            (target, active.base_offset, rolled, snapshots, truncations)
        };
        let synced = (|| {
            self.sync_rolled_segments(&rolled)?;
            self.sync_snapshots(&snapshots)?;
            self.sync_dir()
        })();
        synced.map_err(|e| self.poison(e))?;
        let checkpoint = {
            let mut w = self.writer.lock();
            self.check_writable()?;
            if self.truncation_seq.load(Ordering::Acquire) != truncations || target <= w.recovery_point {
                return Ok(false);
            }
            w.recovery_point = target;
            w.recovery_position = Some((base, 0));
            {
                let mut st = self.sync.lock();
                st.durable = st.durable.max(target);
                st.last_sync_ms = self.clock.now_ms();
            }
            if self.config().high_watermark == HighWatermarkMode::Durable {
                self.publish_watermarks(&mut w, HwMove::Advance(target));
            }
            self.checkpoint_text(&w)
        };
        self.store_checkpoint(checkpoint).map_err(|e| self.poison(e))?;
        Ok(true)
    }

    /// Rolls a new active segment at the log end offset (no-op on an empty active segment).
    ///
    /// # Errors
    /// Storage failures.
    pub fn roll_segment(&self) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        let end = self.log_end.load(Ordering::Acquire);
        self.roll(&mut w, end).map_err(|e| self.poison(e))
    }

    /// Stops the log for good, writing nothing more: its topic is being deleted. Every write
    /// fails with [`StorageError::Closed`] from here on, and this returns once no append,
    /// retention, truncation, clean or checkpoint write of the log is under way, so that
    /// its directory can be removed and another log can take the same path. (A clean in
    /// progress stops at its next segment; Kafka aborts the cleaning of a deleted
    /// partition the same way.)
    pub(crate) fn retire(&self) {
        {
            let w = self.writer.lock();
            self.closed.store(true, Ordering::Release);
            // Readers holding the log read on through the open `.log` files, but never
            // rebuild (write) an index into the directory again.
            for s in &w.segments {
                s.retire();
            }
        }
        self.sync_cv.notify_all();
        // Each lock is taken alone, after `closed` is set: whoever holds one now checks
        // `closed` before its next file operation, and nothing else can start.
        drop(self.swap_lock.lock());
        drop(self.clean_lock.lock());
        drop(self.checkpoint_io.write());
        // The files set aside go with the directory; none is removed from here on.
        let _removing = self.removing_set_aside.lock();
        self.set_aside.lock().clear();
    }

    /// Closes cleanly: flush, snapshot at the log end offset, clean-shutdown marker. The next
    /// open skips recovery.
    ///
    /// # Errors
    /// Storage failures; the log is then left as after a crash.
    pub fn close(self) -> Result<(), StorageError> {
        {
            let mut w = self.writer.lock();
            self.check_writable()?;
            self.close_locked(&mut w).map_err(|e| self.poison(e))?;
        }
        // Closed cleanly: the files set aside for `file.delete.delay.ms` go now rather than
        // at the next open.
        self.remove_set_aside(true);
        Ok(())
    }

    pub(super) fn close_locked(&self, w: &mut Writer) -> Result<(), StorageError> {
        let end = self.log_end.load(Ordering::Acquire);
        if let Some(active) = w.segments.last().cloned() {
            active.make_inactive()?;
        }
        self.flush_locked(w)?;
        w.bytes_since_snapshot = w.bytes_since_snapshot.max(1);
        self.take_snapshot(w, end)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let f = self.fs.open(&marker, true).map_err(io_err("create", &marker))?;
        f.sync_data().map_err(io_err("fsync", &marker))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// The snapshots above `from` up to and including `to`.
fn snapshots_between(w: &Writer, from: i64, to: i64) -> Vec<i64> {
    w.snapshots
        .iter()
        .copied()
        .filter(|&o| o > from && o <= to)
        .collect()
}

/// The inactive segments from the one holding the recovery point on: what rolls since the
/// recovery point closed (all of them durable already when rolls fsync inline).
fn rolled_since_recovery_point(w: &Writer) -> &[Arc<Segment>] {
    let Some(last) = w.segments.len().checked_sub(1) else {
        return &[];
    };
    let start = w
        .segments
        .partition_point(|s| s.base_offset <= w.recovery_point)
        .saturating_sub(1);
    &w.segments[start.min(last)..last]
}
