//! One log segment: a `.log` file of concatenated batches with its `.index`, `.timeindex`
//! and `.txnindex`, all named by the segment's base offset in 20 zero-padded digits.
//!
//! Concurrency: the writer appends with positional writes past `size` and then publishes the
//! new size with a release store; readers load `size` (acquire) and never look past it, so
//! reads take no lock on the data path. The indexes sit behind a short `RwLock`.
//!
//! Lifecycle of the indexes ([`IndexState`]): an inactive segment opened from disk has not
//! read its index files yet; the first lookup loads them (read-only, checked) or rebuilds
//! them from the log. A deleted segment keeps its open `.log` handle for readers that still
//! hold it, and never touches the directory again: no lookup recreates or removes a file of
//! a segment that is gone (a new segment may have taken its name).

mod recover;
mod scan;

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use parking_lot::{Mutex, RwLock};

use crate::error::{BatchError, Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{FileSystem, StorageFile};
use crate::index::{IndexError, OffsetEntry, OffsetIndex, TimeIndex};
use crate::txn_index::{read_entries, AbortedTxn, TxnIndexFile};

/// Suffix of the files of a cleaner's copy while it is written (Kafka's `.cleaned`).
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a finished cleaner's copy that replaces its originals (Kafka's `.swap`): once
/// its `.log` has this name, opening the log completes the replacement.
pub const SWAP_SUFFIX: &str = ".swap";

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

/// One batch of an [`Segment::append_batches`] write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    pub len: u64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// The offset that carries `max_timestamp`.
    pub offset_of_max: i64,
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

/// The offset and time index of a segment.
#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) offset: OffsetIndex,
    pub(crate) time: TimeIndex,
}

/// Where a segment's indexes are in their life.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per segment, inside its state lock; a box would add a pointer chase to every lookup"
)]
pub(crate) enum IndexState {
    /// An inactive segment opened from disk: its index files were not read yet.
    NotLoaded,
    /// In use: writable (mapped) while the segment is active or being recovered, read-only
    /// otherwise.
    Loaded(Indexes),
    /// The segment was deleted (retention, truncation, recovery): lookups go without an
    /// index and nothing touches the directory again.
    Deleted,
}

#[derive(Debug)]
struct State {
    indexes: IndexState,
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
    /// Appended to every file name: empty for a segment of the log, [`CLEANED_SUFFIX`] for
    /// a cleaner's copy being written beside it.
    suffix: &'static str,
    pub log_path: PathBuf,
    log: Arc<dyn StorageFile>,
    size: AtomicU64,
    /// End of the space reserved past `size` (`StorageFile::preallocate`); 0 when nothing
    /// is reserved, `u64::MAX` once a reservation failed (none is tried again). A segment
    /// opened from disk starts at 1: an earlier run may have left space reserved (a crash
    /// skips the release), so it is released when the segment next rolls or closes.
    reserved: AtomicU64,
    state: RwLock<State>,
    /// The transaction index: apart from `state`, so that a checkpoint (under the log's
    /// writer lock) never waits for a reader's index rebuild.
    txn: Mutex<TxnIndexFile>,
    /// CRC-32C of the offset and time index files while the segment is inactive: recorded by
    /// the checkpoint until the files are loaded (the load must find them), then the files'
    /// own; `None` while writable or unknown. Apart from `state` for the same reason.
    index_crcs: Mutex<Option<(u32, u32)>>,
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

fn remove_if_present(fs: &dyn FileSystem, p: &Path) -> Result<(), StorageError> {
    if fs.exists(p) {
        fs.remove_file(p).map_err(|e| StorageError::io("remove", p, e))?;
    }
    Ok(())
}

impl Segment {
    fn paths(dir: &Path, base: i64) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let [log, index, time, txn] = Self::files(dir, base, "");
        (log, index, time, txn)
    }

    /// The `.log`, `.index`, `.timeindex` and `.txnindex` of segment `base`, each followed
    /// by `suffix` (`""`, [`CLEANED_SUFFIX`], [`SWAP_SUFFIX`]).
    pub(crate) fn files(dir: &Path, base: i64, suffix: &str) -> [PathBuf; 4] {
        ["log", "index", "timeindex", "txnindex"]
            .map(|kind| dir.join(format!("{}{suffix}", file_name(base, kind))))
    }

    fn my_paths(&self) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let [log, index, time, txn] = Self::files(&self.dir, self.base_offset, self.suffix);
        (log, index, time, txn)
    }

    fn new(
        dir: &Path,
        base: i64,
        log: Arc<dyn StorageFile>,
        size: u64,
        txn: TxnIndexFile,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Segment {
        let [log_path, ..] = Self::files(dir, base, "");
        Segment {
            base_offset: base,
            dir: dir.to_path_buf(),
            suffix: "",
            log_path,
            log,
            size: AtomicU64::new(size),
            reserved: AtomicU64::new(0),
            state: RwLock::new(State {
                indexes: IndexState::NotLoaded,
                bytes_since_last_index: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: base,
                first_batch_timestamp: None,
                active: false,
            }),
            txn: Mutex::new(txn),
            index_crcs: Mutex::new(None),
            limits,
            created_ms: now_ms,
        }
    }

    /// Creates a new, empty, active segment (the caller fsyncs the directory).
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Result<Segment, StorageError> {
        Self::create_with_suffix(fs, dir, base, limits, now_ms, "")
    }

    /// Creates the cleaner's copy of segment `base`, every file named with
    /// [`CLEANED_SUFFIX`]: written like an active segment, then finished with
    /// [`Segment::make_inactive`] and [`Segment::flush`] and renamed in by the cleaner.
    pub(crate) fn create_cleaned(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
    ) -> Result<Segment, StorageError> {
        Self::create_with_suffix(fs, dir, base, limits, now_ms, CLEANED_SUFFIX)
    }

    fn create_with_suffix(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
        suffix: &'static str,
    ) -> Result<Segment, StorageError> {
        let [log_path, idx_path, time_path, txn_path] = Self::files(dir, base, suffix);
        // Leftovers with this base (a crash during an earlier roll) are replaced.
        for p in [&log_path, &idx_path, &time_path, &txn_path] {
            remove_if_present(fs, p)?;
        }
        let log = fs
            .open(&log_path, true)
            .map_err(|e| StorageError::io("create", &log_path, e))?;
        let mut seg = Segment::new(
            dir,
            base,
            log,
            0,
            TxnIndexFile::open(fs, txn_path, base)?,
            limits,
            now_ms,
        );
        seg.suffix = suffix;
        seg.log_path = log_path;
        {
            let mut st = seg.state.write();
            st.active = true;
            st.indexes = IndexState::Loaded(seg.open_indexes(fs, Some(limits.index_bytes), None)?);
        }
        Ok(seg)
    }

    /// Opens an existing segment; its indexes are read when first needed. Returns the
    /// segment and, when a file derived from it is missing or damaged, why: the segment must
    /// then be recovered (its transaction index and producer state rebuilt from the log). A
    /// damaged transaction index is removed here; recovery rewrites it. `has_index_files`
    /// tells whether both the `.index` and the `.timeindex` exist; `index_crcs` are their
    /// checksums as the checkpoint recorded them, which their first load must match.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base: i64,
        limits: SegmentLimits,
        now_ms: i64,
        has_index_files: bool,
        index_crcs: Option<(u32, u32)>,
    ) -> Result<(Segment, Option<&'static str>), StorageError> {
        let (log_path, _, _, txn_path) = Self::paths(dir, base);
        let mut damage = None;
        let txn = match TxnIndexFile::open(fs, txn_path.clone(), base) {
            Ok(t) => t,
            Err(StorageError::Corrupt(c)) => {
                tracing::warn!(error = %c, "damaged transaction index; the segment will be recovered");
                damage = Some("transaction index damaged");
                fs.remove_file(&txn_path)
                    .map_err(|e| StorageError::io("remove", &txn_path, e))?;
                TxnIndexFile::open(fs, txn_path, base)?
            }
            Err(e) => return Err(e),
        };
        let log = fs
            .open(&log_path, false)
            .map_err(|e| StorageError::io("open", &log_path, e))?;
        let size = log.len().map_err(|e| StorageError::io("stat", &log_path, e))?;
        if size > 0 && !has_index_files && damage.is_none() {
            // Kafka's rule: a segment whose offset index is missing is recovered whole.
            damage = Some("offset or time index missing");
        }
        let seg = Segment::new(dir, base, log, size, txn, limits, now_ms);
        seg.reserved.store(1, Ordering::Relaxed);
        *seg.index_crcs.lock() = index_crcs;
        Ok((seg, damage))
    }

    /// Opens both index files: writable with `max_bytes` of capacity each, or read-only and
    /// checked against the log and against `crcs` (their recorded checksums), when given.
    fn open_indexes(
        &self,
        fs: &dyn FileSystem,
        writable: Option<usize>,
        crcs: Option<(u32, u32)>,
    ) -> Result<Indexes, StorageError> {
        let (_, idx_path, time_path, _) = self.my_paths();
        self.open_index_files(fs, (idx_path, time_path), writable, crcs)
    }

    /// [`Segment::open_indexes`] on the files at `paths` (offset index, time index).
    fn open_index_files(
        &self,
        fs: &dyn FileSystem,
        (idx_path, time_path): (PathBuf, PathBuf),
        writable: Option<usize>,
        crcs: Option<(u32, u32)>,
    ) -> Result<Indexes, StorageError> {
        let open = |p: &Path| {
            fs.open(p, writable.is_some())
                .map_err(|e| StorageError::io("open", p, e))
        };
        let (offset, time) = match writable {
            Some(max) => (
                OffsetIndex::open_mapped(idx_path.clone(), open(&idx_path)?, self.base_offset, max),
                TimeIndex::open_mapped(time_path.clone(), open(&time_path)?, self.base_offset, max),
            ),
            None => {
                let size = self.size();
                let (offset_crc, time_crc) = (crcs.map(|c| c.0), crcs.map(|c| c.1));
                (
                    OffsetIndex::open_read(
                        idx_path.clone(),
                        open(&idx_path)?,
                        self.base_offset,
                        size,
                        offset_crc,
                    ),
                    TimeIndex::open_read(
                        time_path.clone(),
                        open(&time_path)?,
                        self.base_offset,
                        size,
                        time_crc,
                    ),
                )
            }
        };
        Ok(Indexes {
            offset: offset.map_err(|e| index_err(&idx_path, FileKind::OffsetIndex, e))?,
            time: time.map_err(|e| index_err(&time_path, FileKind::TimeIndex, e))?,
        })
    }

    /// Removes the index files and creates them empty and writable at full capacity.
    fn recreate_indexes(&self, fs: &dyn FileSystem, st: &mut State) -> Result<(), StorageError> {
        debug_assert!(
            !matches!(st.indexes, IndexState::Deleted),
            "a deleted segment is never rebuilt"
        );
        st.indexes = IndexState::NotLoaded; // unmap before unlinking
        *self.index_crcs.lock() = None;
        let (_, idx_path, time_path, _) = self.my_paths();
        remove_if_present(fs, &idx_path)?;
        remove_if_present(fs, &time_path)?;
        st.indexes = IndexState::Loaded(self.open_indexes(fs, Some(self.limits.index_bytes), None)?);
        Ok(())
    }

    /// The indexes, writable. Indexes not loaded yet are opened as they are (recovery keeps
    /// their plausible prefix) if the checkpoint recorded no checksum for them, or if their
    /// checksum matches; otherwise they are recreated empty. Returns them and whether the
    /// entries they held were kept.
    fn writable_indexes<'s>(
        &self,
        fs: &dyn FileSystem,
        st: &'s mut State,
    ) -> Result<(&'s mut Indexes, bool), StorageError> {
        let max = self.limits.index_bytes;
        let mut kept = true;
        if matches!(st.indexes, IndexState::NotLoaded) {
            let recorded = *self.index_crcs.lock();
            match recorded.map(|crcs| self.open_indexes(fs, None, Some(crcs))) {
                None => st.indexes = IndexState::Loaded(self.open_indexes(fs, Some(max), None)?),
                Some(Ok(ix)) => st.indexes = IndexState::Loaded(ix),
                Some(Err(StorageError::Corrupt(c))) => {
                    tracing::warn!(error = %c, "index differs from its recorded checksum; recreated");
                    self.recreate_indexes(fs, st)?;
                    kept = false;
                }
                Some(Err(e)) => return Err(e),
            }
        }
        // The files are about to change: whatever checksum was recorded no longer holds.
        *self.index_crcs.lock() = None;
        match &mut st.indexes {
            IndexState::Loaded(ix) => {
                if !ix.offset.is_writable() {
                    ix.offset
                        .make_writable(max)
                        .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
                }
                if !ix.time.is_writable() {
                    ix.time
                        .make_writable(max)
                        .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
                }
                Ok((ix, kept))
            }
            _ => {
                debug_assert!(false, "the writer never writes a deleted segment");
                Err(StorageError::Closed)
            }
        }
    }

    /// Makes sure an inactive segment's indexes are loaded and sane; an index that is
    /// missing or fails its check is rebuilt from the log (indexes are derived data). A
    /// deleted segment is left as it is.
    fn ensure_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        if !matches!(self.state.read().indexes, IndexState::NotLoaded) {
            return Ok(());
        }
        let mut st = self.state.write();
        if !matches!(st.indexes, IndexState::NotLoaded) {
            return Ok(());
        }
        let (_, idx_path, time_path, _) = self.my_paths();
        let present = fs.exists(&idx_path) && fs.exists(&time_path);
        let recorded = *self.index_crcs.lock();
        match present.then(|| self.open_indexes(fs, None, recorded)) {
            Some(Ok(ix)) => {
                *self.index_crcs.lock() = ix.offset.crc().zip(ix.time.crc());
                // A trimmed time index ends with the segment's max timestamp (the final entry
                // written when it became inactive).
                if let Some(e) = ix.time.last() {
                    st.max_timestamp = e.timestamp;
                    st.offset_of_max_timestamp = e.offset;
                }
                st.indexes = IndexState::Loaded(ix);
            }
            Some(Err(StorageError::Io { op, path, source })) => {
                return Err(StorageError::Io { op, path, source });
            }
            failed => {
                if self.size() > 0 || failed.is_some() {
                    tracing::warn!(segment = %self.log_path.display(), "index missing or failed its check; rebuilding from the log");
                }
                self.rebuild_indexes(fs, &mut st)?;
            }
        }
        Ok(())
    }

    /// Rebuilds both indexes of an inactive segment from its log into temporary files that
    /// are trimmed, fsynced and renamed over the old ones, then the directory fsynced: a crash
    /// at any step leaves the old files or the new ones, never no file (which the next open
    /// would take for a lost index and answer with recovery of every later segment).
    fn rebuild_indexes(&self, fs: &dyn FileSystem, st: &mut State) -> Result<(), StorageError> {
        debug_assert!(
            !matches!(st.indexes, IndexState::Deleted),
            "a deleted segment is never rebuilt"
        );
        st.indexes = IndexState::NotLoaded;
        *self.index_crcs.lock() = None;
        let (_, idx_path, time_path, _) = self.my_paths();
        let tmp = |p: &Path| {
            let mut name = p.as_os_str().to_owned();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let (idx_tmp, time_tmp) = (tmp(&idx_path), tmp(&time_path));
        remove_if_present(fs, &idx_tmp)?;
        remove_if_present(fs, &time_tmp)?;
        let ix = self.open_index_files(
            fs,
            (idx_tmp.clone(), time_tmp.clone()),
            Some(self.limits.index_bytes),
            None,
        )?;
        st.indexes = IndexState::Loaded(ix);
        self.rebuild_indexes_locked(st)?;
        let IndexState::Loaded(ix) = &mut st.indexes else {
            return Ok(());
        };
        self.make_read_only(ix)?;
        ix.offset
            .flush()
            .map_err(|e| index_err(&idx_tmp, FileKind::OffsetIndex, e))?;
        ix.time
            .flush()
            .map_err(|e| index_err(&time_tmp, FileKind::TimeIndex, e))?;
        for (from, to) in [(&idx_tmp, &idx_path), (&time_tmp, &time_path)] {
            fs.rename(from, to)
                .map_err(|e| StorageError::io("rename", to.as_path(), e))?;
        }
        // IMPORTANT: the renames are durable once the directory is.
        fs.sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", self.dir.as_path(), e))?;
        ix.offset.path = idx_path;
        ix.time.path = time_path;
        Ok(())
    }

    /// Rebuilds offset and time index entries by scanning the (already valid) log.
    fn rebuild_indexes_locked(&self, st: &mut State) -> Result<(), StorageError> {
        let IndexState::Loaded(ix) = &mut st.indexes else {
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
        if max_ts >= 0 {
            // The final entry an inactive segment's time index ends with.
            ix.time.maybe_append(max_ts, max_off, true);
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

    /// Index entries both indexes can still take (0 when they are not loaded).
    pub(crate) fn index_room(&self) -> usize {
        match &self.state.read().indexes {
            IndexState::Loaded(ix) => ix.offset.room().min(ix.time.room()),
            _ => 0,
        }
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
        self.txn.lock().append(fs, e)
    }

    pub(crate) fn aborted_entries(&self) -> Vec<AbortedTxn> {
        self.txn.lock().entries.clone()
    }

    /// The transaction index as its file holds it now (empty when there is none), read
    /// without changing anything: what `verify` compares with the log. `None` for a deleted
    /// segment.
    pub(crate) fn txn_index_on_disk(
        &self,
        fs: &dyn FileSystem,
    ) -> Result<Option<(PathBuf, Vec<AbortedTxn>)>, StorageError> {
        let st = self.state.read();
        if matches!(st.indexes, IndexState::Deleted) {
            return Ok(None);
        }
        let path = self.txn.lock().path.clone();
        if !fs.exists(&path) {
            return Ok(Some((path, Vec::new())));
        }
        let f = fs
            .open(&path, false)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let read = read_entries(&*f, &path, self.base_offset)?;
        if read.torn_tail {
            return Err(Corruption {
                path,
                kind: FileKind::TxnIndex,
                position: (read.entries.len() * crate::txn_index::ENTRY_SIZE) as u64,
                detail: CorruptionDetail::Invalid("partial entry at the end of the transaction index"),
            }
            .into());
        }
        Ok(Some((path, read.entries)))
    }

    /// How many transaction-index entries have their marker below `offset`, and the CRC-32C
    /// of their bytes (what the checkpoint records, and what the next open must find).
    pub(crate) fn txn_summary_below(&self, offset: i64) -> (usize, u32) {
        self.txn.lock().summary_below(offset)
    }

    /// The checksums of the offset and time index files while the segment is inactive (as
    /// loaded, or as recorded and not loaded yet); `None` while writable or unknown.
    pub(crate) fn index_crcs(&self) -> Option<(u32, u32)> {
        *self.index_crcs.lock()
    }

    /// Whether the index files of a segment not loaded yet still hold what the checkpoint
    /// recorded (true when nothing was recorded): recovery may then keep their entries.
    pub(crate) fn recorded_indexes_intact(&self, fs: &dyn FileSystem) -> Result<bool, StorageError> {
        let recorded = *self.index_crcs.lock();
        if recorded.is_none() || !matches!(self.state.read().indexes, IndexState::NotLoaded) {
            return Ok(true);
        }
        match self.open_indexes(fs, None, recorded) {
            Ok(_) => Ok(true),
            Err(StorageError::Corrupt(_)) => Ok(false),
            Err(e) if matches!(&e, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the transaction index ends with a partial entry (a write torn by a crash).
    pub(crate) fn txn_index_torn(&self) -> bool {
        self.txn.lock().torn_tail
    }

    /// Roll conditions from the indexes' side.
    pub(crate) fn indexes_full(&self) -> bool {
        match &self.state.read().indexes {
            IndexState::Loaded(ix) => ix.offset.is_full() || ix.time.is_full(),
            _ => false,
        }
    }

    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.state.read().first_batch_timestamp
    }

    /// Largest record timestamp in the segment (-1 if unknown).
    pub(crate) fn max_timestamp(&self, fs: &dyn FileSystem) -> Result<i64, StorageError> {
        self.ensure_indexes(fs)?;
        Ok(self.state.read().max_timestamp)
    }

    /// An index lookup, or `None` when the indexes are not usable (deleted segment) or the
    /// lookup failed: the caller then walks the headers from the segment start, which is
    /// slower but needs no index. A failed lookup is logged, never fatal: indexes are
    /// derived data.
    fn lookup<T>(&self, what: &'static str, f: impl FnOnce(&Indexes) -> Result<T, IndexError>) -> Option<T> {
        let st = self.state.read();
        let IndexState::Loaded(ix) = &st.indexes else {
            return None;
        };
        match f(ix) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(segment = %self.log_path.display(), what, error = ?e, "index lookup failed; scanning the log instead");
                None
            }
        }
    }

    /// The last indexed append whose start is at most `max_position` and whose last offset
    /// is below `below`, as `(its last offset, its start position)`, if the start lies in
    /// `(after, limit)`. Every batch before it is whole and ends at or before it, with
    /// offsets below `below`, so a read may take them without reading their headers. `None`
    /// without such an entry (or without usable indexes): the caller walks the headers.
    pub(crate) fn indexed_append_before(
        &self,
        max_position: u64,
        below: i64,
        after: u64,
        limit: u64,
    ) -> Option<(i64, u64)> {
        let OffsetEntry { offset, position } = self
            .lookup("offset index", |ix| {
                ix.offset.last_entry_within(max_position, below)
            })
            .flatten()?;
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
        // The floor entry names the append that starts at its position and ends at its
        // offset: the batch found there must begin at or before that offset.
        let (hint_offset, hint) = self
            .lookup("offset index", |ix| ix.offset.lookup(offset))
            .map_or((self.base_offset, 0), |(o, p)| (o, u64::from(p)));
        let hint = if hint >= limit || hint_offset > offset {
            0
        } else {
            hint
        };
        let search = |from: u64| -> Result<(Option<BatchInfo>, ScanEnd, bool), StorageError> {
            let mut found = None;
            let mut agrees = true;
            let end = self.scan_headers(from, limit, |b| {
                if from != 0 && b.position == from && b.base_offset > hint_offset {
                    agrees = false;
                    return ControlFlow::Break(());
                }
                if b.last_offset >= offset {
                    found = Some(*b);
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            Ok((found, end, agrees))
        };
        let (mut found, mut end, agrees) = search(hint)?;
        if hint != 0 && (!agrees || matches!(end, ScanEnd::Invalid { .. })) {
            // The hint pointed somewhere wrong: never trust an index, rescan from 0.
            (found, end, _) = search(0)?;
        }
        if let ScanEnd::Invalid { position, error } = end {
            return Err(self.corrupt(position, error.into()));
        }
        Ok(found)
    }

    /// Byte position of the last offset-index entry (0 when none or out of range).
    pub(crate) fn last_indexed_position(&self, fs: &dyn FileSystem) -> Result<u64, StorageError> {
        self.ensure_indexes(fs)?;
        let pos = self
            .lookup("offset index", |ix| Ok(ix.offset.last()))
            .flatten()
            .map_or(0, |e| u64::from(e.position));
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
        let start_offset = self
            .lookup("time index", |ix| ix.time.lookup(timestamp))
            .map_or(self.base_offset, |(_, o)| o)
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

    /// Trims both indexes, switches them to `pread`, and records their checksums.
    fn make_read_only(&self, ix: &mut Indexes) -> Result<(), StorageError> {
        ix.offset
            .make_read_only()
            .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
        ix.time
            .make_read_only()
            .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        *self.index_crcs.lock() = ix.offset.crc().zip(ix.time.crc());
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

    /// Creates the `.txnindex` file if no entry did: a cleaner's copy always has all four
    /// files, so that opening a log mid-swap can tell a renamed file from an original.
    pub(crate) fn ensure_txn_file(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let txn = self.txn.lock();
        if !fs.exists(&txn.path) {
            let f = fs
                .open(&txn.path, true)
                .map_err(|e| StorageError::io("create", &txn.path, e))?;
            drop(f);
        }
        Ok(())
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

    /// Checks the index files against the log without rebuilding anything, under the
    /// state lock (a roll cannot change them meanwhile) and without mapping anything: a
    /// loaded index is checked through its own store, one not loaded yet is read with
    /// `pread`. A missing index of a non-empty segment is reported.
    pub(crate) fn verify_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let (_, idx_path, time_path, _) = self.my_paths();
        let st = self.state.read();
        let size = self.size();
        let checks = match &st.indexes {
            IndexState::Deleted => return Ok(()),
            IndexState::Loaded(ix) => [
                (ix.offset.check(size), &idx_path, FileKind::OffsetIndex),
                (ix.time.check(size), &time_path, FileKind::TimeIndex),
            ],
            IndexState::NotLoaded => {
                for (p, kind) in [
                    (&idx_path, FileKind::OffsetIndex),
                    (&time_path, FileKind::TimeIndex),
                ] {
                    if size > 0 && !fs.exists(p) {
                        return Err(Corruption {
                            path: p.clone(),
                            kind,
                            position: 0,
                            detail: CorruptionDetail::Invalid("index file missing"),
                        }
                        .into());
                    }
                }
                if size == 0 {
                    return Ok(());
                }
                self.open_indexes(fs, None, *self.index_crcs.lock())?;
                return Ok(());
            }
        };
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
        Ok(())
    }
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
