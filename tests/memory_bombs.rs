//! Invariant: the inputs that once made the engine allocate (and zero) gigabytes now run in
//! little memory. They do not panic, so the test measures this process's peak resident
//! memory: it is alone in its test binary (the measure is per process, and no other test may
//! run beside it), and it fails when it cannot measure rather than passing without a figure.
//! The inputs are fuzz crashers, replayed through the fuzz harness code (`fuzz/harness/`).

#[path = "../fuzz/harness/batch.rs"]
mod batch;
#[path = "../fuzz/harness/index_files.rs"]
mod index_files;

macro_rules! regression {
    ($name:literal) => {
        include_bytes!(concat!("fuzz_regressions/", $name)).as_slice()
    };
}

/// The high-water mark of this process's resident memory while `f` runs, in MiB (Linux:
/// `VmHWM`, reset first through `/proc/self/clear_refs`). Panics when the figure cannot be
/// read: a memory test that cannot measure must not pass.
fn peak_rss_mib(f: impl FnOnce()) -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (/proc/self/clear_refs)");
    f();
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmHWM in kB");
    kib / 1024
}

/// Memory bombs: a few bytes that made the engine allocate (and zero) gigabytes, which
/// libFuzzer reports as out-of-memory crashes under its default 2 GiB limit. Replaying them
/// does not panic, so the test measures the peak RSS instead (it failed with 2052 MiB and
/// 1557 MiB before the fixes). All run in one test, one after the other, because the
/// measure is per process.
///
/// * batch_decode-snappy-length-bomb (7 bytes): a snappy batch whose raw block declares an
///   uncompressed length near `i32::MAX`; `decompress_block` (src/compression.rs) trusted it
///   and resized its output to ~2 GiB before decoding a byte. Fixed: the declared length is
///   bounded by snappy's maximum expansion, and the decompressed area by 256 MiB.
/// * index_files-torn-tail-huge-length (19 bytes): after an unclean shutdown, a segment whose
///   tail is a batch header with a ~1.6 GiB length field. `Segment::recover` scans with
///   `limit = u64::MAX`, so `scan_batches` (src/segment/scan.rs) could not see that the batch ran
///   past the end of the file and resized its buffer to the declared length before reading.
///   Fixed: a length is never trusted beyond the file's end.
/// * a 64 GiB sparse `.index` beside a small segment (issue #13 review): loading an inactive
///   index read the whole file into memory. Fixed: an index with more entries than its
///   segment has bytes is refused before anything is read, and files are read in chunks.
#[test]
fn memory_bombs_stay_small() {
    const LIMIT_MIB: u64 = 512;
    let snappy = peak_rss_mib(|| batch::run(regression!("batch_decode-snappy-length-bomb")));
    let torn = peak_rss_mib(|| index_files::run(regression!("index_files-torn-tail-huge-length")));
    let sparse = huge_sparse_index_file();
    assert!(
        snappy < LIMIT_MIB && torn < LIMIT_MIB && sparse < LIMIT_MIB,
        "peak RSS in MiB: snappy batch of 7 bytes {snappy}, torn tail with a huge length field {torn}, 64 GiB sparse index {sparse}"
    );
    eprintln!("peak RSS in MiB: snappy batch {snappy}, torn tail {torn}, sparse index {sparse}");
}

/// A sparse `.index` of 64 GiB beside a small segment (a bad restore, a tool): loading it
/// must cost neither memory nor reading. It has more entries than its segment has bytes, so
/// it is refused before a byte is read, and rebuilt from the log.
fn huge_sparse_index_file() -> u64 {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("t-0");
    {
        let log = eoslog::Log::open(&path, eoslog::LogConfig::default()).expect("open");
        for i in 0..100 {
            let b = eoslog::BatchBuilder::new()
                .build(&[eoslog::NewRecord::value(
                    1_700_000_000_000,
                    format!("v{i}").as_bytes(),
                )])
                .expect("build");
            let _ = log.append(&b, eoslog::AppendOrigin::Client).expect("append");
        }
        log.roll_segment().expect("roll");
        log.close().expect("close");
    }
    let index = path.join(eoslog::file_name(0, "index"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .expect("open index")
        .set_len(64 << 30)
        .expect("sparse");
    let peak = peak_rss_mib(|| {
        let log = eoslog::Log::open(&path, eoslog::LogConfig::default()).expect("open");
        let (records, _) = log
            .read_records(eoslog::Offset(50), 1 << 10, eoslog::Isolation::ReadUncommitted)
            .expect("read");
        assert_eq!(records[0].offset.0, 50);
        log.close().expect("close");
    });
    assert!(
        std::fs::metadata(&index).expect("index").len() < 1 << 20,
        "rebuilt"
    );
    peak
}
