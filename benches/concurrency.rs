//! Readers and the appender side by side on one log (64 MiB of 16 KiB idempotent batches,
//! warm page cache):
//!
//! * `concurrency/read_1MiB_bytes`: 1 MiB fetches (`Log::read(..).bytes()`) by 1 reader
//!   thread and by 2 concurrent reader threads; time per fetch across all readers. On 2
//!   cores, ideal scaling halves it.
//! * `concurrency/append_16KiB`: appends alone, and while 1 reader thread fetches in a loop.
//!   Readers take no lock the appender holds while it writes (segment list and aborted index
//!   are read under short read locks, data with positional reads), so the difference is the
//!   reader's share of the CPUs, not blocking.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, Isolation, Log, LogConfig, NewRecord, Offset, ProducerEpoch,
    ProducerId, Sequence,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const LOG_BATCHES: usize = 4096; // 64 MiB
const FETCH: usize = 1 << 20;
const APPEND_POOL: usize = 2000;

fn batches(pid: i64, n: usize) -> Vec<Vec<u8>> {
    let vals: Vec<Vec<u8>> = (0..RECORDS_PER_BATCH)
        .map(|r| (0..RECORD_BYTES).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect();
    let recs: Vec<NewRecord<'_>> = vals.iter().map(|v| NewRecord::value(T0, v)).collect();
    (0..n)
        .map(|i| {
            BatchBuilder::idempotent(
                ProducerId(pid),
                ProducerEpoch(0),
                Sequence((i * RECORDS_PER_BATCH) as i32),
            )
            .build(&recs)
            .expect("build")
        })
        .collect()
}

fn must_append(outcome: Result<AppendOutcome, eoslog::AppendError>) {
    match outcome {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.set("segment.bytes", &i32::MAX.to_string()).expect("config");
    c
}

/// One fetch at the `i`-th of a fixed spread of start offsets.
fn fetch(log: &Log, i: usize) -> usize {
    let records = (LOG_BATCHES * RECORDS_PER_BATCH) as i64;
    let from = Offset((i as i64 * 7919 * RECORDS_PER_BATCH as i64) % (records - 1024));
    let r = log.read(from, FETCH, Isolation::ReadUncommitted).expect("read");
    black_box(r.bytes().expect("bytes")).len()
}

fn bench_concurrency(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = Log::open(tmp.path().join("c-0"), config()).expect("open");
    for b in batches(1, LOG_BATCHES) {
        must_append(log.append(&b, AppendOrigin::Client));
    }
    let appends = batches(2, APPEND_POOL);

    let mut g = c.benchmark_group("concurrency/read_1MiB_bytes");
    g.throughput(Throughput::Elements(1));
    for readers in [1usize, 2] {
        g.bench_function(BenchmarkId::new("readers", readers), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(readers + 1);
                let mut start = Instant::now();
                std::thread::scope(|s| {
                    for r in 0..readers {
                        let (log, barrier) = (&log, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            let mut i = r;
                            while i < iters as usize {
                                fetch(log, i);
                                i += readers;
                            }
                        });
                    }
                    barrier.wait();
                    start = Instant::now();
                });
                start.elapsed()
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("concurrency/append_16KiB");
    g.throughput(Throughput::Bytes(appends[0].len() as u64));
    for with_reader in [false, true] {
        let name = if with_reader { "with_1_reader" } else { "alone" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                let mut round = 0;
                while left > 0 {
                    let n = left.min(APPEND_POOL);
                    let dir = tmp.path().join(format!("a-{name}-{round}"));
                    let target = Log::open(&dir, config()).expect("open");
                    let stop = AtomicBool::new(false);
                    std::thread::scope(|s| {
                        if with_reader {
                            let (log, stop) = (&log, &stop);
                            s.spawn(move || {
                                let mut i = 0;
                                while !stop.load(Ordering::Relaxed) {
                                    fetch(log, i);
                                    i += 1;
                                }
                            });
                        }
                        let start = Instant::now();
                        for bytes in &appends[..n] {
                            must_append(target.append(black_box(bytes), AppendOrigin::Client));
                        }
                        total += start.elapsed();
                        stop.store(true, Ordering::Relaxed);
                    });
                    drop(target);
                    std::fs::remove_dir_all(&dir).expect("remove");
                    left -= n;
                    round += 1;
                }
                total
            });
        });
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
    targets = bench_concurrency
}
criterion_main!(benches);
