//! Invariant: `eoslog compact` SIGKILLed at a random moment — while mapping, copying,
//! committing or swapping any of its groups — leaves a log that opens with every key at its
//! latest committed value, no aborted record visible, each idempotent producer's last batch
//! still a duplicate, no `.cleaned` or `.swap` file left, and a clean after it succeeds.
//! `EOSLOG_COMPACTION_KILLS` sets the number of kills (default 30).
#![cfg(feature = "cli")]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use eoslog::{
    AppendOutcome, BatchBuilder, CleanerOptions, Isolation, Log, NewRecord, ProducerEpoch, ProducerId,
    Sequence,
};

const CONFIG: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.bytes", "32768"),
    ("delete.retention.ms", "0"),
];

/// Wall-clock now: the CLI runs on the system clock, and producers idle for a day by it
/// would expire when it opens the log.
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    i64::try_from(since.as_millis()).expect("ms")
}

fn batch(builder: BatchBuilder, records: &[(String, Option<String>)]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .map(|(k, v)| NewRecord {
            timestamp: now_ms(),
            key: Some(k.as_bytes()),
            value: v.as_deref().map(str::as_bytes),
            headers: Vec::new(),
        })
        .collect();
    builder.build(&recs).expect("build")
}

fn latest(log: &Log) -> BTreeMap<String, String> {
    let (recs, _) = log
        .read_records(log.log_start_offset(), usize::MAX / 2, Isolation::ReadCommitted)
        .expect("read");
    let mut m = BTreeMap::new();
    for r in recs {
        let k = String::from_utf8(r.key.expect("key")).expect("utf8");
        match r.value.map(|v| String::from_utf8(v).expect("utf8")) {
            Some(v) => {
                assert!(!v.starts_with("aborted"), "aborted value {v} visible");
                m.insert(k, v)
            }
            None => m.remove(&k),
        };
    }
    m
}

/// About 2 MiB over ~64 segments: two idempotent producers overwrite 50 keys, a
/// transactional one commits and aborts, a plain writer adds tombstones.
/// Each idempotent producer's last batch and its first offset.
type LastBatches = Vec<(Vec<u8>, i64)>;

fn build(t: &TestLog) -> (BTreeMap<String, String>, LastBatches) {
    let log = t.open();
    let pad = "x".repeat(400);
    let mut last = vec![(Vec::new(), 0); 2];
    for round in 0..400i32 {
        for (pid, last) in last.iter_mut().enumerate() {
            let recs = vec![(
                format!("k{}", (round as usize * 3 + pid) % 50),
                Some(format!("{pid}-{round}-{pad}")),
            )];
            let b = batch(
                BatchBuilder::idempotent(ProducerId(pid as i64 + 1), ProducerEpoch(0), Sequence(round)),
                &recs,
            );
            let at = appended(client(&log, &b)).first_offset.0;
            *last = (b, at);
        }
        let value = if round % 3 == 0 { "aborted" } else { "committed" };
        let recs = vec![(format!("t{}", round % 7), Some(format!("{value}-{round}")))];
        appended(client(
            &log,
            &batch(
                BatchBuilder::transactional(ProducerId(9), ProducerEpoch(0), Sequence(round)),
                &recs,
            ),
        ));
        if round % 3 == 0 {
            abort(&log, 9, 0);
        } else {
            commit(&log, 9, 0);
        }
        if round % 10 == 5 {
            appended(client(
                &log,
                &batch(BatchBuilder::new(), &[(format!("k{}", round % 50), None)]),
            ));
        }
    }
    log.roll_segment().expect("roll");
    let expected = latest(&log);
    log.close().expect("close");
    (expected, last)
}

#[test]
fn sigkill_during_compact_leaves_old_or_new_segments() {
    let t = TestLog::with_config(config(CONFIG));
    t.clock.set(now_ms());
    let (expected, last) = build(&t);
    let kills: u64 = std::env::var("EOSLOG_COMPACTION_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut mid_clean = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..kills {
        let scratch = tempfile::tempdir().expect("dir");
        let dir = scratch.path().join("t-0");
        copy_dir(&t.path(), &dir);
        let mut args = vec!["compact".to_owned(), dir.to_str().expect("utf8").to_owned()];
        for (k, v) in CONFIG {
            args.push("--config".into());
            args.push(format!("{k}={v}"));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_eoslog"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(2_000 + seed % 60_000));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let leftovers = files_with_suffix(&dir, ".cleaned").len() + files_with_suffix(&dir, ".swap").len();
        if leftovers > 0 {
            mid_clean += 1;
        }
        let log = t.open_at(&dir);
        assert!(
            files_with_suffix(&dir, ".cleaned").is_empty() && files_with_suffix(&dir, ".swap").is_empty()
        );
        assert_eq!(latest(&log), expected, "kill {i} (status {status:?})");
        for (bytes, at) in &last {
            match client(&log, bytes) {
                AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset.0, *at, "kill {i}"),
                other => panic!("kill {i}: a retry of the last batch gave {other:?}"),
            }
        }
        log.clean(&CleanerOptions::default(), true)
            .expect("clean after the kill");
        assert_eq!(latest(&log), expected, "kill {i}: after the next clean");
    }
    eprintln!("{kills} kills, {mid_clean} while files of a clean existed");
    assert!(
        mid_clean > 0,
        "no kill landed while files of a clean existed; {kills} kills"
    );
}
