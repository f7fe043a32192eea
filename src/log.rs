//! The partition log: one directory of segments, with producer state, transactions, the
//! last stable offset and read_committed reads.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet},
    fs::File,
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
        Arc,
    },
};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::{self, BatchIter, ControlType, RecordBatch};
use crate::config::{Durability, HighWatermarkMode, LogConfig};
use crate::epoch_cache::{EpochEntry, LeaderEpochCache};
use crate::error::{
    AppendError, ConfigError, Corruption, CorruptionDetail, FileKind, InvalidRecordReason, OpenError,
    ReadError, StorageError,
};
use crate::fs::{read_all, write_atomic, Clock, FileSystem, StdFileSystem, StorageFile, SystemClock};
use crate::producer_state::{
    AppendOrigin, CompletedTxn, Duplicate, PendingAppend, ProducerBatch, ProducerConfig, ProducerInfo,
    ProducerStateManager, Rejection,
};
use crate::segment::{file_name, parse_file_name, BatchInfo, Segment, SegmentLimits};
use crate::snapshot;
use crate::stats::{Counters, LogStats, ERRORS};
use crate::txn_index::{AbortedIndex, AbortedTxn};
use crate::types::{CoordinatorEpoch, Offset, ProducerEpoch, ProducerId};

/// Present while the log is closed cleanly; removed as soon as it is opened.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// eoslog's per-partition checkpoint (recovery point and log start offset).
pub const CHECKPOINT_FILE: &str = "eoslog.checkpoint";
/// The directory lock.
pub const LOCK_FILE: &str = ".lock";
/// Kafka's `LATE_TRANSACTION_BUFFER_MS`.
const LATE_TRANSACTION_BUFFER_MS: i64 = 5 * 60 * 1000;
const NO_OFFSET: i64 = i64::MAX;

/// How far a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark, aborted data included (Kafka's `read_uncommitted`).
    ReadUncommitted,
    /// Up to the last stable offset, with the aborted transactions of the range
    /// (Kafka's `read_committed`).
    ReadCommitted,
    /// Up to the log end offset (a follower replicating this log).
    Replica,
}

/// Options of one append.
#[derive(Debug, Clone, Copy)]
pub struct AppendOptions {
    /// Who is appending.
    pub origin: AppendOrigin,
    /// Leader epoch to stamp into each batch (client and coordinator appends).
    pub leader_epoch: Option<i32>,
    /// Overrides the configured durability for this append.
    pub durability: Option<Durability>,
}

impl AppendOptions {
    /// Options for `origin` with the configured durability and no leader epoch.
    #[must_use]
    pub fn new(origin: AppendOrigin) -> Self {
        AppendOptions {
            origin,
            leader_epoch: None,
            durability: None,
        }
    }
}

/// Where an append landed (or, for a duplicate, where the original landed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub first_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// Largest record timestamp (the append time for LogAppendTime topics).
    pub max_timestamp: i64,
    /// The append time when the topic uses LogAppendTime, else -1 (Kafka's produce response).
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
}

/// The outcome of an append that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum AppendOutcome {
    /// Written.
    Appended(AppendInfo),
    /// A retry of a batch already in the log: nothing written, the original offsets returned.
    Duplicate(AppendInfo),
    /// Refused by producer-state rules; nothing written.
    Rejected(Rejection),
}

impl AppendOutcome {
    /// The offsets for `Appended` and `Duplicate`.
    #[must_use]
    pub fn info(&self) -> Option<AppendInfo> {
        match self {
            AppendOutcome::Appended(i) | AppendOutcome::Duplicate(i) => Some(*i),
            AppendOutcome::Rejected(_) => None,
        }
    }
}

/// COMMIT or ABORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// Commit the transaction.
    Commit,
    /// Abort the transaction.
    Abort,
}

/// A transaction marker as the coordinator sends it (WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer.
    pub producer_id: ProducerId,
    /// The producer epoch the coordinator writes with (a higher one fences the producer).
    pub producer_epoch: ProducerEpoch,
    /// The coordinator's epoch.
    pub coordinator_epoch: CoordinatorEpoch,
    /// COMMIT or ABORT.
    pub marker: MarkerType,
    /// The marker timestamp; `None` = the log's clock.
    pub timestamp: Option<i64>,
}

/// A contiguous run of whole batches in a segment file, ready to be sent without copying
/// (e.g. `sendfile` from [`FileSlice::file`] at `position` for `len` bytes).
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<dyn StorageFile>,
    /// The segment file.
    pub path: PathBuf,
    /// Byte position in the file.
    pub position: u64,
    /// Length in bytes.
    pub len: u64,
}

impl FileSlice {
    /// The open file, for zero-copy sends.
    #[must_use]
    pub fn file(&self) -> &File {
        self.file.as_file()
    }

    /// Reads the bytes.
    ///
    /// # Errors
    /// The read failed.
    pub fn read(&self) -> Result<Vec<u8>, StorageError> {
        let mut buf = vec![0u8; usize::try_from(self.len).unwrap_or(0)];
        let n = self.read_into(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads the bytes into `buf` (at most `buf.len()`); returns how many were read (fewer
    /// only if the file was truncated meanwhile).
    ///
    /// # Errors
    /// The read failed.
    pub fn read_into(&self, buf: &mut [u8]) -> Result<usize, StorageError> {
        let want = buf.len().min(usize::try_from(self.len).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let n = self
                .file
                .read_at(&mut buf[done..want], self.position + done as u64)
                .map_err(|e| StorageError::io("read", &self.path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// An aborted transaction overlapping a fetched range (as a fetch response carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer.
    pub producer_id: ProducerId,
    /// First offset of the transaction's data.
    pub first_offset: Offset,
}

/// What a fetch returns: whole batches plus the offsets a fetch response carries.
#[derive(Debug, Clone)]
pub struct FetchResult {
    /// High watermark when the read started.
    pub high_watermark: Offset,
    /// Last stable offset when the read started.
    pub last_stable_offset: Offset,
    /// Log start offset.
    pub log_start_offset: Offset,
    /// The batches (empty, or one slice of one segment).
    pub slices: Vec<FileSlice>,
    /// For read_committed, the aborted transactions overlapping the returned batches
    /// (possibly empty); `None` for other isolations.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
}

impl FetchResult {
    /// The returned batches as bytes.
    ///
    /// # Errors
    /// The read failed.
    pub fn bytes(&self) -> Result<Vec<u8>, StorageError> {
        // One buffer of the final size, read into directly.
        let total: u64 = self.slices.iter().map(|s| s.len).sum();
        let mut out = vec![0u8; usize::try_from(total).unwrap_or(0)];
        let mut at = 0;
        for s in &self.slices {
            at += s.read_into(&mut out[at..])?;
        }
        out.truncate(at);
        Ok(out)
    }
}

/// Records of a log in offset order, as [`Log::records`] yields them.
#[derive(Debug)]
pub struct RecordStream<'a> {
    log: &'a Log,
    next: Offset,
    isolation: Isolation,
    buffer: std::vec::IntoIter<OwnedRecord>,
    done: bool,
}

impl RecordStream<'_> {
    /// The offset the next fetch starts from.
    #[must_use]
    pub fn position(&self) -> Offset {
        self.next
    }
}

impl Iterator for RecordStream<'_> {
    type Item = Result<OwnedRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        const FETCH_BYTES: usize = 1 << 20;
        loop {
            if let Some(r) = self.buffer.next() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.log.read_records(self.next, FETCH_BYTES, self.isolation) {
                Ok((records, next)) => {
                    if next == self.next && records.is_empty() {
                        self.done = true;
                        return None;
                    }
                    self.next = next;
                    self.buffer = records.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// One record, owned, as a reader receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Offset.
    pub offset: Offset,
    /// Timestamp.
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<Vec<u8>>,
    /// Value (`None` = null).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// An open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTransaction {
    /// The producer.
    pub producer_id: ProducerId,
    /// Its epoch.
    pub producer_epoch: ProducerEpoch,
    /// First offset of the transaction.
    pub first_offset: Offset,
    /// The producer's last timestamp.
    pub last_timestamp: i64,
    /// Now minus the last timestamp.
    pub age_ms: i64,
    /// Kafka's "late" rule: older than `transaction.max.timeout.ms` + 5 minutes.
    pub is_late: bool,
}

/// A segment as `describe` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Base offset.
    pub base_offset: Offset,
    /// Size in bytes.
    pub size: u64,
}

/// The file system and clock a log uses.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// File operations.
    pub fs: Arc<dyn FileSystem>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fs: Arc::new(StdFileSystem),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What maintenance did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Producers expired.
    pub expired_producers: usize,
    /// Segments deleted by retention.
    pub deleted_segments: usize,
    /// Transactions aborted by the transaction timeout.
    pub aborted_transactions: usize,
}

/// Bytes of a batch head the log rewrites: base offset, length, partition leader epoch.
const HEAD_PATCH: usize = batch::MAGIC_OFFSET;

/// Where one batch of an append lands.
#[derive(Debug, Clone, Copy)]
/// What one append's batches add up to.
struct Placement {
    /// Records in all batches.
    records: i64,
    /// The offset after the last batch.
    next: i64,
    max_timestamp: i64,
    /// Last offset of the batch with the max timestamp.
    offset_of_max: i64,
}

struct Placed {
    /// Position in the appended bytes.
    pos: usize,
    size: usize,
    /// Assigned base offset.
    base: i64,
    /// Leader epoch stamped (or carried).
    epoch: i32,
}

struct Writer {
    segments: Vec<Arc<Segment>>,
    psm: ProducerStateManager,
    epochs: LeaderEpochCache,
    snapshots: BTreeSet<i64>,
    bytes_since_snapshot: u64,
    recovery_point: i64,
    /// The segment base and byte position of the recovery point, when known: recovery
    /// resumes there instead of at the segment start.
    recovery_position: Option<(i64, u64)>,
    scratch: Vec<u8>,
    pending: PendingAppend,
    placed: Vec<Placed>,
    heads: Vec<[u8; HEAD_PATCH]>,
    /// When each open transaction started, by the log's clock (transaction timeout).
    txn_started_ms: HashMap<i64, i64>,
}

/// The longest a group-commit leader waits for appends under way before its fsync.
const GROUP_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

#[derive(Debug)]
struct SyncState {
    durable: i64,
    in_progress: bool,
    /// Bumped by every truncation ([`SyncState::truncated`]): a group-commit leader whose
    /// fsync began before one must not raise `durable` to the end it read then.
    truncations: u64,
}

impl SyncState {
    /// A truncation set the durable offset to `durable`.
    fn truncated(&mut self, durable: i64) {
        self.durable = durable;
        self.truncations += 1;
    }
}

/// Armed around a group-commit leader's fsync and forgotten once it returns: dropped only
/// by a panic unwinding through it.
struct LeaderUnwind<'a>(&'a Log);

impl Drop for LeaderUnwind<'_> {
    fn drop(&mut self) {
        self.0.leader_panicked();
    }
}

/// One partition log. All methods take `&self`; appends are serialised internally, reads run
/// concurrently with appends and with each other.
pub struct Log {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    clock: Arc<dyn Clock>,
    config: LogConfig,
    limits: SegmentLimits,
    writer: Mutex<Writer>,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    aborted: RwLock<AbortedIndex>,
    log_start: AtomicI64,
    log_end: AtomicI64,
    high_watermark: AtomicI64,
    first_unstable: AtomicI64,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
    poisoned: AtomicBool,
    /// Appends between their start and the end of their write; a group-commit leader waits
    /// (briefly, on `appends_done`) for them so that its fsync covers them.
    appending: AtomicUsize,
    leader_waiting: AtomicBool,
    appends_done: Condvar,
    closed: AtomicBool,
    stats: Counters,
    _lock: File,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start.load(Ordering::Relaxed))
            .field("log_end_offset", &self.log_end.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

/// Producer fields of a data batch whose base offset is (or will be) `base`.
fn producer_batch(b: &RecordBatch<'_>, base: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id: b.producer_id().0,
        epoch: b.producer_epoch().0,
        first_seq: b.base_sequence().0,
        last_seq: b.last_sequence().0,
        first_offset: base,
        last_offset: base + i64::from(b.last_offset_delta()),
        max_timestamp: b.max_timestamp(),
        is_transactional: b.is_transactional(),
    }
}

/// Feeds one batch to producer-state checks. `Ok(Some(..))` for a client retry of a cached
/// batch. Marker parse failures are reported as `Err(Ok(..))`, rejections as `Err(Err(..))`.
fn check_batch(
    psm: &ProducerStateManager,
    pending: &mut PendingAppend,
    b: &RecordBatch<'_>,
    base_offset: i64,
    origin: AppendOrigin,
) -> Result<Option<Duplicate>, Result<crate::error::BatchError, Rejection>> {
    if b.producer_id().0 < 0 {
        return Ok(None);
    }
    if b.is_control() {
        if b.records_count() == 0 {
            return Ok(None); // a compacted marker: "transaction already cleaned"
        }
        let marker = b.marker().map_err(Ok)?;
        let Some(marker) = marker else { return Ok(None) };
        let aborted = match marker.control_type {
            ControlType::Abort => true,
            ControlType::Commit => false,
            ControlType::Other(_) => return Ok(None),
        };
        return psm
            .check_marker(
                pending,
                b.producer_id().0,
                b.producer_epoch().0,
                marker.coordinator_epoch,
                aborted,
                base_offset,
                b.max_timestamp(),
                origin,
            )
            .map(|()| None)
            .map_err(Err);
    }
    psm.check_data(pending, &producer_batch(b, base_offset), origin)
        .map_err(Err)
}

impl Log {
    /// Opens (or creates) the partition log in `dir` with the real file system and clock.
    ///
    /// # Errors
    /// Storage failures, corruption below the recovery point, a locked directory.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, OpenError> {
        Self::open_with(dir, config, LogOptions::default())
    }

    /// Opens (or creates) the partition log with an injected file system and clock.
    ///
    /// # Errors
    /// As [`Log::open`].
    #[expect(clippy::too_many_lines, reason = "recovery is one sequence of steps")]
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        options: LogOptions,
    ) -> Result<Log, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        if config.producer_window == 0 || config.producer_window > 1024 {
            return Err(ConfigError::InvalidValue {
                key: "eoslog.producer.window".into(),
                value: config.producer_window.to_string(),
                reason: "must be 1..=1024",
            }
            .into());
        }
        let LogOptions { fs, clock } = options;
        let existed = fs.exists(&dir);
        fs.create_dir_all(&dir)
            .map_err(io_err("create directory", &dir))?;
        if !existed {
            // IMPORTANT: make the new directory's entry durable in its parent.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent).map_err(io_err("fsync directory", parent))?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        // A fork() in another thread of this process (any `Command::spawn`) briefly holds a
        // copy of a just-closed lock descriptor until its exec closes it: retry for a moment
        // before reporting the directory as locked by someone else.
        let mut attempts = 0;
        while lock.try_lock().is_err() {
            attempts += 1;
            if attempts > 50 {
                return Err(StorageError::Locked { path: dir }.into());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let limits = SegmentLimits {
            index_bytes: config.segment_index_bytes,
            index_interval_bytes: config.index_interval_bytes,
            segment_bytes: config.segment_bytes,
            preallocate_bytes: config.preallocate_bytes,
        };
        let now = clock.now_ms();

        // 1. Inventory: segments, snapshots, leftovers.
        let names = fs.list_dir(&dir).map_err(io_err("list", &dir))?;
        let mut bases = BTreeSet::new();
        let mut snapshots = BTreeSet::new();
        let mut removed_any = false;
        for name in &names {
            let p = dir.join(name);
            let Some((offset, suffix)) = parse_file_name(name) else {
                if name.ends_with(".tmp") {
                    fs.remove_file(&p).map_err(io_err("remove", &p))?;
                    removed_any = true;
                }
                continue;
            };
            match suffix {
                "log" => {
                    bases.insert(offset);
                }
                "snapshot" => {
                    snapshots.insert(offset);
                }
                s if s.ends_with(".swap") => {
                    // Kafka's cleaner left a finished replacement whose swap-in did not
                    // complete; the originals may already be gone. Deleting it could lose data
                    // and eoslog does not complete Kafka's swap protocol: refuse to open.
                    return Err(StorageError::Corrupt(Corruption {
                        path: p,
                        kind: FileKind::Log,
                        position: 0,
                        detail: CorruptionDetail::Invalid("unfinished Kafka compaction swap file (.swap)"),
                    })
                    .into());
                }
                s if s.ends_with(".deleted") || s.ends_with(".cleaned") || s.ends_with(".tmp") => {
                    fs.remove_file(&p).map_err(io_err("remove", &p))?;
                    removed_any = true;
                }
                _ => {}
            }
        }
        for name in &names {
            if let Some((offset, "index" | "timeindex" | "txnindex")) = parse_file_name(name) {
                if !bases.contains(&offset) {
                    let p = dir.join(name);
                    fs.remove_file(&p).map_err(io_err("remove", &p))?;
                    removed_any = true;
                }
            }
        }
        let clean_path = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = fs.exists(&clean_path);
        let Checkpoint {
            mut recovery_point,
            log_start_offset: mut log_start,
            recovery_position,
        } = read_checkpoint(&*fs, &dir)?;

        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
        let mut first_damaged = None;
        for &base in &bases {
            let (seg, damaged) = Segment::open(&*fs, &dir, base, limits, now)?;
            // A transaction index naming markers at or past the next segment's base is damaged
            // too (its entries must lie in its own segment).
            let previous_overflows = segments
                .last()
                .and_then(|p| p.aborted_entries().last().map(|e| e.last_offset))
                .is_some_and(|last| last >= base);
            if previous_overflows && first_damaged.is_none() {
                first_damaged = Some(segments.len() - 1);
            }
            if damaged && first_damaged.is_none() {
                first_damaged = Some(segments.len());
            }
            segments.push(Arc::new(seg));
        }
        let mut psm = ProducerStateManager::new(ProducerConfig {
            window: config.producer_window,
            expiration_ms: config.producer_id_expiration_ms,
            max_producer_ids: config.max_producer_ids,
        });
        let mut epochs = LeaderEpochCache::load(&*fs, &dir)?;
        let stats = Counters::default();

        // 2. Recovery of every segment from the one holding the recovery point.
        let first_recover = if clean || segments.is_empty() {
            segments.len()
        } else {
            segments
                .iter()
                .rposition(|s| s.base_offset <= recovery_point)
                .unwrap_or(0)
        };
        let first_recover = first_damaged.map_or(first_recover, |d| d.min(first_recover));
        // Resume inside the first recovered segment at the recovery point's byte position when
        // the checkpoint names it (everything below was flushed by the snapshot or flush that
        // moved the recovery point): recovery then scans at most what was appended since.
        // The file must still reach that position: a truncation whose checkpoint rewrite
        // failed leaves a stale, higher recovery point behind.
        let resume = match (segments.get(first_recover), recovery_position) {
            (Some(s), Some((base, pos)))
                if s.base_offset == base
                    && pos > 0
                    && pos <= s.file().len().map_err(io_err("stat", &s.log_path))?
                    && first_damaged.is_none_or(|d| d > first_recover) =>
            {
                Some((pos, recovery_point))
            }
            _ => None,
        };
        // Producer state up to where recovery starts, or to the end of a clean log (snapshots
        // above it, e.g. from a log truncated by hand, are never loaded).
        let replay_end = match segments.get(first_recover) {
            Some(_) if resume.is_some() => recovery_point,
            Some(s) => s.base_offset,
            None => match segments.last() {
                Some(last) => segment_next_offset(&*fs, last)?,
                None => log_start,
            },
        };
        load_producer_state(&*fs, &dir, &mut psm, &mut snapshots, &segments, replay_end, now)?;
        let mut aborted = AbortedIndex::default();
        for s in &segments[..first_recover] {
            for e in s.aborted_entries() {
                aborted.push(e);
            }
        }
        if first_recover < segments.len() {
            stats.recoveries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(dir = %dir.display(), recovery_point, from_segment = segments[first_recover].base_offset, "unclean shutdown: recovering");
            let mut i = first_recover;
            while i < segments.len() {
                let seg = segments[i].clone();
                let before = seg.file().len().map_err(io_err("stat", &seg.log_path))?;
                let from = resume.filter(|_| i == first_recover);
                if from.is_some() {
                    // Transaction-index entries below the recovery point are kept.
                    for e in seg.aborted_entries() {
                        if e.last_offset < recovery_point {
                            aborted.push(e);
                        }
                    }
                }
                let stopped = seg.recover(&*fs, from, |_, b| {
                    let mut pending = PendingAppend::default();
                    if let Err(Ok(e)) = check_batch(&psm, &mut pending, b, b.base_offset(), AppendOrigin::Replication) {
                        tracing::warn!(error = %e, offset = b.base_offset(), "unparseable marker during recovery; skipped");
                        return Ok(());
                    }
                    for (c, lso) in psm.apply(&mut pending, b.next_offset()) {
                        if c.aborted {
                            let e = aborted_entry(&c, lso);
                            seg.append_aborted(&*fs, e)?;
                            aborted.push(e);
                        }
                    }
                    let epoch = b.partition_leader_epoch();
                    if epoch >= 0 {
                        epochs.assign(&*fs, epoch, b.base_offset())?;
                    }
                    Ok(())
                })?;
                let after = seg.size();
                stats
                    .truncated_bytes_on_recovery
                    .fetch_add(before - after, Ordering::Relaxed);
                if let Some((position, detail)) = stopped {
                    tracing::warn!(segment = %seg.log_path.display(), position, %detail, "recovery stopped at an invalid batch; later segments deleted");
                    for later in segments.drain(i + 1..) {
                        later.delete(&*fs)?;
                    }
                    fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
                }
                if i + 1 < segments.len() {
                    // Recovery rebuilt the indexes at full size; an inactive segment's are trimmed.
                    seg.make_inactive()?;
                }
                seg.flush()?;
                i += 1;
            }
        }

        // 3. The log end offset, start offset and an active segment.
        let mut log_end = match segments.last() {
            Some(s) => segment_next_offset(&*fs, s)?,
            None => log_start,
        };
        if let Some(first) = segments.first() {
            log_start = log_start.max(first.base_offset);
        }
        if log_start > log_end {
            // Everything is below the checkpointed start: start afresh there, with no producer
            // state (Kafka deletes everything, snapshots included; a snapshot left behind would
            // bring back state the next open that this one dropped).
            for s in segments.drain(..) {
                s.delete(&*fs)?;
            }
            for o in std::mem::take(&mut snapshots) {
                fs_remove(&*fs, &dir.join(file_name(o, "snapshot")))?;
            }
            removed_any = true;
            log_end = log_start;
            psm.clear(log_start);
            aborted.clear();
        }
        if segments.is_empty() {
            segments.push(Arc::new(Segment::create(&*fs, &dir, log_start, limits, now)?));
            removed_any = true;
        } else if let Some(active) = segments.last() {
            active.make_active(&*fs)?;
            active.load_first_batch_timestamp()?;
        }
        if removed_any {
            fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
        }
        // A clean log's state was loaded up to its end; an unclean one was rebuilt while
        // recovering. Replay whatever is still missing (e.g. a lost snapshot).
        if psm.map_end_offset < log_end {
            let from = psm.map_end_offset;
            replay(&*fs, &mut psm, &segments, from, log_end)?;
        }
        psm.map_end_offset = log_end;
        // Leader epochs whose leadership began in data that recovery cut away are dropped.
        epochs.truncate_from_end(&*fs, log_end)?;
        recovery_point = if clean || first_recover < segments.len() {
            log_end
        } else {
            recovery_point.min(log_end)
        };

        let high_watermark = match config.high_watermark {
            HighWatermarkMode::Manual => log_start,
            _ => log_end,
        };
        psm.on_high_watermark(high_watermark);
        let fuo = psm
            .first_unstable_offset()
            .map_or(NO_OFFSET, |f| f.max(log_start));
        let txn_started_ms = psm
            .ongoing
            .values()
            .map(|&pid| (pid, psm.producers.get(pid).map_or(now, |e| e.last_timestamp)))
            .collect();
        let writer = Writer {
            segments: segments.clone(),
            psm,
            epochs,
            snapshots,
            bytes_since_snapshot: 0,
            recovery_point,
            recovery_position: segments
                .last()
                .map(|s| (s.base_offset, s.size()))
                .filter(|_| recovery_point == log_end),
            scratch: Vec::new(),
            pending: PendingAppend::default(),
            placed: Vec::new(),
            heads: Vec::new(),
            txn_started_ms,
        };
        let log = Log {
            dir: dir.clone(),
            fs,
            clock,
            config,
            limits,
            writer: Mutex::new(writer),
            segments: RwLock::new(Arc::new(segments)),
            aborted: RwLock::new(aborted),
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            high_watermark: AtomicI64::new(high_watermark),
            first_unstable: AtomicI64::new(fuo),
            sync: Mutex::new(SyncState {
                durable: recovery_point,
                in_progress: false,
                truncations: 0,
            }),
            sync_cv: Condvar::new(),
            poisoned: AtomicBool::new(false),
            appending: AtomicUsize::new(0),
            leader_waiting: AtomicBool::new(false),
            appends_done: Condvar::new(),
            closed: AtomicBool::new(false),
            stats,
            _lock: lock,
        };
        // 4. Stray snapshots, a snapshot at the end, and the clean marker removed.
        {
            let mut w = log.writer.lock();
            log.remove_stray_snapshots(&mut w)?;
            let first_base = w.segments.first().map_or(log_end, |s| s.base_offset);
            if w.snapshots.last() != Some(&log_end) && log_end > first_base {
                w.bytes_since_snapshot = 1;
                log.take_snapshot(&mut w, log_end)?;
            }
            if clean {
                fs_remove(&*log.fs, &clean_path)?;
                log.fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
            }
            log.write_checkpoint(&w)?;
        }
        Ok(log)
    }

    // ----- state queries -------------------------------------------------------------

    /// The partition directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// First offset still in the log.
    #[must_use]
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log_start.load(Ordering::Acquire))
    }
    /// The next offset to be assigned.
    #[must_use]
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.log_end.load(Ordering::Acquire))
    }
    /// The high watermark.
    #[must_use]
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }
    /// The first offset not yet decided (or whose marker is not yet below the high
    /// watermark), lower-bounded by the log start offset; `None` when everything is stable.
    #[must_use]
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        let f = self.first_unstable.load(Ordering::Acquire);
        (f != NO_OFFSET).then(|| Offset(f.max(self.log_start.load(Ordering::Acquire))))
    }
    /// The last stable offset: `min(first unstable offset, high watermark)`. O(1).
    #[must_use]
    pub fn last_stable_offset(&self) -> Offset {
        let hw = self.high_watermark.load(Ordering::Acquire);
        Offset(self.lso_given(hw))
    }

    fn lso_given(&self, hw: i64) -> i64 {
        let fuo = self.first_unstable.load(Ordering::Acquire);
        if fuo == NO_OFFSET {
            hw
        } else {
            fuo.max(self.log_start.load(Ordering::Acquire)).min(hw)
        }
    }

    /// The offset up to which data is known to be fsynced.
    #[must_use]
    pub fn durable_offset(&self) -> Offset {
        Offset(self.sync.lock().durable)
    }

    /// The segments, oldest first.
    #[must_use]
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments
            .read()
            .iter()
            .map(|s| SegmentInfo {
                base_offset: Offset(s.base_offset),
                size: s.size(),
            })
            .collect()
    }

    /// Every producer, as Kafka's DescribeProducers reports them.
    #[must_use]
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.writer.lock().psm.describe()
    }

    /// Open transactions in first-offset order.
    #[must_use]
    pub fn open_transactions(&self) -> Vec<OpenTransaction> {
        let now = self.clock.now_ms();
        let w = self.writer.lock();
        w.psm
            .ongoing
            .iter()
            .map(|(&first, &pid)| {
                let e = w.psm.producers.get(pid);
                let last_timestamp = e.map_or(-1, |e| e.last_timestamp);
                let age_ms = now.saturating_sub(last_timestamp);
                OpenTransaction {
                    producer_id: ProducerId(pid),
                    producer_epoch: ProducerEpoch(e.map_or(-1, |e| e.epoch)),
                    first_offset: Offset(first),
                    last_timestamp,
                    age_ms,
                    is_late: age_ms > self.config.transaction_max_timeout_ms + LATE_TRANSACTION_BUFFER_MS,
                }
            })
            .collect()
    }

    /// The transaction index: every aborted transaction still in the log.
    #[must_use]
    pub fn aborted_transactions(&self) -> Vec<AbortedTxn> {
        self.aborted.read().all().to_vec()
    }

    /// The leader-epoch cache entries.
    #[must_use]
    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        self.writer.lock().epochs.entries().to_vec()
    }

    /// Kafka's `OffsetsForLeaderEpoch`: the largest epoch `<= epoch` and the end offset of that
    /// epoch (the next epoch's start, or the log end offset).
    #[must_use]
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, Offset)> {
        let w = self.writer.lock();
        w.epochs
            .end_offset_for(epoch, self.log_end.load(Ordering::Acquire))
            .map(|(e, o)| (e, Offset(o)))
    }

    /// A snapshot of the statistics.
    #[must_use]
    pub fn stats(&self) -> LogStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.stats;
        let now = self.clock.now_ms();
        let (producers, evictions, expired, open, oldest) = {
            let w = self.writer.lock();
            (
                w.psm.producers.len() as u64,
                w.psm.evictions,
                w.psm.expired,
                w.psm.ongoing.len() as u64,
                w.psm
                    .oldest_open_txn()
                    .map_or(0, |(_, _, ts)| now.saturating_sub(ts)),
            )
        };
        let hw = self.high_watermark.load(Ordering::Acquire);
        LogStats {
            appends: c.appends.load(Relaxed),
            appended_bytes: c.appended_bytes.load(Relaxed),
            appended_records: c.appended_records.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            rejections: ERRORS
                .iter()
                .zip(c.rejections.iter())
                .map(|(e, n)| (e.name(), n.load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            markers: c.markers.load(Relaxed),
            producers,
            producer_evictions: evictions,
            producers_expired: expired,
            open_transactions: open,
            oldest_open_transaction_age_ms: oldest,
            lso_lag: hw - self.lso_given(hw),
            aborted_transactions: self.aborted.read().len() as u64,
            forced_aborts: c.forced_aborts.load(Relaxed),
            rolls: c.rolls.load(Relaxed),
            recoveries: c.recoveries.load(Relaxed),
            truncated_bytes_on_recovery: c.truncated_bytes_on_recovery.load(Relaxed),
            fsyncs: c.fsyncs.load(Relaxed),
        }
    }

    // ----- writes ----------------------------------------------------------------------

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned);
        }
        Ok(())
    }

    /// Latches the log into refusing writes (after a failed write or fsync).
    fn poison(&self, e: StorageError) -> StorageError {
        if !matches!(e, StorageError::Poisoned | StorageError::Closed) {
            tracing::error!(dir = %self.dir.display(), error = %e, "I/O failure: the log refuses writes until reopened");
            self.poisoned.store(true, Ordering::Release);
            self.sync_cv.notify_all();
        }
        e
    }

    /// Appends the batches in `records` as `origin`.
    ///
    /// # Errors
    /// Malformed or unacceptable batches, and storage failures (after which the log refuses
    /// writes until reopened). Producer-state refusals are `Ok(AppendOutcome::Rejected)`.
    /// A [`Durability::SyncEachAppend`] append fails with
    /// [`AppendError::TruncatedBeforeDurable`] if a truncation ran before an fsync covered it.
    pub fn append(&self, records: &[u8], origin: AppendOrigin) -> Result<AppendOutcome, AppendError> {
        self.append_with(records, &AppendOptions::new(origin))
    }

    /// Appends with explicit options.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_with(&self, records: &[u8], options: &AppendOptions) -> Result<AppendOutcome, AppendError> {
        self.appending.fetch_add(1, Ordering::AcqRel);
        let mut w = self.writer.lock();
        let result = self
            .check_writable()
            .map_err(AppendError::from)
            .and_then(|()| self.append_locked(&mut w, records, options));
        // A durable answer is owed only if no truncation (always under the writer lock) ran
        // between placing the records and the fsync that covers them.
        let sync_answer = matches!(
            result,
            Ok(AppendOutcome::Appended(_) | AppendOutcome::Duplicate(_))
        ) && options.durability.unwrap_or(self.config.durability)
            == Durability::SyncEachAppend;
        let truncations = sync_answer.then(|| self.sync.lock().truncations);
        drop(w);
        if self.appending.fetch_sub(1, Ordering::AcqRel) == 1 && self.leader_waiting.load(Ordering::Acquire) {
            let _sync = self.sync.lock();
            self.appends_done.notify_one();
        }
        match &result {
            Ok(AppendOutcome::Appended(_)) => {}
            Ok(AppendOutcome::Duplicate(_)) => {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Ok(AppendOutcome::Rejected(r)) => self.stats.reject(r.kafka_error()),
            Err(e) => self.stats.reject(e.kafka_error()),
        }
        // A durable answer waits for the fsync, for a duplicate too: its original may still
        // be waiting for one (a retry that overtook the first attempt's acknowledgement).
        if let (Some(truncations), Ok(AppendOutcome::Appended(info) | AppendOutcome::Duplicate(info))) =
            (truncations, &result)
        {
            let durable = self.sync_to(info.last_offset.0 + 1)?;
            if durable <= info.last_offset.0 || self.sync.lock().truncations != truncations {
                let e = AppendError::TruncatedBeforeDurable {
                    first_offset: info.first_offset,
                    last_offset: info.last_offset,
                };
                self.stats.reject(e.kafka_error());
                return Err(e);
            }
        }
        result
    }

    /// Validates every batch as the origin requires and places it (offsets and leader epoch
    /// to stamp, into `placed`), in one pass over the batches.
    fn validate_and_place(
        &self,
        records: &[u8],
        options: &AppendOptions,
        log_end: i64,
        now: i64,
        placed: &mut Vec<Placed>,
    ) -> Result<Placement, AppendError> {
        let origin = options.origin;
        let assign = origin != AppendOrigin::Replication;
        let log_append_time = assign && self.config.log_append_time;
        placed.clear();
        let mut n = 0;
        let mut out = Placement {
            records: 0,
            next: log_end,
            max_timestamp: -1,
            offset_of_max: log_end,
        };
        let mut expected_next = log_end;
        for item in BatchIter::new(records) {
            let (position, b) = item.map_err(|(position, source)| AppendError::InvalidBatch {
                batch: n,
                position,
                source,
            })?;
            let invalid = |source| AppendError::InvalidBatch {
                batch: n,
                position,
                source,
            };
            let reason = |reason| AppendError::InvalidRecord { batch: n, reason };
            b.validate_crc().map_err(invalid)?;
            let size = b.size() as u64;
            let count = b.records_count();
            match origin {
                AppendOrigin::Client | AppendOrigin::Coordinator => {
                    if origin == AppendOrigin::Client && n > 0 {
                        return Err(reason(InvalidRecordReason::MultipleBatches));
                    }
                    if size > self.config.max_message_bytes {
                        return Err(AppendError::MessageTooLarge {
                            batch: n,
                            size,
                            max: self.config.max_message_bytes,
                        });
                    }
                    if origin == AppendOrigin::Client && b.base_offset() != 0 {
                        return Err(reason(InvalidRecordReason::NonZeroBaseOffset(b.base_offset())));
                    }
                    if origin == AppendOrigin::Client && b.is_control() {
                        return Err(reason(InvalidRecordReason::ControlBatchFromClient));
                    }
                    if count <= 0 || i64::from(count) != i64::from(b.last_offset_delta()) + 1 {
                        return Err(reason(InvalidRecordReason::RecordCountMismatch {
                            count,
                            last_offset_delta: b.last_offset_delta(),
                        }));
                    }
                    if b.producer_id().is_some()
                        && b.base_sequence().0 < 0
                        && !b.is_control()
                        && origin == AppendOrigin::Client
                    {
                        return Err(reason(InvalidRecordReason::MissingSequence));
                    }
                    if b.is_transactional() && !b.producer_id().is_some() {
                        return Err(reason(InvalidRecordReason::TransactionalWithoutProducer));
                    }
                    if b.is_control() {
                        match b.marker() {
                            Ok(Some(_)) if b.records_count() == 1 => {}
                            _ => return Err(reason(InvalidRecordReason::MalformedControlBatch)),
                        }
                    } else if self.config.validate_records {
                        let recs = b.records().map_err(invalid)?;
                        for (i, r) in recs.iter().enumerate() {
                            let r = r.map_err(invalid)?;
                            if r.offset - b.base_offset() != i as i64 {
                                return Err(reason(InvalidRecordReason::RecordOffsetMismatch));
                            }
                        }
                    }
                }
                AppendOrigin::Replication => {
                    if b.base_offset() < expected_next || b.last_offset() < b.base_offset() {
                        return Err(AppendError::UnexpectedOffset {
                            expected: Offset(expected_next),
                            got: Offset(b.base_offset()),
                        });
                    }
                    expected_next = b.next_offset();
                }
            }
            let base = if assign { out.next } else { b.base_offset() };
            let last = base + i64::from(b.last_offset_delta());
            let max = if log_append_time { now } else { b.max_timestamp() };
            if max > out.max_timestamp {
                out.max_timestamp = max;
                out.offset_of_max = last;
            }
            placed.push(Placed {
                pos: position as usize,
                size: b.size(),
                base,
                epoch: match options.leader_epoch {
                    Some(e) if assign => e,
                    _ => b.partition_leader_epoch(),
                },
            });
            out.next = last + 1;
            out.records += i64::from(count.max(0));
            n += 1;
        }
        if n == 0 {
            return Err(AppendError::Empty);
        }
        if records.len() as u64 > self.config.segment_bytes {
            return Err(AppendError::RecordListTooLarge {
                size: records.len() as u64,
                max: self.config.segment_bytes,
            });
        }
        Ok(out)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the append pipeline reads best as one sequence"
    )]
    fn append_locked(
        &self,
        w: &mut Writer,
        records: &[u8],
        options: &AppendOptions,
    ) -> Result<AppendOutcome, AppendError> {
        let origin = options.origin;
        let log_end = self.log_end.load(Ordering::Acquire);
        let now = self.clock.now_ms();
        // Assign offsets and the leader epoch. Both live outside the CRC, so the batches are
        // written as the client sent them behind a patched 16-byte head each (one pwritev, no
        // copy of the records). LogAppendTime changes CRC-covered fields: those appends are
        // copied once and patched in place.
        let mut placed = std::mem::take(&mut w.placed);
        let placement = match self.validate_and_place(records, options, log_end, now, &mut placed) {
            Ok(p) => p,
            Err(e) => {
                w.placed = placed;
                return Err(e);
            }
        };
        let log_append_time = origin != AppendOrigin::Replication && self.config.log_append_time;
        let Placement {
            records: record_count,
            next,
            max_timestamp: max_ts,
            offset_of_max,
        } = placement;
        let first_offset = placed.first().map_or(log_end, |p| p.base);
        let last_offset = next - 1;
        let mut buf = std::mem::take(&mut w.scratch);
        buf.clear();
        if log_append_time {
            buf.extend_from_slice(records);
            for p in &placed {
                let slot = &mut buf[p.pos..p.pos + p.size];
                batch::set_base_offset(slot, p.base);
                batch::set_partition_leader_epoch(slot, p.epoch);
                batch::set_log_append_time(slot, now);
            }
        }
        let data: &[u8] = if log_append_time { &buf } else { records };

        // Producer checks against the current state; nothing is written on a rejection.
        let mut pending = std::mem::take(&mut w.pending);
        pending.clear();
        let mut refused = None;
        for (item, p) in BatchIter::new(data).zip(&placed) {
            let Ok((position, b)) = item else { break };
            match check_batch(&w.psm, &mut pending, &b, p.base, origin) {
                Ok(None) => {}
                Ok(Some(d)) => {
                    refused = Some(Ok(AppendOutcome::Duplicate(AppendInfo {
                        first_offset: Offset(d.first_offset),
                        last_offset: Offset(d.last_offset),
                        max_timestamp: d.timestamp,
                        log_append_time: if self.config.log_append_time {
                            d.timestamp
                        } else {
                            -1
                        },
                        log_start_offset: self.log_start_offset(),
                    })));
                    break;
                }
                Err(Ok(source)) => {
                    refused = Some(Err(AppendError::InvalidBatch {
                        batch: 0,
                        position,
                        source,
                    }));
                    break;
                }
                Err(Err(rejection)) => {
                    if let Rejection::InvalidProducerEpoch { producer_id, .. }
                    | Rejection::CoordinatorFenced { producer_id, .. } = rejection
                    {
                        tracing::info!(producer_id = producer_id.0, ?rejection, "fenced append refused");
                    }
                    refused = Some(Ok(AppendOutcome::Rejected(rejection)));
                    break;
                }
            }
        }
        if let Some(outcome) = refused {
            w.scratch = buf;
            w.pending = pending;
            w.placed = placed;
            return outcome;
        }

        // Roll if the active segment cannot take this append.
        let total = records.len() as u64;
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        let size = active.size();
        let time_roll = size > 0 && {
            match active.first_batch_timestamp() {
                Some(first_ts) if first_ts >= 0 => max_ts - first_ts > self.config.segment_ms,
                _ => now - active.created_ms > self.config.segment_ms,
            }
        };
        if size + total > self.config.segment_bytes
            || time_roll
            || active.indexes_full()
            || last_offset - active.base_offset > i64::from(i32::MAX)
        {
            self.roll(w, first_offset.max(log_end))
                .map_err(|e| self.poison(e))?;
        }
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        let mut heads = std::mem::take(&mut w.heads);
        heads.clear();
        if !log_append_time {
            for p in &placed {
                let mut head = [0u8; HEAD_PATCH];
                head.copy_from_slice(&records[p.pos..p.pos + HEAD_PATCH]);
                batch::set_base_offset(&mut head, p.base);
                batch::set_partition_leader_epoch(&mut head, p.epoch);
                heads.push(head);
            }
        }
        let written = if log_append_time {
            active.append(&[data], last_offset, max_ts, offset_of_max)
        } else {
            // Head and rest of each batch; a client's append (one batch) needs no allocation.
            let pairs = placed
                .iter()
                .zip(&heads)
                .flat_map(|(p, head)| [&head[..], &records[p.pos + HEAD_PATCH..p.pos + p.size]]);
            let mut inline: [&[u8]; 8] = [&[]; 8];
            let spilled: Vec<&[u8]>;
            let parts: &[&[u8]] = if placed.len() * 2 <= inline.len() {
                for (slot, part) in inline.iter_mut().zip(pairs) {
                    *slot = part;
                }
                &inline[..placed.len() * 2]
            } else {
                spilled = pairs.collect();
                &spilled
            };
            active.append(parts, last_offset, max_ts, offset_of_max)
        };
        w.heads = heads;
        written.map_err(|e| self.poison(e))?;

        // Leader epochs first seen in this append.
        for p in &placed {
            if p.epoch >= 0 && w.epochs.latest_epoch().is_none_or(|l| l < p.epoch) {
                w.epochs
                    .assign(&*self.fs, p.epoch, p.base)
                    .map_err(|e| self.poison(e))?;
            }
        }
        w.placed = placed;

        // Apply producer state, record aborted transactions, then publish.
        let new_txn_pids: Vec<i64> = pending.new_txn_producers().collect();
        let markers = pending.completed.len();
        let completed = w.psm.apply(&mut pending, next);
        w.pending = pending;
        self.log_end.store(next, Ordering::Release);
        for pid in new_txn_pids {
            w.txn_started_ms.entry(pid).or_insert(now);
        }
        for (c, lso) in &completed {
            w.txn_started_ms.remove(&c.producer_id);
            if c.aborted {
                let e = aborted_entry(c, *lso);
                active.append_aborted(&*self.fs, e).map_err(|e| self.poison(e))?;
                self.aborted.write().push(e);
                self.stats.aborted_transactions.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.config.high_watermark == HighWatermarkMode::LogEnd {
            w.psm.on_high_watermark(next);
            self.publish_fuo(w);
            self.high_watermark.store(next, Ordering::Release);
        } else {
            self.publish_fuo(w);
        }
        w.bytes_since_snapshot += total;
        if w.bytes_since_snapshot >= self.config.snapshot_interval_bytes {
            // A snapshot is also a flush point: the recovery point moves to it, so crash
            // recovery replays at most `eoslog.snapshot.interval.bytes`.
            self.flush_locked(w).map_err(|e| self.poison(e))?;
            self.take_snapshot(w, next).map_err(|e| self.poison(e))?;
        }
        w.scratch = buf;
        let c = &self.stats;
        c.appends.fetch_add(1, Ordering::Relaxed);
        c.appended_bytes.fetch_add(total, Ordering::Relaxed);
        c.appended_records
            .fetch_add(record_count as u64, Ordering::Relaxed);
        if markers > 0 || origin == AppendOrigin::Coordinator {
            c.markers.fetch_add(markers as u64, Ordering::Relaxed);
        }
        Ok(AppendOutcome::Appended(AppendInfo {
            first_offset: Offset(first_offset),
            last_offset: Offset(last_offset),
            max_timestamp: max_ts,
            log_append_time: if log_append_time { now } else { -1 },
            log_start_offset: self.log_start_offset(),
        }))
    }

    fn publish_fuo(&self, w: &Writer) {
        let fuo = w.psm.first_unstable_offset().unwrap_or(NO_OFFSET);
        self.first_unstable.store(fuo, Ordering::Release);
    }

    /// Writes a COMMIT or ABORT marker for a producer, as the transaction coordinator does.
    /// Fencing applies: an older producer epoch is `INVALID_PRODUCER_EPOCH`, an older
    /// coordinator epoch `TRANSACTION_COORDINATOR_FENCED`; a higher producer epoch bumps the
    /// producer's epoch (fencing a zombie). A marker for a producer with no open transaction
    /// is written but completes nothing.
    ///
    /// # Errors
    /// Storage failures; under [`Durability::SyncEachAppend`], a truncation before the
    /// marker's fsync ([`AppendError::TruncatedBeforeDurable`]).
    pub fn write_marker(&self, marker: &TxnMarker) -> Result<AppendOutcome, AppendError> {
        let control = match marker.marker {
            MarkerType::Commit => ControlType::Commit,
            MarkerType::Abort => ControlType::Abort,
        };
        let bytes = batch::build_marker(
            control,
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch.0,
            marker.timestamp.unwrap_or_else(|| self.clock.now_ms()),
        );
        self.append(&bytes, AppendOrigin::Coordinator)
    }

    /// Aborts a producer's open transaction at its current epoch and coordinator epoch (what
    /// `kafka-transactions.sh abort` does for a hanging transaction). `Ok(None)` when the
    /// producer has no open transaction.
    ///
    /// # Errors
    /// Storage failures.
    pub fn abort_transaction(&self, producer_id: ProducerId) -> Result<Option<AppendOutcome>, AppendError> {
        let (epoch, coordinator_epoch) = {
            let w = self.writer.lock();
            match w.psm.producers.get(producer_id.0) {
                Some(e) if e.txn_first_offset >= 0 => (e.epoch, e.coordinator_epoch.max(0)),
                _ => return Ok(None),
            }
        };
        let outcome = self.write_marker(&TxnMarker {
            producer_id,
            producer_epoch: ProducerEpoch(epoch),
            coordinator_epoch: CoordinatorEpoch(coordinator_epoch),
            marker: MarkerType::Abort,
            timestamp: None,
        })?;
        if matches!(outcome, AppendOutcome::Appended(_)) {
            self.stats.forced_aborts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(producer_id = producer_id.0, epoch, "transaction aborted by force");
        }
        Ok(Some(outcome))
    }

    /// Sets the high watermark (clamped to `[log start, log end]`) and returns it. A poisoned
    /// log keeps its high watermark (and so its last stable offset) until reopened.
    pub fn set_high_watermark(&self, offset: Offset) -> Offset {
        let mut w = self.writer.lock();
        if self.poisoned.load(Ordering::Acquire) {
            // After a failed write the in-memory transaction state may be ahead of the
            // transaction index: keep the LSO where it is until a reopen runs recovery.
            return self.high_watermark();
        }
        let hw = offset.0.clamp(
            self.log_start.load(Ordering::Acquire),
            self.log_end.load(Ordering::Acquire),
        );
        w.psm.on_high_watermark(hw);
        self.publish_fuo(&w);
        self.high_watermark.store(hw, Ordering::Release);
        Offset(hw)
    }

    fn sync_segments_from(&self, from: i64) -> Result<(), StorageError> {
        let segs = self.segments.read().clone();
        let start = segs.partition_point(|s| s.base_offset <= from).saturating_sub(1);
        for s in &segs[start..] {
            s.sync_log()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits until every record below `end` is fsynced, and returns the durable offset then.
    ///
    /// The result is at least `end` unless the log ended before `end` at the call (a wait
    /// never waits for appends yet to come) or a truncation ([`Log::truncate_to`],
    /// [`Log::truncate_fully_and_start_at`]) ran while it waited. Acknowledge an append
    /// only when the result passes its last offset. That alone does not prove its records
    /// survived a truncation: records appended after one reuse offsets, and a log restarted
    /// at a higher offset is durable past them. A truncation is the embedder's act (a leader
    /// change), and Kafka fails the produce requests in flight when one happens; fail the
    /// waits of appends made before it the same way ([`Durability::SyncEachAppend`] appends
    /// do so themselves, with [`AppendError::TruncatedBeforeDurable`]).
    ///
    /// This is the durable half of an append split in two, so that one producer can keep
    /// several appends in flight: append with [`Durability::Buffered`], then acknowledge
    /// each once `wait_durable(info.last_offset.next())` returns. Waiters share fsyncs with
    /// each other and with [`Durability::SyncEachAppend`] appends (group commit), so the
    /// more appends are in flight, the more each fsync covers. A wait for data that is
    /// already durable takes one uncontended lock and no system call. With
    /// `eoslog.high.watermark=durable`, the HW has reached the returned offset.
    ///
    /// # Errors
    /// [`StorageError::Poisoned`] if the log failed a write or fsync (nothing is durable
    /// past [`Log::durable_offset`] until a reopen runs recovery), or the fsync's error.
    pub fn wait_durable(&self, end: Offset) -> Result<Offset, StorageError> {
        let target = end.0.min(self.log_end.load(Ordering::Acquire));
        self.sync_to(target).map(Offset)
    }

    /// Group commit: waits until everything below `target` is fsynced. One caller fsyncs for
    /// every append that arrived while the previous fsync ran. With
    /// `eoslog.high.watermark=durable`, the HW has reached the durable offset (up to the log
    /// end) when this returns, whichever caller's fsync made the data durable.
    /// Returns the durable offset then: below `target` only if a truncation ran meanwhile.
    fn sync_to(&self, target: i64) -> Result<i64, StorageError> {
        let durable = self.sync_to_inner(target)?;
        if self.config.high_watermark == HighWatermarkMode::Durable
            && self.high_watermark.load(Ordering::Acquire) < durable.min(self.log_end.load(Ordering::Acquire))
        {
            self.advance_durable_hw();
        }
        Ok(durable)
    }

    /// [`Log::sync_to`] without the HW step; returns the durable offset it saw.
    fn sync_to_inner(&self, target: i64) -> Result<i64, StorageError> {
        let mut st = self.sync.lock();
        loop {
            if self.poisoned.load(Ordering::Acquire) {
                return Err(StorageError::Poisoned);
            }
            if st.durable >= target {
                return Ok(st.durable);
            }
            if !st.in_progress {
                break;
            }
            self.sync_cv.wait(&mut st);
        }
        st.in_progress = true;
        // Appends already under way finish their writes first, so that this fsync covers
        // them rather than the next one. The leader blocks (the CPUs stay with the
        // appenders), at most GROUP_COMMIT_WAIT; a lone appender never waits.
        if self.appending.load(Ordering::Acquire) > 0 {
            let deadline = std::time::Instant::now() + GROUP_COMMIT_WAIT;
            self.leader_waiting.store(true, Ordering::Release);
            while self.appending.load(Ordering::Acquire) > 0 {
                if self.appends_done.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
            self.leader_waiting.store(false, Ordering::Release);
        }
        let (from, truncations) = (st.durable, st.truncations);
        drop(st);
        let upto = self.log_end.load(Ordering::Acquire);
        let unwinding = LeaderUnwind(self);
        let res = self.sync_segments_from(from);
        std::mem::forget(unwinding);
        let mut st = self.sync.lock();
        st.in_progress = false;
        let res = match res {
            // Another fsync of the same file (a flush or roll under the writer lock) may have
            // been the one told of a write-back error: this fsync's success then proves
            // nothing, and the log is already poisoned.
            Ok(()) if self.poisoned.load(Ordering::Acquire) => Err(StorageError::Poisoned),
            Ok(()) => {
                // A truncation while the fsync ran may have removed what it covered; the
                // data at those offsets now is newer. Waiters go round again.
                if st.truncations == truncations {
                    st.durable = st.durable.max(upto);
                }
                Ok(st.durable)
            }
            Err(e) => Err(self.poison(e)),
        };
        drop(st);
        self.sync_cv.notify_all();
        res
    }

    /// Poisons the log and clears the leader's claim if the leader's fsync panics (an
    /// injected [`FileSystem`] may): waiters must not wait for a leader that is gone, and
    /// whether that fsync reached the disk is unknown.
    fn leader_panicked(&self) {
        tracing::error!(dir = %self.dir.display(), "group-commit fsync panicked: the log refuses writes until reopened");
        self.poisoned.store(true, Ordering::Release);
        self.sync.lock().in_progress = false;
        self.sync_cv.notify_all();
    }

    fn advance_durable_hw(&self) {
        let durable = self.sync.lock().durable;
        let w = self.writer.lock();
        self.set_hw_locked(w, durable);
    }

    fn set_hw_locked(&self, mut w: parking_lot::MutexGuard<'_, Writer>, hw: i64) {
        let hw = hw.min(self.log_end.load(Ordering::Acquire));
        if hw > self.high_watermark.load(Ordering::Acquire) && !self.poisoned.load(Ordering::Acquire) {
            w.psm.on_high_watermark(hw);
            self.publish_fuo(&w);
            self.high_watermark.store(hw, Ordering::Release);
        }
    }

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
            self.set_hw_locked(w, end);
        }
        Ok(())
    }

    fn flush_locked(&self, w: &mut Writer) -> Result<(), StorageError> {
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

    fn write_checkpoint(&self, w: &Writer) -> Result<(), StorageError> {
        let mut text = format!(
            "eoslog-checkpoint 0\nrecovery_point {}\nlog_start_offset {}\n",
            w.recovery_point,
            self.log_start.load(Ordering::Acquire)
        );
        if let Some((base, pos)) = w.recovery_position {
            text.push_str(&format!("recovery_position {base} {pos}\n"));
        }
        let path = self.dir.join(CHECKPOINT_FILE);
        write_atomic(&*self.fs, &path, text.as_bytes()).map_err(|(op, p, e)| StorageError::io(op, p, e))
    }

    fn roll(&self, w: &mut Writer, new_base: i64) -> Result<(), StorageError> {
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
            old.flush()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        let seg = Arc::new(Segment::create(&*self.fs, &self.dir, new_base, self.limits, now)?);
        // IMPORTANT: the new segment's directory entry must be durable before data lands in it.
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
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
        self.take_snapshot(w, new_base)?;
        self.write_checkpoint(w)?;
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

    fn take_snapshot(&self, w: &mut Writer, offset: i64) -> Result<(), StorageError> {
        if w.snapshots.last() == Some(&offset) && w.bytes_since_snapshot == 0 {
            return Ok(());
        }
        let bytes = snapshot::encode(&w.psm.snapshot());
        let path = self.dir.join(file_name(offset, "snapshot"));
        write_atomic(&*self.fs, &path, &bytes).map_err(|(op, p, e)| StorageError::io(op, p, e))?;
        w.snapshots.insert(offset);
        w.bytes_since_snapshot = 0;
        // Keep snapshots at segment bases (recovery starts there) and the newest one.
        let newest = offset;
        let keep: BTreeSet<i64> = w.segments.iter().map(|s| s.base_offset).collect();
        let stale: Vec<i64> = w
            .snapshots
            .iter()
            .copied()
            .filter(|o| *o != newest && !keep.contains(o))
            .collect();
        for o in stale {
            let p = self.dir.join(file_name(o, "snapshot"));
            fs_remove(&*self.fs, &p)?;
            w.snapshots.remove(&o);
        }
        Ok(())
    }

    /// Kafka's stray-snapshot rule: keep snapshots at segment bases, plus the largest one
    /// if it lies above the highest segment base (the clean-shutdown snapshot).
    fn remove_stray_snapshots(&self, w: &mut Writer) -> Result<(), StorageError> {
        let bases: BTreeSet<i64> = w.segments.iter().map(|s| s.base_offset).collect();
        let highest_base = bases.last().copied().unwrap_or(0);
        let largest = w.snapshots.last().copied();
        let end = self.log_end.load(Ordering::Acquire);
        let stray: Vec<i64> = w
            .snapshots
            .iter()
            .copied()
            .filter(|o| *o > end || !(bases.contains(o) || (Some(*o) == largest && *o > highest_base)))
            .collect();
        let any = !stray.is_empty();
        for o in stray {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        if any {
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_err("fsync directory", &self.dir))?;
        }
        Ok(())
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

    fn close_locked(&self, w: &mut Writer) -> Result<(), StorageError> {
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

    // ----- maintenance -------------------------------------------------------------

    /// Expires producers, applies retention and (when enabled) aborts timed-out transactions.
    /// An embedder calls it periodically (Kafka runs these every few minutes).
    ///
    /// # Errors
    /// Storage failures.
    pub fn run_maintenance(&self) -> Result<MaintenanceReport, StorageError> {
        let now = self.clock.now_ms();
        let expired_producers = self.writer.lock().psm.remove_expired(now);
        let deleted_segments = self.apply_retention()?;
        let mut aborted_transactions = 0;
        if self.config.transaction_timeout_ms > 0 {
            let timed_out: Vec<i64> = {
                let w = self.writer.lock();
                w.txn_started_ms
                    .iter()
                    .filter(|(_, &t)| now - t > self.config.transaction_timeout_ms)
                    .map(|(&p, _)| p)
                    .collect()
            };
            for pid in timed_out {
                match self.abort_transaction(ProducerId(pid)) {
                    Ok(Some(AppendOutcome::Appended(_))) => aborted_transactions += 1,
                    Ok(_) => {}
                    Err(AppendError::Storage(e)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, pid, "timeout abort failed"),
                }
            }
        }
        Ok(MaintenanceReport {
            expired_producers,
            deleted_segments,
            aborted_transactions,
        })
    }

    /// Deletes segments by `retention.bytes`, `retention.ms` and the log start offset, never
    /// at or above the high watermark. Returns the number deleted.
    ///
    /// # Errors
    /// Storage failures.
    pub fn apply_retention(&self) -> Result<usize, StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.retention_locked(&mut w).map_err(|e| self.poison(e))
    }

    fn retention_locked(&self, w: &mut Writer) -> Result<usize, StorageError> {
        let now = self.clock.now_ms();
        let hw = self.high_watermark.load(Ordering::Acquire);
        let log_end = self.log_end.load(Ordering::Acquire);
        let log_start = self.log_start.load(Ordering::Acquire);
        let mut total: u64 = w.segments.iter().map(|s| s.size()).sum();
        let mut n = 0usize;
        let count = w.segments.len();
        for (i, s) in w.segments.iter().enumerate() {
            let upper = w.segments.get(i + 1).map_or(log_end, |nx| nx.base_offset);
            if upper > hw || (i + 1 == count && s.size() == 0) {
                break;
            }
            let by_start = upper <= log_start;
            let by_size = self.config.retention_bytes >= 0
                && total.saturating_sub(s.size()) >= self.config.retention_bytes as u64;
            let by_time = self.config.retention_ms >= 0 && {
                let ts = s.max_timestamp(&*self.fs)?;
                ts >= 0 && now - ts > self.config.retention_ms
            };
            if !(by_start || by_size || by_time) {
                break;
            }
            total -= s.size();
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        if n == count {
            // Everything goes: roll an empty active segment first.
            self.roll(w, log_end)?;
        }
        let deleted: Vec<Arc<Segment>> = w.segments.drain(..n).collect();
        let new_start = w
            .segments
            .first()
            .map_or(log_end, |s| s.base_offset)
            .max(log_start);
        *self.segments.write() = Arc::new(w.segments.clone());
        self.log_start.store(new_start, Ordering::Release);
        for s in &deleted {
            s.delete(&*self.fs)?;
            tracing::info!(dir = %self.dir.display(), base = s.base_offset, "segment deleted by retention");
        }
        // The deleted segments' snapshots go; the one at the oldest remaining segment's base
        // stays even when the log start offset lies above it, so that recovery and truncation
        // still find the producer state of the deleted data (Kafka keeps it too).
        let first_base = w.segments.first().map_or(log_end, |s| s.base_offset);
        let old_snaps: Vec<i64> = w.snapshots.range(..first_base).copied().collect();
        for o in old_snaps {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        self.aborted.write().drop_below(first_base);
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        w.epochs.truncate_from_start(&*self.fs, new_start)?;
        self.write_checkpoint(w)?;
        Ok(deleted.len())
    }

    /// Moves the log start offset to `offset` (Kafka's DeleteRecords) and deletes the segments
    /// wholly below it. Returns the new log start offset.
    ///
    /// # Errors
    /// `OFFSET_OUT_OF_RANGE` above the high watermark; storage failures.
    pub fn delete_records_before(&self, offset: Offset) -> Result<Offset, ReadError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        let hw = self.high_watermark.load(Ordering::Acquire);
        let start = self.log_start.load(Ordering::Acquire);
        if offset.0 > hw || offset.0 < 0 {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start: Offset(start),
                log_end: Offset(hw),
            });
        }
        if offset.0 > start {
            self.log_start.store(offset.0, Ordering::Release);
            w.psm.on_high_watermark(hw);
            self.write_checkpoint(&w).map_err(|e| self.poison(e))?;
            self.retention_locked(&mut w).map_err(|e| self.poison(e))?;
        }
        Ok(self.log_start_offset())
    }

    /// Truncates the log to end at `offset` (replica divergence). A batch straddling `offset`
    /// is removed whole; producer state is rebuilt from the newest snapshot at or below it.
    ///
    /// # Errors
    /// Storage failures.
    pub fn truncate_to(&self, offset: Offset) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        if offset.0 < 0 {
            return Err(StorageError::InvalidOffset { offset });
        }
        self.truncate_locked(&mut w, offset.0).map_err(|e| self.poison(e))
    }

    fn truncate_locked(&self, w: &mut Writer, target: i64) -> Result<(), StorageError> {
        let log_end = self.log_end.load(Ordering::Acquire);
        if target >= log_end {
            return Ok(());
        }
        if w.segments.first().is_none_or(|s| s.base_offset > target) {
            return self.truncate_fully_locked(w, target);
        }
        tracing::info!(dir = %self.dir.display(), target, log_end, "truncating");
        let keep = w.segments.partition_point(|s| s.base_offset <= target);
        let removed: Vec<Arc<Segment>> = w.segments.drain(keep..).collect();
        *self.segments.write() = Arc::new(w.segments.clone());
        for s in &removed {
            s.delete(&*self.fs)?;
        }
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        active.truncate_to(&*self.fs, target)?;
        active.make_active(&*self.fs)?;
        active.flush()?;
        // The new end is where the remaining data ends. Kafka sets it to `target` even when a
        // batch straddling `target` was removed whole, which leaves a hole a follower would
        // never refetch and which a restart silently undoes; eoslog keeps the two equal.
        let target = segment_next_offset(&*self.fs, &active)?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        self.aborted.write().truncate_to(target);
        w.epochs.truncate_from_end(&*self.fs, target)?;
        // Producer state: newest snapshot <= target, replayed up to target.
        let stale: Vec<i64> = w.snapshots.range(target + 1..).copied().collect();
        for o in stale {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        self.log_end.store(target, Ordering::Release);
        let now = self.clock.now_ms();
        let segments = w.segments.clone();
        load_producer_state(
            &*self.fs,
            &self.dir,
            &mut w.psm,
            &mut w.snapshots,
            &segments,
            target,
            now,
        )?;
        if w.psm.map_end_offset < target {
            let from = w.psm.map_end_offset;
            replay(&*self.fs, &mut w.psm, &segments, from, target)?;
        }
        w.psm.map_end_offset = target;
        w.txn_started_ms
            .retain(|pid, _| w.psm.producers.get(*pid).is_some_and(|e| e.txn_first_offset >= 0));
        let start = self.log_start.load(Ordering::Acquire).min(target);
        self.log_start.store(start, Ordering::Release);
        // The active segment was flushed above and the earlier ones at their rolls: the
        // recovery point is the new end.
        w.recovery_point = target;
        w.recovery_position = w.segments.last().map(|s| (s.base_offset, s.size()));
        {
            let mut st = self.sync.lock();
            let durable = st.durable.min(target);
            st.truncated(durable);
        }
        let hw = self.high_watermark.load(Ordering::Acquire).min(target);
        w.psm.on_high_watermark(hw);
        self.publish_fuo(w);
        self.high_watermark.store(hw, Ordering::Release);
        w.bytes_since_snapshot = w.bytes_since_snapshot.max(1);
        self.take_snapshot(w, target)?;
        self.write_checkpoint(w)
    }

    /// Deletes everything and starts an empty log at `offset` (a follower too far behind).
    /// No producer state survives.
    ///
    /// # Errors
    /// Storage failures.
    pub fn truncate_fully_and_start_at(&self, offset: Offset) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        if offset.0 < 0 {
            return Err(StorageError::InvalidOffset { offset });
        }
        self.truncate_fully_locked(&mut w, offset.0)
            .map_err(|e| self.poison(e))
    }

    fn truncate_fully_locked(&self, w: &mut Writer, offset: i64) -> Result<(), StorageError> {
        tracing::info!(dir = %self.dir.display(), offset, "truncating fully");
        let now = self.clock.now_ms();
        for s in w.segments.drain(..) {
            s.delete(&*self.fs)?;
        }
        for o in std::mem::take(&mut w.snapshots) {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
        }
        let seg = Arc::new(Segment::create(&*self.fs, &self.dir, offset, self.limits, now)?);
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        w.segments.push(seg);
        *self.segments.write() = Arc::new(w.segments.clone());
        w.psm.clear(offset);
        w.txn_started_ms.clear();
        w.epochs.clear(&*self.fs)?;
        self.aborted.write().clear();
        self.log_start.store(offset, Ordering::Release);
        self.log_end.store(offset, Ordering::Release);
        self.first_unstable.store(NO_OFFSET, Ordering::Release);
        self.high_watermark.store(offset, Ordering::Release);
        w.recovery_point = offset;
        w.recovery_position = Some((offset, 0));
        w.bytes_since_snapshot = 0;
        self.sync.lock().truncated(offset);
        self.write_checkpoint(w)
    }

    // ----- reads -------------------------------------------------------------------------

    /// Reads whole batches from `from` (the first batch may start before it), at most
    /// `max_bytes` (but always at least one batch when one is visible), up to the bound the
    /// isolation allows.
    ///
    /// # Errors
    /// `OFFSET_OUT_OF_RANGE` below the log start or above the log end; storage failures.
    pub fn read(
        &self,
        from: Offset,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchResult, ReadError> {
        // Read the high watermark once (KAFKA-9807): every bound below derives from it.
        let hw = self.high_watermark.load(Ordering::Acquire);
        let lso = self.lso_given(hw);
        let log_end = self.log_end.load(Ordering::Acquire);
        let log_start = self.log_start.load(Ordering::Acquire);
        let bound = match isolation {
            Isolation::ReadCommitted => lso,
            Isolation::ReadUncommitted => hw,
            Isolation::Replica => log_end,
        };
        if from.0 < log_start || from.0 > log_end {
            return Err(ReadError::OffsetOutOfRange {
                offset: from,
                log_start: Offset(log_start),
                log_end: Offset(log_end),
            });
        }
        let mut result = FetchResult {
            high_watermark: Offset(hw),
            last_stable_offset: Offset(lso),
            log_start_offset: Offset(log_start),
            slices: Vec::new(),
            aborted_transactions: (isolation == Isolation::ReadCommitted).then(Vec::new),
        };
        if from.0 >= bound {
            return Ok(result);
        }
        let segs = self.segments.read().clone();
        let mut i = segs
            .partition_point(|s| s.base_offset <= from.0)
            .saturating_sub(1);
        while let Some(seg) = segs.get(i) {
            let limit = seg.size();
            if let Some(first) = seg.find_batch(&*self.fs, from.0, limit)? {
                if first.base_offset >= bound || first.last_offset >= bound {
                    break;
                }
                let max_end = first.position.saturating_add(max_bytes as u64);
                let (end, last) = self.fetch_end(seg, &first, max_end, bound, limit)?;
                result.slices.push(FileSlice {
                    file: seg.file().clone(),
                    path: seg.log_path.clone(),
                    position: first.position,
                    len: end - first.position,
                });
                if let Some(list) = result.aborted_transactions.as_mut() {
                    self.aborted.read().for_each_overlapping(from.0, last + 1, |e| {
                        list.push(AbortedTransaction {
                            producer_id: ProducerId(e.producer_id),
                            first_offset: Offset(e.first_offset),
                        });
                    });
                }
                break;
            }
            i += 1;
        }
        Ok(result)
    }

    /// Where a fetch that starts with batch `first` ends: `(end position, last offset)` of the
    /// longest run of whole batches within `max_end` and below `bound`.
    ///
    /// The offset index names where a later append starts; every batch before it is whole
    /// and has offsets below the header's base offset, so headers are read only from there on
    /// (one per index interval instead of one per batch). The header found there must agree
    /// with the entry (it starts the append the entry names: after `first`, base offset at
    /// most `bound`, last offset at most the entry's), else the walk starts over from
    /// `first`: a damaged index never widens a fetch past its bound.
    fn fetch_end(
        &self,
        seg: &Segment,
        first: &BatchInfo,
        max_end: u64,
        bound: i64,
        limit: u64,
    ) -> Result<(u64, i64), StorageError> {
        let after_first = first.position + first.size;
        let mut jump = seg.indexed_append_before(max_end, bound, after_first, limit);
        loop {
            let mut agreed = jump.is_none();
            let mut end = (after_first, first.last_offset);
            seg.scan_headers(jump.map_or(after_first, |(_, position)| position), limit, |b| {
                if let Some((entry_offset, _)) = jump.filter(|&(_, position)| position == b.position) {
                    if b.base_offset <= first.last_offset
                        || b.base_offset > bound
                        || b.last_offset > entry_offset
                    {
                        return ControlFlow::Break(());
                    }
                    agreed = true;
                    // Everything before the indexed append fits.
                    end = (b.position, b.base_offset - 1);
                }
                if b.last_offset >= bound || b.position + b.size > max_end {
                    return ControlFlow::Break(());
                }
                end = (b.position + b.size, b.last_offset);
                ControlFlow::Continue(())
            })?;
            if agreed {
                return Ok(end);
            }
            // The index disagrees with the log: walk every header from the first batch.
            jump = None;
        }
    }

    /// Reads records from `from` with the isolation's visibility, filtering as a Kafka
    /// consumer does: read_committed skips aborted transactions and every control record.
    /// Continues across segments until about `max_bytes` of batches were read or the bound
    /// is reached. Returns the records and the offset to continue from.
    ///
    /// # Errors
    /// As [`Log::read`], and corrupt batches.
    pub fn read_records(
        &self,
        from: Offset,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<(Vec<OwnedRecord>, Offset), ReadError> {
        let mut out = Vec::new();
        let mut next = from;
        let mut budget = max_bytes;
        loop {
            let fetch = self.read(next, budget, isolation)?;
            let bytes = fetch.bytes()?;
            if bytes.is_empty() {
                break;
            }
            budget = budget.saturating_sub(bytes.len());
            next = filter_fetch(&fetch, &bytes, next, isolation, &mut out)?;
            if budget == 0 {
                break;
            }
        }
        Ok((out, next))
    }

    /// An iterator over the records visible from `from` under `isolation`, filtered as a Kafka
    /// consumer filters them (read_committed: no aborted data, no control records). It ends at
    /// the bound that held when it last fetched; [`RecordStream::position`] tells where to
    /// resume.
    #[must_use]
    pub fn records(&self, from: Offset, isolation: Isolation) -> RecordStream<'_> {
        RecordStream {
            log: self,
            next: from,
            isolation,
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }

    /// Offset of the first record with timestamp `>= timestamp` (Kafka's ListOffsets by
    /// time), bounded by the isolation's visibility. `None` when there is none.
    ///
    /// # Errors
    /// Storage failures.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
        isolation: Isolation,
    ) -> Result<Option<(Offset, i64)>, ReadError> {
        let hw = self.high_watermark.load(Ordering::Acquire);
        let bound = match isolation {
            Isolation::ReadCommitted => self.lso_given(hw),
            Isolation::ReadUncommitted => hw,
            Isolation::Replica => self.log_end.load(Ordering::Acquire),
        };
        let start = self.log_start.load(Ordering::Acquire);
        let segs = self.segments.read().clone();
        for seg in segs.iter() {
            if seg.max_timestamp(&*self.fs)? < timestamp {
                continue;
            }
            if let Some((o, ts)) = seg.find_offset_by_timestamp(&*self.fs, timestamp, start)? {
                return Ok((o < bound).then_some((Offset(o), ts)));
            }
        }
        Ok(None)
    }

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

impl Drop for Log {
    fn drop(&mut self) {
        if self.closed.load(Ordering::Acquire) || self.poisoned.load(Ordering::Acquire) {
            return;
        }
        // Best effort: make the data durable; the next open still runs recovery.
        let segs = self.segments.read().clone();
        for s in segs.iter() {
            if let Err(e) = s.sync_log() {
                tracing::warn!(error = %e, "fsync on drop failed");
            }
        }
    }
}

/// The consumer-side read_committed filter (Kafka's `CompletedFetch`): aborted transactions
/// from the fetch go into a min-heap by first offset; a producer becomes "aborting" when a
/// batch reaches its first offset and stops at its ABORT marker; its transactional batches
/// are skipped meanwhile. Control records are never returned. Returns the next offset.
fn filter_fetch(
    fetch: &FetchResult,
    bytes: &[u8],
    from: Offset,
    isolation: Isolation,
    out: &mut Vec<OwnedRecord>,
) -> Result<Offset, ReadError> {
    let mut heap: BinaryHeap<Reverse<(i64, i64)>> = fetch
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| Reverse((a.first_offset.0, a.producer_id.0)))
        .collect();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut next = from.0;
    let corrupt = |position: u64, e: crate::error::BatchError| -> ReadError {
        let path = fetch.slices.first().map(|s| s.path.clone()).unwrap_or_default();
        let base = fetch.slices.first().map_or(0, |s| s.position);
        StorageError::from(Corruption {
            path,
            kind: FileKind::Log,
            position: base + position,
            detail: e.into(),
        })
        .into()
    };
    for item in BatchIter::new(bytes) {
        let (position, b) = item.map_err(|(p, e)| corrupt(p, e))?;
        b.validate_crc().map_err(|e| corrupt(position, e))?;
        next = next.max(b.next_offset());
        if isolation == Isolation::ReadCommitted && b.producer_id().is_some() {
            while let Some(Reverse((first, pid))) = heap.peek().copied() {
                if first > b.last_offset() {
                    break;
                }
                heap.pop();
                aborting.insert(pid);
            }
            if b.is_control() {
                if let Ok(Some(m)) = b.marker() {
                    if m.control_type == ControlType::Abort {
                        aborting.remove(&b.producer_id().0);
                    }
                }
                continue;
            }
            if b.is_transactional() && aborting.contains(&b.producer_id().0) {
                continue;
            }
        }
        if b.is_control() {
            continue;
        }
        let records = b.records().map_err(|e| corrupt(position, e))?;
        for r in records.iter() {
            let r = r.map_err(|e| corrupt(position, e))?;
            if r.offset < from.0 {
                continue;
            }
            out.push(OwnedRecord {
                offset: Offset(r.offset),
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect(),
            });
        }
    }
    Ok(Offset(next))
}

fn aborted_entry(c: &CompletedTxn, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: c.producer_id,
        first_offset: c.first_offset,
        last_offset: c.last_offset,
        last_stable_offset: lso,
    }
}

fn fs_remove(fs: &dyn FileSystem, path: &Path) -> Result<(), StorageError> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// The contents of `eoslog.checkpoint`.
#[derive(Debug, Clone, Copy, Default)]
struct Checkpoint {
    recovery_point: i64,
    log_start_offset: i64,
    /// Segment base and byte position of the recovery point, when recorded.
    recovery_position: Option<(i64, u64)>,
}

/// Reads `eoslog.checkpoint` (all zero when absent).
fn read_checkpoint(fs: &dyn FileSystem, dir: &Path) -> Result<Checkpoint, StorageError> {
    let path = dir.join(CHECKPOINT_FILE);
    if !fs.exists(&path) {
        return Ok(Checkpoint::default());
    }
    let f = fs.open(&path, false).map_err(io_err("open", &path))?;
    let bytes = read_all(&*f).map_err(io_err("read", &path))?;
    let corrupt = || -> StorageError {
        Corruption {
            path: path.clone(),
            kind: FileKind::Checkpoint,
            position: 0,
            detail: CorruptionDetail::Invalid("unreadable eoslog checkpoint"),
        }
        .into()
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt())?;
    let mut lines = text.lines();
    if lines.next() != Some("eoslog-checkpoint 0") {
        return Err(corrupt());
    }
    let mut field = |name: &str| -> Result<i64, StorageError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(corrupt)
    };
    let rp = field("recovery_point ")?;
    let ls = field("log_start_offset ")?;
    let position = lines.next().and_then(|l| {
        let mut it = l.strip_prefix("recovery_position ")?.split(' ');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    });
    Ok(Checkpoint {
        recovery_point: rp,
        log_start_offset: ls,
        recovery_position: position,
    })
}

/// The offset after the last batch of a segment (its base when empty).
fn segment_next_offset(fs: &dyn FileSystem, seg: &Segment) -> Result<i64, StorageError> {
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

/// Loads the newest valid snapshot at or below `upto` into `psm` (deleting corrupt ones and
/// falling back to older), then replays the log from the snapshot up to `upto` (or the end).
fn load_producer_state(
    fs: &dyn FileSystem,
    dir: &Path,
    psm: &mut ProducerStateManager,
    snapshots: &mut BTreeSet<i64>,
    segments: &[Arc<Segment>],
    upto: i64,
    now: i64,
) -> Result<(), StorageError> {
    let first_base = segments.first().map_or(0, |s| s.base_offset);
    psm.clear(first_base);
    while let Some(&offset) = snapshots.range(..=upto).next_back() {
        let path = dir.join(file_name(offset, "snapshot"));
        let loaded = fs
            .open(&path, false)
            .and_then(|f| read_all(&*f))
            .map_err(io_err("read", &path))
            .map(|bytes| snapshot::decode(&bytes));
        match loaded {
            Ok(Ok(loaded)) => {
                psm.load(loaded, offset, now);
                break;
            }
            Ok(Err((position, detail))) => {
                tracing::warn!(snapshot = %path.display(), position, %detail, "corrupt producer snapshot deleted; trying an older one");
                fs_remove(fs, &path)?;
                snapshots.remove(&offset);
            }
            Err(e) => return Err(e),
        }
    }
    let end = upto;
    if psm.map_end_offset < end {
        replay(fs, psm, segments, psm.map_end_offset, end)?;
    }
    Ok(())
}

/// Replays batches in `[from, to)` into producer state (replication origin, no index writes).
fn replay(
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
