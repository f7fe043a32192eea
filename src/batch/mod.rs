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
//! batch or record is a [`BatchError`](crate::BatchError) naming what and where.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the header layout, attribute bits, timestamp and control types |
//! | `crc.rs` | CRC-32C, whole, over pieces and combined |
//! | `view.rs` | [`RecordBatch`]: parsing, header fields, in-place edits; [`BatchIter`] |
//! | `records.rs` | decompression, the record iterator, the control record of a marker |
//! | `varint.rs` | zigzag varints and varlongs |
//! | `build.rs` | [`BatchBuilder`], [`build_marker`], the cleaner's re-encoding |

mod build;
mod crc;
mod records;
mod varint;
mod view;

pub use build::{build_marker, BatchBuilder, NewRecord};
pub(crate) use build::{empty_batch_like, rebuild_with, recompressed};
pub use crc::crc32c;
pub(crate) use crc::{crc32c_combine, Crc32cDigest};
pub use records::{Record, RecordIter, Records};
pub(crate) use view::{peek_batch_size, set_base_offset, set_max_timestamp, set_partition_leader_epoch};
pub use view::{BatchIter, RecordBatch};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_constants() {
        assert_eq!(LOG_OVERHEAD, 12);
        assert_eq!(MAGIC_OFFSET, 16);
        assert_eq!(CRC_OFFSET, 17);
        assert_eq!(ATTRIBUTES_OFFSET, 21);
        assert_eq!(RECORDS_COUNT_OFFSET, 57);
        assert_eq!(HEADER_SIZE, 61);
    }
}
