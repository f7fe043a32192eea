//! Fetches: whole batches up to the isolation's bound, with the aborted transactions a
//! read_committed fetch carries, and offsets by timestamp.

use std::{
    fs::File,
    ops::ControlFlow,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
};

use crate::error::{ReadError, StorageError};
use crate::fs::StorageFile;
use crate::segment::{BatchInfo, Segment};
use crate::types::{Offset, ProducerId};

use super::Log;

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
    /// (possibly empty), in increasing first offset; `None` for other isolations.
    ///
    /// Kafka lists them in the order of their ABORT markers. A client that walks the list
    /// alongside the records, as kafkajs 2.2.4 does, then misses an aborted transaction
    /// that started before an earlier-listed one and delivers its records; the Java client
    /// and librdkafka sort the list themselves, so the order changes nothing for them.
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

impl Log {
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
        self.racing_truncations(|| self.read_once(from, max_bytes, isolation))
    }

    /// Runs a read, again if a truncation ([`Log::truncate_to`],
    /// [`Log::truncate_fully_and_start_at`]) ran meanwhile: a batch cut from under a read is
    /// not corruption, and bytes appended after a truncation must not be served against the
    /// bounds read before it. The truncation sequence is odd while one runs; a read that
    /// starts then first waits for it (by taking the writer lock it holds, then releasing
    /// it). Each retry follows a truncation by another thread, so the loop ends.
    pub(super) fn racing_truncations<T, E>(&self, read: impl Fn() -> Result<T, E>) -> Result<T, E> {
        // A clean's install of a copy counts too: its new segments and the aborted
        // transactions it dropped change together (`swap_seq`, odd while it runs).
        let seqs = || {
            (
                self.truncation_seq.load(Ordering::Acquire),
                self.swap_seq.load(Ordering::Acquire),
            )
        };
        loop {
            let before = seqs();
            if before.0 % 2 == 1 || before.1 % 2 == 1 {
                drop(self.writer.lock());
                continue;
            }
            let result = read();
            if seqs() == before {
                return result;
            }
            tracing::debug!("a read overlapped a truncation or a clean's install; reading again");
        }
    }

    pub(super) fn read_once(
        &self,
        from: Offset,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchResult, ReadError> {
        // Read the bounds once (KAFKA-9807): every bound below derives from this pair.
        let (lso, hw) = self.stable_bounds();
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
                    // The index is in marker order; the list goes out in first-offset order
                    // (see `ReadResult::aborted_transactions`).
                    list.sort_unstable_by_key(|a| a.first_offset);
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
    pub(super) fn fetch_end(
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
        self.racing_truncations(|| self.offset_for_timestamp_once(timestamp, isolation))
    }

    /// The end of what `isolation` reads: the last stable offset, the high watermark, or
    /// the log end.
    fn visible_bound(&self, isolation: Isolation) -> i64 {
        let (lso, hw) = self.stable_bounds();
        match isolation {
            Isolation::ReadCommitted => lso,
            Isolation::ReadUncommitted => hw,
            Isolation::Replica => self.log_end.load(Ordering::Acquire),
        }
    }

    /// Kafka's ListOffsets MAX_TIMESTAMP (-3): the offset and timestamp of the first record
    /// carrying the largest timestamp in the log, whatever it is (data or a transaction
    /// marker, committed or aborted), as Kafka's `UnifiedLog.fetchOffsetByTimestamp` finds
    /// it: the segment with the largest timestamp, in it the first batch and the first
    /// record with that timestamp. `None` when that record is not below the isolation's
    /// bound (the last stable offset, or the high watermark), as Kafka's
    /// `Partition.fetchOffsetForTimestamp` answers, or when no record has a timestamp.
    /// Unlike Kafka, records below the log start offset (left by DeleteRecords in its
    /// first segment) are not considered. Reads one segment's headers in the usual case:
    /// each segment keeps its largest timestamp.
    ///
    /// # Errors
    /// Storage failures.
    pub fn offset_of_max_timestamp(&self, isolation: Isolation) -> Result<Option<(Offset, i64)>, ReadError> {
        self.racing_truncations(|| self.offset_of_max_timestamp_once(isolation))
    }

    fn offset_of_max_timestamp_once(&self, isolation: Isolation) -> Result<Option<(Offset, i64)>, ReadError> {
        let bound = self.visible_bound(isolation);
        let start = self.log_start.load(Ordering::Acquire);
        let segs = self.segments.read().clone();
        // The first of the largest wins, as Kafka's `maxBy` keeps it. A segment holding
        // records below the log start is read from the log start for its maximum.
        let mut straddling: Option<(i64, i64)> = None;
        let mut whole: Option<(i64, usize)> = None;
        for (i, seg) in segs.iter().enumerate() {
            if seg.base_offset < start {
                if let Some((ts, offset)) = seg.max_timestamp_from(&*self.fs, start)? {
                    if straddling.is_none_or(|(best, _)| ts > best) && whole.is_none_or(|(best, _)| ts > best)
                    {
                        straddling = Some((ts, offset));
                    }
                }
                continue;
            }
            let ts = seg.max_timestamp(&*self.fs)?;
            if ts >= 0
                && whole.is_none_or(|(best, _)| ts > best)
                && straddling.is_none_or(|(best, _)| ts > best)
            {
                whole = Some((ts, i));
            }
        }
        let found = match whole {
            Some((ts, i)) => segs[i]
                .find_offset_by_timestamp(&*self.fs, ts, start)?
                .map(|(offset, ts)| (ts, offset)),
            None => straddling,
        };
        Ok(found.and_then(|(ts, offset)| (offset < bound).then_some((Offset(offset), ts))))
    }

    fn offset_for_timestamp_once(
        &self,
        timestamp: i64,
        isolation: Isolation,
    ) -> Result<Option<(Offset, i64)>, ReadError> {
        let bound = self.visible_bound(isolation);
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
}
