//! Kafka's transaction index (`.txnindex`): one 34-byte entry per aborted transaction whose
//! ABORT marker lies in the segment.
//!
//! ```text
//! Format: { version i16 = 0 | producerId i64 | firstOffset i64 | lastOffset i64
//!         | lastStableOffset i64 }
//! ```
//! Entries are sorted by `lastOffset` (the marker offset). The file is created on the first
//! abort, written with positional writes (no mmap), and holds no checksum: it is rebuilt from
//! the log on recovery. eoslog also keeps every entry of the log in memory, sorted, so a
//! read_committed fetch finds its aborted transactions by binary search
//! (see [`AbortedIndex`]) instead of scanning files as Kafka does.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::codec::Reader;
use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, FileSystem, StorageFile};

/// Size of one entry.
pub const ENTRY_SIZE: usize = 34;

/// An aborted transaction: producer, first data offset, marker offset, and the LSO when the
/// marker was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction's data (may be in an earlier segment).
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// Last stable offset when the marker was appended (Kafka's early-stop bound).
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    // Format: { version i16 | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64 }
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<(i16, AbortedTxn)> {
        let mut r = Reader::new(b);
        let version = r.i16()?;
        Some((
            version,
            AbortedTxn {
                producer_id: r.i64()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                last_stable_offset: r.i64()?,
            },
        ))
    }
}

/// What a `.txnindex` file holds: its whole entries, checked, and whether a partial entry
/// follows them (a write torn by a crash).
#[derive(Debug)]
pub(crate) struct TxnEntries {
    pub(crate) entries: Vec<AbortedTxn>,
    pub(crate) torn_tail: bool,
}

/// Reads and checks every entry of a `.txnindex` file, changing nothing. Entries out of
/// order or outside the segment make the file damaged; a partial entry at the end is
/// reported as `torn_tail` (the caller decides whether a crash explains it).
pub(crate) fn read_entries(
    file: &dyn StorageFile,
    path: &Path,
    base_offset: i64,
) -> Result<TxnEntries, StorageError> {
    let bytes = read_all(file).map_err(|e| StorageError::io("read", path, e))?;
    let corrupt = |position: usize, detail| -> StorageError {
        Corruption {
            path: path.to_path_buf(),
            kind: FileKind::TxnIndex,
            position: position as u64,
            detail,
        }
        .into()
    };
    let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
    for (i, chunk) in bytes.chunks_exact(ENTRY_SIZE).enumerate() {
        let at = i * ENTRY_SIZE;
        let Some((version, e)) = AbortedTxn::decode(chunk) else {
            return Err(corrupt(at, CorruptionDetail::Invalid("short entry")));
        };
        if version != 0 {
            return Err(corrupt(
                at,
                CorruptionDetail::Invalid("unsupported txn index version"),
            ));
        }
        if e.last_offset < base_offset
            || entries.last().is_some_and(|p| e.last_offset <= p.last_offset)
            || e.first_offset > e.last_offset
        {
            return Err(corrupt(
                at,
                CorruptionDetail::Invalid("txn index entry out of order or below the segment base"),
            ));
        }
        entries.push(e);
    }
    Ok(TxnEntries {
        entries,
        torn_tail: bytes.len() % ENTRY_SIZE != 0,
    })
}

/// The `.txnindex` file of one segment (created lazily).
#[derive(Debug)]
pub(crate) struct TxnIndexFile {
    pub(crate) path: PathBuf,
    file: Option<Arc<dyn StorageFile>>,
    /// Entries in the file (mirrors its content).
    pub(crate) entries: Vec<AbortedTxn>,
    /// `prefix_crcs[i]`: CRC-32C of the bytes of `entries[..=i]` (what the checkpoint
    /// records), kept as entries come and go so that a checkpoint costs no re-encoding.
    prefix_crcs: Vec<u32>,
    /// A partial entry follows the entries in the file; the next cut removes it.
    pub(crate) torn_tail: bool,
    base_offset: i64,
}

impl TxnIndexFile {
    /// Opens an existing index, or remembers the path for lazy creation. Damaged entries are
    /// reported (see [`read_entries`]); a partial last entry is kept in the file until the
    /// next cut, and reported in `torn_tail`.
    pub(crate) fn open(fs: &dyn FileSystem, path: PathBuf, base_offset: i64) -> Result<Self, StorageError> {
        let file = if fs.exists(&path) {
            Some(
                fs.open(&path, false)
                    .map_err(|e| StorageError::io("open", &path, e))?,
            )
        } else {
            None
        };
        let read = match &file {
            Some(f) => read_entries(&**f, &path, base_offset)?,
            None => TxnEntries {
                entries: Vec::new(),
                torn_tail: false,
            },
        };
        let mut me = TxnIndexFile {
            path,
            file,
            entries: Vec::with_capacity(read.entries.len()),
            prefix_crcs: Vec::with_capacity(read.entries.len()),
            torn_tail: read.torn_tail,
            base_offset,
        };
        for e in read.entries {
            me.push(e);
        }
        Ok(me)
    }

    fn push(&mut self, e: AbortedTxn) {
        let crc = crate::batch::crc32c(&e.encode());
        let prefix = match self.prefix_crcs.last() {
            Some(&before) => crate::batch::crc32c_combine(before, crc, ENTRY_SIZE as u64),
            None => crc,
        };
        self.entries.push(e);
        self.prefix_crcs.push(prefix);
    }

    /// Appends an entry; its `last_offset` must exceed the previous one.
    pub(crate) fn append(&mut self, fs: &dyn FileSystem, e: AbortedTxn) -> Result<(), StorageError> {
        if e.last_offset < self.base_offset
            || self
                .entries
                .last()
                .is_some_and(|p| e.last_offset <= p.last_offset)
        {
            return Err(Corruption {
                path: self.path.clone(),
                kind: FileKind::TxnIndex,
                position: (self.entries.len() * ENTRY_SIZE) as u64,
                detail: CorruptionDetail::Invalid("txn index append out of order"),
            }
            .into());
        }
        let file = match &self.file {
            Some(f) => f.clone(),
            None => {
                let f = fs
                    .open(&self.path, true)
                    .map_err(|e| StorageError::io("create", &self.path, e))?;
                self.file = Some(f.clone());
                f
            }
        };
        file.write_all_at(&e.encode(), (self.entries.len() * ENTRY_SIZE) as u64)
            .map_err(|err| StorageError::io("write", &self.path, err))?;
        self.push(e);
        Ok(())
    }

    /// How many entries have their marker below `offset`, and the CRC-32C of their bytes in
    /// the file (0 for none, the CRC of no bytes).
    pub(crate) fn summary_below(&self, offset: i64) -> (usize, u32) {
        let n = self.entries.partition_point(|e| e.last_offset < offset);
        (n, n.checked_sub(1).map_or(0, |i| self.prefix_crcs[i]))
    }

    /// Cuts at the first entry with `last_offset >= offset` (and removes a torn tail).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep < self.entries.len() || self.torn_tail {
            self.entries.truncate(keep);
            self.prefix_crcs.truncate(keep);
            self.torn_tail = false;
            if let Some(f) = &self.file {
                f.set_len((keep * ENTRY_SIZE) as u64)
                    .map_err(|e| StorageError::io("truncate", &self.path, e))?;
            }
        }
        Ok(())
    }

    pub(crate) fn reset(&mut self) -> Result<(), StorageError> {
        self.truncate_to(i64::MIN)
    }

    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        if let Some(f) = &self.file {
            f.sync_data()
                .map_err(|e| StorageError::io("fsync", &self.path, e))?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn exists(&self) -> bool {
        self.file.is_some()
    }
}

/// Every aborted transaction of the log, in marker order, in memory.
///
/// Answers Kafka's aborted-transaction query for a fetch of `[fetch_offset, upper_bound)` in
/// O(log n + k): a binary search for the first entry with `last_offset >= fetch_offset`, then a
/// walk that stops after the first entry whose `last_stable_offset >= upper_bound`, where k is
/// the number of entries visited (a long-open transaction that pins the stored LSOs makes the
/// walk longer). Kafka stops at the same entry. Why stopping there is exact: an entry `s` with
/// LSO >= U was written when no *other* producer had a transaction open below U; a later
/// entry overlapping `[.., U)` would need a transaction open at `s`'s marker that started
/// below U, which would have made `s`'s LSO smaller. (As in Kafka, a single multi-batch
/// append that both completes one transaction and opens others is the one case where the
/// argument does not hold; the client filter tolerates the resulting superset or gap exactly
/// as it does with Kafka.) See docs/FORMAT.md §2.5.
///
/// The marker offsets are also kept in their own dense column: the binary search then touches
/// 8-byte keys instead of 32-byte entries (a quarter of the cache lines on a large index).
#[derive(Debug, Default)]
pub(crate) struct AbortedIndex {
    last_offsets: Vec<i64>,
    entries: Vec<AbortedTxn>,
}

impl AbortedIndex {
    pub(crate) fn push(&mut self, e: AbortedTxn) {
        debug_assert!(self.last_offsets.last().is_none_or(|&p| p < e.last_offset));
        self.last_offsets.push(e.last_offset);
        self.entries.push(e);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn all(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Drops entries whose marker is at or after `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = self.last_offsets.partition_point(|&l| l < offset);
        self.last_offsets.truncate(keep);
        self.entries.truncate(keep);
    }

    /// Drops entries whose marker is below `offset` (their segments were deleted).
    pub(crate) fn drop_below(&mut self, offset: i64) {
        let cut = self.last_offsets.partition_point(|&l| l < offset);
        self.last_offsets.drain(..cut);
        self.entries.drain(..cut);
    }

    /// Drops these entries (a clean removed their data and their markers' entries).
    pub(crate) fn remove(&mut self, gone: &[AbortedTxn]) {
        let gone: std::collections::HashSet<(i64, i64)> =
            gone.iter().map(|e| (e.producer_id, e.last_offset)).collect();
        self.entries
            .retain(|e| !gone.contains(&(e.producer_id, e.last_offset)));
        self.last_offsets = self.entries.iter().map(|e| e.last_offset).collect();
    }

    pub(crate) fn clear(&mut self) {
        self.last_offsets.clear();
        self.entries.clear();
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_bound)`.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<AbortedTxn>) {
        self.for_each_overlapping(fetch_offset, upper_bound, |e| out.push(*e));
    }

    /// Visits the aborted transactions overlapping `[fetch_offset, upper_bound)` in index order.
    pub(crate) fn for_each_overlapping(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        mut visit: impl FnMut(&AbortedTxn),
    ) {
        let start = self.last_offsets.partition_point(|&l| l < fetch_offset);
        for e in self.entries.get(start..).unwrap_or(&[]) {
            if e.first_offset < upper_bound {
                visit(e);
            }
            // An L above the marker + 1 cannot be right: a transaction open at the marker
            // started before it. Kafka's followers write such an L (FORMAT.md §2.5), and so
            // did eoslog's before; the marker + 1 is then the true one.
            if e.last_stable_offset.min(e.last_offset + 1) >= upper_bound {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFileSystem;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_is_34_bytes_big_endian() {
        let b = txn(1, 2, 3, 4).encode();
        assert_eq!(b.len(), 34);
        assert_eq!(&b[0..2], &[0, 0]);
        assert_eq!(&b[2..10], &1i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&b), Some((0, txn(1, 2, 3, 4))));
    }

    #[test]
    fn append_order_truncate_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let fs = StdFileSystem;
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut idx = TxnIndexFile::open(&fs, path.clone(), 0).expect("open");
        assert!(!idx.exists());
        idx.append(&fs, txn(0, 0, 10, 11)).expect("append");
        idx.append(&fs, txn(1, 5, 50, 51)).expect("append");
        assert!(idx.append(&fs, txn(2, 5, 50, 51)).is_err(), "equal last offset");
        assert!(
            idx.append(&fs, txn(2, 5, 40, 51)).is_err(),
            "decreasing last offset"
        );
        idx.truncate_to(51).expect("t");
        assert_eq!(idx.entries.len(), 2);
        idx.truncate_to(50).expect("t");
        assert_eq!(idx.entries.len(), 1);
        drop(idx);
        let mut idx = TxnIndexFile::open(&fs, path.clone(), 0).expect("reopen");
        assert_eq!(idx.entries, vec![txn(0, 0, 10, 11)]);
        idx.append(&fs, txn(3, 20, 60, 61)).expect("append after reopen");
        assert_eq!(std::fs::metadata(&path).expect("m").len(), 68);
        let whole = std::fs::read(&path).expect("read");
        assert_eq!(idx.summary_below(i64::MAX), (2, crate::batch::crc32c(&whole)));
        assert_eq!(idx.summary_below(20), (1, crate::batch::crc32c(&whole[..34])));
        assert_eq!(idx.summary_below(0), (0, 0));
        drop(idx);
        // A torn last entry is reported, kept until the next cut, then removed.
        std::fs::write(&path, &whole[..34 + 10]).expect("tear");
        let mut idx = TxnIndexFile::open(&fs, path.clone(), 0).expect("torn");
        assert!(idx.torn_tail);
        assert_eq!(idx.entries.len(), 1);
        idx.truncate_to(i64::MAX).expect("cut");
        assert_eq!(std::fs::metadata(&path).expect("m").len(), 34);
        drop(idx);
        std::fs::write(&path, &whole).expect("restore");
        // An index whose entries lie below its segment base is corrupt.
        assert!(TxnIndexFile::open(&fs, path, 100).is_err());
    }

    #[test]
    fn collect_matches_kafka_semantics() {
        let mut a = AbortedIndex::default();
        // Kafka's ULT.testTransactionIndexUpdated values.
        a.push(txn(1, 0, 29, 8));
        a.push(txn(2, 8, 74, 36));
        a.push(txn(3, 80, 90, 91));
        let mut out = Vec::new();
        a.collect(0, 30, &mut out);
        assert_eq!(out, vec![txn(1, 0, 29, 8), txn(2, 8, 74, 36)]);
        out.clear();
        a.collect(75, 100, &mut out);
        assert_eq!(out, vec![txn(3, 80, 90, 91)]);
        out.clear();
        a.collect(30, 80, &mut out);
        assert_eq!(out, vec![txn(2, 8, 74, 36)]);
    }
}
