//! Opening a log (logs of 16 KiB idempotent batches; default config, so a 1 GiB log is one
//! segment).
//!
//! * `recovery/clean_open`: `Log::open` after a clean `close`, for an empty log and logs of
//!   64 MiB, 256 MiB and 1 GiB (set `EOSLOG_BENCH_SIZES_MIB`, e.g. `64,256`, to choose). The
//!   close after each open is outside the timed region. Should not grow with the log size.
//! * `recovery/crash_replay/<size>`: the log is dropped without `close` and
//!   `eoslog.checkpoint` deleted, so `Log::open` recovers (re-validates and replays) the
//!   whole log; against a raw sequential `read_at` of the same segment file(s) in 1 MiB
//!   chunks, in the same page-cache state.
//!
//! * `recovery/many_producers/<n>`: `Log::open` after a clean `close` of a log written by
//!   `n` idempotent producers (100k and 1M; `EOSLOG_BENCH_PRODUCERS=100000,...` to choose),
//!   each with a full dedup window (5 batches): the open decodes the snapshot's window
//!   trailer and rebuilds every producer. Against a raw `read_at` of the same snapshot file.
//!   Goal: at most 1 s per million producers, linear in the count. Warm only.
//!
//! The first two run warm (files in the page cache) and cold (`sync` then
//! `echo 3 > /proc/sys/vm/drop_caches` before every timed open, outside the timed region)
//! when the cache can be dropped; cold runs are skipped otherwise, with a message.
#![allow(missing_docs)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, Log, LogConfig, NewRecord, ProducerEpoch, ProducerId,
    Sequence, CHECKPOINT_FILE,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;

/// The comma-separated numbers in environment variable `name`, else `default`.
fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name).ok().map_or_else(
        || default.to_vec(),
        |s| s.split(',').map(|v| v.trim().parse().expect(name)).collect(),
    )
}

fn sizes_mib() -> Vec<u64> {
    env_list("EOSLOG_BENCH_SIZES_MIB", &[64, 256, 1024])
}

fn drop_caches() -> bool {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// Fills a log with 16 KiB idempotent batches up to `bytes` (never past it).
fn fill(log: &Log, bytes: u64) -> u64 {
    let vals: Vec<Vec<u8>> = (0..RECORDS_PER_BATCH)
        .map(|r| (0..RECORD_BYTES).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect();
    let recs: Vec<NewRecord<'_>> = vals.iter().map(|v| NewRecord::value(T0, v)).collect();
    let mut written = 0u64;
    let mut seq = 0i32;
    loop {
        let b = BatchBuilder::idempotent(ProducerId(1), ProducerEpoch(0), Sequence(seq))
            .build(&recs)
            .expect("build");
        if written + b.len() as u64 > bytes {
            return written;
        }
        match log.append(&b, AppendOrigin::Client) {
            Ok(AppendOutcome::Appended(_)) => {}
            other => panic!("append not written: {other:?}"),
        }
        written += b.len() as u64;
        seq += RECORDS_PER_BATCH as i32;
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn raw_read_all(files: &[PathBuf], buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    for p in files {
        let f = File::open(p).expect("open");
        let mut pos = 0u64;
        loop {
            let n = f.read_at(buf, pos).expect("read");
            if n == 0 {
                break;
            }
            black_box(&buf[..n]);
            pos += n as u64;
        }
        total += pos;
    }
    total
}

/// Leaves the log in `dir` as after a crash with no checkpoint.
fn crash(dir: &Path) {
    let log = Log::open(dir, LogConfig::default()).expect("open");
    drop(log);
    std::fs::remove_file(dir.join(CHECKPOINT_FILE)).expect("remove checkpoint");
}

fn bench_recovery(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cold_ok = drop_caches();
    eprintln!(
        "recovery: drop_caches {}",
        if cold_ok {
            "works: cold runs included"
        } else {
            "FAILED: warm runs only"
        }
    );
    let mut modes = vec![("warm", false)];
    if cold_ok {
        modes.push(("cold", true));
    }

    // Logs: an empty one and one per size, closed cleanly.
    let mut logs: Vec<(String, PathBuf, u64)> = Vec::new();
    {
        let dir = tmp.path().join("empty-0");
        Log::open(&dir, LogConfig::default())
            .expect("open")
            .close()
            .expect("close");
        logs.push(("empty".into(), dir, 0));
    }
    for mib in sizes_mib() {
        let dir = tmp.path().join(format!("log{mib}-0"));
        let log = Log::open(&dir, LogConfig::default()).expect("open");
        let t = Instant::now();
        let written = fill(&log, mib << 20);
        let segs = log.segments().len();
        log.close().expect("close");
        eprintln!(
            "recovery: {mib} MiB log: {written} bytes in {segs} segment(s), written and closed in {:.2?}",
            t.elapsed()
        );
        logs.push((format!("{mib}MiB"), dir, written));
    }

    for &(mode, cold) in &modes {
        let mut g = c.benchmark_group(format!("recovery/clean_open_{mode}"));
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Elements(1));
        if cold {
            // Criterion sizes warm-up and samples by the timed part only; each cold open also
            // costs ~0.2-1 s of untimed cache dropping, so keep the iteration count small.
            g.warm_up_time(Duration::from_millis(20));
            g.measurement_time(Duration::from_millis(200));
        }
        for (name, dir, _) in &logs {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if cold {
                            assert!(drop_caches());
                        }
                        let start = Instant::now();
                        let log = Log::open(dir, LogConfig::default()).expect("open");
                        total += start.elapsed();
                        assert_eq!(log.stats().recoveries, 0, "clean open ran recovery");
                        log.close().expect("close");
                    }
                    total
                });
            });
        }
        g.finish();
    }

    let mut buf = vec![0u8; 1 << 20];
    for (name, dir, written) in logs.iter().filter(|l| l.2 > 0) {
        crash(dir);
        let files = segment_files(dir);
        let mut g = c.benchmark_group(format!("recovery/crash_replay/{name}"));
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Bytes(*written));
        for &(mode, cold) in &modes {
            if cold {
                g.warm_up_time(Duration::from_millis(20));
            }
            g.bench_function(format!("baseline_raw_read_{mode}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if cold {
                            assert!(drop_caches());
                        }
                        let start = Instant::now();
                        let n = raw_read_all(&files, &mut buf);
                        total += start.elapsed();
                        assert!(n >= *written);
                    }
                    total
                });
            });
            g.bench_function(format!("log_open_recovery_{mode}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if cold {
                            assert!(drop_caches());
                        }
                        let start = Instant::now();
                        let log = Log::open(dir, LogConfig::default()).expect("open");
                        total += start.elapsed();
                        assert_eq!(log.stats().recoveries, 1, "open did not recover");
                        assert_eq!(log.stats().truncated_bytes_on_recovery, 0);
                        drop(log); // no close: stays unclean
                        std::fs::remove_file(dir.join(CHECKPOINT_FILE)).expect("remove checkpoint");
                    }
                    total
                });
            });
        }
        g.finish();
        std::fs::remove_dir_all(dir).expect("remove log");
    }
}

fn producer_counts() -> Vec<u64> {
    env_list("EOSLOG_BENCH_PRODUCERS", &[100_000, 1_000_000])
}

/// Writes `n` producers' five one-record idempotent batches each, then closes cleanly. The
/// batches carry the current time: producers older than `producer.id.expiration.ms` would be
/// expired by the open being measured.
fn fill_producers(dir: &Path, n: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let log = Log::open(dir, LogConfig::default()).expect("open");
    for pid in 0..n as i64 {
        for seq in 0..5 {
            let b = BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
                .build(&[NewRecord::value(now + i64::from(seq), b"v")])
                .expect("build");
            match log.append(&b, AppendOrigin::Client) {
                Ok(AppendOutcome::Appended(_)) => {}
                other => panic!("append not written: {other:?}"),
            }
        }
    }
    assert_eq!(log.stats().producers, n);
    log.close().expect("close");
}

fn newest_snapshot(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    v.sort();
    v.pop().expect("a snapshot")
}

fn bench_many_producers(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("recovery/many_producers");
    g.sampling_mode(SamplingMode::Flat);
    let mut buf = vec![0u8; 1 << 20];
    for n in producer_counts() {
        let dir = tmp.path().join(format!("producers{n}-0"));
        let t = Instant::now();
        fill_producers(&dir, n);
        let snapshot = newest_snapshot(&dir);
        let bytes = std::fs::metadata(&snapshot).expect("snapshot").len();
        eprintln!(
            "recovery: {n} producers with full windows written and closed in {:.2?}; snapshot {bytes} bytes",
            t.elapsed()
        );
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("baseline_raw_read_snapshot", n), |b| {
            b.iter(|| assert_eq!(raw_read_all(std::slice::from_ref(&snapshot), &mut buf), bytes));
        });
        g.bench_function(BenchmarkId::new("log_open", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let log = Log::open(&dir, LogConfig::default()).expect("open");
                    total += start.elapsed();
                    assert_eq!(log.stats().producers, n, "every producer restored");
                    assert_eq!(log.stats().recoveries, 0, "clean open ran recovery");
                    log.close().expect("close");
                }
                total
            });
        });
        std::fs::remove_dir_all(&dir).expect("remove log");
    }
    g.finish();
}

fn config_criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = bench_recovery, bench_many_producers
}
criterion_main!(benches);
