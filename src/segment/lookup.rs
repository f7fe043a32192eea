//! Finding things in a segment: the batch holding an offset (starting from the index's hint,
//! never trusting it), the first offset at a timestamp, and the timestamps the roll and
//! retention rules read.

use std::ops::ControlFlow;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::index::{IndexError, OffsetEntry};

use super::{BatchInfo, IndexState, Indexes, ScanEnd, Segment};

impl Segment {
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.state.read().first_batch_timestamp
    }

    /// Largest record timestamp in the segment (-1 if unknown).
    pub(crate) fn max_timestamp(&self, fs: &dyn FileSystem) -> Result<i64, StorageError> {
        self.ensure_indexes(fs)?;
        Ok(self.state.read().max_timestamp)
    }

    /// An index lookup, or `None` when the indexes are not usable (deleted segment) or the
    /// lookup failed: the caller then walks the headers from the segment start, which is
    /// slower but needs no index. A failed lookup is logged, never fatal: indexes are
    /// derived data.
    fn lookup<T>(&self, what: &'static str, f: impl FnOnce(&Indexes) -> Result<T, IndexError>) -> Option<T> {
        let st = self.state.read();
        let IndexState::Loaded(ix) = &st.indexes else {
            return None;
        };
        match f(ix) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(segment = %self.log_path.display(), what, error = ?e, "index lookup failed; scanning the log instead");
                None
            }
        }
    }

    /// The last indexed append whose start is at most `max_position` and whose last offset
    /// is below `below`, as `(its last offset, its start position)`, if the start lies in
    /// `(after, limit)`. Every batch before it is whole and ends at or before it, with
    /// offsets below `below`, so a read may take them without reading their headers. `None`
    /// without such an entry (or without usable indexes): the caller walks the headers.
    pub(crate) fn indexed_append_before(
        &self,
        max_position: u64,
        below: i64,
        after: u64,
        limit: u64,
    ) -> Option<(i64, u64)> {
        let OffsetEntry { offset, position } = self
            .lookup("offset index", |ix| {
                ix.offset.last_entry_within(max_position, below)
            })
            .flatten()?;
        let position = u64::from(position);
        (position > after && position < limit).then_some((offset, position))
    }

    /// The position of the first batch whose last offset is `>= offset`, searching from the
    /// index hint. `None` if no such batch lies below `limit`.
    pub(crate) fn find_batch(
        &self,
        fs: &dyn FileSystem,
        offset: i64,
        limit: u64,
    ) -> Result<Option<BatchInfo>, StorageError> {
        self.ensure_indexes(fs)?;
        // The floor entry names the append that starts at its position and ends at its
        // offset: the batch found there must begin at or before that offset.
        let (hint_offset, hint) = self
            .lookup("offset index", |ix| ix.offset.lookup(offset))
            .map_or((self.base_offset, 0), |(o, p)| (o, u64::from(p)));
        let hint = if hint >= limit || hint_offset > offset {
            0
        } else {
            hint
        };
        let search = |from: u64| -> Result<(Option<BatchInfo>, ScanEnd, bool), StorageError> {
            let mut found = None;
            let mut agrees = true;
            let end = self.scan_headers(from, limit, |b| {
                if from != 0 && b.position == from && b.base_offset > hint_offset {
                    agrees = false;
                    return ControlFlow::Break(());
                }
                if b.last_offset >= offset {
                    found = Some(*b);
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            Ok((found, end, agrees))
        };
        let (mut found, mut end, agrees) = search(hint)?;
        if hint != 0 && (!agrees || matches!(end, ScanEnd::Invalid { .. })) {
            // The hint pointed somewhere wrong: never trust an index, rescan from 0.
            (found, end, _) = search(0)?;
        }
        if let ScanEnd::Invalid { position, error } = end {
            return Err(self.corrupt(position, error.into()));
        }
        Ok(found)
    }

    /// Byte position of the last offset-index entry (0 when none or out of range).
    pub(crate) fn last_indexed_position(&self, fs: &dyn FileSystem) -> Result<u64, StorageError> {
        self.ensure_indexes(fs)?;
        let pos = self
            .lookup("offset index", |ix| Ok(ix.offset.last()))
            .flatten()
            .map_or(0, |e| u64::from(e.position));
        Ok(if pos < self.size() { pos } else { 0 })
    }

    /// The max timestamp of the first batch, read from its header (time-based rolls measure
    /// from it after a reopen, as Kafka does).
    pub(crate) fn load_first_batch_timestamp(&self) -> Result<(), StorageError> {
        if let Some(Ok(info)) = self.read_header(0, self.size())? {
            self.state.write().first_batch_timestamp = Some(info.max_timestamp);
        }
        Ok(())
    }

    /// The largest record timestamp at or after `from_offset`, data or control, with the
    /// offset of the first record that has it; `None` if no record there has a timestamp
    /// of 0 or more. The batch holding `from_offset` may start below it: its records are
    /// read. After it, the batch headers say which batch first carries the largest
    /// timestamp, and only that batch's records are read.
    pub(crate) fn max_timestamp_from(
        &self,
        fs: &dyn FileSystem,
        from_offset: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        self.ensure_indexes(fs)?;
        let limit = self.size();
        let Some(start) = self.find_batch(fs, from_offset, limit)? else {
            return Ok(None);
        };
        // The first record with the largest timestamp among `records` at or after `from`.
        let first_max = |position: u64,
                         batch: &crate::RecordBatch<'_>|
         -> Result<Option<(i64, i64)>, StorageError> {
            let mut best: Option<(i64, i64)> = None;
            let records = batch.records().map_err(|e| self.corrupt(position, e.into()))?;
            for r in records.iter() {
                let r = r.map_err(|e| self.corrupt(position, e.into()))?;
                if r.offset >= from_offset && r.timestamp >= 0 && best.is_none_or(|(ts, _)| r.timestamp > ts)
                {
                    best = Some((r.timestamp, r.offset));
                }
            }
            Ok(best)
        };
        let mut straddling: Option<(i64, i64)> = None;
        let mut carrier: Option<(i64, u64)> = None;
        let end = self.scan_batches(start.position, limit, |position, batch| {
            if batch.base_offset() < from_offset {
                straddling = first_max(position, &batch)?;
            } else {
                let ts = batch.max_timestamp();
                let known = straddling.map(|s| s.0).max(carrier.map(|c| c.0));
                if ts >= 0 && known.is_none_or(|k| ts > k) {
                    carrier = Some((ts, position));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            return Err(self.corrupt(position, error.into()));
        }
        let Some((_, position)) = carrier else {
            return Ok(straddling);
        };
        let mut found = None;
        self.scan_batches(position, limit, |position, batch| {
            found = first_max(position, &batch)?;
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found.or(straddling))
    }

    /// Offset of the first record with timestamp >= `timestamp` at or after `from_offset`.
    pub(crate) fn find_offset_by_timestamp(
        &self,
        fs: &dyn FileSystem,
        timestamp: i64,
        from_offset: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        self.ensure_indexes(fs)?;
        let start_offset = self
            .lookup("time index", |ix| ix.time.lookup(timestamp))
            .map_or(self.base_offset, |(_, o)| o)
            .max(from_offset);
        let limit = self.size();
        let Some(start) = self.find_batch(fs, start_offset, limit)? else {
            return Ok(None);
        };
        let mut result = None;
        let end = self.scan_batches(start.position, limit, |_, batch| {
            if batch.max_timestamp() >= timestamp {
                let records = batch
                    .records()
                    .map_err(|e| self.corrupt(start.position, e.into()))?;
                for r in records.iter() {
                    let r = r.map_err(|e| self.corrupt(start.position, e.into()))?;
                    if r.timestamp >= timestamp && r.offset >= from_offset {
                        result = Some((r.offset, r.timestamp));
                        return Ok(ControlFlow::Break(()));
                    }
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            return Err(self.corrupt(position, error.into()));
        }
        Ok(result)
    }
}
