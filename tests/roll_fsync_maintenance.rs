//! Invariant: with `eoslog.roll.fsync=maintenance` a roll fsyncs nothing, so an append never
//! waits for the disk; the recovery point and the durable offset stay where they were until
//! maintenance has fsynced the rolled segments, their snapshots and the directory (with the
//! writer lock released: appends and truncations go on meanwhile). Whatever a crash takes
//! before that, the log opens to a prefix of what was appended, with everything maintenance
//! made durable, and producer state that agrees with the data it kept (a retry of its last
//! batch is a duplicate at its offset, the next sequence is accepted). A durable append
//! (`eoslog.durability=sync`) after a deferred roll fsyncs the new segment's directory entry
//! itself, and a truncation fsyncs the rolled segments before it moves the recovery point
//! past them. Switched to `inline` while the log is open ([`Log::set_config`]), the next
//! inline roll or maintenance fsyncs the rolls left deferred before the recovery point
//! passes them. FORMAT.md §4.4.

mod common;
use common::*;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use eoslog::{AppendOutcome, FileSystem, Isolation, Log, LogOptions, StdFileSystem, StorageFile};

/// fsyncs counted: of files, and of directories; and the names of the files fsynced.
#[derive(Debug, Default)]
struct Counts {
    files: AtomicUsize,
    dirs: AtomicUsize,
    synced: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct CountingFs(Arc<Counts>);

#[derive(Debug)]
struct CountingFile(Arc<dyn StorageFile>, Arc<Counts>, String);

impl StorageFile for CountingFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.files.fetch_add(1, Ordering::SeqCst);
        self.1.synced.lock().expect("names").push(self.2.clone());
        self.0.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.0.as_file()
    }
}

impl FileSystem for CountingFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Arc::new(CountingFile(
            StdFileSystem.open(path, create)?,
            self.0.clone(),
            name,
        )))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.dirs.fetch_add(1, Ordering::SeqCst);
        StdFileSystem.sync_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
}

fn open_counted(t: &TestLog) -> (Log, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let log = Log::open_with(
        t.path(),
        t.config.clone(),
        LogOptions {
            fs: Arc::new(CountingFs(counts.clone())),
            clock: Arc::new(t.clock.clone()),
        },
    )
    .expect("open");
    counts.files.store(0, Ordering::SeqCst);
    counts.dirs.store(0, Ordering::SeqCst);
    (log, counts)
}

fn deferred(extra: &[(&str, &str)]) -> TestLog {
    let mut pairs = vec![
        ("segment.bytes", "600"),
        ("index.interval.bytes", "0"),
        ("eoslog.preallocate.bytes", "0"),
        ("eoslog.roll.fsync", "maintenance"),
    ];
    pairs.extend_from_slice(extra);
    TestLog::with_config(config(&pairs))
}

/// The recovery point the checkpoint file holds.
fn checkpointed(dir: &Path) -> i64 {
    let text = std::fs::read_to_string(dir.join("eoslog.checkpoint")).expect("checkpoint");
    text.lines()
        .find_map(|l| l.strip_prefix("recovery_point "))
        .and_then(|v| v.parse().ok())
        .expect("recovery_point line")
}

fn active_base(log: &Log) -> i64 {
    log.segments().last().expect("active").base_offset.0
}

/// Appends idempotent batches of 2 records (producer 1, sequence = offset) from `from`.
fn append_batches(log: &Log, from: i64, n: i64) {
    for i in 0..n {
        let seq = (from + 2 * i) as i32;
        let info = appended(client(log, &idem(1, 0, seq, 2)));
        assert_eq!(info.first_offset, off(from + 2 * i));
    }
}

/// A reopened log holds records `0..end` of producer 1 and its state agrees with them.
fn assert_whole_prefix(log: &Log, at_least: i64, case: &str) {
    let end = log.log_end_offset().0;
    assert!(
        end >= at_least,
        "{case}: log end {end} below the durable {at_least}"
    );
    assert_eq!(end % 2, 0, "{case}: a batch was cut");
    assert_eq!(
        values(log, Isolation::ReadUncommitted).len() as i64,
        end,
        "{case}"
    );
    assert_lookups(log, end, case);
    if end > 0 {
        match client(log, &idem(1, 0, (end - 2) as i32, 2)) {
            AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset, off(end - 2), "{case}"),
            other => panic!("{case}: a retry of the last batch was {other:?}"),
        }
    }
    assert_eq!(
        appended(client(log, &idem(1, 0, end as i32, 2))).first_offset,
        off(end),
        "{case}"
    );
}

#[test]
fn a_deferred_roll_fsyncs_nothing_until_maintenance() {
    let t = deferred(&[]);
    let (log, counts) = open_counted(&t);
    let durable_before = log.durable_offset();
    let checkpoint_before = checkpointed(&t.path());
    append_batches(&log, 0, 40);
    assert!(log.segments().len() >= 4, "the appends rolled segments");
    assert_eq!(log.stats().rolls as usize, log.segments().len() - 1);
    assert_eq!(counts.files.load(Ordering::SeqCst), 0, "no file fsync in a roll");
    assert_eq!(
        counts.dirs.load(Ordering::SeqCst),
        0,
        "no directory fsync in a roll"
    );
    assert_eq!(log.durable_offset(), durable_before, "nothing became durable");
    assert_eq!(
        checkpointed(&t.path()),
        checkpoint_before,
        "the recovery point stayed"
    );

    log.run_maintenance().expect("maintenance");
    let base = active_base(&log);
    let rolled = log.segments().len() - 1;
    assert_eq!(
        log.durable_offset(),
        off(base),
        "maintenance made the rolled segments durable"
    );
    assert_eq!(
        checkpointed(&t.path()),
        base,
        "and moved the recovery point to the active base"
    );
    assert!(
        counts.files.load(Ordering::SeqCst) >= rolled,
        "every rolled segment was fsynced ({} fsyncs, {rolled} segments)",
        counts.files.load(Ordering::SeqCst)
    );
    assert!(
        counts.dirs.load(Ordering::SeqCst) >= 1,
        "the directory was fsynced"
    );

    let (files, dirs) = (
        counts.files.load(Ordering::SeqCst),
        counts.dirs.load(Ordering::SeqCst),
    );
    log.run_maintenance().expect("maintenance");
    assert_eq!(counts.files.load(Ordering::SeqCst), files, "nothing new to fsync");
    assert_eq!(counts.dirs.load(Ordering::SeqCst), dirs, "nothing new to fsync");
}

#[test]
fn an_inline_roll_fsyncs_before_the_append_goes_on() {
    let t = TestLog::with_config(config(&[
        ("segment.bytes", "600"),
        ("eoslog.preallocate.bytes", "0"),
    ]));
    let (log, counts) = open_counted(&t);
    append_batches(&log, 0, 40);
    assert!(log.segments().len() >= 4, "the appends rolled segments");
    assert!(counts.files.load(Ordering::SeqCst) >= log.segments().len() - 1);
    assert!(counts.dirs.load(Ordering::SeqCst) >= log.segments().len() - 1);
    assert_eq!(log.durable_offset(), off(active_base(&log)));
    assert_eq!(checkpointed(&t.path()), active_base(&log));
}

#[test]
fn a_process_crash_before_maintenance_loses_nothing() {
    let t = deferred(&[]);
    let scratch = tempfile::tempdir().expect("scratch");
    let log = t.open();
    append_batches(&log, 0, 30);
    log.run_maintenance().expect("maintenance");
    append_batches(&log, 60, 30);
    // The files as a killed process leaves them (the page cache survives).
    let killed = scratch.path().join("killed");
    copy_dir(&t.path(), &killed);
    drop(log);
    let log = t.open_at(&killed);
    assert_eq!(log.log_end_offset(), off(120));
    assert_whole_prefix(&log, 120, "kill");
}

#[test]
fn a_power_loss_before_maintenance_keeps_what_maintenance_made_durable() {
    let t = deferred(&[]);
    let scratch = tempfile::tempdir().expect("scratch");
    let log = t.open();
    append_batches(&log, 0, 30);
    log.run_maintenance().expect("maintenance");
    let durable = log.durable_offset().0;
    assert_eq!(durable, active_base(&log));
    append_batches(&log, 60, 30);
    let unsynced: Vec<i64> = log
        .segments()
        .iter()
        .map(|s| s.base_offset.0)
        .filter(|&b| b >= durable)
        .collect();
    assert!(unsynced.len() >= 3, "rolls after the maintenance: {unsynced:?}");
    let post = scratch.path().join("post");
    copy_dir(&t.path(), &post);
    drop(log);

    let name = |base: i64, ext: &str| format!("{base:020}.{ext}");
    // Each case is one thing a power loss may do to what was not fsynced.
    type Loss = Box<dyn Fn(&Path)>;
    let u = unsynced.clone();
    let cases: Vec<(&str, Loss)> = vec![
        (
            "every unsynced segment and snapshot lost",
            Box::new(move |dir: &Path| {
                for &b in &u {
                    for ext in ["log", "index", "timeindex", "txnindex", "snapshot"] {
                        let _ = std::fs::remove_file(dir.join(name(b, ext)));
                    }
                }
            }),
        ),
        ("the first unsynced segment torn, later ones whole", {
            let first = unsynced[0];
            Box::new(move |dir: &Path| {
                let p = dir.join(name(first, "log"));
                let len = std::fs::metadata(&p).expect("log").len();
                let f = std::fs::OpenOptions::new().write(true).open(&p).expect("open");
                f.set_len(len / 2 + 7).expect("tear");
            })
        }),
        ("the first unsynced segment's pages never written", {
            let first = unsynced[0];
            Box::new(move |dir: &Path| {
                let p = dir.join(name(first, "log"));
                let len = std::fs::metadata(&p).expect("log").len();
                std::fs::write(&p, vec![0u8; len as usize]).expect("zero");
            })
        }),
        ("the deferred snapshots garbled", {
            let u = unsynced.clone();
            Box::new(move |dir: &Path| {
                for &b in &u[1..] {
                    let p = dir.join(name(b, "snapshot"));
                    if let Ok(m) = std::fs::metadata(&p) {
                        std::fs::write(&p, vec![0u8; m.len() as usize]).expect("zero");
                    }
                }
            })
        }),
        ("the last segment's directory entry lost", {
            let last = *unsynced.last().expect("one");
            Box::new(move |dir: &Path| {
                for ext in ["log", "index", "timeindex", "txnindex", "snapshot"] {
                    let _ = std::fs::remove_file(dir.join(name(last, ext)));
                }
            })
        }),
    ];
    for (case, lose) in cases {
        let dir = scratch.path().join(case.replace(' ', "_"));
        copy_dir(&post, &dir);
        lose(&dir);
        let log = t.open_at(&dir);
        assert_whole_prefix(&log, durable, case);
    }
}

#[test]
fn appends_and_truncations_go_on_while_maintenance_fsyncs_rolled_segments() {
    let t = deferred(&[]);
    let gate = Gate::new(GateOn::Sync);
    let log = Arc::new(gate.open(&t, is_segment));
    append_batches(&log, 0, 30);
    let rolled_end = active_base(&log);
    gate.arm();
    let maintenance = {
        let log = log.clone();
        std::thread::spawn(move || log.run_maintenance().map(|_| ()))
    };
    gate.wait_entered();
    // The maintenance is inside a rolled segment's fsync: an append still completes, and so
    // does a truncation below what it is making durable.
    append_batches(&log, 60, 1);
    log.truncate_to(off(rolled_end - 20)).expect("truncate");
    gate.release();
    maintenance.join().expect("join").expect("maintenance");
    assert!(
        log.durable_offset().0 <= log.log_end_offset().0,
        "the recovery point passed a truncation: durable {:?}, end {:?}",
        log.durable_offset(),
        log.log_end_offset()
    );
    assert!(checkpointed(&t.path()) <= log.log_end_offset().0);
    // The next maintenance moves it on.
    append_batches(&log, rolled_end - 20, 20);
    log.run_maintenance().expect("maintenance");
    assert_eq!(log.durable_offset(), off(active_base(&log)));
    drop(log);
    let log = t.open();
    assert_whole_prefix(&log, 0, "reopened");
}

#[test]
fn a_truncation_makes_deferred_rolls_durable_before_it_moves_the_recovery_point() {
    let t = deferred(&[]);
    let (log, counts) = open_counted(&t);
    append_batches(&log, 0, 40);
    let rolled = log.segments().len() - 1;
    assert!(rolled >= 3, "{rolled} rolls");
    assert_eq!(counts.files.load(Ordering::SeqCst), 0);
    let end = log.log_end_offset().0;
    log.truncate_to(off(end - 2)).expect("truncate");
    assert_eq!(
        log.durable_offset(),
        off(end - 2),
        "the truncation moved the recovery point"
    );
    assert!(
        counts.files.load(Ordering::SeqCst) > rolled,
        "the recovery point passed {rolled} rolled segments after {} fsyncs",
        counts.files.load(Ordering::SeqCst)
    );
    assert_eq!(checkpointed(&t.path()), end - 2);
}

#[test]
fn a_durable_append_after_a_deferred_roll_fsyncs_the_directory() {
    let t = deferred(&[("eoslog.durability", "sync")]);
    let (log, counts) = open_counted(&t);
    let mut rolls = 0;
    for i in 0..40i64 {
        let before = (log.stats().rolls, counts.dirs.load(Ordering::SeqCst));
        appended(client(&log, &idem(1, 0, (2 * i) as i32, 2)));
        assert_eq!(
            log.durable_offset(),
            log.log_end_offset(),
            "acknowledged means durable"
        );
        if log.stats().rolls > before.0 {
            rolls += 1;
            assert!(
                counts.dirs.load(Ordering::SeqCst) > before.1,
                "append {i} went into a new segment without a directory fsync"
            );
        }
    }
    assert!(rolls >= 3, "{rolls} rolls");
}

#[test]
fn a_rolled_segment_is_cleaned_only_once_durable() {
    // A copy is fsynced: built from a record that a power loss could take back, it would
    // drop the durable records that record superseded, and a power loss would leave neither.
    let t = deferred(&[("cleanup.policy", "compact"), ("delete.retention.ms", "0")]);
    let log = t.open();
    for value in [&b"v1"[..], b"v2"] {
        append_keyed(&log, b"k", Some(value));
        log.roll_segment().expect("roll");
    }
    assert_eq!(log.durable_offset().0, 0, "nothing fsynced yet");
    let options = eoslog::CleanerOptions::default();
    assert!(
        log.clean(&options, true).expect("clean").is_none(),
        "nothing durable to clean"
    );
    assert_eq!(values(&log, Isolation::ReadCommitted), ["v1", "v2"]);
    log.run_maintenance().expect("maintenance");
    assert_eq!(log.durable_offset().0, 2);
    assert!(log.clean(&options, true).expect("clean").is_some(), "durable now");
    assert_eq!(values(&log, Isolation::ReadCommitted), ["v2"]);
}

/// The log's config with `eoslog.roll.fsync=inline`.
fn inline_config(log: &Log) -> eoslog::LogConfig {
    let mut c = (*log.config()).clone();
    c.set("eoslog.roll.fsync", "inline").expect("inline");
    c
}

fn rolled_bases(log: &Log) -> Vec<i64> {
    let segs = log.segments();
    segs[..segs.len() - 1].iter().map(|s| s.base_offset.0).collect()
}

fn assert_logs_synced(counts: &Counts, bases: &[i64], case: &str) {
    let synced = counts.synced.lock().expect("names").clone();
    for b in bases {
        let name = format!("{b:020}.log");
        assert!(
            synced.contains(&name),
            "{case}: {name} never fsynced ({synced:?})"
        );
    }
}

#[test]
fn switched_to_inline_the_next_roll_fsyncs_the_rolls_left_deferred() {
    let t = deferred(&[]);
    let (log, counts) = open_counted(&t);
    append_batches(&log, 0, 30);
    let deferred_bases = rolled_bases(&log);
    assert!(deferred_bases.len() >= 3, "rolled: {deferred_bases:?}");
    assert_eq!(
        counts.files.load(Ordering::SeqCst),
        0,
        "deferred: nothing fsynced"
    );

    log.set_config(inline_config(&log)).expect("set_config");
    let before = log.segments().len();
    append_batches(&log, 60, 10);
    assert!(log.segments().len() > before, "an inline roll happened");
    assert_eq!(
        checkpointed(&t.path()),
        active_base(&log),
        "the recovery point moved to it"
    );
    assert_logs_synced(&counts, &deferred_bases, "inline roll");
    drop(log);
    let log = t.open();
    assert_whole_prefix(&log, 80, "reopen");
}

#[test]
fn switched_to_inline_maintenance_still_fsyncs_the_rolls_left_deferred() {
    let t = deferred(&[]);
    let (log, counts) = open_counted(&t);
    append_batches(&log, 0, 30);
    let deferred_bases = rolled_bases(&log);
    let checkpoint_before = checkpointed(&t.path());
    log.set_config(inline_config(&log)).expect("set_config");
    assert_eq!(
        checkpointed(&t.path()),
        checkpoint_before,
        "the switch itself writes nothing"
    );
    log.run_maintenance().expect("maintenance");
    assert_eq!(log.durable_offset(), off(active_base(&log)));
    assert_eq!(checkpointed(&t.path()), active_base(&log));
    assert_logs_synced(&counts, &deferred_bases, "maintenance");
}
