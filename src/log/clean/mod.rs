//! Compaction (Kafka's log cleaner): the latest record of each key survives, aborted data
//! and finished markers go, and producer state survives.
//!
//! One clean:
//! 1. **Plan**, from a snapshot of the segment list: the cleanable segments lie wholly below
//!    the first uncleanable offset (the last stable offset, the high watermark, the active
//!    segment, `min.compaction.lag.ms`); the dirty ones start at the cleaner's first dirty
//!    offset (`eoslog.cleaner`).
//! 2. **Map** the dirty segments: key → latest offset, skipping control batches and aborted
//!    data, within `log.cleaner.dedupe.buffer.size` (a full map ends the mapped range early,
//!    at a batch boundary, possibly inside a segment).
//! 3. **Copy**, group by group (consecutive segments whose cleaned bytes fit one
//!    `segment.bytes`), every batch through [`filter::Rules::decide`] into
//!    `<base>.*.cleaned`, fsynced.
//! 4. **Swap**: rename the copy's files to `.swap`, `.log` last, and fsync the directory:
//!    from here on the copy wins, even over a crash. Then, under the writer lock and only if
//!    the group is still what was read, delete the other originals, rename the copy over
//!    the first one (`.log` last) and publish the new segment list. Opening a log that holds
//!    a `.log.swap` finishes the same steps; one that holds `.cleaned` files discards them.
//!
//! The writer lock is held only to check the group and to install the copy, never while
//! reading or writing data or committing the copy: appends and reads go on during a clean.
//! Retention and truncation, the only other changes to segments below the active one, take
//! the swap lock first, so the group checked stays as it is until installed. A read that
//! overlaps an install reads again (the swap sequence, like the truncation sequence); a
//! reader holding the old segments keeps reading their open files.
//!
//! eoslog keeps the last batch of every group, emptied if none of its records survive, so
//! that the copy's last offset names exactly the originals it replaces. Kafka infers that
//! range from the copy's next offset and, when a group's last segment lost every record,
//! can keep that segment beside its replacement after a crash mid-swap.

mod filter;
mod resume;
mod state;

pub(crate) use resume::finish_swaps;
pub(crate) use state::CleanerFile;
pub use state::CLEANER_FILE;

use std::{
    collections::HashMap,
    ops::ControlFlow,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::batch::{empty_batch_like, RecordBatch, HEADER_SIZE};
use crate::config::LogConfig;
use crate::error::{BatchError, StorageError};
use crate::segment::{AppendedBatch, ScanEnd, Segment, SegmentLimits, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::txn_index::AbortedTxn;
use crate::types::Offset;

use filter::{FilterStats, LastOfProducer, OffsetMap, Outcome, Rules, TxnTracker};

use super::{io_err, Log};

/// Settings of the cleaner that belong to the process, not to a log (Kafka's broker-level
/// `log.cleaner.*`).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CleanerOptions {
    /// `log.cleaner.io.max.bytes.per.second`: bytes read plus written per second, at most
    /// (default unlimited).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key map (default 128 MiB), checked
    /// before each batch. A clean whose dirty keys do not fit maps up to the batch where the
    /// map filled, even inside a segment, and the next clean goes on from there.
    pub dedupe_buffer_bytes: usize,
}

impl Default for CleanerOptions {
    fn default() -> Self {
        CleanerOptions {
            io_max_bytes_per_second: f64::INFINITY,
            dedupe_buffer_bytes: 128 << 20,
        }
    }
}

impl CleanerOptions {
    /// Sets `log.cleaner.io.max.bytes.per.second`.
    #[must_use]
    pub fn io_max_bytes_per_second(mut self, rate: f64) -> Self {
        self.io_max_bytes_per_second = rate;
        self
    }
    /// Sets `log.cleaner.dedupe.buffer.size`.
    #[must_use]
    pub fn dedupe_buffer_bytes(mut self, bytes: usize) -> Self {
        self.dedupe_buffer_bytes = bytes;
        self
    }
}

/// What one clean did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanReport {
    /// When it finished (the log's clock).
    pub finished_ms: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// First offset of the cleaned range.
    pub start_offset: Offset,
    /// End of the cleaned range (exclusive): the next clean's first dirty offset.
    pub end_offset: Offset,
    /// Segments read.
    pub segments_read: usize,
    /// Segments written in their place.
    pub segments_written: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Records read.
    pub records_read: u64,
    /// Records kept.
    pub records_kept: u64,
}

/// How dirty a log is, as the cleaner judges it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanability {
    /// Where the records not yet cleaned start.
    pub first_dirty_offset: Offset,
    /// Nothing at or above this is cleaned (LSO, high watermark, active segment, min lag).
    pub first_uncleanable_offset: Offset,
    /// Bytes of the segments below the first dirty offset, the one holding it included.
    pub clean_bytes: u64,
    /// Bytes of cleanable segments from the one holding the first dirty offset on (a
    /// segment a clean stopped inside counts in both, as in Kafka).
    pub dirty_bytes: u64,
    /// `dirty / (clean + dirty)`, 0 with nothing cleanable.
    pub dirty_ratio: f64,
    /// Whether a clean is due: the ratio reached `min.cleanable.dirty.ratio`, or the oldest
    /// dirty record passed `max.compaction.lag.ms`.
    pub due: bool,
}

/// The cleaner's memory of one log.
#[derive(Debug)]
pub(super) struct CleanerState {
    pub(super) file: CleanerFile,
    /// The lowest offset a truncation cut the log to since the running clean began
    /// (`i64::MAX`: none): the clean's new first dirty offset is not above it, or a clean
    /// finishing after a truncation would record as clean offsets written again since.
    truncated_to: i64,
}

impl CleanerState {
    /// What `eoslog.cleaner` in `dir` remembers (nothing when missing or damaged).
    pub(super) fn load(fs: &dyn crate::fs::FileSystem, dir: &std::path::Path) -> Self {
        CleanerState {
            file: state::read(fs, dir).unwrap_or_default(),
            truncated_to: i64::MAX,
        }
    }
}

/// A plan: which segments a clean reads.
struct Plan {
    segments: Vec<Arc<Segment>>,
    /// Segments `[0, cleanable)` lie wholly below the first uncleanable offset.
    cleanable: usize,
    /// The first dirty segment.
    first_dirty: usize,
    info: Cleanability,
}

/// Spends the I/O budget: sleeps when the bytes moved run ahead of the rate.
struct Throttle<'a> {
    rate: f64,
    start: Instant,
    bytes: f64,
    /// The log's `closed` flag: a wait ends early once it is set (its topic is being
    /// deleted, and the deletion waits for this clean).
    closed: &'a AtomicBool,
}

impl Throttle<'_> {
    fn spend(&mut self, bytes: u64) {
        if !self.rate.is_finite() {
            return;
        }
        self.bytes += bytes as f64;
        let due = Duration::from_secs_f64(self.bytes / self.rate);
        while let Some(wait) = due.checked_sub(self.start.elapsed()) {
            if wait.is_zero() || self.closed.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
    }
}

/// The transaction bookkeeping for a walk of `[start, end)`: every aborted transaction the
/// segments' transaction indexes hold that overlaps it (an entry sits in its marker's
/// segment, which may lie past `end`).
fn txn_tracker(segments: &[Arc<Segment>], start: i64, end: i64) -> TxnTracker {
    TxnTracker::new(
        segments
            .iter()
            .flat_map(|s| s.aborted_entries())
            .filter(|e| e.last_offset >= start && e.first_offset < end)
            .collect(),
    )
}

/// Batches on their way into a copy: written 1 MiB at a time (one syscall, not one per
/// batch), indexed batch by batch.
#[derive(Default)]
struct CopyBuffer {
    bytes: Vec<u8>,
    batches: Vec<AppendedBatch>,
}

impl CopyBuffer {
    const FLUSH_AT: usize = 1 << 20;

    /// Adds one batch (already checked: it comes from the log or from the filter).
    fn push(
        &mut self,
        copy: &Segment,
        bytes: &[u8],
        throttle: &mut Throttle<'_>,
    ) -> Result<(), StorageError> {
        let at = copy.size() + self.bytes.len() as u64;
        let batch = RecordBatch::parse_exact(bytes).map_err(|e| copy.corrupt(at, e.into()))?;
        self.batches.push(AppendedBatch {
            len: bytes.len() as u64,
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
            offset_of_max: batch.last_offset(),
        });
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() >= Self::FLUSH_AT {
            self.flush(copy, throttle)?;
        }
        Ok(())
    }

    fn flush(&mut self, copy: &Segment, throttle: &mut Throttle<'_>) -> Result<(), StorageError> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        copy.append_batches(&self.bytes, &self.batches)?;
        throttle.spend(self.bytes.len() as u64);
        self.bytes.clear();
        self.batches.clear();
        Ok(())
    }
}

impl Log {
    /// After a truncation to `offset`: the dirty section starts at `offset` at the latest
    /// (Kafka's `maybeTruncateCheckpoint`), or data written again below the recorded first
    /// dirty offset would count as clean and never be mapped. The caller holds the writer
    /// lock; a failed write of the file is logged (the file is advisory).
    pub(super) fn truncate_cleaner_state(&self, offset: i64) {
        let mut st = self.cleaner.lock();
        st.truncated_to = st.truncated_to.min(offset);
        if st.file.first_dirty_offset > offset {
            st.file.first_dirty_offset = offset;
            if let Err(e) = state::write(&*self.fs, &self.dir, &st.file) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not record the cleaner's first dirty offset after a truncation");
            }
        }
    }

    /// How dirty the log is and whether a clean is due.
    ///
    /// # Errors
    /// Storage failures reading segment timestamps.
    pub fn cleanability(&self) -> Result<Cleanability, StorageError> {
        // The bounds before the segments: a list newer than the bounds only cleans less.
        let bounds = self.cleanable_bounds();
        let segments = self.segments.read().to_vec();
        Ok(self.plan(&self.config(), segments, bounds)?.info)
    }

    /// The last clean's report, if any clean ran (remembered across opens).
    #[must_use]
    pub fn last_clean(&self) -> Option<CleanReport> {
        self.cleaner.lock().file.last_run
    }

    /// Cleans the log if it is compacted (`cleanup.policy` includes `compact`) and a clean is
    /// due; `force` cleans whatever the dirty ratio. Returns what the clean did, `None` when
    /// nothing was cleaned (not compacted, nothing cleanable, not due, or the segments of its
    /// first group changed underneath: retention or a truncation won the race). A clean whose
    /// later group lost that race keeps and reports the groups it installed before it; its
    /// `end_offset`, where the next clean maps from, is then that group's base offset.
    ///
    /// # Errors
    /// Storage failures and damaged batches. A failure before the swap leaves the log as it
    /// was (the copy is discarded, the log stays writable); one during the swap poisons the
    /// log, and the next open completes the swap.
    pub fn clean(&self, options: &CleanerOptions, force: bool) -> Result<Option<CleanReport>, StorageError> {
        // One config for the whole clean (`Log::set_config` may replace it meanwhile; a
        // swap checks again that the log is still compacted).
        let config = self.config();
        if !config.cleanup_policy.compact {
            return Ok(None);
        }
        self.remove_set_aside(false);
        let _one_at_a_time = self.clean_lock.lock();
        self.check_writable()?;
        self.cleaner.lock().truncated_to = i64::MAX;
        let started = Instant::now();
        let now = self.clock.now_ms();
        let (segments, producers, truncations, bounds) = {
            let w = self.writer.lock();
            let producers: HashMap<i64, LastOfProducer> = w
                .psm
                .producers
                .iter()
                .map(|(pid, e)| {
                    let last_data_offset = e.batches.last().map(|b| b.last_offset);
                    (
                        pid,
                        LastOfProducer {
                            last_data_offset,
                            epoch: e.epoch,
                        },
                    )
                })
                .collect();
            // IMPORTANT: the bounds with the segments, in one hold of the writer lock (under
            // which they are published). Bounds read later may have passed a roll and a marker
            // this segment list does not have: data of a transaction aborted in a segment the
            // clean never sees would be cleaned as committed.
            (
                w.segments.clone(),
                producers,
                self.truncation_seq.load(Ordering::Acquire),
                self.cleanable_bounds(),
            )
        };
        let plan = self.plan(&config, segments, bounds)?;
        if plan.cleanable == 0 || !(force || plan.info.due) {
            return Ok(None);
        }
        let mut throttle = Throttle {
            rate: options.io_max_bytes_per_second,
            start: Instant::now(),
            bytes: 0.0,
            closed: &self.closed,
        };
        let (map, end, end_offset) = self.build_map(&plan, options.dedupe_buffer_bytes, &mut throttle)?;
        let cleaned = &plan.segments[..end];
        let start_offset = cleaned[0].base_offset;
        // The rewritten segments end here; the mapped range may end inside the last one.
        let walk_end = plan.segments[end].base_offset;
        let mut txns = txn_tracker(&plan.segments, start_offset, walk_end);
        let rules = Rules {
            map: &map,
            map_end: end_offset,
            producers: &producers,
            now_ms: now,
            delete_retention_ms: config.delete_retention_ms,
        };
        let mut stats = FilterStats::default();
        let mut report = CleanReport {
            finished_ms: 0,
            duration_ms: 0,
            start_offset: Offset(start_offset),
            end_offset: Offset(end_offset),
            segments_read: 0,
            segments_written: 0,
            bytes_read: 0,
            bytes_written: 0,
            records_read: 0,
            records_kept: 0,
        };
        // Where the clean ends: `end_offset`, or the base of a group whose segments changed
        // while it was copied (the groups before it are installed, and clean).
        let mut stopped_at = None;
        let mut i = 0;
        while i < cleaned.len() {
            let base = cleaned[i].base_offset;
            let (copy, j) = match self.copy_group(
                &config,
                cleaned,
                i,
                walk_end,
                &rules,
                &mut txns,
                &mut stats,
                &mut throttle,
            ) {
                Ok(done) => done,
                Err(e) => {
                    self.discard_copy(base);
                    return Err(e);
                }
            };
            let group = &cleaned[i..j];
            i = j;
            if copy.size() == 0 {
                // Only empty segments: an empty copy could not name what it replaces.
                drop(copy);
                self.discard_copy(base);
                continue;
            }
            let (read, written) = (group.iter().map(|s| s.size()).sum::<u64>(), copy.size());
            if !self.swap_in(group, copy, truncations)? {
                tracing::info!(dir = %self.dir.display(), "segments changed during the clean; it stops here");
                if report.segments_written == 0 {
                    return Ok(None);
                }
                stopped_at = Some(group[0].base_offset);
                break;
            }
            report.segments_read += group.len();
            report.bytes_read += read;
            report.bytes_written += written;
            report.segments_written += 1;
            report.records_read = stats.records_read;
            report.records_kept = stats.records_kept;
        }
        report.finished_ms = self.clock.now_ms();
        report.duration_ms = started.elapsed().as_millis() as i64;
        let mut st = self.cleaner.lock();
        // A clean that stopped early leaves dirty what it did not install: the next one
        // maps from the first group it left (never from below where this one started). Nor
        // from above where a truncation meanwhile cut the log: what was written again since
        // was never mapped.
        let end_offset = stopped_at
            .map_or(end_offset, |base| {
                base.max(st.file.first_dirty_offset).min(end_offset)
            })
            .min(st.truncated_to);
        report.end_offset = Offset(end_offset);
        st.file.first_dirty_offset = end_offset;
        st.file.last_run = Some(report);
        state::write(&*self.fs, &self.dir, &st.file)?;
        tracing::info!(
            dir = %self.dir.display(),
            start_offset,
            end_offset,
            bytes_read = report.bytes_read,
            bytes_written = report.bytes_written,
            records_kept = report.records_kept,
            records_read = report.records_read,
            map_keys = map.len(),
            aborted_batches_removed = stats.aborted_batches_removed,
            markers_removed = stats.markers_removed,
            tombstones_removed = stats.tombstones_removed,
            "cleaned"
        );
        Ok(Some(report))
    }

    /// The last stable offset, and the high watermark capped at the durable offset: nothing
    /// at or above either is cleaned (FORMAT.md §8.1). A record a power loss could take back
    /// must never supersede a durable one in a copy, which is fsynced.
    fn cleanable_bounds(&self) -> (i64, i64) {
        let (lso, hw) = self.stable_bounds();
        (lso, hw.min(self.sync.lock().durable))
    }

    /// What a clean of `segments` may clean, below `bounds` ([`Log::cleanable_bounds`], read
    /// no later than `segments`).
    fn plan(
        &self,
        config: &LogConfig,
        segments: Vec<Arc<Segment>>,
        bounds: (i64, i64),
    ) -> Result<Plan, StorageError> {
        let now = self.clock.now_ms();
        let (lso, hw) = bounds;
        let active = segments.last().map_or(i64::MAX, |s| s.base_offset);
        let mut uncleanable = lso.min(hw).min(active);
        let next_base = |i: usize| segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset);
        if config.min_compaction_lag_ms > 0 {
            for s in &segments {
                if s.base_offset >= uncleanable {
                    break;
                }
                if s.max_timestamp(&*self.fs)? > now.saturating_sub(config.min_compaction_lag_ms) {
                    uncleanable = s.base_offset;
                    break;
                }
            }
        }
        let cleanable = (0..segments.len())
            .take_while(|&i| next_base(i) <= uncleanable)
            .count();
        let log_start = self.log_start.load(Ordering::Acquire);
        let recorded = self.cleaner.lock().file.first_dirty_offset;
        let log_end = self.log_end.load(Ordering::Acquire);
        let first_dirty_offset = recorded.max(log_start).min(log_end);
        let first_dirty = (0..cleanable)
            .find(|&i| next_base(i) > first_dirty_offset)
            .unwrap_or(cleanable);
        // A segment a clean stopped inside counts as clean and as dirty, as in Kafka's
        // `LogToClean` (its clean bytes end at, its dirty bytes start from, the segment
        // holding the first dirty offset).
        let clean_end = if first_dirty < cleanable && segments[first_dirty].base_offset < first_dirty_offset {
            first_dirty + 1
        } else {
            first_dirty
        };
        let clean_bytes: u64 = segments[..clean_end].iter().map(|s| s.size()).sum();
        let dirty_bytes: u64 = segments[first_dirty..cleanable].iter().map(|s| s.size()).sum();
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let overdue = config.max_compaction_lag_ms < i64::MAX
            && match segments.get(first_dirty).filter(|_| first_dirty < cleanable) {
                Some(s) => match s.read_header(0, s.size())? {
                    Some(Ok(b)) => {
                        b.max_timestamp >= 0 && now - b.max_timestamp > config.max_compaction_lag_ms
                    }
                    _ => false,
                },
                None => false,
            };
        let due = dirty_bytes > 0 && (dirty_ratio >= config.min_cleanable_dirty_ratio || overdue);
        Ok(Plan {
            info: Cleanability {
                first_dirty_offset: Offset(
                    segments
                        .get(first_dirty)
                        .map_or(uncleanable, |s| s.base_offset.max(first_dirty_offset)),
                ),
                first_uncleanable_offset: Offset(uncleanable),
                clean_bytes,
                dirty_bytes,
                dirty_ratio,
                due,
            },
            segments,
            cleanable,
            first_dirty,
        })
    }

    /// Maps the dirty section, key → latest offset, from the first dirty offset on. Returns
    /// the map, the end (exclusive segment index) of the segments the clean rewrites, and
    /// the end of the mapped range: the next clean's first dirty offset.
    ///
    /// The budget is checked before each batch once one batch of the dirty section is
    /// mapped, so the map holds at most the budget plus one batch's keys and every clean
    /// moves the first dirty offset forward, even inside one large segment. A segment where
    /// the map filled is still rewritten whole: its records from the mapped range's end on
    /// are kept as they are (Kafka's `pastLatestOffset`) and the next clean maps from there.
    fn build_map(
        &self,
        plan: &Plan,
        budget: usize,
        throttle: &mut Throttle<'_>,
    ) -> Result<(OffsetMap, usize, i64), StorageError> {
        let mut map = OffsetMap::default();
        let first = plan.segments[plan.first_dirty].base_offset;
        let last = plan.segments[plan.cleanable].base_offset;
        let from = plan.info.first_dirty_offset.0;
        let mut txns = txn_tracker(&plan.segments, first, last);
        let mut mapped_any = false;
        for index in plan.first_dirty..plan.cleanable {
            // A log closed meanwhile (its topic deleted: `retire` waits for this clean)
            // stops here rather than at the end of a long, possibly throttled, clean.
            self.check_writable()?;
            let seg = &plan.segments[index];
            // The first batch left unmapped, and whether one of this segment came before it.
            let mut stop: Option<i64> = None;
            let mut mapped_here = false;
            let mut failed: Option<BatchError> = None;
            // A clean that stopped inside this segment left the batches before `from`
            // mapped and cleaned: the scan starts at the batch holding `from` (found through
            // the offset index, checked against the log).
            let start = if seg.base_offset < from {
                seg.find_batch(&*self.fs, from, seg.size())?
                    .map_or(seg.size(), |b| b.position)
            } else {
                0
            };
            let scanned = seg.scan_batches(start, seg.size(), |_, batch| {
                if (mapped_any || mapped_here) && map.bytes() >= budget {
                    stop = Some(batch.base_offset());
                    return Ok(ControlFlow::Break(()));
                }
                // Every batch scanned ends at or after `from` (the scan starts at the one
                // holding it), so each counts as dirty work done.
                mapped_here = true;
                if batch.is_control() {
                    let control = batch.marker().ok().flatten().map(|m| m.control_type);
                    txns.on_control(&batch, control);
                    return Ok(ControlFlow::Continue(()));
                }
                if txns.on_data(&batch) {
                    return Ok(ControlFlow::Continue(()));
                }
                let records = match batch.records() {
                    Ok(r) => r,
                    Err(e) => {
                        failed = Some(e);
                        return Ok(ControlFlow::Break(()));
                    }
                };
                for r in records.iter() {
                    match r {
                        Ok(r) => {
                            // Records below the first dirty offset were cleaned before.
                            if let (Some(key), true) = (r.key, r.offset >= from) {
                                map.put(key, r.offset);
                            }
                        }
                        Err(e) => {
                            failed = Some(e);
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if let Some(e) = failed {
                return Err(seg.corrupt(0, e.into()));
            }
            if let ScanEnd::Invalid { position, error } = scanned {
                return Err(seg.corrupt(position, error.into()));
            }
            throttle.spend(seg.size() - start);
            mapped_any |= mapped_here;
            if let Some(at) = stop {
                tracing::info!(dir = %self.dir.display(), keys = map.len(), "key map full; the clean maps up to offset {at}");
                // Full before this segment's first batch: the segment stays for the next clean.
                return Ok(if !mapped_here {
                    (map, index, seg.base_offset)
                } else {
                    (map, index + 1, at)
                });
            }
        }
        Ok((map, plan.cleanable, last))
    }

    /// Writes the cleaned copy of the group that starts at `cleaned[first]` and makes it
    /// durable, still under its `.cleaned` names. Returns the copy and the end (exclusive
    /// index) of its group.
    ///
    /// A group grows segment by segment while what the copy holds plus the whole of the next
    /// segment fits `segment.bytes`, the copy's indexes have room for the next segment's
    /// entries, and its offsets fit 32-bit relative offsets. Kafka's `groupSegmentsBySize`
    /// sums the originals' sizes instead, so its first clean of a log leaves one small
    /// segment per original, merged only at the next clean; this merges them at once, with
    /// the same bounds on every copy.
    #[allow(clippy::too_many_arguments)]
    fn copy_group(
        &self,
        config: &LogConfig,
        cleaned: &[Arc<Segment>],
        first: usize,
        walk_end: i64,
        rules: &Rules<'_>,
        txns: &mut TxnTracker,
        stats: &mut FilterStats,
        throttle: &mut Throttle<'_>,
    ) -> Result<(Segment, usize), StorageError> {
        let base = cleaned[first].base_offset;
        let interval = SegmentLimits::of(config)
            .index_interval_bytes
            .max(HEADER_SIZE as u64);
        // The copy holds at most `segment.bytes` (or the first segment, if larger, plus a
        // little: a recompressed batch can grow): nothing to reserve ahead, and indexes sized
        // for that rather than a whole `segment.index.bytes` each.
        let most = config.segment_bytes.max(cleaned[first].size());
        let entries = 2 * most / interval + 4;
        let limits = SegmentLimits {
            preallocate_bytes: 0,
            index_bytes: usize::try_from(entries * 24)
                .unwrap_or(usize::MAX)
                .min(SegmentLimits::of(config).index_bytes),
            ..SegmentLimits::of(config)
        };
        self.check_writable()?;
        let copy = Segment::create_cleaned(&*self.fs, &self.dir, base, limits, self.clock.now_ms())?;
        let mut out = CopyBuffer::default();
        // The group's last batch, emptied, when the filter drops it (see the module docs).
        let mut dropped_last: Option<Vec<u8>> = None;
        let mut next = first;
        while next < cleaned.len() {
            self.check_writable()?;
            let seg = &cleaned[next];
            if next > first {
                // Written out first, so that the copy's size and index room are exact.
                out.flush(&copy, throttle)?;
                let next_end = cleaned.get(next + 1).map_or(walk_end, |s| s.base_offset);
                if copy.size() + seg.size() > config.segment_bytes
                    || next_end - 1 - base > i64::from(i32::MAX)
                    || (copy.index_room() as u64) < seg.size() / interval + 2
                {
                    break;
                }
            }
            let mut failed: Option<StorageError> = None;
            let scanned = seg.scan_batches(0, seg.size(), |_, batch| {
                let (outcome, entry) = match rules.decide(&batch, txns, stats) {
                    Ok(d) => d,
                    Err(e) => {
                        failed = Some(seg.corrupt(0, e.into()));
                        return Ok(ControlFlow::Break(()));
                    }
                };
                dropped_last = None;
                match outcome {
                    Outcome::Original => out.push(&copy, batch.as_bytes(), throttle)?,
                    Outcome::Rebuilt(b) | Outcome::Emptied(b) => out.push(&copy, &b, throttle)?,
                    Outcome::Dropped => dropped_last = Some(empty_batch_like(&batch)),
                }
                if let Some(e) = entry {
                    copy.append_aborted(&*self.fs, e)?;
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if let ScanEnd::Invalid { position, error } = scanned {
                return Err(seg.corrupt(position, error.into()));
            }
            throttle.spend(seg.size());
            next += 1;
        }
        if let Some(b) = dropped_last {
            out.push(&copy, &b, throttle)?;
        }
        out.flush(&copy, throttle)?;
        copy.make_inactive()?;
        copy.ensure_txn_file(&*self.fs)?;
        // The `.log` and `.txnindex` must be durable before the commit; the offset and time
        // indexes need not be: the checkpoint records their checksums, and an index that
        // does not match them after a crash is rebuilt from the log.
        copy.sync_log()?;
        copy.flush_txn_index()?;
        Ok((copy, next))
    }

    /// Removes a copy that will not be used (best effort: the next open removes leftovers).
    fn discard_copy(&self, base: i64) {
        for suffix in [CLEANED_SUFFIX, SWAP_SUFFIX] {
            for p in Segment::files(&self.dir, base, suffix) {
                if self.fs.exists(&p) {
                    if let Err(e) = self.fs.remove_file(&p) {
                        tracing::warn!(path = %p.display(), error = %e, "could not remove a discarded cleaner copy");
                    }
                }
            }
        }
    }

    /// Commits `copy` and puts it in place of `group`. `Ok(false)`: the group changed since
    /// it was read (the copy is discarded, the log untouched).
    fn swap_in(&self, group: &[Arc<Segment>], copy: Segment, truncations: u64) -> Result<bool, StorageError> {
        let base = group[0].base_offset;
        let crcs = copy.index_crcs();
        drop(copy); // unmaps and closes the copy's files
        let cleaned = Segment::files(&self.dir, base, CLEANED_SUFFIX);
        let swap = Segment::files(&self.dir, base, SWAP_SUFFIX);
        // Retention and truncation, the only changes to segments below the active one, wait
        // for this: the group checked below stays as it is until installed, while appends and
        // reads go on during the commit's fsyncs.
        let _no_retention_or_truncation = self.swap_lock.lock();
        let mut w = self.writer.lock();
        let position = w.segments.iter().position(|s| Arc::ptr_eq(s, &group[0]));
        let unchanged = self.truncation_seq.load(Ordering::Acquire) == truncations
            && position.is_some_and(|p| {
                p + group.len() < w.segments.len()
                    && w.segments[p..p + group.len()]
                        .iter()
                        .zip(group)
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            });
        // Compaction turned off meanwhile (`Log::set_config`, under this lock): the copy
        // removed records a delete-only log keeps, so it is not installed (Kafka's
        // `LogManager.updateTopicConfig` aborts the cleaning the same way).
        let compacted = self.config().cleanup_policy.compact;
        let Some(position) = position.filter(|_| unchanged && compacted) else {
            drop(w);
            self.discard_copy(base);
            return Ok(false);
        };
        // A log that failed a write, or was closed (its topic deleted), changes nothing more.
        if let Err(e) = self.check_writable() {
            drop(w);
            self.discard_copy(base);
            return Err(e);
        }
        // IMPORTANT: the durable checkpoint must never name a byte position inside a segment
        // the copy replaces (a deferred roll leaves the recovery position in the rolled
        // segment until maintenance): after a crash past the commit, recovery would resume at
        // that position in the copy, whose batches lie elsewhere, and cut the log there. So
        // the position is dropped, durably, before the commit. The checkpoint a crash may
        // leave can be older than the writer's state (a checkpoint is stored after the lock
        // that built it is released, or its rename is not durable yet), so both are asked.
        let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        let in_memory = w.recovery_position.is_some_and(|(b, _)| bases.contains(&b));
        let unpositioned =
            (in_memory || self.checkpoint_written.lock().may_name_position_in(&bases)).then(|| {
                if in_memory {
                    w.recovery_position = None;
                }
                self.checkpoint_text(&w)
            });
        // Commit: the derived files first, the `.log` last, each rename durable.
        let commit = || -> Result<(), StorageError> {
            for (from, to) in cleaned[1..].iter().zip(&swap[1..]) {
                self.fs.rename(from, to).map_err(io_err("rename", to))?;
            }
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_err("fsync directory", &self.dir))?;
            self.fs
                .rename(&cleaned[0], &swap[0])
                .map_err(io_err("rename", &swap[0]))?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_err("fsync directory", &self.dir))
        };
        drop(w);
        if let Some(checkpoint) = unpositioned {
            if let Err(e) = self.store_checkpoint(checkpoint) {
                self.discard_copy(base);
                return Err(self.poison(e));
            }
        }
        if let Err(e) = commit() {
            // Whether the `.log` rename is durable is unknown: the next open decides.
            return Err(self.poison(e));
        }
        // The group's other segments go now, still outside the writer lock: retired first
        // (their lookups walk the open `.log` without an index from here on), then unlinked
        // or set aside (`file.delete.delay.ms`).
        // IMPORTANT: the deletes are durable before the copy takes the first one's name;
        // otherwise a crash could leave the copy beside originals it replaced, with no
        // `.log.swap` left to say so.
        let delete_others = || -> Result<(), StorageError> {
            for old in &group[1..] {
                self.delete_segment(old)?;
            }
            if group.len() > 1 {
                self.fs
                    .sync_dir(&self.dir)
                    .map_err(io_err("fsync directory", &self.dir))?;
            }
            Ok(())
        };
        delete_others().map_err(|e| self.poison(e))?;
        let mut w = self.writer.lock();
        // Closed meanwhile: the committed copy is installed by the next open.
        self.check_writable()?;
        let install = |w: &mut super::Writer| -> Result<(super::checkpoint::CheckpointText, Vec<Arc<Segment>>), StorageError> {
            self.retire_replaced(&group[0])?;
            let finals = Segment::files(&self.dir, base, "");
            for (from, to) in swap
                .iter()
                .zip(&finals)
                .skip(1)
                .chain(std::iter::once((&swap[0], &finals[0])))
            {
                self.fs.rename(from, to).map_err(io_err("rename", to))?;
            }
            // No directory fsync here: the checkpoint written after the lock is released ends
            // with one, and until these renames are durable an open completes them from the
            // `.swap` files.
            let (seg, _) = Segment::open(
                &*self.fs,
                &self.dir,
                base,
                self.limits(),
                self.clock.now_ms(),
                true,
                crcs,
            )?;
            let seg = Arc::new(seg);
            // The aborted transactions whose entries the copy dropped: no data of theirs is
            // left in the group, and a consumer given one of them without its marker would
            // skip the producer's later batches. They leave the in-memory index with the
            // new segment list, inside one swap sequence (readers that overlap it read
            // again, so none pairs the old segments with the new index or the reverse).
            let kept = seg.aborted_entries();
            let dropped: Vec<AbortedTxn> = group
                .iter()
                .flat_map(|s| s.aborted_entries())
                .filter(|e| !kept.contains(e))
                .collect();
            self.swap_seq.fetch_add(1, Ordering::AcqRel);
            let old: Vec<Arc<Segment>> = w
                .segments
                .splice(position..position + group.len(), [seg.clone()])
                .collect();
            *self.segments.write() = Arc::new(w.segments.clone());
            if !dropped.is_empty() {
                self.aborted.write().remove(&dropped);
            }
            self.swap_seq.fetch_add(1, Ordering::AcqRel);
            if w.recovery_position
                .is_some_and(|(b, _)| old.iter().any(|s| s.base_offset == b))
            {
                w.recovery_position = None;
            }
            let checkpoint = self.checkpoint_text(w);
            Ok((checkpoint, old))
        };
        let (checkpoint, old) = install(&mut w).map_err(|e| self.poison(e))?;
        drop(w);
        // Outside the writer lock: the checkpoint's two fsyncs, and the last close of the
        // replaced segments' files (unless a reader still holds them).
        self.store_checkpoint(checkpoint).map_err(|e| self.poison(e))?;
        drop(old);
        Ok(true)
    }
}
