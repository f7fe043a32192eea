//! Recovery of one segment: re-validating its batches and rebuilding every file derived from
//! them.

use std::{ops::ControlFlow, sync::atomic::Ordering};

use crate::batch::RecordBatch;
use crate::error::{CorruptionDetail, StorageError};
use crate::fs::FileSystem;

use super::{IndexState, ScanEnd, Segment};

impl Segment {
    /// Recovery: validates every batch from `resume` (a byte position and the offset there,
    /// known durable: the recovery point) or from the segment start, rebuilding the indexes
    /// and the transaction index for what it scans; the callback sees each valid batch.
    /// Returns where validation stopped, if it did: the `.log` is cut there (a torn tail).
    /// Batches below `durable_below` were fsynced before the shutdown, so an invalid one
    /// there is damage, reported as `Corrupt` with nothing cut (recovery rebuilds what is
    /// derived from the data; it never discards data known durable). The segment's indexes
    /// are left writable (mapped); the caller makes an earlier segment inactive afterwards.
    pub(crate) fn recover(
        &self,
        fs: &dyn FileSystem,
        resume: Option<(u64, i64)>,
        durable_below: i64,
        mut on_batch: impl FnMut(u64, &RecordBatch<'_>) -> Result<(), StorageError>,
    ) -> Result<Option<(u64, CorruptionDetail)>, StorageError> {
        let file_len = self
            .log
            .len()
            .map_err(|e| StorageError::io("stat", &self.log_path, e))?;
        let resume = resume.filter(|&(pos, _)| pos > 0 && pos <= file_len);
        if let Some((pos, offset)) = resume {
            // Everything below the recovery point was flushed with its index entries: keep
            // the plausible ones, and resume validation there. (The caller resumes only when
            // the indexes match their recorded checksums; were they recreated here anyway,
            // resuming with an empty index is still correct: lookups below P walk the log.)
            let mut st = self.state.write();
            let (ix, kept) = self.writable_indexes(fs, &mut st)?;
            debug_assert!(kept, "resumed recovery over indexes that fail their checksum");
            ix.offset.keep_valid_prefix(offset, pos);
            ix.time.keep_valid_prefix(offset);
            // The batches after the last offset-index entry are not in the time index: take
            // their timestamps from their headers (at most one index interval).
            let indexed_upto = ix.offset.last().map_or(0, |e| u64::from(e.position));
            let last = ix.time.last().map(|e| (e.timestamp, e.offset));
            self.txn.lock().truncate_to(offset)?;
            st.bytes_since_last_index = 0;
            (st.max_timestamp, st.offset_of_max_timestamp) = last.unwrap_or((-1, self.base_offset));
            drop(st);
            self.size.store(pos, Ordering::Release);
            self.raise_max_timestamp_from_headers(indexed_upto, pos)?;
            self.load_first_batch_timestamp()?;
        }
        if resume.is_none() {
            let mut st = self.state.write();
            // Recovery never trusts existing index files: recreate them empty.
            self.recreate_indexes(fs, &mut st)?;
            self.txn.lock().reset()?;
            st.bytes_since_last_index = 0;
            st.max_timestamp = -1;
            st.offset_of_max_timestamp = self.base_offset;
            st.first_batch_timestamp = None;
            drop(st);
            self.size.store(0, Ordering::Release);
        }
        let interval = self.limits.index_interval_bytes;
        let (start_pos, mut prev_next) = resume.unwrap_or((0, self.base_offset));
        let mut order_error = None;
        let end = self.scan_batches(start_pos, u64::MAX, |pos, batch| {
            let (base, last) = (batch.base_offset(), batch.last_offset());
            if base < prev_next || last < base || last - self.base_offset > i64::from(i32::MAX) {
                order_error = Some((
                    pos,
                    CorruptionDetail::OffsetOrder {
                        base,
                        last,
                        expected: prev_next,
                    },
                ));
                return Ok(ControlFlow::Break(()));
            }
            prev_next = last + 1;
            {
                let mut st = self.state.write();
                if pos == 0 {
                    st.first_batch_timestamp = Some(batch.max_timestamp());
                }
                if batch.max_timestamp() > st.max_timestamp {
                    st.max_timestamp = batch.max_timestamp();
                    st.offset_of_max_timestamp = last;
                }
                if st.bytes_since_last_index > interval {
                    let (ts, off) = (st.max_timestamp, st.offset_of_max_timestamp);
                    if let IndexState::Loaded(ix) = &mut st.indexes {
                        ix.offset.append(last, pos as u32);
                        ix.time.maybe_append(ts, off, false);
                    }
                    st.bytes_since_last_index = 0;
                }
                st.bytes_since_last_index += batch.size() as u64;
            }
            on_batch(pos, &batch)?;
            self.size.store(pos + batch.size() as u64, Ordering::Release);
            Ok(ControlFlow::Continue(()))
        })?;
        let valid = self.size();
        let stopped = match end {
            ScanEnd::Clean => None,
            ScanEnd::Invalid { position, error } => Some((position, error.into())),
            ScanEnd::Stopped => order_error,
        };
        if let Some((position, detail)) = stopped.as_ref().filter(|_| prev_next < durable_below) {
            tracing::error!(segment = %self.log_path.display(), position, %detail, durable_below, "invalid batch below the recovery point: reported, not truncated");
            return Err(self.corrupt(*position, detail.clone()));
        }
        if valid < file_len {
            tracing::warn!(segment = %self.log_path.display(), valid, file_len, "recovery truncated a torn or corrupt tail");
            self.truncate_bytes(valid)?;
        }
        Ok(stopped)
    }
}
