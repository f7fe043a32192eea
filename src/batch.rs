//! Kafka RecordBatch v2: a validating zero-copy view, a record iterator and a builder.
//!
//! ```text
//! Format: { baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2
//!         | crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64
//!         | maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32
//!         | recordsCount i32 | records ... }
//! crc = CRC-32C over [attributes, end of batch); all integers big-endian.
//! ```
//!
//! Bytes are never trusted: every length is checked before it is used, and a malformed
//! batch or record is a [`BatchError`] naming what and where.

use std::borrow::Cow;

use crate::codec::{be_i16, be_i32, be_i64};
use crate::compression::{self, Compression};
use crate::error::{BatchError, RecordErrorKind};
use crate::types::{increment_sequence, Offset, ProducerEpoch, ProducerId, Sequence};

// Field offsets, each chained from the previous one (docs/FORMAT.md has the diagram).
pub(crate) const BASE_OFFSET_OFFSET: usize = 0;
pub(crate) const LENGTH_OFFSET: usize = BASE_OFFSET_OFFSET + 8;
/// `baseOffset` + `batchLength`: bytes before the length-counted part of a batch.
pub const LOG_OVERHEAD: usize = LENGTH_OFFSET + 4;
pub(crate) const PARTITION_LEADER_EPOCH_OFFSET: usize = LOG_OVERHEAD;
pub(crate) const MAGIC_OFFSET: usize = PARTITION_LEADER_EPOCH_OFFSET + 4;
pub(crate) const CRC_OFFSET: usize = MAGIC_OFFSET + 1;
pub(crate) const ATTRIBUTES_OFFSET: usize = CRC_OFFSET + 4;
pub(crate) const LAST_OFFSET_DELTA_OFFSET: usize = ATTRIBUTES_OFFSET + 2;
pub(crate) const BASE_TIMESTAMP_OFFSET: usize = LAST_OFFSET_DELTA_OFFSET + 4;
pub(crate) const MAX_TIMESTAMP_OFFSET: usize = BASE_TIMESTAMP_OFFSET + 8;
pub(crate) const PRODUCER_ID_OFFSET: usize = MAX_TIMESTAMP_OFFSET + 8;
pub(crate) const PRODUCER_EPOCH_OFFSET: usize = PRODUCER_ID_OFFSET + 8;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = PRODUCER_EPOCH_OFFSET + 2;
pub(crate) const RECORDS_COUNT_OFFSET: usize = BASE_SEQUENCE_OFFSET + 4;
/// Size of the v2 batch header (61 bytes).
pub const HEADER_SIZE: usize = RECORDS_COUNT_OFFSET + 4;
/// The only batch format eoslog stores.
pub const MAGIC_V2: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Size of a COMMIT/ABORT marker batch: Kafka writes exactly 78 bytes.
pub const MARKER_BATCH_SIZE: usize = 78;

/// Largest decompressed records area eoslog will materialise (guards against decompression
/// bombs): 256 MiB. Kafka's own limit is the 2 GiB of a Java byte array, but a batch is at
/// most `max.message.bytes` (1 MiB by default) compressed, and no real producer's records
/// expand 256-fold.
pub const MAX_DECOMPRESSED_SIZE: usize = 256 << 20;

/// CRC-32C (Castagnoli) of `data`, as Kafka stores it.
///
/// Computed by `crc-fast`. `benches/crc.rs` compares it with the `crc32c` crate: on a CPU
/// without AVX-512 (the EPYC of BENCHMARKS.md) `crc32c` is faster on an isolated 16 KiB
/// buffer, but through `Log::append` the two measured the same, so the choice stays with the
/// crate whose AVX-512 path is several times faster where that exists.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    crc
}

/// CRC-32C over several pieces, equal to [`crc32c`] of their concatenation.
#[derive(Clone)]
pub(crate) struct Crc32cDigest(crc_fast::Digest);

impl Crc32cDigest {
    pub(crate) fn new() -> Self {
        Crc32cDigest(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub(crate) fn value(&self) -> u32 {
        #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
        let crc = self.0.finalize() as u32;
        crc
    }
}

/// The CRC-32C of `a ‖ b` from the CRC-32C of `a`, that of `b` and `b`'s length.
pub(crate) fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
    let crc = crc_fast::checksum_combine(
        crc_fast::CrcAlgorithm::Crc32Iscsi,
        u64::from(crc_a),
        u64::from(crc_b),
        len_b,
    ) as u32;
    crc
}

/// Timestamp type of a batch (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Timestamps set by the producer.
    CreateTime,
    /// `maxTimestamp` set by the broker on append.
    LogAppendTime,
}

/// The kind of a control record (the key's `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// Transaction abort marker (type 0).
    Abort,
    /// Transaction commit marker (type 1).
    Commit,
    /// A KRaft-only or future type: parsed and ignored.
    Other(i16),
}

impl ControlType {
    /// `"COMMIT"`, `"ABORT"` or `"UNKNOWN"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ControlType::Abort => "ABORT",
            ControlType::Commit => "COMMIT",
            ControlType::Other(_) => "UNKNOWN",
        }
    }
    const fn id(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
            ControlType::Other(v) => v,
        }
    }
}

/// A parsed end-transaction marker (the control record of a COMMIT/ABORT batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// COMMIT or ABORT.
    pub control_type: ControlType,
    /// Epoch of the coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

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

/// Overwrites the base offset of the batch at the start of `buf` (outside the CRC).
pub(crate) fn set_base_offset(buf: &mut [u8], offset: i64) {
    buf[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites the partition leader epoch of the batch at the start of `buf` (outside the CRC).
pub(crate) fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Sets `maxTimestamp` and the LogAppendTime bit, then recomputes the CRC (both are covered).
pub(crate) fn set_log_append_time(buf: &mut [u8], timestamp: i64) {
    let attrs = be_i16(buf, ATTRIBUTES_OFFSET).unwrap_or(0) | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    buf[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c(&buf[ATTRIBUTES_OFFSET..]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
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

/// Decodes an unsigned LEB128 varint of at most `max_bytes` from `buf[*pos..]`.
#[inline]
fn read_unsigned_varint(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Result<u64, RecordErrorKind> {
    // Most varints in a record (attributes-adjacent deltas, null key, header count) are one
    // byte: decide those without entering the loop.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    read_unsigned_varint_loop(buf, pos, max_bytes)
}

fn read_unsigned_varint_loop(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Result<u64, RecordErrorKind> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos) else {
            return Err(RecordErrorKind::PrematureEof);
        };
        *pos += 1;
        if i == 9 && b > 1 {
            // The tenth byte of a varlong may carry only the 64th bit.
            return Err(RecordErrorKind::VarintOverflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordErrorKind::VarintOverflow)
}

/// Zigzag-decoded signed varint (32-bit, at most 5 bytes).
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, RecordErrorKind> {
    let raw = read_unsigned_varint(buf, pos, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(RecordErrorKind::VarintOverflow);
    }
    let raw = raw as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Zigzag-decoded signed varlong (64-bit, at most 10 bytes).
#[inline]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, RecordErrorKind> {
    let raw = read_unsigned_varint(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Appends the zigzag varint encoding of `v`.
pub(crate) fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned_varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// Appends the zigzag varlong encoding of `v`.
pub(crate) fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn write_unsigned_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
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

/// One record to put in a batch.
#[derive(Debug, Clone, Default)]
pub struct NewRecord<'a> {
    /// Absolute timestamp in milliseconds.
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<&'a [u8]>,
    /// Value (`None` = null).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl<'a> NewRecord<'a> {
    /// A record with a value and no key or headers.
    #[must_use]
    pub fn value(timestamp: i64, value: &'a [u8]) -> Self {
        NewRecord {
            timestamp,
            key: None,
            value: Some(value),
            headers: Vec::new(),
        }
    }
    /// A record with a key and a value.
    #[must_use]
    pub fn key_value(timestamp: i64, key: &'a [u8], value: &'a [u8]) -> Self {
        NewRecord {
            timestamp,
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        }
    }
}

/// Builds v2 data batches the way a Kafka producer does (base offset 0, leader epoch -1).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    base_sequence: Sequence,
    transactional: bool,
    compression: Compression,
    base_offset: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// A plain (non-idempotent, uncompressed) batch builder.
    #[must_use]
    pub fn new() -> Self {
        BatchBuilder {
            producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch::NONE,
            base_sequence: Sequence::NONE,
            transactional: false,
            compression: Compression::None,
            base_offset: 0,
        }
    }
    /// An idempotent producer's batch.
    #[must_use]
    pub fn idempotent(producer_id: ProducerId, epoch: ProducerEpoch, base_sequence: Sequence) -> Self {
        BatchBuilder {
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            ..Self::new()
        }
    }
    /// A transactional producer's batch.
    #[must_use]
    pub fn transactional(producer_id: ProducerId, epoch: ProducerEpoch, base_sequence: Sequence) -> Self {
        BatchBuilder {
            transactional: true,
            ..Self::idempotent(producer_id, epoch, base_sequence)
        }
    }
    /// Sets the codec.
    #[must_use]
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }
    /// Sets the base offset written (replicated batches carry their leader-assigned offset).
    #[must_use]
    pub fn base_offset(mut self, offset: Offset) -> Self {
        self.base_offset = offset.0;
        self
    }

    /// Encodes the records into one batch.
    ///
    /// # Errors
    /// The codec is disabled in this build.
    pub fn build(&self, records: &[NewRecord<'_>]) -> Result<Vec<u8>, BatchError> {
        let base_ts = records.first().map_or(-1, |r| r.timestamp);
        let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let mut body = Vec::with_capacity(records.iter().map(encoded_len_hint).sum());
        for (i, r) in records.iter().enumerate() {
            encode_record(&mut body, i as i32, r.timestamp - base_ts, r);
        }
        let attrs = i16::from(self.compression.id()) | if self.transactional { TRANSACTIONAL_BIT } else { 0 };
        let records_area = match self.compression {
            Compression::None => body,
            codec => compression::compress(codec, &body)?,
        };
        let last_delta = (records.len() as i32 - 1).max(0);
        Ok(assemble(
            &BatchFields {
                base_offset: self.base_offset,
                attributes: attrs,
                last_offset_delta: last_delta,
                base_timestamp: base_ts,
                max_timestamp: max_ts,
                producer_id: self.producer_id.0,
                producer_epoch: self.producer_epoch.0,
                base_sequence: self.base_sequence.0,
                records_count: records.len() as i32,
            },
            &records_area,
        ))
    }
}

fn encoded_len_hint(r: &NewRecord<'_>) -> usize {
    21 + r.key.map_or(0, <[u8]>::len)
        + r.value.map_or(0, <[u8]>::len)
        + r.headers
            .iter()
            .map(|(k, v)| 10 + k.len() + v.map_or(0, <[u8]>::len))
            .sum::<usize>()
}

fn write_nullable(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

// Format: { length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//         | key (varint len, bytes) | value (varint len, bytes) | headerCount varint
//         | headers (key, value)* }
fn encode_record(out: &mut Vec<u8>, offset_delta: i32, ts_delta: i64, r: &NewRecord<'_>) {
    let mut body = Vec::with_capacity(encoded_len_hint(r));
    body.push(0);
    write_varlong(&mut body, ts_delta);
    write_varint(&mut body, offset_delta);
    write_nullable(&mut body, r.key);
    write_nullable(&mut body, r.value);
    write_varint(&mut body, r.headers.len() as i32);
    for (k, v) in &r.headers {
        write_nullable(&mut body, Some(k));
        write_nullable(&mut body, *v);
    }
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

struct BatchFields {
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records_count: i32,
}

fn assemble(f: &BatchFields, records_area: &[u8]) -> Vec<u8> {
    let size = HEADER_SIZE + records_area.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&f.base_offset.to_be_bytes());
    out.extend_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&f.attributes.to_be_bytes());
    out.extend_from_slice(&f.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&f.base_timestamp.to_be_bytes());
    out.extend_from_slice(&f.max_timestamp.to_be_bytes());
    out.extend_from_slice(&f.producer_id.to_be_bytes());
    out.extend_from_slice(&f.producer_epoch.to_be_bytes());
    out.extend_from_slice(&f.base_sequence.to_be_bytes());
    out.extend_from_slice(&f.records_count.to_be_bytes());
    out.extend_from_slice(records_area);
    let crc = crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Re-encodes `batch` with only `kept` (some of its own records, in offset order), as
/// Kafka's cleaner does: same base offset, last offset delta (so the last sequence survives),
/// producer fields, leader epoch, timestamp type and codec. With `delete_horizon` the
/// attribute bit 6 is set and `baseTimestamp` holds the horizon (record timestamps stay
/// absolute through their deltas); otherwise `baseTimestamp` is the first kept record's.
/// `kept` must not be empty ([`empty_batch_like`] writes an empty batch).
///
/// # Errors
/// The batch's codec is disabled in this build.
pub(crate) fn rebuild_with(
    batch: &RecordBatch<'_>,
    kept: &[Record<'_>],
    delete_horizon: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let base_offset = batch.base_offset();
    let base_ts = delete_horizon.unwrap_or_else(|| kept.first().map_or(-1, |r| r.timestamp));
    let max_ts = match batch.timestamp_type() {
        TimestampType::LogAppendTime => batch.max_timestamp(),
        TimestampType::CreateTime => kept.iter().map(|r| r.timestamp).max().unwrap_or(-1),
    };
    let mut body = Vec::new();
    for r in kept {
        let record = NewRecord {
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers.clone(),
        };
        encode_record(
            &mut body,
            (r.offset - base_offset) as i32,
            r.timestamp - base_ts,
            &record,
        );
    }
    let records_area = match batch.compression()? {
        Compression::None => body,
        codec => compression::compress(codec, &body)?,
    };
    let mut attributes = batch.attributes() & !DELETE_HORIZON_BIT;
    if delete_horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let mut out = assemble(
        &BatchFields {
            base_offset,
            attributes,
            last_offset_delta: batch.last_offset_delta(),
            base_timestamp: base_ts,
            max_timestamp: max_ts,
            producer_id: batch.producer_id().0,
            producer_epoch: batch.producer_epoch().0,
            base_sequence: batch.base_sequence().0,
            records_count: kept.len() as i32,
        },
        &records_area,
    );
    set_partition_leader_epoch(&mut out, batch.partition_leader_epoch());
    Ok(out)
}

/// An empty batch in place of `batch` (Kafka's `writeEmptyHeader`): no records, no codec,
/// the same offsets, producer fields, flags and max timestamp. The cleaner keeps one where
/// every record of a producer's last batch is removed, so its last sequence and epoch
/// survive a rebuild of producer state from the log.
pub(crate) fn empty_batch_like(batch: &RecordBatch<'_>) -> Vec<u8> {
    let attributes = batch.attributes() & (TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT);
    let mut out = assemble(
        &BatchFields {
            base_offset: batch.base_offset(),
            attributes,
            last_offset_delta: batch.last_offset_delta(),
            base_timestamp: -1,
            max_timestamp: batch.max_timestamp(),
            producer_id: batch.producer_id().0,
            producer_epoch: batch.producer_epoch().0,
            base_sequence: batch.base_sequence().0,
            records_count: 0,
        },
        &[],
    );
    set_partition_leader_epoch(&mut out, batch.partition_leader_epoch());
    out
}

/// Builds a COMMIT or ABORT marker batch exactly as Kafka's broker does: 78 bytes,
/// transactional + control, sequence -1, one control record with `timestamp` as both base and
/// max timestamp.
#[must_use]
pub fn build_marker(
    control: ControlType,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&control.id().to_be_bytes());
    let mut value = [0u8; 6];
    value[2..6].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut body = Vec::with_capacity(18);
    encode_record(
        &mut body,
        0,
        0,
        &NewRecord {
            timestamp,
            key: Some(&key),
            value: Some(&value),
            headers: Vec::new(),
        },
    );
    assemble(
        &BatchFields {
            base_offset: 0,
            attributes: TRANSACTIONAL_BIT | CONTROL_BIT,
            last_offset_delta: 0,
            base_timestamp: timestamp,
            max_timestamp: timestamp,
            producer_id: producer_id.0,
            producer_epoch: producer_epoch.0,
            base_sequence: -1,
            records_count: 1,
        },
        &body,
    )
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
    #[test]
    fn crc32c_pieces_and_combination_match_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = crc32c(&data);
        let mut d = Crc32cDigest::new();
        for piece in data.chunks(77) {
            d.update(piece);
        }
        assert_eq!(d.value(), whole);
        let (a, b) = data.split_at(333);
        assert_eq!(crc32c_combine(crc32c(a), crc32c(b), b.len() as u64), whole);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value from the Castagnoli catalogue, as Kafka's Crc32C computes it.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_agrees_with_an_independent_implementation() {
        // crc-fast picks a SIMD path by CPU and length; check it against the `crc32c` crate
        // (a different algorithm: interleaved SSE4.2 `crc32` streams, or tables) at every
        // alignment and across block-size boundaries.
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let lens = (0..300).chain([1023, 1024, 1025, 4095, 4096, 4097, 16_384, 16_385]);
        for len in lens {
            for start in [0, 1, 3, 7] {
                let s = &data[start..start + len];
                let fast = u64::from(crc32c(s));
                assert_eq!(u64::from(crc32c::crc32c(s)), fast, "len {len} at {start}");
            }
        }
    }

    #[test]
    fn header_layout_constants() {
        assert_eq!(LOG_OVERHEAD, 12);
        assert_eq!(MAGIC_OFFSET, 16);
        assert_eq!(CRC_OFFSET, 17);
        assert_eq!(ATTRIBUTES_OFFSET, 21);
        assert_eq!(RECORDS_COUNT_OFFSET, 57);
        assert_eq!(HEADER_SIZE, 61);
    }

    #[test]
    fn marker_is_78_bytes_and_parses() {
        let m = build_marker(ControlType::Abort, ProducerId(7), ProducerEpoch(3), 11, 1234);
        assert_eq!(m.len(), MARKER_BATCH_SIZE);
        let b = RecordBatch::parse_exact(&m).expect("marker parses");
        assert_eq!(&m[8..12], &66i32.to_be_bytes());
        assert!(b.is_control() && b.is_transactional());
        assert_eq!(b.base_sequence(), Sequence::NONE);
        assert_eq!(b.max_timestamp(), 1234);
        assert_eq!(
            b.marker().expect("valid"),
            Some(Marker {
                control_type: ControlType::Abort,
                coordinator_epoch: 11
            })
        );
    }

    #[test]
    fn varint_round_trip_extremes() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos), Ok(v));
        }
        let mut null = Vec::new();
        write_varint(&mut null, -1);
        assert_eq!(null, [0x01]);
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0xff; 6], &mut pos),
            Err(RecordErrorKind::VarintOverflow)
        );
    }

    #[test]
    fn build_and_iterate() {
        let recs = [
            NewRecord {
                timestamp: 100,
                key: None,
                value: Some(b"v0"),
                headers: vec![(b"h".as_slice(), None), (b"k2".as_slice(), Some(b"x".as_slice()))],
            },
            NewRecord::key_value(90, b"k", b""),
            NewRecord {
                timestamp: 130,
                key: Some(b"k3"),
                value: None,
                headers: vec![],
            },
        ];
        let bytes = BatchBuilder::idempotent(ProducerId(5), ProducerEpoch(1), Sequence(i32::MAX - 1))
            .build(&recs)
            .expect("build");
        let b = RecordBatch::parse_exact(&bytes).expect("parse");
        assert_eq!(b.records_count(), 3);
        assert_eq!(b.last_offset_delta(), 2);
        assert_eq!(b.max_timestamp(), 130);
        assert_eq!(b.base_sequence(), Sequence(i32::MAX - 1));
        assert_eq!(b.last_sequence(), Sequence(0));
        let records = b.records().expect("records");
        let got: Vec<_> = records.iter().collect::<Result<_, _>>().expect("decode");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].headers, recs[0].headers);
        assert_eq!(got[1].timestamp, 90);
        assert_eq!(got[1].value, Some(&b""[..]));
        assert_eq!(got[2].offset, 2);
        assert_eq!(got[2].value, None);
    }

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
