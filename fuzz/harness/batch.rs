//! Harness of the `batch_decode` fuzz target, shared with `tests/fuzz_regressions.rs`.
//!
//! Invariant: no byte string makes the batch decoders panic. Every header accessor,
//! `validate_crc`, `records()` (all codecs) with full iteration, `marker()` and `BatchIter`
//! return values or errors, never panic.
//!
//! Input: `mode` byte, then the payload. `mode % 4`:
//! * 0: the payload as is (one or more concatenated batches);
//! * 1: the payload is fixed up in place: padded to a header, length field set to the payload
//!   size, magic 2, CRC recomputed, so decoding gets past `parse` and the CRC check;
//! * 2: a valid 61-byte header is prepended to the payload, which becomes the records area:
//!   attributes from `mode >> 2` (codec, timestamp type, transactional, control bits),
//!   `recordsCount` from the payload's first byte;
//! * 3: as 2, then the raw payload is appended again (a valid batch followed by garbage).
#![allow(dead_code)]

use std::hint::black_box;

use eoslog::{crc32c, BatchIter, RecordBatch, HEADER_SIZE, LOG_OVERHEAD};

const LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// Sets the length field, magic and CRC of the batch occupying all of `buf`.
fn seal(buf: &mut [u8]) {
    let length = i32::try_from(buf.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
    buf[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    buf[MAGIC_AT] = 2;
    let crc = crc32c(&buf[ATTRIBUTES_AT..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A valid v2 header for a records area of `records.len()` bytes.
fn header(attributes: i16, count: i32, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + records.len());
    out.extend_from_slice(&5i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // length, set by seal
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, set by seal
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).max(0).to_be_bytes()); // last offset delta
    out.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // base timestamp
    out.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // max timestamp
    out.extend_from_slice(&7i64.to_be_bytes()); // producer id
    out.extend_from_slice(&0i16.to_be_bytes()); // producer epoch
    out.extend_from_slice(&0i32.to_be_bytes()); // base sequence
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(records);
    seal(&mut out);
    out
}

/// The bytes the decoders see for a fuzz input.
pub fn prepare(data: &[u8]) -> Vec<u8> {
    let Some((&mode, payload)) = data.split_first() else {
        return Vec::new();
    };
    match mode % 4 {
        0 => payload.to_vec(),
        1 => {
            let mut buf = payload.to_vec();
            if buf.len() < HEADER_SIZE {
                buf.resize(HEADER_SIZE, 0);
            }
            seal(&mut buf);
            buf
        }
        _ => {
            let attributes = i16::from(mode >> 2) & 0x3f;
            let (count, records) = match payload.split_first() {
                Some((&c, rest)) => (i32::from(c), rest),
                None => (0, payload),
            };
            let mut buf = header(attributes, count, records);
            if mode % 4 == 3 {
                buf.extend_from_slice(payload);
            }
            buf
        }
    }
}

/// Calls every accessor of one batch and decodes all its records.
pub fn exercise(batch: &RecordBatch<'_>) {
    black_box(format!("{batch:?}"));
    black_box((
        batch.as_bytes().len(),
        batch.size(),
        batch.base_offset(),
        batch.last_offset_delta(),
        batch.last_offset(),
        batch.next_offset(),
        batch.partition_leader_epoch(),
        batch.magic(),
        batch.stored_crc(),
        batch.computed_crc(),
        batch.attributes(),
        batch.compression_id(),
    ));
    black_box((
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.is_control(),
        batch.has_delete_horizon(),
        batch.base_timestamp(),
        batch.max_timestamp(),
        batch.producer_id(),
        batch.producer_epoch(),
        batch.base_sequence(),
        batch.last_sequence(),
        batch.records_count(),
        batch.records_area().len(),
    ));
    if let Err(e) = batch.validate_crc() {
        black_box(e.to_string());
    }
    if let Ok(codec) = batch.compression() {
        black_box((codec.name(), codec.id(), codec.is_enabled()));
    }
    match batch.records() {
        Ok(records) => {
            black_box(records.count());
            for record in records.iter() {
                match record {
                    Ok(r) => black_box(format!("{r:?}")),
                    Err(e) => black_box(e.to_string()),
                };
            }
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
    match batch.marker() {
        Ok(Some(m)) => {
            black_box((m.control_type.name(), m.coordinator_epoch));
        }
        Ok(None) => {}
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

/// Runs the decoders over one fuzz input.
pub fn run(data: &[u8]) {
    let bytes = prepare(data);
    match RecordBatch::parse(&bytes) {
        Ok((batch, rest)) => {
            exercise(&batch);
            black_box(rest.len());
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
    if let Ok(batch) = RecordBatch::parse_exact(&bytes) {
        exercise(&batch);
    }
    let mut last_position = None;
    for item in BatchIter::new(&bytes) {
        match item {
            Ok((position, batch)) => {
                assert!(
                    last_position.is_none_or(|p| position > p),
                    "BatchIter positions must increase"
                );
                assert!(
                    position as usize + batch.size() <= bytes.len(),
                    "batch inside input"
                );
                last_position = Some(position);
                exercise(&batch);
            }
            Err((position, e)) => {
                black_box((position, e.to_string()));
            }
        }
    }
}
