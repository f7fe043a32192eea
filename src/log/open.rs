//! Opening a partition directory: inventory, the checks of every derived file, recovery, and
//! the first published state.
//!
//! The rule for derived files (docs/FORMAT.md §5): a `.index`, `.timeindex`, `.txnindex` or
//! `.snapshot` that is missing, short or inconsistent is never used; eoslog rebuilds what it
//! derives from that segment on. At open that means: a segment with data whose offset or
//! time index is missing, whose transaction index is damaged or holds a different number of
//! entries below the recovery point than the checkpoint recorded, is recovered, and so is
//! every segment after it (producer state and transaction indexes derive from everything
//! before them). Index contents are checked when a segment's indexes are first read, and an
//! index that fails is rebuilt from its own segment.

use std::{
    collections::BTreeSet,
    fs::File,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{HighWatermarkMode, LogConfig};
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{ConfigError, Corruption, CorruptionDetail, FileKind, OpenError, StorageError};
use crate::fs::{Clock, FileSystem, StdFileSystem, SystemClock};
use crate::producer_state::{PendingAppend, ProducerConfig, ProducerStateManager};
use crate::segment::{file_name, parse_file_name, Segment, SegmentLimits};
use crate::stats::Counters;
use crate::txn_index::AbortedIndex;

use super::checkpoint::{read_checkpoint, Checkpoint};
use super::group_commit::SyncState;
use super::recovery::{replay, segment_next_offset, Rebuild};
use super::snapshots::load_producer_state;
use super::watermarks::stable_offset;
use super::{fs_remove, io_err, Log, Writer, CLEAN_SHUTDOWN_FILE, LOCK_FILE, NO_OFFSET};

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

/// What the directory holds, before anything is opened.
struct Inventory {
    /// Segment base offsets (one per `.log`).
    bases: BTreeSet<i64>,
    /// Bases whose `.index` and `.timeindex` both exist.
    indexed: BTreeSet<i64>,
    /// Snapshot offsets.
    snapshots: BTreeSet<i64>,
    /// Whether leftovers were removed (the directory then needs an fsync).
    removed_any: bool,
}

/// Creates the directory if needed and takes its lock.
pub(crate) fn lock_dir(fs: &dyn FileSystem, dir: &Path) -> Result<File, StorageError> {
    let existed = fs.exists(dir);
    fs.create_dir_all(dir).map_err(io_err("create directory", dir))?;
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
            return Err(StorageError::Locked {
                path: dir.to_path_buf(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(lock)
}

/// Lists segments and snapshots, removing leftovers of interrupted operations: temporary
/// files, Kafka's `.deleted` and `.cleaned` files, and index files without a segment.
fn take_inventory(fs: &dyn FileSystem, dir: &Path) -> Result<Inventory, StorageError> {
    let names = fs.list_dir(dir).map_err(io_err("list", dir))?;
    let mut inv = Inventory {
        bases: BTreeSet::new(),
        indexed: BTreeSet::new(),
        snapshots: BTreeSet::new(),
        removed_any: false,
    };
    let remove = |p: PathBuf, inv: &mut Inventory| -> Result<(), StorageError> {
        fs.remove_file(&p).map_err(io_err("remove", &p))?;
        inv.removed_any = true;
        Ok(())
    };
    let (mut offset_indexes, mut time_indexes) = (BTreeSet::new(), BTreeSet::new());
    for name in &names {
        let p = dir.join(name);
        let Some((offset, suffix)) = parse_file_name(name) else {
            if name.ends_with(".tmp") {
                remove(p, &mut inv)?;
            }
            continue;
        };
        match suffix {
            "log" => {
                inv.bases.insert(offset);
            }
            "snapshot" => {
                inv.snapshots.insert(offset);
            }
            "index" => {
                offset_indexes.insert(offset);
            }
            "timeindex" => {
                time_indexes.insert(offset);
            }
            s if s.ends_with(".swap") => {
                // `finish_swaps` ran first and placed every committed copy: a `.swap` left
                // here is one it could not read. Deleting it could lose data: refuse to open.
                return Err(StorageError::Corrupt(Corruption {
                    path: p,
                    kind: FileKind::Log,
                    position: 0,
                    detail: CorruptionDetail::Invalid("unfinished Kafka compaction swap file (.swap)"),
                }));
            }
            s if s.ends_with(".deleted") || s.ends_with(".cleaned") || s.ends_with(".tmp") => {
                remove(p, &mut inv)?;
            }
            _ => {}
        }
    }
    for name in &names {
        if let Some((offset, "index" | "timeindex" | "txnindex")) = parse_file_name(name) {
            if !inv.bases.contains(&offset) {
                remove(dir.join(name), &mut inv)?;
            }
        }
    }
    inv.indexed = offset_indexes.intersection(&time_indexes).copied().collect();
    Ok(inv)
}

/// Opens every segment; returns them and the index of the first one whose derived files
/// cannot be trusted (it and every later segment are recovered).
fn open_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    inv: &Inventory,
    checkpoint: &Checkpoint,
    clean: bool,
    limits: SegmentLimits,
    now: i64,
) -> Result<(Vec<Arc<Segment>>, Option<usize>), StorageError> {
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(inv.bases.len());
    let mut first_damaged = None;
    let mut damaged = |i: usize, base: i64, why: &'static str| {
        tracing::warn!(dir = %dir.display(), segment = base, why, "derived file missing or damaged; recovering from this segment on");
        if first_damaged.is_none() {
            first_damaged = Some(i);
        }
    };
    for &base in &inv.bases {
        let (seg, damage) = Segment::open(
            fs,
            dir,
            base,
            limits,
            now,
            inv.indexed.contains(&base),
            checkpoint.index_crcs(base),
        )?;
        // A transaction index naming markers at or past the next segment's base is damaged
        // too (its entries must lie in its own segment).
        if let Some(prev) = segments.last() {
            if prev
                .aborted_entries()
                .last()
                .is_some_and(|e| e.last_offset >= base)
            {
                damaged(
                    segments.len() - 1,
                    prev.base_offset,
                    "transaction index overflows its segment",
                );
            }
        }
        if let Some(why) = damage {
            damaged(segments.len(), base, why);
        }
        // A partial last entry is a write a crash tore, in the segment that was being
        // written; anywhere else, or after a clean shutdown, it is damage.
        let last = segments.len() + 1 == inv.bases.len();
        if seg.txn_index_torn() && (clean || !last) {
            damaged(
                segments.len(),
                base,
                "transaction index ends with a partial entry",
            );
        }
        let rp = checkpoint.recovery_point;
        if base < rp && !checkpoint.txn_index_agrees(base, seg.txn_summary_below(rp)) {
            damaged(
                segments.len(),
                base,
                "transaction index differs from what the checkpoint recorded",
            );
        }
        segments.push(Arc::new(seg));
    }
    Ok((segments, first_damaged))
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
    #[expect(
        clippy::too_many_lines,
        reason = "the steps of an open, each a few lines, in order"
    )]
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        options: LogOptions,
    ) -> Result<Log, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        check_config(&config)?;
        let LogOptions { fs, clock } = options;
        let lock = lock_dir(&*fs, &dir)?;
        let limits = SegmentLimits::of(&config);
        let now = clock.now_ms();

        // 1. Inventory, the checkpoint, every segment and the derived files it can check.
        let swapped = super::clean::finish_swaps(&*fs, &dir)?;
        let inv = take_inventory(&*fs, &dir)?;
        let clean_path = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = fs.exists(&clean_path);
        let mut checkpoint = read_checkpoint(&*fs, &dir)?;
        // A cleaned copy completed above replaced what the checkpoint describes at its base;
        // its own files were made durable before it was committed.
        checkpoint.forget(&swapped);
        let (mut segments, first_damaged) = open_segments(&*fs, &dir, &inv, &checkpoint, clean, limits, now)?;
        let Inventory {
            mut snapshots,
            mut removed_any,
            ..
        } = inv;
        let mut recovery_point = checkpoint.recovery_point;
        let mut log_start = checkpoint.log_start_offset;
        let mut psm = ProducerStateManager::new(producer_config(&config));
        let mut epochs = LeaderEpochCache::load(&*fs, &dir)?;
        let stats = Counters::default();

        // 2. Where recovery starts: the segment holding the recovery point after an unclean
        // shutdown, the first segment when no checkpoint says anything, and never after the
        // first segment with a damaged derived file.
        let first_recover = if segments.is_empty() {
            0
        } else if !checkpoint.present {
            tracing::warn!(dir = %dir.display(), "no eoslog checkpoint: every segment is recovered");
            0
        } else if clean {
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
        // Its index entries below the position are kept, so they must be the ones the
        // checkpoint recorded when it recorded them (a crash between a close and the next
        // open's checkpoint leaves the checksums of a trimmed index the open has since
        // extended): otherwise the whole segment is scanned, from producer state at its base.
        let resume = match (segments.get(first_recover), checkpoint.recovery_position) {
            (Some(s), Some((base, pos)))
                if s.base_offset == base
                    && pos > 0
                    && pos <= s.file().len().map_err(io_err("stat", &s.log_path))?
                    && first_damaged.is_none_or(|d| d > first_recover)
                    && s.recorded_indexes_intact(&*fs)? =>
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
        load_producer_state(&*fs, &dir, &mut psm, &mut snapshots, &segments, replay_end)?;
        let mut aborted = AbortedIndex::default();
        for s in &segments[..first_recover] {
            for e in s.aborted_entries() {
                aborted.push(e);
            }
        }
        if first_recover < segments.len() {
            stats.recoveries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(dir = %dir.display(), recovery_point, from_segment = segments[first_recover].base_offset, "recovering");
            Rebuild {
                fs: &*fs,
                dir: &dir,
                psm: &mut psm,
                epochs: &mut epochs,
                aborted: &mut aborted,
                stats: &stats,
            }
            .recover(
                &mut segments,
                first_recover,
                resume,
                checkpoint.present.then_some(recovery_point),
            )?;
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
        // Producers past `producer.id.expiration.ms` go, however the state was built (a
        // snapshot, a replay of the segments, or both).
        psm.remove_expired(now);
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
        let fuo = psm.first_unstable_offset().unwrap_or(NO_OFFSET);
        let txn_started_ms = psm
            .ongoing
            .values()
            .map(|&pid| (pid, psm.producers.get(pid).map_or(now, |e| e.last_timestamp)))
            .collect();
        let config = Arc::new(config);
        let writer = Writer {
            config: config.clone(),
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
        let cleaner_state = super::clean::CleanerState::load(&*fs, &dir);
        let opened_ms = clock.now_ms();
        let log = Log {
            dir: dir.clone(),
            fs,
            clock,
            config: RwLock::new(config),
            writer: Mutex::new(writer),
            segments: RwLock::new(Arc::new(segments)),
            aborted: RwLock::new(aborted),
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            high_watermark: AtomicI64::new(high_watermark),
            first_unstable: AtomicI64::new(fuo),
            last_stable: AtomicI64::new(stable_offset(fuo, log_start, high_watermark)),
            sync: Mutex::new(SyncState {
                durable: recovery_point,
                in_progress: false,
                truncations: 0,
                waiting: 0,
                last_sync_ms: opened_ms,
            }),
            truncation_seq: AtomicU64::new(0),
            sync_cv: Condvar::new(),
            poisoned: AtomicBool::new(false),
            appending: AtomicUsize::new(0),
            leader_waiting: AtomicBool::new(false),
            dir_changes: AtomicU64::new(0),
            dir_synced: AtomicU64::new(0),
            appends_done: Condvar::new(),
            closed: AtomicBool::new(false),
            stats,
            swap_seq: AtomicU64::new(0),
            checkpoint_seq: AtomicU64::new(0),
            checkpoint_written: Mutex::new(super::checkpoint::CheckpointPlace::default()),
            checkpoint_io: RwLock::new(()),
            swap_lock: Mutex::new(()),
            clean_lock: Mutex::new(()),
            cleaner: Mutex::new(cleaner_state),
            set_aside: Mutex::new(super::deletion::SetAside::default()),
            removing_set_aside: Mutex::new(()),
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
            // IMPORTANT: the checkpoint describing this open's files first, then the clean
            // marker removed: a crash in between leaves a clean log with a current checkpoint.
            log.write_checkpoint(&w)?;
            if clean {
                fs_remove(&*log.fs, &clean_path)?;
                log.fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
            }
        }
        Ok(log)
    }
}

/// What a log refuses of a config built field by field (`LogConfig::set` checks each key).
pub(super) fn check_config(config: &LogConfig) -> Result<(), ConfigError> {
    if config.producer_window == 0 || config.producer_window > 1024 {
        return Err(ConfigError::InvalidValue {
            key: "eoslog.producer.window".into(),
            value: config.producer_window.to_string(),
            reason: "must be 1..=1024",
        });
    }
    Ok(())
}

/// The producer-state settings a config gives.
pub(super) fn producer_config(config: &LogConfig) -> ProducerConfig {
    ProducerConfig {
        window: config.producer_window,
        expiration_ms: config.producer_id_expiration_ms,
        max_producer_ids: config.max_producer_ids,
    }
}
