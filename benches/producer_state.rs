//! Per-batch producer-state cost, measured through `Log::append`: tiny idempotent batches (one
//! record with a 30-byte value) appended round-robin over 1, 10,000 and 1,000,000 registered
//! producers, against the same appends of a plain batch (producer id -1) of the same size on
//! the same log. The difference is the producer-state check and update.
//!
//! Producers are registered (one batch each) before timing. Batches are built outside the
//! timed region, in chunks, each with the producer's next sequence. Producer snapshots are
//! disabled (`eoslog.snapshot.interval.bytes` at its maximum) so that no snapshot of the
//! whole producer map lands in a timed region; segments are as large as allowed.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, Log, LogConfig, NewRecord, ProducerEpoch, ProducerId, Sequence,
};

const T0: i64 = 1_700_000_000_000;
const VALUE: [u8; 30] = *b"0123456789abcdefghijklmnopqrst";
const CHUNK: usize = 1 << 16;

fn idem(pid: i64, seq: i32) -> Vec<u8> {
    BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
        .build(&[NewRecord::value(T0, &VALUE)])
        .expect("build")
}

fn plain() -> Vec<u8> {
    BatchBuilder::new()
        .build(&[NewRecord::value(T0, &VALUE)])
        .expect("build")
}

fn must_append(outcome: Result<AppendOutcome, eoslog::AppendError>) {
    match outcome {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

fn bench_producer_state(c: &mut Criterion) {
    let mut config = LogConfig::default();
    config.set("eoslog.max.producer.ids", "2000000").expect("config");
    config
        .set("segment.bytes", &i32::MAX.to_string())
        .expect("config");
    config
        .set("eoslog.snapshot.interval.bytes", &i64::MAX.to_string())
        .expect("config");
    let plain_batch = plain();
    assert_eq!(plain_batch.len(), idem(1, 0).len());
    eprintln!("producer_state: batch = {} bytes", plain_batch.len());

    let mut g = c.benchmark_group("producer_state/append_tiny_batch");
    g.throughput(Throughput::Elements(1));
    for producers in [1usize, 10_000, 1_000_000] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = Log::open(tmp.path().join("p-0"), config.clone()).expect("open");
        let t = Instant::now();
        for p in 0..producers {
            must_append(log.append(&idem(p as i64, 0), AppendOrigin::Client));
        }
        eprintln!(
            "producer_state: registered {producers} producers in {:.2?} ({} in the log)",
            t.elapsed(),
            log.stats().producers
        );
        assert_eq!(log.stats().producers, producers as u64);

        // Iteration k goes to producer k % P with sequence 1 + k / P.
        let mut k: u64 = 0;
        g.bench_function(BenchmarkId::new("idempotent", producers), |b| {
            b.iter_custom(|iters| {
                let mut left = iters as usize;
                let mut total = Duration::ZERO;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let batches: Vec<Vec<u8>> = (0..n as u64)
                        .map(|j| {
                            let kk = k + j;
                            let p = (kk % producers as u64) as i64;
                            let seq = 1 + (kk / producers as u64) as i32;
                            idem(p, seq)
                        })
                        .collect();
                    let start = Instant::now();
                    for bytes in &batches {
                        must_append(log.append(black_box(bytes), AppendOrigin::Client));
                    }
                    total += start.elapsed();
                    k += n as u64;
                    left -= n;
                }
                total
            });
        });
        g.bench_function(BenchmarkId::new("baseline_plain", producers), |b| {
            b.iter_custom(|iters| {
                let mut left = iters as usize;
                let mut total = Duration::ZERO;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let batches: Vec<Vec<u8>> = (0..n).map(|_| plain_batch.clone()).collect();
                    let start = Instant::now();
                    for bytes in &batches {
                        must_append(log.append(black_box(bytes), AppendOrigin::Client));
                    }
                    total += start.elapsed();
                    left -= n;
                }
                total
            });
        });
        let s = log.stats();
        assert_eq!(s.producers, producers as u64, "no producer was evicted");
        eprintln!(
            "producer_state: P={producers}: {} appends, {} bytes in the log, {} evictions",
            s.appends, s.appended_bytes, s.producer_evictions
        );
        drop(log);
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
    targets = bench_producer_state
}
criterion_main!(benches);
