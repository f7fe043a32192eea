//! Kafka's offset index (`.index`, 8-byte entries) and time index (`.timeindex`, 12-byte
//! entries).
//!
//! ```text
//! .index      entry: { relativeOffset i32 | position i32 }        (offset - segment base)
//! .timeindex  entry: { timestamp i64 | relativeOffset i32 }
//! ```
//! No header and no checksum: the files are rebuilt from the log whenever they cannot be
//! trusted (unclean shutdown above the recovery point, a missing file, a failed sanity
//! check).
//!
//! Where the entries live depends on the segment's state:
//! - **active** (written): the file is preallocated to `segment.index.bytes` and
//!   memory-mapped; entries are written through the map. This is the only memory map eoslog
//!   makes (see `mmap.rs` for its contract).
//! - **inactive** (read only): the file is trimmed to its entries and read with `pread`.
//!   Memory holds the first entry of every 4 KiB block and the last entry; a lookup
//!   binary-searches those in memory and reads the one block that holds the answer. No
//!   other process can make a read of an inactive index fault: a file truncated under it
//!   gives a short read, which is an error the caller handles.
//!
//! Both index types share [`Index`]; what differs (the entry layout and the rules entries
//! obey) is the [`Entry`] implementation.

use std::{io, marker::PhantomData, path::PathBuf, sync::Arc};

use crate::batch::crc32c;
use crate::codec::{be_i32, be_i64};
use crate::error::CorruptionDetail;
use crate::fs::StorageFile;
use crate::mmap::MmapRegion;

/// Size of an offset-index entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of a time-index entry.
pub const TIME_ENTRY_SIZE: usize = 12;
/// The largest entry.
const MAX_ENTRY: usize = TIME_ENTRY_SIZE;
/// Bytes of a mapped index's tail that lookups search first (Kafka's "warm section").
const WARM_BYTES: usize = 8192;
/// A read-only index is read in blocks of this many bytes: memory keeps each block's first
/// entry, and a lookup reads one block.
const BLOCK_BYTES: usize = 4096;

/// Outcome of a failed index operation (never a panic).
#[derive(Debug)]
pub(crate) enum IndexError {
    Io(&'static str, io::Error),
    Corrupt(u64, CorruptionDetail),
}

/// One entry kind: its size, layout and ordering rule.
pub(crate) trait Entry: Copy + PartialEq + std::fmt::Debug {
    /// Bytes per entry on disk.
    const SIZE: usize;
    /// Decodes an entry of a segment with base offset `base` (`raw` holds at least `SIZE`
    /// bytes).
    fn decode(raw: &[u8], base: i64) -> Self;
    /// Encodes the entry, or `None` when it cannot be stored (offset outside the segment's
    /// relative range, position too large).
    fn encode(&self, base: i64) -> Option<[u8; MAX_ENTRY]>;
    /// The absolute offset the entry names.
    fn offset(&self) -> i64;
    /// Whether the entry may follow `prev` in the file.
    fn follows(&self, prev: &Self) -> bool;
    /// Whether the entry can belong to a segment with base `base` whose log is `log_size`
    /// bytes long.
    fn in_range(&self, base: i64, log_size: u64) -> bool;
}

/// An offset-index entry: the batch that starts at `position` ends at `offset` or later
/// (Kafka indexes the last offset of the append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY_SIZE;
    // Format: { relativeOffset i32 | position i32 }
    fn decode(raw: &[u8], base: i64) -> Self {
        OffsetEntry {
            offset: base + i64::from(be_i32(raw, 0).unwrap_or(0)),
            position: be_i32(raw, 4).unwrap_or(0) as u32,
        }
    }
    fn encode(&self, base: i64) -> Option<[u8; MAX_ENTRY]> {
        let rel = i32::try_from(self.offset.checked_sub(base)?)
            .ok()
            .filter(|r| *r >= 0)?;
        let position = i32::try_from(self.position).ok()?;
        let mut e = [0u8; MAX_ENTRY];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..8].copy_from_slice(&position.to_be_bytes());
        Some(e)
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn follows(&self, prev: &Self) -> bool {
        self.offset > prev.offset && self.position > prev.position
    }
    fn in_range(&self, base: i64, log_size: u64) -> bool {
        // Kafka's sanity check plus ours: never at position 0 (a segment's first batch is
        // never indexed) and inside the log file.
        self.offset >= base && self.position > 0 && u64::from(self.position) < log_size
    }
}

/// A time-index entry: every record with a timestamp above `timestamp` lies at `offset` or
/// later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

impl Entry for TimeEntry {
    const SIZE: usize = TIME_ENTRY_SIZE;
    // Format: { timestamp i64 | relativeOffset i32 }
    fn decode(raw: &[u8], base: i64) -> Self {
        TimeEntry {
            timestamp: be_i64(raw, 0).unwrap_or(0),
            offset: base + i64::from(be_i32(raw, 8).unwrap_or(0)),
        }
    }
    fn encode(&self, base: i64) -> Option<[u8; MAX_ENTRY]> {
        let rel = i32::try_from(self.offset.checked_sub(base)?)
            .ok()
            .filter(|r| *r >= 0)?;
        let mut e = [0u8; MAX_ENTRY];
        e[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        e[8..12].copy_from_slice(&rel.to_be_bytes());
        Some(e)
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.offset >= prev.offset
    }
    fn in_range(&self, base: i64, _log_size: u64) -> bool {
        self.offset >= base
    }
}

/// Where the entries are.
#[derive(Debug)]
enum Store {
    /// A writable map of `capacity` entries (none when the capacity is 0).
    Mapped {
        map: Option<MmapRegion>,
        capacity: usize,
    },
    /// Read with `pread`; `summary` holds the first entry of every block.
    Read { summary: Vec<u8> },
}

/// An index file of one segment.
#[derive(Debug)]
pub(crate) struct Index<E: Entry> {
    pub(crate) path: PathBuf,
    base_offset: i64,
    file: Arc<dyn StorageFile>,
    /// Entries in use.
    len: usize,
    /// The last entry in use.
    last: Option<E>,
    store: Store,
    /// CRC-32C of the file's entries, once read-only (the checkpoint records it, and the next
    /// load of the file must find the same).
    crc: Option<u32>,
    _entry: PhantomData<E>,
}

/// The offset index of one segment.
pub(crate) type OffsetIndex = Index<OffsetEntry>;
/// The time index of one segment.
pub(crate) type TimeIndex = Index<TimeEntry>;

fn io(op: &'static str) -> impl FnOnce(io::Error) -> IndexError {
    move |e| IndexError::Io(op, e)
}

/// Reads exactly `buf.len()` bytes at `pos`; a short file is an error, never a fault.
fn read_exact_at(file: &dyn StorageFile, buf: &mut [u8], pos: u64) -> Result<(), IndexError> {
    let mut done = 0;
    while done < buf.len() {
        let n = file
            .read_at(&mut buf[done..], pos + done as u64)
            .map_err(io("read"))?;
        if n == 0 {
            return Err(IndexError::Io(
                "read",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "index file shorter than its entries",
                ),
            ));
        }
        done += n;
    }
    Ok(())
}

impl<E: Entry> Index<E> {
    /// Opens the file for writing: resized to `max_bytes` (whole entries, never below the
    /// entries in it) and mapped. The entries in use are the file's whole length when
    /// opened (a trimmed file) or none after [`Index::reset`].
    pub(crate) fn open_mapped(
        path: PathBuf,
        file: Arc<dyn StorageFile>,
        base_offset: i64,
        max_bytes: usize,
    ) -> Result<Self, IndexError> {
        let len = Self::whole_entries(&*file)?;
        let mut index = Index {
            path,
            base_offset,
            file,
            len,
            last: None,
            store: Store::Mapped {
                map: None,
                capacity: 0,
            },
            crc: None,
            _entry: PhantomData,
        };
        index.map(max_bytes)?;
        index.last = index.len.checked_sub(1).map(|i| index.mapped_entry(i));
        Ok(index)
    }

    /// Opens the file read-only, checking every entry against the ordering rules and the
    /// segment (`log_size` bytes of log), and the entries' CRC-32C against `expected_crc`
    /// when one was recorded: an index that fails is reported as corrupt.
    pub(crate) fn open_read(
        path: PathBuf,
        file: Arc<dyn StorageFile>,
        base_offset: i64,
        log_size: u64,
        expected_crc: Option<u32>,
    ) -> Result<Self, IndexError> {
        let len = Self::whole_entries(&*file)?;
        let scanned = scan_file::<E>(&*file, len, base_offset, log_size)?;
        if let Some(stored) = expected_crc.filter(|&c| c != scanned.crc) {
            return Err(IndexError::Corrupt(
                0,
                CorruptionDetail::Checksum {
                    stored,
                    computed: scanned.crc,
                },
            ));
        }
        let Scanned { summary, last, crc } = scanned;
        Ok(Index {
            path,
            base_offset,
            file,
            len,
            last,
            store: Store::Read { summary },
            crc: Some(crc),
            _entry: PhantomData,
        })
    }

    /// The number of whole entries in the file; a partial entry makes the index corrupt.
    fn whole_entries(file: &dyn StorageFile) -> Result<usize, IndexError> {
        let bytes = file.len().map_err(io("stat"))?;
        if bytes % E::SIZE as u64 != 0 {
            return Err(IndexError::Corrupt(
                bytes - bytes % E::SIZE as u64,
                CorruptionDetail::Length {
                    len: bytes,
                    entry: E::SIZE as u64,
                },
            ));
        }
        usize::try_from(bytes / E::SIZE as u64).map_err(|_| {
            IndexError::Corrupt(
                0,
                CorruptionDetail::Length {
                    len: bytes,
                    entry: E::SIZE as u64,
                },
            )
        })
    }

    /// Sizes the file to `max_bytes` of capacity and maps it for writing.
    fn map(&mut self, max_bytes: usize) -> Result<(), IndexError> {
        let capacity = (max_bytes / E::SIZE).max(self.len);
        // IMPORTANT: drop any map before changing the length (see the mmap contract).
        self.store = Store::Mapped {
            map: None,
            capacity: 0,
        };
        self.file
            .set_len((capacity * E::SIZE) as u64)
            .map_err(io("resize"))?;
        let map = if capacity > 0 {
            self.file.before_mmap().map_err(io("mmap"))?;
            Some(MmapRegion::map(self.file.as_file(), capacity * E::SIZE).map_err(io("mmap"))?)
        } else {
            None
        };
        self.store = Store::Mapped { map, capacity };
        Ok(())
    }

    /// Makes the index writable again (a segment becoming active): capacity `max_bytes`.
    pub(crate) fn make_writable(&mut self, max_bytes: usize) -> Result<(), IndexError> {
        self.crc = None;
        self.map(max_bytes)
    }

    /// CRC-32C of a read-only index's entries (`None` while writable).
    pub(crate) fn crc(&self) -> Option<u32> {
        self.crc
    }

    /// Trims the file to its entries and switches to `pread` (a segment becoming inactive).
    pub(crate) fn make_read_only(&mut self) -> Result<(), IndexError> {
        let (summary, crc) = match &self.store {
            Store::Read { .. } => return Ok(()),
            Store::Mapped { map, .. } => {
                let bytes = map.as_ref().map_or(&[][..], |m| m.as_slice());
                let entries = bytes.get(..self.len * E::SIZE).unwrap_or(&[]);
                (summarize::<E>(entries), crc32c(entries))
            }
        };
        // IMPORTANT: unmap before shrinking the file.
        self.store = Store::Read { summary };
        self.crc = Some(crc);
        self.file.set_len((self.len * E::SIZE) as u64).map_err(io("trim"))
    }

    /// Whether the index is written through a map (an active segment's).
    pub(crate) fn is_writable(&self) -> bool {
        matches!(self.store, Store::Mapped { .. })
    }

    /// Entries in use.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn capacity(&self) -> usize {
        match self.store {
            Store::Mapped { capacity, .. } => capacity,
            Store::Read { .. } => self.len,
        }
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<E> {
        self.last
    }

    fn mapped_bytes(&self) -> &[u8] {
        match &self.store {
            Store::Mapped { map: Some(m), .. } => m.as_slice(),
            _ => &[],
        }
    }

    /// Entry `i` of a mapped index.
    fn mapped_entry(&self, i: usize) -> E {
        let bytes = self.mapped_bytes();
        E::decode(bytes.get(i * E::SIZE..).unwrap_or(&[]), self.base_offset)
    }

    /// Appends `e` if it follows the last entry and a slot is free (`reserve` slots stay
    /// free for later). Returns whether it was written.
    fn push(&mut self, e: E, reserve: usize) -> bool {
        if self.len + reserve >= self.capacity() || self.last.is_some_and(|l| !e.follows(&l)) {
            return false;
        }
        let Some(raw) = e.encode(self.base_offset) else {
            return false;
        };
        let start = self.len * E::SIZE;
        let Store::Mapped { map: Some(map), .. } = &mut self.store else {
            return false;
        };
        let Some(slot) = map.as_mut_slice().get_mut(start..start + E::SIZE) else {
            return false;
        };
        slot.copy_from_slice(&raw[..E::SIZE]);
        self.len += 1;
        self.last = Some(e);
        true
    }

    /// Keeps the first `keep` entries of a mapped index and zeroes the slots of the ones
    /// dropped, so that a later recovery, which reads every slot of the file, never takes
    /// them for entries. Only a writable (mapped) index is ever cut.
    fn cut(&mut self, keep: usize) {
        if keep >= self.len {
            return;
        }
        debug_assert!(self.is_writable(), "an inactive index is never cut");
        let (from, to) = (keep * E::SIZE, self.len * E::SIZE);
        if let Store::Mapped { map: Some(map), .. } = &mut self.store {
            if let Some(dropped) = map.as_mut_slice().get_mut(from..to) {
                for slot in dropped.chunks_mut(E::SIZE) {
                    // Only written slots: a preallocated tail of zeros stays untouched.
                    if slot.iter().any(|&b| b != 0) {
                        slot.fill(0);
                    }
                }
            }
        }
        self.len = keep;
        self.last = keep.checked_sub(1).map(|i| self.mapped_entry(i));
    }

    /// Drops every entry.
    pub(crate) fn reset(&mut self) {
        self.cut(0);
    }

    /// Removes every entry with offset >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), IndexError> {
        let keep = self
            .floor(offset.saturating_sub(1), E::offset)?
            .map_or(0, |(slot, _)| slot + 1);
        self.cut(keep);
        Ok(())
    }

    /// Keeps the longest prefix of entries that are in range, ordered, below `offset` and
    /// pass `plausible` (used when recovery resumes mid-segment).
    fn keep_prefix(&mut self, offset: i64, log_size: u64, plausible: impl Fn(&E) -> bool) {
        let mut keep = 0;
        let mut prev: Option<E> = None;
        while keep < self.len {
            let e = self.mapped_entry(keep);
            let ok = plausible(&e)
                && e.in_range(self.base_offset, log_size)
                && e.offset() < offset
                && prev.is_none_or(|p| e.follows(&p));
            if !ok {
                break;
            }
            prev = Some(e);
            keep += 1;
        }
        self.cut(keep);
    }

    /// msyncs a mapped index and fsyncs the file.
    pub(crate) fn flush(&self) -> Result<(), IndexError> {
        if let Store::Mapped { map: Some(m), .. } = &self.store {
            m.flush().map_err(io("msync"))?;
        }
        self.file.sync_data().map_err(io("fsync"))
    }

    /// Checks the entries in use against the ordering rules and the segment.
    pub(crate) fn check(&self, log_size: u64) -> Result<(), (u64, CorruptionDetail)> {
        match &self.store {
            Store::Mapped { .. } => check_entries::<E>(
                self.mapped_bytes().get(..self.len * E::SIZE).unwrap_or(&[]),
                self.base_offset,
                log_size,
            ),
            Store::Read { .. } => {
                // The file as it is now: the same length, entries and checksum as when it
                // became read-only.
                let len = self.file.len().unwrap_or(0);
                if len != (self.len * E::SIZE) as u64 {
                    return Err((
                        len.min((self.len * E::SIZE) as u64),
                        CorruptionDetail::Invalid("index file length changed while in use"),
                    ));
                }
                let scanned = scan_file::<E>(&*self.file, self.len, self.base_offset, log_size).map_err(
                    |e| match e {
                        IndexError::Corrupt(at, detail) => (at, detail),
                        IndexError::Io(..) => (
                            0,
                            CorruptionDetail::Invalid("index file unreadable or shorter than its entries"),
                        ),
                    },
                )?;
                match self.crc.filter(|&c| c != scanned.crc) {
                    Some(stored) => Err((
                        0,
                        CorruptionDetail::Checksum {
                            stored,
                            computed: scanned.crc,
                        },
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The largest slot whose key is `<= target` (keys ascending), with its entry.
    pub(crate) fn floor(
        &self,
        target: i64,
        key: impl Fn(&E) -> i64,
    ) -> Result<Option<(usize, E)>, IndexError> {
        let n = self.len;
        match &self.store {
            Store::Mapped { .. } => {
                let k = |i: usize| key(&self.mapped_entry(i));
                if n == 0 || k(0) > target {
                    return Ok(None);
                }
                let warm = n.saturating_sub(WARM_BYTES / E::SIZE);
                let (lo, hi) = if k(warm) <= target {
                    (warm, n - 1)
                } else {
                    (0, warm)
                };
                let slot = floor_between(lo, hi, target, k);
                Ok(Some((slot, self.mapped_entry(slot))))
            }
            Store::Read { summary } => {
                let per_block = BLOCK_BYTES / E::SIZE;
                let blocks = summary.len() / E::SIZE;
                let first_of = |b: usize| key(&E::decode(&summary[b * E::SIZE..], self.base_offset));
                if blocks == 0 || first_of(0) > target {
                    return Ok(None);
                }
                let block = floor_between(0, blocks - 1, target, first_of);
                let first = block * per_block;
                let count = per_block.min(n - first);
                let mut buf = [0u8; BLOCK_BYTES];
                let bytes = &mut buf[..count * E::SIZE];
                read_exact_at(&*self.file, bytes, (first * E::SIZE) as u64)?;
                // The block must still begin with the entry the summary was built from: a
                // file rewritten underneath is an error, never a wrong answer.
                if bytes[..E::SIZE] != summary[block * E::SIZE..(block + 1) * E::SIZE] {
                    return Err(IndexError::Corrupt(
                        (first * E::SIZE) as u64,
                        CorruptionDetail::Invalid("index file changed while in use"),
                    ));
                }
                let entry = |i: usize| E::decode(&bytes[i * E::SIZE..], self.base_offset);
                let i = floor_between(0, count - 1, target, |i| key(&entry(i)));
                Ok(Some((first + i, entry(i))))
            }
        }
    }
}

/// The largest `i` in `lo..=hi` with `key(i) <= target`, given `key(lo) <= target` and keys
/// ascending.
fn floor_between(mut lo: usize, mut hi: usize, target: i64, key: impl Fn(usize) -> i64) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if key(mid) <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The first entry of every block of `bytes`.
fn summarize<E: Entry>(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks(BLOCK_BYTES / E::SIZE * E::SIZE)
        .flat_map(|block| block.get(..E::SIZE).unwrap_or(&[]).iter().copied())
        .collect()
}

/// Checks every entry of `bytes`: in range and ordered.
fn check_entries<E: Entry>(bytes: &[u8], base: i64, log_size: u64) -> Result<(), (u64, CorruptionDetail)> {
    let mut prev: Option<E> = None;
    for (i, raw) in bytes.chunks_exact(E::SIZE).enumerate() {
        let e = E::decode(raw, base);
        if !e.in_range(base, log_size) || prev.is_some_and(|p| !e.follows(&p)) {
            return Err((
                (i * E::SIZE) as u64,
                CorruptionDetail::Invalid("index entries out of order or out of range"),
            ));
        }
        prev = Some(e);
    }
    Ok(())
}

/// What one pass over an index file finds.
struct Scanned<E> {
    /// The first entry of every block.
    summary: Vec<u8>,
    last: Option<E>,
    crc: u32,
}

/// Reads the `len` entries of an index file in chunks (never the whole file at once),
/// checking each entry (in range and ordered), and returns the block summary, the last entry
/// and the checksum. A file with more entries than its segment can have (every entry names
/// a distinct batch position inside the `.log`, plus a final time entry) is refused before
/// anything is read, so a huge or sparse file costs neither memory nor reading.
fn scan_file<E: Entry>(
    file: &dyn StorageFile,
    len: usize,
    base: i64,
    log_size: u64,
) -> Result<Scanned<E>, IndexError> {
    if len as u64 > log_size.saturating_add(1) {
        return Err(IndexError::Corrupt(
            0,
            CorruptionDetail::Invalid("index has more entries than its segment has bytes"),
        ));
    }
    const CHUNK_BLOCKS: usize = 16;
    let per_block = BLOCK_BYTES / E::SIZE;
    let mut buf = vec![0u8; CHUNK_BLOCKS * per_block * E::SIZE];
    let mut digest = crate::batch::Crc32cDigest::new();
    let mut summary = Vec::with_capacity(len.div_ceil(per_block) * E::SIZE);
    let mut prev_chunk_last: Option<E> = None;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK_BLOCKS * per_block);
        let bytes = &mut buf[..n * E::SIZE];
        read_exact_at(file, bytes, (done * E::SIZE) as u64)?;
        digest.update(bytes);
        let first = E::decode(bytes, base);
        if prev_chunk_last.is_some_and(|p| !first.follows(&p)) {
            return Err(IndexError::Corrupt(
                (done * E::SIZE) as u64,
                CorruptionDetail::Invalid("index entries out of order or out of range"),
            ));
        }
        check_entries::<E>(bytes, base, log_size)
            .map_err(|(at, d)| IndexError::Corrupt(at + (done * E::SIZE) as u64, d))?;
        summary.extend(summarize::<E>(bytes));
        prev_chunk_last = Some(E::decode(&bytes[(n - 1) * E::SIZE..], base));
        done += n;
    }
    Ok(Scanned {
        summary,
        last: prev_chunk_last,
        crc: digest.value(),
    })
}

impl Index<OffsetEntry> {
    /// Full: no slot left for another entry.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity()
    }

    /// Entries it can still take.
    pub(crate) fn room(&self) -> usize {
        self.capacity().saturating_sub(self.len)
    }

    /// Appends (offset, position); refuses (false) an entry that does not follow the last,
    /// does not fit the relative range, or a full index.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> bool {
        self.push(OffsetEntry { offset, position }, 0)
    }

    /// The floor entry for `target`: (offset, position), or (base, 0).
    pub(crate) fn lookup(&self, target: i64) -> Result<(i64, u32), IndexError> {
        Ok(match self.floor(target, |e| e.offset)? {
            Some((_, e)) => (e.offset, e.position),
            None => (self.base_offset, 0),
        })
    }

    /// The last entry whose position is at most `max_position` and whose offset is below
    /// `below`. Entries grow in both, so the entries that qualify are a prefix.
    pub(crate) fn last_entry_within(
        &self,
        max_position: u64,
        below: i64,
    ) -> Result<Option<OffsetEntry>, IndexError> {
        let max_position = i64::try_from(max_position).unwrap_or(i64::MAX);
        let Some(by_position) = self.floor(max_position, |e| i64::from(e.position))? else {
            return Ok(None);
        };
        let Some(by_offset) = self.floor(below.saturating_sub(1), |e| e.offset)? else {
            return Ok(None);
        };
        Ok(Some(if by_position.0 <= by_offset.0 {
            by_position.1
        } else {
            by_offset.1
        }))
    }

    /// Keeps the longest plausible prefix below (`offset`, `position`) (recovery resuming
    /// mid-segment).
    pub(crate) fn keep_valid_prefix(&mut self, offset: i64, position: u64) {
        self.keep_prefix(offset, position, |_| true);
    }
}

impl Index<TimeEntry> {
    /// Full when only the slot reserved for the final entry is left.
    pub(crate) fn is_full(&self) -> bool {
        self.len + 1 >= self.capacity()
    }

    /// Entries it can still take, besides the slot reserved for the final entry.
    pub(crate) fn room(&self) -> usize {
        self.capacity().saturating_sub(self.len + 1)
    }

    /// Appends (timestamp, offset) when the timestamp is larger than the last entry's and the
    /// offset not smaller. `final_entry` may use the reserved last slot.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, final_entry: bool) -> bool {
        self.push(TimeEntry { timestamp, offset }, usize::from(!final_entry))
    }

    /// The floor entry for `timestamp`: (timestamp, offset), or (-1, base).
    pub(crate) fn lookup(&self, timestamp: i64) -> Result<(i64, i64), IndexError> {
        Ok(match self.floor(timestamp, |e| e.timestamp)? {
            Some((_, e)) => (e.timestamp, e.offset),
            None => (-1, self.base_offset),
        })
    }

    /// Keeps the longest prefix of increasing entries whose offsets lie below `offset`.
    pub(crate) fn keep_valid_prefix(&mut self, offset: i64) {
        let base = self.base_offset;
        // An all-zero slot (timestamp 0 at the base offset) is preallocated space that was
        // never written, not an entry.
        self.keep_prefix(offset, u64::MAX, |e| !(e.timestamp == 0 && e.offset == base));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, StdFileSystem};

    fn open_offset(dir: &std::path::Path, base: i64, max: usize) -> OffsetIndex {
        let p = dir.join("x.index");
        let f = StdFileSystem.open(&p, true).expect("open");
        OffsetIndex::open_mapped(p, f, base, max).expect("index")
    }

    fn reopen_read(dir: &std::path::Path, base: i64, log_size: u64) -> Result<OffsetIndex, IndexError> {
        let p = dir.join("x.index");
        let f = StdFileSystem.open(&p, false).expect("open");
        OffsetIndex::open_read(p, f, base, log_size, None)
    }

    #[test]
    fn offset_lookup_extremes_and_truncate() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = open_offset(dir.path(), 45, 30 * 8);
        assert_eq!(idx.lookup(100).expect("lookup"), (45, 0));
        for i in 0..30u32 {
            assert!(idx.append(45 + i64::from(i) * 2, i * 10 + 1));
        }
        assert!(idx.is_full());
        assert!(!idx.append(1000, 999));
        assert_eq!(idx.lookup(44).expect("lookup"), (45, 0));
        assert_eq!(idx.lookup(45).expect("lookup"), (45, 1));
        assert_eq!(idx.lookup(46).expect("lookup"), (45, 1));
        assert_eq!(idx.lookup(47).expect("lookup"), (47, 11));
        assert_eq!(idx.lookup(i64::MAX).expect("lookup"), (45 + 58, 291));
        idx.truncate_to(48).expect("truncate");
        assert_eq!(idx.len(), 2);
        idx.truncate_to(47).expect("truncate");
        assert_eq!(idx.len(), 1);
        idx.truncate_to(45).expect("truncate");
        assert_eq!(idx.len(), 0);
        assert!(!idx.append(40, 1), "below base");
    }

    /// Lookups answer the same through the map and through `pread` (several blocks, so the
    /// in-memory summary and the block read both run), and match a linear scan.
    #[test]
    fn random_lookups_match_a_linear_scan_mapped_and_read_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = open_offset(dir.path(), 0, 5000 * 8);
        let mut entries = Vec::new();
        let mut off = 0i64;
        for i in 0..4000u32 {
            off += 1 + i64::from(i % 7);
            assert!(idx.append(off, i * 3 + 1));
            entries.push((off, i * 3 + 1));
        }
        let log_size = 4000 * 3 + 10;
        let check = |idx: &OffsetIndex| {
            for target in (-5..off + 5).step_by(3) {
                let expected = entries
                    .iter()
                    .rev()
                    .find(|(o, _)| *o <= target)
                    .copied()
                    .unwrap_or((0, 0));
                assert_eq!(idx.lookup(target).expect("lookup"), expected, "target {target}");
            }
            for max_position in [0u64, 1, 2, 500, 4000, 11_999, 20_000] {
                let expected = entries
                    .iter()
                    .rev()
                    .find(|(o, p)| u64::from(*p) <= max_position && *o < 3000)
                    .map(|&(offset, position)| OffsetEntry { offset, position });
                assert_eq!(
                    idx.last_entry_within(max_position, 3000).expect("within"),
                    expected
                );
            }
        };
        check(&idx);
        idx.make_read_only().expect("read only");
        assert!(!idx.is_writable());
        check(&idx);
        drop(idx);
        let reopened = reopen_read(dir.path(), 0, log_size).expect("reopen");
        check(&reopened);
        assert!(reopened.check(log_size).is_ok());
    }

    #[test]
    fn time_index_rules() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.timeindex");
        let f = StdFileSystem.open(&p, true).expect("open");
        let mut t = TimeIndex::open_mapped(p, f, 100, 4 * 12).expect("index");
        assert_eq!(t.lookup(5).expect("lookup"), (-1, 100));
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
        assert_eq!(t.lookup(25).expect("lookup"), (20, 105));
        assert_eq!(t.lookup(9).expect("lookup"), (-1, 100));
        t.truncate_to(105).expect("truncate");
        assert_eq!(
            t.last(),
            Some(TimeEntry {
                timestamp: 10,
                offset: 101
            })
        );
    }

    #[test]
    fn read_only_index_is_trimmed_checked_and_survives_a_shortened_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = open_offset(dir.path(), 0, 1024);
        assert!(idx.append(3, 100));
        assert!(idx.append(9, 200));
        idx.make_read_only().expect("trim");
        let p = dir.path().join("x.index");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 16);
        assert_eq!(idx.lookup(10).expect("lookup"), (9, 200));
        // Another process shortens the file: a lookup that needs it fails with an error
        // instead of faulting.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open")
            .set_len(4)
            .expect("shorten");
        assert!(matches!(idx.lookup(10), Err(IndexError::Io(..))));
        drop(idx);
        assert!(matches!(
            reopen_read(dir.path(), 0, 1000),
            Err(IndexError::Corrupt(..))
        ));
        std::fs::write(&p, [0, 0, 0, 3, 0, 0, 0, 100, 0, 0, 0, 9, 0, 0, 0, 200]).expect("write");
        let crc = reopen_read(dir.path(), 0, 1000)
            .expect("sane")
            .crc()
            .expect("read-only crc");
        // Plausible entries that are not the ones whose checksum was recorded: corrupt.
        std::fs::write(&p, [0, 0, 0, 3, 0, 0, 0, 100, 0, 0, 0, 8, 0, 0, 0, 200]).expect("write");
        let f = StdFileSystem.open(&p, false).expect("open");
        assert!(matches!(
            OffsetIndex::open_read(p.clone(), f, 0, 1000, Some(crc)),
            Err(IndexError::Corrupt(0, CorruptionDetail::Checksum { .. }))
        ));
        std::fs::write(&p, [0, 0, 0, 3, 0, 0, 0, 100, 0, 0, 0, 9, 0, 0, 0, 200]).expect("write");
        assert!(
            matches!(reopen_read(dir.path(), 0, 150), Err(IndexError::Corrupt(8, _))),
            "a position beyond the log is corrupt"
        );
    }
}
