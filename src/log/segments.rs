//! Rolling, flushing and closing: the segment-level writes of the log.

use std::sync::{atomic::Ordering, Arc};

use crate::config::HighWatermarkMode;
use crate::error::StorageError;

use crate::segment::Segment;

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
        if self.config.high_watermark == HighWatermarkMode::Durable {
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
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        w.recovery_point = end;
        w.recovery_position = w.segments.last().map(|s| (s.base_offset, s.size()));
        self.write_checkpoint(w)?;
        let mut st = self.sync.lock();
        st.durable = st.durable.max(end);
        Ok(())
    }

    pub(super) fn roll(&self, w: &mut Writer, new_base: i64) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let old = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        if old.size() == 0 {
            // An empty active segment is replaced rather than left behind (KAFKA-6388).
            if old.base_offset == new_base {
                return Ok(());
            }
            old.delete(&*self.fs)?;
            w.segments.pop();
        } else {
            old.make_inactive()?;
            // The `.log` and `.txnindex` are made durable; the offset and time indexes need
            // not be: the checkpoint written below records their checksums, and an index
            // that does not match them after a crash is rebuilt from the log.
            old.sync_log()?;
            old.flush_txn_index()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        let seg = Arc::new(Segment::create(&*self.fs, &self.dir, new_base, self.limits, now)?);
        w.segments.push(seg);
        *self.segments.write() = Arc::new(w.segments.clone());
        let point = new_base.min(self.log_end.load(Ordering::Acquire));
        if point >= w.recovery_point {
            w.recovery_point = point;
            w.recovery_position = Some((new_base, 0));
        }
        {
            let mut st = self.sync.lock();
            st.durable = st.durable.max(w.recovery_point);
        }
        self.write_snapshot(w, new_base, false)?;
        let checkpoint = self.checkpoint_text(w);
        self.store_checkpoint_with(checkpoint, false)?;
        // One directory fsync for the new segment, the snapshot and the checkpoint (each
        // file's content was fsynced before its rename). IMPORTANT: the new segment's entry
        // must be durable before data lands in it, so this comes before the roll returns to
        // the append that asked for it. A crash before it leaves any mix of the renames, and
        // each mix opens: an older snapshot is replayed forward, and an older checkpoint
        // sends the rolled segment through recovery.
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        self.stats.rolls.fetch_add(1, Ordering::Relaxed);
        tracing::info!(dir = %self.dir.display(), new_base, "rolled segment");
        Ok(())
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

    /// Closes cleanly: flush, snapshot at the log end offset, clean-shutdown marker. The next
    /// open skips recovery.
    ///
    /// # Errors
    /// Storage failures; the log is then left as after a crash.
    pub fn close(self) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.close_locked(&mut w).map_err(|e| self.poison(e))
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
