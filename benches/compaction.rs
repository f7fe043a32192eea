//! Compaction.
//!
//! * `compaction/clean_32MiB`: one clean of a 32 MiB log of 16 KiB batches whose 1 KiB
//!   records cycle through 4,096 keys (the clean keeps one record in eight), against
//!   `baseline_raw_read_write`: reading the same segment files with `pread` and writing as
//!   many bytes as the clean wrote to a new file, fsynced (what any copy must do).
//! * `compaction/append_while_cleaning` and `compaction/read_while_cleaning`: 256 appends
//!   of a 16 KiB batch (resp. fetching the last 4 MiB in 1 MiB read_committed fetches) on a
//!   compacted log of 1 MiB segments kept at about 8 MiB, with a second thread cleaning
//!   every cleanable segment of the same log again and again, unthrottled (`cleaner_running`),
//!   throttled to 64 MiB/s of cleaner I/O (`cleaner_throttled_64MiBps`,
//!   `log.cleaner.io.max.bytes.per.second`), and without (`baseline_no_cleaner`).
//! * `compaction/append_while_cleaning_roll_fsync_maintenance`: the same three rows on a log
//!   with `eoslog.roll.fsync=maintenance` (a roll fsyncs nothing; maintenance does), with a
//!   third thread running the log's maintenance every 10 ms in every row, as an embedder's
//!   maintenance loop would (the broker's runs every second).
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CleanerOptions, Isolation, Log, LogConfig, NewRecord, Offset,
    RecordBatch,
};

const T0: i64 = 1_700_000_000_000;
const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;
const KEYS: usize = 4096;
const LOG_BYTES: u64 = 32 << 20;

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in [
        ("cleanup.policy", "compact"),
        ("segment.bytes", &(8u64 << 20).to_string()),
        ("min.cleanable.dirty.ratio", "0.01"),
    ] {
        c.set(k, v).expect("config");
    }
    c
}

/// A batch of 16 keyed records, keys `first..first+16` (mod 4,096).
fn batch(first: usize) -> Vec<u8> {
    let value = vec![0x5a; VALUE_BYTES];
    let keys: Vec<String> = (0..RECORDS_PER_BATCH)
        .map(|i| format!("key-{:06}", (first + i) % KEYS))
        .collect();
    let recs: Vec<NewRecord<'_>> = keys
        .iter()
        .map(|k| NewRecord::key_value(T0, k.as_bytes(), &value))
        .collect();
    BatchBuilder::new().build(&recs).expect("build")
}

fn must_append(log: &Log, bytes: &[u8]) {
    match log.append(bytes, AppendOrigin::Client) {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

/// Fills `dir` with `bytes` of batches and rolls, so that all of it is cleanable.
fn fill(dir: &Path, bytes: u64) -> Log {
    let log = Log::open(dir, config()).expect("open");
    let mut written = 0u64;
    let mut next = 0;
    while written < bytes {
        let b = batch(next);
        next += RECORDS_PER_BATCH;
        must_append(&log, &b);
        written += b.len() as u64;
    }
    log.roll_segment().expect("roll");
    log
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// A file removed when dropped (outside the timed part).
struct RemovedFile(std::path::PathBuf);

impl Drop for RemovedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A cleaned copy, closed and removed when dropped (outside the timed part).
struct RemoveOnDrop(#[allow(dead_code)] Log, std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn bench_clean(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("dir");
    let source = root.path().join("source-0");
    fill(&source, LOG_BYTES).close().expect("close");
    let segment_files: Vec<_> = std::fs::read_dir(&source)
        .expect("dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    // The bytes one clean writes, to give the baseline the same amount.
    let written = {
        let probe = root.path().join("probe-0");
        copy_dir(&source, &probe);
        let log = Log::open(&probe, config()).expect("open");
        let r = log
            .clean(&CleanerOptions::default(), true)
            .expect("clean")
            .expect("report");
        r.bytes_written
    };
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(LOG_BYTES));
    let mut round = 0;
    g.bench_function("clean_32MiB", |b| {
        b.iter_batched(
            || {
                round += 1;
                let dir = root.path().join(format!("run{round}-0"));
                copy_dir(&source, &dir);
                (Log::open(&dir, config()).expect("open"), dir)
            },
            |(log, dir)| {
                let r = log
                    .clean(&CleanerOptions::default(), true)
                    .expect("clean")
                    .expect("report");
                black_box(r.bytes_written);
                // Dropped after the timing: closing and removing the copy are not the clean.
                RemoveOnDrop(log, dir)
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function("baseline_raw_read_write", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter_batched(
            || RemovedFile(root.path().join("raw")),
            |out| {
                let mut f = File::create(&out.0).expect("create");
                let mut left = written;
                for p in &segment_files {
                    let src = File::open(p).expect("open");
                    let len = src.metadata().expect("meta").len();
                    let mut pos = 0;
                    while pos < len {
                        let n = src.read_at(&mut buf, pos).expect("read");
                        pos += n as u64;
                        let w = (n as u64).min(left) as usize;
                        f.write_all(&buf[..w]).expect("write");
                        left -= w as u64;
                    }
                }
                f.sync_all().expect("fsync");
                out
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

/// Runs `iters` rounds of `work` (timed) on a compacted log while another thread cleans it in
/// a loop (or not), each round followed (untimed) by `reset`. Returns the time of the work.
fn timed_with_cleaner(
    log: &Arc<Log>,
    cleaning: Option<CleanerOptions>,
    iters: u64,
    mut work: impl FnMut(),
    reset: impl Fn(),
) -> Duration {
    timed_with_background(log, cleaning, None, iters, &mut work, reset)
}

/// [`timed_with_cleaner`], with a thread running the log's maintenance every `maintain`.
fn timed_with_background(
    log: &Arc<Log>,
    cleaning: Option<CleanerOptions>,
    maintain: Option<Duration>,
    iters: u64,
    work: &mut dyn FnMut(),
    reset: impl Fn(),
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let maintenance = maintain.map(|period| {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                log.run_maintenance().expect("maintenance");
                std::thread::sleep(period);
            }
        })
    });
    let cleaner = cleaning.map(|options| {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut cleans = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Forced: every cleanable segment is cleaned again, dirty or not.
                if log.clean(&options, true).expect("clean").is_some() {
                    cleans += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            cleans
        })
    });
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = std::time::Instant::now();
        work();
        total += start.elapsed();
        reset();
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = cleaner {
        black_box(t.join().expect("cleaner"));
    }
    if let Some(t) = maintenance {
        t.join().expect("maintenance");
    }
    total
}

/// A compacted log of 1 MiB segments with 8 MiB of history (8 segments) for the cleaner.
fn busy_log(dir: &Path, extra: &[(&str, &str)], batches: &[Vec<u8>]) -> Arc<Log> {
    let mut busy = config();
    busy.set("segment.bytes", &(1u64 << 20).to_string())
        .expect("config");
    for (k, v) in extra {
        busy.set(k, v).expect("config");
    }
    let log = Arc::new(Log::open(dir, busy).expect("open"));
    for _ in 0..2 {
        for b in batches {
            must_append(&log, b);
        }
    }
    log
}

fn bench_concurrent(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("dir");
    let batches: Vec<Vec<u8>> = (0..256).map(|i| batch(i * RECORDS_PER_BATCH)).collect();
    let appended: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let log = busy_log(&root.path().join("busy-0"), &[], &batches);
    let deferred = busy_log(
        &root.path().join("busy-deferred-0"),
        &[("eoslog.roll.fsync", "maintenance")],
        &batches,
    );
    // Keeps the log at about its starting size: the oldest segments beyond 8 MiB go.
    let keep = |log: &Log| {
        let end = log.log_end_offset().0;
        let _ = log.delete_records_before(Offset((end - 8 * 1024).max(0)));
    };
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(appended));
    let unthrottled = CleanerOptions::default();
    let throttled = CleanerOptions::default().io_max_bytes_per_second(64.0 * 1024.0 * 1024.0);
    let rows = [
        ("baseline_no_cleaner", None),
        ("cleaner_running", Some(unthrottled)),
        ("cleaner_throttled_64MiBps", Some(throttled)),
    ];
    for (group, log, maintain) in [
        ("append_while_cleaning", &log, None),
        (
            "append_while_cleaning_roll_fsync_maintenance",
            &deferred,
            Some(Duration::from_millis(10)),
        ),
    ] {
        for (row, cleaning) in rows {
            g.bench_function(format!("{group}/{row}"), |b| {
                b.iter_custom(|iters| {
                    timed_with_background(
                        log,
                        cleaning,
                        maintain,
                        iters,
                        &mut || {
                            for bytes in &batches {
                                must_append(log, bytes);
                            }
                        },
                        || keep(log),
                    )
                });
            });
        }
    }
    g.throughput(Throughput::Bytes(4 << 20));
    for (name, cleaning) in [
        ("read_while_cleaning/baseline_no_cleaner", None),
        ("read_while_cleaning/cleaner_running", Some(unthrottled)),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed_with_cleaner(
                    &log,
                    cleaning,
                    iters,
                    || {
                        // 4 MiB from the active segment back (what consumers near the end read).
                        let mut from = Offset((log.log_end_offset().0 - 4096).max(log.log_start_offset().0));
                        let mut read = 0u64;
                        while read < 4 << 20 {
                            let r = log.read(from, 1 << 20, Isolation::ReadCommitted).expect("read");
                            if r.slices.is_empty() {
                                from = Offset((log.log_end_offset().0 - 4096).max(log.log_start_offset().0));
                                continue;
                            }
                            for s in &r.slices {
                                read += s.len;
                                let bytes = s.read().expect("bytes");
                                let mut rest = &bytes[..];
                                while let Ok((b, tail)) = RecordBatch::parse(rest) {
                                    from = Offset(b.next_offset());
                                    rest = tail;
                                }
                            }
                        }
                    },
                    || {},
                )
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_clean, bench_concurrent);
criterion_main!(benches);
