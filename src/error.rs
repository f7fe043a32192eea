//! Errors, one enum per domain, and the Kafka error codes they map to.
//!
//! I/O failures keep their `io::Error` as `source()` and name the operation and file; corruption
//! carries structured fields (file, byte position, what was expected and found). Expected
//! outcomes of an append (a duplicate, a fenced epoch, an out-of-order sequence) are *not*
//! errors: they are [`crate::AppendOutcome`] and [`crate::Rejection`] values.

use std::{io, path::PathBuf};

use thiserror::Error;

use crate::kafka::KafkaError;
use crate::types::Offset;

/// Why bytes are not a valid v2 record batch. Positions are relative to the batch start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the field or batch needs.
    #[error("batch truncated: {available} bytes available, {needed} needed")]
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// `batchLength` is smaller than a v2 header or negative.
    #[error("invalid batch length {declared}")]
    InvalidLength {
        /// The declared `batchLength` field.
        declared: i32,
    },
    /// Magic byte other than 2.
    #[error("unsupported magic {magic} (only v2 batches are supported)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// Stored CRC does not match the CRC-32C of bytes 21..end.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the batch header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// The compression codec in the attributes is not one Kafka defines.
    #[error("unknown compression codec id {codec}")]
    UnknownCodec {
        /// Attribute bits 0-2.
        codec: u8,
    },
    /// The codec is valid but this build of eoslog was compiled without it.
    #[error("compression codec {codec} is not enabled in this build")]
    CodecDisabled {
        /// Codec name.
        codec: &'static str,
    },
    /// The compressed payload could not be decompressed.
    #[error("{codec} payload could not be decompressed: {reason}")]
    Decompression {
        /// Codec name.
        codec: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A record inside the batch is malformed.
    #[error("record {index} at byte {position} of the records area: {kind}")]
    Record {
        /// Zero-based record index.
        index: i32,
        /// Byte position inside the (decompressed) records area.
        position: u64,
        /// What is wrong.
        kind: RecordErrorKind,
    },
    /// `recordsCount` is negative.
    #[error("negative record count {count}")]
    NegativeRecordCount {
        /// Declared count.
        count: i32,
    },
    /// Bytes remain after `recordsCount` records.
    #[error("{remaining} bytes remain after the last record")]
    TrailingBytes {
        /// Bytes left over.
        remaining: u64,
    },
}

/// What is wrong with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordErrorKind {
    /// Ran out of bytes in the middle of the record.
    #[error("premature end of record data")]
    PrematureEof,
    /// A varint longer than 5 (or a varlong longer than 10) bytes.
    #[error("varint too long")]
    VarintOverflow,
    /// A negative length other than -1, or a length past the record.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// The bytes consumed differ from the declared record length.
    #[error("record length {declared} but {consumed} bytes consumed")]
    LengthMismatch {
        /// Declared length.
        declared: i64,
        /// Bytes actually used.
        consumed: u64,
    },
    /// A negative header count.
    #[error("invalid header count {0}")]
    InvalidHeaderCount(i64),
    /// A null header key.
    #[error("null header key")]
    NullHeaderKey,
    /// A control record whose key or value is too short, null or of a negative version.
    #[error("invalid control record")]
    InvalidControlRecord,
}

impl BatchError {
    /// The Kafka error code a leader returns when a produce carries this batch.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            BatchError::UnknownCodec { .. } | BatchError::CodecDisabled { .. } => {
                KafkaError::UnsupportedCompressionType
            }
            BatchError::UnsupportedMagic { .. }
            | BatchError::Record { .. }
            | BatchError::NegativeRecordCount { .. }
            | BatchError::TrailingBytes { .. } => KafkaError::InvalidRecord,
            _ => KafkaError::CorruptMessage,
        }
    }
}

/// Which file of a partition directory is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A `.log` segment file.
    Log,
    /// A `.index` offset index.
    OffsetIndex,
    /// A `.timeindex` time index.
    TimeIndex,
    /// A `.txnindex` transaction index.
    TxnIndex,
    /// A `.snapshot` producer-state snapshot.
    Snapshot,
    /// A checkpoint file.
    Checkpoint,
}

/// Damage found in stored data: which file, where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("corrupt {kind:?} file {path} at byte {position}: {detail}")]
pub struct Corruption {
    /// The damaged file.
    pub path: PathBuf,
    /// What kind of file it is.
    pub kind: FileKind,
    /// Byte position of the damage within the file.
    pub position: u64,
    /// What is wrong.
    pub detail: CorruptionDetail,
}

/// What is wrong at a corrupt position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CorruptionDetail {
    /// An invalid record batch.
    #[error("{0}")]
    Batch(#[from] BatchError),
    /// A batch whose offsets go backwards or leave the segment.
    #[error("batch offsets {base}..={last} out of order (expected >= {expected})")]
    OffsetOrder {
        /// Base offset found.
        base: i64,
        /// Last offset found.
        last: i64,
        /// Smallest acceptable base offset.
        expected: i64,
    },
    /// A file whose length is not a multiple of its entry size.
    #[error("length {len} is not a multiple of the {entry}-byte entry")]
    Length {
        /// File length.
        len: u64,
        /// Entry size.
        entry: u64,
    },
    /// A checksum mismatch in a self-checksummed file.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// Anything else, named.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A failure of the storage underneath the log: I/O, damage, or a log that refuses writes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation failed.
    #[error("{op} failed on {}", path.display())]
    Io {
        /// The operation (`"write"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Stored data is damaged where it cannot be repaired by truncating a torn tail.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// An earlier write or fsync failed, so the log no longer knows what reached the disk.
    /// It refuses every write until it is reopened (which runs recovery). Retrying an fsync
    /// after a failure can report success for data the kernel already dropped (fsyncgate).
    #[error("log refuses writes after an earlier I/O failure; reopen it to recover")]
    Poisoned,
    /// Another process or `Log` holds the directory lock.
    #[error("partition directory {} is locked by another owner", path.display())]
    Locked {
        /// The partition directory.
        path: PathBuf,
    },
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// A negative offset was given where a log position is required.
    #[error("invalid offset {offset}")]
    InvalidOffset {
        /// The offset given.
        offset: Offset,
    },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Kafka maps storage failures to `KAFKA_STORAGE_ERROR`; an invalid offset argument is
    /// `OFFSET_OUT_OF_RANGE`.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            StorageError::InvalidOffset { .. } => KafkaError::OffsetOutOfRange,
            _ => KafkaError::KafkaStorageError,
        }
    }
}

/// Why a log could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Storage failed or is damaged below the recovery point.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// An invalid configuration key or value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key eoslog does not know.
    #[error("unknown config key {key:?}")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A list operation (Kafka's APPEND or SUBTRACT) on a key whose value is not a list.
    #[error("{key} is not a list config: only cleanup.policy takes APPEND and SUBTRACT")]
    NotAList {
        /// The key.
        key: String,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// Why an append wrote nothing (besides the expected producer outcomes in
/// [`crate::Rejection`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppendError {
    /// Storage failed; the log is now poisoned.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A batch is malformed (bad CRC, size, magic, records).
    #[error("batch {batch} (at byte {position} of the input) is invalid")]
    InvalidBatch {
        /// Zero-based index of the batch in the append.
        batch: usize,
        /// Byte position of the batch in the input.
        position: u64,
        /// What is wrong.
        #[source]
        source: BatchError,
    },
    /// A batch breaks a leader rule (client control batch, record count, base offset ...).
    #[error("batch {batch} is not acceptable: {reason}")]
    InvalidRecord {
        /// Zero-based index of the batch in the append.
        batch: usize,
        /// The rule broken.
        reason: InvalidRecordReason,
    },
    /// Records of a batch broke the leader's per-record rules (Kafka's `LogValidator`: a
    /// key in a compacted log, the timestamp bounds). Every record at fault is listed, in
    /// order, as Kafka lists them in its `RecordValidationException`; nothing of the batch
    /// is stored. The Kafka code is `INVALID_TIMESTAMP` when any of them is a timestamp
    /// refusal, otherwise `INVALID_RECORD`.
    #[error("batch {batch}: {} record(s) refused, the first: {}", records.len(), records.first().map_or_else(String::new, ToString::to_string))]
    RecordsRefused {
        /// Zero-based index of the batch in the append.
        batch: usize,
        /// The records at fault, in batch order (never empty).
        records: Vec<RefusedRecord>,
    },
    /// A batch is larger than `max.message.bytes`.
    #[error("batch {batch} has {size} bytes, more than max.message.bytes {max}")]
    MessageTooLarge {
        /// Zero-based index of the batch in the append.
        batch: usize,
        /// Batch size in bytes.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The append is larger than `segment.bytes` and can never fit a segment.
    #[error("append of {size} bytes exceeds segment.bytes {max}")]
    RecordListTooLarge {
        /// Append size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A replicated batch does not start at or after the log end offset, or batches
    /// within one append go backwards.
    #[error("replicated batch at offset {got} but the next offset must be at least {expected}")]
    UnexpectedOffset {
        /// The smallest acceptable base offset.
        expected: Offset,
        /// The base offset found.
        got: Offset,
    },
    /// The input holds no batch.
    #[error("append holds no record batch")]
    Empty,
    /// A [`Durability::SyncEachAppend`](crate::Durability::SyncEachAppend) append (or a
    /// duplicate answered under it) was placed, but a truncation
    /// ([`Log::truncate_to`](crate::Log::truncate_to),
    /// [`Log::truncate_fully_and_start_at`](crate::Log::truncate_fully_and_start_at): a
    /// leader change) ran before an fsync covered it. Its records may be gone, or their
    /// offsets may now hold other records, so the append is not acknowledged. Kafka fails
    /// the produce requests waiting on a replica that stops leading the same way; the
    /// producer retries, and a retry of records that survived is answered as a duplicate.
    #[error("records {first_offset}..={last_offset} were not acknowledged: the log was truncated before they became durable")]
    TruncatedBeforeDurable {
        /// First offset the append was given.
        first_offset: Offset,
        /// Last offset the append was given.
        last_offset: Offset,
    },
}

/// Which leader-side validation rule a batch broke (all map to `INVALID_RECORD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidRecordReason {
    /// Clients may not produce control batches.
    #[error("control batches may not come from clients")]
    ControlBatchFromClient,
    /// `recordsCount` must equal `lastOffsetDelta + 1` and be positive.
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    RecordCountMismatch {
        /// `recordsCount`.
        count: i32,
        /// `lastOffsetDelta`.
        last_offset_delta: i32,
    },
    /// A client batch must carry base offset 0.
    #[error("client batch has base offset {0}, expected 0")]
    NonZeroBaseOffset(i64),
    /// A batch with a producer id must have a base sequence >= 0.
    #[error("producer batch without a sequence")]
    MissingSequence,
    /// A control batch that is not a single well-formed marker.
    #[error("malformed control batch")]
    MalformedControlBatch,
    /// A transactional batch without a producer id.
    #[error("transactional batch without a producer id")]
    TransactionalWithoutProducer,
    /// A v2 produce must carry exactly one batch per partition.
    #[error("a client append must hold exactly one batch")]
    MultipleBatches,
    /// A record's offset delta does not match its position in the batch.
    #[error("record offset delta out of sequence")]
    RecordOffsetMismatch,
}

/// One record refused by the leader's per-record rules, in
/// [`AppendError::RecordsRefused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{}{reason}", index.map_or_else(String::new, |i| format!("record {i}: ")))]
pub struct RefusedRecord {
    /// Zero-based index of the record in its batch; `None` when the batch's header was
    /// judged without decoding its records (`eoslog.validate.records=false`).
    pub index: Option<usize>,
    /// The rule it broke.
    pub reason: RecordRefusal,
}

/// Which per-record rule a record broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordRefusal {
    /// A record without a key for a compacted log (`cleanup.policy=compact`): compaction
    /// keeps the latest record per key and has no place for it. Kafka refuses it too
    /// (`INVALID_RECORD`), and does not judge its timestamp.
    #[error("compacted topic cannot accept message without key")]
    MissingKeyInCompactedLog,
    /// Its timestamp (`INVALID_TIMESTAMP`).
    #[error("{0}")]
    Timestamp(InvalidTimestampReason),
}

/// Why a record's timestamp was refused (both map to `INVALID_TIMESTAMP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidTimestampReason {
    /// With `message.timestamp.type=CreateTime`, the timestamp lies outside the window that
    /// `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms` open around the
    /// log's clock.
    #[error("timestamp {timestamp} is out of range; the timestamp should be within [{earliest}, {latest}]")]
    OutOfRange {
        /// The record's timestamp.
        timestamp: i64,
        /// The log's clock minus `message.timestamp.before.max.ms`.
        earliest: i64,
        /// The log's clock plus `message.timestamp.after.max.ms`.
        latest: i64,
    },
    /// A producer set the LogAppendTime bit on a batch for a log that stamps LogAppendTime
    /// itself (or on a batch whose records carry no timestamp).
    #[error("producers may not set the timestamp type to LogAppendTime")]
    LogAppendTimeFromProducer,
}

impl AppendError {
    /// The Kafka error code a broker returns for this failure.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            AppendError::Storage(e) => e.kafka_error(),
            AppendError::InvalidBatch { source, .. } => source.kafka_error(),
            AppendError::InvalidRecord { .. } | AppendError::Empty => KafkaError::InvalidRecord,
            AppendError::RecordsRefused { records, .. } => {
                if records
                    .iter()
                    .any(|r| matches!(r.reason, RecordRefusal::Timestamp(_)))
                {
                    KafkaError::InvalidTimestamp
                } else {
                    KafkaError::InvalidRecord
                }
            }
            AppendError::MessageTooLarge { .. } => KafkaError::MessageTooLarge,
            AppendError::RecordListTooLarge { .. } => KafkaError::RecordListTooLarge,
            AppendError::UnexpectedOffset { .. } => KafkaError::UnknownServerError,
            AppendError::TruncatedBeforeDurable { .. } => KafkaError::NotLeaderOrFollower,
        }
    }
}

/// Why a read or an offset-moving operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Storage failed or data below the recovery point is damaged.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The offset is outside `[log_start_offset, bound]`.
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: Offset,
        /// The log start offset.
        log_start: Offset,
        /// The largest acceptable offset.
        log_end: Offset,
    },
}

impl ReadError {
    /// The Kafka error code a broker returns for this failure.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ReadError::Storage(e) => e.kafka_error(),
            ReadError::OffsetOutOfRange { .. } => KafkaError::OffsetOutOfRange,
        }
    }
}
