//! One log segment: a `.log` file of concatenated batches with its `.index`, `.timeindex`
//! and `.txnindex`, all named by the segment's base offset in 20 zero-padded digits.
//!
//! Concurrency: the writer appends with positional writes past `size` and then publishes the
//! new size with a release store; readers load `size` (acquire) and never look past it, so
//! reads take no lock on the data path. The indexes sit behind a short `RwLock`.

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use parking_lot::RwLock;

use crate::batch::{RecordBatch, HEADER_SIZE, LOG_OVERHEAD};
use crate::error::{BatchError, Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{FileSystem, StorageFile};
use crate::index::{IndexError, OffsetIndex, TimeIndex};
use crate::txn_index::{AbortedTxn, TxnIndexFile};

/// `<20-digit offset>.<suffix>`.
#[must_use]
pub fn file_name(offset: i64, suffix: &str) -> String {
    format!("{offset:020}.{suffix}")
}

/// Parses `<digits>.<suffix>` (Kafka: the text before the first dot), `None` otherwise.
#[must_use]
pub fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (num, suffix) = name.split_once('.')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, suffix))
}

/// Facts about a batch read from a file header, without its records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchInfo {
    pub position: u64,
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// How a scan of a segment ended.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Reached the end cleanly.
    Clean,
    /// A torn or invalid batch starts at `position`.
    Invalid { position: u64, error: BatchError },
    /// The callback stopped the scan.
    Stopped,
}

/// The size limits a segment needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentLimits {
    pub index_bytes: usize,
    pub index_interval_bytes: u64,
    /// `segment.bytes`: nothing is reserved past it.
    pub segment_bytes: u64,
    /// `eoslog.preallocate.bytes` (0: reserve nothing).
    pub preallocate_bytes: u64,
}

#[derive(Debug)]
struct Indexes {
    offset: OffsetIndex,
    time: TimeIndex,
}

#[derive(Debug)]
struct State {
    /// `None` until first used for an inactive segment opened from disk.
    indexes: Option<Indexes>,
    txn: TxnIndexFile,
    bytes_since_last_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch (time-based roll), if any.
    first_batch_timestamp: Option<i64>,
    active: bool,
}

/// One segment.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    pub log_path: PathBuf,
    log: Arc<dyn StorageFile>,
    size: AtomicU64,
    /// End of the space reserved past `size` (`StorageFile::preallocate`); 0 when nothing
    /// is reserved, `u64::MAX` once a reservation failed (none is tried again). A segment
    /// opened from disk starts at 1: an earlier run may have left space reserved (a crash
    /// skips the release), so it is released when the segment next rolls or closes.
    reserved: AtomicU64,
    state: RwLock<State>,
    limits: SegmentLimits,
    pub created_ms: i64,
}

fn index_err(path: &Path, kind: FileKind, e: IndexError) -> StorageError {
    match e {
        IndexError::Io(op, source) => StorageError::io(op, path, source),
        IndexError::Corrupt(position, detail) => Corruption {
            path: path.to_path_buf(),
            kind,
            position,
            detail,
        }
        .into(),
    }
}

impl Segment {
    fn paths(dir: &Path, base: i64) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        (
            dir.join(file_name(base, "log")),
            dir.join(file_name(base, "index")),
            dir.join(file_name(base, "timeindex")),
            dir.join(file_name(base, "txnindex")),
        )
    }

    /// Creates a new, empty, active segment (the caller fsyncs the directory).
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Result<Segment, StorageError> {
        let (log_path, idx_path, time_path, txn_path) = Self::paths(dir, base);
        // Leftovers with this base (a crash during an earlier roll) are replaced.
        for p in [&log_path, &idx_path, &time_path, &txn_path] {
            if fs.exists(p) {
                fs.remove_file(p)
                    .map_err(|e| StorageError::io("remove", p.as_path(), e))?;
            }
        }
        let log = fs
            .open(&log_path, true)
            .map_err(|e| StorageError::io("create", &log_path, e))?;
        let seg = Segment {
            base_offset: base,
            dir: dir.to_path_buf(),
            log_path,
            log,
            size: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            state: RwLock::new(State {
                indexes: None,
                txn: TxnIndexFile::open(fs, txn_path, base)?,
                bytes_since_last_index: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: base,
                first_batch_timestamp: None,
                active: true,
            }),
            limits,
            created_ms: now_ms,
        };
        seg.load_indexes(fs, &mut seg.state.write(), Some(limits.index_bytes))?;
        Ok(seg)
    }

    /// Opens an existing segment. Its indexes are opened lazily (inactive) or now (active).
    /// Returns the segment and whether it must be recovered because its transaction index
    /// was damaged (the damaged file is removed; recovery rewrites it from the log).
    pub(crate) fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Result<(Segment, bool), StorageError> {
        let (log_path, _, _, txn_path) = Self::paths(dir, base);
        let (txn, damaged) = match TxnIndexFile::open(fs, txn_path.clone(), base) {
            Ok(t) => (t, false),
            Err(StorageError::Corrupt(c)) => {
                tracing::warn!(error = %c, "damaged transaction index; the segment will be recovered");
                fs.remove_file(&txn_path)
                    .map_err(|e| StorageError::io("remove", &txn_path, e))?;
                (TxnIndexFile::open(fs, txn_path, base)?, true)
            }
            Err(e) => return Err(e),
        };
        let log = fs
            .open(&log_path, false)
            .map_err(|e| StorageError::io("open", &log_path, e))?;
        let size = log.len().map_err(|e| StorageError::io("stat", &log_path, e))?;
        Ok((
            Segment {
                base_offset: base,
                dir: dir.to_path_buf(),
                log_path,
                log,
                size: AtomicU64::new(size),
                reserved: AtomicU64::new(1),
                state: RwLock::new(State {
                    indexes: None,
                    txn,
                    bytes_since_last_index: 0,
                    max_timestamp: -1,
                    offset_of_max_timestamp: base,
                    first_batch_timestamp: None,
                    active: false,
                }),
                limits,
                created_ms: now_ms,
            },
            damaged,
        ))
    }

    fn load_indexes(
        &self,
        fs: &dyn FileSystem,
        state: &mut State,
        max_bytes: Option<usize>,
    ) -> Result<(), StorageError> {
        let (_, idx_path, time_path, _) = Self::paths(&self.dir, self.base_offset);
        let open = |p: &Path| fs.open(p, true).map_err(|e| StorageError::io("open", p, e));
        let offset = OffsetIndex::open(idx_path.clone(), open(&idx_path)?, self.base_offset, max_bytes)
            .map_err(|e| index_err(&idx_path, FileKind::OffsetIndex, e))?;
        let time = TimeIndex::open(time_path.clone(), open(&time_path)?, self.base_offset, max_bytes)
            .map_err(|e| index_err(&time_path, FileKind::TimeIndex, e))?;
        state.indexes = Some(Indexes { offset, time });
        Ok(())
    }

    /// Makes sure an inactive segment's indexes are loaded and sane; an index that fails its
    /// check is rebuilt from the log (indexes are derived data).
    fn ensure_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        if self.state.read().indexes.is_some() {
            return Ok(());
        }
        let mut st = self.state.write();
        if st.indexes.is_some() {
            return Ok(());
        }
        let (_, idx_path, time_path, _) = Self::paths(&self.dir, self.base_offset);
        let missing = self.size() > 0 && !(fs.exists(&idx_path) && fs.exists(&time_path));
        let loaded = if missing {
            Ok(())
        } else {
            self.load_indexes(fs, &mut st, None)
        };
        let sane = !missing
            && loaded.is_ok()
            && st
                .indexes
                .as_ref()
                .is_some_and(|ix| ix.offset.check(self.size()).is_ok() && ix.time.check().is_ok());
        if !sane {
            tracing::warn!(segment = %self.log_path.display(), "index missing or failed its check; rebuilding from the log");
            st.indexes = None;
            // Remove the damaged files and rebuild at full capacity, then trim.
            for p in [&idx_path, &time_path] {
                if fs.exists(p) {
                    fs.remove_file(p)
                        .map_err(|e| StorageError::io("remove", p.as_path(), e))?;
                }
            }
            self.load_indexes(fs, &mut st, Some(self.limits.index_bytes))?;
            self.rebuild_indexes_locked(&mut st)?;
            if let Some(ix) = st.indexes.as_mut() {
                ix.offset
                    .trim()
                    .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
                ix.time
                    .trim()
                    .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
            }
        }
        if sane {
            // A trimmed time index ends with the segment's max timestamp (the final entry
            // written when it became inactive); a rebuild computed it while scanning.
            if let Some((ts, off)) = st.indexes.as_ref().and_then(|ix| ix.time.last_entry()) {
                st.max_timestamp = ts;
                st.offset_of_max_timestamp = off;
            }
        }
        Ok(())
    }

    /// Rebuilds offset and time index entries by scanning the (already valid) log.
    fn rebuild_indexes_locked(&self, st: &mut State) -> Result<(), StorageError> {
        let Some(ix) = st.indexes.as_mut() else {
            return Ok(());
        };
        ix.offset.reset();
        ix.time.reset();
        let mut since = 0u64;
        let mut max_ts = -1i64;
        let mut max_off = self.base_offset;
        let interval = self.limits.index_interval_bytes;
        let end = self.scan_headers(0, self.size(), |b| {
            if b.max_timestamp > max_ts {
                max_ts = b.max_timestamp;
                max_off = b.last_offset;
            }
            if since > interval {
                ix.offset.append(b.last_offset, b.position as u32);
                ix.time.maybe_append(max_ts, max_off, false);
                since = 0;
            }
            since += b.size;
            ControlFlow::Continue(())
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            // Index the valid prefix only: a torn tail is recovery's to cut, and damage below
            // the recovery point is reported by the read that reaches it.
            tracing::warn!(segment = %self.log_path.display(), position, %error, "index rebuild stopped at an invalid batch");
        }
        st.bytes_since_last_index = since;
        st.max_timestamp = max_ts;
        st.offset_of_max_timestamp = max_off;
        Ok(())
    }

    pub(crate) fn corrupt(&self, position: u64, detail: CorruptionDetail) -> StorageError {
        Corruption {
            path: self.log_path.clone(),
            kind: FileKind::Log,
            position,
            detail,
        }
        .into()
    }

    /// Bytes of valid data visible to readers.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn file(&self) -> &Arc<dyn StorageFile> {
        &self.log
    }

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
        let mut st = self.state.write();
        if st.first_batch_timestamp.is_none() && position == 0 {
            st.first_batch_timestamp = Some(max_timestamp);
        }
        if max_timestamp > st.max_timestamp {
            st.max_timestamp = max_timestamp;
            st.offset_of_max_timestamp = offset_of_max;
        }
        if st.bytes_since_last_index > self.limits.index_interval_bytes {
            let (ts, off) = (st.max_timestamp, st.offset_of_max_timestamp);
            if let Some(ix) = st.indexes.as_mut() {
                ix.offset.append(largest_offset, position as u32);
                ix.time.maybe_append(ts, off, false);
            }
            st.bytes_since_last_index = 0;
        }
        st.bytes_since_last_index += len;
        drop(st);
        self.size.store(position + len, Ordering::Release);
        Ok(())
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

    pub(crate) fn append_aborted(&self, fs: &dyn FileSystem, e: AbortedTxn) -> Result<(), StorageError> {
        self.state.write().txn.append(fs, e)
    }

    pub(crate) fn aborted_entries(&self) -> Vec<AbortedTxn> {
        self.state.read().txn.entries.clone()
    }

    /// Roll conditions from the indexes' side.
    pub(crate) fn indexes_full(&self) -> bool {
        self.state
            .read()
            .indexes
            .as_ref()
            .is_some_and(|ix| ix.offset.is_full() || ix.time.is_full())
    }

    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.state.read().first_batch_timestamp
    }

    /// Largest record timestamp in the segment (-1 if unknown).
    pub(crate) fn max_timestamp(&self, fs: &dyn FileSystem) -> Result<i64, StorageError> {
        self.ensure_indexes(fs)?;
        Ok(self.state.read().max_timestamp)
    }

    /// Reads the header of the batch at `position` (`None` at or past `limit`).
    pub(crate) fn read_header(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Option<Result<BatchInfo, BatchError>>, StorageError> {
        if position + LOG_OVERHEAD as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        let want = (limit - position).min(HEADER_SIZE as u64) as usize;
        let n = self.read_exact_at(&mut buf[..want], position)?;
        Ok(Some(parse_header(&buf[..n], position, limit)))
    }

    fn read_exact_at(&self, buf: &mut [u8], position: u64) -> Result<usize, StorageError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .log
                .read_at(&mut buf[done..], position + done as u64)
                .map_err(|e| StorageError::io("read", &self.log_path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Walks batch headers in `[from, limit)`, calling `f` for each, without reading records.
    pub(crate) fn scan_headers(
        &self,
        from: u64,
        limit: u64,
        mut f: impl FnMut(&BatchInfo) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StorageError> {
        let mut pos = from;
        loop {
            match self.read_header(pos, limit)? {
                None => {
                    return Ok(if pos == limit {
                        ScanEnd::Clean
                    } else {
                        ScanEnd::Invalid {
                            position: pos,
                            error: BatchError::Truncated {
                                needed: LOG_OVERHEAD as u64,
                                available: limit - pos,
                            },
                        }
                    })
                }
                Some(Err(error)) => return Ok(ScanEnd::Invalid { position: pos, error }),
                Some(Ok(info)) => {
                    if f(&info).is_break() {
                        return Ok(ScanEnd::Stopped);
                    }
                    pos += info.size;
                }
            }
        }
    }

    /// Walks whole batches (header and records) in `[from, limit)` with a bounded buffer,
    /// validating size, magic and CRC of each. Used by recovery and verification.
    pub(crate) fn scan_batches(
        &self,
        from: u64,
        limit: u64,
        mut f: impl FnMut(u64, RecordBatch<'_>) -> Result<ControlFlow<()>, StorageError>,
    ) -> Result<ScanEnd, StorageError> {
        const CHUNK: usize = 1 << 20;
        // Never trust a length field beyond the file: a torn tail may claim gigabytes.
        let file_len = self
            .log
            .len()
            .map_err(|e| StorageError::io("stat", &self.log_path, e))?;
        let limit = limit.min(file_len);
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_pos = from; // file position of buf[0]
        let mut consumed = 0usize;
        loop {
            let pos = buf_pos + consumed as u64;
            if pos >= limit {
                return Ok(ScanEnd::Clean);
            }
            let avail = &buf[consumed..];
            let needed = match crate::batch::peek_batch_size(avail) {
                Some((_, len)) if len >= 0 => LOG_OVERHEAD + len as usize,
                _ => LOG_OVERHEAD,
            };
            if avail.len() < needed {
                if (limit - pos) < needed as u64 {
                    // Torn: the batch would run past the end.
                    let error = match RecordBatch::parse(avail) {
                        Err(e) => e,
                        Ok(_) => BatchError::Truncated {
                            needed: needed as u64,
                            available: limit - pos,
                        },
                    };
                    return Ok(ScanEnd::Invalid { position: pos, error });
                }
                // Refill: keep the unconsumed tail, read at least `needed` bytes.
                buf.drain(..consumed);
                buf_pos = pos;
                consumed = 0;
                let want = needed.max(CHUNK).min((limit - pos) as usize);
                let have = buf.len();
                buf.resize(want, 0);
                let n = self.read_exact_at(&mut buf[have..], pos + have as u64)?;
                buf.truncate(have + n);
                if buf.is_empty() {
                    return Ok(ScanEnd::Clean); // end of file on a batch boundary
                }
                if buf.len() < needed {
                    return Ok(ScanEnd::Invalid {
                        position: pos,
                        error: BatchError::Truncated {
                            needed: needed as u64,
                            available: buf.len() as u64,
                        },
                    });
                }
                continue;
            }
            let batch = match RecordBatch::parse(avail) {
                Ok((b, _)) => b,
                Err(error) => return Ok(ScanEnd::Invalid { position: pos, error }),
            };
            if let Err(error) = batch.validate_crc() {
                return Ok(ScanEnd::Invalid { position: pos, error });
            }
            let size = batch.size();
            if f(pos, batch)?.is_break() {
                return Ok(ScanEnd::Stopped);
            }
            consumed += size;
        }
    }

    /// The last indexed append whose start is at most `max_position` and whose last offset
    /// is below `below`, as `(its last offset, its start position)`, if the start lies in
    /// `(after, limit)`. Every batch before it is whole and ends at or before it, with
    /// offsets below `below`, so a read may take them without reading their headers. `None`
    /// without such an entry (or with the indexes not loaded): the caller walks the headers.
    pub(crate) fn indexed_append_before(
        &self,
        max_position: u64,
        below: i64,
        after: u64,
        limit: u64,
    ) -> Option<(i64, u64)> {
        let st = self.state.read();
        let (offset, position) = st
            .indexes
            .as_ref()?
            .offset
            .last_entry_within(max_position, below)?;
        let position = u64::from(position);
        (position > after && position < limit).then_some((offset, position))
    }

    /// The position of the first batch whose last offset is `>= offset`, searching from the
    /// index hint. `None` if no such batch lies below `limit`.
    pub(crate) fn find_batch(
        &self,
        fs: &dyn FileSystem,
        offset: i64,
        limit: u64,
    ) -> Result<Option<BatchInfo>, StorageError> {
        self.ensure_indexes(fs)?;
        let hint = {
            let st = self.state.read();
            st.indexes
                .as_ref()
                .map_or(0, |ix| u64::from(ix.offset.lookup(offset).1))
        };
        let hint = if hint >= limit { 0 } else { hint };
        let mut found = None;
        let end = self.scan_headers(hint, limit, |b| {
            if b.last_offset >= offset {
                found = Some(*b);
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            if hint != 0 {
                // The hint pointed somewhere wrong: never trust an index, rescan from 0.
                let mut found = None;
                let end = self.scan_headers(0, limit, |b| {
                    if b.last_offset >= offset {
                        found = Some(*b);
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })?;
                if let ScanEnd::Invalid { position, error } = end {
                    return Err(self.corrupt(position, error.into()));
                }
                return Ok(found);
            }
            return Err(self.corrupt(position, error.into()));
        }
        Ok(found)
    }

    /// Byte position of the last offset-index entry (0 when none or out of range).
    pub(crate) fn last_indexed_position(&self, fs: &dyn FileSystem) -> Result<u64, StorageError> {
        self.ensure_indexes(fs)?;
        let st = self.state.read();
        let pos = st
            .indexes
            .as_ref()
            .map_or(0, |ix| u64::from(ix.offset.lookup(i64::MAX).1));
        Ok(if pos < self.size() { pos } else { 0 })
    }

    /// The max timestamp of the first batch, read from its header (time-based rolls measure
    /// from it after a reopen, as Kafka does).
    pub(crate) fn load_first_batch_timestamp(&self) -> Result<(), StorageError> {
        if let Some(Ok(info)) = self.read_header(0, self.size())? {
            self.state.write().first_batch_timestamp = Some(info.max_timestamp);
        }
        Ok(())
    }

    /// Offset of the first record with timestamp >= `timestamp` at or after `from_offset`.
    pub(crate) fn find_offset_by_timestamp(
        &self,
        fs: &dyn FileSystem,
        timestamp: i64,
        from_offset: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        self.ensure_indexes(fs)?;
        let start_offset = {
            let st = self.state.read();
            st.indexes
                .as_ref()
                .map_or(self.base_offset, |ix| ix.time.lookup(timestamp).1)
        }
        .max(from_offset);
        let limit = self.size();
        let Some(start) = self.find_batch(fs, start_offset, limit)? else {
            return Ok(None);
        };
        let mut result = None;
        let end = self.scan_batches(start.position, limit, |_, batch| {
            if batch.max_timestamp() >= timestamp {
                let records = batch
                    .records()
                    .map_err(|e| self.corrupt(start.position, e.into()))?;
                for r in records.iter() {
                    let r = r.map_err(|e| self.corrupt(start.position, e.into()))?;
                    if r.timestamp >= timestamp && r.offset >= from_offset {
                        result = Some((r.offset, r.timestamp));
                        return Ok(ControlFlow::Break(()));
                    }
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            return Err(self.corrupt(position, error.into()));
        }
        Ok(result)
    }

    /// Cuts the segment so that it ends before the batch containing `offset`; returns the
    /// bytes removed.
    pub(crate) fn truncate_to(&self, fs: &dyn FileSystem, offset: i64) -> Result<u64, StorageError> {
        let size = self.size();
        let cut = self.find_batch(fs, offset, size)?.map_or(size, |b| b.position);
        let mut st = self.state.write();
        if let Some(ix) = st.indexes.as_mut() {
            ix.offset.truncate_to(offset);
            ix.time.truncate_to(offset);
        }
        st.txn.truncate_to(offset)?;
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
        let last = st.indexes.as_ref().and_then(|ix| ix.time.last_entry());
        (st.max_timestamp, st.offset_of_max_timestamp) = last.unwrap_or((-1, self.base_offset));
        Ok(size - cut)
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

    /// Recovery: validates every batch from `resume` (a byte position and the offset there,
    /// known durable: the recovery point) or from the segment start, rebuilding the indexes
    /// and the transaction index for what it scans; the callback sees each valid batch.
    /// Returns where validation stopped, if it did.
    pub(crate) fn recover(
        &self,
        fs: &dyn FileSystem,
        resume: Option<(u64, i64)>,
        mut on_batch: impl FnMut(u64, &RecordBatch<'_>) -> Result<(), StorageError>,
    ) -> Result<Option<(u64, CorruptionDetail)>, StorageError> {
        let file_len = self
            .log
            .len()
            .map_err(|e| StorageError::io("stat", &self.log_path, e))?;
        let resume = resume.filter(|&(pos, _)| pos > 0 && pos <= file_len);
        if let Some((pos, offset)) = resume {
            // Everything below the recovery point was flushed with its index entries: keep
            // them, and resume validation there.
            let mut st = self.state.write();
            if st.indexes.is_none() {
                self.load_indexes(fs, &mut st, Some(self.limits.index_bytes))?;
            }
            if let Some(ix) = st.indexes.as_mut() {
                ix.offset.keep_valid_prefix(offset, pos);
                ix.time.keep_valid_prefix(offset);
            }
            st.txn.truncate_to(offset)?;
            st.bytes_since_last_index = 0;
            let last = st.indexes.as_ref().and_then(|ix| ix.time.last_entry());
            (st.max_timestamp, st.offset_of_max_timestamp) = last.unwrap_or((-1, self.base_offset));
            // The batches after the last index entry are not in the time index: take their
            // timestamps from their headers (at most one index interval of bytes).
            let indexed_upto = st
                .indexes
                .as_ref()
                .and_then(|ix| ix.offset.last_entry())
                .map_or(0, |(_, p)| u64::from(p));
            drop(st);
            self.size.store(pos, Ordering::Release);
            let mut max = (-1i64, self.base_offset);
            self.scan_headers(indexed_upto, pos, |b| {
                if b.max_timestamp > max.0 {
                    max = (b.max_timestamp, b.last_offset);
                }
                ControlFlow::Continue(())
            })?;
            {
                let mut st = self.state.write();
                if max.0 > st.max_timestamp {
                    (st.max_timestamp, st.offset_of_max_timestamp) = max;
                }
            }
            self.load_first_batch_timestamp()?;
        } else {
            let mut st = self.state.write();
            if st.indexes.is_none() || st.active {
                // Recovery never trusts existing index files: recreate them empty.
                st.indexes = None;
                let (_, idx_path, time_path, _) = Self::paths(&self.dir, self.base_offset);
                for p in [&idx_path, &time_path] {
                    if fs.exists(p) {
                        fs.remove_file(p)
                            .map_err(|e| StorageError::io("remove", p.as_path(), e))?;
                    }
                }
                self.load_indexes(fs, &mut st, Some(self.limits.index_bytes))?;
            }
            if let Some(ix) = st.indexes.as_mut() {
                ix.offset.reset();
                ix.time.reset();
            }
            st.txn.reset()?;
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
                    if let Some(ix) = st.indexes.as_mut() {
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
        if valid < file_len {
            tracing::warn!(segment = %self.log_path.display(), valid, file_len, "recovery truncated a torn or corrupt tail");
            self.truncate_bytes(valid)?;
        }
        Ok(stopped)
    }

    /// Marks the segment active again (after truncation back into it): resize indexes.
    pub(crate) fn make_active(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        self.ensure_indexes(fs)?;
        let mut st = self.state.write();
        st.active = true;
        let max = self.limits.index_bytes;
        if let Some(ix) = st.indexes.as_mut() {
            ix.offset
                .resize(max)
                .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
            ix.time
                .resize(max)
                .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        }
        Ok(())
    }

    /// The segment stops being the active one: final time-index entry, trim the indexes.
    pub(crate) fn make_inactive(&self) -> Result<(), StorageError> {
        self.release_reserved()?;
        let mut st = self.state.write();
        st.active = false;
        let (ts, off) = (st.max_timestamp, st.offset_of_max_timestamp);
        if let Some(ix) = st.indexes.as_mut() {
            if ts >= 0 {
                ix.time.maybe_append(ts, off, true);
            }
            ix.offset
                .trim()
                .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
            ix.time
                .trim()
                .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        }
        Ok(())
    }

    /// fsyncs the log file, the indexes and the txn index.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))?;
        let st = self.state.read();
        if let Some(ix) = st.indexes.as_ref() {
            ix.offset
                .flush()
                .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
            ix.time
                .flush()
                .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        }
        st.txn.flush()
    }

    /// fsyncs only the log file (the durable-append path; indexes are rebuilt by recovery).
    pub(crate) fn sync_log(&self) -> Result<(), StorageError> {
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))
    }

    /// Deletes the segment's files (the caller fsyncs the directory).
    pub(crate) fn delete(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let mut st = self.state.write();
        st.indexes = None; // unmap before unlinking
        let (log, idx, time, txn) = Self::paths(&self.dir, self.base_offset);
        for p in [&log, &idx, &time, &txn] {
            if fs.exists(p) {
                fs.remove_file(p)
                    .map_err(|e| StorageError::io("remove", p.as_path(), e))?;
            }
        }
        Ok(())
    }

    /// Checks the on-disk index files against the log without rebuilding anything.
    pub(crate) fn verify_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let (_, idx_path, time_path, _) = Self::paths(&self.dir, self.base_offset);
        {
            // The active segment's files are preallocated: check the entries in use.
            let st = self.state.read();
            if let (true, Some(ix)) = (st.active, st.indexes.as_ref()) {
                let checks = [
                    (ix.offset.check(self.size()), &idx_path, FileKind::OffsetIndex),
                    (ix.time.check(), &time_path, FileKind::TimeIndex),
                ];
                for (result, path, kind) in checks {
                    if let Err((position, detail)) = result {
                        return Err(Corruption {
                            path: path.clone(),
                            kind,
                            position,
                            detail,
                        }
                        .into());
                    }
                }
                return Ok(());
            }
        }
        for (p, kind) in [
            (&idx_path, FileKind::OffsetIndex),
            (&time_path, FileKind::TimeIndex),
        ] {
            if !fs.exists(p) {
                continue;
            }
            let f = fs
                .open(p, false)
                .map_err(|e| StorageError::io("open", p.as_path(), e))?;
            let result = if kind == FileKind::OffsetIndex {
                OffsetIndex::open(p.clone(), f, self.base_offset, None)
                    .map_err(|e| index_err(p, kind, e))?
                    .check(self.size())
            } else {
                TimeIndex::open(p.clone(), f, self.base_offset, None)
                    .map_err(|e| index_err(p, kind, e))?
                    .check()
            };
            if let Err((position, detail)) = result {
                return Err(Corruption {
                    path: p.clone(),
                    kind,
                    position,
                    detail,
                }
                .into());
            }
        }
        Ok(())
    }
}

/// Parses the header bytes of a batch at `position` (at most 61 bytes given), checking the
/// length against `limit` but not the CRC.
fn parse_header(buf: &[u8], position: u64, limit: u64) -> Result<BatchInfo, BatchError> {
    let Some((base, len)) = crate::batch::peek_batch_size(buf) else {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD as u64,
            available: buf.len() as u64,
        });
    };
    if len < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength { declared: len });
    }
    let size = LOG_OVERHEAD as u64 + len as u64;
    if position + size > limit {
        return Err(BatchError::Truncated {
            needed: size,
            available: limit - position,
        });
    }
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated {
            needed: HEADER_SIZE as u64,
            available: buf.len() as u64,
        });
    }
    let magic = buf[crate::batch::MAGIC_OFFSET] as i8;
    if magic != crate::batch::MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic });
    }
    let delta = i32::from_be_bytes(
        buf[crate::batch::LAST_OFFSET_DELTA_OFFSET..crate::batch::LAST_OFFSET_DELTA_OFFSET + 4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    let max_ts = i64::from_be_bytes(
        buf[crate::batch::MAX_TIMESTAMP_OFFSET..crate::batch::MAX_TIMESTAMP_OFFSET + 8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    Ok(BatchInfo {
        position,
        size,
        base_offset: base,
        last_offset: base.saturating_add(i64::from(delta)),
        max_timestamp: max_ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_20_digits() {
        assert_eq!(file_name(368_769, "log"), "00000000000000368769.log");
        assert_eq!(
            parse_file_name("00000000000000368769.log"),
            Some((368_769, "log"))
        );
        assert_eq!(
            parse_file_name("00000000000000000005.log.deleted"),
            Some((5, "log.deleted"))
        );
        assert_eq!(parse_file_name("leader-epoch-checkpoint"), None);
        assert_eq!(parse_file_name("-1.log"), None);
        assert_eq!(parse_file_name("99999999999999999999999.log"), None);
    }
}
