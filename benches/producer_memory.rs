//! Memory per idle producer (not a criterion bench): a counting global allocator tracks live
//! heap bytes; the increase after registering N producers with one batch each (and again
//! after each wrote 5 batches, the default window) is divided by N. A control run appends
//! the same number of plain (producer id -1) batches of the same size to a fresh log.
//!
//! Each batch is built just before its append and freed right after it, so only what the
//! log keeps counts. Heap only: mmapped index files are not included.
#![allow(missing_docs)]
// A global allocator needs `unsafe impl GlobalAlloc`; this bench is the only place it is used.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, Log, LogConfig, NewRecord, ProducerEpoch, ProducerId, Sequence,
};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a counter is updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const T0: i64 = 1_700_000_000_000;
const VALUE: [u8; 30] = *b"0123456789abcdefghijklmnopqrst";

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn append(log: &Log, bytes: &[u8]) {
    match log.append(bytes, AppendOrigin::Client) {
        Ok(AppendOutcome::Appended(_)) => {}
        other => panic!("append not written: {other:?}"),
    }
}

fn idem(pid: i64, seq: i32) -> Vec<u8> {
    BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
        .build(&[NewRecord::value(T0, &VALUE)])
        .expect("build")
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let mut config = LogConfig::default();
    config.set("eoslog.max.producer.ids", "2000000").expect("config");
    println!(
        "producer_memory: window {} (default), batch {} bytes, heap bytes via a counting global allocator",
        config.producer_window,
        idem(0, 0).len()
    );
    for n in [100_000usize, 1_000_000] {
        let tmp = tempfile::tempdir().expect("tempdir");

        // Control: the same number of plain batches (no producer state).
        let plain_bytes = BatchBuilder::new()
            .build(&[NewRecord::value(T0, &VALUE)])
            .expect("build");
        let log = Log::open(tmp.path().join("plain-0"), config.clone()).expect("open");
        append(&log, &plain_bytes); // warm the log's scratch buffer
        let before = live();
        for _ in 0..n {
            append(&log, &plain_bytes);
        }
        let control = live() as f64 - before as f64;
        drop(log);

        let log = Log::open(tmp.path().join("idem-0"), config.clone()).expect("open");
        append(&log, &plain_bytes);
        let before = live();
        let t = Instant::now();
        for p in 0..n {
            append(&log, &idem(p as i64, 0));
        }
        let one = live() as f64 - before as f64;
        let t1 = t.elapsed();
        for seq in 1..5 {
            for p in 0..n {
                append(&log, &idem(p as i64, seq));
            }
        }
        let five = live() as f64 - before as f64;
        assert_eq!(log.stats().producers, n as u64);
        println!(
            "producers={n:>9}: 1 batch each: {:>7.1} bytes/producer ({:.1} MB total, {t1:.2?}); 5 batches each: {:>7.1} bytes/producer ({:.1} MB); control (plain batches, no producers): {:.2} bytes/batch",
            one / n as f64,
            one / 1e6,
            five / n as f64,
            five / 1e6,
            control / n as f64
        );
        drop(log);
    }
}
