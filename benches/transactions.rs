//! Transactions:
//!
//! * `transactions/lso`: `Log::last_stable_offset` with 100,000 open transactions (100k
//!   transactional producers, one open transaction each), against the same query on a log
//!   with 100,000 idempotent producers and no open transaction.
//! * `transactions/aborted_lookup`: a log with 1,000,000 aborted transactions (a 1-record
//!   transactional batch + ABORT marker each, producer ids cycling over 1,000 producers with
//!   continuing sequences); `Log::read` at random offsets with a 1 KiB `max_bytes` and
//!   read_committed (which adds the aborted-transaction lookup), against the same reads with
//!   read_uncommitted.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig, MarkerType,
    NewRecord, Offset, ProducerEpoch, ProducerId, Sequence, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const VALUE: &[u8] = b"txn-data";
const OPEN_TXNS: usize = 100_000;
const ABORTED: usize = 1_000_000;
const ABORT_PIDS: usize = 1_000;
const SMALL_FETCH: usize = 1024;

fn must_append(outcome: Result<AppendOutcome, eoslog::AppendError>) {
    match outcome {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

fn one_record(b: BatchBuilder) -> Vec<u8> {
    b.build(&[NewRecord::value(T0, VALUE)]).expect("build")
}

/// xorshift64*: deterministic random offsets without a dependency.
fn random_offsets(n: usize, below: i64) -> Vec<Offset> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            Offset((r % below as u64) as i64)
        })
        .collect()
}

fn bench_transactions(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = LogConfig::default();
    config
        .set("segment.bytes", &i32::MAX.to_string())
        .expect("config");
    config.set("eoslog.max.producer.ids", "2000000").expect("config");

    // ---- LSO with 100k open transactions -------------------------------------------------
    let open = Log::open(tmp.path().join("open-0"), config.clone()).expect("open");
    let t = Instant::now();
    for p in 0..OPEN_TXNS {
        let b = one_record(BatchBuilder::transactional(
            ProducerId(p as i64),
            ProducerEpoch(0),
            Sequence(0),
        ));
        must_append(open.append(&b, AppendOrigin::Client));
    }
    eprintln!(
        "transactions: {OPEN_TXNS} open transactions written in {:.2?}",
        t.elapsed()
    );
    assert_eq!(open.stats().open_transactions, OPEN_TXNS as u64);
    assert_eq!(open.last_stable_offset(), Offset(0));

    let idle = Log::open(tmp.path().join("idle-0"), config.clone()).expect("open");
    for p in 0..OPEN_TXNS {
        let b = one_record(BatchBuilder::idempotent(
            ProducerId(p as i64),
            ProducerEpoch(0),
            Sequence(0),
        ));
        must_append(idle.append(&b, AppendOrigin::Client));
    }
    assert_eq!(idle.stats().open_transactions, 0);
    assert_eq!(idle.last_stable_offset(), idle.high_watermark());

    let mut g = c.benchmark_group("transactions/lso");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_lso_no_open_txn_100k_producers", |b| {
        b.iter(|| black_box(&idle).last_stable_offset());
    });
    g.bench_function("lso_100k_open_txns", |b| {
        b.iter(|| black_box(&open).last_stable_offset());
    });
    g.finish();
    open.close().expect("close");
    idle.close().expect("close");

    // ---- aborted-transaction lookup with 1M aborted transactions ---------------------------
    let log = Log::open(tmp.path().join("aborted-0"), config).expect("open");
    let t = Instant::now();
    for i in 0..ABORTED {
        let pid = (i % ABORT_PIDS) as i64;
        let seq = (i / ABORT_PIDS) as i32;
        let b = one_record(BatchBuilder::transactional(
            ProducerId(pid),
            ProducerEpoch(0),
            Sequence(seq),
        ));
        must_append(log.append(&b, AppendOrigin::Client));
        must_append(log.write_marker(&TxnMarker {
            producer_id: ProducerId(pid),
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker: MarkerType::Abort,
            timestamp: Some(T0),
        }));
    }
    let build = t.elapsed();
    let s = log.stats();
    assert_eq!(s.aborted_transactions, ABORTED as u64);
    eprintln!(
        "transactions: built a log of {ABORTED} aborted transactions ({} bytes, {} segment(s), log end {}) in {build:.2?}",
        log.segments().iter().map(|s| s.size).sum::<u64>(),
        log.segments().len(),
        log.log_end_offset().0
    );
    let offsets = random_offsets(4096, log.log_end_offset().0);
    let aborted_per_fetch: f64 = offsets
        .iter()
        .map(|&o| {
            let r = log.read(o, SMALL_FETCH, Isolation::ReadCommitted).expect("read");
            r.aborted_transactions.map_or(0, |a| a.len())
        })
        .sum::<usize>() as f64
        / offsets.len() as f64;
    eprintln!("transactions: {aborted_per_fetch:.2} aborted transactions returned per read_committed fetch on average");

    let mut g = c.benchmark_group("transactions/aborted_lookup_1M");
    g.throughput(Throughput::Elements(1));
    for (name, iso) in [
        ("baseline_read_uncommitted", Isolation::ReadUncommitted),
        ("read_committed", Isolation::ReadCommitted),
    ] {
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let o = offsets[i % offsets.len()];
                i += 1;
                black_box(log.read(o, SMALL_FETCH, iso).expect("read"))
            });
        });
    }
    g.finish();
    log.close().expect("close");
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
    targets = bench_transactions
}
criterion_main!(benches);
