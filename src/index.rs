//! Kafka's offset index (`.index`, 8-byte entries) and time index (`.timeindex`, 12-byte
//! entries), memory-mapped.
//!
//! ```text
//! .index      entry: { relativeOffset i32 | position i32 }        (offset - segment base)
//! .timeindex  entry: { timestamp i64 | relativeOffset i32 }
//! ```
//! No header and no checksum: the files are rebuilt from the log whenever they cannot be
//! trusted (unclean shutdown above the recovery point, or a failed sanity check). A file is
//! preallocated to `segment.index.bytes` while its segment is active, and trimmed to its
//! entries when the segment rolls or the log closes.

use std::{path::PathBuf, sync::Arc};

use crate::error::CorruptionDetail;
use crate::fs::StorageFile;
use crate::mmap::MmapRegion;

/// Size of an offset-index entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of a time-index entry.
pub const TIME_ENTRY_SIZE: usize = 12;
/// Bytes of the index tail that lookups search first (Kafka's "warm section").
const WARM_BYTES: usize = 8192;

/// Outcome of a failed index operation (never a panic).
#[derive(Debug)]
pub(crate) enum IndexError {
    Io(&'static str, std::io::Error),
    Corrupt(u64, CorruptionDetail),
}

/// A memory-mapped file of fixed-size entries.
#[derive(Debug)]
struct MappedEntries {
    file: Arc<dyn StorageFile>,
    map: Option<MmapRegion>,
    entry_size: usize,
    entries: usize,
    capacity: usize,
}

impl MappedEntries {
    /// Opens the file with its current entries; when `max_bytes` is given the file is resized
    /// to that capacity (active segment), else mapped at its length.
    fn open(
        file: Arc<dyn StorageFile>,
        entry_size: usize,
        max_bytes: Option<usize>,
    ) -> Result<Self, IndexError> {
        let len = file.len().map_err(|e| IndexError::Io("stat", e))?;
        if len % entry_size as u64 != 0 {
            return Err(IndexError::Corrupt(
                len,
                CorruptionDetail::Length {
                    len,
                    entry: entry_size as u64,
                },
            ));
        }
        let entries = usize::try_from(len).unwrap_or(usize::MAX) / entry_size;
        let mut me = MappedEntries {
            file,
            map: None,
            entry_size,
            entries,
            capacity: entries,
        };
        match max_bytes {
            Some(max) => me.resize(max)?,
            None => me.remap()?,
        }
        Ok(me)
    }

    fn remap(&mut self) -> Result<(), IndexError> {
        self.map = None;
        let bytes = self.capacity * self.entry_size;
        if bytes > 0 {
            self.file.before_mmap().map_err(|e| IndexError::Io("mmap", e))?;
            self.map =
                Some(MmapRegion::map(self.file.as_file(), bytes).map_err(|e| IndexError::Io("mmap", e))?);
        }
        Ok(())
    }

    /// Sets the capacity to `max_bytes` (rounded down to whole entries, never below the
    /// current entries) and remaps.
    fn resize(&mut self, max_bytes: usize) -> Result<(), IndexError> {
        let capacity = (max_bytes / self.entry_size).max(self.entries);
        // IMPORTANT: drop the map before changing the length (see the mmap contract).
        self.map = None;
        self.file
            .set_len((capacity * self.entry_size) as u64)
            .map_err(|e| IndexError::Io("resize", e))?;
        self.capacity = capacity;
        self.remap()
    }

    fn trim(&mut self) -> Result<(), IndexError> {
        if self.capacity != self.entries {
            self.resize(self.entries * self.entry_size)?;
        }
        Ok(())
    }

    fn entry(&self, i: usize) -> &[u8] {
        let start = i * self.entry_size;
        self.map
            .as_ref()
            .and_then(|m| m.as_slice().get(start..start + self.entry_size))
            .unwrap_or(&[])
    }

    fn push(&mut self, bytes: &[u8]) -> bool {
        if self.entries >= self.capacity {
            return false;
        }
        let start = self.entries * self.entry_size;
        let Some(slot) = self
            .map
            .as_mut()
            .and_then(|m| m.as_mut_slice().get_mut(start..start + bytes.len()))
        else {
            return false;
        };
        slot.copy_from_slice(bytes);
        self.entries += 1;
        true
    }

    /// Keeps the first `keep` entries and zeroes the slots of the ones dropped, so that a
    /// later recovery, which reads every slot of the file, never takes them for entries.
    fn truncate(&mut self, keep: usize) {
        if keep >= self.entries {
            return;
        }
        let (from, to) = (keep * self.entry_size, self.entries * self.entry_size);
        if let Some(dropped) = self.map.as_mut().and_then(|m| m.as_mut_slice().get_mut(from..to)) {
            for slot in dropped.chunks_mut(self.entry_size) {
                // Only written slots: a preallocated tail of zeros stays untouched (not dirtied).
                if slot.iter().any(|&b| b != 0) {
                    slot.fill(0);
                }
            }
        }
        self.entries = keep;
    }

    fn flush(&self) -> Result<(), IndexError> {
        if let Some(m) = &self.map {
            m.flush().map_err(|e| IndexError::Io("msync", e))?;
        }
        self.file.sync_data().map_err(|e| IndexError::Io("fsync", e))
    }

    /// Largest slot whose key is `<= target` (keys ascending), searching the warm tail first.
    fn floor_slot(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        let n = self.entries;
        if n == 0 || key(self.entry(0)) > target {
            return None;
        }
        let warm = n.saturating_sub(WARM_BYTES / self.entry_size);
        let (mut lo, mut hi) = if key(self.entry(warm)) <= target {
            (warm, n - 1)
        } else {
            (0, warm)
        };
        // Upper-mid binary search for the largest lower bound.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if key(self.entry(mid)) <= target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Some(lo)
    }
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, i32::from_be_bytes)
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, i64::from_be_bytes)
}

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    pub(crate) path: PathBuf,
    base_offset: i64,
    inner: MappedEntries,
}

impl OffsetIndex {
    pub(crate) fn open(
        path: PathBuf,
        file: Arc<dyn StorageFile>,
        base_offset: i64,
        max_bytes: Option<usize>,
    ) -> Result<Self, IndexError> {
        let inner = MappedEntries::open(file, OFFSET_ENTRY_SIZE, max_bytes)?;
        Ok(OffsetIndex {
            path,
            base_offset,
            inner,
        })
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.inner.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.inner.entries >= self.inner.capacity
    }

    /// The last entry, `(offset, position)`.
    pub(crate) fn last_entry(&self) -> Option<(i64, u32)> {
        self.inner.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// The last entry whose position is at most `max_position` and whose offset is below
    /// `below`. Entries grow in both, so the entries that qualify are a prefix.
    pub(crate) fn last_entry_within(&self, max_position: u64, below: i64) -> Option<(i64, u32)> {
        let max_position = i64::try_from(max_position).unwrap_or(i64::MAX);
        let by_position = self
            .inner
            .floor_slot(max_position, |e| i64::from(be_i32(e, 4) as u32))?;
        let by_offset = self.inner.floor_slot(below.saturating_sub(1), |e| {
            self.base_offset + i64::from(be_i32(e, 0))
        })?;
        Some(self.entry(by_position.min(by_offset)))
    }

    /// Entry `i` as (absolute offset, position).
    pub(crate) fn entry(&self, i: usize) -> (i64, u32) {
        let e = self.inner.entry(i);
        (self.base_offset + i64::from(be_i32(e, 0)), be_i32(e, 4) as u32)
    }

    pub(crate) fn last_offset(&self) -> Option<i64> {
        self.inner.entries.checked_sub(1).map(|i| self.entry(i).0)
    }

    /// Appends (offset, position). Refuses (returns false) a non-increasing offset, an offset
    /// that does not fit the relative range, or a full index.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> bool {
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) || position > i32::MAX as u32 {
            return false;
        }
        if self.last_offset().is_some_and(|last| offset <= last) {
            return false;
        }
        let mut e = [0u8; OFFSET_ENTRY_SIZE];
        e[..4].copy_from_slice(&(rel as i32).to_be_bytes());
        e[4..].copy_from_slice(&(position as i32).to_be_bytes());
        self.inner.push(&e)
    }

    /// The floor entry for `target`: (offset, position), or (base, 0).
    pub(crate) fn lookup(&self, target: i64) -> (i64, u32) {
        match self
            .inner
            .floor_slot(target, |e| self.base_offset + i64::from(be_i32(e, 0)))
        {
            Some(slot) => self.entry(slot),
            None => (self.base_offset, 0),
        }
    }

    /// Removes every entry with offset >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = match self
            .inner
            .floor_slot(offset, |e| self.base_offset + i64::from(be_i32(e, 0)))
        {
            None => 0,
            Some(slot) if self.entry(slot).0 == offset => slot,
            Some(slot) => slot + 1,
        };
        self.inner.truncate(keep);
    }

    pub(crate) fn reset(&mut self) {
        self.inner.truncate(0);
    }

    /// Keeps the longest prefix of entries that is plausible below (`offset`, `position`):
    /// strictly increasing, inside the segment, never at position 0 (the first batch of a
    /// segment is never indexed). Used when recovery resumes mid-segment.
    pub(crate) fn keep_valid_prefix(&mut self, offset: i64, position: u64) {
        let mut keep = 0;
        let mut prev: Option<(i64, u32)> = None;
        while keep < self.inner.entries {
            let (o, p) = self.entry(keep);
            let ok = o >= self.base_offset
                && o < offset
                && p > 0
                && u64::from(p) < position
                && prev.is_none_or(|(po, pp)| o > po && p > pp);
            if !ok {
                break;
            }
            prev = Some((o, p));
            keep += 1;
        }
        self.inner.truncate(keep);
    }

    pub(crate) fn trim(&mut self) -> Result<(), IndexError> {
        self.inner.trim()
    }

    pub(crate) fn resize(&mut self, max_bytes: usize) -> Result<(), IndexError> {
        self.inner.resize(max_bytes)
    }

    pub(crate) fn flush(&self) -> Result<(), IndexError> {
        self.inner.flush()
    }

    /// Kafka's sanity check plus ours: offsets strictly increase, stay within the segment's
    /// relative range, and positions increase and stay inside the log file.
    pub(crate) fn check(&self, log_size: u64) -> Result<(), (u64, CorruptionDetail)> {
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..self.inner.entries {
            let (off, pos) = self.entry(i);
            let bad = off < self.base_offset
                || u64::from(pos) >= log_size.max(1)
                || prev.is_some_and(|(po, pp)| off <= po || pos <= pp);
            if bad {
                return Err((
                    (i * OFFSET_ENTRY_SIZE) as u64,
                    CorruptionDetail::Invalid("offset index entries out of order or out of range"),
                ));
            }
            prev = Some((off, pos));
        }
        Ok(())
    }
}

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    pub(crate) path: PathBuf,
    base_offset: i64,
    inner: MappedEntries,
}

impl TimeIndex {
    pub(crate) fn open(
        path: PathBuf,
        file: Arc<dyn StorageFile>,
        base_offset: i64,
        max_bytes: Option<usize>,
    ) -> Result<Self, IndexError> {
        let inner = MappedEntries::open(file, TIME_ENTRY_SIZE, max_bytes)?;
        Ok(TimeIndex {
            path,
            base_offset,
            inner,
        })
    }

    /// Full when only the slot reserved for the final entry is left.
    pub(crate) fn is_full(&self) -> bool {
        self.inner.entries + 1 >= self.inner.capacity
    }

    /// Entry `i` as (timestamp, absolute offset).
    pub(crate) fn entry(&self, i: usize) -> (i64, i64) {
        let e = self.inner.entry(i);
        (be_i64(e, 0), self.base_offset + i64::from(be_i32(e, 8)))
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.inner.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends (timestamp, offset) when the timestamp is larger than the last entry's and the
    /// offset not smaller. `final_entry` may use the reserved last slot.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, final_entry: bool) -> bool {
        if !final_entry && self.is_full() {
            return false;
        }
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return false;
        }
        if let Some((ts, off)) = self.last_entry() {
            if timestamp <= ts || offset < off {
                return false;
            }
        }
        let mut e = [0u8; TIME_ENTRY_SIZE];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&(rel as i32).to_be_bytes());
        self.inner.push(&e)
    }

    /// The floor entry for `timestamp`: (timestamp, offset), or (-1, base).
    pub(crate) fn lookup(&self, timestamp: i64) -> (i64, i64) {
        match self.inner.floor_slot(timestamp, |e| be_i64(e, 0)) {
            Some(slot) => self.entry(slot),
            None => (-1, self.base_offset),
        }
    }

    /// Removes every entry with offset >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.inner.entries;
        while keep > 0 && self.entry(keep - 1).1 >= offset {
            keep -= 1;
        }
        self.inner.truncate(keep);
    }

    pub(crate) fn reset(&mut self) {
        self.inner.truncate(0);
    }

    /// Keeps the longest prefix of increasing entries whose offsets lie below `offset`.
    pub(crate) fn keep_valid_prefix(&mut self, offset: i64) {
        let mut keep = 0;
        let mut prev: Option<(i64, i64)> = None;
        while keep < self.inner.entries {
            let (ts, o) = self.entry(keep);
            // An all-zero slot (timestamp 0 at the base offset) is preallocated space that was
            // never written, not an entry.
            let unwritten = ts == 0 && o == self.base_offset;
            let ok = !unwritten
                && o >= self.base_offset
                && o < offset
                && prev.is_none_or(|(pt, po)| ts > pt && o >= po);
            if !ok {
                break;
            }
            prev = Some((ts, o));
            keep += 1;
        }
        self.inner.truncate(keep);
    }

    pub(crate) fn trim(&mut self) -> Result<(), IndexError> {
        self.inner.trim()
    }

    pub(crate) fn resize(&mut self, max_bytes: usize) -> Result<(), IndexError> {
        self.inner.resize(max_bytes)
    }

    pub(crate) fn flush(&self) -> Result<(), IndexError> {
        self.inner.flush()
    }

    pub(crate) fn check(&self) -> Result<(), (u64, CorruptionDetail)> {
        let mut prev: Option<(i64, i64)> = None;
        for i in 0..self.inner.entries {
            let (ts, off) = self.entry(i);
            if off < self.base_offset || prev.is_some_and(|(pt, po)| ts <= pt || off < po) {
                return Err((
                    (i * TIME_ENTRY_SIZE) as u64,
                    CorruptionDetail::Invalid("time index entries out of order"),
                ));
            }
            prev = Some((ts, off));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, StdFileSystem};

    fn open_offset(dir: &std::path::Path, base: i64, max: usize) -> OffsetIndex {
        let p = dir.join("x.index");
        let f = StdFileSystem.open(&p, true).expect("open");
        OffsetIndex::open(p, f, base, Some(max)).expect("index")
    }

    #[test]
    fn offset_lookup_extremes_and_truncate() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = open_offset(dir.path(), 45, 30 * 8);
        assert_eq!(idx.lookup(100), (45, 0));
        for i in 0..30u32 {
            assert!(idx.append(45 + i64::from(i) * 2, i * 10));
        }
        assert!(idx.is_full());
        assert!(!idx.append(1000, 999));
        assert_eq!(idx.lookup(44), (45, 0));
        assert_eq!(idx.lookup(45), (45, 0));
        assert_eq!(idx.lookup(46), (45, 0));
        assert_eq!(idx.lookup(47), (47, 10));
        assert_eq!(idx.lookup(i64::MAX), (45 + 58, 290));
        idx.truncate_to(47);
        assert_eq!(idx.entries(), 1);
        idx.truncate_to(46);
        assert_eq!(idx.entries(), 1);
        idx.truncate_to(45);
        assert_eq!(idx.entries(), 0);
        assert!(!idx.append(40, 0), "below base");
    }

    #[test]
    fn offset_random_lookup_matches_linear_scan() {
        let dir = tempfile::tempdir().expect("tmp");
        // More entries than the warm section so both halves of the search run.
        let mut idx = open_offset(dir.path(), 0, 5000 * 8);
        let mut entries = Vec::new();
        let mut off = 0i64;
        for i in 0..4000u32 {
            off += 1 + i64::from(i % 7);
            assert!(idx.append(off, i * 3 + 1));
            entries.push((off, i * 3 + 1));
        }
        for target in (-5..off + 5).step_by(3) {
            let expected = entries
                .iter()
                .rev()
                .find(|(o, _)| *o <= target)
                .copied()
                .unwrap_or((0, 0));
            assert_eq!(idx.lookup(target), expected, "target {target}");
        }
    }

    #[test]
    fn time_index_rules() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.timeindex");
        let f = StdFileSystem.open(&p, true).expect("open");
        let mut t = TimeIndex::open(p, f, 100, Some(4 * 12)).expect("index");
        assert_eq!(t.lookup(5), (-1, 100));
        assert!(t.maybe_append(10, 101, false));
        assert!(!t.maybe_append(10, 102, false), "equal timestamp skipped");
        assert!(!t.maybe_append(20, 100, false), "lower offset refused");
        assert!(t.maybe_append(20, 105, false));
        assert!(t.maybe_append(30, 110, false));
        assert!(t.is_full());
        assert!(!t.maybe_append(40, 111, false));
        assert!(
            t.maybe_append(40, 111, true),
            "final entry uses the reserved slot"
        );
        assert_eq!(t.lookup(25), (20, 105));
        assert_eq!(t.lookup(9), (-1, 100));
        t.truncate_to(105);
        assert_eq!(t.last_entry(), Some((10, 101)));
    }

    #[test]
    fn trim_and_reopen_keeps_entries() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = open_offset(dir.path(), 0, 1024);
        assert!(idx.append(3, 100));
        assert!(idx.append(9, 200));
        idx.trim().expect("trim");
        drop(idx);
        let p = dir.path().join("x.index");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 16);
        let f = StdFileSystem.open(&p, false).expect("open");
        let idx = OffsetIndex::open(p, f, 0, None).expect("reopen");
        assert_eq!(idx.lookup(10), (9, 200));
        assert!(idx.check(1000).is_ok());
        assert!(idx.check(150).is_err(), "position beyond the log is corrupt");
    }
}
