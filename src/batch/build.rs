//! Writing batches: [`BatchBuilder`] for producers' data batches, [`build_marker`] for
//! COMMIT/ABORT markers, and the cleaner's re-encoding of a batch with fewer records.

use crate::compression::{self, Compression};
use crate::error::BatchError;
use crate::types::{Offset, ProducerEpoch, ProducerId, Sequence};

use super::varint::{write_varint, write_varlong};
use super::{
    crc32c, set_partition_leader_epoch, ControlType, Record, RecordBatch, TimestampType, ATTRIBUTES_OFFSET,
    COMPRESSION_MASK, CONTROL_BIT, CRC_OFFSET, DELETE_HORIZON_BIT, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2,
    TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};

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
            encode_record(&mut body, i as i32, r.timestamp.wrapping_sub(base_ts), r);
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
    rebuild(batch, kept, delete_horizon, batch.compression()?, None)
}

/// `batch` with every record, compressed with `codec` (a log's `compression.type`, as
/// Kafka's `LogValidator` recompresses): the same header fields but the codec bits, the
/// base timestamp (the first record's) and the max timestamp (from the records, for
/// CreateTime); the records numbered 0, 1, ... as Kafka's copy numbers them. `records` are
/// the batch's own, in order, as many as its last offset delta says.
///
/// `level` is the codec's (`compression.gzip.level`, ...), `None` its default.
///
/// # Errors
/// `codec` or the batch's own codec is disabled in this build.
pub(crate) fn recompressed(
    batch: &RecordBatch<'_>,
    records: &[Record<'_>],
    codec: Compression,
    level: Option<i32>,
) -> Result<Vec<u8>, BatchError> {
    let base = batch.base_offset();
    let numbered: Vec<Record<'_>> = records
        .iter()
        .zip(base..)
        .map(|(r, offset)| Record { offset, ..r.clone() })
        .collect();
    rebuild(batch, &numbered, None, codec, level)
}

fn rebuild(
    batch: &RecordBatch<'_>,
    kept: &[Record<'_>],
    delete_horizon: Option<i64>,
    codec: Compression,
    level: Option<i32>,
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
            r.timestamp.wrapping_sub(base_ts),
            &record,
        );
    }
    let records_area = match codec {
        Compression::None => body,
        codec => compression::compress_at(codec, &body, level)?,
    };
    let mut attributes =
        (batch.attributes() & !DELETE_HORIZON_BIT & !COMPRESSION_MASK) | i16::from(codec.id());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Marker, MARKER_BATCH_SIZE};

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
}
