//! Invariants: preallocation never changes what is stored. A `.log` file's length is
//! exactly the bytes of its batches (as Kafka's tools read it), while the active segment
//! keeps disk space reserved ahead of its end (`eoslog.preallocate.bytes`, never past
//! `segment.bytes`); rolling and closing release the reservation, also one a crash left; a
//! log that crashed with space reserved recovers every record and goes on appending;
//! `eoslog.preallocate.bytes=0` reserves nothing; Kafka's `preallocate=true` reserves all of
//! `segment.bytes` at a segment's first write. Issue #6. Linux only: elsewhere nothing is
//! reserved.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use eoslog::{file_name, FileSystem, Isolation, Log, Offset, StdFileSystem};

const MIB: u64 = 1 << 20;
/// Slack for a file system's own rounding (block size, delayed allocation).
const SLACK: u64 = 64 << 10;

fn log_file(t: &TestLog, base: Offset) -> PathBuf {
    t.path().join(file_name(base.0, "log"))
}

/// (length, bytes allocated on disk) of a file.
fn sizes(path: &std::path::Path) -> (u64, u64) {
    let m = std::fs::metadata(path).expect("stat");
    (m.len(), m.blocks() * 512)
}

/// Whether the file system under `t` reserves space (some, such as tmpfs on old kernels or
/// network file systems, do not; the log then allocates as it writes).
fn supports_preallocation(t: &TestLog) -> bool {
    let probe = t.dir.path().join("probe");
    let f = StdFileSystem.open(&probe, true).expect("probe");
    let ok = f.preallocate(0, MIB).is_ok() && sizes(&probe).1 >= MIB;
    std::fs::remove_file(&probe).expect("remove probe");
    if !ok {
        eprintln!("this file system does not preallocate; only lengths are checked");
    }
    ok
}

/// Appends `n` one-record batches for producer 1 from sequence `seq`; returns their bytes.
fn append_batches(log: &Log, seq: i32, n: i32) -> u64 {
    (seq..seq + n)
        .map(|s| {
            let b = idem(1, 0, s, 1);
            appended(client(log, &b));
            b.len() as u64
        })
        .sum()
}

#[test]
fn reserved_ahead_while_active_and_released_on_roll_and_close() {
    let t = TestLog::with_config(config(&[("eoslog.preallocate.bytes", "1048576")]));
    let reserves = supports_preallocation(&t);
    let log = t.open();
    let first = append_batches(&log, 0, 50);
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert_eq!(len, first, "the .log length is the bytes of its batches");
    if reserves {
        assert!(
            allocated >= MIB,
            "active segment reserves ahead: {allocated} bytes"
        );
    }
    log.roll_segment().expect("roll");
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert_eq!(len, first);
    assert!(
        allocated < len + SLACK,
        "a rolled segment keeps no reservation: {allocated} bytes"
    );

    let second = append_batches(&log, 50, 10);
    let active = log_file(&t, Offset(50));
    assert_eq!(sizes(&active).0, second);
    if reserves {
        assert!(sizes(&active).1 >= MIB);
    }
    // A crash with space reserved: everything is recovered, nothing past the data is read.
    drop(log);
    let log = t.open();
    assert_eq!(log.log_end_offset(), Offset(60));
    let want: Vec<String> = (0..60).map(|s| format!("p1-s{s}")).collect();
    assert_eq!(values(&log, Isolation::ReadUncommitted), want);
    let third = append_batches(&log, 60, 5);
    assert_eq!(sizes(&active).0, second + third);
    log.verify(|_, _| {}).expect("verify");
    log.close().expect("close");
    let (len, allocated) = sizes(&active);
    assert_eq!(len, second + third);
    assert!(
        allocated < len + SLACK,
        "closing releases the reservation: {allocated} bytes"
    );
    let log = t.open();
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 65);
}

#[test]
fn reservation_stops_at_segment_bytes_and_can_be_turned_off() {
    let t = TestLog::with_config(config(&[
        ("eoslog.preallocate.bytes", "1048576"),
        ("segment.bytes", "65536"),
    ]));
    let reserves = supports_preallocation(&t);
    let log = t.open();
    let bytes = append_batches(&log, 0, 20);
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert_eq!(len, bytes);
    if reserves {
        assert!(allocated >= 60_000, "reserved up to segment.bytes: {allocated}");
    }
    assert!(
        allocated <= 65_536 + SLACK,
        "never past segment.bytes: {allocated}"
    );

    let t = TestLog::with_config(config(&[("eoslog.preallocate.bytes", "0")]));
    let log = t.open();
    let bytes = append_batches(&log, 0, 50);
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert_eq!(len, bytes);
    assert!(allocated < len + SLACK, "nothing reserved when off: {allocated}");
}

#[test]
fn reservation_left_by_a_crash_is_released_at_the_next_roll() {
    let t = TestLog::with_config(config(&[("eoslog.preallocate.bytes", "1048576")]));
    let reserves = supports_preallocation(&t);
    let log = t.open();
    let bytes = append_batches(&log, 0, 10);
    drop(log); // no close: the reservation stays on disk
    let path = log_file(&t, Offset(0));
    if reserves {
        assert!(sizes(&path).1 >= MIB);
    }
    // Reopened, then rolled before anything is appended.
    let log = t.open();
    log.roll_segment().expect("roll");
    let (len, allocated) = sizes(&path);
    assert_eq!(len, bytes);
    assert!(
        allocated < len + SLACK,
        "leftover reservation released: {allocated} bytes"
    );
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 10);
}

#[test]
fn kafkas_preallocate_reserves_the_whole_segment_at_its_first_write() {
    let t = TestLog::with_config(config(&[
        ("preallocate", "true"),
        ("eoslog.preallocate.bytes", "65536"),
        ("segment.bytes", &(4 * MIB).to_string()),
    ]));
    let reserves = supports_preallocation(&t);
    let log = t.open();
    let bytes = append_batches(&log, 0, 3);
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert_eq!(
        len, bytes,
        "the length stays the data's (Kafka's would be segment.bytes)"
    );
    if reserves {
        assert!(
            allocated >= 4 * MIB - SLACK,
            "all of segment.bytes reserved: {allocated}"
        );
    }
    assert!(
        allocated <= 4 * MIB + SLACK,
        "never past segment.bytes: {allocated}"
    );
    log.roll_segment().expect("roll");
    let (len, allocated) = sizes(&log_file(&t, Offset(0)));
    assert!(allocated < len + SLACK, "released on roll: {allocated}");
}
