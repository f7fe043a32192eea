//! Append throughput: `Log::append` of 16 KiB idempotent batches (16 records of 1 KiB, no
//! fsync) against a raw `write_all` of the same bytes to a file in the same temp directory and
//! against the `commitlog` crate (0.2) appending the same 16 records of 1 KiB as one message
//! set (`peer_commitlog_append_16_messages`) or as 16 single messages
//! (`peer_commitlog_append_msg_x16`), and transactional appends (10 batches + a COMMIT marker) against plain idempotent
//! appends of the same records.
//!
//! Every batch is built before timing. A retried sequence would be a duplicate, so each run
//! of appends goes to a fresh log (created and, afterwards, dropped and deleted outside the
//! timed region) starting at sequence 0; runs longer than the pre-built pool are split into
//! several fresh logs. The raw baseline gets the same treatment (fresh file, fsync and
//! delete outside the timed region), so both see the same page-cache state.
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, FileSystem, Log, LogConfig, MarkerType,
    NewRecord, ProducerEpoch, ProducerId, Sequence, StdFileSystem, StorageFile, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Batches per fresh log / file (about 33 MB).
const POOL: usize = 2000;
/// Data batches per transaction.
const TXN_BATCHES: usize = 10;

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.set("segment.bytes", &i32::MAX.to_string())
        .expect("segment.bytes");
    c
}

fn values() -> Vec<Vec<u8>> {
    (0..RECORDS_PER_BATCH)
        .map(|r| (0..RECORD_BYTES).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect()
}

/// `n` batches of one producer with sequences 0, 16, 32, ...
fn batches(n: usize, pid: i64, transactional: bool) -> Vec<Vec<u8>> {
    let vals = values();
    let recs: Vec<NewRecord<'_>> = vals.iter().map(|v| NewRecord::value(T0, v)).collect();
    (0..n)
        .map(|i| {
            let seq = Sequence((i * RECORDS_PER_BATCH) as i32);
            let b = if transactional {
                BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), seq)
            } else {
                BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), seq)
            };
            b.build(&recs).expect("build batch")
        })
        .collect()
}

fn must_append(outcome: Result<AppendOutcome, eoslog::AppendError>) {
    match outcome {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

/// Runs `iters` iterations in chunks of at most `chunk` iterations, each chunk timed by `f`.
fn chunked(iters: u64, chunk: usize, mut f: impl FnMut(usize, usize) -> Duration) -> Duration {
    let mut left = iters as usize;
    let mut total = Duration::ZERO;
    let mut round = 0;
    while left > 0 {
        let n = left.min(chunk);
        total += f(round, n);
        left -= n;
        round += 1;
    }
    total
}

/// Copies each batch into one receive buffer (untimed, as a socket read would) and times
/// `f` on that buffer; returns the summed time of the `f` calls.
fn each_received(pool: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> Duration {
    let mut recv = Vec::with_capacity(pool.first().map_or(0, Vec::len));
    let mut total = Duration::ZERO;
    for bytes in pool {
        recv.clear();
        recv.extend_from_slice(bytes);
        let start = Instant::now();
        f(black_box(&recv));
        total += start.elapsed();
    }
    total
}

/// Runs `f` on a fresh log (opened, and afterwards dropped, which fsyncs it, and deleted,
/// all outside `f`) and returns what `f` timed.
fn in_fresh_log(root: &Path, round: usize, config: LogConfig, f: impl FnOnce(&Log) -> Duration) -> Duration {
    let dir = root.join(format!("log-{round}"));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Log::open(&dir, config).expect("open log");
    let t = f(&log);
    drop(log);
    std::fs::remove_dir_all(&dir).expect("remove");
    t
}

/// Runs `f` on a fresh file `name` (created, and afterwards fsynced and deleted, all outside
/// `f`) and returns what `f` timed: the raw baselines get the log's page-cache treatment.
fn in_raw_file(root: &Path, name: &str, f: impl FnOnce(&mut File) -> Duration) -> Duration {
    let path = root.join(name);
    let mut file = File::create(&path).expect("create");
    let t = f(&mut file);
    file.sync_all().expect("fsync");
    drop(file);
    std::fs::remove_file(&path).expect("remove");
    t
}

/// As [`in_raw_file`], through eoslog's own file type (`pwrite`, and `preallocate` where the
/// platform has it).
fn in_raw_storage_file(root: &Path, name: &str, f: impl FnOnce(&dyn StorageFile) -> Duration) -> Duration {
    let path = root.join(name);
    let file = StdFileSystem.open(&path, true).expect("create");
    let t = f(&*file);
    file.sync_data().expect("fsync");
    drop(file);
    std::fs::remove_file(&path).expect("remove");
    t
}

fn bench_append(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let idem = batches(POOL, 1, false);
    let txn = batches(POOL, 2, true);
    let batch_len = idem[0].len();
    assert_eq!(batch_len, txn[0].len());
    eprintln!("append: batch = {batch_len} bytes ({RECORDS_PER_BATCH} x {RECORD_BYTES} B records)");

    let mut g = c.benchmark_group("append/16KiB_batch");
    g.throughput(Throughput::Bytes(batch_len as u64));
    g.bench_function("baseline_raw_write_all", |b| {
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_raw_file(root, &format!("raw-{round}.log"), |f| {
                    let start = Instant::now();
                    for bytes in &idem[..n] {
                        f.write_all(bytes).expect("write");
                    }
                    start.elapsed()
                })
            })
        });
    });
    g.bench_function("baseline_raw_pwritev_head_and_rest", |b| {
        // The syscall shape eoslog uses: one pwritev of a 16-byte head and the rest.
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_raw_file(root, &format!("rawv-{round}.log"), |f| {
                    let mut pos = 0u64;
                    let start = Instant::now();
                    for bytes in &idem[..n] {
                        let parts = [
                            std::io::IoSlice::new(&bytes[..16]),
                            std::io::IoSlice::new(&bytes[16..]),
                        ];
                        let w = rustix::io::pwritev(&*f, &parts, pos).expect("pwritev");
                        assert_eq!(w, bytes.len());
                        pos += w as u64;
                    }
                    start.elapsed()
                })
            })
        });
    });
    g.bench_function("log_append_idempotent", |b| {
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_fresh_log(root, round, config(), |log| {
                    let start = Instant::now();
                    for bytes in &idem[..n] {
                        must_append(log.append(black_box(bytes), AppendOrigin::Client));
                    }
                    start.elapsed()
                })
            })
        });
    });
    g.bench_function("log_append_idempotent_without_record_validation", |b| {
        // eoslog.validate.records=false: the CRC and header checks only (what Kafka's leader
        // skips record decoding for is nothing; this row shows what that decoding costs).
        let mut c = config();
        c.set("eoslog.validate.records", "false").expect("config");
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_fresh_log(root, round, c.clone(), |log| {
                    let start = Instant::now();
                    for bytes in &idem[..n] {
                        must_append(log.append(black_box(bytes), AppendOrigin::Client));
                    }
                    start.elapsed()
                })
            })
        });
    });
    // The rows above cycle through a 33 MB pool, so every batch comes from DRAM. A broker
    // appends a batch it has just read from a socket into a buffer, so the batch is in cache.
    // The two rows below copy each batch into a receive buffer outside the timed region and
    // time only the write / the append of that buffer (one `Instant` pair per call).
    g.bench_function("baseline_raw_write_all_received", |b| {
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_raw_file(root, &format!("raw-recv-{round}.log"), |f| {
                    each_received(&idem[..n], |bytes| f.write_all(bytes).expect("write"))
                })
            })
        });
    });
    g.bench_function("log_append_idempotent_received", |b| {
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_fresh_log(root, round, config(), |log| {
                    each_received(&idem[..n], |bytes| {
                        must_append(log.append(bytes, AppendOrigin::Client));
                    })
                })
            })
        });
    });
    // The steadiest ratio on a noisy machine: each received batch is written raw and
    // appended to the log back to back (rotating which goes first), so all see the same
    // moment's page-cache and host state. A second raw file is preallocated as the log's
    // active segment is (`fallocate` KEEP_SIZE, `eoslog.preallocate.bytes` at a time), to
    // show what the log's own preallocation is worth. Criterion reports the log's time; the
    // ratios of the summed raw times to the summed log time are printed after the group.
    let paired = std::cell::Cell::new([Duration::ZERO; 3]);
    g.bench_function("log_append_idempotent_paired_with_raw_write", |b| {
        let chunk = LogConfig::default().preallocate_bytes;
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                in_raw_file(root, &format!("raw-paired-{round}.log"), |plain| {
                    in_raw_storage_file(root, &format!("raw-prealloc-{round}.log"), |pre| {
                        in_fresh_log(root, round, config(), |log| {
                            let mut sum = [Duration::ZERO; 3];
                            let (mut pos, mut reserved) = (0u64, 0u64);
                            let mut recv = Vec::with_capacity(batch_len);
                            for (i, bytes) in idem[..n].iter().enumerate() {
                                recv.clear();
                                recv.extend_from_slice(bytes);
                                for side in [i % 3, (i + 1) % 3, (i + 2) % 3] {
                                    let start = Instant::now();
                                    match side {
                                        0 => plain.write_all(black_box(&recv)).expect("write"),
                                        1 => {
                                            if pos + recv.len() as u64 > reserved {
                                                pre.preallocate(pos, chunk).expect("fallocate");
                                                reserved = pos + chunk;
                                            }
                                            pre.write_all_at(black_box(&recv), pos).expect("write");
                                            pos += recv.len() as u64;
                                        }
                                        _ => must_append(log.append(black_box(&recv), AppendOrigin::Client)),
                                    }
                                    sum[side] += start.elapsed();
                                }
                            }
                            let mut all = paired.get();
                            for (a, s) in all.iter_mut().zip(sum) {
                                *a += s;
                            }
                            paired.set(all);
                            sum[2]
                        })
                    })
                })
            })
        });
    });
    let [raw, raw_pre, ours] = paired.get();
    if ours > Duration::ZERO {
        eprintln!(
            "append/paired: raw write / eoslog append = {:.3}; raw write into a preallocated file / eoslog append = {:.3} ({raw:?} raw, {raw_pre:?} raw preallocated, {ours:?} eoslog, summed over all samples)",
            raw.as_secs_f64() / ours.as_secs_f64(),
            raw_pre.as_secs_f64() / ours.as_secs_f64(),
        );
    }
    g.bench_function("peer_commitlog_append_16_messages", |b| {
        // The same 16 records, serialised by commitlog's own MessageBuf (its client-side
        // encoding, like the pre-built batches above), built outside the timed region.
        let vals = values();
        let mut one = commitlog::message::MessageBuf::default();
        for v in &vals {
            one.push(v).expect("push");
        }
        let encoded = one.into_bytes();
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                let dir = root.join(format!("commitlog-{round}"));
                let _ = std::fs::remove_dir_all(&dir);
                let mut opts = commitlog::LogOptions::new(&dir);
                opts.segment_max_bytes(i32::MAX as usize)
                    .index_max_items(1 << 20)
                    .message_max_bytes(1 << 20);
                let mut log = commitlog::CommitLog::new(opts).expect("commitlog");
                let mut pool: Vec<commitlog::message::MessageBuf> = (0..n)
                    .map(|_| commitlog::message::MessageBuf::from_bytes(encoded.clone()).expect("buf"))
                    .collect();
                let start = Instant::now();
                for buf in &mut pool {
                    log.append(black_box(buf)).expect("commitlog append");
                }
                let t = start.elapsed();
                drop(log);
                std::fs::remove_dir_all(&dir).expect("remove");
                t
            })
        });
    });
    g.bench_function("peer_commitlog_append_msg_x16", |b| {
        // commitlog used one message per record: 16 `append_msg` calls per 16 KiB.
        let vals = values();
        b.iter_custom(|iters| {
            chunked(iters, POOL, |round, n| {
                let dir = root.join(format!("commitlog-msg-{round}"));
                let _ = std::fs::remove_dir_all(&dir);
                let mut opts = commitlog::LogOptions::new(&dir);
                opts.segment_max_bytes(i32::MAX as usize).index_max_items(1 << 22);
                let mut log = commitlog::CommitLog::new(opts).expect("commitlog");
                let start = Instant::now();
                for _ in 0..n {
                    for v in &vals {
                        log.append_msg(black_box(v)).expect("commitlog append");
                    }
                }
                let t = start.elapsed();
                drop(log);
                std::fs::remove_dir_all(&dir).expect("remove");
                t
            })
        });
    });
    g.finish();

    let mut g = c.benchmark_group("append/txn_10_batches");
    g.throughput(Throughput::Bytes((TXN_BATCHES * batch_len) as u64));
    let per_log = POOL / TXN_BATCHES;
    g.bench_function("baseline_idempotent_10_batches", |b| {
        b.iter_custom(|iters| {
            chunked(iters, per_log, |round, n| {
                in_fresh_log(root, round, config(), |log| {
                    let start = Instant::now();
                    for bytes in &idem[..n * TXN_BATCHES] {
                        must_append(log.append(black_box(bytes), AppendOrigin::Client));
                    }
                    start.elapsed()
                })
            })
        });
    });
    g.bench_function("transactional_10_batches_plus_commit", |b| {
        let marker = TxnMarker {
            producer_id: ProducerId(2),
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker: MarkerType::Commit,
            timestamp: Some(T0),
        };
        b.iter_custom(|iters| {
            chunked(iters, per_log, |round, n| {
                in_fresh_log(root, round, config(), |log| {
                    let start = Instant::now();
                    for t in txn[..n * TXN_BATCHES].chunks(TXN_BATCHES) {
                        for bytes in t {
                            must_append(log.append(black_box(bytes), AppendOrigin::Client));
                        }
                        must_append(log.write_marker(&marker));
                    }
                    let t = start.elapsed();
                    assert_eq!(log.last_stable_offset(), log.high_watermark());
                    t
                })
            })
        });
    });
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
    targets = bench_append
}
criterion_main!(benches);
