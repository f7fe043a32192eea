//! The aborted-transaction lookup of a read_committed fetch, alone: the in-memory index with
//! 1,000,000 aborted transactions, queried for fetch ranges at random offsets. Baseline in the
//! same run: a binary search of a `Vec<i64>` of the same length (the floor of any ordered
//! lookup). Needs `--features internals`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use eoslog::internals::AbortedIndex;
use eoslog::AbortedTxn;

const N: i64 = 1_000_000;

fn bench(c: &mut Criterion) {
    // Transactions of 1,000 producers, each 5 data offsets then its ABORT marker, interleaved
    // in pairs so each abort's stored LSO is the other producer's first offset.
    let mut idx = AbortedIndex::default();
    let mut markers = Vec::with_capacity(N as usize);
    for i in 0..N {
        let last = i * 12 + 11;
        idx.push(AbortedTxn {
            producer_id: i % 1000,
            first_offset: i * 12,
            last_offset: last,
            last_stable_offset: i * 12 + 6,
        });
        markers.push(last);
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut offsets = Vec::with_capacity(4096);
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        offsets.push((state % (N as u64 * 12)) as i64);
    }
    let mut g = c.benchmark_group("aborted_index");
    g.sample_size(20);
    let mut out = Vec::new();
    let mut k = 0;
    g.bench_function("collect_1M_aborted_1KiB_fetch", |b| {
        b.iter(|| {
            let from = offsets[k % offsets.len()];
            k += 1;
            out.clear();
            idx.collect(black_box(from), from + 64, &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("baseline_binary_search_1M", |b| {
        b.iter(|| {
            let from = offsets[k % offsets.len()];
            k += 1;
            black_box(markers.partition_point(|&m| m < black_box(from)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
