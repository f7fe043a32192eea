//! Compaction.
//!
//! * `compaction/clean_32MiB`: one clean of a 32 MiB log of 16 KiB batches whose 1 KiB
//!   records cycle through 4,096 keys (the clean keeps one record in eight), against
//!   `baseline_raw_read_write`: reading the same segment files with `pread` and writing as
//!   many bytes as the clean wrote to a new file, fsynced (what any copy must do). The clean
//!   has the default `file.delete.delay.ms`: the segments it replaces are set aside, their
//!   blocks freed later by maintenance, as Kafka's are by its scheduler.
//! * `compaction/append_while_cleaning` and `compaction/read_while_cleaning`: 256 appends
//!   of a 16 KiB batch (resp. fetching the last 4 MiB in 1 MiB read_committed fetches) on a
//!   compacted log of 1 MiB segments kept at about 8 MiB, with a second thread cleaning
//!   every cleanable segment of the same log again and again, unthrottled (`cleaner_running`),
//!   throttled to 64 MiB/s of cleaner I/O (`cleaner_throttled_64MiBps`,
//!   `log.cleaner.io.max.bytes.per.second`), and without (`baseline_no_cleaner`). This log
//!   has no maintenance thread, so it has `file.delete.delay.ms=0`: the cleaner unlinks the
//!   segments it replaces (and DeleteRecords those it drops), as before that config existed.
//! * `compaction/append_while_cleaning_roll_fsync_maintenance`: the same three rows on a log
//!   with `eoslog.roll.fsync=maintenance` (a roll fsyncs nothing; maintenance does), with a
//!   third thread running the log's maintenance every 10 ms in every row, as an embedder's
//!   maintenance loop would (the broker's runs every second), and `file.delete.delay.ms=50`:
//!   the replaced and dropped segments are set aside and that thread removes them within the
//!   same row (with Kafka's 60 s they would be freed after the row, outside its timing).
//! * After the group, paired rounds of both append groups: each round times
//!   `baseline_no_cleaner`, `cleaner_running` and `raw_copy_running` back to back (the
//!   order rotating), so the disk's drift falls on all alike (criterion times each row in
//!   its own stretch, and the disk's speed moves more between stretches than the cleaner's
//!   effect). `raw_copy_running` is the peer the cleaner is judged against: a thread that
//!   does nothing but copy 8 MiB in a loop (`pread` 1 MiB at a time, `write` to a new file,
//!   fsync, unlink), paced to write as many bytes a second as the cleaner wrote in its arms:
//!   the same I/O with no log in it. Prints each ratio of the summed times and the
//!   per-round median, and both write rates. `EOSLOG_BENCH_PAIRED_ROUNDS` (default 21)
//!   rounds of 4 iterations a row.
//! * After `clean_32MiB`, paired rounds of it and its baseline (`-- paired`, or `-- clean_32MiB`
//!   unless `--exact`): a clean with the default delay, a clean with `file.delete.delay.ms=0`
//!   (its originals unlinked, the freeing of their blocks inside the clean) and a raw copy
//!   back to back a round, the order rotating; prints each clean's throughput ratio to the
//!   raw copy of the summed times and the per-round median.
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
    // A copy of the log to clean, made durable before the timing (the clean's fsyncs would
    // otherwise also write back the copy), its pages read once as the raw copy's are.
    let mut fresh_copy_with = |config: LogConfig| {
        round += 1;
        let dir = root.path().join(format!("run{round}-0"));
        copy_dir(&source, &dir);
        for e in std::fs::read_dir(&dir).expect("dir") {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            black_box(bytes.len());
            File::open(&path).expect("open").sync_all().expect("fsync");
        }
        File::open(&dir).expect("open dir").sync_all().expect("fsync dir");
        (Log::open(&dir, config).expect("open"), dir)
    };
    let mut unlinking = config();
    unlinking.set("file.delete.delay.ms", "0").expect("config");
    g.bench_function("clean_32MiB", |b| {
        b.iter_batched(
            || fresh_copy_with(config()),
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
    let mut buf = vec![0u8; 1 << 20];
    let mut raw_copy = |out: RemovedFile| {
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
    };
    g.bench_function("baseline_raw_read_write", |b| {
        b.iter_batched(
            || RemovedFile(root.path().join("raw")),
            &mut raw_copy,
            BatchSize::PerIteration,
        );
    });
    g.finish();
    if !paired_wanted("clean_32MiB") {
        return;
    }
    // Paired: each round times a clean with the default `file.delete.delay.ms` (the
    // replaced segments set aside), a clean with 0 (unlinked, their blocks freed, within
    // the clean) and a raw copy, back to back in a rotating order, so the disk's drift
    // falls on all alike.
    // Before each timing, a directory fsync commits the journal's record of what the last arm
    // removed (its blocks freed at the unlink, their journal work landing in the next fsync),
    // so that no arm pays for another's cleanup.
    let settle = || {
        File::open(root.path())
            .expect("open root")
            .sync_all()
            .expect("fsync root")
    };
    let rounds = paired_rounds();
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut t = [0f64; 3];
        for k in 0..3 {
            let arm = (round + k) % 3;
            if arm < 2 {
                let (log, dir) = fresh_copy_with(if arm == 0 { config() } else { unlinking.clone() });
                settle();
                let start = std::time::Instant::now();
                let r = log
                    .clean(&CleanerOptions::default(), true)
                    .expect("clean")
                    .expect("report");
                t[arm] = start.elapsed().as_secs_f64();
                black_box(r.bytes_written);
                drop(RemoveOnDrop(log, dir));
            } else {
                let out = RemovedFile(root.path().join("raw"));
                settle();
                let start = std::time::Instant::now();
                let out = raw_copy(out);
                t[2] = start.elapsed().as_secs_f64();
                drop(out);
            }
        }
        times.push(t);
    }
    let sum = |i: usize| times.iter().map(|t| t[i]).sum::<f64>();
    for (i, name) in [
        (0, "set aside (default delay)"),
        (1, "unlinked (file.delete.delay.ms=0)"),
    ] {
        let mut each: Vec<f64> = times.iter().map(|t| t[2] / t[i]).collect();
        each.sort_by(f64::total_cmp);
        eprintln!(
            "paired clean_32MiB, {rounds} rounds, originals {name}: clean {:.2} ms, baseline_raw_read_write {:.2} ms per round; throughput clean / raw {:.3} of summed times; per round median {:.3} (range {:.3} to {:.3})",
            sum(i) * 1e3 / rounds as f64,
            sum(2) * 1e3 / rounds as f64,
            sum(2) / sum(i),
            each[each.len() / 2],
            each[0],
            each[each.len() - 1]
        );
    }
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
    timed_with_background(log, cleaning, None, iters, &mut work, reset).0
}

/// [`timed_with_cleaner`], with a thread running the log's maintenance every `maintain`;
/// also returns the bytes the cleaner wrote.
fn timed_with_background(
    log: &Arc<Log>,
    cleaning: Option<CleanerOptions>,
    maintain: Option<Duration>,
    iters: u64,
    work: &mut dyn FnMut(),
    reset: impl Fn(),
) -> (Duration, u64) {
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
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Forced: every cleanable segment is cleaned again, dirty or not.
                match log.clean(&options, true).expect("clean") {
                    Some(r) => written += r.bytes_written,
                    None => std::thread::yield_now(),
                }
            }
            written
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
    let written = cleaner.map_or(0, |t| t.join().expect("cleaner"));
    if let Some(t) = maintenance {
        t.join().expect("maintenance");
    }
    (total, written)
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
    let log = busy_log(
        &root.path().join("busy-0"),
        &[("file.delete.delay.ms", "0")],
        &batches,
    );
    let deferred = busy_log(
        &root.path().join("busy-deferred-0"),
        &[
            ("eoslog.roll.fsync", "maintenance"),
            ("file.delete.delay.ms", "50"),
        ],
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
    let append_groups = [
        ("append_while_cleaning", &log, None),
        (
            "append_while_cleaning_roll_fsync_maintenance",
            &deferred,
            Some(Duration::from_millis(10)),
        ),
    ];
    for (group, log, maintain) in append_groups {
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
                    .0
                });
            });
        }
    }
    for (group, log, maintain) in append_groups
        .into_iter()
        .filter(|_| paired_wanted("append_while"))
    {
        paired(group, |arm, pace| {
            let copier = (arm == Arm::RawCopy).then(|| RawCopier::start(root.path(), log, pace));
            let started = std::time::Instant::now();
            let (time, cleaned) = timed_with_background(
                log,
                (arm == Arm::Cleaner).then_some(unthrottled),
                maintain,
                PAIRED_ITERS,
                &mut || {
                    for bytes in &batches {
                        must_append(log, bytes);
                    }
                },
                || keep(log),
            );
            let copied = copier.map_or(0, RawCopier::stop);
            Sample {
                time,
                written: cleaned + copied,
                wall: started.elapsed(),
            }
        });
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

/// Whether the command line asks for a group's paired rounds: a `cargo bench` run (not
/// `--list`, `--test` or `--profile-time`), and no filter, or one that names them
/// (`paired`; `group` unless `--exact`).
fn paired_wanted(group: &str) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--profile-time",
        "--color",
        "--output-format",
        "--plotting-backend",
        "--format",
        "-s",
        "-b",
        "-c",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's test
    // mode), and a profiling run times one function.
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--profile-time") {
        return false;
    }
    let mut filters = Vec::new();
    let mut skip = false;
    let exact = args.iter().any(|a| a == "--exact");
    for a in &args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--list" || a == "--test" {
            return false;
        }
        if a.starts_with('-') {
            skip = TAKES_VALUE.contains(&a.as_str());
        } else {
            filters.push(a.as_str());
        }
    }
    filters.is_empty()
        || filters
            .iter()
            .any(|f| f.contains("paired") || (!exact && f.contains(group)))
}

/// `EOSLOG_BENCH_PAIRED_ROUNDS` (default 21).
fn paired_rounds() -> usize {
    std::env::var("EOSLOG_BENCH_PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21)
        .max(1)
}

/// Iterations of each row in a paired round.
const PAIRED_ITERS: u64 = 4;

/// What runs beside the appends in a paired round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Nothing,
    Cleaner,
    RawCopy,
}

/// A thread copying 8 MiB of the log's bytes in a loop with plain file I/O until stopped:
/// `pread` 1 MiB at a time from a copy of the log's oldest segments, `write` to a new file,
/// fsync, unlink. Cleaning's I/O with no log in it, at most `pace` bytes written a second.
struct RawCopier {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RawCopier {
    fn start(root: &Path, log: &Log, pace: f64) -> RawCopier {
        let dir = root.join("raw-copy");
        std::fs::create_dir_all(&dir).expect("dir");
        // The source: 8 MiB of the log as it is on disk (one file; its pages cached as the
        // segments the cleaner reads are).
        let src_path = dir.join("source");
        let mut src = File::create(&src_path).expect("create");
        let mut from = log.log_start_offset();
        let mut copied = 0u64;
        while copied < 8 << 20 {
            let r = log.read(from, 1 << 20, Isolation::ReadUncommitted).expect("read");
            let Some(last) = r.slices.last() else { break };
            for slice in &r.slices {
                let bytes = slice.read().expect("bytes");
                src.write_all(&bytes).expect("write");
                copied += bytes.len() as u64;
            }
            let bytes = last.read().expect("bytes");
            let mut rest = &bytes[..];
            while let Ok((b, tail)) = RecordBatch::parse(rest) {
                from = Offset(b.next_offset());
                rest = tail;
            }
        }
        src.sync_all().expect("fsync");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let src = File::open(&src_path).expect("open");
            let len = src.metadata().expect("meta").len();
            let mut buf = vec![0u8; 1 << 20];
            let (started, mut written, mut passes) = (std::time::Instant::now(), 0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                let out = dir.join(format!("copy-{passes}"));
                let mut f = File::create(&out).expect("create");
                let mut pos = 0;
                while pos < len && !flag.load(Ordering::Relaxed) {
                    // Ahead of the pace: wait (a little at a time, to stop promptly) until
                    // the bytes written so far are due.
                    let due = Duration::from_secs_f64(written as f64 / pace);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait.min(Duration::from_millis(2)));
                        continue;
                    }
                    let n = src.read_at(&mut buf, pos).expect("read");
                    f.write_all(&buf[..n]).expect("write");
                    pos += n as u64;
                    written += n as u64;
                }
                f.sync_all().expect("fsync");
                drop(f);
                std::fs::remove_file(&out).expect("remove");
                passes += 1;
            }
            written
        });
        RawCopier {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the copier; returns the bytes it wrote.
    fn stop(mut self) -> u64 {
        self.finish()
    }

    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().expect("raw copier"))
    }
}

impl Drop for RawCopier {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One arm of a paired round: the appends' time, the bytes the thread beside them wrote,
/// and the wall time it had to write them in.
struct Sample {
    time: Duration,
    written: u64,
    wall: Duration,
}

/// Times `run` with nothing, the cleaner and the raw copier beside it in each of
/// `EOSLOG_BENCH_PAIRED_ROUNDS` rounds, the order rotating, and prints the appends'
/// throughput with each against without, and with the cleaner against with the copier: of
/// the summed times, and the per-round median. The copier is paced to the bytes a second the
/// cleaner wrote in its arms so far (a first, untimed cleaner arm calibrates it), so the
/// two write alike and the ratio between them is the cost of the cleaner's own work.
fn paired(group: &str, mut run: impl FnMut(Arm, f64) -> Sample) {
    const ARMS: [Arm; 3] = [Arm::Nothing, Arm::Cleaner, Arm::RawCopy];
    let rounds = paired_rounds();
    let calibration = run(Arm::Cleaner, f64::INFINITY);
    let (mut cleaner_bytes, mut cleaner_wall) = (calibration.written, calibration.wall.as_secs_f64());
    let (mut copier_bytes, mut copier_wall) = (0u64, 0f64);
    let mut times = vec![[Duration::ZERO; 3]; rounds];
    for (round, t) in times.iter_mut().enumerate() {
        for k in 0..3 {
            let arm = (round + k) % 3;
            let pace = (cleaner_bytes as f64 / cleaner_wall).max(1.0);
            let sample = run(ARMS[arm], pace);
            t[arm] = sample.time;
            match ARMS[arm] {
                Arm::Cleaner => {
                    cleaner_bytes += sample.written;
                    cleaner_wall += sample.wall.as_secs_f64();
                }
                Arm::RawCopy => {
                    copier_bytes += sample.written;
                    copier_wall += sample.wall.as_secs_f64();
                }
                Arm::Nothing => {}
            }
        }
    }
    let per = |i: usize| {
        times.iter().map(|t| t[i].as_secs_f64()).sum::<f64>() * 1e3 / (rounds as f64 * PAIRED_ITERS as f64)
    };
    let mib_s = |bytes: u64, wall: f64| bytes as f64 / wall / f64::from(1u32 << 20);
    eprintln!(
        "paired {group}, {rounds} rounds of {PAIRED_ITERS} iterations: baseline_no_cleaner {:.2} ms, cleaner_running {:.2} ms, raw_copy_running {:.2} ms per iteration; the cleaner wrote {:.1} MiB/s, the copier {:.1} MiB/s",
        per(0),
        per(1),
        per(2),
        mib_s(cleaner_bytes, cleaner_wall),
        mib_s(copier_bytes, copier_wall),
    );
    // Throughput of arm `num` against arm `den`: the inverse ratio of their times.
    for (name, num, den) in [
        ("cleaner_running / baseline_no_cleaner", 1, 0),
        ("raw_copy_running / baseline_no_cleaner", 2, 0),
        ("cleaner_running / raw_copy_running", 1, 2),
    ] {
        let mut each: Vec<f64> = times
            .iter()
            .map(|t| t[den].as_secs_f64() / t[num].as_secs_f64())
            .collect();
        each.sort_by(f64::total_cmp);
        eprintln!(
            "paired throughput {group} {name}: {:.3} of summed times; per round median {:.3} (range {:.3} to {:.3})",
            per(den) / per(num),
            each[each.len() / 2],
            each[0],
            each[each.len() - 1]
        );
    }
}

criterion_group!(benches, bench_clean, bench_concurrent);
criterion_main!(benches);
