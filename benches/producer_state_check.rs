//! The per-batch producer-state check and update alone (what an idempotent append adds to a
//! plain one), with 1, 10,000 and 1,000,000 producers, round-robin so every batch finds its
//! producer's entry cold in cache at 1M. Baseline in the same run: a lookup of the producer id
//! in a std `HashMap<i64, u64>` of the same size (the floor of any per-producer state).
//! Needs `--features internals`.
#![allow(missing_docs)]

use std::collections::HashMap;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eoslog::internals::ProducerState;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("producer_state_check");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for n in [1i64, 10_000, 1_000_000] {
        let mut ps = ProducerState::new(5, 2_000_000);
        let mut seq = vec![0i32; n as usize];
        let mut offset = 0i64;
        for pid in 0..n {
            assert!(ps.append(pid, 0, 0, 1, offset, 1_700_000_000_000));
            seq[pid as usize] = 1;
            offset += 1;
        }
        // Visit producers in a scrambled order so consecutive batches do not share cache lines.
        let stride = if n > 1 { 7919 % n } else { 0 };
        let mut pid = 0i64;
        g.bench_function(BenchmarkId::new("check_and_update", n), |b| {
            b.iter(|| {
                pid = (pid + stride.max(1)) % n;
                let s = &mut seq[pid as usize];
                let ok = ps.append(pid, 0, *s, 1, offset, 1_700_000_000_000);
                *s += 1;
                offset += 1;
                black_box(ok)
            })
        });
        assert_eq!(ps.producers(), n as usize);
        let map: HashMap<i64, u64> = (0..n).map(|p| (p, p as u64)).collect();
        let mut pid = 0i64;
        g.bench_function(BenchmarkId::new("baseline_hashmap_lookup", n), |b| {
            b.iter(|| {
                pid = (pid + stride.max(1)) % n;
                black_box(map.get(&black_box(pid)).copied())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
