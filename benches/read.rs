//! Fetch throughput: 1 MiB fetches across a 64 MiB log of 16 KiB batches.
//!
//! * `read/1MiB_fetch`: `Log::read` (zero-copy: only the `FileSlice` list) and
//!   `Log::read(..).bytes()` against a raw `FileExt::read_at` of the same byte ranges from
//!   the segment file, into a reused buffer (`baseline_raw_read_at`) and into a freshly
//!   allocated one (`baseline_raw_read_at_fresh_vec`); then the same fetches after the
//!   segment rolled (`*_inactive_segment`: its indexes read with `pread`, not mapped).
//! * `read/1MiB_fetch_txn_1pct_aborted`: a 64 MiB log of transactions (one 16 KiB batch +
//!   COMMIT marker each, every 100th transaction ABORTed): read_committed and
//!   read_uncommitted fetches, against the raw read of the same ranges.
//! * `read/read_records_txn_1pct_aborted`: `Log::read_records` (record-level, consumer-side
//!   filtering) with ReadCommitted (and ReadUncommitted), against the raw read of the byte
//!   span each call consumes.
//!
//! Both logs were just written, so reads are served from the page cache (warm).
#![allow(missing_docs)]

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, BatchIter, CoordinatorEpoch, Isolation, Log, LogConfig,
    MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, Sequence, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const LOG_BYTES: u64 = 64 << 20;
const FETCH: usize = 1 << 20;

fn values() -> Vec<Vec<u8>> {
    (0..RECORDS_PER_BATCH)
        .map(|r| (0..RECORD_BYTES).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect()
}

fn must_append(outcome: Result<AppendOutcome, eoslog::AppendError>) {
    match outcome {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

fn batch(pid: i64, seq: i32, transactional: bool, vals: &[Vec<u8>]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = vals.iter().map(|v| NewRecord::value(T0, v)).collect();
    let b = if transactional {
        BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
    } else {
        BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
    };
    b.build(&recs).expect("build")
}

/// 64 MiB of idempotent 16 KiB batches.
fn fill_plain(log: &Log) {
    let vals = values();
    let mut written = 0u64;
    let mut seq = 0i32;
    while written < LOG_BYTES {
        let b = batch(1, seq, false, &vals);
        must_append(log.append(&b, AppendOrigin::Client));
        written += b.len() as u64;
        seq += RECORDS_PER_BATCH as i32;
    }
}

/// 64 MiB of transactions of one 16 KiB batch each; every 100th is aborted.
fn fill_txn(log: &Log) -> (u64, u64) {
    let vals = values();
    let mut written = 0u64;
    let mut seq = 0i32;
    let (mut txns, mut aborted) = (0u64, 0u64);
    while written < LOG_BYTES {
        let b = batch(7, seq, true, &vals);
        must_append(log.append(&b, AppendOrigin::Client));
        written += b.len() as u64;
        seq += RECORDS_PER_BATCH as i32;
        txns += 1;
        let marker = if txns % 100 == 0 {
            aborted += 1;
            MarkerType::Abort
        } else {
            MarkerType::Commit
        };
        must_append(log.write_marker(&TxnMarker {
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker,
            timestamp: Some(T0),
        }));
    }
    (txns, aborted)
}

/// One fetch: its start offset and the byte range it returns.
#[derive(Clone, Copy, Debug)]
struct Fetch {
    from: Offset,
    position: u64,
    len: u64,
}

/// Walks the log with 1 MiB fetches; keeps the full ones (all but the tail).
fn plan_fetches(log: &Log, isolation: Isolation) -> (PathBuf, Vec<Fetch>) {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    let mut path = PathBuf::new();
    loop {
        let r = log.read(from, FETCH, isolation).expect("read");
        let Some(s) = r.slices.first() else { break };
        assert_eq!(r.slices.len(), 1);
        path = s.path.clone();
        let bytes = r.bytes().expect("bytes");
        let last = BatchIter::new(&bytes).last().expect("a batch").expect("valid");
        out.push(Fetch {
            from,
            position: s.position,
            len: s.len,
        });
        from = Offset(last.1.next_offset());
    }
    // Drop the short tail fetch.
    let max = out.iter().map(|f| f.len).max().unwrap_or(0);
    out.retain(|f| f.len + 32 * 1024 > max);
    (path, out)
}

fn mean_len(f: &[Fetch]) -> u64 {
    f.iter().map(|f| f.len).sum::<u64>() / f.len() as u64
}

fn raw_read(file: &File, buf: &mut [u8], f: &Fetch) {
    let buf = &mut buf[..f.len as usize];
    file.read_exact_at(buf, f.position).expect("read_at");
    black_box(&buf[0]);
}

/// The same read into a freshly allocated buffer (what a caller wanting owned bytes pays).
fn raw_read_fresh(file: &File, f: &Fetch) -> Vec<u8> {
    let mut buf = vec![0u8; f.len as usize];
    file.read_exact_at(&mut buf, f.position).expect("read_at");
    buf
}

fn bench_read(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = LogConfig::default();
    config
        .set("segment.bytes", &i32::MAX.to_string())
        .expect("config");

    // ---- plain log ------------------------------------------------------------------
    let plain = Log::open(tmp.path().join("plain-0"), config.clone()).expect("open");
    fill_plain(&plain);
    let (plain_path, plain_fetches) = plan_fetches(&plain, Isolation::ReadUncommitted);
    let plain_file = File::open(&plain_path).expect("open segment");
    let mut buf = vec![0u8; 2 * FETCH];
    eprintln!(
        "read: plain log {} bytes, {} full fetches of mean {} bytes",
        plain.segments().iter().map(|s| s.size).sum::<u64>(),
        plain_fetches.len(),
        mean_len(&plain_fetches)
    );

    let mut g = c.benchmark_group("read/1MiB_fetch");
    g.throughput(Throughput::Bytes(mean_len(&plain_fetches)));
    let cycle = |fetches: &[Fetch], i: &mut usize| -> Fetch {
        let f = fetches[*i % fetches.len()];
        *i += 1;
        f
    };
    let mut i = 0;
    g.bench_function("baseline_raw_read_at", |b| {
        b.iter(|| raw_read(&plain_file, &mut buf, &cycle(&plain_fetches, &mut i)));
    });
    g.bench_function("baseline_raw_read_at_fresh_vec", |b| {
        b.iter(|| black_box(raw_read_fresh(&plain_file, &cycle(&plain_fetches, &mut i))));
    });
    // The same fetches while the segment is active (indexes mapped), then once it rolled
    // (inactive: indexes read with pread through the per-block summary).
    for suffix in ["", "_inactive_segment"] {
        if !suffix.is_empty() {
            plain.roll_segment().expect("roll");
        }
        g.bench_function(format!("log_read_zero_copy{suffix}"), |b| {
            b.iter(|| {
                let f = cycle(&plain_fetches, &mut i);
                black_box(
                    plain
                        .read(f.from, FETCH, Isolation::ReadUncommitted)
                        .expect("read"),
                )
            });
        });
        g.bench_function(format!("log_read_bytes{suffix}"), |b| {
            b.iter(|| {
                let f = cycle(&plain_fetches, &mut i);
                let r = plain
                    .read(f.from, FETCH, Isolation::ReadUncommitted)
                    .expect("read");
                black_box(r.bytes().expect("bytes"))
            });
        });
    }
    g.finish();
    drop(plain_file);
    plain.close().expect("close");

    // ---- transactional log, 1% aborted ----------------------------------------------------
    let txn = Log::open(tmp.path().join("txn-0"), config).expect("open");
    let (txns, aborted) = fill_txn(&txn);
    let (txn_path, txn_fetches) = plan_fetches(&txn, Isolation::ReadUncommitted);
    // read_committed sees the same ranges (every transaction is complete: LSO = HW).
    assert_eq!(txn.last_stable_offset(), txn.high_watermark());
    let (_, rc_fetches) = plan_fetches(&txn, Isolation::ReadCommitted);
    assert_eq!(rc_fetches.len(), txn_fetches.len());
    let txn_file = File::open(&txn_path).expect("open segment");
    let with_aborts = txn_fetches
        .iter()
        .filter(|f| {
            let r = txn.read(f.from, FETCH, Isolation::ReadCommitted).expect("read");
            r.aborted_transactions.is_some_and(|a| !a.is_empty())
        })
        .count();
    eprintln!(
        "read: txn log {} bytes, {txns} transactions ({aborted} aborted), {} full fetches of mean {} bytes, {with_aborts} of them carry aborted transactions",
        txn.segments().iter().map(|s| s.size).sum::<u64>(),
        txn_fetches.len(),
        mean_len(&txn_fetches)
    );

    let mut g = c.benchmark_group("read/1MiB_fetch_txn_1pct_aborted");
    g.throughput(Throughput::Bytes(mean_len(&txn_fetches)));
    g.bench_function("baseline_raw_read_at", |b| {
        b.iter(|| raw_read(&txn_file, &mut buf, &cycle(&txn_fetches, &mut i)));
    });
    g.bench_function("baseline_raw_read_at_fresh_vec", |b| {
        b.iter(|| black_box(raw_read_fresh(&txn_file, &cycle(&txn_fetches, &mut i))));
    });
    for (name, iso) in [
        ("read_uncommitted", Isolation::ReadUncommitted),
        ("read_committed", Isolation::ReadCommitted),
    ] {
        g.bench_function(format!("{name}_zero_copy"), |b| {
            b.iter(|| {
                let f = cycle(&txn_fetches, &mut i);
                black_box(txn.read(f.from, FETCH, iso).expect("read"))
            });
        });
        g.bench_function(format!("{name}_bytes"), |b| {
            b.iter(|| {
                let f = cycle(&txn_fetches, &mut i);
                let r = txn.read(f.from, FETCH, iso).expect("read");
                black_box((r.bytes().expect("bytes"), r.aborted_transactions))
            });
        });
    }
    g.finish();

    // ---- read_records over the transactional log --------------------------------------
    // Byte position of every batch, to know which byte span each read_records call consumes.
    let all = {
        let mut v = vec![0u8; std::fs::metadata(&txn_path).expect("stat").len() as usize];
        txn_file.read_exact_at(&mut v, 0).expect("read segment");
        v
    };
    let mut pos_of: HashMap<i64, u64> = HashMap::new();
    for item in BatchIter::new(&all) {
        let (p, b) = item.expect("valid");
        pos_of.insert(b.base_offset(), p);
    }
    let end_pos = all.len() as u64;
    drop(all);
    let spans: Vec<Fetch> = txn_fetches
        .iter()
        .map(|f| {
            let (_, next) = txn
                .read_records(f.from, FETCH, Isolation::ReadCommitted)
                .expect("read_records");
            let end = pos_of.get(&next.0).copied().unwrap_or(end_pos);
            Fetch {
                from: f.from,
                position: f.position,
                len: end - f.position,
            }
        })
        .collect();
    let records_per_call = {
        let (r, _) = txn
            .read_records(spans[0].from, FETCH, Isolation::ReadCommitted)
            .expect("read_records");
        r.len()
    };
    eprintln!(
        "read: read_records consumes a mean {} bytes per call ({records_per_call} records in the first call)",
        mean_len(&spans)
    );
    let mut g = c.benchmark_group("read/read_records_txn_1pct_aborted");
    g.throughput(Throughput::Bytes(mean_len(&spans)));
    g.bench_function("baseline_raw_read_at", |b| {
        b.iter(|| raw_read(&txn_file, &mut buf, &cycle(&spans, &mut i)));
    });
    for (name, iso) in [
        ("read_records_committed", Isolation::ReadCommitted),
        ("read_records_uncommitted", Isolation::ReadUncommitted),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let f = cycle(&spans, &mut i);
                black_box(txn.read_records(f.from, FETCH, iso).expect("read_records"))
            });
        });
    }
    g.finish();
    drop(txn_file);
    txn.close().expect("close");
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
    targets = bench_read
}
criterion_main!(benches);
