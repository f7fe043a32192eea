//! Writing a segment: appends (indexed by Kafka's interval rule, with space reserved ahead of
//! them), truncation, the switch between active and inactive, fsyncs, retirement and deletion.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::error::{FileKind, StorageError};
use crate::fs::FileSystem;

use super::{index_err, remove_if_present, AppendedBatch, IndexState, Segment, DELETED_SUFFIX};

impl Segment {
    /// Appends `bytes` (one or more batches, offsets already assigned) at the end of the file.
    /// `largest_offset` is the last offset of the set, `max_timestamp`/`offset_of_max` its max
    /// timestamp and the offset carrying it. Index entries follow Kafka's interval rule.
    pub(crate) fn append(
        &self,
        parts: &[&[u8]],
        largest_offset: i64,
        max_timestamp: i64,
        offset_of_max: i64,
    ) -> Result<(), StorageError> {
        let position = self.size();
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        self.reserve_ahead(position, position + len);
        self.log
            .write_all_vectored_at(parts, position)
            .map_err(|e| StorageError::io("write", &self.log_path, e))?;
        let appended = AppendedBatch {
            len,
            last_offset: largest_offset,
            max_timestamp,
            offset_of_max,
        };
        self.note_appended(position, std::slice::from_ref(&appended));
        Ok(())
    }

    /// Appends `bytes`, the batches `batches` describe in order, with one write, and indexes
    /// each batch as [`Segment::append`] would have if called once per batch (the cleaner's
    /// copy: one syscall per buffer, the index as dense as the original's).
    pub(crate) fn append_batches(&self, bytes: &[u8], batches: &[AppendedBatch]) -> Result<(), StorageError> {
        debug_assert_eq!(batches.iter().map(|b| b.len).sum::<u64>(), bytes.len() as u64);
        let position = self.size();
        let end = position + bytes.len() as u64;
        self.reserve_ahead(position, end);
        self.log
            .write_all_vectored_at(&[bytes], position)
            .map_err(|e| StorageError::io("write", &self.log_path, e))?;
        self.note_appended(position, batches);
        Ok(())
    }

    /// Records batches written from `position` on: timestamps, index entries (Kafka's
    /// interval rule, batch by batch), then the size readers see.
    fn note_appended(&self, mut position: u64, batches: &[AppendedBatch]) {
        let mut st = self.state.write();
        for b in batches {
            if st.first_batch_timestamp.is_none() && position == 0 {
                st.first_batch_timestamp = Some(b.max_timestamp);
            }
            if b.max_timestamp > st.max_timestamp {
                st.max_timestamp = b.max_timestamp;
                st.offset_of_max_timestamp = b.offset_of_max;
            }
            if st.bytes_since_last_index > self.limits.index_interval_bytes {
                let (ts, off) = (st.max_timestamp, st.offset_of_max_timestamp);
                if let IndexState::Loaded(ix) = &mut st.indexes {
                    ix.offset.append(b.last_offset, position as u32);
                    ix.time.maybe_append(ts, off, false);
                }
                st.bytes_since_last_index = 0;
            }
            st.bytes_since_last_index += b.len;
            position += b.len;
        }
        drop(st);
        self.size.store(position, Ordering::Release);
    }

    /// Before a write of `position..end`: unless that range is already reserved, reserves
    /// the next `preallocate_bytes` from `position` (never past `segment.bytes`). Only the
    /// appender calls it, under the log's writer lock.
    fn reserve_ahead(&self, position: u64, end: u64) {
        let chunk = self.limits.preallocate_bytes;
        if chunk == 0 || end <= self.reserved.load(Ordering::Relaxed) {
            return;
        }
        let upto = position.saturating_add(chunk).min(self.limits.segment_bytes);
        if upto <= end {
            return; // this write reaches the roll point: nothing left to reserve
        }
        match self.log.preallocate(position, upto - position) {
            Ok(()) => self.reserved.store(upto, Ordering::Relaxed),
            Err(e) => {
                // Advisory: appends allocate as they write. A file system without the
                // call, or one that is nearly full, is told once.
                tracing::debug!(path = %self.log_path.display(), error = %e, "preallocation failed; not retried for this segment");
                self.reserved.store(u64::MAX, Ordering::Relaxed);
            }
        }
    }

    /// Releases the space reserved past the end of the data (truncating the file to its
    /// own length frees reserved blocks). A no-op when nothing can be reserved. Like every
    /// truncate of a `.log`, a failure is a storage error that poisons the log.
    fn release_reserved(&self) -> Result<(), StorageError> {
        if self.reserved.swap(0, Ordering::Relaxed) == 0 {
            return Ok(());
        }
        self.log
            .set_len(self.size())
            .map_err(|e| StorageError::io("truncate", &self.log_path, e))
    }

    /// Cuts the segment so that it ends before the batch containing `offset`; returns the
    /// bytes removed. The segment must be active (its indexes writable).
    pub(crate) fn truncate_to(&self, fs: &dyn FileSystem, offset: i64) -> Result<u64, StorageError> {
        let size = self.size();
        let cut = self.find_batch(fs, offset, size)?.map_or(size, |b| b.position);
        let mut st = self.state.write();
        let (ix, _) = self.writable_indexes(fs, &mut st)?;
        ix.offset
            .truncate_to(offset)
            .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
        ix.time
            .truncate_to(offset)
            .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        let last = ix.time.last().map(|e| (e.timestamp, e.offset));
        let indexed_upto = ix.offset.last().map_or(0, |e| u64::from(e.position));
        self.txn.lock().truncate_to(offset)?;
        if cut < size {
            self.size.store(cut, Ordering::Release);
            // The truncate releases any reserved space too.
            self.reserved.store(0, Ordering::Relaxed);
            self.log
                .set_len(cut)
                .map_err(|e| StorageError::io("truncate", &self.log_path, e))?;
        }
        st.bytes_since_last_index = 0;
        if cut == 0 {
            st.first_batch_timestamp = None;
        }
        (st.max_timestamp, st.offset_of_max_timestamp) = last.unwrap_or((-1, self.base_offset));
        drop(st);
        // As Kafka's `LogSegment.truncateTo`, or the segment's maximum would be understated.
        self.raise_max_timestamp_from_headers(indexed_upto.min(cut), cut)?;
        Ok(size - cut)
    }

    /// The batches between `from` (the last offset-index entry's position) and `limit` are
    /// not in the time index: raises the segment's max timestamp from their headers (at
    /// most one index interval).
    pub(crate) fn raise_max_timestamp_from_headers(&self, from: u64, limit: u64) -> Result<(), StorageError> {
        let mut max = (-1i64, self.base_offset);
        self.scan_headers(from, limit, |b| {
            if b.max_timestamp > max.0 {
                max = (b.max_timestamp, b.last_offset);
            }
            ControlFlow::Continue(())
        })?;
        let mut st = self.state.write();
        if max.0 > st.max_timestamp {
            (st.max_timestamp, st.offset_of_max_timestamp) = max;
        }
        Ok(())
    }

    /// Cuts the log file at `position` (recovery of a torn tail) and fsyncs the cut.
    pub(crate) fn truncate_bytes(&self, position: u64) -> Result<(), StorageError> {
        self.size.store(position, Ordering::Release);
        self.reserved.store(0, Ordering::Relaxed);
        self.log
            .set_len(position)
            .map_err(|e| StorageError::io("truncate", &self.log_path, e))?;
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))
    }

    /// Marks the segment active (the last one, after open or a truncation back into it):
    /// its indexes become writable at full capacity.
    pub(crate) fn make_active(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        self.ensure_indexes(fs)?;
        let mut st = self.state.write();
        self.writable_indexes(fs, &mut st)?;
        st.active = true;
        Ok(())
    }

    /// The segment stops being the active one: final time-index entry, and the indexes are
    /// trimmed to their entries and read with `pread` from now on.
    pub(crate) fn make_inactive(&self) -> Result<(), StorageError> {
        self.release_reserved()?;
        let mut st = self.state.write();
        st.active = false;
        let (ts, off) = (st.max_timestamp, st.offset_of_max_timestamp);
        if let IndexState::Loaded(ix) = &mut st.indexes {
            if ts >= 0 {
                ix.time.maybe_append(ts, off, true);
            }
            self.make_read_only(ix)?;
        }
        Ok(())
    }

    /// fsyncs the log file, the indexes and the txn index.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))?;
        let st = self.state.read();
        if let IndexState::Loaded(ix) = &st.indexes {
            ix.offset
                .flush()
                .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
            ix.time
                .flush()
                .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        }
        self.txn.lock().flush()
    }

    /// fsyncs the transaction index alone.
    pub(crate) fn flush_txn_index(&self) -> Result<(), StorageError> {
        self.txn.lock().flush()
    }

    /// fsyncs only the log file (the durable-append path; indexes are rebuilt by recovery).
    pub(crate) fn sync_log(&self) -> Result<(), StorageError> {
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))
    }

    /// The segment is being replaced by a cleaned copy under its own name: its indexes are
    /// unmapped and never opened again; readers holding it keep reading its open `.log`.
    pub(crate) fn retire(&self) {
        self.state.write().indexes = IndexState::Deleted;
    }

    /// Deletes the segment's files (the caller fsyncs the directory). Readers holding the
    /// segment keep reading its `.log` through the open handle; its indexes are gone.
    pub(crate) fn delete(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let mut st = self.state.write();
        st.indexes = IndexState::Deleted; // unmap before unlinking
        let (log, idx, time, txn) = self.my_paths();
        for p in [&log, &idx, &time, &txn] {
            remove_if_present(fs, p)?;
        }
        Ok(())
    }

    /// Renames the segment's files to `<name>.deleted` and returns their new paths, for the
    /// caller to remove later; the caller fsyncs the directory and keeps set-asides of one
    /// log from running at once. A name still taken by a file set aside earlier (the same
    /// base cleaned twice within the delay, say) gets a number, `<name>.<n>.deleted`, the
    /// smallest free: replacing that file would free its blocks here. Readers holding the
    /// segment keep reading its `.log` through the open handle; its indexes are gone, as
    /// after [`Segment::delete`].
    pub(crate) fn set_aside(&self, fs: &dyn FileSystem) -> Result<Vec<PathBuf>, StorageError> {
        let mut st = self.state.write();
        st.indexes = IndexState::Deleted; // never opened or rebuilt under the old name again
        let (log, idx, time, txn) = self.my_paths();
        let mut aside = Vec::with_capacity(4);
        for p in [log, idx, time, txn] {
            if fs.exists(&p) {
                let named = |n: u64| {
                    let mut to = p.clone().into_os_string();
                    if n > 0 {
                        to.push(format!(".{n}"));
                    }
                    to.push(DELETED_SUFFIX);
                    PathBuf::from(to)
                };
                let to = (0..)
                    .map(named)
                    .find(|to| !fs.exists(to))
                    .expect("an unbounded range has a free name");
                fs.rename(&p, &to)
                    .map_err(|e| StorageError::io("rename", &to, e))?;
                aside.push(to);
            }
        }
        Ok(aside)
    }
}
