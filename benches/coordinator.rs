//! The transaction coordinator's costs, each against a baseline measured in the same run.
//!
//! * `coordinator/pipeline/{power_loss_safe,process_crash_safe}/exactly_once_paired_with_at_least_once`:
//!   a consume-transform-produce pipeline over 500,000 input records of 100 bytes (4 input
//!   partitions, 4 output partitions, one worker; a run takes a few hundred milliseconds and
//!   commits every 100 ms; the output topic is recreated, untimed, before each run), run
//!   exactly-once (TV2 transactional produces and the consumed offsets sent to the
//!   transaction) and at-least-once (the same reads, idempotent produces, plain offset
//!   commits) alternately, run by run; the ratio of the summed times is printed. Power-loss
//!   safe: the store's default `eoslog.internal.durability=sync`, and the at-least-once
//!   side makes its output durable before committing the offsets past its input. Process-
//!   crash safe, as one Kafka broker (which never fsyncs): internal topics `buffered`, and
//!   at-least-once commits without flushing. Issue #14's goal: throughput ratio at least
//!   0.97.
//! * `coordinator/end_txn/{1,10,100}`: EndTxn (commit) of a transaction that wrote one record
//!   to each of 1, 10 and 100 partitions, from the call to the last marker durable and the
//!   completion written; the baseline `coordinator/sync_append` is one synchronous append to
//!   one partition (one write + one fsync).
//! * `coordinator/txn_cycle/{1,8}_threads`: a whole transaction (AddPartitionsToTxn of one
//!   partition, one record, EndTxn) on random ids of 10,000 transactional ids spread over the
//!   default 50 transaction-state partitions, by 1 and by 8 threads: coordinator transactions
//!   per second. Printed with it: the transaction log's fsyncs per append under 8 threads on
//!   a single transaction-state partition (concurrent transactions share fsyncs).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eoslog::{
    AppendOptions, AppendOrigin, AppendOutcome, BatchBuilder, Durability, Isolation, NewRecord, Offset,
    OffsetCommit, PartitionOffset, ProduceContext, ProducerIdAndEpoch, Sequence, Store, StoreConfig,
    TopicPartition, TxnOffsetCommit, TxnVersion,
};

const T0: i64 = 1_700_000_000_000;
const INPUT: u64 = 500_000;
const IN_PARTITIONS: i32 = 4;
const OUT_PARTITIONS: i32 = 4;
const COMMIT_EVERY: Duration = Duration::from_millis(100);
const IDS: usize = 10_000;

fn config(txn_partitions: u32) -> StoreConfig {
    let mut c = StoreConfig::default();
    c.set(
        "transaction.state.log.num.partitions",
        &txn_partitions.to_string(),
    )
    .expect("config");
    c.set("eoslog.preallocate.bytes", "0").expect("config");
    c
}

fn appended(o: AppendOutcome) {
    assert!(matches!(o, AppendOutcome::Appended(_)), "{o:?}");
}

/// Fills `in` with `INPUT` records of 100 bytes.
fn fill(store: &Store) {
    store
        .create_topic("in", IN_PARTITIONS as u32, &[])
        .expect("topic");
    store
        .create_topic("out", OUT_PARTITIONS as u32, &[])
        .expect("topic");
    let value = [b'x'; 100];
    for p in 0..IN_PARTITIONS {
        let log = store.partition("in", p).expect("log");
        let per = INPUT / IN_PARTITIONS as u64;
        for _ in 0..per / 100 {
            let recs: Vec<NewRecord<'_>> = (0..100).map(|_| NewRecord::value(T0, &value)).collect();
            appended(
                log.append(
                    &BatchBuilder::new().build(&recs).expect("batch"),
                    AppendOrigin::Client,
                )
                .expect("append"),
            );
        }
        log.flush().expect("flush");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    ExactlyOnce,
    AtLeastOnce,
}

/// Time spent in each mode's commit step (EndTxn + TxnOffsetCommit, or flush + OffsetCommit),
/// summed over runs, in microseconds.
static COMMIT_US: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// One run of the pipeline from offset 0 under a fresh group; returns the time it took.
fn pipeline(store: &Store, mode: Mode, durable: bool, run: u64) -> Duration {
    let m = usize::from(mode == Mode::ExactlyOnce);
    let group = format!("g-{run}");
    let id = format!("worker-{run}");
    let txns = store.transactions();
    let t = Instant::now();
    let mut p = match mode {
        Mode::ExactlyOnce => txns.init_producer_id(Some(&id), 60_000, None).expect("init"),
        Mode::AtLeastOnce => txns.init_producer_id(None, 60_000, None).expect("init"),
    };
    let ctx = ProduceContext {
        transactional_id: (mode == Mode::ExactlyOnce).then_some(id.as_str()),
        tv: TxnVersion::TV2,
        ..Default::default()
    };
    let mut seqs: BTreeMap<i32, i32> = BTreeMap::new();
    let mut positions: BTreeMap<i32, i64> = (0..IN_PARTITIONS).map(|p| (p, 0)).collect();
    let mut last_commit = Instant::now();
    let mut dirty = false;
    let ins: Vec<_> = (0..IN_PARTITIONS)
        .map(|p| store.partition("in", p).expect("log"))
        .collect();
    let outs: Vec<_> = (0..OUT_PARTITIONS)
        .map(|p| store.partition("out", p).expect("log"))
        .collect();
    loop {
        let mut consumed = 0;
        for (ip, log) in ins.iter().enumerate() {
            let from = positions[&(ip as i32)];
            let (records, next) = log
                .read_records(Offset(from), 64 << 10, Isolation::ReadCommitted)
                .expect("read");
            if records.is_empty() {
                continue;
            }
            consumed += records.len();
            positions.insert(ip as i32, next.0);
            // Transform: each record to output partition (offset % 4), one batch per partition.
            let mut by_out: BTreeMap<i32, Vec<&[u8]>> = BTreeMap::new();
            for r in &records {
                by_out
                    .entry((r.offset.0 % i64::from(OUT_PARTITIONS)) as i32)
                    .or_default()
                    .push(r.value.as_deref().unwrap_or_default());
            }
            for (op, values) in by_out {
                let seq = seqs.entry(op).or_insert(0);
                // Current timestamps, as a producer sends (the markers' too).
                let now = now_ms();
                let recs: Vec<NewRecord<'_>> = values.iter().map(|v| NewRecord::value(now, v)).collect();
                let builder = match mode {
                    Mode::ExactlyOnce => {
                        BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(*seq))
                    }
                    Mode::AtLeastOnce => {
                        BatchBuilder::idempotent(p.producer_id, p.producer_epoch, Sequence(*seq))
                    }
                };
                let bytes = builder.build(&recs).expect("batch");
                appended(store.produce("out", op, &bytes, &ctx).expect("produce"));
                *seq += recs.len() as i32;
            }
            dirty = true;
        }
        let done = consumed == 0;
        if dirty && (done || last_commit.elapsed() >= COMMIT_EVERY) {
            let commit_started = Instant::now();
            let offsets = positions
                .iter()
                .map(|(&ip, &o)| PartitionOffset {
                    partition: TopicPartition::new("in", ip),
                    offset: o,
                    leader_epoch: -1,
                    metadata: None,
                })
                .collect();
            let commit = OffsetCommit {
                group_id: &group,
                generation_id: -1,
                member_id: "",
                group_instance_id: None,
                retention_ms: None,
                offsets,
            };
            match mode {
                Mode::ExactlyOnce => {
                    let t = TxnOffsetCommit {
                        transactional_id: &id,
                        producer: p,
                        tv: TxnVersion::TV2,
                        commit,
                    };
                    for a in store.offsets().txn_commit(&t) {
                        a.expect("txn offset commit");
                    }
                    p = txns.end_txn(&id, p, true, TxnVersion::TV2).expect("commit");
                    seqs.clear();
                }
                Mode::AtLeastOnce => {
                    // The output must be as durable as the offsets that skip past its input.
                    for log in outs.iter().filter(|_| durable) {
                        log.wait_durable(log.log_end_offset()).expect("durable");
                    }
                    for a in store.offsets().commit(&commit) {
                        a.expect("offset commit");
                    }
                }
            }
            dirty = false;
            last_commit = Instant::now();
            COMMIT_US[m].fetch_add(commit_started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        if done {
            break;
        }
    }
    t.elapsed()
}

fn bench_pipeline(c: &mut Criterion) {
    for durable in [true, false] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(50);
        if !durable {
            cfg.set("eoslog.internal.durability", "buffered").expect("config");
        }
        let store = Store::open(tmp.path(), cfg).expect("open");
        fill(&store);
        let run = AtomicU64::new(0);
        let name = if durable {
            "power_loss_safe"
        } else {
            "process_crash_safe"
        };
        let mut g = c.benchmark_group(format!("coordinator/pipeline/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(INPUT));
        g.measurement_time(Duration::from_secs(30));
        let fresh_out = || {
            if store.has_partition("out", 0) {
                store.delete_topic("out").expect("delete");
            }
            store
                .create_topic("out", OUT_PARTITIONS as u32, &[])
                .expect("topic");
        };
        for c in &COMMIT_US {
            c.store(0, Ordering::Relaxed);
        }
        // The two modes alternate run by run (which goes first alternates too), so both see
        // the same machine; the ratio of the sums is the throughput ratio.
        let sums = std::cell::Cell::new([Duration::ZERO; 2]);
        g.bench_function("exactly_once_paired_with_at_least_once", |b| {
            b.iter_custom(|iters| {
                let mut eo = Duration::ZERO;
                for i in 0..iters {
                    let order = if i % 2 == 0 {
                        [Mode::AtLeastOnce, Mode::ExactlyOnce]
                    } else {
                        [Mode::ExactlyOnce, Mode::AtLeastOnce]
                    };
                    for mode in order {
                        fresh_out();
                        let t = pipeline(&store, mode, durable, run.fetch_add(1, Ordering::Relaxed));
                        let mut all = sums.get();
                        all[usize::from(mode == Mode::ExactlyOnce)] += t;
                        sums.set(all);
                        if mode == Mode::ExactlyOnce {
                            eo += t;
                        }
                    }
                }
                eo
            });
        });
        g.finish();
        let [alo, eo] = sums.get();
        let s = store.coordinator_stats();
        eprintln!(
            "coordinator/pipeline/{name}: exactly-once throughput / at-least-once throughput = {:.3} ({alo:?} at-least-once, {eo:?} exactly-once, summed over {} runs); commit steps {} ms / {} ms; {} transactions, EndTxn to last marker mean {:.0} us, max {} us",
            alo.as_secs_f64() / eo.as_secs_f64().max(1e-9),
            run.load(Ordering::Relaxed),
            COMMIT_US[0].load(Ordering::Relaxed) / 1000,
            COMMIT_US[1].load(Ordering::Relaxed) / 1000,
            s.transactions_committed,
            s.completion_us_sum as f64 / s.completions.max(1) as f64,
            s.completion_us_max
        );
        store.close().expect("close");
    }
}

fn bench_end_txn(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(tmp.path(), config(50)).expect("open");
    store.create_topic("wide", 100, &[]).expect("topic");
    let txns = store.transactions();
    let record = BatchBuilder::new()
        .build(&[NewRecord::value(T0, b"r")])
        .expect("batch");
    let mut g = c.benchmark_group("coordinator");
    g.sample_size(20);
    g.bench_function("sync_append", |b| {
        let log = store.partition("wide", 0).expect("log");
        let options = AppendOptions {
            durability: Some(Durability::SyncEachAppend),
            ..AppendOptions::new(AppendOrigin::Client)
        };
        b.iter(|| appended(log.append_with(&record, &options).expect("append")));
    });
    for n in [1, 10, 100] {
        let id = format!("end-{n}");
        let mut p = txns.init_producer_id(Some(&id), 60_000, None).expect("init");
        let ctx = ProduceContext {
            transactional_id: Some(&id),
            tv: TxnVersion::TV2,
            ..Default::default()
        };
        g.bench_function(format!("end_txn/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for part in 0..n {
                        let bytes = BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(0))
                            .build(&[NewRecord::value(T0, b"v")])
                            .expect("batch");
                        appended(store.produce("wide", part, &bytes, &ctx).expect("produce"));
                    }
                    let t = Instant::now();
                    p = txns.end_txn(&id, p, true, TxnVersion::TV2).expect("commit");
                    total += t.elapsed();
                }
                total
            });
        });
    }
    g.finish();
    store.close().expect("close");
}

/// A whole transaction on `id`: add one partition, one record, commit (TV0).
fn cycle(store: &Store, id: &str, p: ProducerIdAndEpoch, partition: i32, seq: i32) {
    let txns = store.transactions();
    let tp = TopicPartition::new("cycle", partition);
    txns.add_partitions(id, p, std::slice::from_ref(&tp), TxnVersion::TV0)
        .expect("add");
    let bytes = BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(seq))
        .build(&[NewRecord::value(T0, b"v")])
        .expect("batch");
    let ctx = ProduceContext {
        transactional_id: Some(id),
        ..Default::default()
    };
    appended(store.produce("cycle", partition, &bytes, &ctx).expect("produce"));
    txns.end_txn(id, p, true, TxnVersion::TV0).expect("commit");
}

fn bench_cycles(c: &mut Criterion) {
    for txn_partitions in [50u32, 1] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path(), config(txn_partitions)).expect("open");
        store.create_topic("cycle", 64, &[]).expect("topic");
        let t = Instant::now();
        // 10,000 ids, initialized by 8 threads (their appends share fsyncs).
        let ids: Vec<(String, ProducerIdAndEpoch)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|w| {
                    let store = &store;
                    s.spawn(move || {
                        (w..IDS)
                            .step_by(8)
                            .map(|i| {
                                let id = format!("txn-{i:05}");
                                let p = store
                                    .transactions()
                                    .init_producer_id(Some(&id), 60_000, None)
                                    .expect("init");
                                (id, p)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("join"))
                .collect()
        });
        eprintln!(
            "coordinator: {IDS} transactional ids initialized in {:.1?}",
            t.elapsed()
        );
        let seqs: Vec<AtomicU64> = (0..IDS).map(|_| AtomicU64::new(0)).collect();
        let next = AtomicU64::new(0x9E37_79B9);
        let pick = || {
            // A shared xorshift step: a random id each time.
            let mut x = next.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            x ^= x >> 31;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (x >> 7) as usize % IDS
        };
        // Each id is used by one thread at a time: thread w takes ids congruent to w mod 8.
        let one = |w: usize, threads: usize| {
            let i = (pick() / threads) * threads + w;
            let i = if i >= IDS { w } else { i };
            let (id, p) = &ids[i];
            let seq = seqs[i].fetch_add(1, Ordering::Relaxed) as i32;
            cycle(&store, id, *p, (i % 64) as i32, seq);
        };
        let mut g = c.benchmark_group(format!("coordinator/txn_cycle/{txn_partitions}_txn_partitions"));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(15));
        for threads in [1usize, 8] {
            g.throughput(Throughput::Elements(threads as u64 * 50));
            g.bench_function(format!("{threads}_threads"), |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for w in 0..threads {
                            s.spawn(move || {
                                for _ in 0..50 {
                                    one(w, threads);
                                }
                            });
                        }
                    });
                });
            });
        }
        g.finish();
        if txn_partitions == 1 {
            let log = store.partition("__transaction_state", 0).expect("log");
            let st = log.stats();
            eprintln!(
                "coordinator: transaction log with 1 partition: {} appends, {} fsyncs ({:.2} fsyncs per append)",
                st.appends,
                st.fsyncs,
                st.fsyncs as f64 / st.appends.max(1) as f64
            );
        }
        store.close().expect("close");
    }
}

criterion_group!(benches, bench_pipeline, bench_end_txn, bench_cycles);
criterion_main!(benches);
