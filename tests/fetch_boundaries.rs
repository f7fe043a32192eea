//! Invariant: a fetch returns, from the segment holding the first batch that ends at or after
//! `from`, the longest run of whole batches that fits `max_bytes` (at least one batch) and
//! stays below the isolation's bound (HW, LSO or log end), whatever the offset index holds:
//! a read may skip the headers of the batches the index proves whole, but it must return
//! exactly what a batch-by-batch walk of the segment file returns. A read_committed fetch
//! carries exactly the aborted transactions that overlap it, on a leader and on a follower
//! (whose transaction index must equal the leader's). An offset index that lies about a
//! batch never makes a fetch return data past its bound. Issue #6 (read path tuning).

mod common;
use common::*;

use eoslog::{file_name, AppendOrigin, BatchIter, HighWatermarkMode, Isolation, Log, Offset};

/// One batch as the segment file holds it.
#[derive(Debug, Clone, Copy)]
struct Batch {
    position: u64,
    size: u64,
    base: i64,
    last: i64,
}

/// Every segment's batches, walked from the raw `.log` files.
fn walk(log: &Log) -> Vec<(i64, Vec<Batch>)> {
    log.segments()
        .iter()
        .map(|s| {
            let bytes =
                std::fs::read(log.dir().join(file_name(s.base_offset.0, "log"))).expect("read segment");
            let batches = BatchIter::new(&bytes[..s.size as usize])
                .map(|b| {
                    let (position, b) = b.expect("valid batch");
                    Batch {
                        position,
                        size: b.size() as u64,
                        base: b.base_offset(),
                        last: b.last_offset(),
                    }
                })
                .collect();
            (s.base_offset.0, batches)
        })
        .collect()
}

/// What a fetch must return: (segment base, position, length, last offset), or `None`.
fn expected(segments: &[(i64, Vec<Batch>)], from: i64, max: u64, bound: i64) -> Option<(i64, u64, u64, i64)> {
    if from >= bound {
        return None;
    }
    let start = segments
        .partition_point(|(base, _)| *base <= from)
        .saturating_sub(1);
    for (base, batches) in &segments[start..] {
        let Some(i) = batches.iter().position(|b| b.last >= from) else {
            continue;
        };
        let first = batches[i];
        if first.base >= bound || first.last >= bound {
            return None;
        }
        let (mut end, mut last) = (first.position + first.size, first.last);
        for b in &batches[i + 1..] {
            if b.last >= bound || b.position + b.size - first.position > max {
                break;
            }
            (end, last) = (b.position + b.size, b.last);
        }
        return Some((*base, first.position, end - first.position, last));
    }
    None
}

fn log_config(interval: &str) -> eoslog::LogConfig {
    config(&[
        ("segment.bytes", "6000"),
        ("index.interval.bytes", interval),
        ("eoslog.high.watermark", "manual"),
    ])
}

/// A log of idempotent and transactional appends (some aborted, one left open), over
/// several segments, with the offset index written every `interval` bytes.
fn build(interval: &str) -> (TestLog, Log) {
    let t = TestLog::with_config(log_config(interval));
    let log = t.open();
    let mut seq = [0i32; 4];
    let mut tseq = [0i32; 3];
    for i in 0..240usize {
        let p = i % 4;
        let n = 1 + (i * 7) % 13;
        match i % 9 {
            // A transaction of two batches, committed or aborted.
            5 | 7 => {
                let tp = (i / 9) % 3;
                let pid = 100 + tp as i64;
                let _ = appended(client(&log, &txn(pid, 0, tseq[tp], n)));
                let _ = appended(client(&log, &idem(p as i64 + 1, 0, seq[p], 1)));
                seq[p] += 1;
                let _ = appended(client(&log, &txn(pid, 0, tseq[tp] + n as i32, 3)));
                tseq[tp] += n as i32 + 3;
                if i % 2 == 0 {
                    abort(&log, pid, 0);
                } else {
                    commit(&log, pid, 0);
                }
            }
            _ => {
                let _ = appended(client(&log, &idem(p as i64 + 1, 0, seq[p], n)));
                seq[p] += n as i32;
            }
        }
    }
    // An open transaction bounds read_committed (LSO); the HW lags the log end.
    let _ = appended(client(&log, &txn(200, 0, 0, 4)));
    for _ in 0..6 {
        let _ = appended(client(&log, &idem(1, 0, seq[0], 5)));
        seq[0] += 5;
    }
    log.set_high_watermark(Offset(log.log_end_offset().0 - 9));
    (t, log)
}

/// A follower of `leader`: replicated fetches of several batches each, so that one index
/// entry covers several batches (the entry names the append's first batch and last offset).
fn replicate(leader: &Log, interval: &str) -> (TestLog, Log) {
    let t = TestLog::with_config(log_config(interval));
    let follower = t.open();
    let mut from = Offset(0);
    let mut chunk = 2_000;
    while from < leader.log_end_offset() {
        let r = leader.read(from, chunk, Isolation::Replica).expect("leader read");
        let bytes = r.bytes().expect("bytes");
        let info = appended(
            follower
                .append(&bytes, AppendOrigin::Replication)
                .expect("replicate"),
        );
        from = info.last_offset.next();
        chunk = chunk * 3 % 11_000 + 1_000;
    }
    follower.set_high_watermark(leader.high_watermark());
    (t, follower)
}

fn check(interval: &str) {
    let (_t, leader) = build(interval);
    check_log(&leader, interval);
    let (_f, follower) = replicate(&leader, interval);
    assert_eq!(
        follower.aborted_transactions(),
        leader.aborted_transactions(),
        "a follower builds the leader's transaction index"
    );
    assert_eq!(
        walk(&follower).iter().map(|(_, b)| b.len()).sum::<usize>(),
        walk(&leader).iter().map(|(_, b)| b.len()).sum::<usize>()
    );
    check_log(&follower, interval);
}

fn check_log(log: &Log, interval: &str) {
    assert_eq!(log.config().high_watermark, HighWatermarkMode::Manual);
    assert!(log.segments().len() >= 4, "several segments");
    let segments = walk(log);
    let aborted = log.aborted_transactions();
    assert!(!aborted.is_empty());
    let end = log.log_end_offset().0;
    let mut checked = 0;
    for isolation in [
        Isolation::Replica,
        Isolation::ReadUncommitted,
        Isolation::ReadCommitted,
    ] {
        let bound = match isolation {
            Isolation::Replica => end,
            Isolation::ReadUncommitted => log.high_watermark().0,
            Isolation::ReadCommitted => log.last_stable_offset().0,
        };
        for from in (0..end).step_by(3) {
            for max in [0u64, 1, 700, 3_000, 9_000, 20_000, 1 << 20] {
                let r = log.read(Offset(from), max as usize, isolation).expect("read");
                let got = r.slices.first().map(|s| (s.path.clone(), s.position, s.len));
                let want = expected(&segments, from, max, bound);
                assert_eq!(
                    got,
                    want.map(|(base, pos, len, _)| (log.dir().join(file_name(base, "log")), pos, len)),
                    "{isolation:?} from {from} max {max} (interval {interval})"
                );
                if let (Some((_, _, _, last)), Some(list)) = (want, r.aborted_transactions.as_ref()) {
                    let overlapping: Vec<(i64, i64)> = aborted
                        .iter()
                        .filter(|a| a.last_offset >= from && a.first_offset <= last)
                        .map(|a| (a.producer_id, a.first_offset))
                        .collect();
                    let listed: Vec<(i64, i64)> =
                        list.iter().map(|a| (a.producer_id.0, a.first_offset.0)).collect();
                    assert_eq!(
                        listed, overlapping,
                        "aborted list, from {from} max {max}, fetch ends at {last}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1_000);
}

#[test]
fn fetch_boundaries_with_every_append_indexed() {
    check("0");
}

#[test]
fn fetch_boundaries_with_a_sparse_index() {
    check("1500");
}

#[test]
fn fetch_boundaries_with_the_default_index_interval() {
    check("4096");
}

#[test]
fn fetch_boundaries_after_reopen_with_rebuilt_indexes() {
    let (t, log) = build("0");
    let want = walk(&log);
    let hw = log.high_watermark();
    drop(log);
    // Indexes deleted: the reopened log rebuilds them from the segments.
    for f in files_with_suffix(&t.path(), ".index") {
        std::fs::remove_file(t.path().join(f)).expect("remove index");
    }
    let log = t.open();
    log.set_high_watermark(hw);
    let segments = walk(&log);
    assert_eq!(segments.len(), want.len());
    let end = log.log_end_offset().0;
    for from in (0..end).step_by(5) {
        for max in [1u64, 5_000, 1 << 20] {
            let r = log
                .read(Offset(from), max as usize, Isolation::Replica)
                .expect("read");
            let got = r.slices.first().map(|s| (s.position, s.len));
            let want = expected(&segments, from, max, end).map(|(_, p, l, _)| (p, l));
            assert_eq!(got, want, "from {from} max {max}");
        }
    }
}

#[test]
fn a_damaged_offset_index_never_widens_a_fetch_past_its_bound() {
    let t = TestLog::with_config(config(&[
        ("index.interval.bytes", "0"),
        ("eoslog.high.watermark", "manual"),
    ]));
    let log = t.open();
    for s in 0..40 {
        let _ = appended(client(&log, &idem(1, 0, s * 3, 3)));
    }
    let batches = walk(&log).remove(0).1;
    log.close().expect("close");
    // Entries are (last offset, position) of batches 1..=39. Rewrite the index so that one
    // entry names batch 20's last offset (62) but batch 30's position: offsets and positions
    // still increase, so the index passes its checks, but it lies about that batch.
    let entry = |offset: i64, position: u64| {
        let mut e = (offset as i32).to_be_bytes().to_vec();
        e.extend((position as i32).to_be_bytes());
        e
    };
    let mut index = Vec::new();
    for b in &batches[1..20] {
        index.extend(entry(b.last, b.position));
    }
    index.extend(entry(batches[20].last, batches[30].position));
    for b in &batches[31..] {
        index.extend(entry(b.last, b.position));
    }
    std::fs::write(t.path().join(file_name(0, "index")), index).expect("write index");
    let log = t.open();
    log.set_high_watermark(Offset(70));
    let r = log
        .read(Offset(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read");
    let s = r.slices.first().expect("a slice");
    let returned: Vec<&Batch> = batches
        .iter()
        .filter(|b| b.position >= s.position && b.position + b.size <= s.position + s.len)
        .collect();
    assert!(
        returned.iter().all(|b| b.last < 70),
        "a fetch bounded by the HW (70) returned offsets up to {}",
        returned.last().map_or(-1, |b| b.last)
    );
    assert_eq!(
        returned.last().map(|b| b.last),
        Some(68),
        "every batch below the HW is returned"
    );
}

#[test]
fn an_inflated_stable_offset_in_a_transaction_index_does_not_hide_an_aborted_transaction() {
    let t = TestLog::new();
    let log = t.open();
    let _ = appended(client(&log, &txn(1, 0, 0, 3)));
    let first = abort(&log, 1, 0);
    let _ = appended(client(&log, &txn(1, 0, 3, 3)));
    let second = abort(&log, 1, 0);
    let _ = appended(client(&log, &idem(2, 0, 0, 2)));
    let want = vec![(1, 0), (1, first.last_offset.0 + 1)];
    let listed = |log: &Log| -> Vec<(i64, i64)> {
        let r = log
            .read(Offset(0), 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        r.aborted_transactions
            .expect("read_committed")
            .iter()
            .map(|a| (a.producer_id.0, a.first_offset.0))
            .collect()
    };
    assert_eq!(listed(&log), want);
    log.close().expect("close");
    // Give the first entry the stable offset a Kafka follower can write (FORMAT.md §2.5): a
    // transaction opened after the marker in the same replicated fetch, far beyond it.
    let path = t.path().join(file_name(0, "txnindex"));
    let mut bytes = std::fs::read(&path).expect("read txnindex");
    assert_eq!(bytes.len(), 2 * 34);
    bytes[26..34].copy_from_slice(&1_000i64.to_be_bytes());
    std::fs::write(&path, bytes).expect("write txnindex");
    // As an earlier eoslog left it: a version-0 checkpoint, which records no checksum of the
    // transaction index (the current one would, and the altered file would be rebuilt).
    let end = log_end_from_checkpoint(&t);
    std::fs::write(
        t.path().join(eoslog::CHECKPOINT_FILE),
        format!("eoslog-checkpoint 0\nrecovery_point {end}\nlog_start_offset 0\n"),
    )
    .expect("write checkpoint");
    let log = t.open();
    assert_eq!(log.aborted_transactions()[0].last_stable_offset, 1_000);
    assert!(second.last_offset.0 < 1_000);
    assert_eq!(listed(&log), want, "both aborted transactions overlap the fetch");
}

fn log_end_from_checkpoint(t: &TestLog) -> i64 {
    let text = std::fs::read_to_string(t.path().join(eoslog::CHECKPOINT_FILE)).expect("checkpoint");
    text.lines()
        .find_map(|l| l.strip_prefix("recovery_point "))
        .and_then(|v| v.parse().ok())
        .expect("recovery point")
}

#[test]
fn a_truncation_leaves_no_stale_offset_index_slot() {
    let t = TestLog::with_config(config(&[("index.interval.bytes", "0")]));
    let log = t.open();
    for s in 0..30 {
        let _ = appended(client(&log, &idem(1, 0, s * 2, 2)));
    }
    log.truncate_to(Offset(31)).expect("truncate");
    let index = std::fs::read(t.path().join(file_name(0, "index"))).expect("read index");
    // Entries for batches 1..=14 remain (last offsets 3..=29); batch 15 (30..=31) was cut.
    let live = 14 * 8;
    assert!(index[..live].chunks(8).all(|e| e != [0u8; 8]));
    assert!(
        index[live..].iter().all(|&b| b == 0),
        "a slot past the entries survives the truncation"
    );
}
