//! Checking every batch and every derived file of an open log without changing anything.

use std::ops::ControlFlow;

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::producer_state::{ProducerConfig, ProducerStateManager};
use crate::segment::ScanEnd;
use crate::txn_index::AbortedTxn;

use super::recovery::apply_stored_batch;
use super::snapshots::read_snapshot;
use super::txn::aborted_entry;
use super::Log;

impl Log {
    /// Checks every batch's CRC and offsets, and every file derived from the batches
    /// against them, without changing anything: the offset and time indexes of every
    /// segment, every snapshot's checksum, and every transaction index against the aborted
    /// transactions a replay of the segments finds (from the snapshot at the first segment's
    /// base). Returns the number of batches checked.
    ///
    /// # Errors
    /// The first damage found, naming file and byte position; storage failures.
    pub fn verify(&self, progress: impl FnMut(u64, u64)) -> Result<u64, StorageError> {
        let progress = std::cell::RefCell::new(progress);
        self.racing_truncations(|| self.verify_once(&mut *progress.borrow_mut()))
    }

    fn verify_once(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, StorageError> {
        let segs = self.segments.read().clone();
        let total: u64 = segs.iter().map(|s| s.size()).sum();
        for offset in self.writer.lock().snapshots.clone() {
            if let Err((position, detail)) = read_snapshot(&*self.fs, &self.dir, offset)? {
                return Err(Corruption {
                    path: self.dir.join(crate::segment::file_name(offset, "snapshot")),
                    kind: FileKind::Snapshot,
                    position,
                    detail,
                }
                .into());
            }
        }
        // Producer state where the segments begin: empty at offset 0, else the snapshot
        // there. Without one, transactions begun before the first segment are unknown and
        // their index entries can only be checked for order.
        let first_base = segs.first().map_or(0, |s| s.base_offset);
        let mut psm = ProducerStateManager::new(ProducerConfig {
            window: self.config().producer_window,
            expiration_ms: i64::MAX,
            max_producer_ids: usize::MAX,
        });
        let seeded = first_base == 0
            || match read_snapshot(&*self.fs, &self.dir, first_base) {
                Ok(Ok(snapshot)) => {
                    psm.load(snapshot, first_base);
                    true
                }
                _ => false,
            };
        let mut done = 0u64;
        let mut batches = 0u64;
        for seg in segs.iter() {
            let limit = seg.size();
            let mut prev_next = seg.base_offset;
            let mut order = None;
            let mut expected: Vec<AbortedTxn> = Vec::new();
            let end = seg.scan_batches(0, limit, |pos, b| {
                if b.base_offset() < prev_next {
                    order = Some((pos, b.base_offset(), b.last_offset(), prev_next));
                    return Ok(ControlFlow::Break(()));
                }
                prev_next = b.next_offset();
                for (c, lso) in apply_stored_batch(&mut psm, &b) {
                    if c.aborted {
                        expected.push(aborted_entry(&c, lso));
                    }
                }
                batches += 1;
                if batches.is_multiple_of(4096) {
                    progress(done + pos, total);
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if let Some((position, base, last, expected)) = order {
                return Err(seg.corrupt(position, CorruptionDetail::OffsetOrder { base, last, expected }));
            }
            if let ScanEnd::Invalid { position, error } = end {
                return Err(seg.corrupt(position, error.into()));
            }
            seg.verify_indexes(&*self.fs)?;
            if let Some((path, on_disk)) = seg.txn_index_on_disk(&*self.fs)? {
                // Entries for markers appended after the scan are not this check's.
                let on_disk: Vec<AbortedTxn> = on_disk
                    .into_iter()
                    .filter(|e| e.last_offset < prev_next)
                    .collect();
                check_txn_index(&path, &on_disk, &expected, seeded, first_base)?;
            }
            done += limit;
            progress(done, total);
        }
        Ok(batches)
    }
}

/// Compares a segment's transaction index with the aborted transactions its batches hold.
/// The stored last stable offset is compared as `min(L, marker + 1)`: Kafka's followers and
/// earlier eoslog versions wrote an inflated L that readers cap the same way.
fn check_txn_index(
    path: &std::path::Path,
    on_disk: &[AbortedTxn],
    expected: &[AbortedTxn],
    seeded: bool,
    first_base: i64,
) -> Result<(), StorageError> {
    let mismatch = |i: usize, detail: &'static str| -> StorageError {
        Corruption {
            path: path.to_path_buf(),
            kind: FileKind::TxnIndex,
            position: (i * crate::txn_index::ENTRY_SIZE) as u64,
            detail: CorruptionDetail::Invalid(detail),
        }
        .into()
    };
    let capped = |e: &AbortedTxn| e.last_stable_offset.min(e.last_offset + 1);
    let mut want = expected.iter().peekable();
    for (i, e) in on_disk.iter().enumerate() {
        match want.peek() {
            Some(w) if w.last_offset == e.last_offset => {
                let same = w.producer_id == e.producer_id
                    && w.first_offset == e.first_offset
                    && (!seeded || capped(w) == capped(e));
                if !same {
                    return Err(mismatch(i, "transaction index entry disagrees with the log"));
                }
                want.next();
            }
            // A transaction begun before the first segment, which no replay here can know.
            _ if !seeded && e.first_offset < first_base => {}
            _ => return Err(mismatch(i, "transaction index entry for no aborted transaction")),
        }
    }
    if want.next().is_some() {
        return Err(mismatch(
            on_disk.len(),
            "transaction index lacks an aborted transaction of the log",
        ));
    }
    Ok(())
}
