//! The partition log: one directory of segments, with producer state, transactions, the
//! last stable offset and read_committed reads.
//!
//! [`Log`] is one type; its work is split by concern, one file each:
//!
//! | file | what it owns |
//! |---|---|
//! | `open.rs` | opening a directory: inventory, recovery, the first published state |
//! | `recovery.rs` | re-validating segments after an unclean shutdown; replaying producer state |
//! | `checkpoint.rs` | `eoslog.checkpoint` (recovery point, log start offset) |
//! | `append.rs` | validation, producer checks, offsets, the write |
//! | `group_commit.rs` | durable appends sharing fsyncs, `wait_durable` |
//! | `watermarks.rs` | the high watermark, first unstable and last stable offsets |
//! | `segments.rs` | roll, flush, close |
//! | `snapshots.rs` | producer-state snapshots |
//! | `read.rs` | fetches (whole batches, the aborted list) and offsets by time |
//! | `records.rs` | record-level reads with the consumer's read_committed filter |
//! | `retention.rs` | maintenance: expiry, retention, DeleteRecords, transaction timeouts |
//! | `truncate.rs` | replica truncation |
//! | `deletion.rs` | segments leaving the log: unlinked, or set aside for `file.delete.delay.ms` |
//! | `clean/` | compaction: the offset map, Kafka's retention rules, the `.cleaned`/`.swap` copy |
//! | `txn.rs` | markers, forced aborts, open transactions |
//! | `verify.rs` | checking every batch and index without changing anything |

mod append;
mod checkpoint;
mod clean;
mod deletion;
mod group_commit;
mod open;
mod read;
mod records;
mod recovery;
mod retention;
mod segments;
mod snapshots;
mod truncate;
mod txn;
mod verify;
mod watermarks;

pub use append::{AppendInfo, AppendOptions, AppendOutcome, Verification, VerificationGuard};
pub use clean::{CleanReport, Cleanability, CleanerOptions, CLEANER_FILE};
pub(crate) use open::lock_dir;
pub use open::LogOptions;
pub use read::{AbortedTransaction, FetchResult, FileSlice, Isolation};
pub use records::{OwnedRecord, RecordStream};
pub use retention::MaintenanceReport;
pub use txn::{MarkerType, OpenTransaction, TxnMarker};

use append::{Placed, HEAD_PATCH};
use group_commit::SyncState;

use std::{
    collections::{BTreeSet, HashMap},
    fs::File,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::LogConfig;
use crate::epoch_cache::{EpochEntry, LeaderEpochCache};
use crate::error::StorageError;
use crate::fs::{Clock, FileSystem};
use crate::kafka::KafkaError;
use crate::producer_state::{PendingAppend, ProducerInfo, ProducerStateManager};
use crate::segment::{Segment, SegmentLimits};
use crate::stats::{Counters, LogStats};
use crate::txn_index::AbortedIndex;
use crate::types::Offset;

/// Present while the log is closed cleanly; removed as soon as it is opened.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// eoslog's per-partition checkpoint (recovery point and log start offset).
pub const CHECKPOINT_FILE: &str = "eoslog.checkpoint";
/// The directory lock.
pub const LOCK_FILE: &str = ".lock";
const NO_OFFSET: i64 = i64::MAX;

/// A segment as `describe` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Base offset.
    pub base_offset: Offset,
    /// Size in bytes.
    pub size: u64,
}

struct Writer {
    /// The config in force, as [`Log::config`] gives it: appends read it here, under the
    /// lock they hold anyway, with no lock of its own.
    config: Arc<LogConfig>,
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

/// One partition log. All methods take `&self`; appends are serialised internally, reads run
/// concurrently with appends and with each other.
pub struct Log {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    clock: Arc<dyn Clock>,
    /// Replaced whole by [`Log::set_config`] under the writer lock; an append reads it once,
    /// under that lock, so one append sees one config.
    config: RwLock<Arc<LogConfig>>,
    writer: Mutex<Writer>,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    aborted: RwLock<AbortedIndex>,
    log_start: AtomicI64,
    log_end: AtomicI64,
    high_watermark: AtomicI64,
    first_unstable: AtomicI64,
    /// Published with the HW and FUO by `publish_watermarks` (never recomputed by readers).
    last_stable: AtomicI64,
    sync: Mutex<SyncState>,
    /// Odd while a truncation runs, bumped at its start and its end (under the writer
    /// lock): a read that overlapped one reads again ([`Log::racing_truncations`]).
    truncation_seq: AtomicU64,
    sync_cv: Condvar,
    poisoned: AtomicBool,
    /// Appends between their start and the end of their write; a group-commit leader waits
    /// (briefly, on `appends_done`) for them so that its fsync covers them.
    appending: AtomicUsize,
    leader_waiting: AtomicBool,
    /// Directory changes not fsynced by the roll that made them (`eoslog.roll.fsync =
    /// maintenance`), counted; `dir_synced` is the count the last directory fsync covered.
    /// Whatever makes appended data durable fsyncs the directory while they differ, so a new
    /// segment's entry is as durable as the data in it.
    dir_changes: AtomicU64,
    dir_synced: AtomicU64,
    appends_done: Condvar,
    closed: AtomicBool,
    stats: Counters,
    /// Odd while a clean installs a copy (under the writer lock): a read that overlapped one
    /// reads again ([`Log::racing_truncations`]).
    swap_seq: AtomicU64,
    /// Numbers checkpoint texts as they are built (under the writer lock).
    checkpoint_seq: AtomicU64,
    /// The number of the last checkpoint put in place, and what a crash may leave of the
    /// checkpoint; held while one is renamed.
    checkpoint_written: Mutex<checkpoint::CheckpointPlace>,
    /// Held (shared) by each checkpoint writer from start to end, and (exclusive) by
    /// [`Log::retire`] to wait for them.
    checkpoint_io: RwLock<()>,
    /// Held by a clean's swap from its check to its install, and by retention and
    /// truncation before the writer lock: they never change a group being swapped in.
    swap_lock: Mutex<()>,
    /// Held by a clean from start to end: one at a time.
    clean_lock: Mutex<()>,
    cleaner: Mutex<clean::CleanerState>,
    /// Files of deleted and replaced segments waiting for `file.delete.delay.ms`.
    set_aside: Mutex<deletion::SetAside>,
    /// Held while set-aside files are removed.
    removing_set_aside: Mutex<()>,
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

fn fs_remove(fs: &dyn FileSystem, path: &Path) -> Result<(), StorageError> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

impl Log {
    /// The partition directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force now (a snapshot: [`Log::set_config`] may replace it).
    #[must_use]
    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }

    /// Replaces the configuration of the open log, as Kafka applies a topic's changed configs
    /// (AlterConfigs) to its partitions without reopening them. Each key applies from the
    /// next operation that reads it: an append (`max.message.bytes`, `cleanup.policy`'s key
    /// rule, `message.timestamp.type`, `eoslog.durability`), the next roll (`segment.bytes`,
    /// `segment.ms`; `segment.index.bytes`, `index.interval.bytes` and
    /// `eoslog.preallocate.bytes` for the segments created from then on), the next
    /// maintenance (retention, `producer.id.expiration.ms`, the cleaner's keys). A producer's
    /// dedup window takes the new `eoslog.producer.window` at its next batch. A lower
    /// `eoslog.max.producer.ids` is reached at the next new producer, which evicts least
    /// recently used idle producers down to it. A clean that was running when `cleanup.policy`
    /// lost `compact` installs nothing.
    ///
    /// Switching `eoslog.roll.fsync` from `maintenance` to `inline` leaves the segments rolled
    /// before it to the next maintenance or roll, which fsyncs them before moving the
    /// recovery point past them.
    ///
    /// # Errors
    /// A config [`Log::open`] refuses; a different `eoslog.high.watermark` (the watermarks
    /// the log published were computed by the mode it opened with: a log end HW cannot
    /// become a durable one without moving back).
    pub fn set_config(&self, config: LogConfig) -> Result<(), crate::error::ConfigError> {
        open::check_config(&config)?;
        let mut w = self.writer.lock();
        if config.high_watermark != w.config.high_watermark {
            return Err(crate::error::ConfigError::InvalidValue {
                key: "eoslog.high.watermark".into(),
                value: config.get("eoslog.high.watermark").unwrap_or_default(),
                reason: "fixed while the log is open",
            });
        }
        w.psm.config = open::producer_config(&config);
        let config = Arc::new(config);
        w.config = config.clone();
        *self.config.write() = config;
        Ok(())
    }

    /// The sizes a segment created now gets.
    pub(crate) fn limits(&self) -> SegmentLimits {
        SegmentLimits::of(&self.config.read())
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
        let (lso, hw) = self.stable_bounds();
        LogStats {
            appends: c.appends.load(Relaxed),
            appended_bytes: c.appended_bytes.load(Relaxed),
            appended_records: c.appended_records.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            rejections: KafkaError::ALL
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
            lso_lag: hw - lso,
            aborted_transactions: self.aborted.read().len() as u64,
            forced_aborts: c.forced_aborts.load(Relaxed),
            rolls: c.rolls.load(Relaxed),
            recoveries: c.recoveries.load(Relaxed),
            truncated_bytes_on_recovery: c.truncated_bytes_on_recovery.load(Relaxed),
            fsyncs: c.fsyncs.load(Relaxed),
            durable_waiters: self.sync.lock().waiting,
        }
    }

    /// Whether an earlier write or fsync failed: the log refuses writes until it is reopened.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

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
