//! Recovery and replay: rebuilding what the log derives from its segments.

use std::{ops::ControlFlow, sync::Arc};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::producer_state::{AppendOrigin, PendingAppend, ProducerStateManager};
use crate::segment::Segment;

use super::append::check_batch;

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
    let walk = |from: u64, next: &mut i64| -> Result<crate::segment::ScanEnd, StorageError> {
        seg.scan_headers(from, size, |b| {
            *next = (*next).max(b.last_offset + 1);
            ControlFlow::Continue(())
        })
    };
    let mut end = walk(hint, &mut next)?;
    if hint != 0 && !matches!(end, crate::segment::ScanEnd::Clean) {
        next = seg.base_offset;
        end = walk(0, &mut next)?;
    }
    if let crate::segment::ScanEnd::Invalid { position, error } = end {
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
            let mut pending = PendingAppend::default();
            if check_batch(psm, &mut pending, &b, b.base_offset(), AppendOrigin::Replication).is_ok() {
                psm.apply(&mut pending, b.next_offset());
            }
            Ok(ControlFlow::Continue(()))
        })?;
        // Bytes after `to` are not this replay's business (recovery validates them).
        if let crate::segment::ScanEnd::Invalid { position, error } = end {
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
