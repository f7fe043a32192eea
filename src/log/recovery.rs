//! Recovery and replay: rebuilding what the log derives from its segments.

use std::{
    ops::ControlFlow,
    path::Path,
    sync::{atomic::Ordering, Arc},
};

use crate::batch::RecordBatch;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::producer_state::{AppendOrigin, CompletedTxn, PendingAppend, ProducerStateManager};
use crate::segment::{ScanEnd, Segment};
use crate::stats::Counters;
use crate::txn_index::AbortedIndex;

use super::append::check_batch;
use super::io_err;
use super::txn::aborted_entry;

/// Applies one batch read back from the log to producer state: what recovery and replay
/// both do with every batch. The log holds what was accepted, so the checks are the
/// replication origin's (no sequence checks, older epochs tolerated); a marker that cannot be
/// parsed is skipped. Returns the transactions the batch completed, each with the last stable
/// offset to record for it.
pub(super) fn apply_stored_batch(
    psm: &mut ProducerStateManager,
    b: &RecordBatch<'_>,
) -> Vec<(CompletedTxn, i64)> {
    let mut pending = PendingAppend::default();
    match check_batch(psm, &mut pending, b, b.base_offset(), AppendOrigin::Replication) {
        Ok(_) => psm.apply(&mut pending, b.next_offset()),
        Err(Ok(e)) => {
            tracing::warn!(error = %e, offset = b.base_offset(), "unparseable marker in the log; skipped");
            Vec::new()
        }
        Err(Err(_)) => Vec::new(),
    }
}

/// What recovery rebuilds while it re-validates segments.
pub(super) struct Rebuild<'a> {
    pub(super) fs: &'a dyn FileSystem,
    pub(super) dir: &'a Path,
    pub(super) psm: &'a mut ProducerStateManager,
    pub(super) epochs: &'a mut LeaderEpochCache,
    pub(super) aborted: &'a mut AbortedIndex,
    pub(super) stats: &'a Counters,
}

impl Rebuild<'_> {
    /// Re-validates `segments[first..]`, the first from `resume` (byte position and offset of
    /// the recovery point) when given, rebuilding their indexes, transaction indexes, producer
    /// state and leader epochs. At the first invalid batch at or above `durable_below` (the
    /// recovery point; `None` when no checkpoint says, as in a directory Kafka wrote) the
    /// segment is cut there and every later segment deleted, as Kafka recovers a torn tail;
    /// an invalid batch below it is reported as `Corrupt` and nothing is cut.
    pub(super) fn recover(
        &mut self,
        segments: &mut Vec<Arc<Segment>>,
        first: usize,
        resume: Option<(u64, i64)>,
        durable_below: Option<i64>,
    ) -> Result<(), StorageError> {
        let fs = self.fs;
        let mut i = first;
        while i < segments.len() {
            let seg = segments[i].clone();
            let before = seg.file().len().map_err(io_err("stat", &seg.log_path))?;
            let from = resume.filter(|_| i == first);
            let (psm, epochs) = (&mut *self.psm, &mut *self.epochs);
            let stopped = seg.recover(fs, from, durable_below.unwrap_or(i64::MIN), |_, b| {
                for (c, lso) in apply_stored_batch(psm, b) {
                    if c.aborted {
                        seg.append_aborted(fs, aborted_entry(&c, lso))?;
                    }
                }
                let epoch = b.partition_leader_epoch();
                if epoch >= 0 {
                    epochs.assign(fs, epoch, b.base_offset())?;
                }
                Ok(())
            })?;
            // The segment's transaction index now: the entries kept below the recovery point
            // (when recovery resumed there) and those the scan rewrote.
            for e in seg.aborted_entries() {
                self.aborted.push(e);
            }
            self.stats
                .truncated_bytes_on_recovery
                .fetch_add(before - seg.size(), Ordering::Relaxed);
            if let Some((position, detail)) = stopped {
                tracing::warn!(segment = %seg.log_path.display(), position, %detail, "recovery stopped at an invalid batch; later segments deleted");
                for later in segments.drain(i + 1..) {
                    later.delete(fs)?;
                }
                fs.sync_dir(self.dir)
                    .map_err(io_err("fsync directory", self.dir))?;
            }
            if i + 1 < segments.len() {
                // Recovery rebuilt the indexes writable at full size; an inactive segment's
                // are trimmed and read-only.
                seg.make_inactive()?;
            }
            seg.flush()?;
            i += 1;
        }
        Ok(())
    }
}

/// The offset after the last batch of a segment (its base when empty).
pub(super) fn segment_next_offset(fs: &dyn FileSystem, seg: &Segment) -> Result<i64, StorageError> {
    let size = seg.size();
    let mut next = seg.base_offset;
    if size == 0 {
        return Ok(next);
    }
    // Walk the headers after the last index entry; an index entry that leads nowhere valid is
    // not trusted and the walk restarts from the segment start.
    let hint = seg.last_indexed_position(fs)?;
    let walk = |from: u64, next: &mut i64| -> Result<ScanEnd, StorageError> {
        seg.scan_headers(from, size, |b| {
            *next = (*next).max(b.last_offset + 1);
            ControlFlow::Continue(())
        })
    };
    let mut end = walk(hint, &mut next)?;
    if hint != 0 && !matches!(end, ScanEnd::Clean) {
        next = seg.base_offset;
        end = walk(0, &mut next)?;
    }
    if let ScanEnd::Invalid { position, error } = end {
        return Err(seg.corrupt(position, error.into()));
    }
    Ok(next)
}

/// Replays batches in `[from, to)` into producer state (replication origin, no index writes).
pub(super) fn replay(
    fs: &dyn FileSystem,
    psm: &mut ProducerStateManager,
    segments: &[Arc<Segment>],
    from: i64,
    to: i64,
) -> Result<(), StorageError> {
    if from >= to {
        return Ok(());
    }
    let start = segments
        .partition_point(|s| s.base_offset <= from)
        .saturating_sub(1);
    for seg in &segments[start..] {
        if seg.base_offset >= to {
            break;
        }
        let limit = seg.size();
        let first = match seg.find_batch(fs, from, limit)? {
            Some(b) => b.position,
            None => continue,
        };
        let mut reached = seg.base_offset;
        let end = seg.scan_batches(first, limit, |_, b| {
            reached = b.next_offset();
            if b.base_offset() >= to {
                return Ok(ControlFlow::Break(()));
            }
            if b.last_offset() < from {
                return Ok(ControlFlow::Continue(()));
            }
            apply_stored_batch(psm, &b);
            Ok(ControlFlow::Continue(()))
        })?;
        // Bytes after `to` are not this replay's business (recovery validates them).
        if let ScanEnd::Invalid { position, error } = end {
            if reached < to {
                return Err(seg.corrupt(position, error.into()));
            }
        }
        if reached >= to {
            break;
        }
    }
    psm.map_end_offset = psm.map_end_offset.max(to.min(i64::MAX - 1));
    Ok(())
}
