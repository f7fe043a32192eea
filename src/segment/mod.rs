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
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the types, file names, creating and opening a segment |
//! | `indexes.rs` | the offset and time indexes: loading, rebuilding, checking |
//! | `write.rs` | appends, truncation, active/inactive, fsyncs, deletion |
//! | `lookup.rs` | a batch by offset, an offset by timestamp, timestamps |
//! | `txn.rs` | the transaction index |
//! | `scan.rs` | reading batch headers and whole batches from the `.log` |
//! | `recover.rs` | recovery of one segment |

mod indexes;
mod lookup;
mod recover;
mod scan;
mod txn;
mod write;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use parking_lot::{Mutex, RwLock};

use crate::error::{BatchError, Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{FileSystem, StorageFile};
use crate::index::{IndexError, OffsetIndex, TimeIndex};
use crate::txn_index::TxnIndexFile;

/// Suffix of the files of a cleaner's copy while it is written (Kafka's `.cleaned`).
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a finished cleaner's copy that replaces its originals (Kafka's `.swap`): once
/// its `.log` has this name, opening the log completes the replacement.
pub const SWAP_SUFFIX: &str = ".swap";
/// Suffix of the files of a segment that left the log and waits `file.delete.delay.ms` to be
/// removed (Kafka's `.deleted`); opening the log removes any it finds.
pub const DELETED_SUFFIX: &str = ".deleted";

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
    /// `eoslog.preallocate.bytes` (0: reserve nothing), or `segment.bytes` with
    /// `preallocate`.
    pub preallocate_bytes: u64,
}

impl SegmentLimits {
    /// What `config` gives a segment created under it.
    pub(crate) fn of(config: &crate::config::LogConfig) -> SegmentLimits {
        SegmentLimits {
            index_bytes: config.segment_index_bytes,
            index_interval_bytes: config.index_interval_bytes,
            segment_bytes: config.segment_bytes,
            preallocate_bytes: if config.preallocate {
                config.segment_bytes
            } else {
                config.preallocate_bytes
            },
        }
    }
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
