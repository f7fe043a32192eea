//! Committed consumer offsets in `__consumer_offsets`, plain and transactional.
//!
//! Each offsets partition keeps, under one mutex held across its appends and their replay
//! (so memory follows the log's order): the committed offsets by group; the offsets of
//! open transactions by producer id, invisible until their COMMIT marker lands on this
//! partition (an ABORT drops them); and which producers have pending offsets per group.
//! When a COMMIT materializes a pending offset, the one written later in the log wins
//! (a plain commit after the transactional one is kept).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::{BatchBuilder, ControlType, NewRecord, RecordBatch};
use crate::config::Durability;
use crate::log::{AppendOptions, AppendOutcome, Log, MarkerType, TxnMarker, Verification};
use crate::producer_state::{AppendOrigin, Rejection};
use crate::store::{Store, StoreError, CONSUMER_OFFSETS_TOPIC};
use crate::types::{Offset, ProducerEpoch, ProducerId, Sequence};

use super::error::CoordinatorError;
use super::groups::{validate, Committer, GroupMembership};
use super::init_pid::MAX_STRING;
use super::load::scan_batches;
use super::offsets_codec::{self as codec, OffsetValue, OffsetsKey};
use super::records::GroupMetadataValue;
use super::wire::partition_for;
use super::{ProducerIdAndEpoch, TopicPartition, TxnVersion};

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the record before it (-1 when unknown).
    pub leader_epoch: i32,
    /// The committer's metadata.
    pub metadata: String,
    /// When it was committed (the store's clock).
    pub commit_timestamp: i64,
}

/// One partition's answer to an OffsetFetch: its committed offset (`None`: none), or why
/// it cannot be given.
pub type FetchedOffset = (TopicPartition, Result<Option<CommittedOffset>, CoordinatorError>);

/// One partition's offset in a commit.
#[derive(Debug, Clone)]
pub struct PartitionOffset<'a> {
    /// The partition consumed.
    pub partition: TopicPartition,
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last record consumed (-1 when unknown).
    pub leader_epoch: i32,
    /// Metadata (`None` is stored as "").
    pub metadata: Option<&'a str>,
}

/// An OffsetCommit request.
#[derive(Debug, Clone)]
pub struct OffsetCommit<'a> {
    /// The group.
    pub group_id: &'a str,
    /// The committer's generation (-1 for a consumer outside group management).
    pub generation_id: i32,
    /// The committer's member id ("" when none).
    pub member_id: &'a str,
    /// The committer's `group.instance.id`.
    pub group_instance_id: Option<&'a str>,
    /// OffsetCommit v2-v4's `retention_time_ms` (`None` for -1, the broker's retention):
    /// the offsets then expire that long after the commit, written as Kafka writes them
    /// (value version 1, an explicit expire timestamp, no leader epoch). Ignored in a
    /// TxnOffsetCommit, which has no such field.
    pub retention_ms: Option<i64>,
    /// The offsets.
    pub offsets: Vec<PartitionOffset<'a>>,
}

/// A TxnOffsetCommit request: offsets that commit with the producer's transaction.
#[derive(Debug, Clone)]
pub struct TxnOffsetCommit<'a> {
    /// The producer's transactional id.
    pub transactional_id: &'a str,
    /// Its producer id and epoch.
    pub producer: ProducerIdAndEpoch,
    /// The request's transaction version (TV2 adds the offsets partition implicitly).
    pub tv: TxnVersion,
    /// The commit itself (group, generation, member, offsets).
    pub commit: OffsetCommit<'a>,
}

#[derive(Debug, Clone)]
pub(super) struct Committed {
    /// Where the record is in the log: a pending offset materializes only over an older one.
    record_offset: i64,
    pub(super) value: OffsetValue,
}

pub(super) type GroupOffsets = HashMap<TopicPartition, Committed>;

/// The state of one `__consumer_offsets` partition.
#[derive(Debug)]
pub(super) struct PartState {
    pub(super) log: Arc<Log>,
    pub(super) committed: HashMap<String, GroupOffsets>,
    pub(super) pending: HashMap<i64, HashMap<String, GroupOffsets>>,
    pub(super) open_by_group: HashMap<String, HashSet<i64>>,
    /// Each group's last stored metadata (`group_metadata.rs`).
    pub(super) groups: HashMap<String, GroupMetadataValue>,
    /// Groups that lost their last offset, committed or pending (to a tombstone or an
    /// aborted transaction), with no stored record to name them: a simple consumer's (or
    /// one with members the broker reported, which is known by them anyway). They still
    /// exist, Empty, until a retention sweep or DeleteGroups deletes them (a group
    /// tombstone), as Kafka keeps the simple group an offset commit created until its next
    /// cleanup. Derived from the log by [`PartState::note_loss`], on load as when live, so a
    /// reopened store knows the same groups, until compaction removes the commit records
    /// (or the aborted batches) they were known by: then, as in Kafka, whose replay creates
    /// a simple group only from a commit record, a reopen no longer knows them.
    pub(super) emptied: HashSet<String>,
}

/// Every offsets partition of a store.
#[derive(Debug)]
pub(crate) struct OffsetsState {
    pub(super) partitions: Vec<Mutex<Option<PartState>>>,
    /// A partition whose log failed: maintenance reopens and loads it.
    needs_reload: Vec<std::sync::atomic::AtomicBool>,
    /// Group membership, as the embedding broker reports it (not from the log, so a reload
    /// keeps it), one map per partition beside it: a group's is at its partition's index.
    /// Locked after that partition's mutex, never before, so a sweep writing one
    /// partition's tombstones holds up no other partition's groups.
    pub(super) members: Vec<Mutex<HashMap<String, GroupMembership>>>,
}

impl OffsetsState {
    pub(crate) fn new(partitions: u32) -> Self {
        OffsetsState {
            partitions: (0..partitions).map(|_| Mutex::new(None)).collect(),
            needs_reload: (0..partitions).map(|_| Default::default()).collect(),
            members: (0..partitions).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Drops every partition's state (and its log handle), before the store closes.
    pub(crate) fn unload(&self) {
        for p in &self.partitions {
            p.lock().take();
        }
    }
}

impl PartState {
    /// Whether `group` exists for the coordinator: offsets (committed or pending), a stored
    /// record, a membership the broker reported, or emptied and not yet deleted.
    pub(super) fn knows(&self, members: &HashMap<String, GroupMembership>, group: &str) -> bool {
        self.holds(group) || self.emptied.contains(group) || members.contains_key(group)
    }

    /// Whether the log names `group` now: by offsets (committed or pending) or a record.
    fn holds(&self, group: &str) -> bool {
        self.committed.contains_key(group)
            || self.groups.contains_key(group)
            || self.open_by_group.get(group).is_some_and(|p| !p.is_empty())
    }

    /// Called when `group` has just lost offsets: with none left, committed or pending,
    /// and no stored record, it is a simple group emptied, which lives on until deleted.
    /// The one rule for both the live paths and the load, which replay the same records.
    fn note_loss(&mut self, group: &str) {
        if !self.holds(group) {
            self.emptied.insert(group.to_owned());
        }
    }

    /// Applies one offset record of a non-transactional batch.
    pub(super) fn replay_committed(
        &mut self,
        group: String,
        tp: TopicPartition,
        record_offset: i64,
        value: Option<OffsetValue>,
    ) {
        match value {
            Some(value) => {
                self.committed
                    .entry(group)
                    .or_default()
                    .insert(tp, Committed { record_offset, value });
            }
            None => {
                // A tombstone removes the offset, and the pending ones of every open
                // transaction of the group.
                let mut lost = false;
                if let Some(g) = self.committed.get_mut(&group) {
                    lost |= g.remove(&tp).is_some();
                    if g.is_empty() {
                        self.committed.remove(&group);
                    }
                }
                // A transaction left with no pending offset of the group no longer holds it.
                let pids: Vec<i64> = self
                    .open_by_group
                    .get(&group)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                for pid in pids {
                    let Some(by_group) = self.pending.get_mut(&pid) else {
                        continue;
                    };
                    let emptied = by_group.get_mut(&group).is_some_and(|g| {
                        lost |= g.remove(&tp).is_some();
                        g.is_empty()
                    });
                    if emptied {
                        by_group.remove(&group);
                        if let Some(open) = self.open_by_group.get_mut(&group) {
                            open.remove(&pid);
                            if open.is_empty() {
                                self.open_by_group.remove(&group);
                            }
                        }
                    }
                }
                // A tombstone of an offset already gone (its commit compacted away)
                // names no group, as Kafka's replay creates a group only from a commit.
                if lost {
                    self.note_loss(&group);
                }
            }
        }
    }

    /// Applies one offset record of producer `pid`'s transactional batch.
    fn replay_pending(
        &mut self,
        pid: i64,
        group: String,
        tp: TopicPartition,
        record_offset: i64,
        value: Option<OffsetValue>,
    ) {
        let by_group = self.pending.entry(pid).or_default();
        match value {
            Some(value) => {
                by_group
                    .entry(group.clone())
                    .or_default()
                    .insert(tp, Committed { record_offset, value });
                self.open_by_group.entry(group).or_default().insert(pid);
            }
            None => {
                if let Some(g) = by_group.get_mut(&group) {
                    g.remove(&tp);
                }
            }
        }
    }

    /// Applies a marker of producer `pid` (an unknown producer's marker does nothing).
    fn replay_marker(&mut self, pid: i64, commit: bool) {
        let Some(by_group) = self.pending.remove(&pid) else {
            return;
        };
        for (group, offsets) in by_group {
            if let Some(open) = self.open_by_group.get_mut(&group) {
                open.remove(&pid);
                if open.is_empty() {
                    self.open_by_group.remove(&group);
                }
            }
            if !commit || offsets.is_empty() {
                self.note_loss(&group);
                continue;
            }
            let committed = self.committed.entry(group).or_default();
            for (tp, c) in offsets {
                match committed.get(&tp) {
                    Some(old) if old.record_offset > c.record_offset => {}
                    _ => {
                        committed.insert(tp, c);
                    }
                }
            }
        }
    }

    /// Replays a stored batch (loading).
    fn replay_batch(&mut self, b: &RecordBatch<'_>) -> Result<(), String> {
        if b.is_control() {
            if let Some(m) = b.marker().map_err(|e| e.to_string())? {
                match m.control_type {
                    ControlType::Commit => self.replay_marker(b.producer_id().0, true),
                    ControlType::Abort => self.replay_marker(b.producer_id().0, false),
                    ControlType::Other(_) => {}
                }
            }
            return Ok(());
        }
        let records = b.records().map_err(|e| e.to_string())?;
        for r in records.iter() {
            let r = r.map_err(|e| e.to_string())?;
            let key =
                codec::decode_key(r.key.ok_or("offset record without a key")?).ok_or("unreadable key")?;
            let (group, topic, partition) = match key {
                OffsetsKey::Offset {
                    group,
                    topic,
                    partition,
                } => (group, topic, partition),
                OffsetsKey::Group { group } => {
                    self.replay_group(group, r.value, r.offset);
                    continue;
                }
                OffsetsKey::Other(_) => continue, // newer record types (KIP-848): skipped
            };
            let value = match r.value {
                None => None,
                Some(v) => match codec::decode_offset_value(v) {
                    Ok(v) => Some(v),
                    Err(Some(version)) => {
                        tracing::warn!(target: "eoslog::coordinator", version, offset = r.offset, "skipping an offset value of unknown version");
                        continue;
                    }
                    Err(None) => return Err(format!("unreadable offset value of {group}")),
                },
            };
            let tp = TopicPartition::new(&topic, partition);
            if b.is_transactional() {
                self.replay_pending(b.producer_id().0, group, tp, r.offset, value);
            } else {
                self.replay_committed(group, tp, r.offset, value);
            }
        }
        Ok(())
    }
}

/// Consumer offsets of a store: `store.offsets()`.
#[derive(Debug, Clone, Copy)]
pub struct Offsets<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Offsets<'a> {
    pub(super) fn state(&self) -> &'a OffsetsState {
        &self.store.offsets_state
    }

    /// The `__consumer_offsets` partition that holds `group_id`.
    #[must_use]
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.store.config().offsets_partitions)
    }

    /// The membership map that holds `group_id`'s (its partition's).
    pub(super) fn members_of(&self, group_id: &str) -> &'a Mutex<HashMap<String, GroupMembership>> {
        &self.state().members[self.partition_for(group_id) as usize]
    }

    /// Runs `f` on the loaded state of `group_id`'s partition.
    pub(super) fn with_group<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&mut PartState) -> Result<R, CoordinatorError>,
    ) -> Result<R, CoordinatorError> {
        let k = self.partition_for(group_id);
        let mut slot = self.state().partitions[k as usize].lock();
        match slot.as_mut() {
            Some(s) => f(s),
            None => Err(CoordinatorError::CoordinatorLoadInProgress),
        }
    }

    /// Loads offsets partition `k` from its log.
    pub(crate) fn load_partition(&self, k: i32) -> Result<(), StoreError> {
        let log = self.store.partition(CONSUMER_OFFSETS_TOPIC, k)?;
        let mut s = PartState {
            log: log.clone(),
            committed: HashMap::new(),
            pending: HashMap::new(),
            open_by_group: HashMap::new(),
            groups: HashMap::new(),
            emptied: HashSet::new(),
        };
        scan_batches(&log, CONSUMER_OFFSETS_TOPIC, k, |b| s.replay_batch(b))?;
        *self.state().partitions[k as usize].lock() = Some(s);
        Ok(())
    }

    /// Reopens offsets partition `k`'s log after a failed write (recovery runs) and loads
    /// it again; requests meanwhile answer `COORDINATOR_LOAD_IN_PROGRESS`. A partition that
    /// cannot reload now is retried by the next maintenance.
    pub(crate) fn reload_partition(&self, k: i32) -> Result<(), StoreError> {
        let flag = &self.state().needs_reload[k as usize];
        flag.store(true, std::sync::atomic::Ordering::Release);
        drop(self.state().partitions[k as usize].lock().take());
        self.store.reopen_partition(CONSUMER_OFFSETS_TOPIC, k)?;
        self.load_partition(k)?;
        flag.store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Retries the reload of every partition flagged by a failed one. Returns how many
    /// reloaded and how many failed again.
    pub(crate) fn reload_failed(&self) -> (usize, usize) {
        let (mut done, mut failed) = (0, 0);
        for (k, flag) in self.state().needs_reload.iter().enumerate() {
            if !flag.load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            match self.reload_partition(k as i32) {
                Ok(()) => done += 1,
                Err(e) => {
                    failed += 1;
                    tracing::error!(target: "eoslog::coordinator", partition = k, error = %e, "reloading an offsets partition failed; retried at the next maintenance");
                }
            }
        }
        (done, failed)
    }

    /// Tells the store a group's generation and members (the embedding broker's group
    /// coordinator calls this on each change); commits are checked against it.
    pub fn set_group_membership(
        &self,
        group_id: &str,
        membership: GroupMembership,
    ) -> Result<(), CoordinatorError> {
        if group_id.is_empty() {
            return Err(CoordinatorError::InvalidGroupId);
        }
        self.members_of(group_id)
            .lock()
            .insert(group_id.to_owned(), membership);
        Ok(())
    }

    /// OffsetCommit: validates the committer against the group, then writes one record
    /// per partition in one batch, durably, and makes them visible. Answers per partition,
    /// in the request's order.
    ///
    /// # Errors
    /// A request-wide error (`INVALID_GROUP_ID`, the group checks, storage) for every
    /// partition; `OFFSET_METADATA_TOO_LARGE` or `UNKNOWN_TOPIC_OR_PARTITION` per partition.
    pub fn commit(&self, req: &OffsetCommit<'_>) -> Vec<Result<(), CoordinatorError>> {
        self.commit_inner(req, None)
    }

    /// TxnOffsetCommit: offsets that become visible when the producer's transaction
    /// commits (and are dropped if it aborts). The group's offsets partition must be part
    /// of the transaction (AddOffsetsToTxn, or implicitly with TV2); the check is KIP-890's,
    /// so a commit that races with the end of the transaction is refused rather than left
    /// pending forever.
    pub fn txn_commit(&self, req: &TxnOffsetCommit<'_>) -> Vec<Result<(), CoordinatorError>> {
        self.commit_inner(&req.commit, Some(req))
    }

    /// Kafka's order: the group id; unknown partitions (answered alone, and nothing else
    /// happens when no partition is left); the transaction's verification; the committer
    /// against the group (for every remaining partition); each partition's metadata size;
    /// then one batch, replayed under the partition's mutex, made durable outside it.
    fn commit_inner(
        &self,
        req: &OffsetCommit<'_>,
        txn: Option<&TxnOffsetCommit<'_>>,
    ) -> Vec<Result<(), CoordinatorError>> {
        let all = |e: CoordinatorError| req.offsets.iter().map(|_| Err(e.replicate())).collect();
        if req.group_id.is_empty() || req.group_id.len() > MAX_STRING {
            return all(CoordinatorError::InvalidGroupId);
        }
        if let Some(t) = txn {
            if let Err(e) = self.store.transactions().check_request(t.transactional_id, t.tv) {
                return all(e);
            }
        }
        let k = self.partition_for(req.group_id);
        let log = match self.state().partitions[k as usize].lock().as_ref() {
            Some(s) => s.log.clone(),
            None => return all(CoordinatorError::CoordinatorLoadInProgress),
        };
        let mut answers: Vec<Result<(), CoordinatorError>> = req
            .offsets
            .iter()
            .map(|o| {
                if self
                    .store
                    .has_partition(&o.partition.topic, o.partition.partition)
                {
                    Ok(())
                } else {
                    Err(CoordinatorError::UnknownTopicOrPartition {
                        topic: o.partition.topic.to_string(),
                        partition: o.partition.partition,
                    })
                }
            })
            .collect();
        let known: Vec<usize> = (0..answers.len()).filter(|&i| answers[i].is_ok()).collect();
        if known.is_empty() {
            return answers;
        }
        let fail_known = |answers: &mut Vec<Result<(), CoordinatorError>>, e: &CoordinatorError| {
            for &i in &known {
                answers[i] = Err(e.replicate());
            }
        };
        // KIP-890: the offsets partition must be in the producer's transaction; the guard
        // makes a marker that lands meanwhile void the check.
        let mut guard = None;
        if let Some(t) = txn {
            match self.verify(t, &log, k) {
                Ok(g) => guard = g,
                Err(e) => {
                    fail_known(&mut answers, &e);
                    return answers;
                }
            }
        }
        let now = self.store.now_ms();
        let max = self.store.config().offset_metadata_max_bytes;
        let written = self.with_group(req.group_id, |s| {
            let committer = Committer {
                generation: req.generation_id,
                member_id: req.member_id,
                instance_id: req.group_instance_id,
                transactional: txn.is_some(),
            };
            validate(self.members_of(req.group_id).lock().get(req.group_id), &committer)?;
            // Encoded records for the batch, and what each one replays.
            let mut records = Vec::with_capacity(known.len());
            let mut replays = Vec::with_capacity(known.len());
            for &i in &known {
                let o = &req.offsets[i];
                let metadata = o.metadata.unwrap_or("");
                if metadata.len() > max {
                    answers[i] = Err(CoordinatorError::OffsetMetadataTooLarge {
                        len: metadata.len(),
                        max,
                    });
                    continue;
                }
                let expire_timestamp = match (txn, req.retention_ms) {
                    (None, Some(r)) if r >= 0 => now.saturating_add(r),
                    _ => -1,
                };
                let value = OffsetValue {
                    offset: o.offset,
                    // Version 1, which carries the expire timestamp, has no leader epoch.
                    leader_epoch: if expire_timestamp >= 0 { -1 } else { o.leader_epoch },
                    metadata: metadata.to_owned(),
                    commit_timestamp: now,
                    expire_timestamp,
                };
                let key = codec::encode_offset_key(req.group_id, &o.partition.topic, o.partition.partition);
                records.push((key, Some(codec::encode_offset_value(&value))));
                replays.push((value, i));
            }
            if records.is_empty() {
                return Ok(None);
            }
            let end = append_records(&s.log, &records, now, txn, guard)?;
            let first = end.0 - records.len() as i64;
            for (n, (value, i)) in replays.into_iter().enumerate() {
                let tp = req.offsets[i].partition.clone();
                let group = req.group_id.to_owned();
                let at = first + n as i64;
                match txn {
                    Some(t) => s.replay_pending(t.producer.producer_id.0, group, tp, at, Some(value)),
                    None => s.replay_committed(group, tp, at, Some(value)),
                }
            }
            Ok(Some(end))
        });
        let result = written.and_then(|end| self.durable(&log, end));
        if let Err(e) = result {
            for &i in &known {
                if answers[i].is_ok() {
                    answers[i] = Err(e.replicate());
                }
            }
        }
        answers
    }

    /// Waits until the records before `end` are durable, as the store's
    /// `eoslog.internal.durability` asks, before a write is answered; the fsync runs
    /// outside the partition's mutex, shared with other writers.
    pub(super) fn durable(&self, log: &Log, end: Option<Offset>) -> Result<(), CoordinatorError> {
        let sync = self.store.config().internal_durability == Durability::SyncEachAppend;
        match end.filter(|_| sync).map(|end| (end, log.wait_durable(end))) {
            None => Ok(()),
            Some((end, Ok(d))) if d >= end => Ok(()),
            Some((_, Ok(_))) => Err(CoordinatorError::NotCoordinator {
                reason: "the offsets log was truncated",
            }),
            Some((_, Err(e))) => Err(CoordinatorError::Storage(e)),
        }
    }

    /// Starts the KIP-890 check of a TxnOffsetCommit and asks the coordinator.
    fn verify(
        &self,
        t: &TxnOffsetCommit<'_>,
        log: &Log,
        k: i32,
    ) -> Result<Option<crate::log::VerificationGuard>, CoordinatorError> {
        let verify = log.config().transaction_verification;
        if !verify && !t.tv.bumps_epoch() {
            return Ok(None);
        }
        let guard = match log.start_verification(t.producer.producer_id, t.producer.producer_epoch) {
            Verification::AlreadyOngoing => return Ok(None),
            Verification::Required(g) => g,
        };
        let tp = TopicPartition::new(CONSUMER_OFFSETS_TOPIC, k);
        let txns = self.store.transactions();
        if t.tv.bumps_epoch() {
            txns.add_partitions(t.transactional_id, t.producer, &[tp], t.tv)?;
        } else if let Some(Err(e)) = txns
            .verify_partitions(t.transactional_id, t.producer, &[tp])
            .pop()
        {
            return Err(e);
        }
        Ok(verify.then_some(guard))
    }

    /// OffsetFetch: the committed offsets of `group_id` for `partitions` (`None`: every
    /// partition with a committed offset). With `require_stable`, a partition for which an
    /// open transaction holds offsets answers `UNSTABLE_OFFSET_COMMIT` (retry once the
    /// transaction ends); without it pending offsets are ignored.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`, `COORDINATOR_LOAD_IN_PROGRESS`.
    pub fn fetch(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, CoordinatorError> {
        if group_id.is_empty() {
            return Err(CoordinatorError::InvalidGroupId);
        }
        self.with_group(group_id, |s| {
            let committed = s.committed.get(group_id);
            let unstable = |tp: &TopicPartition| {
                require_stable
                    && s.open_by_group.get(group_id).is_some_and(|pids| {
                        pids.iter().any(|p| {
                            s.pending
                                .get(p)
                                .and_then(|g| g.get(group_id))
                                .is_some_and(|o| o.contains_key(tp))
                        })
                    })
            };
            let answer = |tp: &TopicPartition| {
                if unstable(tp) {
                    return Err(CoordinatorError::UnstableOffsetCommit);
                }
                Ok(committed.and_then(|c| c.get(tp)).map(|c| CommittedOffset {
                    offset: c.value.offset,
                    leader_epoch: c.value.leader_epoch,
                    metadata: c.value.metadata.clone(),
                    commit_timestamp: c.value.commit_timestamp,
                }))
            };
            Ok(match partitions {
                Some(ps) => ps.iter().map(|tp| (tp.clone(), answer(tp))).collect(),
                None => {
                    let mut tps: Vec<_> = committed.map(|c| c.keys().cloned().collect()).unwrap_or_default();
                    tps.sort();
                    tps.into_iter()
                        .map(|tp| {
                            let a = answer(&tp);
                            (tp, a)
                        })
                        .collect()
                }
            })
        })
    }

    /// The producers with offsets pending for `group_id`, and the partitions of each.
    pub fn pending(
        &self,
        group_id: &str,
    ) -> Result<Vec<(ProducerId, Vec<TopicPartition>)>, CoordinatorError> {
        self.with_group(group_id, |s| {
            let mut out: Vec<_> = s
                .open_by_group
                .get(group_id)
                .into_iter()
                .flatten()
                .map(|pid| {
                    let mut tps: Vec<_> = s
                        .pending
                        .get(pid)
                        .and_then(|g| g.get(group_id))
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    tps.sort();
                    (ProducerId(*pid), tps)
                })
                .collect();
            out.sort_by_key(|(p, _)| *p);
            Ok(out)
        })
    }

    /// Every group with committed or pending offsets or stored metadata, by name.
    #[must_use]
    pub fn groups(&self) -> Vec<String> {
        let mut out = Vec::new();
        for slot in &self.state().partitions {
            if let Some(s) = slot.lock().as_ref() {
                out.extend(s.committed.keys().cloned());
                out.extend(s.open_by_group.keys().cloned());
                out.extend(s.groups.keys().cloned());
                out.extend(s.emptied.iter().cloned());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether the store knows `group_id`: by committed or pending offsets, a stored record,
    /// a membership the broker reported, or as a simple consumer's group that lost its
    /// offsets (to OffsetDelete, expiry or an aborted transaction) and is not yet deleted
    /// by a sweep or DeleteGroups; DeleteGroups answers `GROUP_ID_NOT_FOUND` for any other.
    #[must_use]
    pub fn knows_group(&self, group_id: &str) -> bool {
        let k = self.partition_for(group_id) as usize;
        let slot = self.state().partitions[k].lock();
        let Some(s) = slot.as_ref() else {
            return false;
        };
        s.knows(&self.state().members[k].lock(), group_id)
    }

    /// Writes a transaction's marker to offsets partition `k` and applies it (the pending
    /// offsets of the producer become visible or are dropped) under the partition's mutex.
    pub(crate) fn complete_transaction(
        &self,
        k: i32,
        marker: &TxnMarker,
    ) -> Result<(Arc<Log>, AppendOutcome), String> {
        let mut slot = self
            .state()
            .partitions
            .get(k as usize)
            .ok_or_else(|| format!("no offsets partition {k}"))?
            .lock();
        let s = slot.as_mut().ok_or("offsets partition not loaded")?;
        // Buffered under the partition's mutex; the caller waits for durability with the
        // transaction's other markers.
        let control = match marker.marker {
            MarkerType::Commit => ControlType::Commit,
            MarkerType::Abort => ControlType::Abort,
        };
        let bytes = crate::batch::build_marker(
            control,
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch.0,
            marker.timestamp.unwrap_or_else(|| self.store.now_ms()),
        );
        let options = AppendOptions {
            durability: Some(Durability::Buffered),
            ..AppendOptions::new(AppendOrigin::Coordinator)
        };
        let outcome = s.log.append_with(&bytes, &options).map_err(|e| e.to_string())?;
        if matches!(outcome, AppendOutcome::Appended(_)) {
            s.replay_marker(marker.producer_id.0, marker.marker == MarkerType::Commit);
        }
        Ok((s.log.clone(), outcome))
    }
}

/// Appends encoded records (key, value; `None` is a tombstone) as one batch
/// (transactional for a TxnOffsetCommit) under the partition's mutex; durability is
/// awaited by the caller. Returns the offset after it.
pub(super) fn append_records(
    log: &Log,
    records: &[(Vec<u8>, Option<Vec<u8>>)],
    now: i64,
    txn: Option<&TxnOffsetCommit<'_>>,
    guard: Option<crate::log::VerificationGuard>,
) -> Result<Offset, CoordinatorError> {
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .map(|(k, v)| NewRecord {
            timestamp: now,
            key: Some(k),
            value: v.as_deref(),
            headers: Vec::new(),
        })
        .collect();
    let builder = match txn {
        Some(t) => BatchBuilder::transactional(
            t.producer.producer_id,
            ProducerEpoch(t.producer.producer_epoch.0),
            Sequence(0),
        ),
        None => BatchBuilder::new(),
    };
    let batch = builder
        .build(&recs)
        .map_err(|e| CoordinatorError::UnknownServerError {
            reason: format!("offsets batch: {e}"),
        })?;
    let options = AppendOptions {
        durability: Some(Durability::Buffered),
        verification_guard: guard,
        ..AppendOptions::new(AppendOrigin::Coordinator)
    };
    match log.append_with(&batch, &options) {
        Ok(AppendOutcome::Appended(info)) => Ok(info.last_offset.next()),
        Ok(AppendOutcome::Rejected(Rejection::InvalidProducerEpoch { .. })) => {
            Err(CoordinatorError::InvalidProducerEpoch)
        }
        Ok(AppendOutcome::Rejected(Rejection::NotVerified { .. } | Rejection::InvalidTxnState { .. })) => {
            Err(CoordinatorError::NotInTransaction)
        }
        Ok(other) => Err(CoordinatorError::UnknownServerError {
            reason: format!("offsets append answered {other:?}"),
        }),
        Err(crate::AppendError::Storage(e)) => Err(CoordinatorError::Storage(e)),
        Err(e) => Err(CoordinatorError::UnknownServerError {
            reason: e.to_string(),
        }),
    }
}
