//! Fuzzed bytes written into a valid partition directory's files (indexes, snapshots,
//! checkpoints, segment tails), then `Log::open`, reads at every isolation, `verify`, an
//! append, close and reopen. Never panics; errors are fine. See `../harness/index_files.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/index_files.rs"]
mod index_files;

fuzz_target!(|data: &[u8]| index_files::run(data));
