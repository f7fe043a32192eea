//! Opening a partition directory: inventory, recovery, and the first published state.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
        Arc,
    },
};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{HighWatermarkMode, LogConfig};
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{ConfigError, Corruption, CorruptionDetail, FileKind, OpenError, StorageError};
use crate::fs::{Clock, FileSystem, StdFileSystem, SystemClock};
use crate::producer_state::{AppendOrigin, PendingAppend, ProducerConfig, ProducerStateManager};
use crate::segment::{file_name, parse_file_name, Segment, SegmentLimits};
use crate::stats::Counters;
use crate::txn_index::AbortedIndex;

use super::append::check_batch;
use super::checkpoint::{read_checkpoint, Checkpoint};
use super::group_commit::SyncState;
use super::recovery::{replay, segment_next_offset};
use super::snapshots::load_producer_state;
use super::txn::aborted_entry;
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
}
