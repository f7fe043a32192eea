//! The model of a compacted partition: what a read_committed consumer must rebuild, key by
//! key, whatever the cleaner did. Shared by `tests/compaction_model.rs` (proptest) and the
//! `compaction_model` fuzz target.
//!
//! The model keeps, for every key, the committed record with the highest offset (a
//! transaction's records count from their COMMIT on; an aborted transaction's never do), and
//! each producer's last batch with its offset. After every clean, reopen and at the end:
//! the engine's read_committed view folded by key (a tombstone removes the key) equals the
//! model's; no aborted value is visible even to read_uncommitted once a clean removed it...
//! and at least never to read_committed; a retry of every tracked producer's last batch is
//! answered as a duplicate with its original offset; every batch of the log parses with a
//! valid CRC.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CleanerOptions, CoordinatorEpoch, Isolation, Log, LogConfig,
    LogOptions, ManualClock, MarkerType, NewRecord, ProducerEpoch, ProducerId, RecordBatch, Sequence,
    StdFileSystem, TxnMarker,
};

const T0: i64 = 1_700_000_000_000;
const EXPIRATION_MS: i64 = 60_000;

/// One step.
#[derive(Debug, Clone)]
pub enum Op {
    /// Producer `slot` (0: plain, 1-2: idempotent, 3-4: transactional) writes `n` records to
    /// keys `key, key+1, ...` (mod 6); `tombstone` makes the first one a tombstone.
    Put {
        slot: u8,
        key: u8,
        n: u8,
        tombstone: bool,
    },
    /// Transactional producer `slot` ends its open transaction.
    End {
        slot: u8,
        commit: bool,
    },
    Roll,
    /// A forced clean; with `keys` (mod 4) above 0, a `log.cleaner.dedupe.buffer.size` of
    /// about that many keys, so the map fills and the clean stops inside a segment.
    Clean {
        keys: u8,
    },
    /// The clock passes every delete horizon (`delete.retention.ms` is 1 s).
    Advance,
    /// The producers without an open transaction expire; they come back with new ids.
    Expire,
    Reopen,
    Crash,
}

#[derive(Default, Clone)]
struct Producer {
    generation: i64,
    seq: i32,
    /// The last batch and its first offset: a retry must be a duplicate.
    last: Option<(Vec<u8>, i64)>,
    /// Records of the open transaction: (offset, key, value).
    open: Vec<(i64, String, Option<String>)>,
}

pub struct Harness {
    dir: tempfile::TempDir,
    clock: ManualClock,
    config: LogConfig,
    log: Option<Log>,
    producers: Vec<Producer>,
    /// Every record written and not aborted: offset -> (key, value, committed). A
    /// transaction's records count from its COMMIT on.
    history: BTreeMap<i64, (String, Option<String>, bool)>,
    aborted: HashSet<String>,
    next_value: u64,
}

impl Harness {
    pub fn new() -> Self {
        let mut config = LogConfig::default();
        for (k, v) in [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "700"),
            ("delete.retention.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("producer.id.expiration.ms", &EXPIRATION_MS.to_string()),
        ] {
            config.set(k, v).unwrap();
        }
        let mut h = Harness {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(T0),
            config,
            log: None,
            producers: vec![Producer::default(); 5],
            history: BTreeMap::new(),
            aborted: HashSet::new(),
            next_value: 0,
        };
        h.open();
        h
    }

    fn open(&mut self) {
        let log = Log::open_with(
            self.dir.path().join("t-0"),
            self.config.clone(),
            LogOptions {
                fs: Arc::new(StdFileSystem),
                clock: Arc::new(self.clock.clone()),
            },
        )
        .expect("open");
        self.log = Some(log);
    }

    fn log(&self) -> &Log {
        self.log.as_ref().unwrap()
    }

    fn pid(&self, slot: usize) -> i64 {
        100 + slot as i64 + 10 * self.producers[slot].generation
    }

    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put {
                slot,
                key,
                n,
                tombstone,
            } => self.put(usize::from(slot % 5), key % 6, 1 + n % 3, tombstone),
            Op::End { slot, commit } => self.end(3 + usize::from(slot % 2), commit),
            Op::Roll => self.log().roll_segment().expect("roll"),
            Op::Clean { keys } => {
                let options = match keys % 4 {
                    0 => CleanerOptions::default(),
                    // A key here costs its 2 bytes plus the map's estimated 64 per entry.
                    n => CleanerOptions::default().dedupe_buffer_bytes(usize::from(n) * 66),
                };
                self.log().clean(&options, true).expect("clean");
                self.check();
            }
            Op::Advance => self.clock.advance(1_001),
            Op::Expire => {
                self.clock.advance(EXPIRATION_MS + 1);
                self.log().run_maintenance().expect("maintenance");
                for p in &mut self.producers {
                    if p.open.is_empty() {
                        p.generation += 1;
                        p.seq = 0;
                        p.last = None;
                    }
                }
            }
            Op::Reopen => {
                self.log.take().unwrap().close().expect("close");
                self.open();
                self.check();
            }
            Op::Crash => {
                drop(self.log.take());
                self.open();
                self.check();
            }
        }
    }

    fn put(&mut self, slot: usize, key: u8, n: u8, tombstone: bool) {
        let pid = self.pid(slot);
        let records: Vec<(String, Option<String>)> = (0..n)
            .map(|i| {
                self.next_value += 1;
                let k = format!("k{}", (key + i) % 6);
                let v = (!(tombstone && i == 0)).then(|| format!("v{}", self.next_value));
                (k, v)
            })
            .collect();
        let recs: Vec<NewRecord<'_>> = records
            .iter()
            .map(|(k, v)| NewRecord {
                timestamp: self.clock_now(),
                key: Some(k.as_bytes()),
                value: v.as_deref().map(str::as_bytes),
                headers: Vec::new(),
            })
            .collect();
        let p = &self.producers[slot];
        let builder = match slot {
            0 => BatchBuilder::new(),
            1 | 2 => BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(p.seq)),
            _ => BatchBuilder::transactional(ProducerId(pid), ProducerEpoch(0), Sequence(p.seq)),
        };
        let bytes = builder.build(&recs).unwrap();
        let info = match self.log().append(&bytes, AppendOrigin::Client).expect("append") {
            AppendOutcome::Appended(info) => info,
            other => panic!("slot {slot}: {other:?}"),
        };
        let first = info.first_offset.0;
        let p = &mut self.producers[slot];
        if slot > 0 {
            p.seq += i32::from(n);
            p.last = Some((bytes, first));
        }
        for (i, (k, v)) in records.into_iter().enumerate() {
            let offset = first + i as i64;
            if slot >= 3 {
                p.open.push((offset, k.clone(), v.clone()));
            }
            self.history.insert(offset, (k, v, slot < 3));
        }
    }

    fn clock_now(&self) -> i64 {
        use eoslog::Clock;
        self.clock.now_ms()
    }

    fn end(&mut self, slot: usize, commit: bool) {
        if self.producers[slot].open.is_empty() {
            return;
        }
        let marker = TxnMarker {
            producer_id: ProducerId(self.pid(slot)),
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker: if commit {
                MarkerType::Commit
            } else {
                MarkerType::Abort
            },
            timestamp: Some(self.clock_now()),
        };
        match self.log().write_marker(&marker).expect("marker") {
            AppendOutcome::Appended(_) => {}
            other => panic!("marker: {other:?}"),
        }
        for (offset, _, v) in std::mem::take(&mut self.producers[slot].open) {
            if commit {
                if let Some(r) = self.history.get_mut(&offset) {
                    r.2 = true;
                }
            } else {
                self.history.remove(&offset);
                if let Some(v) = v {
                    self.aborted.insert(v);
                }
            }
        }
    }

    /// Compares the engine with the model.
    pub fn check(&mut self) {
        let log = self.log();
        let (recs, _) = log
            .read_records(log.log_start_offset(), usize::MAX / 2, Isolation::ReadCommitted)
            .expect("read");
        let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
        for r in recs {
            let k = String::from_utf8(r.key.expect("key")).unwrap();
            let v = r.value.map(|v| String::from_utf8(v).unwrap());
            if let Some(v) = &v {
                assert!(
                    !self.aborted.contains(v),
                    "aborted value {v} visible to read_committed"
                );
            }
            seen.insert(k, v);
        }
        let live = |m: &BTreeMap<String, Option<String>>| -> BTreeMap<String, String> {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect()
        };
        // What read_committed can see: committed records below the last stable offset (the
        // first offset of the earliest open transaction).
        let lso = self
            .producers
            .iter()
            .filter_map(|p| p.open.first().map(|r| r.0))
            .min()
            .unwrap_or(i64::MAX);
        let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (_, (k, v, committed)) in self.history.range(..lso) {
            if *committed {
                model.insert(k.clone(), v.clone());
            }
        }
        assert_eq!(live(&seen), live(&model), "latest committed value per key");
        // Every batch parses and checks out.
        let mut from = log.log_start_offset();
        loop {
            let r = log
                .read(from, usize::MAX / 2, Isolation::ReadUncommitted)
                .expect("read");
            if r.slices.is_empty() {
                break;
            }
            for s in &r.slices {
                let bytes = s.read().expect("bytes");
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let (b, tail) = RecordBatch::parse(rest).expect("batch");
                    b.validate_crc().expect("crc");
                    from = eoslog::Offset(b.next_offset());
                    rest = tail;
                }
            }
        }
        for (slot, p) in self.producers.iter().enumerate() {
            if let Some((bytes, at)) = &p.last {
                match log.append(bytes, AppendOrigin::Client).expect("retry") {
                    AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset.0, *at, "slot {slot}"),
                    other => panic!("slot {slot}: a retry of the last batch gave {other:?}"),
                }
            }
        }
    }
}

/// Runs `ops`, then a final clean and check.
pub fn run(ops: &[Op]) {
    let mut h = Harness::new();
    for op in ops {
        h.apply(op);
    }
    h.apply(&Op::Roll);
    h.apply(&Op::Clean { keys: 0 });
    h.apply(&Op::Crash);
}
