//! Invariants: a flood of short-lived producers never holds more than `eoslog.max.producer.ids`
//! producers (least recently used idle ones are evicted, never one with an open transaction, and
//! evictions are counted); concurrent durable appenders share fsyncs (group commit) and every
//! acknowledged append is durable; many producers' interleaved transactions read back under
//! read_committed as exactly the committed set, in offset order. Issues #3 and #4.

mod common;
use common::*;
use std::collections::HashSet;
use std::sync::Arc;

use eoslog::{AppendOptions, AppendOrigin, AppendOutcome, Durability, Isolation, MarkerType, Offset};

#[test]
fn flood_of_one_batch_producers_is_capped() {
    let t = TestLog::with_config(config(&[("eoslog.max.producer.ids", "1000")]));
    let log = t.open();
    // Two producers with open transactions must survive the flood.
    appended(client(&log, &txn(9_999_993, 0, 0, 1)));
    appended(client(&log, &txn(10_000_001, 0, 0, 1)));
    for pid in 0..20_000 {
        appended(client(&log, &idem(pid, 0, 0, 1)));
    }
    let stats = log.stats();
    assert_eq!(stats.producers, 1000);
    assert_eq!(stats.producer_evictions, 20_002 - 1000);
    let ids: HashSet<i64> = log.producers().iter().map(|p| p.producer_id.0).collect();
    assert!(
        ids.contains(&9_999_993) && ids.contains(&10_000_001),
        "open transactions are never evicted"
    );
    // The most recent producers are kept, so their retries are still recognised.
    for pid in 19_900..20_000 {
        assert!(
            matches!(client(&log, &idem(pid, 0, 0, 1)), AppendOutcome::Duplicate(_)),
            "pid {pid}"
        );
    }
    // An evicted producer is unknown again: any sequence is accepted (as after expiry).
    appended(client(&log, &idem(5, 0, 42, 1)));
    // The cap holds across a restart.
    log.close().expect("close");
    let log = t.open();
    assert_eq!(log.stats().producers, 1000);
}

#[test]
fn durable_appends_share_fsyncs() {
    const THREADS: i64 = 16;
    const EACH: i32 = 20;
    let t = TestLog::new();
    // The first fsync blocks until every other appender waits behind it: the next fsync then
    // covers all of their appends, so sharing is certain rather than likely.
    let gate = Gate::new(GateOn::Sync);
    let log = Arc::new(gate.open(&t, is_segment));
    gate.arm();
    let threads: Vec<_> = (0..THREADS)
        .map(|pid| {
            let log = log.clone();
            std::thread::spawn(move || {
                let opts = AppendOptions {
                    durability: Some(Durability::SyncEachAppend),
                    ..AppendOptions::new(AppendOrigin::Client)
                };
                for s in 0..EACH {
                    let o = log.append_with(&idem(pid, 0, s, 1), &opts).expect("append");
                    let info = appended(o);
                    assert!(
                        log.durable_offset() > info.last_offset,
                        "acknowledged only once durable"
                    );
                }
            })
        })
        .collect();
    gate.wait_entered();
    wait_until("every other appender waits on the blocked fsync", || {
        log.stats().durable_waiters == (THREADS - 1) as u64
    });
    gate.release();
    for th in threads {
        th.join().expect("join");
    }
    let appends = (THREADS * i64::from(EACH)) as u64;
    let stats = log.stats();
    assert_eq!(stats.appends, appends);
    // The fsync after the gated one covered the THREADS - 1 appends that waited for it.
    assert!(
        stats.fsyncs <= appends - (THREADS - 1) as u64 + 1,
        "{appends} durable appends from {THREADS} threads took {} fsyncs",
        stats.fsyncs
    );
    eprintln!(
        "{appends} durable appends from {THREADS} threads took {} fsyncs",
        stats.fsyncs
    );
    assert_eq!(log.durable_offset(), Offset(appends as i64));
}

#[test]
fn interleaved_transactions_read_back_as_the_committed_set() {
    let t = TestLog::with_config(config(&[("segment.bytes", "4000")]));
    let log = t.open();
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let producers = 12i64;
    let mut seq = vec![0i32; producers as usize];
    let mut open = vec![Vec::<String>::new(); producers as usize];
    let mut committed: Vec<(i64, String)> = Vec::new();
    let mut offsets = std::collections::HashMap::new();
    for _ in 0..2000 {
        let p = (next() % producers as u64) as i64;
        let i = p as usize;
        if !open[i].is_empty() && next() % 4 == 0 {
            let commit = next() % 3 != 0;
            let _ = marker(
                &log,
                p,
                0,
                0,
                if commit {
                    MarkerType::Commit
                } else {
                    MarkerType::Abort
                },
            );
            if commit {
                for v in open[i].drain(..) {
                    committed.push((offsets[&v], v));
                }
            } else {
                open[i].clear();
            }
            continue;
        }
        let n = 1 + (next() % 3) as usize;
        let info = appended(client(&log, &txn(p, 0, seq[i], n)));
        for k in 0..n {
            let v = format!("t{p}-s{}", seq[i] + k as i32);
            offsets.insert(v.clone(), info.first_offset.0 + k as i64);
            open[i].push(v);
        }
        seq[i] += n as i32;
    }
    committed.sort();
    let expected: Vec<String> = committed.into_iter().map(|(_, v)| v).collect();
    // Everything still open pins the LSO: read_committed stops there.
    let lso = log.last_stable_offset();
    let visible: Vec<String> = expected.iter().filter(|v| offsets[*v] < lso.0).cloned().collect();
    assert_eq!(values(&log, Isolation::ReadCommitted), visible);
    // Abort everything still open; then the whole committed set is visible.
    for t in log.open_transactions() {
        let _ = log
            .abort_transaction(t.producer_id, t.first_offset)
            .expect("abort");
    }
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(values(&log, Isolation::ReadCommitted), expected);
    assert!(log.segments().len() > 5);
    // The same holds after a crash and recovery.
    drop(log);
    let log = t.open();
    assert_eq!(values(&log, Isolation::ReadCommitted), expected);
}
