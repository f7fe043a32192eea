//! Invariant: a process killed with SIGKILL at any moment loses nothing it acknowledged as
//! durable. A child process runs a mixed idempotent and transactional workload with durable
//! appends (acknowledged only after fsync) and journals what it sent and what was acknowledged;
//! the parent kills it at a random moment, reopens the log and checks: every acknowledged batch
//! is present exactly once, a retry of the in-flight batch is a duplicate or a fresh append
//! (never out of order), no aborted or undecided data is visible to read_committed, the last
//! stable offset never goes backwards across restarts, and producer state agrees with the data.
//! Every other life rolls with `eoslog.roll.fsync=maintenance`, a thread running maintenance
//! every 2 ms. `EOSLOG_CRASH_ITERATIONS` sets the number of kills (default 50). Issue #5.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig, MarkerType,
    NewRecord, Offset, ProducerEpoch, ProducerId, Sequence, TxnMarker,
};

/// Wall-clock timestamps: producer expiry (1 day) measures batch timestamps against the clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Odd lives defer their rolls' fsyncs to maintenance.
fn deferred(iteration: u64) -> bool {
    iteration % 2 == 1
}

fn config(iteration: u64) -> LogConfig {
    let mut c = LogConfig::default();
    let roll = if deferred(iteration) {
        "maintenance"
    } else {
        "inline"
    };
    for (k, v) in [
        ("eoslog.roll.fsync", roll),
        ("eoslog.durability", "sync"),
        ("segment.bytes", "65536"),
        ("eoslog.snapshot.interval.bytes", "20000"),
        ("segment.index.bytes", "8192"),
    ] {
        c.set(k, v).expect("config");
    }
    c
}

/// The batch for (pid, seq, n, txn): values are `"{tag}-{i}"` so the parent can rebuild it.
fn batch(pid: i64, seq: i32, n: usize, txn: bool) -> (Vec<u8>, Vec<String>) {
    let values: Vec<String> = (0..n)
        .map(|i| format!("p{pid}-s{seq}-{i}{}", if txn { "-t" } else { "" }))
        .collect();
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(now_ms(), v.as_bytes()))
        .collect();
    let b = if txn {
        BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
    } else {
        BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
    };
    (b.build(&recs).expect("build"), values)
}

fn child(dir: &Path, journal: &Path, iteration: u64) {
    let log = std::sync::Arc::new(Log::open(dir, config(iteration)).expect("child open"));
    if deferred(iteration) {
        let log = log.clone();
        std::thread::spawn(move || loop {
            log.run_maintenance().expect("maintenance");
            std::thread::sleep(Duration::from_millis(2));
        });
    }
    let mut j = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)
        .expect("journal");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((iteration + 1) * 0x1234_5678));
    let pids: Vec<i64> = (0..4).map(|k| iteration as i64 * 10 + k).collect();
    let mut seqs: HashMap<i64, i32> = HashMap::new();
    let mut in_txn: HashMap<i64, u32> = HashMap::new();
    let mut txn_no: HashMap<i64, u32> = HashMap::new();
    loop {
        let pid = pids[rng.below(4) as usize];
        let transactional = pid % 2 == 1;
        if transactional && in_txn.get(&pid).is_some_and(|n| *n >= 2)
            || (transactional && in_txn.contains_key(&pid) && rng.below(3) == 0)
        {
            let commit = rng.below(2) == 0;
            let t = txn_no.entry(pid).or_default();
            j.write_all(format!("M {pid} {t} {}\n", if commit { "commit" } else { "abort" }).as_bytes())
                .expect("journal");
            j.flush().expect("flush");
            let o = log
                .write_marker(&TxnMarker {
                    producer_id: ProducerId(pid),
                    producer_epoch: ProducerEpoch(0),
                    coordinator_epoch: CoordinatorEpoch(0),
                    marker: if commit {
                        MarkerType::Commit
                    } else {
                        MarkerType::Abort
                    },
                    timestamp: None,
                })
                .expect("marker");
            assert!(matches!(o, AppendOutcome::Appended(_)));
            j.write_all(format!("MA {pid} {t}\n").as_bytes())
                .expect("journal");
            j.flush().expect("flush");
            in_txn.remove(&pid);
            *t += 1;
            continue;
        }
        let seq = *seqs.get(&pid).unwrap_or(&0);
        let n = 1 + rng.below(20) as usize;
        let (bytes, _) = batch(pid, seq, n, transactional);
        let t = *txn_no.get(&pid).unwrap_or(&0);
        j.write_all(format!("S {pid} {seq} {n} {} {t}\n", u8::from(transactional)).as_bytes())
            .expect("journal");
        j.flush().expect("flush");
        match log.append(&bytes, AppendOrigin::Client).expect("append") {
            AppendOutcome::Appended(i) => {
                j.write_all(format!("A {pid} {seq} {}\n", i.first_offset.0).as_bytes())
                    .expect("journal");
                j.flush().expect("flush");
            }
            other => panic!("child: unexpected {other:?}"),
        }
        seqs.insert(pid, seq + n as i32);
        if transactional {
            *in_txn.entry(pid).or_default() += 1;
        }
    }
}

#[derive(Default)]
struct Journal {
    /// (pid, seq) -> (n, txn, txn number, acknowledged)
    sent: HashMap<(i64, i32), (usize, bool, u32, bool)>,
    /// (pid, txn number) -> commit?
    marker_intent: HashMap<(i64, u32), bool>,
    last_sent: HashMap<i64, (i32, usize, bool)>,
}

fn read_journal(path: &Path) -> Journal {
    let mut j = Journal::default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["S", pid, seq, n, txn, t] => {
                // A line torn by the kill was never followed by its append.
                let (Ok(pid), Ok(seq), Ok(n), Ok(t)) = (pid.parse(), seq.parse(), n.parse(), t.parse())
                else {
                    continue;
                };
                let txn = *txn == "1";
                j.sent.insert((pid, seq), (n, txn, t, false));
                j.last_sent.insert(pid, (seq, n, txn));
            }
            ["A", pid, seq, _] => {
                let (Ok(pid), Ok(seq)) = (pid.parse::<i64>(), seq.parse::<i32>()) else {
                    continue;
                };
                if let Some(e) = j.sent.get_mut(&(pid, seq)) {
                    e.3 = true;
                }
            }
            ["M", pid, t, kind @ ("commit" | "abort")] => {
                let (Ok(pid), Ok(t)) = (pid.parse::<i64>(), t.parse::<u32>()) else {
                    continue;
                };
                j.marker_intent.insert((pid, t), *kind == "commit");
            }
            _ => {} // a line torn by the kill, or MA
        }
    }
    j
}

/// Checks one life's journal against the reopened log, reading from `from` (the log end when
/// that life began: its producers wrote nothing below it). Returns (LSO, log end) at close.
fn check(dir: &Path, journal: &Path, prev_lso: i64, iteration: u64, from: i64) -> (i64, i64) {
    let log = Log::open(dir, config(iteration)).expect("parent open");
    let lso = log.last_stable_offset().0;
    assert!(
        lso >= prev_lso,
        "iteration {iteration}: LSO went backwards {prev_lso} -> {lso}"
    );
    let j = read_journal(journal);
    // Retry each producer's last sent batch: a duplicate or a fresh append, never out of order.
    for (&pid, &(seq, n, txn)) in &j.last_sent {
        if pid / 10 != iteration as i64 {
            continue;
        }
        let (bytes, _) = batch(pid, seq, n, txn);
        match log.append(&bytes, AppendOrigin::Client).expect("retry") {
            AppendOutcome::Duplicate(_) | AppendOutcome::Appended(_) => {}
            other => panic!("iteration {iteration}: retry of pid {pid} seq {seq}: {other:?}"),
        }
    }
    // The coordinator times out whatever the dead producers left open.
    for t in log.open_transactions() {
        log.abort_transaction(t.producer_id, t.first_offset)
            .expect("abort");
    }
    let (all, _) = log
        .read_records(Offset(from), usize::MAX / 2, Isolation::ReadUncommitted)
        .expect("read");
    let mut count: HashMap<String, usize> = HashMap::new();
    for r in &all {
        *count
            .entry(String::from_utf8(r.value.clone().expect("v")).expect("utf8"))
            .or_default() += 1;
    }
    for (&(pid, seq), &(n, txn, _, acked)) in &j.sent {
        let (_, values) = batch(pid, seq, n, txn);
        for v in values {
            let c = count.get(&v).copied().unwrap_or(0);
            if c > 1 {
                let offs: Vec<i64> = all
                    .iter()
                    .filter(|r| r.value.as_deref() == Some(v.as_bytes()))
                    .map(|r| r.offset.0)
                    .collect();
                let segs = log.segments();
                let mut files: Vec<String> = std::fs::read_dir(dir)
                    .expect("d")
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect();
                files.sort();
                panic!("iteration {iteration}: {v} written {c} times at {offs:?}; segments {segs:?}; producers {:?}; stats {:?}; files {files:?}; cp {:?}", log.producers().iter().filter(|p| p.producer_id.0 == pid).collect::<Vec<_>>(), log.stats(), std::fs::read_to_string(dir.join("eoslog.checkpoint")));
            }
            if acked {
                assert_eq!(c, 1, "iteration {iteration}: acknowledged {v} lost");
            }
        }
    }
    let (committed, _) = log
        .read_records(Offset(from), usize::MAX / 2, Isolation::ReadCommitted)
        .expect("read");
    let visible: HashSet<String> = committed
        .iter()
        .map(|r| String::from_utf8(r.value.clone().expect("v")).expect("utf8"))
        .collect();
    for (&(pid, seq), &(n, txn, t, _)) in &j.sent {
        if !txn {
            continue;
        }
        let committed_intent = j.marker_intent.get(&(pid, t)).copied();
        for v in batch(pid, seq, n, txn).1 {
            if visible.contains(&v) {
                assert_eq!(
                    committed_intent,
                    Some(true),
                    "iteration {iteration}: {v} visible to read_committed without a COMMIT"
                );
            }
        }
    }
    // Producer state agrees with the data: each producer's last sequence is that of its last
    // batch in the log.
    let producers = log.producers();
    for (&pid, &(seq, n, _)) in &j.last_sent {
        let last_in_log = (0..=seq).rev().find(|s| {
            j.sent.get(&(pid, *s)).is_some_and(|_| {
                count.contains_key(&batch(pid, *s, j.sent[&(pid, *s)].0, j.sent[&(pid, *s)].1).1[0])
            })
        });
        if let Some(s) = last_in_log {
            let n_last = j.sent[&(pid, s)].0;
            let p = producers
                .iter()
                .find(|p| p.producer_id.0 == pid)
                .expect("producer known");
            assert_eq!(
                p.last_sequence.0,
                s + n_last as i32 - 1,
                "iteration {iteration}: pid {pid} (last sent {seq}+{n})"
            );
        }
    }
    let lso = log.last_stable_offset().0;
    let end = log.log_end_offset().0;
    log.close().expect("close");
    (lso, end)
}

fn main() {
    if let (Ok(dir), Ok(journal), Ok(it)) = (
        std::env::var("EOSLOG_CRASH_DIR"),
        std::env::var("EOSLOG_CRASH_JOURNAL"),
        std::env::var("EOSLOG_CRASH_ITER"),
    ) {
        child(
            Path::new(&dir),
            Path::new(&journal),
            it.parse().expect("iteration"),
        );
        return;
    }
    let iterations: u64 = std::env::var("EOSLOG_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("crash-0");
    let exe = std::env::current_exe().expect("exe");
    let mut rng = Rng(0xDEAD_BEEF ^ u64::from(std::process::id()));
    let mut lso = 0;
    // The log end offset when each life began.
    let mut starts: Vec<i64> = vec![0];
    for it in 0..iterations {
        let journal = tmp.path().join(format!("journal-{it}"));
        let mut c = Command::new(&exe)
            .env("EOSLOG_CRASH_DIR", &dir)
            .env("EOSLOG_CRASH_JOURNAL", &journal)
            .env("EOSLOG_CRASH_ITER", it.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        c.kill().expect("SIGKILL");
        c.wait().expect("wait");
        // Check this life, and two earlier ones at random: nothing acknowledged in an earlier
        // life may vanish later.
        let (l, end) = check(&dir, &journal, lso, it, starts[it as usize]);
        lso = l;
        starts.push(end);
        for _ in 0..2 {
            if it == 0 {
                break;
            }
            let k = rng.below(it);
            let (l, _) = check(
                &dir,
                &tmp.path().join(format!("journal-{k}")),
                lso,
                k,
                starts[k as usize],
            );
            lso = l;
        }
        if (it + 1) % 100 == 0 {
            eprintln!("crash test: {} iterations", it + 1);
        }
        let _ = std::io::stdout().flush();
    }
    let size: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("crash test: {iterations} SIGKILL iterations, 0 violations, final directory {size} bytes");
    println!("1 passed, 0 failed");
}
