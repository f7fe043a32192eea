//! Exactly-once stream processing on an eoslog store, as a Kafka Streams application runs
//! it: consume `in` read_committed, write one record to `out` per input record, and commit
//! the consumed offsets in the same transaction.
//!
//! 1. A transactional filler writes `--records` unique ids (`id-0`, `id-1`, ...) to `in`
//!    (4 partitions), 500 per transaction.
//! 2. `--workers` workers, each with its own `transactional.id` and a share of `in`'s
//!    partitions, read from the group's committed offsets, write `out` (3 partitions; the
//!    value is the input id, the key names the input partition and offset) and send their
//!    offsets to the transaction; they commit every `--commit-every` records and abort
//!    every seventh transaction on purpose (then rewind to the committed offsets).
//! 3. A check: every input id appears exactly once in the committed output, nothing
//!    aborted or undecided is visible read_committed, the committed offsets cover exactly
//!    the input records whose output is committed, and no partition's last stable offset
//!    ever moved back.
//!
//! `--dir DIR --records N --crash-every K` runs the pipeline in a child process that kills
//! itself (`std::process::abort`) at random I/O operations, one in K on average: between
//! any write and fsync, including between a transaction's PrepareCommit and its last
//! marker. The parent restarts it until the work is done, runs the check after every crash
//! and at the end, and exits non-zero on any violation. `--kill-after-ms MS` also SIGKILLs
//! the child from outside after a random time up to MS.
//!
//! `cargo run --release --example exactly_once -- --dir /tmp/eos --records 20000 --crash-every 3000`

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eoslog::{
    AppendOutcome, BatchBuilder, CoordinatorError, FileSystem, Isolation, LogOptions, NewRecord, Offset,
    OffsetCommit, PartitionOffset, ProduceContext, ProducerIdAndEpoch, Sequence, StdFileSystem, StorageFile,
    Store, StoreConfig, TopicPartition, TxnOffsetCommit, TxnVersion,
};

const IN_PARTITIONS: i32 = 4;
const OUT_PARTITIONS: i32 = 3;
const GROUP: &str = "pipeline";
const FILL_CHUNK: u64 = 500;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Debug, Clone)]
struct Args {
    dir: Option<PathBuf>,
    records: u64,
    crash_every: u64,
    kill_after_ms: u64,
    workers: i32,
    commit_every: usize,
    child: bool,
    seed: u64,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        dir: None,
        records: 5_000,
        crash_every: 0,
        kill_after_ms: 0,
        workers: 2,
        commit_every: 100,
        child: false,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--records" => a.records = value()?.parse()?,
            "--crash-every" => a.crash_every = value()?.parse()?,
            "--kill-after-ms" => a.kill_after_ms = value()?.parse()?,
            "--workers" => a.workers = value()?.parse()?,
            "--commit-every" => a.commit_every = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--child" => a.child = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.workers < 1 || a.workers > IN_PARTITIONS || a.commit_every == 0 {
        return Err("--workers must be 1..=4 and --commit-every at least 1".into());
    }
    Ok(a)
}

/// xorshift64*: the example's only randomness, seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// ----- crash injection ----------------------------------------------------------------------

/// A file system that aborts the process at a random write, fsync or rename.
#[derive(Debug)]
struct CrashFs {
    one_in: u64,
    state: Arc<AtomicU64>,
}

impl CrashFs {
    fn maybe_crash(&self, op: &str, path: &Path) {
        if self.one_in == 0 {
            return;
        }
        // A shared xorshift step (races only make it more random).
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        if x.is_multiple_of(self.one_in) {
            eprintln!("exactly_once: crashing at {op} of {}", path.display());
            std::process::abort();
        }
    }
}

#[derive(Debug)]
struct CrashFile {
    inner: Arc<dyn StorageFile>,
    fs: Arc<CrashFs>,
    path: PathBuf,
}

impl StorageFile for CrashFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> std::io::Result<()> {
        self.fs.maybe_crash("write", &self.path);
        self.inner.write_all_at(buf, pos)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.fs.maybe_crash("fsync", &self.path);
        self.inner.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.inner.as_file()
    }
}

#[derive(Debug)]
struct CrashingFs(Arc<CrashFs>);

impl FileSystem for CrashingFs {
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(CrashFile {
            inner: StdFileSystem.open(path, create)?,
            fs: self.0.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.maybe_crash("rename", to);
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        StdFileSystem.sync_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
}

fn store_config() -> StoreConfig {
    let mut c = StoreConfig::default();
    for (k, v) in [
        ("transaction.state.log.num.partitions", "4"),
        ("offsets.topic.num.partitions", "4"),
        ("log.segment.bytes", "1048576"),
    ] {
        c.set(k, v).expect("valid config");
    }
    c
}

fn open_store(dir: &Path, crash: Option<Arc<CrashFs>>) -> Res<Store> {
    let fs: Arc<dyn FileSystem> = match crash {
        Some(c) => Arc::new(CrashingFs(c)),
        None => Arc::new(StdFileSystem),
    };
    let options = LogOptions {
        fs,
        ..LogOptions::default()
    };
    Ok(Store::open_with(dir, store_config(), options)?)
}

// ----- the pipeline (child) -----------------------------------------------------------------

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Retries a coordinator call while it answers a retriable error (a transaction being
/// completed, a partition reloading), as a Kafka client does.
fn retry<T>(mut f: impl FnMut() -> Result<T, CoordinatorError>) -> Result<T, CoordinatorError> {
    let mut backoff = Duration::from_millis(1);
    loop {
        match f() {
            Err(e) if e.is_retriable() => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// A transactional producer's state in the pipeline.
struct Producer<'s> {
    store: &'s Store,
    id: String,
    pid: ProducerIdAndEpoch,
    /// Next sequence per partition in the current epoch.
    seqs: HashMap<TopicPartition, i32>,
}

impl<'s> Producer<'s> {
    fn init(store: &'s Store, id: &str) -> Res<Self> {
        let pid = retry(|| store.transactions().init_producer_id(Some(id), 60_000, None))?;
        Ok(Producer {
            store,
            id: id.to_owned(),
            pid,
            seqs: HashMap::new(),
        })
    }

    /// Sends one batch of `records` (key, value) to `tp` inside the transaction (TV2: the
    /// partition is added on produce).
    fn send(&mut self, tp: &TopicPartition, records: &[(String, String)]) -> Res<()> {
        let seq = self.seqs.entry(tp.clone()).or_insert(0);
        let ts = now_ms();
        let recs: Vec<NewRecord<'_>> = records
            .iter()
            .map(|(k, v)| NewRecord::key_value(ts, k.as_bytes(), v.as_bytes()))
            .collect();
        let bytes =
            BatchBuilder::transactional(self.pid.producer_id, self.pid.producer_epoch, Sequence(*seq))
                .build(&recs)?;
        let ctx = ProduceContext {
            transactional_id: Some(&self.id),
            tv: TxnVersion::TV2,
            ..Default::default()
        };
        loop {
            match self.store.produce(&tp.topic, tp.partition, &bytes, &ctx) {
                Ok(AppendOutcome::Appended(_) | AppendOutcome::Duplicate(_)) => break,
                Ok(AppendOutcome::Rejected(r)) => return Err(format!("{tp}: produce rejected: {r:?}").into()),
                Err(eoslog::ProduceError::Coordinator(e)) if e.is_retriable() => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => return Err(e.into()),
            }
        }
        *seq += records.len() as i32;
        Ok(())
    }

    fn send_offsets(&self, offsets: &BTreeMap<i32, i64>) -> Res<()> {
        let commit = TxnOffsetCommit {
            transactional_id: &self.id,
            producer: self.pid,
            tv: TxnVersion::TV2,
            commit: OffsetCommit {
                group_id: GROUP,
                generation_id: -1,
                member_id: "",
                group_instance_id: None,
                retention_ms: None,
                offsets: offsets
                    .iter()
                    .map(|(&p, &o)| PartitionOffset {
                        partition: TopicPartition::new("in", p),
                        offset: o,
                        leader_epoch: -1,
                        metadata: None,
                    })
                    .collect(),
            },
        };
        for answer in retry_all(|| self.store.offsets().txn_commit(&commit)) {
            answer?;
        }
        Ok(())
    }

    fn end(&mut self, commit: bool) -> Res<()> {
        self.pid = retry(|| {
            self.store
                .transactions()
                .end_txn(&self.id, self.pid, commit, TxnVersion::TV2)
        })?;
        self.seqs.clear(); // a new epoch starts every sequence at 0
        Ok(())
    }
}

/// Retries a per-partition answer while any part of it is retriable.
fn retry_all(mut f: impl FnMut() -> Vec<Result<(), CoordinatorError>>) -> Vec<Result<(), CoordinatorError>> {
    loop {
        let v = f();
        if !v.iter().any(|r| matches!(r, Err(e) if e.is_retriable())) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Committed records of `in` so far: the filler writes ids in order, a transaction at a
/// time, so they are a prefix of all ids.
fn filled(store: &Store) -> Res<u64> {
    let mut n = 0;
    for p in 0..IN_PARTITIONS {
        let log = store.partition("in", p)?;
        let (records, _) = log.read_records(Offset(0), usize::MAX / 2, Isolation::ReadCommitted)?;
        n += records.len() as u64;
    }
    Ok(n)
}

fn fill(store: &Store, total: u64) -> Res<()> {
    let mut done = filled(store)?;
    if done >= total {
        return Ok(());
    }
    let mut producer = Producer::init(store, "filler")?;
    while done < total {
        let end = (done + FILL_CHUNK).min(total);
        let mut by_partition: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        for id in done..end {
            by_partition
                .entry((id % IN_PARTITIONS as u64) as i32)
                .or_default()
                .push((String::new(), format!("id-{id}")));
        }
        for (p, records) in &by_partition {
            producer.send(&TopicPartition::new("in", *p), records)?;
        }
        producer.end(true)?;
        done = end;
    }
    Ok(())
}

/// One worker: consumes its partitions of `in` until each is exhausted.
fn work(store: &Store, worker: i32, workers: i32, commit_every: usize) -> Res<()> {
    let mine: Vec<i32> = (0..IN_PARTITIONS).filter(|p| p % workers == worker).collect();
    let mut producer = Producer::init(store, &format!("worker-{worker}"))?;
    let mut txn_count = 0u64;
    loop {
        // Positions: the group's committed offsets (stable: wait out open transactions).
        let tps: Vec<TopicPartition> = mine.iter().map(|p| TopicPartition::new("in", *p)).collect();
        let mut positions = BTreeMap::new();
        for (tp, answer) in retry_fetch(store, &tps)? {
            positions.insert(tp.partition, answer.map_or(0, |c| c.offset));
        }
        let mut consumed = 0;
        let mut offsets = BTreeMap::new();
        let mut outputs: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        for (&p, &from) in &positions {
            let log = store.partition("in", p)?;
            let budget = (commit_every - consumed).max(1);
            let (records, _) = log.read_records(Offset(from), 64 << 10, Isolation::ReadCommitted)?;
            let mut next = from;
            for r in records.into_iter().take(budget) {
                let id = String::from_utf8(r.value.unwrap_or_default())?;
                let n: u64 = id.trim_start_matches("id-").parse()?;
                outputs
                    .entry((n % OUT_PARTITIONS as u64) as i32)
                    .or_default()
                    .push((format!("in-{p}@{}", r.offset), id));
                next = r.offset.0 + 1;
                consumed += 1;
            }
            if next > from {
                offsets.insert(p, next);
            }
        }
        if consumed == 0 {
            return Ok(()); // every partition of this worker is exhausted
        }
        for (p, records) in &outputs {
            producer.send(&TopicPartition::new("out", *p), records)?;
        }
        producer.send_offsets(&offsets)?;
        txn_count += 1;
        // Abort every seventh transaction on purpose: its output and offsets vanish and
        // the next transaction redoes its records.
        producer.end(!txn_count.is_multiple_of(7))?;
    }
}

fn retry_fetch(
    store: &Store,
    tps: &[TopicPartition],
) -> Res<Vec<(TopicPartition, Option<eoslog::CommittedOffset>)>> {
    loop {
        let answers = store.offsets().fetch(GROUP, Some(tps), true)?;
        if answers
            .iter()
            .any(|(_, a)| matches!(a, Err(CoordinatorError::UnstableOffsetCommit)))
        {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        return answers
            .into_iter()
            .map(|(tp, a)| a.map(|c| (tp, c)).map_err(Into::into))
            .collect();
    }
}

fn child(args: &Args, dir: &Path) -> Res<()> {
    let crash = (args.crash_every > 0).then(|| {
        Arc::new(CrashFs {
            one_in: args.crash_every,
            state: Arc::new(AtomicU64::new(args.seed | 1)),
        })
    });
    let store = open_store(dir, crash)?;
    let recovered = store.coordinator_stats().transactions_recovered;
    if recovered > 0 {
        println!("recovered {recovered} decided transaction(s) at open");
    }
    for (topic, n) in [("in", IN_PARTITIONS), ("out", OUT_PARTITIONS)] {
        if !store.has_partition(topic, 0) {
            store.create_topic(topic, n as u32, &[])?;
        }
    }
    fill(&store, args.records)?;
    std::thread::scope(|s| -> Res<()> {
        let handles: Vec<_> = (0..args.workers)
            .map(|w| {
                let store = &store;
                s.spawn(move || work(store, w, args.workers, args.commit_every).map_err(|e| e.to_string()))
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "worker panicked")??;
        }
        Ok(())
    })?;
    store.close()?;
    Ok(())
}

// ----- the check ----------------------------------------------------------------------------

/// What the check found.
#[derive(Debug, Default)]
struct Report {
    /// Transactions found decided but not completed when the check opened the store.
    recovered: u64,
    inputs: usize,
    outputs: usize,
    violations: Vec<String>,
}

/// Checks the committed state of the store; with `complete`, also that all work is done.
fn check(dir: &Path, complete: bool, records: u64, lso_seen: &mut HashMap<i32, i64>) -> Res<Report> {
    let store = open_store(dir, None)?;
    let mut r = Report {
        recovered: store.coordinator_stats().transactions_recovered,
        ..Report::default()
    };
    if !(store.has_partition("in", 0) && store.has_partition("out", 0)) {
        // Killed before the topics were both created: nothing to check yet.
        if complete {
            r.violations
                .push("the pipeline finished without its topics".into());
        }
        store.close()?;
        return Ok(r);
    }
    if !complete {
        // What a restarted producer does first: fence its crashed predecessor, aborting the
        // transaction it left open, so that every partition's outcome is decided.
        let open = eoslog::ListFilter {
            states: vec![eoslog::TxnState::Ongoing],
            ..Default::default()
        };
        for t in store.transactions().list(&open) {
            let fenced = store
                .transactions()
                .init_producer_id(Some(&t.transactional_id), 60_000, None);
            if !matches!(fenced, Err(CoordinatorError::ConcurrentTransactions)) {
                r.violations
                    .push(format!("fencing {}: {fenced:?}", t.transactional_id));
            }
        }
    }
    // Input: (partition, offset) -> id.
    let mut input: HashMap<(i32, i64), String> = HashMap::new();
    let mut ends = BTreeMap::new();
    for p in 0..IN_PARTITIONS {
        let log = store.partition("in", p)?;
        let (recs, _) = log.read_records(Offset(0), usize::MAX / 2, Isolation::ReadCommitted)?;
        ends.insert(p, recs.last().map_or(0, |x| x.offset.0 + 1));
        for x in recs {
            input.insert((p, x.offset.0), String::from_utf8(x.value.unwrap_or_default())?);
        }
    }
    r.inputs = input.len();
    // Output, read_committed.
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for p in 0..OUT_PARTITIONS {
        let log = store.partition("out", p)?;
        let lso = log.last_stable_offset().0;
        if let Some(&before) = lso_seen.get(&p) {
            if lso < before {
                r.violations
                    .push(format!("out-{p}: LSO moved back from {before} to {lso}"));
            }
        }
        lso_seen.insert(p, lso);
        let (recs, _) = log.read_records(Offset(0), usize::MAX / 2, Isolation::ReadCommitted)?;
        for x in recs {
            r.outputs += 1;
            let key = String::from_utf8(x.key.unwrap_or_default())?;
            let value = String::from_utf8(x.value.unwrap_or_default())?;
            let Some((ip, io)) = key
                .strip_prefix("in-")
                .and_then(|k| k.split_once('@'))
                .and_then(|(a, b)| Some((a.parse::<i32>().ok()?, b.parse::<i64>().ok()?)))
            else {
                r.violations
                    .push(format!("out-{p}@{}: unreadable key {key}", x.offset));
                continue;
            };
            match input.get(&(ip, io)) {
                Some(id) if *id == value => *seen.entry((ip, io)).or_default() += 1,
                _ => r
                    .violations
                    .push(format!("out-{p}@{}: {value} is not input in-{ip}@{io}", x.offset)),
            }
        }
    }
    for ((ip, io), n) in &seen {
        if *n > 1 {
            r.violations
                .push(format!("in-{ip}@{io} appears {n} times in the output"));
        }
    }
    // Committed offsets cover exactly the processed input.
    let tps: Vec<_> = (0..IN_PARTITIONS).map(|p| TopicPartition::new("in", p)).collect();
    for (tp, answer) in store.offsets().fetch(GROUP, Some(&tps), false)? {
        let committed = answer?.map_or(0, |c| c.offset);
        let p = tp.partition;
        for (&(ip, io), _) in input.iter().filter(|((ip, _), _)| *ip == p) {
            let processed = seen.contains_key(&(ip, io));
            if processed != (io < committed) {
                r.violations.push(format!(
                    "in-{ip}@{io}: committed offset {committed} but the output {} it",
                    if processed { "has" } else { "lacks" }
                ));
            }
        }
        if complete && committed != ends[&p] {
            r.violations.push(format!(
                "{tp}: committed offset {committed}, input ends at {}",
                ends[&p]
            ));
        }
    }
    if complete && r.inputs as u64 != records {
        r.violations
            .push(format!("{} input records, expected {records}", r.inputs));
    }
    // Nothing left undecided at a partition by a finished run.
    if complete {
        for tp in store.all_partitions(true) {
            let log = store.partition(&tp.topic, tp.partition)?;
            if let Some(t) = log.open_transactions().first() {
                r.violations.push(format!(
                    "{tp}: transaction of producer {} still open",
                    t.producer_id.0
                ));
            }
        }
    }
    store.close()?;
    Ok(r)
}

// ----- the supervisor -----------------------------------------------------------------------

fn supervise(args: &Args, dir: &Path) -> Res<bool> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut rng = Rng(args.seed ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let mut lso_seen = HashMap::new();
    let (mut crashes, mut kills, mut runs, mut recovered) = (0u64, 0u64, 0u64, 0u64);
    loop {
        runs += 1;
        let seed = rng.next();
        let mut cmd = Command::new(&exe);
        cmd.arg("--child")
            .arg("--dir")
            .arg(dir)
            .args(["--records", &args.records.to_string()])
            .args(["--crash-every", &args.crash_every.to_string()])
            .args(["--workers", &args.workers.to_string()])
            .args(["--commit-every", &args.commit_every.to_string()])
            .args(["--seed", &seed.to_string()]);
        let mut child = cmd.spawn()?;
        let deadline = (args.kill_after_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(rng.next() % args.kill_after_ms + 1));
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                child.kill()?; // SIGKILL
                kills += 1;
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if status.success() {
            break;
        }
        if status.code().is_some() {
            return Err(format!("the pipeline failed: {status}").into());
        }
        crashes += 1;
        let report = check(dir, false, args.records, &mut lso_seen)?;
        recovered += report.recovered;
        if !report.violations.is_empty() {
            for v in &report.violations {
                eprintln!("VIOLATION after crash {crashes}: {v}");
            }
            return Ok(false);
        }
    }
    let report = check(dir, true, args.records, &mut lso_seen)?;
    println!(
        "exactly_once: {} input records, {} committed outputs, {} runs, {} self-crashes, {} SIGKILLs, {} decided transactions completed at a restart, {} violations, {:.1} s",
        report.inputs,
        report.outputs,
        runs,
        crashes - kills,
        kills,
        recovered,
        report.violations.len(),
        started.elapsed().as_secs_f64()
    );
    for v in &report.violations {
        eprintln!("VIOLATION: {v}");
    }
    Ok(report.violations.is_empty())
}

fn main() -> ExitCode {
    let run = || -> Res<bool> {
        let args = parse_args()?;
        if args.child {
            let dir = args.dir.clone().ok_or("--child needs --dir")?;
            child(&args, &dir)?;
            return Ok(true);
        }
        match &args.dir {
            Some(dir) => supervise(&args, dir),
            None => {
                let tmp = tempfile::tempdir()?;
                supervise(&args, tmp.path())
            }
        }
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("exactly_once: {e}");
            ExitCode::from(2)
        }
    }
}
