//! Durable appends (`eoslog.durability=sync`: an append returns only after an fsync covers
//! it) with group commit, by 1, 4 and 16 concurrent appenders, each its own idempotent
//! producer, against one fsync per append: a raw `write_all` + `fdatasync` of the same 16 KiB
//! batch to a file in the same directory, one append at a time.
//!
//! Group commit: while one appender fsyncs, the appends that arrive queue behind it, and the
//! next fsync covers all of them. Criterion's time per iteration is the wall time per append
//! across all appenders (throughput in appends/s). Each round writes to a fresh log, created
//! and deleted outside the timed region; batches are built before timing.
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, Log, LogConfig, NewRecord, ProducerEpoch, ProducerId, Sequence,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Batches per appender per round.
const POOL: usize = 256;

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.set("segment.bytes", &i32::MAX.to_string())
        .expect("segment.bytes");
    c.set("eoslog.durability", "sync").expect("durability");
    c
}

fn batches(pid: i64) -> Vec<Vec<u8>> {
    let vals: Vec<Vec<u8>> = (0..RECORDS_PER_BATCH)
        .map(|r| (0..RECORD_BYTES).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect();
    let recs: Vec<NewRecord<'_>> = vals.iter().map(|v| NewRecord::value(T0, v)).collect();
    (0..POOL)
        .map(|i| {
            BatchBuilder::idempotent(
                ProducerId(pid),
                ProducerEpoch(0),
                Sequence((i * RECORDS_PER_BATCH) as i32),
            )
            .build(&recs)
            .expect("build batch")
        })
        .collect()
}

/// Runs `iters` appends in rounds of at most `per_round`, each timed by `f(round, n)`.
fn rounds(iters: u64, per_round: usize, mut f: impl FnMut(usize, usize) -> Duration) -> Duration {
    let mut left = iters as usize;
    let mut total = Duration::ZERO;
    let mut round = 0;
    while left > 0 {
        let n = left.min(per_round);
        total += f(round, n);
        left -= n;
        round += 1;
    }
    total
}

/// `n` durable appends spread over the appenders; returns the wall time and the fsyncs.
fn durable_round(root: &Path, round: usize, pools: &[Vec<Vec<u8>>], n: usize) -> (Duration, u64) {
    let dir = root.join(format!("gc-{}-{round}", pools.len()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Log::open(&dir, config()).expect("open log");
    let fsyncs_before = log.stats().fsyncs;
    let threads = pools.len();
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for (t, pool) in pools.iter().enumerate() {
            // Appender t takes appends t, t + threads, ...: n in all.
            let mine = (n + threads - 1 - t) / threads;
            let (log, barrier) = (&log, &barrier);
            s.spawn(move || {
                barrier.wait();
                for bytes in &pool[..mine] {
                    match log.append(black_box(bytes), AppendOrigin::Client) {
                        Ok(AppendOutcome::Appended(_)) => {}
                        other => panic!("append not written: {other:?}"),
                    }
                }
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    let elapsed = start.elapsed();
    let fsyncs = log.stats().fsyncs - fsyncs_before;
    drop(log);
    std::fs::remove_dir_all(&dir).expect("remove");
    (elapsed, fsyncs)
}

fn bench_group_commit(c: &mut Criterion) {
    // Write back what earlier benches left dirty, so that it does not slow these fsyncs.
    let _ = std::process::Command::new("sync").status();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let pools: Vec<Vec<Vec<u8>>> = (0..16).map(|p| batches(p + 1)).collect();
    let batch_len = pools[0][0].len();

    let mut g = c.benchmark_group("group_commit/16KiB_durable_append");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_write_fdatasync_per_append", |b| {
        b.iter_custom(|iters| {
            rounds(iters, POOL, |round, n| {
                let path = root.join(format!("raw-{round}.log"));
                let mut f = File::create(&path).expect("create");
                f.sync_all().expect("fsync");
                let start = Instant::now();
                for bytes in &pools[0][..n] {
                    f.write_all(black_box(bytes)).expect("write");
                    f.sync_data().expect("fdatasync");
                }
                let t = start.elapsed();
                drop(f);
                std::fs::remove_file(&path).expect("remove");
                t
            })
        });
    });
    for appenders in [1usize, 4, 16] {
        let mut appends = 0u64;
        let mut fsyncs = 0u64;
        g.bench_function(BenchmarkId::new("log_sync_appenders", appenders), |b| {
            b.iter_custom(|iters| {
                rounds(iters, POOL * appenders, |round, n| {
                    let (t, f) = durable_round(root, round, &pools[..appenders], n);
                    appends += n as u64;
                    fsyncs += f;
                    t
                })
            });
        });
        eprintln!(
            "group_commit: {appenders} appenders, {batch_len}-byte batches: {appends} appends, {fsyncs} fsyncs ({:.2} appends per fsync)",
            appends as f64 / fsyncs.max(1) as f64
        );
    }
    g.finish();
}

fn config_criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = bench_group_commit
}
criterion_main!(benches);
