//! Record-level reads, filtered as a Kafka consumer filters a fetch.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashSet},
};

use crate::batch::{BatchIter, ControlType};
use crate::error::{Corruption, FileKind, ReadError, StorageError};

use crate::types::Offset;

use super::{FetchResult, Isolation, Log};

/// Records of a log in offset order, as [`Log::records`] yields them.
#[derive(Debug)]
pub struct RecordStream<'a> {
    log: &'a Log,
    next: Offset,
    isolation: Isolation,
    buffer: std::vec::IntoIter<OwnedRecord>,
    done: bool,
}

impl RecordStream<'_> {
    /// The offset the next fetch starts from.
    #[must_use]
    pub fn position(&self) -> Offset {
        self.next
    }
}

impl Iterator for RecordStream<'_> {
    type Item = Result<OwnedRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        const FETCH_BYTES: usize = 1 << 20;
        loop {
            if let Some(r) = self.buffer.next() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.log.read_records(self.next, FETCH_BYTES, self.isolation) {
                Ok((records, next)) => {
                    if next == self.next && records.is_empty() {
                        self.done = true;
                        return None;
                    }
                    self.next = next;
                    self.buffer = records.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// One record, owned, as a reader receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Offset.
    pub offset: Offset,
    /// Timestamp.
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<Vec<u8>>,
    /// Value (`None` = null).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Log {
    /// Reads records from `from` with the isolation's visibility, filtering as a Kafka
    /// consumer does: read_committed skips aborted transactions and every control record.
    /// Continues across segments until about `max_bytes` of batches were read or the bound
    /// is reached. Returns the records and the offset to continue from.
    ///
    /// # Errors
    /// As [`Log::read`], and corrupt batches.
    pub fn read_records(
        &self,
        from: Offset,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<(Vec<OwnedRecord>, Offset), ReadError> {
        let mut out = Vec::new();
        let mut next = from;
        let mut budget = max_bytes;
        loop {
            // One fetch, its bytes and their records, again as a whole if a truncation cut
            // the bytes between the fetch and their read.
            let (fetched, mut records, after) = self.racing_truncations(|| {
                let fetch = self.read_once(next, budget, isolation)?;
                let bytes = fetch.bytes()?;
                let mut records = Vec::new();
                let after = match bytes.is_empty() {
                    true => next,
                    false => filter_fetch(&fetch, &bytes, next, isolation, &mut records)?,
                };
                Ok::<_, ReadError>((bytes.len(), records, after))
            })?;
            if fetched == 0 {
                break;
            }
            out.append(&mut records);
            budget = budget.saturating_sub(fetched);
            next = after;
            if budget == 0 {
                break;
            }
        }
        Ok((out, next))
    }

    /// An iterator over the records visible from `from` under `isolation`, filtered as a Kafka
    /// consumer filters them (read_committed: no aborted data, no control records). It ends at
    /// the bound that held when it last fetched; [`RecordStream::position`] tells where to
    /// resume.
    #[must_use]
    pub fn records(&self, from: Offset, isolation: Isolation) -> RecordStream<'_> {
        RecordStream {
            log: self,
            next: from,
            isolation,
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }
}

/// The consumer-side read_committed filter (Kafka's `CompletedFetch`): aborted transactions
/// from the fetch go into a min-heap by first offset; a producer becomes "aborting" when a
/// batch reaches its first offset and stops at its ABORT marker; its transactional batches
/// are skipped meanwhile. Control records are never returned. Returns the next offset.
pub(super) fn filter_fetch(
    fetch: &FetchResult,
    bytes: &[u8],
    from: Offset,
    isolation: Isolation,
    out: &mut Vec<OwnedRecord>,
) -> Result<Offset, ReadError> {
    let mut heap: BinaryHeap<Reverse<(i64, i64)>> = fetch
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| Reverse((a.first_offset.0, a.producer_id.0)))
        .collect();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut next = from.0;
    let corrupt = |position: u64, e: crate::error::BatchError| -> ReadError {
        let path = fetch.slices.first().map(|s| s.path.clone()).unwrap_or_default();
        let base = fetch.slices.first().map_or(0, |s| s.position);
        StorageError::from(Corruption {
            path,
            kind: FileKind::Log,
            position: base + position,
            detail: e.into(),
        })
        .into()
    };
    for item in BatchIter::new(bytes) {
        let (position, b) = item.map_err(|(p, e)| corrupt(p, e))?;
        b.validate_crc().map_err(|e| corrupt(position, e))?;
        next = next.max(b.next_offset());
        if isolation == Isolation::ReadCommitted && b.producer_id().is_some() {
            while let Some(Reverse((first, pid))) = heap.peek().copied() {
                if first > b.last_offset() {
                    break;
                }
                heap.pop();
                aborting.insert(pid);
            }
            if b.is_control() {
                if let Ok(Some(m)) = b.marker() {
                    if m.control_type == ControlType::Abort {
                        aborting.remove(&b.producer_id().0);
                    }
                }
                continue;
            }
            if b.is_transactional() && aborting.contains(&b.producer_id().0) {
                continue;
            }
        }
        if b.is_control() {
            continue;
        }
        let records = b.records().map_err(|e| corrupt(position, e))?;
        for r in records.iter() {
            let r = r.map_err(|e| corrupt(position, e))?;
            if r.offset < from.0 {
                continue;
            }
            out.push(OwnedRecord {
                offset: Offset(r.offset),
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect(),
            });
        }
    }
    Ok(Offset(next))
}
