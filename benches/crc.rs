//! CRC-32C throughput of `crc-fast` (what `eoslog::crc32c` uses) and of the `crc32c` crate,
//! on buffers in cache from 64 B (a control batch's CRC span is ~40 B) to 16 KiB (a batch
//! right after a socket read). The figures behind the choice documented on `batch::crc32c`.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench_crc(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc32c");
    for len in [64usize, 256, 512, 1024, 4096, 16 * 1024] {
        let data: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("crc_fast", len), &data, |b, d| {
            b.iter(|| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, black_box(d)));
        });
        g.bench_with_input(BenchmarkId::new("crc32c_crate", len), &data, |b, d| {
            b.iter(|| crc32c::crc32c(black_box(d)));
        });
    }
    g.finish();
}

fn config_criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = bench_crc
}
criterion_main!(benches);
