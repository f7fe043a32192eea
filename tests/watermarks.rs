//! Invariant: the high watermark and the last stable offset never move backwards, except by a
//! truncation; every fetch sees `LSO <= HW`. A read_committed consumer that saw the LSO at
//! `n` never sees data below `n` become unstable again. Issue #13, item 6.

mod common;
use common::*;
use eoslog::{Isolation, Offset};

fn manual() -> TestLog {
    TestLog::with_config(config(&[("eoslog.high.watermark", "manual")]))
}

#[test]
fn set_high_watermark_never_moves_it_backwards() {
    let t = manual();
    let log = t.open();
    for i in 0..10 {
        appended(client(&log, &plain(&[&format!("v{i}")])));
    }
    assert_eq!(log.set_high_watermark(Offset(8)), Offset(8));
    assert_eq!(
        log.set_high_watermark(Offset(3)),
        Offset(8),
        "a lower HW is refused"
    );
    assert_eq!(log.high_watermark(), Offset(8));
    assert_eq!(log.last_stable_offset(), Offset(8));
    assert_eq!(
        log.set_high_watermark(Offset(100)),
        Offset(10),
        "clamped to the log end"
    );
    // Only a truncation lowers it.
    log.truncate_to(Offset(5)).expect("truncate");
    assert_eq!(log.high_watermark(), Offset(5));
    assert_eq!(log.last_stable_offset(), Offset(5));
}

#[test]
fn the_last_stable_offset_stays_behind_an_open_transaction_and_never_goes_back() {
    let t = manual();
    let log = t.open();
    appended(client(&log, &plain(&["a", "b"]))); // 0..1
    appended(client(&log, &txn(1, 0, 0, 2))); // 2..3
    log.set_high_watermark(Offset(4));
    assert_eq!(log.last_stable_offset(), Offset(2));
    log.set_high_watermark(Offset(1));
    assert_eq!(
        log.last_stable_offset(),
        Offset(2),
        "a lower HW does not pull the LSO back"
    );
    commit(&log, 1, 0); // 4
    log.set_high_watermark(Offset(5));
    assert_eq!(log.last_stable_offset(), Offset(5));
    let fetch = log
        .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
        .expect("fetch");
    assert!(fetch.last_stable_offset <= fetch.high_watermark);
}

/// Concurrent appends (transactions that open, commit and abort), high-watermark updates that
/// sometimes try to go back, and readers: every reader sees the HW and the LSO only ever
/// grow, and every fetch has `LSO <= HW`.
#[test]
fn concurrent_readers_never_see_the_watermarks_go_back() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = manual();
    let log = t.open();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut seq = [0i32; 3];
            for i in 0..600 {
                let pid = (i % 3) as i64;
                appended(client(&log, &txn(pid, 0, seq[pid as usize], 1)));
                seq[pid as usize] += 1;
                if i % 2 == 1 {
                    if i % 4 == 1 {
                        commit(&log, pid, 0);
                    } else {
                        abort(&log, pid, 0);
                    }
                }
            }
            for pid in 0..3 {
                let _ = marker(&log, pid, 0, 0, eoslog::MarkerType::Commit);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut x = 1u64;
            while !done.load(Ordering::Acquire) {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let end = log.log_end_offset().0;
                // Mostly forward, sometimes well behind.
                let target = if x.is_multiple_of(3) { end / 2 } else { end };
                log.set_high_watermark(Offset(target));
            }
            log.set_high_watermark(log.log_end_offset());
        });
        for _ in 0..2 {
            s.spawn(|| {
                let (mut hw, mut lso) = (0, 0);
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let fetch = log.read(Offset(0), 64, Isolation::ReadCommitted).expect("fetch");
                    let (h, l) = (fetch.high_watermark.0, fetch.last_stable_offset.0);
                    assert!(l <= h, "LSO {l} above HW {h}");
                    assert!(h >= hw, "HW went back from {hw} to {h}");
                    assert!(l >= lso, "LSO went back from {lso} to {l}");
                    let direct = log.last_stable_offset().0;
                    assert!(direct >= l, "LSO went back from {l} to {direct}");
                    (hw, lso) = (h, direct.max(l));
                    if finished {
                        break;
                    }
                }
            });
        }
    });
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}
