//! Durable appends (`eoslog.durability=sync`: an append returns only after an fsync covers
//! it) with group commit, by 1, 4 and 16 concurrent appenders, each its own idempotent
//! producer, against one fsync per append: a raw `write_all` + `fdatasync` of the same 16 KiB
//! batch to a file in the same directory, one append at a time.
//!
//! Group commit: while one appender fsyncs, the appends that arrive queue behind it, and the
//! next fsync covers all of them. Two ways to acknowledge: `sync` rows append with
//! `eoslog.durability=sync` (each appender has one append in flight); `pipelined` rows append
//! buffered and acknowledge each append once `Log::wait_durable` covers it, with up to 5
//! unacknowledged per appender, as a Kafka producer keeps 5 requests in flight. Criterion's time per iteration is the wall time per append
//! across all appenders (throughput in appends/s). Each round writes to a fresh log, created
//! and deleted outside the timed region; batches are built before timing.
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eoslog::{
    AppendOptions, AppendOrigin, AppendOutcome, BatchBuilder, Durability, Log, LogConfig, NewRecord, Offset,
    ProducerEpoch, ProducerId, Sequence,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Batches per appender per round.
const POOL: usize = 256;
/// Unacknowledged appends per pipelined appender: the default of Kafka's producer
/// (`max.in.flight.requests.per.connection`), the most that keeps idempotent ordering.
const IN_FLIGHT: usize = 5;

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

/// How an appender acknowledges its appends.
#[derive(Clone, Copy)]
enum Ack {
    /// `eoslog.durability=sync`: each append returns once durable (one in flight).
    EachAppend,
    /// Buffered appends, each acknowledged after `Log::wait_durable` covers it, with up to
    /// this many unacknowledged per appender (a producer's in-flight requests).
    Pipelined(usize),
}

/// `n` durable appends spread over the appenders; returns the wall time and the fsyncs.
fn durable_round(root: &Path, round: usize, pools: &[Vec<Vec<u8>>], n: usize, ack: Ack) -> (Duration, u64) {
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
                let options = AppendOptions {
                    durability: match ack {
                        Ack::EachAppend => None,
                        Ack::Pipelined(_) => Some(Durability::Buffered),
                    },
                    ..AppendOptions::new(AppendOrigin::Client)
                };
                let mut pending = VecDeque::new();
                let wait = |end: Offset| {
                    log.wait_durable(end).expect("wait_durable");
                };
                barrier.wait();
                for bytes in &pool[..mine] {
                    let info = match log.append_with(black_box(bytes), &options) {
                        Ok(AppendOutcome::Appended(info)) => info,
                        other => panic!("append not written: {other:?}"),
                    };
                    if let Ack::Pipelined(depth) = ack {
                        pending.push_back(info.last_offset.next());
                        if pending.len() == depth {
                            wait(pending.pop_front().expect("pending"));
                        }
                    }
                }
                pending.into_iter().for_each(wait);
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
    let modes = [
        ("log_sync_appenders", Ack::EachAppend),
        ("log_pipelined_5_in_flight_appenders", Ack::Pipelined(IN_FLIGHT)),
    ];
    for (name, ack) in modes {
        for appenders in [1usize, 4, 16] {
            let mut appends = 0u64;
            let mut fsyncs = 0u64;
            g.bench_function(BenchmarkId::new(name, appenders), |b| {
                b.iter_custom(|iters| {
                    rounds(iters, POOL * appenders, |round, n| {
                        let (t, f) = durable_round(root, round, &pools[..appenders], n, ack);
                        appends += n as u64;
                        fsyncs += f;
                        t
                    })
                });
            });
            eprintln!(
                "group_commit: {name}/{appenders}, {batch_len}-byte batches: {appends} appends, {fsyncs} fsyncs ({:.2} appends per fsync)",
                appends as f64 / fsyncs.max(1) as f64
            );
        }
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
