//! Invariant: no input found by the fuzzers panics, exhausts memory or breaks an invariant
//! again. Each minimised crasher from `cargo +nightly fuzz` is replayed on stable through the
//! same harness the fuzz target runs (`fuzz/harness/*.rs`). Issue #5.

#[path = "../fuzz/harness/batch.rs"]
mod batch_harness;
#[path = "../fuzz/harness/index_files.rs"]
mod index_files_harness;
#[path = "../fuzz/harness/snapshot.rs"]
mod snapshot_harness;

/// A snappy block of a few bytes declaring a ~2 GiB decompressed length was allocated before
/// decoding (OOM under the fuzzer). Fixed: the declared length is bounded by snappy's maximum
/// expansion ratio and the decompressed-area cap is 256 MiB.
#[test]
fn batch_decode_snappy_length_bomb() {
    batch_harness::run(include_bytes!("fuzz_regressions/batch_decode-snappy-length-bomb"));
}

/// A snapshot whose eoslog window trailer disagreed with Kafka's entry (negative offsets)
/// decoded, and re-encoding it changed the entries. Fixed: the trailer's batches must be in
/// order, non-negative, and end with the batch Kafka's entry names.
#[test]
fn snapshot_decode_negative_window_offset() {
    snapshot_harness::run(include_bytes!(
        "fuzz_regressions/snapshot_decode-negative-window-offset"
    ));
}

/// A torn `.log` tail whose length field claimed ~2 GiB made recovery buffer that much.
/// Fixed: a batch length is never trusted beyond the file's end.
#[test]
fn index_files_torn_tail_huge_length() {
    index_files_harness::run(include_bytes!(
        "fuzz_regressions/index_files-torn-tail-huge-length"
    ));
}

/// A `.txnindex` naming a marker at or past the next segment's base broke the ordering of
/// the in-memory aborted index (a debug assertion). Fixed: such an index is damaged, and its
/// segment is recovered (which rewrites it from the log).
#[test]
fn index_files_txnindex_order() {
    index_files_harness::run(include_bytes!("fuzz_regressions/index_files-txnindex-order"));
}
