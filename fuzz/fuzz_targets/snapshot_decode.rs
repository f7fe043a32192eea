//! Bytes through `eoslog::decode::snapshot`; whatever decodes must round-trip through
//! `encode_snapshot`. See `../harness/snapshot.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/snapshot.rs"]
mod snapshot;

fuzz_target!(|data: &[u8]| snapshot::run(data));
