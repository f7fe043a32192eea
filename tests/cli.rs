//! The `eoslog` command-line tool's JSON contract: every command prints exactly the
//! snake_case fields its specification lists (one object per line on stdout), with values
//! that match the log, and the exit status says whether the command succeeded. Also: the
//! file-level commands (`dump`, `verify`) never change a byte, and the log-level commands
//! close the log cleanly.
//!
//! Each test runs the built binary on a temporary partition directory; input batches are
//! built with the library.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use eoslog::{
    build_marker, AppendOrigin, AppendOutcome, BatchBuilder, Compression, ControlType, CoordinatorEpoch, Log,
    LogConfig, LogStats, MarkerType, NewRecord, ProducerEpoch, ProducerId, Sequence, TxnMarker,
    CLEAN_SHUTDOWN_FILE,
};
use serde_json::Value;

// ----- helpers -----------------------------------------------------------------------------

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Runs the binary with `args`, feeding `stdin`.
fn eoslog(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eoslog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // Ignore EPIPE: a command may stop reading early.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    eoslog(args, b"")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and parses stdout as JSON lines.
fn ok_json(o: &Output) -> Vec<Value> {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    json_lines(o)
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn config(pairs: &[(&str, &str)]) -> LogConfig {
    let mut c = LogConfig::default();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    c
}

fn idempotent(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Vec<u8> {
    let ts = now_ms();
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(ts, v.as_bytes()))
        .collect();
    BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(epoch), Sequence(seq))
        .build(&records)
        .unwrap()
}

fn transactional(pid: i64, seq: i32, ts: i64, values: &[&str]) -> Vec<u8> {
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(ts, v.as_bytes()))
        .collect();
    BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
        .build(&records)
        .unwrap()
}

fn marker(pid: i64, kind: MarkerType) -> TxnMarker {
    TxnMarker {
        producer_id: ProducerId(pid),
        producer_epoch: ProducerEpoch(0),
        coordinator_epoch: CoordinatorEpoch(0),
        marker: kind,
        timestamp: None,
    }
}

fn appended(outcome: AppendOutcome) {
    assert!(matches!(outcome, AppendOutcome::Appended(_)), "{outcome:?}");
}

/// A log with plain data (offsets 0-1), an aborted transaction of producer 9 (2-3, marker
/// 4), a committed one (5, marker 6) and plain data again (7). Closed cleanly.
fn mixed_log(dir: &Path) {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    let ts = now_ms();
    appended(
        log.append(&idempotent(7, 0, 0, &["a", "b"]), AppendOrigin::Client)
            .unwrap(),
    );
    appended(
        log.append(
            &transactional(9, 0, ts, &["lost1", "lost2"]),
            AppendOrigin::Client,
        )
        .unwrap(),
    );
    appended(log.write_marker(&marker(9, MarkerType::Abort)).unwrap());
    appended(
        log.append(&transactional(9, 2, ts, &["kept"]), AppendOrigin::Client)
            .unwrap(),
    );
    appended(log.write_marker(&marker(9, MarkerType::Commit)).unwrap());
    appended(
        log.append(&idempotent(7, 0, 2, &["c"]), AppendOrigin::Client)
            .unwrap(),
    );
    log.close().unwrap();
}

/// Every regular file in `dir` and its bytes.
fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn values(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect()
}

const BATCH_KEYS: &[&str] = &[
    "base_offset",
    "last_offset",
    "count",
    "position",
    "size",
    "magic",
    "crc",
    "is_valid",
    "compression",
    "producer_id",
    "producer_epoch",
    "base_sequence",
    "is_transactional",
    "is_control",
    "control_type",
    "partition_leader_epoch",
    "max_timestamp",
];
const RECORD_KEYS: &[&str] = &["offset", "timestamp", "key", "value"];

// ----- append ------------------------------------------------------------------------------

#[test]
fn append_reports_each_batch_and_keeps_going_after_a_rejection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut input = Vec::new();
    let first = idempotent(7, 1, 0, &["a", "b"]);
    input.extend_from_slice(&first);
    input.extend_from_slice(&first); // retry: duplicate
    input.extend_from_slice(&idempotent(7, 1, 5, &["gap"])); // expected sequence 2
    input.extend_from_slice(&idempotent(7, 0, 2, &["zombie"])); // epoch 0 < 1
    input.extend_from_slice(&idempotent(7, 1, 2, &["c"])); // still accepted
    let out = eoslog(&["append", p(&dir)], &input);
    let lines = ok_json(&out);
    let expected: Vec<Value> = vec![
        serde_json::json!({"status": "appended", "base_offset": 0, "last_offset": 1}),
        serde_json::json!({"status": "duplicate", "base_offset": 0, "last_offset": 1}),
        serde_json::json!({"status": "error", "error": "OUT_OF_ORDER_SEQUENCE_NUMBER"}),
        serde_json::json!({"status": "error", "error": "INVALID_PRODUCER_EPOCH"}),
        serde_json::json!({"status": "appended", "base_offset": 2, "last_offset": 2}),
    ];
    assert_eq!(lines, expected);
    // Rejected batches wrote nothing, and the log was closed cleanly.
    assert!(dir.join(CLEAN_SHUTDOWN_FILE).exists());
    let read = ok_json(&run(&["read", p(&dir), "--from", "0", "--json"]));
    assert_eq!(values(&read), ["a", "b", "c"]);
}

#[test]
fn append_reports_invalid_batches_and_origins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut bad_crc = idempotent(1, 0, 0, &["x"]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut input = bad_crc;
    input.extend_from_slice(&idempotent(1, 0, 0, &["y"]));
    let lines = ok_json(&eoslog(
        &["append", p(&dir), "--leader-epoch", "3", "--sync"],
        &input,
    ));
    assert_eq!(
        lines[0],
        serde_json::json!({"status": "error", "error": "CORRUPT_MESSAGE"})
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"status": "appended", "base_offset": 0, "last_offset": 0})
    );
    let dump = ok_json(&run(&["dump", p(&dir), "--json"]));
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0]["partition_leader_epoch"], 3);

    // A client may not write markers; a coordinator may.
    let abort = build_marker(ControlType::Abort, ProducerId(1), ProducerEpoch(0), 0, now_ms());
    let lines = ok_json(&eoslog(&["append", p(&dir)], &abort));
    assert_eq!(
        lines,
        [serde_json::json!({"status": "error", "error": "INVALID_RECORD"})]
    );
    let lines = ok_json(&eoslog(&["append", p(&dir), "--origin", "coordinator"], &abort));
    assert_eq!(
        lines,
        [serde_json::json!({"status": "appended", "base_offset": 1, "last_offset": 1})]
    );
}

/// The result lines are buffered while more input is waiting, and flushed whenever the next
/// read of stdin would block: a caller that feeds one batch and waits sees its result
/// without closing stdin (#13).
#[test]
fn append_answers_each_batch_while_stdin_stays_open() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut child = Command::new(env!("CARGO_BIN_EXE_eoslog"))
        .args(["append", p(&dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            tx.send(line.unwrap()).unwrap();
        }
    });
    for (seq, value) in [(0, "a"), (1, "b"), (2, "c")] {
        input.write_all(&idempotent(5, 0, seq, &[value])).unwrap();
        input.flush().unwrap();
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the result arrives while stdin stays open");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], "appended");
        assert_eq!(v["base_offset"], seq);
    }
    drop(input);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

/// Batches larger than the CLI's 1 MiB read buffer are split off whole (the buffer grows as
/// their bytes arrive), between small ones on either side.
#[test]
fn append_reads_batches_larger_than_its_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let big_value = "x".repeat(3 << 20);
    let mut input = idempotent(1, 0, 0, &["small"]);
    input.extend_from_slice(&idempotent(1, 0, 1, &[&big_value]));
    input.extend_from_slice(&idempotent(1, 0, 2, &["small again"]));
    let lines = ok_json(&eoslog(
        &["append", p(&dir), "--config", "max.message.bytes=8388608"],
        &input,
    ));
    let statuses: Vec<&Value> = lines.iter().map(|l| &l["status"]).collect();
    assert_eq!(statuses, ["appended", "appended", "appended"]);
    assert_eq!(lines[2]["base_offset"], 2);
}

#[test]
fn append_stops_at_unsplittable_input_and_names_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let good = idempotent(1, 0, 0, &["x"]);
    let mut input = good.clone();
    input.extend_from_slice(&good[..20]); // a batch cut short
    let out = eoslog(&["append", p(&dir)], &input);
    assert!(!out.status.success());
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"status": "appended", "base_offset": 0, "last_offset": 0})]
    );
    assert!(
        stderr(&out).contains(&format!("at byte {}", good.len())),
        "{}",
        stderr(&out)
    );
    // The log was still closed cleanly.
    assert!(dir.join(CLEAN_SHUTDOWN_FILE).exists());
}

// ----- dump --------------------------------------------------------------------------------

#[test]
fn dump_json_has_exactly_the_batch_and_record_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        let gz = BatchBuilder::new()
            .compression(Compression::Gzip)
            .build(&[
                NewRecord::key_value(5, b"key", b"zipped"),
                NewRecord {
                    timestamp: 6,
                    ..NewRecord::default()
                },
            ])
            .unwrap();
        appended(log.append(&gz, AppendOrigin::Client).unwrap());
        log.close().unwrap();
    }
    let before = snapshot_dir(&dir);
    let lines = ok_json(&run(&["dump", p(&dir), "--json", "--records"]));
    assert_eq!(lines.len(), 7);
    let mut batch_keys = set(BATCH_KEYS);
    batch_keys.insert("records".to_owned());
    let mut next_position = 0;
    for l in &lines {
        assert_eq!(keys(l), batch_keys, "{l}");
        assert_eq!(l["position"], next_position);
        next_position = l["position"].as_u64().unwrap() + l["size"].as_u64().unwrap();
        assert_eq!(l["is_valid"], true);
        assert_eq!(l["magic"], 2);
        for r in l["records"].as_array().unwrap() {
            assert_eq!(keys(r), set(RECORD_KEYS), "{r}");
        }
    }
    let control: Vec<&Value> = lines.iter().map(|l| &l["control_type"]).collect();
    let expect: [Value; 7] = [
        Value::Null,
        Value::Null,
        "ABORT".into(),
        Value::Null,
        "COMMIT".into(),
        Value::Null,
        Value::Null,
    ];
    assert_eq!(control, expect.iter().collect::<Vec<_>>());
    assert_eq!(lines[1]["is_transactional"], true);
    assert_eq!(lines[1]["producer_id"], 9);
    assert_eq!(lines[1]["base_offset"], 2);
    assert_eq!(lines[1]["last_offset"], 3);
    assert_eq!(lines[1]["count"], 2);
    assert_eq!(lines[2]["is_control"], true);
    assert_eq!(lines[0]["compression"], "none");
    assert_eq!(lines[0]["base_sequence"], 0);
    assert_eq!(lines[0]["records"][1]["value"], "b");
    assert_eq!(lines[0]["records"][1]["offset"], 1);
    assert_eq!(lines[0]["records"][1]["key"], Value::Null);
    let gz = &lines[6];
    assert_eq!(gz["compression"], "gzip");
    assert_eq!(gz["producer_id"], -1);
    assert_eq!(gz["max_timestamp"], 6);
    assert_eq!(
        gz["records"],
        serde_json::json!([
            {"offset": 8, "timestamp": 5, "key": "key", "value": "zipped"},
            {"offset": 9, "timestamp": 6, "key": null, "value": null},
        ])
    );
    // Without --records there is no records field.
    for l in ok_json(&run(&["dump", p(&dir), "--json"])) {
        assert_eq!(keys(&l), set(BATCH_KEYS));
    }
    // Text output, one line per batch after the file header.
    let text = run(&["dump", p(&dir)]);
    assert!(text.status.success());
    let text = stdout(&text);
    assert_eq!(text.lines().filter(|l| l.starts_with("baseOffset:")).count(), 7);
    assert!(text.contains("controlType: ABORT"), "{text}");
    // Dumping changes nothing.
    assert_eq!(snapshot_dir(&dir), before);
}

#[test]
fn dump_reports_where_valid_data_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let file = log_files(&dir).pop().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    let partial = idempotent(7, 0, 3, &["torn"]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&partial[..30])
        .unwrap();
    let out = run(&["dump", p(&file), "--json"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 7);
    let last = lines.last().unwrap();
    assert_eq!(keys(last), set(&["error", "position"]));
    assert_eq!(last["position"], len);
    let text = stdout(&run(&["dump", p(&file)]));
    assert!(text.contains(&format!("valid data ends at byte {len}")), "{text}");
}

#[test]
fn dump_marks_a_batch_with_a_bad_crc_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let file = log_files(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[70] ^= 0x01; // inside the first batch's records
    std::fs::write(&file, &bytes).unwrap();
    let out = run(&["dump", p(&dir), "--json"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["is_valid"], false);
    assert!(lines[1..].iter().all(|l| l["is_valid"] == true));
}

// ----- verify ------------------------------------------------------------------------------

/// A log of several segments with an index entry per batch.
fn segmented_log(dir: &Path) -> Log {
    let log = Log::open(
        dir,
        config(&[("segment.bytes", "300"), ("index.interval.bytes", "0")]),
    )
    .unwrap();
    for seq in 0..12 {
        appended(
            log.append(
                &idempotent(3, 0, seq * 2, &["value-one", "value-two"]),
                AppendOrigin::Client,
            )
            .unwrap(),
        );
    }
    log
}

#[test]
fn verify_accepts_a_sound_directory_even_while_it_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let log = segmented_log(&dir);
    log.flush().unwrap();
    assert!(log_files(&dir).len() >= 3);
    // The log holds the lock and its active index is preallocated (zero-filled).
    let active_index = log_files(&dir).pop().unwrap().with_extension("index");
    assert_eq!(std::fs::metadata(&active_index).unwrap().len(), 10 << 20);
    let out = run(&["verify", p(&dir), "--json"]);
    let lines = ok_json(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(keys(&lines[0]), set(&["status", "segments", "batches", "bytes"]));
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["batches"], 12);
    assert_eq!(lines[0]["segments"], log_files(&dir).len());
    log.close().unwrap();
    let before = snapshot_dir(&dir);
    let out = run(&["verify", p(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    assert_eq!(snapshot_dir(&dir), before);
}

#[test]
fn verify_names_the_file_and_position_of_a_flipped_byte_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    segmented_log(&dir).close().unwrap();
    let file = log_files(&dir)[1].clone();
    let batch_size = idempotent(3, 0, 0, &["value-one", "value-two"]).len();
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() >= 2 * batch_size);
    bytes[batch_size + 65] ^= 0x20; // inside the segment's second batch
    std::fs::write(&file, &bytes).unwrap();
    let before = snapshot_dir(&dir);

    let out = run(&["verify", p(&dir), "--json"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(keys(&lines[0]), set(&["status", "file", "position", "error"]));
    assert_eq!(lines[0]["status"], "corrupt");
    assert_eq!(lines[0]["file"], p(&file));
    assert_eq!(lines[0]["position"], batch_size);
    assert!(lines[0]["error"].as_str().unwrap().contains("CRC"));

    let out = run(&["verify", p(&dir)]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains(p(&file)) && text.contains(&format!("byte {batch_size}")),
        "{text}"
    );
    // Neither verify truncated or rewrote anything.
    assert_eq!(snapshot_dir(&dir), before);
}

#[test]
fn verify_checks_indexes_against_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    segmented_log(&dir).close().unwrap();
    let index = log_files(&dir)[0].with_extension("index");
    let mut bytes = std::fs::read(&index).unwrap();
    assert!(bytes.len() >= 8, "the test needs an index entry");
    bytes[7] = bytes[7].wrapping_add(1); // first entry's position, one byte off a batch start
    std::fs::write(&index, &bytes).unwrap();
    let out = run(&["verify", p(&dir), "--json"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines[0]["file"], p(&index));
    assert_eq!(lines[0]["position"], 0);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("not the start of a batch"),
        "{}",
        lines[0]
    );

    // A time index whose length is not a whole number of entries.
    std::fs::write(&index, {
        bytes[7] = bytes[7].wrapping_sub(1);
        &bytes
    })
    .unwrap();
    assert!(run(&["verify", p(&dir)]).status.success());
    let time = log_files(&dir)[0].with_extension("timeindex");
    let mut t = std::fs::read(&time).unwrap();
    t.push(0);
    std::fs::write(&time, &t).unwrap();
    let lines = json_lines(&run(&["verify", p(&dir), "--json"]));
    assert_eq!(lines[0]["file"], p(&time));
    assert!(
        lines[0]["error"].as_str().unwrap().contains("multiple"),
        "{}",
        lines[0]
    );
}

/// A transaction index that lost or changed an entry is reported (the aborted transactions
/// are replayed from the batches), and so is a missing index of a segment with data (#13).
#[test]
fn verify_reports_a_lost_or_altered_transaction_index_and_a_missing_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    assert!(run(&["verify", p(&dir)]).status.success());
    let txn = log_files(&dir)[0].with_extension("txnindex");
    let original = std::fs::read(&txn).unwrap();
    assert_eq!(original.len(), 34);

    std::fs::remove_file(&txn).unwrap();
    let lines = json_lines(&run(&["verify", p(&dir), "--json"]));
    assert_eq!(lines[0]["status"], "corrupt");
    assert_eq!(lines[0]["file"], p(&txn));
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("missing the aborted transaction of producer 9"),
        "{}",
        lines[0]
    );

    let mut altered = original.clone();
    altered[10..18].copy_from_slice(&3i64.to_be_bytes()); // first offset 3, not 2
    std::fs::write(&txn, &altered).unwrap();
    let lines = json_lines(&run(&["verify", p(&dir), "--json"]));
    assert_eq!(lines[0]["file"], p(&txn));
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("disagrees with the log"),
        "{}",
        lines[0]
    );

    std::fs::write(&txn, &original).unwrap();
    let index = log_files(&dir)[0].with_extension("index");
    std::fs::remove_file(&index).unwrap();
    let lines = json_lines(&run(&["verify", p(&dir), "--json"]));
    assert_eq!(lines[0]["file"], p(&index));
    assert!(
        lines[0]["error"].as_str().unwrap().starts_with("missing"),
        "{}",
        lines[0]
    );
}

#[test]
fn verify_detects_offsets_going_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    segmented_log(&dir).close().unwrap();
    // Within a segment: the segment's batches written twice (every CRC still valid).
    let file = log_files(&dir)[0].clone();
    let original = std::fs::read(&file).unwrap();
    let mut doubled = original.clone();
    doubled.extend_from_slice(&original);
    std::fs::write(&file, &doubled).unwrap();
    let out = run(&["verify", p(&dir), "--json"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines[0]["file"], p(&file));
    assert_eq!(lines[0]["position"], original.len());
    assert!(
        lines[0]["error"].as_str().unwrap().contains("out of order"),
        "{}",
        lines[0]
    );
    std::fs::write(&file, &original).unwrap();
    assert!(run(&["verify", p(&dir)]).status.success());

    // Across segments: a copy of the first segment named as if it came after the last.
    let last = log_files(&dir).pop().unwrap();
    let base = eoslog::parse_file_name(last.file_name().unwrap().to_str().unwrap())
        .unwrap()
        .0;
    let copy = dir.join(eoslog::file_name(base + 1000, "log"));
    std::fs::write(&copy, &original).unwrap();
    let lines = json_lines(&run(&["verify", p(&dir), "--json"]));
    assert_eq!(lines[0]["file"], p(&copy));
    assert_eq!(lines[0]["position"], 0);
}

#[test]
fn verify_reports_progress_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    segmented_log(&dir).close().unwrap();
    let out = run(&["verify", p(&dir), "--progress-every", "256"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.lines().filter(|l| l.contains('%')).count() >= 2, "{err}");
    assert!(!stdout(&out).contains('%'));
}

// ----- reads -------------------------------------------------------------------------------

#[test]
fn read_committed_skips_aborted_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let committed = ok_json(&run(&[
        "read",
        p(&dir),
        "--from",
        "0",
        "--isolation",
        "read_committed",
        "--json",
    ]));
    for r in &committed {
        assert_eq!(keys(r), set(RECORD_KEYS));
    }
    assert_eq!(values(&committed), ["a", "b", "kept", "c"]);
    assert_eq!(committed[2]["offset"], 5);
    // A fetch size of one batch: a fetch that returns only the aborted batch must not end
    // the read.
    let small = ok_json(&run(&[
        "read",
        p(&dir),
        "--from",
        "2",
        "--isolation",
        "read_committed",
        "--max-bytes",
        "1",
        "--json",
    ]));
    assert_eq!(values(&small), ["kept", "c"]);
    let all = ok_json(&run(&["read", p(&dir), "--from", "0", "--json"]));
    assert_eq!(values(&all), ["a", "b", "lost1", "lost2", "kept", "c"]);
    let text = stdout(&run(&["read", p(&dir), "--from", "5"]));
    assert!(
        text.starts_with("offset: 5 ") && text.contains("value: kept"),
        "{text}"
    );
}

#[test]
fn read_and_fetch_respect_a_manual_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let read = ok_json(&run(&[
        "read",
        p(&dir),
        "--from",
        "0",
        "--high-watermark",
        "2",
        "--json",
    ]));
    assert_eq!(values(&read), ["a", "b"]);
    let fetch = ok_json(&run(&[
        "fetch",
        p(&dir),
        "--from",
        "0",
        "--high-watermark",
        "2",
        "--json",
    ]));
    assert_eq!(fetch[0]["high_watermark"], 2);
    assert_eq!(fetch[0]["batches"].as_array().unwrap().len(), 1);
}

#[test]
fn fetch_has_exactly_the_fetch_response_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let committed = ok_json(&run(&[
        "fetch",
        p(&dir),
        "--from",
        "0",
        "--isolation",
        "read_committed",
        "--json",
    ]));
    assert_eq!(committed.len(), 1);
    let f = &committed[0];
    assert_eq!(
        keys(f),
        set(&[
            "high_watermark",
            "last_stable_offset",
            "log_start_offset",
            "aborted_transactions",
            "batches"
        ])
    );
    assert_eq!(f["high_watermark"], 8);
    assert_eq!(f["last_stable_offset"], 8);
    assert_eq!(f["log_start_offset"], 0);
    assert_eq!(
        f["aborted_transactions"],
        serde_json::json!([{"producer_id": 9, "first_offset": 2}])
    );
    let batches = f["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 6);
    for b in batches {
        assert_eq!(
            keys(b),
            set(&[
                "base_offset",
                "last_offset",
                "producer_id",
                "is_transactional",
                "is_control"
            ])
        );
    }
    assert_eq!(
        batches[2],
        serde_json::json!({"base_offset": 4, "last_offset": 4, "producer_id": 9, "is_transactional": true, "is_control": true})
    );
    let uncommitted = ok_json(&run(&["fetch", p(&dir), "--from", "5", "--json"]));
    assert_eq!(uncommitted[0]["aborted_transactions"], Value::Null);
    assert_eq!(uncommitted[0]["batches"][0]["base_offset"], 5);
}

// ----- state -------------------------------------------------------------------------------

/// Field names of [`LogStats`], from its `Debug` output (so a new field fails the test until
/// the CLI prints it).
fn log_stats_fields() -> BTreeSet<String> {
    let debug = format!("{:?}", LogStats::default());
    let inner = debug
        .strip_prefix("LogStats { ")
        .and_then(|s| s.strip_suffix(" }"))
        .unwrap_or_else(|| panic!("unexpected Debug form: {debug}"));
    inner
        .split(", ")
        .map(|f| f.split(':').next().unwrap().trim().to_owned())
        .collect()
}

/// A log with a committed/aborted history (mixed_log) plus an open transaction of producer 11
/// at offset 8.
fn log_with_open_txn(dir: &Path) {
    mixed_log(dir);
    let log = Log::open(dir, LogConfig::default()).unwrap();
    appended(
        log.append(
            &transactional(11, 0, now_ms(), &["pending"]),
            AppendOrigin::Client,
        )
        .unwrap(),
    );
    log.close().unwrap();
}

#[test]
fn describe_has_exactly_the_documented_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    log_with_open_txn(&dir);
    let lines = ok_json(&run(&["describe", p(&dir), "--json"]));
    assert_eq!(lines.len(), 1);
    let d = &lines[0];
    assert_eq!(
        keys(d),
        set(&[
            "log_start_offset",
            "log_end_offset",
            "high_watermark",
            "last_stable_offset",
            "first_unstable_offset",
            "segments",
            "producer_count",
            "open_transactions",
            "aborted_transactions",
            "cleaner",
            "stats",
        ])
    );
    assert_eq!(
        keys(&d["cleaner"]),
        set(&["compacted", "cleanability", "last_run"])
    );
    assert_eq!(d["log_start_offset"], 0);
    assert_eq!(d["log_end_offset"], 9);
    assert_eq!(d["high_watermark"], 9);
    assert_eq!(d["first_unstable_offset"], 8);
    assert_eq!(d["last_stable_offset"], 8);
    assert_eq!(d["producer_count"], 3);
    let segments = d["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(keys(&segments[0]), set(&["base_offset", "size"]));
    assert_eq!(
        segments[0]["size"],
        std::fs::metadata(&log_files(&dir)[0]).unwrap().len()
    );
    let open = d["open_transactions"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        keys(&open[0]),
        set(&["producer_id", "producer_epoch", "first_offset", "last_timestamp"])
    );
    assert_eq!(open[0]["producer_id"], 11);
    assert_eq!(open[0]["first_offset"], 8);
    assert_eq!(
        d["aborted_transactions"],
        serde_json::json!([{"producer_id": 9, "first_offset": 2, "last_offset": 4, "last_stable_offset": 5}])
    );
    assert_eq!(keys(&d["stats"]), log_stats_fields());
    assert!(d["stats"]["rejections"].is_object());
    assert_eq!(d["stats"]["open_transactions"], 1);

    // No open transaction: first_unstable_offset is null.
    let tmp2 = tempfile::tempdir().unwrap();
    let dir2 = tmp2.path().join("t-0");
    mixed_log(&dir2);
    let d2 = &ok_json(&run(&["describe", p(&dir2), "--json"]))[0];
    assert_eq!(d2["first_unstable_offset"], Value::Null);
    assert_eq!(d2["open_transactions"], serde_json::json!([]));
    // --high-watermark sets it (manual mode).
    let d3 = &ok_json(&run(&["describe", p(&dir2), "--high-watermark", "3", "--json"]))[0];
    assert_eq!(d3["high_watermark"], 3);
    assert_eq!(d3["last_stable_offset"], 3);
    // ... clamped to the log end offset, with a note.
    let out = run(&["describe", p(&dir2), "--high-watermark", "50", "--json"]);
    assert_eq!(ok_json(&out)[0]["high_watermark"], 8);
    assert!(stderr(&out).contains("clamped"), "{}", stderr(&out));
}

#[test]
fn describe_stats_reflect_its_own_open() {
    // Stats live in memory for one open, so count what the describe's own open sees:
    // recovery after an unclean shutdown.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    std::fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).unwrap();
    let d = &ok_json(&run(&["describe", p(&dir), "--json"]))[0];
    assert_eq!(d["stats"]["recoveries"], 1);
    assert_eq!(d["stats"]["rejections"], serde_json::json!({}));
}

#[test]
fn producers_have_exactly_the_documented_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    log_with_open_txn(&dir);
    let lines = ok_json(&run(&["producers", p(&dir), "--json"]));
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(
            keys(l),
            set(&[
                "producer_id",
                "producer_epoch",
                "last_sequence",
                "last_timestamp",
                "coordinator_epoch",
                "current_txn_start_offset",
            ])
        );
    }
    let by_id = |id: i64| lines.iter().find(|l| l["producer_id"] == id).unwrap();
    assert_eq!(by_id(7)["last_sequence"], 2);
    assert_eq!(by_id(7)["current_txn_start_offset"], -1);
    assert_eq!(by_id(9)["coordinator_epoch"], 0);
    assert_eq!(by_id(9)["current_txn_start_offset"], -1);
    assert_eq!(by_id(11)["current_txn_start_offset"], 8);
    assert_eq!(by_id(11)["last_sequence"], 0);
}

#[test]
fn txns_lists_open_transactions_and_hanging_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        let hour_ago = now_ms() - 3_600_000;
        appended(
            log.append(&transactional(20, 0, hour_ago, &["old"]), AppendOrigin::Client)
                .unwrap(),
        );
        appended(
            log.append(&transactional(21, 0, now_ms(), &["new"]), AppendOrigin::Client)
                .unwrap(),
        );
        log.close().unwrap();
    }
    let lines = ok_json(&run(&["txns", p(&dir), "--json"]));
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(
            keys(l),
            set(&[
                "producer_id",
                "producer_epoch",
                "first_offset",
                "last_timestamp",
                "age_ms",
                "is_late"
            ])
        );
    }
    assert_eq!(lines[0]["producer_id"], 20);
    assert_eq!(lines[0]["is_late"], true);
    assert!(lines[0]["age_ms"].as_i64().unwrap() >= 3_600_000);
    assert_eq!(lines[1]["first_offset"], 1);
    assert_eq!(lines[1]["is_late"], false);
    let hanging = ok_json(&run(&["txns", p(&dir), "--hanging", "--json"]));
    assert_eq!(hanging.len(), 1);
    assert_eq!(hanging[0]["producer_id"], 20);
}

#[test]
fn abort_writes_a_marker_and_hides_the_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    log_with_open_txn(&dir);
    let common = ["--producer-id", "11", "--coordinator-epoch", "0"];
    let mut args = vec!["abort", p(&dir), "--producer-epoch", "0"];
    args.extend_from_slice(&common);
    let lines = ok_json(&run(&args));
    assert_eq!(
        lines,
        [serde_json::json!({"status": "appended", "base_offset": 9, "last_offset": 9})]
    );
    assert!(ok_json(&run(&["txns", p(&dir), "--json"])).is_empty());
    let committed = ok_json(&run(&[
        "read",
        p(&dir),
        "--from",
        "0",
        "--isolation",
        "read_committed",
        "--json",
    ]));
    assert!(!values(&committed).contains(&"pending".to_owned()));
    let dump = ok_json(&run(&["dump", p(&dir), "--json"]));
    assert_eq!(dump.last().unwrap()["control_type"], "ABORT");

    // Fencing: a bumped epoch, then a stale one.
    let mut bump = vec!["abort", p(&dir), "--producer-epoch", "3"];
    bump.extend_from_slice(&common);
    assert!(run(&bump).status.success());
    let mut stale = vec!["abort", p(&dir), "--producer-epoch", "1"];
    stale.extend_from_slice(&common);
    let out = run(&stale);
    assert!(!out.status.success());
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"status": "error", "error": "INVALID_PRODUCER_EPOCH"})]
    );
}

// ----- offsets -----------------------------------------------------------------------------

#[test]
fn truncate_and_delete_records_move_the_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    segmented_log(&dir).close().unwrap();
    // 12 batches of 2 records: offsets 0..24.
    let out = ok_json(&run(&["truncate", p(&dir), "--to", "10", "--json"]));
    assert_eq!(
        out,
        [serde_json::json!({"log_start_offset": 0, "log_end_offset": 10})]
    );
    let read = ok_json(&run(&["read", p(&dir), "--from", "0", "--json"]));
    assert_eq!(read.len(), 10);
    assert_eq!(read.last().unwrap()["offset"], 9);

    let out = ok_json(&run(&["delete-records", p(&dir), "--before", "6", "--json"]));
    assert_eq!(
        out,
        [serde_json::json!({"log_start_offset": 6, "log_end_offset": 10})]
    );
    let d = &ok_json(&run(&["describe", p(&dir), "--json"]))[0];
    assert_eq!(d["log_start_offset"], 6);
    let out = run(&["read", p(&dir), "--from", "0", "--json"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("OFFSET_OUT_OF_RANGE"), "{}", stderr(&out));
    // Beyond the high watermark is refused.
    assert!(!run(&["delete-records", p(&dir), "--before", "11"])
        .status
        .success());

    let out = ok_json(&run(&[
        "truncate",
        p(&dir),
        "--fully",
        "--start-at",
        "100",
        "--json",
    ]));
    assert_eq!(
        out,
        [serde_json::json!({"log_start_offset": 100, "log_end_offset": 100})]
    );
    assert!(ok_json(&run(&["dump", p(&dir), "--json"])).is_empty());
    assert!(run(&["verify", p(&dir)]).status.success());
    // --start-at needs --fully, and one mode is required.
    assert_eq!(
        run(&["truncate", p(&dir), "--start-at", "5"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["truncate", p(&dir)]).status.code(), Some(2));
}

// ----- configuration and errors ------------------------------------------------------------

#[test]
fn bad_config_is_a_usage_error_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let before = snapshot_dir(&dir);
    let out = run(&["describe", p(&dir), "--config", "no.such.key=1", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no.such.key"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let out = run(&["read", p(&dir), "--from", "0", "--config", "segment.bytes=lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("segment.bytes"), "{}", stderr(&out));
    let out = eoslog(
        &["append", p(&dir), "--config", "eoslog.durability"],
        &idempotent(1, 0, 0, &["x"]),
    );
    assert_eq!(out.status.code(), Some(2));
    // Nothing was opened or written.
    assert_eq!(snapshot_dir(&dir), before);
    // A good key is applied: a tiny segment.bytes rolls on every append.
    let mut input = idempotent(1, 0, 0, &["x"]);
    input.extend_from_slice(&idempotent(1, 0, 1, &["y"]));
    ok_json(&eoslog(
        &["append", p(&dir), "--config", "segment.bytes=100"],
        &input,
    ));
    assert_eq!(log_files(&dir).len(), 3);
}

#[test]
fn commands_refuse_a_directory_that_is_not_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in [
        vec!["describe", p(tmp.path()), "--json"],
        vec!["read", p(tmp.path()), "--from", "0"],
        vec!["truncate", p(tmp.path()), "--to", "0"],
    ] {
        let out = run(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        assert!(
            stderr(&out).contains("not a partition directory"),
            "{}",
            stderr(&out)
        );
    }
    // Nothing was created.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let missing = tmp.path().join("nope");
    assert!(!run(&["dump", p(&missing)]).status.success());
    assert!(!run(&["verify", p(&missing)]).status.success());
    assert!(!missing.exists());
}

#[test]
fn a_locked_directory_can_be_dumped_but_not_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    mixed_log(&dir);
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    let dump = ok_json(&run(&["dump", p(&dir), "--json"]));
    assert_eq!(dump.len(), 6);
    let out = run(&["describe", p(&dir), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("locked"), "{}", stderr(&out));
    log.close().unwrap();
}
