//! The records of a batch: decompressing them, iterating and decoding them one by one (every
//! length checked), and the control record of a COMMIT/ABORT marker.

use std::borrow::Cow;

use crate::codec::{be_i16, be_i32};
use crate::compression::{self, Compression};
use crate::error::{BatchError, RecordErrorKind};

use super::varint::{read_varint, read_varlong};
use super::{ControlType, Marker, RecordBatch, TimestampType, MAX_DECOMPRESSED_SIZE};

impl<'a> RecordBatch<'a> {
    /// The records area, decompressed when needed, ready to iterate.
    ///
    /// # Errors
    /// Codec and decompression errors.
    pub fn records(&self) -> Result<Records<'a>, BatchError> {
        let count = self.records_count();
        if count < 0 {
            return Err(BatchError::NegativeRecordCount { count });
        }
        let data = match self.compression()? {
            Compression::None => Cow::Borrowed(self.records_area()),
            codec => Cow::Owned(compression::decompress(
                codec,
                self.records_area(),
                MAX_DECOMPRESSED_SIZE,
            )?),
        };
        Ok(Records {
            data,
            count,
            base_offset: self.base_offset(),
            base_timestamp: self.base_timestamp(),
            log_append_time: (self.timestamp_type() == TimestampType::LogAppendTime)
                .then(|| self.max_timestamp()),
        })
    }

    /// For a control batch, parses its first record as a control record. `Ok(None)` for a
    /// control batch with no records (a compacted marker) or an unknown control type.
    ///
    /// # Errors
    /// A malformed control record.
    pub fn marker(&self) -> Result<Option<Marker>, BatchError> {
        if !self.is_control() || self.records_count() == 0 {
            return Ok(None);
        }
        let records = self.records()?;
        let Some(record) = records.iter().next() else {
            return Ok(None);
        };
        let record = record?;
        let invalid = |position| BatchError::Record {
            index: 0,
            position,
            kind: RecordErrorKind::InvalidControlRecord,
        };
        let key = record.key.ok_or(invalid(0))?;
        if key.len() < 4 || be_i16(key, 0).unwrap_or(0) < 0 {
            return Err(invalid(0));
        }
        let control_type = match be_i16(key, 2).unwrap_or(0) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => {
                return Ok(Some(Marker {
                    control_type: ControlType::Other(other),
                    coordinator_epoch: -1,
                }))
            }
        };
        let value = record.value.ok_or(invalid(0))?;
        if value.len() < 6 || be_i16(value, 0).unwrap_or(0) < 0 {
            return Err(invalid(0));
        }
        Ok(Some(Marker {
            control_type,
            coordinator_epoch: be_i32(value, 2).unwrap_or(0),
        }))
    }
}

/// The (possibly decompressed) records of one batch.
pub struct Records<'a> {
    data: Cow<'a, [u8]>,
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
}

impl Records<'_> {
    /// Iterates the records; each item is checked as it is decoded.
    #[must_use]
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            data: &self.data,
            pos: 0,
            index: 0,
            count: self.count,
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            log_append_time: self.log_append_time,
            failed: false,
        }
    }
    /// Declared record count.
    #[must_use]
    pub fn count(&self) -> i32 {
        self.count
    }
}

/// One record of a batch.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// Absolute timestamp (or the batch's append time for LogAppendTime batches).
    pub timestamp: i64,
    /// Key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers: key (never null) and value.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Iterator over the records of a batch. After the first error it yields nothing more; after
/// `count` records it reports leftover bytes as [`BatchError::TrailingBytes`].
pub struct RecordIter<'a> {
    data: &'a [u8],
    pos: usize,
    index: i32,
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

/// Reads a nullable byte field: varint length (-1 = null) then bytes, bounded by `end`.
#[inline]
fn read_nullable<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    end: usize,
) -> Result<Option<&'a [u8]>, RecordErrorKind> {
    let len = read_varint(buf, pos)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(RecordErrorKind::InvalidLength(i64::from(len)));
    }
    let stop = pos
        .checked_add(len as usize)
        .filter(|&s| s <= end)
        .ok_or(RecordErrorKind::InvalidLength(i64::from(len)))?;
    let bytes = &buf[*pos..stop];
    *pos = stop;
    Ok(Some(bytes))
}

impl<'a> RecordIter<'a> {
    fn decode(&mut self) -> Result<Record<'a>, RecordErrorKind> {
        let buf = self.data;
        let mut pos = self.pos;
        let declared = read_varint(buf, &mut pos)?;
        if declared < 0 {
            return Err(RecordErrorKind::InvalidLength(i64::from(declared)));
        }
        let start = pos;
        let end = start
            .checked_add(declared as usize)
            .filter(|&e| e <= buf.len())
            .ok_or(RecordErrorKind::PrematureEof)?;
        let body = &buf[..end];
        if pos >= end {
            return Err(RecordErrorKind::PrematureEof);
        }
        pos += 1; // attributes, unused
        let ts_delta = read_varlong(body, &mut pos)?;
        let offset_delta = read_varint(body, &mut pos)?;
        let key = read_nullable(body, &mut pos, end)?;
        let value = read_nullable(body, &mut pos, end)?;
        let header_count = read_varint(body, &mut pos)?;
        if header_count < 0 || header_count as usize > end - pos {
            return Err(RecordErrorKind::InvalidHeaderCount(i64::from(header_count)));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let hk = read_nullable(body, &mut pos, end)?.ok_or(RecordErrorKind::NullHeaderKey)?;
            let hv = read_nullable(body, &mut pos, end)?;
            headers.push((hk, hv));
        }
        if pos != end {
            return Err(RecordErrorKind::LengthMismatch {
                declared: i64::from(declared),
                consumed: (pos - start) as u64,
            });
        }
        self.pos = end;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(ts_delta)),
            key,
            value,
            headers,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.index >= self.count {
            if self.pos < self.data.len() {
                self.failed = true;
                return Some(Err(BatchError::TrailingBytes {
                    remaining: (self.data.len() - self.pos) as u64,
                }));
            }
            return None;
        }
        let position = self.pos as u64;
        match self.decode() {
            Ok(r) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(kind) => {
                self.failed = true;
                Some(Err(BatchError::Record {
                    index: self.index,
                    position,
                    kind,
                }))
            }
        }
    }
}
