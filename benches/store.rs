//! Opening a store of 10,000 partitions, and what an idle partition costs.
//!
//! * `store/open_10k/clean`: `Store::open` + `close` of a store with 100 topics of 100
//!   partitions, each partition used once before (so each has its directory and a segment),
//!   closed cleanly. Opening must read none of them (issue #14's goal: at most 1 s).
//! * `store/open_10k/after_crash`: the same open after the previous store was dropped
//!   without closing (a crash, as far as the files can tell).
//! * `store/list_10k`: the baseline, listing the store directory's 10,100 entries.
//! * Memory per idle partition (printed, not a criterion row): a counting global allocator
//!   measures the live heap a store of 10,000 idle partitions holds, minus a store with none.
#![allow(missing_docs)]
// A global allocator needs `unsafe impl GlobalAlloc`; this bench is the only place it is used.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use eoslog::{Store, StoreConfig};

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

const TOPICS: u32 = 100;
const PARTITIONS: u32 = 100;

fn config() -> StoreConfig {
    let mut c = StoreConfig::default();
    // Small preallocation so 10,000 used partitions do not reserve 80 GB of disk.
    c.set("eoslog.preallocate.bytes", "0").expect("config");
    c
}

/// A store of `TOPICS` x `PARTITIONS` partitions, each opened once, closed cleanly.
fn build(dir: &Path) {
    let t = Instant::now();
    let store = Store::open(dir, config()).expect("open");
    for topic in 0..TOPICS {
        let name = format!("topic-{topic:03}");
        store.create_topic(&name, PARTITIONS, &[]).expect("create");
        for p in 0..PARTITIONS {
            drop(store.partition(&name, p as i32).expect("partition"));
        }
    }
    store.close().expect("close");
    eprintln!(
        "store: {} partitions created and opened once in {:.1?}",
        TOPICS * PARTITIONS,
        t.elapsed()
    );
}

fn open(dir: &Path) -> Store {
    Store::open(dir, config()).expect("open")
}

fn memory_per_idle_partition(dir: &Path) {
    let empty = tempfile::tempdir().expect("tempdir");
    Store::open(empty.path(), config())
        .expect("open")
        .close()
        .expect("close");
    let before = LIVE.load(Ordering::Relaxed);
    let base = Store::open(empty.path(), config()).expect("open");
    let base_bytes = LIVE.load(Ordering::Relaxed) - before;
    let before = LIVE.load(Ordering::Relaxed);
    let full = open(dir);
    let full_bytes = LIVE.load(Ordering::Relaxed) - before;
    let n = (TOPICS * PARTITIONS) as usize;
    eprintln!(
        "store: live heap after open: {full_bytes} B with {n} idle partitions, {base_bytes} B with none: {:.0} B per idle partition",
        (full_bytes - base_bytes) as f64 / n as f64
    );
    full.close().expect("close");
    base.close().expect("close");
}

fn bench_store(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    build(tmp.path());
    memory_per_idle_partition(tmp.path());
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("list_10k", |b| {
        b.iter(|| std::fs::read_dir(tmp.path()).expect("list").count());
    });
    g.bench_function("open_10k/clean", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let s = open(tmp.path());
                total += t.elapsed();
                s.close().expect("close");
            }
            total
        });
    });
    g.bench_function("open_10k/after_crash", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                drop(open(tmp.path())); // not closed: the next open finds no clean marker
                let t = Instant::now();
                let s = open(tmp.path());
                total += t.elapsed();
                drop(s);
            }
            total
        });
    });
    g.finish();
    open(tmp.path()).close().expect("close");
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
