//! Producer-state snapshot files (`<20-digit end offset>.snapshot`): Kafka's version-1
//! layout, followed by up to two eoslog sections: each producer's whole dedup window, and
//! the completed transactions whose markers were not yet below the high watermark.
//!
//! ```text
//! Format: { version i16 = 1 | crc u32 | count i32 | entry * count | window? | unreplicated? }
//! entry:  { producerId i64 | epoch i16 | lastSequence i32 | lastOffset i64
//!         | offsetDelta i32 | timestamp i64 | coordinatorEpoch i32 | currentTxnFirstOffset i64 }
//! window: { magic "EOSLOGW1" | count i32
//!         | { producerId i64 | n i16 | { lastSequence i32 | lastOffset i64 | offsetDelta i32
//!                                      | timestamp i64 } * n } * count }
//!         (the whole window, oldest first, of each producer Kafka's entry cannot describe)
//! unreplicated: { magic "EOSLOGU1" | count i32 | { firstOffset i64 | lastOffset i64 } * count }
//!         (completed transactions, by increasing firstOffset, whose marker (lastOffset) was
//!          at or above the high watermark when the snapshot was taken)
//! crc = CRC-32C over [count, end of file)
//! ```
//! Kafka's loader reads the fields of its schema and ignores bytes after the entry array, and
//! its CRC covers everything to the end of the file, so a Kafka broker loads these files (it
//! sees each producer's last batch, as it always does). eoslog reads both sections: every
//! batch of the dedup window, not just the last, survives a restart, and a transaction whose
//! marker was not yet replicated keeps holding the last stable offset back after a restart
//! (Kafka forgets it when the marker lies below the snapshot).

use crate::batch::crc32c;
use crate::codec::Reader;
use crate::error::CorruptionDetail;

/// Kafka's snapshot version.
pub const SNAPSHOT_VERSION: i16 = 1;
const VERSION_OFFSET: usize = 0;
const CRC_OFFSET: usize = VERSION_OFFSET + 2;
const COUNT_OFFSET: usize = CRC_OFFSET + 4;
const ENTRIES_OFFSET: usize = COUNT_OFFSET + 4;
/// Size of one Kafka snapshot entry.
pub const ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
const TRAILER_MAGIC: &[u8; 8] = b"EOSLOGW1";
const UNREPLICATED_MAGIC: &[u8; 8] = b"EOSLOGU1";
const WINDOW_ENTRY_SIZE: usize = 4 + 8 + 4 + 8;

/// A decoded snapshot file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// The producers, in file order (least recently used first when eoslog wrote it).
    pub entries: Vec<SnapshotEntry>,
    /// Completed transactions whose marker was not yet below the high watermark, by
    /// increasing first offset.
    pub unreplicated: Vec<UnreplicatedTxn>,
}

/// A completed transaction whose marker was at or above the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreplicatedTxn {
    /// First offset of the transaction.
    pub first_offset: i64,
    /// Offset of its marker.
    pub last_offset: i64,
}

/// One batch of a producer's dedup window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotBatch {
    /// Last sequence of the batch.
    pub last_seq: i32,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// `last_offset - first_offset`.
    pub offset_delta: i32,
    /// The batch's max timestamp.
    pub timestamp: i64,
}

/// One producer in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// Producer id.
    pub producer_id: i64,
    /// Epoch.
    pub epoch: i16,
    /// Coordinator epoch of the last marker (-1 if none).
    pub coordinator_epoch: i32,
    /// The producer's last timestamp.
    pub last_timestamp: i64,
    /// First offset of the open transaction, -1 if none.
    pub txn_first_offset: i64,
    /// The dedup window, oldest first (possibly empty).
    pub batches: Vec<SnapshotBatch>,
}

/// A producer goes into the trailer when Kafka's entry cannot hold its window: more than one
/// batch, or a last batch whose timestamp differs from the producer's last timestamp (Kafka's
/// entry has one timestamp field for both).
fn needs_trailer(e: &SnapshotEntry) -> bool {
    e.batches.len() > 1 || e.batches.last().is_some_and(|b| b.timestamp != e.last_timestamp)
}

/// Encodes a snapshot.
#[must_use]
pub fn encode(snapshot: &ProducerSnapshot) -> Vec<u8> {
    let entries = &snapshot.entries;
    let window_extra: usize = entries
        .iter()
        .filter(|e| needs_trailer(e))
        .map(|e| 10 + e.batches.len() * WINDOW_ENTRY_SIZE)
        .sum();
    let unreplicated_extra = 12 + snapshot.unreplicated.len() * 16;
    let mut out = Vec::with_capacity(
        ENTRIES_OFFSET + entries.len() * ENTRY_SIZE + 12 + window_extra + unreplicated_extra,
    );
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries.iter() {
        let last = e.batches.last();
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&last.map_or(-1, |b| b.last_seq).to_be_bytes());
        out.extend_from_slice(&last.map_or(-1, |b| b.last_offset).to_be_bytes());
        out.extend_from_slice(&last.map_or(0, |b| b.offset_delta).to_be_bytes());
        out.extend_from_slice(&e.last_timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.txn_first_offset.to_be_bytes());
    }
    let windowed: Vec<&SnapshotEntry> = entries.iter().filter(|e| needs_trailer(e)).collect();
    if !windowed.is_empty() {
        out.extend_from_slice(TRAILER_MAGIC);
        out.extend_from_slice(&(windowed.len() as i32).to_be_bytes());
        for e in windowed {
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&(e.batches.len() as i16).to_be_bytes());
            for b in &e.batches {
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.offset_delta.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
    }
    if !snapshot.unreplicated.is_empty() {
        out.extend_from_slice(UNREPLICATED_MAGIC);
        out.extend_from_slice(&(snapshot.unreplicated.len() as i32).to_be_bytes());
        for t in &snapshot.unreplicated {
            out.extend_from_slice(&t.first_offset.to_be_bytes());
            out.extend_from_slice(&t.last_offset.to_be_bytes());
        }
    }
    let crc = crc32c(&out[COUNT_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a snapshot; errors carry the byte position of the problem.
///
/// # Errors
/// A bad version, CRC, length or trailer.
pub fn decode(buf: &[u8]) -> Result<ProducerSnapshot, (u64, CorruptionDetail)> {
    let mut r = Reader::new(buf);
    let short = |pos: usize| (pos as u64, CorruptionDetail::Invalid("snapshot truncated"));
    let version = r.i16().ok_or(short(0))?;
    if version != SNAPSHOT_VERSION {
        return Err((0, CorruptionDetail::Invalid("unknown snapshot version")));
    }
    let stored = r.i32().ok_or(short(CRC_OFFSET))? as u32;
    let computed = crc32c(buf.get(COUNT_OFFSET..).unwrap_or(&[]));
    if stored != computed {
        return Err((CRC_OFFSET as u64, CorruptionDetail::Checksum { stored, computed }));
    }
    let count = r.i32().ok_or(short(COUNT_OFFSET))?;
    if count < 0 || count as usize > (buf.len() - ENTRIES_OFFSET) / ENTRY_SIZE {
        return Err((
            COUNT_OFFSET as u64,
            CorruptionDetail::Invalid("snapshot entry count out of range"),
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = r.pos;
        let mut field = || r.i64().ok_or(short(at));
        let producer_id = field()?;
        let epoch = r.i16().ok_or(short(at))?;
        let last_seq = r.i32().ok_or(short(at))?;
        let last_offset = r.i64().ok_or(short(at))?;
        let offset_delta = r.i32().ok_or(short(at))?;
        let timestamp = r.i64().ok_or(short(at))?;
        let coordinator_epoch = r.i32().ok_or(short(at))?;
        let txn_first_offset = r.i64().ok_or(short(at))?;
        if last_offset >= 0 && (offset_delta < 0 || last_offset < i64::from(offset_delta)) {
            return Err((
                at as u64,
                CorruptionDetail::Invalid("snapshot entry offsets out of range"),
            ));
        }
        let batches = if last_offset >= 0 {
            vec![SnapshotBatch {
                last_seq,
                last_offset,
                offset_delta,
                timestamp,
            }]
        } else {
            Vec::new()
        };
        entries.push(SnapshotEntry {
            producer_id,
            epoch,
            coordinator_epoch,
            last_timestamp: timestamp,
            txn_first_offset,
            batches,
        });
    }
    let mut magic = r.take::<8>();
    if magic.as_ref() == Some(TRAILER_MAGIC) {
        read_windows(&mut r, &mut entries)?;
        magic = r.take::<8>();
    }
    let mut unreplicated = Vec::new();
    if magic.as_ref() == Some(UNREPLICATED_MAGIC) {
        unreplicated = read_unreplicated(&mut r)?;
        magic = None;
    }
    if magic.is_some() || r.pos != buf.len() {
        let at = if magic.is_some() { r.pos - 8 } else { r.pos };
        return Err((
            at as u64,
            CorruptionDetail::Invalid("unknown bytes after snapshot entries"),
        ));
    }
    Ok(ProducerSnapshot {
        entries,
        unreplicated,
    })
}

/// Reads the window section (after its magic) into `entries`.
fn read_windows(r: &mut Reader<'_>, entries: &mut [SnapshotEntry]) -> Result<(), (u64, CorruptionDetail)> {
    let short = |pos: usize| (pos as u64, CorruptionDetail::Invalid("snapshot truncated"));
    let at = r.pos - 8;
    let n = r.i32().ok_or(short(at))?;
    if n < 0 || n as usize > entries.len() {
        return Err((
            at as u64,
            CorruptionDetail::Invalid("window trailer count out of range"),
        ));
    }
    // Each window names its producer. eoslog writes the windows in the order of the entries,
    // so the next entry is found by looking a few entries ahead of the last one; a file in any
    // other order (written by something else, or crafted) falls back to a map built once. A
    // plain search of the entries per window made reopening a log with a million windowed
    // producers quadratic.
    let mut finder = EntryFinder::default();
    for _ in 0..n {
        let at = r.pos;
        let pid = r.i64().ok_or(short(at))?;
        let k = r.i16().ok_or(short(at))?;
        if k < 0 {
            return Err((at as u64, CorruptionDetail::Invalid("negative window length")));
        }
        let mut window: Vec<SnapshotBatch> = Vec::with_capacity(k as usize);
        for _ in 0..k {
            let b = SnapshotBatch {
                last_seq: r.i32().ok_or(short(at))?,
                last_offset: r.i64().ok_or(short(at))?,
                offset_delta: r.i32().ok_or(short(at))?,
                timestamp: r.i64().ok_or(short(at))?,
            };
            let sane = b.offset_delta >= 0
                && b.last_offset >= i64::from(b.offset_delta)
                && window
                    .last()
                    .is_none_or(|p| p.last_offset < b.last_offset - i64::from(b.offset_delta));
            if !sane {
                return Err((
                    at as u64,
                    CorruptionDetail::Invalid("window batch offsets out of order"),
                ));
            }
            window.push(b);
        }
        let Some(entry) = finder.find(entries, pid).and_then(|i| entries.get_mut(i)) else {
            return Err((
                at as u64,
                CorruptionDetail::Invalid("window for an unknown producer"),
            ));
        };
        // The window ends with the batch Kafka's entry names (if it names one).
        let consistent = match (entry.batches.last(), window.last()) {
            (Some(e), Some(w)) => {
                e.last_seq == w.last_seq && e.last_offset == w.last_offset && e.offset_delta == w.offset_delta
            }
            (None, None) => true,
            _ => false,
        };
        if !consistent {
            return Err((
                at as u64,
                CorruptionDetail::Invalid("window disagrees with the snapshot entry"),
            ));
        }
        entry.batches = window;
    }
    Ok(())
}

/// Finds a producer's entry by id: a short forward search from the last one found (the
/// order eoslog writes), else a map of every entry, built the first time it is needed.
#[derive(Default)]
struct EntryFinder {
    next: usize,
    by_pid: Option<hashbrown::HashMap<i64, usize, foldhash::fast::RandomState>>,
}

impl EntryFinder {
    /// How far ahead of the last entry found the forward search looks.
    const LOOKAHEAD: usize = 8;

    fn find(&mut self, entries: &[SnapshotEntry], pid: i64) -> Option<usize> {
        if self.by_pid.is_none() {
            let ahead = entries
                .get(self.next..)
                .unwrap_or(&[])
                .iter()
                .take(Self::LOOKAHEAD);
            if let Some(k) = ahead.clone().position(|e| e.producer_id == pid) {
                self.next += k + 1;
                return Some(self.next - 1);
            }
        }
        let map = self.by_pid.get_or_insert_with(|| {
            let mut m = hashbrown::HashMap::with_capacity_and_hasher(entries.len(), Default::default());
            for (i, e) in entries.iter().enumerate() {
                m.entry(e.producer_id).or_insert(i);
            }
            m
        });
        map.get(&pid).copied()
    }
}

/// Reads the unreplicated-transactions section (after its magic).
fn read_unreplicated(r: &mut Reader<'_>) -> Result<Vec<UnreplicatedTxn>, (u64, CorruptionDetail)> {
    let at = r.pos - 8;
    let short = |pos: usize| (pos as u64, CorruptionDetail::Invalid("snapshot truncated"));
    let n = r.i32().ok_or(short(at))?;
    if n < 0 || n as usize > r.remaining() / 16 {
        return Err((
            at as u64,
            CorruptionDetail::Invalid("unreplicated transaction count out of range"),
        ));
    }
    let mut out: Vec<UnreplicatedTxn> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let at = r.pos;
        let t = UnreplicatedTxn {
            first_offset: r.i64().ok_or(short(at))?,
            last_offset: r.i64().ok_or(short(at))?,
        };
        let sane = t.first_offset >= 0
            && t.first_offset < t.last_offset
            && out.last().is_none_or(|p| p.first_offset < t.first_offset);
        if !sane {
            return Err((
                at as u64,
                CorruptionDetail::Invalid("unreplicated transaction offsets out of order"),
            ));
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, batches: usize, txn: i64) -> SnapshotEntry {
        SnapshotEntry {
            producer_id: pid,
            epoch: 3,
            coordinator_epoch: 7,
            last_timestamp: 1000 + pid,
            txn_first_offset: txn,
            batches: (0..batches)
                .map(|i| SnapshotBatch {
                    last_seq: i as i32 * 2 + 1,
                    last_offset: pid * 100 + i as i64 * 2 + 1,
                    offset_delta: 1,
                    timestamp: 1000 + i as i64,
                })
                .collect(),
        }
    }

    fn snap(entries: Vec<SnapshotEntry>, unreplicated: &[(i64, i64)]) -> ProducerSnapshot {
        ProducerSnapshot {
            entries,
            unreplicated: unreplicated
                .iter()
                .map(|&(first_offset, last_offset)| UnreplicatedTxn {
                    first_offset,
                    last_offset,
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_with_and_without_sections() {
        let full = snap(
            vec![entry(1, 0, -1), entry(2, 1, 5), entry(3, 5, -1)],
            &[(2, 9), (4, 7)],
        );
        assert_eq!(decode(&encode(&full)), Ok(full.clone()));
        let windows_only = snap(full.entries.clone(), &[]);
        assert_eq!(decode(&encode(&windows_only)), Ok(windows_only));
        let mut plain = vec![entry(9, 1, -1)];
        plain[0].batches[0].timestamp = plain[0].last_timestamp;
        let unreplicated_only = snap(plain.clone(), &[(1, 3)]);
        assert_eq!(decode(&encode(&unreplicated_only)), Ok(unreplicated_only));
        let bytes = encode(&snap(plain, &[]));
        assert_eq!(
            bytes.len(),
            ENTRIES_OFFSET + ENTRY_SIZE,
            "no trailer without a window"
        );
        assert_eq!(ENTRY_SIZE, 46);
    }

    #[test]
    fn unreplicated_section_is_validated() {
        for bad in [&[(3, 3)][..], &[(-1, 4)], &[(5, 9), (5, 8)], &[(6, 9), (2, 4)]] {
            let bytes = encode(&snap(vec![entry(1, 1, -1)], bad));
            assert!(decode(&bytes).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&snap(vec![entry(1, 3, -1), entry(2, 2, 4)], &[(1, 6)]));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i}");
        }
        assert!(decode(&[]).is_err());
    }
}
