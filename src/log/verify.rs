//! Checking every batch and index of an open log without changing anything.

use std::ops::ControlFlow;

use crate::error::{CorruptionDetail, StorageError};

use super::Log;

impl Log {
    /// Checks every batch's CRC and every index of the log against the data, without
    /// changing anything. Returns the number of batches checked.
    ///
    /// # Errors
    /// The first corruption found, naming file and byte position.
    pub fn verify(&self, mut progress: impl FnMut(u64, u64)) -> Result<u64, StorageError> {
        let segs = self.segments.read().clone();
        let total: u64 = segs.iter().map(|s| s.size()).sum();
        let mut done = 0u64;
        let mut batches = 0u64;
        for seg in segs.iter() {
            let limit = seg.size();
            let mut prev_next = seg.base_offset;
            let mut order = None;
            let end = seg.scan_batches(0, limit, |pos, b| {
                if b.base_offset() < prev_next {
                    order = Some((pos, b.base_offset(), b.last_offset(), prev_next));
                    return Ok(ControlFlow::Break(()));
                }
                prev_next = b.next_offset();
                batches += 1;
                if batches.is_multiple_of(4096) {
                    progress(done + pos, total);
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if let Some((position, base, last, expected)) = order {
                return Err(seg.corrupt(position, CorruptionDetail::OffsetOrder { base, last, expected }));
            }
            if let crate::segment::ScanEnd::Invalid { position, error } = end {
                return Err(seg.corrupt(position, error.into()));
            }
            seg.verify_indexes(&*self.fs)?;
            done += limit;
            progress(done, total);
        }
        Ok(batches)
    }
}
