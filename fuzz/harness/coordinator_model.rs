//! The reference model of a store's transaction coordinator and the driver that runs it
//! against the engine, shared by the `coordinator_model` fuzz target and
//! `tests/coordinator_model.rs` (proptest).
//!
//! Invariant: a store agrees with a small in-memory model of two transactional ids, two
//! data partitions and one group's offsets under any sequence of InitProducerId,
//! AddPartitionsToTxn, transactional produces (TV0 with explicit adds, TV2 with implicit
//! ones), AddOffsetsToTxn, TxnOffsetCommit, EndTxn (TV0 and TV2, commit and abort),
//! OffsetDelete and DeleteGroups of the group (committed and pending offsets), zombie
//! requests with an old or future epoch, clock jumps past transaction timeouts, clean
//! reopens and crashes. Compared after every step: each request's answer (Kafka's error
//! code, or the identity returned), each id's state and epoch, each partition's
//! read_committed values, and the group's committed offsets with and without
//! `require_stable`.
//!
//! The model never reads the engine except for the producer id of a new transactional id
//! (it checks that one was never handed out before).
#![allow(dead_code)]

#[path = "scratch.rs"]
mod scratch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use eoslog::{
    AppendOutcome, BatchBuilder, CoordinatorError, Isolation, KafkaError, LogOptions, ManualClock, NewRecord,
    OffsetCommit, PartitionOffset, ProduceContext, ProduceError, ProducerIdAndEpoch, Sequence, Store,
    StoreConfig, TopicPartition, TxnOffsetCommit, TxnState, TxnVersion,
};

const T0: i64 = 1_700_000_000_000;
const IDS: [&str; 2] = ["a", "b"];
const TIMEOUT_MS: i32 = 1_000;
const GROUP: &str = "g";

/// One step, every field in its bounded range (see [`Op::normalized`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// id 0..2; with `expected`, the current identity is given (KIP-360).
    InitPid {
        id: u8,
        expected: bool,
    },
    /// partitions: bit mask of data partitions 0..2 (at least one); epoch_delta -1..=1.
    AddPartitions {
        id: u8,
        parts: u8,
        epoch_delta: i8,
    },
    /// One transactional record to data partition `part` 0..2.
    Produce {
        id: u8,
        part: u8,
        tv2: bool,
        epoch_delta: i8,
    },
    AddOffsets {
        id: u8,
        epoch_delta: i8,
    },
    /// Commits `offset` 0..100 for input partition `part` 0..2 of the group.
    TxnOffsetCommit {
        id: u8,
        part: u8,
        offset: u8,
        tv2: bool,
        epoch_delta: i8,
    },
    EndTxn {
        id: u8,
        commit: bool,
        tv2: bool,
        epoch_delta: i8,
    },
    /// OffsetDelete of the group's offset of input partition `part` 0..2 (the committed
    /// one and every transaction's pending one).
    OffsetDelete {
        part: u8,
    },
    /// DeleteGroups of the group (it never has members): every offset, pending ones too.
    DeleteGroup,
    /// Advances the clock 0..=1500 ms and runs maintenance (timeouts are 1000 ms).
    ClockJump {
        ms: u16,
    },
    Reopen,
    Crash,
}

impl Op {
    /// The same operation with every field brought into range.
    #[must_use]
    pub fn normalized(self) -> Op {
        let id = |i: u8| i % 2;
        let delta = |d: i8| d.rem_euclid(3) - 1;
        match self {
            Op::InitPid { id: i, expected } => Op::InitPid { id: id(i), expected },
            Op::AddPartitions {
                id: i,
                parts,
                epoch_delta,
            } => Op::AddPartitions {
                id: id(i),
                parts: (parts % 3) + 1,
                epoch_delta: delta(epoch_delta),
            },
            Op::Produce {
                id: i,
                part,
                tv2,
                epoch_delta,
            } => Op::Produce {
                id: id(i),
                part: part % 2,
                tv2,
                epoch_delta: delta(epoch_delta),
            },
            Op::AddOffsets { id: i, epoch_delta } => Op::AddOffsets {
                id: id(i),
                epoch_delta: delta(epoch_delta),
            },
            Op::TxnOffsetCommit {
                id: i,
                part,
                offset,
                tv2,
                epoch_delta,
            } => Op::TxnOffsetCommit {
                id: id(i),
                part: part % 2,
                offset: offset % 100,
                tv2,
                epoch_delta: delta(epoch_delta),
            },
            Op::EndTxn {
                id: i,
                commit,
                tv2,
                epoch_delta,
            } => Op::EndTxn {
                id: id(i),
                commit,
                tv2,
                epoch_delta: delta(epoch_delta),
            },
            Op::ClockJump { ms } => Op::ClockJump { ms: ms % 1501 },
            Op::OffsetDelete { part } => Op::OffsetDelete { part: part % 2 },
            other => other,
        }
    }
}

/// The model's view of a transactional id.
#[derive(Debug, Clone)]
struct MId {
    pid: i64,
    epoch: i16,
    state: TxnState,
    /// Data partitions in the transaction, and whether the offsets partition is.
    parts: HashSet<u8>,
    offsets_part: bool,
    start_ms: i64,
    /// Record indexes (per data partition) written by the ongoing transaction.
    written: Vec<(u8, usize)>,
    /// Partitions with a batch of the ongoing transaction (the partition's own "ongoing").
    open_at: HashSet<u8>,
    /// Whether the offsets partition has a batch of the ongoing transaction.
    offsets_open: bool,
    /// Pending offsets: input partition -> (offset, write order).
    pending: BTreeMap<u8, (u8, u64)>,
    /// Next sequence per data partition in the current epoch.
    seq: HashMap<u8, i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    Committed,
    Aborted,
}

#[derive(Debug, Default)]
struct Model {
    ids: HashMap<u8, MId>,
    /// Per data partition: (value, status) in log order.
    records: [Vec<(String, Status)>; 2],
    /// Committed offsets: input partition -> (offset, write order).
    committed: BTreeMap<u8, (u8, u64)>,
    /// The group lost its last offset (OffsetDelete, or the abort of the only transaction
    /// holding pending ones): it still exists, Empty, until a DeleteGroups or a retention
    /// sweep deletes it, across reopens and crashes.
    emptied: bool,
    order: u64,
    now: i64,
    pids_seen: HashSet<i64>,
}

impl Model {
    /// Ends `id`'s transaction (markers everywhere, offsets materialized or dropped).
    fn end(&mut self, id: u8, commit: bool, now: i64) {
        let m = self.ids.get_mut(&id).expect("known id");
        let status = if commit {
            Status::Committed
        } else {
            Status::Aborted
        };
        for &(p, i) in &m.written {
            self.records[p as usize][i].1 = status;
        }
        if commit {
            for (&part, &(offset, order)) in &m.pending {
                if self.committed.get(&part).is_none_or(|c| c.1 < order) {
                    self.committed.insert(part, (offset, order));
                }
            }
        }
        let lost = !commit && !m.pending.is_empty();
        m.written.clear();
        m.open_at.clear();
        m.offsets_open = false;
        m.pending.clear();
        m.parts.clear();
        m.offsets_part = false;
        m.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        self.emptied |= lost && !self.has_offsets();
        let _ = now;
    }

    /// A fence (new instance or timeout): abort at epoch + 1.
    fn fence(&mut self, id: u8, now: i64) {
        let m = self.ids.get_mut(&id).expect("known id");
        m.epoch += 1;
        m.seq.clear();
        self.end(id, false, now);
    }

    /// Begins a transaction if none is open.
    fn begin(&mut self, id: u8) {
        let now = self.now;
        let m = self.ids.get_mut(&id).expect("known id");
        if m.state != TxnState::Ongoing {
            m.state = TxnState::Ongoing;
            m.start_ms = now;
        }
    }

    /// Aborts every transaction past its timeout.
    fn timeouts(&mut self) {
        let now = self.now;
        let expired: Vec<u8> = self
            .ids
            .iter()
            .filter(|(_, m)| m.state == TxnState::Ongoing && m.start_ms + i64::from(TIMEOUT_MS) < now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.fence(id, now);
        }
    }

    /// Whether the store knows the group: it has a committed offset, a transaction holds
    /// a pending one, or it lost its last one and was not deleted since.
    fn group_known(&self) -> bool {
        self.emptied || self.has_offsets()
    }

    fn has_offsets(&self) -> bool {
        !self.committed.is_empty() || self.ids.values().any(|x| !x.pending.is_empty())
    }

    /// read_committed values of a partition: committed records before the first open one.
    fn visible(&self, p: usize) -> Vec<String> {
        self.records[p]
            .iter()
            .take_while(|(_, s)| *s != Status::Open)
            .filter(|(_, s)| *s == Status::Committed)
            .map(|(v, _)| v.clone())
            .collect()
    }
}

/// An answer reduced to what the model predicts: Ok, or Kafka's error.
fn code<T>(r: &Result<T, CoordinatorError>) -> Result<(), KafkaError> {
    r.as_ref().map(|_| ()).map_err(CoordinatorError::kafka_error)
}

fn tp(p: u8) -> TopicPartition {
    TopicPartition::new("t", i32::from(p))
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Option<Store>,
}

impl Harness {
    fn open(&mut self) {
        let mut config = StoreConfig::default();
        for (k, v) in [
            ("transaction.state.log.num.partitions", "1"),
            ("offsets.topic.num.partitions", "1"),
            ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1"),
        ] {
            config.set(k, v).expect("config");
        }
        let options = LogOptions {
            clock: self.clock.clone(),
            ..LogOptions::default()
        };
        let store = Store::open_with(self.dir.path(), config, options).expect("open store");
        if !store.has_partition("t", 0) {
            store.create_topic("t", 2, &[]).expect("topic");
            store.create_topic("in", 2, &[]).expect("topic");
        }
        self.store = Some(store);
    }

    fn s(&self) -> &Store {
        self.store.as_ref().expect("open")
    }
}

fn identity(m: &MId, delta: i8) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch::new(m.pid, m.epoch + i16::from(delta))
}

fn tv(tv2: bool) -> TxnVersion {
    if tv2 {
        TxnVersion::TV2
    } else {
        TxnVersion::TV0
    }
}

/// Runs `ops` against a fresh store and the model; panics on the first disagreement.
pub fn run(ops: &[Op]) {
    let clock = Arc::new(ManualClock::new(T0));
    let mut h = Harness {
        dir: scratch::scratch_dir(),
        clock,
        store: None,
    };
    h.open();
    let mut m = Model {
        now: T0,
        ..Model::default()
    };
    let mut value = 0u64;
    for (step, op) in ops.iter().cloned().map(Op::normalized).enumerate() {
        let ctx = |what: &str| format!("step {step} {op:?}: {what}");
        match op.clone() {
            Op::InitPid { id, expected } => {
                let name = IDS[id as usize];
                let exp = m.ids.get(&id).filter(|_| expected).map(|x| identity(x, 0));
                let got = h.s().transactions().init_producer_id(Some(name), TIMEOUT_MS, exp);
                match m.ids.get(&id).map(|x| x.state) {
                    None => {
                        let p = got.unwrap_or_else(|e| panic!("{}: {e}", ctx("new id")));
                        assert_eq!(p.producer_epoch.0, 0, "{}", ctx("epoch"));
                        assert!(
                            m.pids_seen.insert(p.producer_id.0),
                            "{}",
                            ctx("producer id reused")
                        );
                        m.ids.insert(
                            id,
                            MId {
                                pid: p.producer_id.0,
                                epoch: 0,
                                state: TxnState::Empty,
                                parts: HashSet::new(),
                                offsets_part: false,
                                start_ms: -1,
                                written: Vec::new(),
                                open_at: HashSet::new(),
                                offsets_open: false,
                                pending: BTreeMap::new(),
                                seq: HashMap::new(),
                            },
                        );
                    }
                    Some(TxnState::Ongoing) => {
                        assert_eq!(
                            code(&got),
                            Err(KafkaError::ConcurrentTransactions),
                            "{}",
                            ctx("fence")
                        );
                        let now = m.now;
                        m.fence(id, now);
                    }
                    Some(_) => {
                        let x = m.ids.get_mut(&id).expect("id");
                        x.epoch += 1;
                        x.seq.clear();
                        x.state = TxnState::Empty;
                        let p = got.unwrap_or_else(|e| panic!("{}: {e}", ctx("bump")));
                        assert_eq!(p, identity(x, 0), "{}", ctx("identity"));
                    }
                }
            }
            Op::AddPartitions {
                id,
                parts,
                epoch_delta,
            } => {
                let Some(x) = m.ids.get(&id) else { continue };
                let list: Vec<u8> = (0..2u8).filter(|p| parts & (1 << p) != 0).collect();
                let tps: Vec<_> = list.iter().map(|p| tp(*p)).collect();
                let got = h.s().transactions().add_partitions(
                    IDS[id as usize],
                    identity(x, epoch_delta),
                    &tps,
                    TxnVersion::TV0,
                );
                if epoch_delta != 0 {
                    assert_eq!(code(&got), Err(KafkaError::ProducerFenced), "{}", ctx("fenced"));
                    continue;
                }
                assert_eq!(code(&got), Ok(()), "{}", ctx("add"));
                m.begin(id);
                m.ids.get_mut(&id).expect("id").parts.extend(list);
            }
            Op::AddOffsets { id, epoch_delta } => {
                let Some(x) = m.ids.get(&id) else { continue };
                let got = h.s().transactions().add_offsets(
                    IDS[id as usize],
                    identity(x, epoch_delta),
                    GROUP,
                    TxnVersion::TV0,
                );
                if epoch_delta != 0 {
                    assert_eq!(code(&got), Err(KafkaError::ProducerFenced), "{}", ctx("fenced"));
                    continue;
                }
                assert_eq!(code(&got), Ok(()), "{}", ctx("add offsets"));
                m.begin(id);
                m.ids.get_mut(&id).expect("id").offsets_part = true;
            }
            Op::Produce {
                id,
                part,
                tv2,
                epoch_delta,
            } => {
                let Some(x) = m.ids.get(&id) else { continue };
                let p = identity(x, epoch_delta);
                let seq = x.seq.get(&part).copied().unwrap_or(0);
                value += 1;
                let v = format!("v{value}");
                let bytes = BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(seq))
                    .build(&[NewRecord::value(m.now, v.as_bytes())])
                    .expect("batch");
                let c = ProduceContext {
                    transactional_id: Some(IDS[id as usize]),
                    tv: tv(tv2),
                    ..Default::default()
                };
                let got = h.s().produce("t", i32::from(part), &bytes, &c);
                let ongoing_here = x.open_at.contains(&part);
                let expect: Result<(), KafkaError> = if epoch_delta != 0 {
                    Err(KafkaError::ProducerFenced)
                } else if tv2 || ongoing_here || (x.state == TxnState::Ongoing && x.parts.contains(&part)) {
                    Ok(())
                } else {
                    Err(KafkaError::TransactionAbortable)
                };
                let answer = match &got {
                    Ok(AppendOutcome::Appended(_)) => Ok(()),
                    Ok(other) => panic!("{}", ctx(&format!("unexpected outcome {other:?}"))),
                    Err(ProduceError::Coordinator(e)) => Err(e.kafka_error()),
                    Err(e) => panic!("{}", ctx(&format!("produce failed: {e}"))),
                };
                assert_eq!(answer, expect, "{}", ctx("produce"));
                if expect.is_ok() {
                    if tv2 {
                        m.begin(id);
                        m.ids.get_mut(&id).expect("id").parts.insert(part);
                    }
                    let index = m.records[part as usize].len();
                    m.records[part as usize].push((v, Status::Open));
                    let x = m.ids.get_mut(&id).expect("id");
                    x.written.push((part, index));
                    x.open_at.insert(part);
                    x.seq.insert(part, seq + 1);
                }
            }
            Op::TxnOffsetCommit {
                id,
                part,
                offset,
                tv2,
                epoch_delta,
            } => {
                let Some(x) = m.ids.get(&id) else { continue };
                let commit = TxnOffsetCommit {
                    transactional_id: IDS[id as usize],
                    producer: identity(x, epoch_delta),
                    tv: tv(tv2),
                    commit: OffsetCommit {
                        group_id: GROUP,
                        generation_id: -1,
                        member_id: "",
                        group_instance_id: None,
                        retention_ms: None,
                        offsets: vec![PartitionOffset {
                            partition: TopicPartition::new("in", i32::from(part)),
                            offset: i64::from(offset),
                            leader_epoch: -1,
                            metadata: None,
                        }],
                    },
                };
                let got = h.s().offsets().txn_commit(&commit).remove(0);
                let expect: Result<(), KafkaError> = if epoch_delta != 0 {
                    Err(KafkaError::ProducerFenced)
                } else if tv2 || x.offsets_open || (x.state == TxnState::Ongoing && x.offsets_part) {
                    Ok(())
                } else {
                    Err(KafkaError::TransactionAbortable)
                };
                assert_eq!(code(&got), expect, "{}", ctx("txn offset commit"));
                if expect.is_ok() {
                    if tv2 {
                        m.begin(id);
                        m.ids.get_mut(&id).expect("id").offsets_part = true;
                    }
                    m.order += 1;
                    let order = m.order;
                    let x = m.ids.get_mut(&id).expect("id");
                    x.offsets_open = true;
                    x.pending.insert(part, (offset, order));
                }
            }
            Op::EndTxn {
                id,
                commit,
                tv2,
                epoch_delta,
            } => {
                let Some(x) = m.ids.get(&id).cloned() else {
                    continue;
                };
                let got = h.s().transactions().end_txn(
                    IDS[id as usize],
                    identity(&x, epoch_delta),
                    commit,
                    tv(tv2),
                );
                let now = m.now;
                let expect: Result<Option<i16>, KafkaError> = if !tv2 {
                    match (epoch_delta, x.state, commit) {
                        (d, _, _) if d != 0 => Err(KafkaError::ProducerFenced),
                        (_, TxnState::Ongoing, _) => Ok(None),
                        (_, TxnState::CompleteCommit, true) | (_, TxnState::CompleteAbort, false) => Ok(None),
                        _ => Err(KafkaError::InvalidTxnState),
                    }
                } else {
                    match (epoch_delta, x.state, commit) {
                        (0, TxnState::Ongoing, _) => Ok(Some(x.epoch + 1)),
                        (_, TxnState::Ongoing, _) => Err(KafkaError::ProducerFenced),
                        (-1, TxnState::CompleteCommit, true) | (-1, TxnState::CompleteAbort, false) => {
                            Ok(Some(x.epoch))
                        }
                        (0, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false) => {
                            Ok(Some(x.epoch + 1))
                        }
                        (0, _, true)
                        | (-1, TxnState::CompleteAbort, true)
                        | (-1, TxnState::CompleteCommit, false) => Err(KafkaError::InvalidTxnState),
                        _ => Err(KafkaError::ProducerFenced),
                    }
                };
                match (&got, &expect) {
                    (Ok(p), Ok(Some(e))) => {
                        assert_eq!(*p, ProducerIdAndEpoch::new(x.pid, *e), "{}", ctx("tv2 identity"))
                    }
                    (Ok(p), Ok(None)) => {
                        assert_eq!(*p, ProducerIdAndEpoch::new(-1, -1), "{}", ctx("tv0 answer"))
                    }
                    _ => assert_eq!(code(&got), expect.map(|_| ()), "{}", ctx("end")),
                }
                let writes =
                    expect.is_ok() && (x.state == TxnState::Ongoing || (tv2 && epoch_delta == 0 && !commit));
                if writes {
                    if tv2 {
                        let y = m.ids.get_mut(&id).expect("id");
                        y.epoch += 1;
                        y.seq.clear();
                    }
                    if x.state == TxnState::Ongoing {
                        m.end(id, commit, now);
                    } else {
                        m.ids.get_mut(&id).expect("id").state = TxnState::CompleteAbort;
                    }
                }
            }
            Op::OffsetDelete { part } => {
                let got = h
                    .s()
                    .offsets()
                    .delete_offsets(GROUP, &[TopicPartition::new("in", i32::from(part))]);
                let got = got.map(|mut a| a.remove(0).map_err(|e| e.kafka_error()));
                if m.group_known() {
                    assert_eq!(
                        got.map_err(|e| e.kafka_error()),
                        Ok(Ok(())),
                        "{}",
                        ctx("offset delete")
                    );
                    let mut removed = m.committed.remove(&part).is_some();
                    for x in m.ids.values_mut() {
                        removed |= x.pending.remove(&part).is_some();
                    }
                    m.emptied |= removed && !m.has_offsets();
                } else {
                    assert_eq!(
                        got.map_err(|e| e.kafka_error()),
                        Err(KafkaError::GroupIdNotFound),
                        "{}",
                        ctx("offset delete of an unknown group")
                    );
                }
            }
            Op::DeleteGroup => {
                let got = h.s().offsets().delete_group(GROUP).map_err(|e| e.kafka_error());
                let expect = if m.group_known() {
                    Ok(())
                } else {
                    Err(KafkaError::GroupIdNotFound)
                };
                assert_eq!(got, expect, "{}", ctx("delete group"));
                m.emptied = false;
                m.committed.clear();
                for x in m.ids.values_mut() {
                    x.pending.clear();
                }
            }
            Op::ClockJump { ms } => {
                h.clock.advance(i64::from(ms));
                m.now += i64::from(ms);
                let report = h.s().run_maintenance();
                assert_eq!(report.failures, 0, "{}", ctx("maintenance"));
                // The store aborts timed-out transactions before its offsets sweep.
                m.timeouts();
                if report.deleted_groups.iter().any(|(g, _)| g == GROUP) {
                    assert!(
                        m.emptied && !m.has_offsets(),
                        "{}",
                        ctx("the sweep deleted a group with offsets")
                    );
                    m.emptied = false;
                }
            }
            Op::Reopen => {
                h.store.take().expect("open").close().expect("close");
                h.open();
                m.timeouts();
            }
            Op::Crash => {
                drop(h.store.take());
                h.open();
                m.timeouts();
            }
        }
        check(&h, &m, &ctx("state"));
    }
}

/// Compares every id, partition and offset with the model.
fn check(h: &Harness, m: &Model, ctx: &str) {
    assert_eq!(
        h.s().offsets().knows_group(GROUP),
        m.group_known(),
        "{ctx}: whether the group exists"
    );
    assert_eq!(
        h.s().offsets().groups().contains(&GROUP.to_owned()),
        m.group_known(),
        "{ctx}: whether the group is listed"
    );
    for (id, x) in &m.ids {
        let d = h.s().transactions().describe(IDS[*id as usize]).expect(ctx);
        assert_eq!(
            (d.state, d.producer_id.0, d.producer_epoch),
            (x.state, x.pid, x.epoch),
            "{ctx}: id {id}"
        );
    }
    for p in 0..2u8 {
        let log = h.s().partition("t", i32::from(p)).expect(ctx);
        let (records, _) = log
            .read_records(log.log_start_offset(), usize::MAX / 2, Isolation::ReadCommitted)
            .expect(ctx);
        let got: Vec<String> = records
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap_or_default()).expect("utf8"))
            .collect();
        assert_eq!(got, m.visible(p as usize), "{ctx}: read_committed t-{p}");
    }
    let tps: Vec<_> = (0..2).map(|p| TopicPartition::new("in", p)).collect();
    for stable in [false, true] {
        let fetched = h.s().offsets().fetch(GROUP, Some(&tps), stable).expect(ctx);
        for (tp, answer) in fetched {
            let p = tp.partition as u8;
            let pending = m.ids.values().any(|x| x.pending.contains_key(&p));
            let expect = if stable && pending {
                Err(KafkaError::UnstableOffsetCommit)
            } else {
                Ok(m.committed.get(&p).map(|c| i64::from(c.0)))
            };
            let got = answer.map(|c| c.map(|c| c.offset)).map_err(|e| e.kafka_error());
            assert_eq!(got, expect, "{ctx}: offsets of {tp} (stable {stable})");
        }
    }
}
