//! Keys and values of the internal topics through `eoslog::decode_internal_record`; group
//! metadata that decodes must round-trip. See `../harness/internal_records.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/internal_records.rs"]
mod internal_records;

fuzz_target!(|data: &[u8]| internal_records::run(data));
