//! [`RecordBatch`], the validating zero-copy view over one batch's bytes: parsing, the header
//! fields, the few in-place edits the log makes, and [`BatchIter`] over concatenated batches.

use crate::codec::{be_i16, be_i32, be_i64};
use crate::compression::Compression;
use crate::error::BatchError;
use crate::types::{increment_sequence, ProducerEpoch, ProducerId, Sequence};

use super::{
    crc32c, TimestampType, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, BASE_SEQUENCE_OFFSET,
    BASE_TIMESTAMP_OFFSET, COMPRESSION_MASK, CONTROL_BIT, CRC_OFFSET, DELETE_HORIZON_BIT, HEADER_SIZE,
    LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET,
    TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};

/// A validated view over one v2 record batch. Size and magic are checked by [`RecordBatch::parse`];
/// the CRC by [`RecordBatch::validate_crc`] (kept separate so a scan can skip it when the
/// caller already trusts the bytes, and so the CRC is computed exactly once on the append path).
#[derive(Clone, Copy)]
pub struct RecordBatch<'a> {
    buf: &'a [u8],
}

impl std::fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset", &self.last_offset())
            .field("size", &self.size())
            .field("producer_id", &self.producer_id())
            .field("is_transactional", &self.is_transactional())
            .field("is_control", &self.is_control())
            .finish_non_exhaustive()
    }
}

/// Reads the total size of the batch starting at `buf` from its length field, without
/// validating anything else. `None` when fewer than [`LOG_OVERHEAD`] bytes are available.
pub(crate) fn peek_batch_size(buf: &[u8]) -> Option<(i64, i32)> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    Some((
        be_i64(buf, BASE_OFFSET_OFFSET).unwrap_or(0),
        be_i32(buf, LENGTH_OFFSET).unwrap_or(0),
    ))
}

impl<'a> RecordBatch<'a> {
    /// Parses the batch at the start of `buf`, checking its length field and magic. Returns the
    /// batch and the bytes after it.
    ///
    /// # Errors
    /// [`BatchError::Truncated`], [`BatchError::InvalidLength`] or [`BatchError::UnsupportedMagic`].
    pub fn parse(buf: &'a [u8]) -> Result<(RecordBatch<'a>, &'a [u8]), BatchError> {
        let Some((_, length)) = peek_batch_size(buf) else {
            return Err(BatchError::Truncated {
                needed: LOG_OVERHEAD as u64,
                available: buf.len() as u64,
            });
        };
        if length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            // Check the magic first when we can, so a legacy batch is named as such.
            if buf.len() > MAGIC_OFFSET && buf[MAGIC_OFFSET] as i8 != MAGIC_V2 && length >= 0 {
                return Err(BatchError::UnsupportedMagic {
                    magic: buf[MAGIC_OFFSET] as i8,
                });
            }
            return Err(BatchError::InvalidLength { declared: length });
        }
        let size = LOG_OVERHEAD + length as usize;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size as u64,
                available: buf.len() as u64,
            });
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let (batch, rest) = buf.split_at(size);
        Ok((RecordBatch { buf: batch }, rest))
    }

    /// Parses `buf`, which must hold exactly one batch, and checks its CRC.
    ///
    /// # Errors
    /// Any [`BatchError`] from [`RecordBatch::parse`] or the CRC check, or
    /// [`BatchError::TrailingBytes`] when bytes follow the batch.
    pub fn parse_exact(buf: &'a [u8]) -> Result<RecordBatch<'a>, BatchError> {
        let (batch, rest) = Self::parse(buf)?;
        if !rest.is_empty() {
            return Err(BatchError::TrailingBytes {
                remaining: rest.len() as u64,
            });
        }
        batch.validate_crc()?;
        Ok(batch)
    }

    /// The batch's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Total size in bytes, including the 12-byte log overhead.
    #[must_use]
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// First offset of the batch.
    #[must_use]
    pub fn base_offset(&self) -> i64 {
        be_i64(self.buf, BASE_OFFSET_OFFSET).unwrap_or(0)
    }

    /// `lastOffset - baseOffset`.
    #[must_use]
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.buf, LAST_OFFSET_DELTA_OFFSET).unwrap_or(0)
    }

    /// Last offset of the batch (`base + lastOffsetDelta`, saturating on nonsense input).
    #[must_use]
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }

    /// The offset after the batch.
    #[must_use]
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The partition leader epoch stamped by the leader (-1 if none).
    #[must_use]
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.buf, PARTITION_LEADER_EPOCH_OFFSET).unwrap_or(0)
    }

    /// The magic byte (always 2 for a parsed batch).
    #[must_use]
    pub fn magic(&self) -> i8 {
        self.buf[MAGIC_OFFSET] as i8
    }

    /// The stored CRC.
    #[must_use]
    pub fn stored_crc(&self) -> u32 {
        be_i32(self.buf, CRC_OFFSET).unwrap_or(0) as u32
    }

    /// CRC-32C over attributes..end, computed now.
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32c(&self.buf[ATTRIBUTES_OFFSET..])
    }

    /// Checks the stored CRC.
    ///
    /// # Errors
    /// [`BatchError::CrcMismatch`].
    pub fn validate_crc(&self) -> Result<(), BatchError> {
        let (stored, computed) = (self.stored_crc(), self.computed_crc());
        if stored == computed {
            Ok(())
        } else {
            Err(BatchError::CrcMismatch { stored, computed })
        }
    }

    /// The raw attributes field.
    #[must_use]
    pub fn attributes(&self) -> i16 {
        be_i16(self.buf, ATTRIBUTES_OFFSET).unwrap_or(0)
    }

    /// Compression codec id (attribute bits 0-2).
    #[must_use]
    pub fn compression_id(&self) -> u8 {
        (self.attributes() & COMPRESSION_MASK) as u8
    }

    /// Compression codec.
    ///
    /// # Errors
    /// [`BatchError::UnknownCodec`] for ids 5-7.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_id(self.compression_id())
    }

    /// Timestamp type (attribute bit 3).
    #[must_use]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Attribute bit 4.
    #[must_use]
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// Attribute bit 5.
    #[must_use]
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// Attribute bit 6: `baseTimestamp` holds a compaction delete horizon.
    #[must_use]
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_BIT != 0
    }

    /// First record's timestamp.
    #[must_use]
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.buf, BASE_TIMESTAMP_OFFSET).unwrap_or(0)
    }

    /// Largest record timestamp (or the append time for LogAppendTime batches).
    #[must_use]
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.buf, MAX_TIMESTAMP_OFFSET).unwrap_or(0)
    }

    /// Producer id (-1 = none).
    #[must_use]
    pub fn producer_id(&self) -> ProducerId {
        ProducerId(be_i64(self.buf, PRODUCER_ID_OFFSET).unwrap_or(0))
    }

    /// Producer epoch (-1 = none).
    #[must_use]
    pub fn producer_epoch(&self) -> ProducerEpoch {
        ProducerEpoch(be_i16(self.buf, PRODUCER_EPOCH_OFFSET).unwrap_or(0))
    }

    /// Base sequence (-1 = none).
    #[must_use]
    pub fn base_sequence(&self) -> Sequence {
        Sequence(be_i32(self.buf, BASE_SEQUENCE_OFFSET).unwrap_or(0))
    }

    /// Last sequence, with Kafka's wrap rule; -1 when the batch has no sequence.
    #[must_use]
    pub fn last_sequence(&self) -> Sequence {
        let base = self.base_sequence().0;
        if base < 0 {
            return Sequence::NONE;
        }
        Sequence(increment_sequence(base, self.last_offset_delta().max(0)))
    }

    /// Declared number of records.
    #[must_use]
    pub fn records_count(&self) -> i32 {
        be_i32(self.buf, RECORDS_COUNT_OFFSET).unwrap_or(0)
    }

    /// The records area exactly as stored (compressed if the batch is).
    #[must_use]
    pub fn records_area(&self) -> &'a [u8] {
        &self.buf[HEADER_SIZE..]
    }
}

/// Overwrites the base offset of the batch at the start of `buf` (outside the CRC).
pub(crate) fn set_base_offset(buf: &mut [u8], offset: i64) {
    buf[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites the partition leader epoch of the batch at the start of `buf` (outside the CRC).
pub(crate) fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Sets the timestamp type bit to `kind` and `maxTimestamp` to `timestamp`, then recomputes
/// the CRC, which covers both (Kafka's `DefaultRecordBatch.setMaxTimestamp`).
pub(crate) fn set_max_timestamp(buf: &mut [u8], kind: TimestampType, timestamp: i64) {
    let attrs = be_i16(buf, ATTRIBUTES_OFFSET).unwrap_or(0);
    let attrs = match kind {
        TimestampType::CreateTime => attrs & !TIMESTAMP_TYPE_BIT,
        TimestampType::LogAppendTime => attrs | TIMESTAMP_TYPE_BIT,
    };
    buf[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    buf[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c(&buf[ATTRIBUTES_OFFSET..]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates concatenated batches in `buf`, yielding `(position, batch)` or the first error.
pub struct BatchIter<'a> {
    rest: &'a [u8],
    position: u64,
    done: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates the batches of `buf` (the records of a produce request or a segment's bytes).
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            rest: buf,
            position: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(u64, RecordBatch<'a>), (u64, BatchError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match RecordBatch::parse(self.rest) {
            Ok((batch, rest)) => {
                let pos = self.position;
                self.position += batch.size() as u64;
                self.rest = rest;
                Some(Ok((pos, batch)))
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.position, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, NewRecord};

    #[test]
    fn corrupt_inputs_are_errors() {
        let bytes = BatchBuilder::new()
            .build(&[NewRecord::value(1, b"hello")])
            .expect("build");
        for cut in 0..bytes.len() {
            assert!(RecordBatch::parse_exact(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            RecordBatch::parse_exact(&flipped),
            Err(BatchError::CrcMismatch { .. })
        ));
        let mut magic = bytes.clone();
        magic[MAGIC_OFFSET] = 1;
        assert!(matches!(
            RecordBatch::parse(&magic),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        ));
        let mut huge = bytes;
        huge[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            RecordBatch::parse(&huge),
            Err(BatchError::Truncated { .. })
        ));
    }
}
