//! Raw bytes through the batch decoders: `RecordBatch::parse`/`parse_exact`, every header
//! accessor, `validate_crc`, `records()` with all codecs, `marker()` and `BatchIter`.
//! Never panics. See `../harness/batch.rs` for the input layout (a mode byte that can fix up
//! the length and CRC so decoding reaches the records).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/batch.rs"]
mod batch;

fuzz_target!(|data: &[u8]| batch::run(data));
