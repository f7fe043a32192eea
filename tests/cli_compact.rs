//! `eoslog compact DIR` runs one clean and `eoslog describe` shows the dirty ratio and the
//! last clean: the dirty share of a log written but never cleaned is 1, a clean keeps the
//! latest value of each key, and the report survives the process (it is in `eoslog.cleaner`).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use eoslog::{AppendOrigin, BatchBuilder, Isolation, Log, LogConfig, NewRecord};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eoslog"))
        .args(args)
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn write_log(dir: &Path) {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    for round in 0..10 {
        for key in ["a", "b"] {
            let value = format!("{key}{round}");
            let batch = BatchBuilder::new()
                .build(&[NewRecord::key_value(
                    1_700_000_000_000,
                    key.as_bytes(),
                    value.as_bytes(),
                )])
                .unwrap();
            let _ = log.append(&batch, AppendOrigin::Client).unwrap();
        }
        log.roll_segment().unwrap();
    }
    log.close().unwrap();
}

#[test]
fn compact_cleans_and_describe_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    write_log(&dir);
    let d = dir.to_str().unwrap();
    let before = json(&run(&[
        "describe",
        d,
        "--config",
        "cleanup.policy=compact",
        "--json",
    ]));
    let c = &before["cleaner"];
    assert_eq!(c["compacted"], true);
    assert_eq!(c["cleanability"]["dirty_ratio"], 1.0);
    assert_eq!(c["cleanability"]["due"], true);
    assert_eq!(c["cleanability"]["first_uncleanable_offset"], 20);
    assert!(c["last_run"].is_null());

    let done = json(&run(&["compact", d, "--json"]));
    assert_eq!(done["cleaned"], true);
    assert_eq!(done["report"]["records_read"], 20);
    assert_eq!(done["report"]["records_kept"], 2);
    assert_eq!(done["report"]["end_offset"], 20);

    let after = json(&run(&[
        "describe",
        d,
        "--config",
        "cleanup.policy=compact",
        "--json",
    ]));
    let c = &after["cleaner"];
    assert_eq!(c["cleanability"]["dirty_ratio"], 0.0);
    assert_eq!(c["cleanability"]["due"], false);
    assert_eq!(c["last_run"]["records_kept"], 2);

    let log = Log::open(&dir, LogConfig::default()).unwrap();
    let (records, _) = log
        .read_records(log.log_start_offset(), 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    let values: Vec<String> = records
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    assert_eq!(values, ["a9", "b9"]);
}

#[test]
fn compact_with_nothing_cleanable_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    let batch = BatchBuilder::new()
        .build(&[NewRecord::key_value(1, b"k", b"v")])
        .unwrap();
    let _ = log.append(&batch, AppendOrigin::Client).unwrap();
    log.close().unwrap();
    let out = json(&run(&["compact", dir.to_str().unwrap(), "--json"]));
    assert_eq!(out["cleaned"], false);
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("first uncleanable offset is 0"),
        "{out}"
    );
    let refused = run(&[
        "compact",
        dir.to_str().unwrap(),
        "--config",
        "cleanup.policy=delete",
    ]);
    assert_eq!(refused.status.code(), Some(2));
}
