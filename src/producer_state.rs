//! Per-partition producer state: epochs, sequences, the dedup window, open transactions,
//! expiry and a bounded producer count.
//!
//! An append is checked against a *pending* working copy ([`PendingAppend`]) before anything
//! is written, and the copy is applied only after the write succeeded, so a rejected or failed
//! append leaves the state untouched (Kafka's `ProducerAppendInfo`).

use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::snapshot::{ProducerSnapshot, SnapshotBatch, SnapshotEntry, UnreplicatedTxn};
use crate::types::{
    decrement_sequence, in_sequence, CoordinatorEpoch, Offset, ProducerEpoch, ProducerId, Sequence,
};

/// Who is appending: decides which checks apply (Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppendOrigin {
    /// A producer: full validation, deduplication, offsets assigned by the log.
    Client,
    /// A transaction or group coordinator: epoch checks, no sequence checks.
    Coordinator,
    /// A follower copying the leader (or recovery replaying the log): offsets already
    /// assigned, producer state adopted without sequence checks.
    Replication,
}

/// An append refused by producer-state rules. Nothing of the append was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The batch's epoch is older than the producer's (`INVALID_PRODUCER_EPOCH`).
    InvalidProducerEpoch {
        /// The producer.
        producer_id: ProducerId,
        /// The producer's current epoch.
        current: ProducerEpoch,
        /// The batch's epoch.
        got: ProducerEpoch,
    },
    /// The sequence does not follow the producer's last (`OUT_OF_ORDER_SEQUENCE_NUMBER`).
    OutOfOrderSequence {
        /// The producer.
        producer_id: ProducerId,
        /// The sequence that would have been accepted.
        expected: Sequence,
        /// The batch's first sequence.
        got: Sequence,
    },
    /// A non-transactional batch from a producer with an open transaction
    /// (`INVALID_TXN_STATE`).
    InvalidTxnState {
        /// The producer.
        producer_id: ProducerId,
    },
    /// A transactional batch that would start a transaction at this partition without the
    /// guard its producer's coordinator check handed out, or with a guard a marker has since
    /// cleared (KIP-890's verification: `INVALID_TXN_STATE`, "record was not part of an
    /// ongoing transaction"). Refusing it is what keeps a late or zombie batch from opening
    /// a transaction no coordinator will ever end.
    NotVerified {
        /// The producer.
        producer_id: ProducerId,
    },
    /// A marker from a coordinator older than the last one seen
    /// (`TRANSACTION_COORDINATOR_FENCED`).
    CoordinatorFenced {
        /// The producer.
        producer_id: ProducerId,
        /// The coordinator epoch already seen.
        current: CoordinatorEpoch,
        /// The marker's coordinator epoch.
        got: CoordinatorEpoch,
    },
}

impl Rejection {
    /// The Kafka error code a broker returns.
    #[must_use]
    pub fn kafka_error(&self) -> crate::KafkaError {
        use crate::KafkaError as K;
        match self {
            Rejection::InvalidProducerEpoch { .. } => K::InvalidProducerEpoch,
            Rejection::OutOfOrderSequence { .. } => K::OutOfOrderSequenceNumber,
            Rejection::InvalidTxnState { .. } | Rejection::NotVerified { .. } => K::InvalidTxnState,
            Rejection::CoordinatorFenced { .. } => K::TransactionCoordinatorFenced,
        }
    }
}

/// Metadata of one of a producer's recent batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub last_seq: i32,
    pub offset_delta: i32,
    pub last_offset: i64,
    pub timestamp: i64,
}

impl BatchMeta {
    pub(crate) fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }
    pub(crate) fn first_offset(&self) -> i64 {
        self.last_offset - i64::from(self.offset_delta)
    }
}

/// Batches an inline window holds (Kafka's default of 5 in-flight requests).
const INLINE_WINDOW: usize = 5;

/// An older batch of an inline window, relative to the next newer batch N: 12 bytes instead
/// of 24. Within one epoch a producer's batches follow each other (seq_gap 0) a few offsets
/// apart and close in time, so almost every window fits; one that does not moves to the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PackedBatch {
    /// `N.first_offset - last_offset` (≥ 1).
    offset_gap: u32,
    /// `timestamp - N.timestamp`.
    ts_delta: i32,
    /// `offset_delta` (records - 1).
    offset_delta: u16,
    /// `N.first_seq - 1 - last_seq`, as wrapping i32 arithmetic (0 when consecutive).
    seq_gap: u16,
}

impl PackedBatch {
    fn pack(b: &BatchMeta, newer: &BatchMeta) -> Option<PackedBatch> {
        let seq_gap = newer.first_seq().wrapping_sub(1).wrapping_sub(b.last_seq);
        Some(PackedBatch {
            offset_gap: u32::try_from(newer.first_offset().checked_sub(b.last_offset)?).ok()?,
            ts_delta: i32::try_from(b.timestamp.checked_sub(newer.timestamp)?).ok()?,
            offset_delta: u16::try_from(b.offset_delta).ok()?,
            seq_gap: u16::try_from(seq_gap).ok()?,
        })
    }
    fn unpack(&self, newer: &BatchMeta) -> BatchMeta {
        BatchMeta {
            last_seq: newer
                .first_seq()
                .wrapping_sub(1)
                .wrapping_sub(i32::from(self.seq_gap)),
            offset_delta: i32::from(self.offset_delta),
            last_offset: newer.first_offset() - i64::from(self.offset_gap),
            timestamp: newer.timestamp + i64::from(self.ts_delta),
        }
    }
}

/// How many batches an inline window holds (an enum, so that [`Window`] needs no tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum InlineLen {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
}

impl InlineLen {
    const ALL: [InlineLen; 6] = [
        InlineLen::L0,
        InlineLen::L1,
        InlineLen::L2,
        InlineLen::L3,
        InlineLen::L4,
        InlineLen::L5,
    ];
    fn get(self) -> usize {
        self as usize
    }
}

/// A producer's dedup window: its most recent batches, at most the window size.
///
/// Up to five batches live inline with no allocation: the newest whole, the older ones as
/// [`PackedBatch`] relative to their newer neighbour. A larger configured window, or a batch
/// that does not pack, moves the window to a `VecDeque` on the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Window {
    Inline {
        newest: BatchMeta,
        /// `older[k]` is the batch k + 1 places before the newest.
        older: [PackedBatch; INLINE_WINDOW - 1],
        len: InlineLen,
    },
    /// Oldest first.
    Heap(VecDeque<BatchMeta>),
}

impl Default for Window {
    fn default() -> Self {
        Window::Inline {
            newest: BatchMeta {
                last_seq: -1,
                offset_delta: 0,
                last_offset: -1,
                timestamp: -1,
            },
            older: [PackedBatch::default(); INLINE_WINDOW - 1],
            len: InlineLen::L0,
        }
    }
}

impl Window {
    pub(crate) fn len(&self) -> usize {
        match self {
            Window::Inline { len, .. } => len.get(),
            Window::Heap(v) => v.len(),
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn clear(&mut self) {
        *self = Window::default();
    }
    pub(crate) fn last(&self) -> Option<BatchMeta> {
        match self {
            Window::Inline { newest, len, .. } => (len.get() > 0).then_some(*newest),
            Window::Heap(v) => v.back().copied(),
        }
    }
    /// Walks the batches newest first until `f` returns `true`; returns that batch.
    fn find_newest_first(&self, mut f: impl FnMut(&BatchMeta) -> bool) -> Option<BatchMeta> {
        match self {
            Window::Inline { newest, older, len } => {
                let n = len.get();
                if n == 0 {
                    return None;
                }
                if f(newest) {
                    return Some(*newest);
                }
                let mut cur = *newest;
                for p in &older[..n - 1] {
                    cur = p.unpack(&cur);
                    if f(&cur) {
                        return Some(cur);
                    }
                }
                None
            }
            Window::Heap(v) => v.iter().rev().find(|m| f(m)).copied(),
        }
    }
    /// The batch with exactly this sequence range (the dedup check; the hot path).
    pub(crate) fn find(&self, first_seq: i32, last_seq: i32) -> Option<BatchMeta> {
        self.find_newest_first(|m| m.last_seq == last_seq && m.first_seq() == first_seq)
    }
    /// The batches, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<BatchMeta> {
        let mut v = Vec::with_capacity(self.len());
        self.find_newest_first(|m| {
            v.push(*m);
            false
        });
        v.reverse();
        v
    }
    /// Adds the newest batch, dropping the oldest beyond `cap` batches.
    pub(crate) fn push(&mut self, b: BatchMeta, cap: usize) {
        if let Window::Inline { newest, older, len } = self {
            if cap <= INLINE_WINDOW {
                if len.get() == 0 {
                    *newest = b;
                    *len = InlineLen::L1;
                    return;
                }
                if cap == 1 {
                    *newest = b;
                    return;
                }
                if let Some(packed) = PackedBatch::pack(newest, &b) {
                    older.copy_within(0..INLINE_WINDOW - 2, 1);
                    older[0] = packed;
                    *newest = b;
                    *len = InlineLen::ALL[(len.get() + 1).min(cap)];
                    return;
                }
            }
            // Does not fit inline: move to the heap.
            let mut v: VecDeque<BatchMeta> = VecDeque::with_capacity(cap.min(self.len() + 1));
            v.extend(self.to_vec());
            *self = Window::Heap(v);
        }
        if let Window::Heap(v) = self {
            while v.len() >= cap {
                v.pop_front();
            }
            if v.len() == v.capacity() {
                // Grow one slot at a time up to the window: an idle producer holds exactly
                // the batches it has.
                v.reserve_exact(1);
            }
            v.push_back(b);
        }
    }
}

/// What the log knows about one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub coordinator_epoch: i32,
    pub last_timestamp: i64,
    /// First offset of the open transaction, -1 when none.
    pub txn_first_offset: i64,
    /// Recent batches, at most the window size; cleared on an epoch change.
    pub batches: Window,
}

impl ProducerEntry {
    fn empty() -> Self {
        ProducerEntry {
            epoch: -1,
            coordinator_epoch: -1,
            last_timestamp: -1,
            txn_first_offset: -1,
            batches: Window::default(),
        }
    }
    pub(crate) fn last_seq(&self) -> i32 {
        self.batches.last().map_or(-1, |b| b.last_seq)
    }
}

/// The producer fields of one batch, as producer-state checks need them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub is_transactional: bool,
}

/// A transaction completed by a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// What one append would change for one producer: checked against the producer's current
/// entry (borrowed, never cloned) and applied after the write.
#[derive(Debug, Clone, Copy)]
struct Delta {
    pid: i64,
    /// The producer had state a sequence can follow (an epoch, or batches).
    known: bool,
    epoch: i16,
    coordinator_epoch: i32,
    last_timestamp: i64,
    txn_first_offset: i64,
    /// The epoch changed: the entry's cached batches are dropped.
    clear: bool,
    /// Last sequence of the entry's newest cached batch (-1 if none).
    entry_last_seq: i32,
}

/// The changes of one append, checked before anything is written and applied after.
/// Reused across appends so the hot path allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct PendingAppend {
    /// The append's verification guard when the log verifies transactions (`Some(0)`: the
    /// append carries none), `None` when it does not.
    pub verify: Option<u64>,
    deltas: Vec<Delta>,
    /// New batch metadata, tagged with the index of its producer's delta.
    batches: Vec<(usize, BatchMeta)>,
    new_txns: Vec<(i64, i64)>,
    pub completed: Vec<CompletedTxn>,
}

impl PendingAppend {
    pub(crate) fn clear(&mut self) {
        self.verify = None;
        self.deltas.clear();
        self.batches.clear();
        self.new_txns.clear();
        self.completed.clear();
    }

    /// Producers that open a transaction in this append.
    pub(crate) fn new_txn_producers(&self) -> impl Iterator<Item = i64> + '_ {
        self.new_txns.iter().map(|&(_, pid)| pid)
    }

    fn delta(&mut self, pid: i64, current: Option<&ProducerEntry>) -> usize {
        if let Some(i) = self.deltas.iter().position(|d| d.pid == pid) {
            return i;
        }
        let d = match current {
            Some(e) => Delta {
                pid,
                known: e.epoch != -1 || !e.batches.is_empty(),
                epoch: e.epoch,
                coordinator_epoch: e.coordinator_epoch,
                last_timestamp: e.last_timestamp,
                txn_first_offset: e.txn_first_offset,
                clear: false,
                entry_last_seq: e.last_seq(),
            },
            None => Delta {
                pid,
                known: false,
                epoch: -1,
                coordinator_epoch: -1,
                last_timestamp: -1,
                txn_first_offset: -1,
                clear: false,
                entry_last_seq: -1,
            },
        };
        self.deltas.push(d);
        self.deltas.len() - 1
    }

    fn last_seq(&self, i: usize) -> i32 {
        if let Some((_, b)) = self.batches.iter().rev().find(|(j, _)| *j == i) {
            return b.last_seq;
        }
        if self.deltas[i].clear {
            -1
        } else {
            self.deltas[i].entry_last_seq
        }
    }

    fn has_batches(&self, i: usize) -> bool {
        self.batches.iter().any(|(j, _)| *j == i)
    }
}

/// A producer's pending KIP-890 verification: the guard its coordinator check was started
/// with, the epoch it was started for, and when (guards expire with their producer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verifying {
    pub guard: u64,
    pub epoch: i16,
    pub started_ms: i64,
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot {
    pid: i64,
    entry: ProducerEntry,
    prev: u32,
    next: u32,
}

/// Producers in a dense slab with an intrusive LRU list (head = least recently used), so
/// touching and evicting are O(1). The hash index holds only slot numbers (4 bytes per
/// producer plus a control byte) and compares producer ids in the slab.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
}

impl Producers {
    fn new() -> Self {
        Producers {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
    fn slot_of(&self, pid: i64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(pid), |&i| slots[i as usize].pid == pid)
            .copied()
    }
    pub(crate) fn get(&self, pid: i64) -> Option<&ProducerEntry> {
        self.slot_of(pid).map(|i| &self.slots[i as usize].entry)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.slots.iter().map(|s| (s.pid, &s.entry))
    }
    /// Producers from least to most recently used.
    pub(crate) fn iter_lru(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        let mut i = self.head;
        std::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some((s.pid, &s.entry))
        })
    }
    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.slots[i as usize].prev, self.slots[i as usize].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }
    fn push_back(&mut self, i: u32) {
        self.slots[i as usize].prev = self.tail;
        self.slots[i as usize].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.slots[self.tail as usize].next = i;
        }
        self.tail = i;
    }
    /// Inserts or replaces, marking the producer most recently used.
    fn put(&mut self, pid: i64, entry: ProducerEntry) {
        if let Some(i) = self.slot_of(pid) {
            self.slots[i as usize].entry = entry;
            if self.tail != i {
                self.unlink(i);
                self.push_back(i);
            }
            return;
        }
        let i = self.slots.len() as u32;
        if self.slots.len() == self.slots.capacity() {
            // Grow by an eighth rather than doubling: a slot is 120 bytes, and a doubled slab
            // would leave up to half of it unused for as long as the producers are remembered.
            self.slots.reserve_exact((self.slots.len() / 8).max(64));
        }
        self.slots.push(Slot {
            pid,
            entry,
            prev: NIL,
            next: NIL,
        });
        let Producers {
            index, hasher, slots, ..
        } = self;
        index.insert_unique(hasher.hash_one(pid), i, |&j| {
            hasher.hash_one(slots[j as usize].pid)
        });
        self.push_back(i);
    }
    /// The entry, marked most recently used.
    fn get_mut_touch(&mut self, pid: i64) -> Option<&mut ProducerEntry> {
        let i = self.slot_of(pid)?;
        if self.tail != i {
            self.unlink(i);
            self.push_back(i);
        }
        Some(&mut self.slots[i as usize].entry)
    }

    fn remove(&mut self, pid: i64) -> Option<ProducerEntry> {
        let i = {
            let slots = &self.slots;
            let found = self
                .index
                .find_entry(self.hasher.hash_one(pid), |&i| slots[i as usize].pid == pid);
            found.ok()?.remove().0
        };
        self.unlink(i);
        let last = self.slots.len() as u32 - 1;
        if i != last {
            // The last slot moves into the hole: point its neighbours (and the index) at `i`.
            let (prev, next, moved) = {
                let s = &self.slots[last as usize];
                (s.prev, s.next, s.pid)
            };
            if prev == NIL {
                self.head = i;
            } else {
                self.slots[prev as usize].next = i;
            }
            if next == NIL {
                self.tail = i;
            } else {
                self.slots[next as usize].prev = i;
            }
            self.slots.swap(i as usize, last as usize);
            if let Some(v) = self.index.find_mut(self.hasher.hash_one(moved), |&j| j == last) {
                *v = i;
            }
        }
        self.slots.pop().map(|s| s.entry)
    }
    /// The least recently used producer without an open transaction.
    fn lru_idle(&self) -> Option<i64> {
        let mut i = self.head;
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.entry.txn_first_offset < 0 {
                return Some(s.pid);
            }
            i = s.next;
        }
        None
    }
    fn clear(&mut self) {
        *self = Producers::new();
    }
    /// Room for `additional` more producers, allocated once (a snapshot load knows its count:
    /// growing by an eighth at a time would copy the slab dozens of times).
    fn reserve(&mut self, additional: usize) {
        self.slots.reserve_exact(additional);
        let Producers {
            index, hasher, slots, ..
        } = self;
        index.reserve(additional, |&j| hasher.hash_one(slots[j as usize].pid));
    }
}

/// Settings of the producer-state manager.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerConfig {
    pub window: usize,
    pub expiration_ms: i64,
    pub max_producer_ids: usize,
}

/// Result of the duplicate check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Duplicate {
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// A producer as `DescribeProducers` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: ProducerId,
    /// Current epoch.
    pub producer_epoch: ProducerEpoch,
    /// Last sequence written (-1 if none).
    pub last_sequence: Sequence,
    /// Last timestamp (the last data batch's max timestamp or the last marker's).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker (-1 if none).
    pub coordinator_epoch: CoordinatorEpoch,
    /// First offset of the open transaction, if any.
    pub current_txn_start_offset: Option<Offset>,
}

/// The producer-state manager of one partition.
#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    pub producers: Producers,
    /// Open transactions: first offset -> producer id.
    pub ongoing: BTreeMap<i64, i64>,
    /// Completed transactions whose marker is not yet below the high watermark:
    /// first offset -> marker offset, and the reverse.
    unreplicated_by_first: BTreeMap<i64, i64>,
    unreplicated_by_last: BTreeMap<i64, i64>,
    /// The offset up to which the state reflects the log (exclusive).
    pub map_end_offset: i64,
    pub config: ProducerConfig,
    pub evictions: u64,
    pub expired: u64,
    /// Producers with a verification in progress (memory only; Kafka's
    /// `VerificationStateEntry`).
    verifications: std::collections::HashMap<i64, Verifying>,
    /// The last guard handed out (guards are unique within this log).
    last_guard: u64,
}

/// What [`ProducerStateManager::start_verification`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartVerification {
    /// The producer already has a transaction open here at that epoch: nothing to verify.
    Ongoing,
    /// Verify with the coordinator, then append with this guard.
    Guard(u64),
}

impl ProducerStateManager {
    pub(crate) fn new(config: ProducerConfig) -> Self {
        ProducerStateManager {
            verifications: std::collections::HashMap::new(),
            last_guard: 0,
            producers: Producers::new(),
            ongoing: BTreeMap::new(),
            unreplicated_by_first: BTreeMap::new(),
            unreplicated_by_last: BTreeMap::new(),
            map_end_offset: 0,
            config,
            evictions: 0,
            expired: 0,
        }
    }

    /// Starts (or joins) a KIP-890 verification for `producer_id` at `epoch`: the guard an
    /// append must carry to open a transaction here. An entry already started is reused, so
    /// concurrent requests of one producer share a guard (Kafka's rule); a newer epoch takes
    /// the entry over.
    pub(crate) fn start_verification(
        &mut self,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> StartVerification {
        if self
            .producers
            .get(producer_id)
            .is_some_and(|e| e.txn_first_offset >= 0 && e.epoch == epoch)
        {
            return StartVerification::Ongoing;
        }
        if let Some(v) = self.verifications.get_mut(&producer_id) {
            v.epoch = v.epoch.max(epoch);
            v.started_ms = now_ms;
            return StartVerification::Guard(v.guard);
        }
        self.last_guard += 1;
        let guard = self.last_guard;
        self.verifications.insert(
            producer_id,
            Verifying {
                guard,
                epoch,
                started_ms: now_ms,
            },
        );
        StartVerification::Guard(guard)
    }

    /// Forgets everything (before a reload or a full truncation).
    pub(crate) fn clear(&mut self, map_end_offset: i64) {
        self.verifications.clear();
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated_by_first.clear();
        self.unreplicated_by_last.clear();
        self.map_end_offset = map_end_offset;
    }

    /// Checks a data batch against the producer's state (and what earlier batches of the same
    /// append changed) and records it in `pending`. For client appends, a batch whose epoch and
    /// exact sequence range match a cached batch is a duplicate (Kafka's dedup check), returned
    /// as `Ok(Some(..))` without recording anything.
    pub(crate) fn check_data(
        &self,
        pending: &mut PendingAppend,
        b: &ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<Option<Duplicate>, Rejection> {
        let current = self.producers.get(b.producer_id);
        if origin == AppendOrigin::Client {
            if let Some(e) = current.filter(|e| e.epoch == b.epoch) {
                if let Some(m) = e.batches.find(b.first_seq, b.last_seq) {
                    return Ok(Some(Duplicate {
                        first_offset: m.first_offset(),
                        last_offset: m.last_offset,
                        timestamp: m.timestamp,
                    }));
                }
            }
        }
        let i = pending.delta(b.producer_id, current);
        let u = pending.deltas[i];
        let pid = ProducerId(b.producer_id);
        if b.epoch < u.epoch {
            if origin != AppendOrigin::Replication {
                return Err(Rejection::InvalidProducerEpoch {
                    producer_id: pid,
                    current: ProducerEpoch(u.epoch),
                    got: ProducerEpoch(b.epoch),
                });
            }
            tracing::warn!(
                producer_id = b.producer_id,
                epoch = b.epoch,
                current = u.epoch,
                "replicated batch with an older epoch accepted"
            );
        }
        if origin == AppendOrigin::Client {
            if b.epoch != u.epoch {
                if b.first_seq != 0 && u.epoch != -1 {
                    return Err(Rejection::OutOfOrderSequence {
                        producer_id: pid,
                        expected: Sequence(0),
                        got: Sequence(b.first_seq),
                    });
                }
            } else {
                let known = u.known || pending.has_batches(i);
                let last = pending.last_seq(i);
                if known && !in_sequence(last, b.first_seq) {
                    return Err(Rejection::OutOfOrderSequence {
                        producer_id: pid,
                        expected: Sequence(crate::types::increment_sequence(last.max(-1), 1).max(0)),
                        got: Sequence(b.first_seq),
                    });
                }
            }
        }
        if u.txn_first_offset >= 0 && !b.is_transactional && origin != AppendOrigin::Replication {
            return Err(Rejection::InvalidTxnState { producer_id: pid });
        }
        // KIP-890: a batch that would open a transaction here needs the guard handed out
        // for this producer since the last batch or marker it applied.
        if let Some(guard) = pending.verify {
            let opens = b.is_transactional && !(u.txn_first_offset >= 0 && u.epoch == b.epoch);
            let verified = guard != 0
                && self
                    .verifications
                    .get(&b.producer_id)
                    .is_some_and(|v| v.guard == guard);
            if opens && origin != AppendOrigin::Replication && !verified {
                return Err(Rejection::NotVerified { producer_id: pid });
            }
        }
        let d = &mut pending.deltas[i];
        if b.epoch != d.epoch {
            d.clear = true;
            d.epoch = b.epoch;
            pending.batches.retain(|(j, _)| *j != i);
        }
        d.last_timestamp = b.max_timestamp;
        if b.is_transactional && d.txn_first_offset < 0 {
            d.txn_first_offset = b.first_offset;
            pending.new_txns.push((b.first_offset, b.producer_id));
        }
        let delta = i32::try_from(b.last_offset - b.first_offset).unwrap_or(i32::MAX);
        pending.batches.push((
            i,
            BatchMeta {
                last_seq: b.last_seq,
                offset_delta: delta,
                last_offset: b.last_offset,
                timestamp: b.max_timestamp,
            },
        ));
        Ok(None)
    }

    /// Checks an end-transaction marker against the producer's state and records it.
    #[expect(clippy::too_many_arguments, reason = "mirrors the marker's fields")]
    pub(crate) fn check_marker(
        &self,
        pending: &mut PendingAppend,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        aborted: bool,
        offset: i64,
        timestamp: i64,
        origin: AppendOrigin,
    ) -> Result<(), Rejection> {
        let i = pending.delta(producer_id, self.producers.get(producer_id));
        let u = pending.deltas[i];
        let pid = ProducerId(producer_id);
        if epoch < u.epoch {
            if origin != AppendOrigin::Replication {
                return Err(Rejection::InvalidProducerEpoch {
                    producer_id: pid,
                    current: ProducerEpoch(u.epoch),
                    got: ProducerEpoch(epoch),
                });
            }
            tracing::warn!(
                producer_id,
                epoch,
                current = u.epoch,
                "replicated marker with an older epoch accepted"
            );
        }
        if u.coordinator_epoch > coordinator_epoch {
            if origin != AppendOrigin::Replication {
                return Err(Rejection::CoordinatorFenced {
                    producer_id: pid,
                    current: CoordinatorEpoch(u.coordinator_epoch),
                    got: CoordinatorEpoch(coordinator_epoch),
                });
            }
            tracing::warn!(
                producer_id,
                coordinator_epoch,
                current = u.coordinator_epoch,
                "replicated marker with an older coordinator epoch accepted"
            );
        }
        if u.txn_first_offset >= 0 {
            pending.completed.push(CompletedTxn {
                producer_id,
                first_offset: u.txn_first_offset,
                last_offset: offset,
                aborted,
            });
        }
        let d = &mut pending.deltas[i];
        if epoch != d.epoch {
            if d.epoch >= 0 {
                tracing::info!(
                    producer_id,
                    from = d.epoch,
                    to = epoch,
                    "marker bumped the producer epoch (fencing)"
                );
            }
            d.clear = true;
            d.epoch = epoch;
            pending.batches.retain(|(j, _)| *j != i);
        }
        d.known = true;
        d.coordinator_epoch = coordinator_epoch;
        d.txn_first_offset = -1;
        d.last_timestamp = timestamp;
        Ok(())
    }

    /// Applies a checked append after its bytes were written. Returns the completed
    /// transactions with the LSO to record for each (Kafka's `lastStableOffset(completedTxn)`).
    pub(crate) fn apply(&mut self, pending: &mut PendingAppend, end_offset: i64) -> Vec<(CompletedTxn, i64)> {
        let window = self.config.window;
        for (i, d) in pending.deltas.iter().enumerate() {
            // Any batch or marker applied for the producer ends its verification: a guard
            // handed out before a marker cannot open the next transaction (the ABA case).
            self.verifications.remove(&d.pid);
            let entry = match self.producers.get_mut_touch(d.pid) {
                Some(e) => e,
                None => {
                    self.make_room();
                    self.producers.put(d.pid, ProducerEntry::empty());
                    match self.producers.get_mut_touch(d.pid) {
                        Some(e) => e,
                        None => continue,
                    }
                }
            };
            if d.clear {
                entry.batches.clear();
            }
            entry.epoch = d.epoch;
            entry.coordinator_epoch = d.coordinator_epoch;
            entry.last_timestamp = d.last_timestamp;
            entry.txn_first_offset = d.txn_first_offset;
            for (_, b) in pending.batches.iter().filter(|(j, _)| *j == i) {
                entry.batches.push(*b, window);
            }
        }
        for &(first, pid) in &pending.new_txns {
            self.ongoing.insert(first, pid);
        }
        let mut done = Vec::new();
        for c in pending.completed.drain(..) {
            let lso = self.lso_for_completed(&c);
            self.ongoing.remove(&c.first_offset);
            self.unreplicated_by_first.insert(c.first_offset, c.last_offset);
            self.unreplicated_by_last.insert(c.last_offset, c.first_offset);
            done.push((c, lso));
        }
        pending.clear();
        self.map_end_offset = self.map_end_offset.max(end_offset);
        done
    }

    /// The LSO when the marker was written: the first offset of the earliest transaction of
    /// another producer still open at the marker, else marker + 1. An append of several
    /// batches (replication, recovery) opens its transactions before it completes any, so a
    /// transaction that starts after the marker may be in `ongoing` already; it does not
    /// count. Kafka takes its first offset, which can exceed the marker: the follower's
    /// `.txnindex` then differs from the leader's, and the entry's LSO ends the scan for a
    /// fetch's aborted transactions too early, so a read_committed fetch misses a later
    /// aborted transaction that overlaps it.
    fn lso_for_completed(&self, c: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, &pid)| pid != c.producer_id)
            .map_or(c.last_offset + 1, |(&first, _)| first.min(c.last_offset + 1))
    }

    /// Evicts the least recently used idle producer when the cap is reached.
    fn make_room(&mut self) {
        if self.producers.len() < self.config.max_producer_ids {
            return;
        }
        if let Some(victim) = self.producers.lru_idle() {
            self.producers.remove(victim);
            self.evictions += 1;
            tracing::debug!(
                producer_id = victim,
                "evicted least recently used idle producer (max_producer_ids reached)"
            );
        } else {
            tracing::warn!(
                cap = self.config.max_producer_ids,
                "every producer has an open transaction; exceeding max_producer_ids"
            );
        }
    }

    /// Drops completed transactions whose marker is below `hw`.
    pub(crate) fn on_high_watermark(&mut self, hw: i64) {
        while let Some((&last, &first)) = self.unreplicated_by_last.first_key_value() {
            if last >= hw {
                break;
            }
            self.unreplicated_by_last.remove(&last);
            self.unreplicated_by_first.remove(&first);
        }
    }

    /// The earliest offset that is not yet decided or not yet replicated, if any.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        let a = self.ongoing.first_key_value().map(|(&k, _)| k);
        let b = self.unreplicated_by_first.first_key_value().map(|(&k, _)| k);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes producers with no open transaction whose last timestamp is at least
    /// `expiration_ms` old. Returns how many.
    pub(crate) fn remove_expired(&mut self, now_ms: i64) -> usize {
        let exp = self.config.expiration_ms;
        let victims: Vec<i64> = self
            .producers
            .iter()
            .filter(|(_, e)| e.txn_first_offset < 0 && now_ms - e.last_timestamp >= exp)
            .map(|(pid, _)| pid)
            .collect();
        for pid in &victims {
            self.producers.remove(*pid);
            tracing::debug!(producer_id = pid, "producer expired");
        }
        self.expired += victims.len() as u64;
        self.verifications.retain(|_, v| now_ms - v.started_ms < exp);
        victims.len()
    }

    pub(crate) fn describe(&self) -> Vec<ProducerInfo> {
        let mut v: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: ProducerId(pid),
                producer_epoch: ProducerEpoch(e.epoch),
                last_sequence: Sequence(e.last_seq()),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: CoordinatorEpoch(e.coordinator_epoch),
                current_txn_start_offset: (e.txn_first_offset >= 0).then_some(Offset(e.txn_first_offset)),
            })
            .collect();
        v.sort_by_key(|p| p.producer_id);
        v
    }

    /// The state to snapshot: the producers least recently used first (loading them in file
    /// order restores the LRU order the producer-id cap evicts by), and the completed
    /// transactions whose markers are not yet below the high watermark.
    pub(crate) fn snapshot(&self) -> ProducerSnapshot {
        let entries = self
            .producers
            .iter_lru()
            .map(|(pid, e)| SnapshotEntry {
                producer_id: pid,
                epoch: e.epoch,
                coordinator_epoch: e.coordinator_epoch,
                last_timestamp: e.last_timestamp,
                txn_first_offset: e.txn_first_offset,
                batches: e
                    .batches
                    .to_vec()
                    .into_iter()
                    .map(|b| SnapshotBatch {
                        last_seq: b.last_seq,
                        last_offset: b.last_offset,
                        offset_delta: b.offset_delta,
                        timestamp: b.timestamp,
                    })
                    .collect(),
            })
            .collect();
        let unreplicated = self
            .unreplicated_by_first
            .iter()
            .map(|(&first_offset, &last_offset)| UnreplicatedTxn {
                first_offset,
                last_offset,
            })
            .collect();
        ProducerSnapshot {
            entries,
            unreplicated,
        }
    }

    /// Replaces the state with a loaded snapshot (dropping any transaction the snapshot
    /// claims completed at or past its own end offset). Expiry is the caller's: the log
    /// expires producers once its state is built, whether from a snapshot or a replay.
    pub(crate) fn load(&mut self, snapshot: ProducerSnapshot, map_end_offset: i64) {
        self.clear(map_end_offset);
        for t in snapshot.unreplicated {
            if t.last_offset < map_end_offset {
                self.unreplicated_by_first.insert(t.first_offset, t.last_offset);
                self.unreplicated_by_last.insert(t.last_offset, t.first_offset);
            }
        }
        self.producers.reserve(snapshot.entries.len());
        for s in snapshot.entries {
            let window = self.config.window;
            let skip = s.batches.len().saturating_sub(window);
            let mut entry = ProducerEntry {
                epoch: s.epoch,
                coordinator_epoch: s.coordinator_epoch,
                last_timestamp: s.last_timestamp,
                txn_first_offset: s.txn_first_offset,
                batches: Window::default(),
            };
            for b in s.batches.into_iter().skip(skip) {
                entry.batches.push(
                    BatchMeta {
                        last_seq: b.last_seq,
                        offset_delta: b.offset_delta,
                        last_offset: b.last_offset,
                        timestamp: b.timestamp,
                    },
                    window,
                );
            }
            if entry.txn_first_offset >= 0 {
                self.ongoing.insert(entry.txn_first_offset, s.producer_id);
            }
            self.producers.put(s.producer_id, entry);
        }
    }

    /// The producer owning the earliest open transaction, with its last timestamp.
    pub(crate) fn oldest_open_txn(&self) -> Option<(i64, i64, i64)> {
        let (&first, &pid) = self.ongoing.first_key_value()?;
        let ts = self.producers.get(pid).map_or(-1, |e| e.last_timestamp);
        Some((pid, first, ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psm(window: usize, cap: usize) -> ProducerStateManager {
        ProducerStateManager::new(ProducerConfig {
            window,
            expiration_ms: 1000,
            max_producer_ids: cap,
        })
    }

    fn data(pid: i64, epoch: i16, seq: i32, n: i32, offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            epoch,
            first_seq: seq,
            last_seq: crate::types::increment_sequence(seq, n - 1),
            first_offset: offset,
            last_offset: offset + i64::from(n) - 1,
            max_timestamp: 10,
            is_transactional: false,
        }
    }

    /// The inline window answers exactly what a plain deque of the last `cap` batches
    /// answers, whatever the gaps between batches (consecutive, gapped, wrapped sequences,
    /// huge offset or time jumps that force the heap form).
    #[test]
    fn window_matches_a_deque() {
        use proptest::prelude::*;
        let batch = (0..6u8, 0..70_000i32, 1..3i64, -5..5i64, 0..4u8);
        proptest!(|(cap in prop_oneof![1..=6usize, Just(128usize)],
                    steps in proptest::collection::vec(batch, 1..40))| {
            let mut w = Window::default();
            let mut reference: VecDeque<BatchMeta> = VecDeque::new();
            let (mut seq, mut offset, mut ts) = (i32::MAX - 40, 0i64, 1_000i64);
            for (kind, delta, gap, dt, seq_jump) in steps {
                let offset_delta = if kind == 0 { delta } else { delta % 8 };
                seq = seq.wrapping_add(i32::from(seq_jump) * 1000);
                let first_seq = seq;
                let last_seq = crate::types::increment_sequence(first_seq, offset_delta);
                seq = crate::types::increment_sequence(last_seq, 1);
                offset += gap * if kind == 1 { 1 << 33 } else { 1 };
                let b = BatchMeta {
                    last_seq,
                    offset_delta,
                    last_offset: offset + i64::from(offset_delta),
                    timestamp: ts,
                };
                offset = b.last_offset + 1;
                ts += dt * if kind == 2 { 1 << 40 } else { 1 };
                w.push(b, cap);
                if reference.len() == cap {
                    reference.pop_front();
                }
                reference.push_back(b);
                prop_assert_eq!(w.len(), reference.len());
                prop_assert_eq!(w.last(), reference.back().copied());
                prop_assert_eq!(w.to_vec(), reference.iter().copied().collect::<Vec<_>>());
                for m in &reference {
                    prop_assert_eq!(w.find(m.first_seq(), m.last_seq), Some(*m));
                }
                prop_assert_eq!(w.find(seq, seq), None);
            }
        });
    }

    #[test]
    fn default_window_stays_inline_and_small() {
        let mut w = Window::default();
        for i in 0..20i64 {
            w.push(
                BatchMeta {
                    last_seq: i as i32 * 4 + 3,
                    offset_delta: 3,
                    last_offset: i * 10 + 3,
                    timestamp: 1_700_000_000_000 + i,
                },
                5,
            );
        }
        assert!(matches!(w, Window::Inline { .. }), "{w:?}");
        assert_eq!(w.len(), 5);
        assert!(
            std::mem::size_of::<Window>() <= 80,
            "{}",
            std::mem::size_of::<Window>()
        );
    }

    /// Checks and applies; a duplicate is reported as `Ok(Some(first offset))` and not applied.
    fn append(
        m: &mut ProducerStateManager,
        b: ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<Option<i64>, Rejection> {
        let mut p = PendingAppend::default();
        if let Some(d) = m.check_data(&mut p, &b, origin)? {
            return Ok(Some(d.first_offset));
        }
        m.apply(&mut p, b.last_offset + 1);
        Ok(None)
    }

    #[test]
    fn basic_id_mapping() {
        // PSMT.testBasicIdMapping
        let mut m = psm(5, 100);
        append(&mut m, data(1, 0, 0, 1, 0), AppendOrigin::Client).expect("s0");
        append(&mut m, data(1, 0, 1, 1, 1), AppendOrigin::Client).expect("s1");
        // Kafka's PSM calls a re-append of s1 out of order and leaves dedup to the log; eoslog
        // checks both in one lookup, so the client retry is recognised here.
        assert_eq!(
            append(&mut m, data(1, 0, 1, 1, 2), AppendOrigin::Client),
            Ok(Some(1))
        );
        assert!(matches!(
            append(&mut m, data(1, 0, 0, 2, 2), AppendOrigin::Client),
            Err(Rejection::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            append(&mut m, data(1, 0, 5, 1, 2), AppendOrigin::Client),
            Err(Rejection::OutOfOrderSequence { .. })
        ));
        append(&mut m, data(1, 1, 0, 1, 2), AppendOrigin::Client).expect("e1 s0");
        assert!(matches!(
            append(&mut m, data(1, 0, 0, 1, 3), AppendOrigin::Client),
            Err(Rejection::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn lru_eviction_keeps_links_consistent() {
        let mut m = psm(5, 3);
        for pid in 0..10 {
            append(&mut m, data(pid, 0, 0, 1, pid), AppendOrigin::Client).expect("append");
            assert!(m.producers.len() <= 3);
        }
        assert_eq!(m.evictions, 7);
        let mut kept: Vec<i64> = m.producers.iter().map(|(p, _)| p).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![7, 8, 9]);
        // Touch 7, add 10: 8 is now least recently used.
        append(&mut m, data(7, 0, 1, 1, 20), AppendOrigin::Client).expect("touch");
        append(&mut m, data(10, 0, 0, 1, 21), AppendOrigin::Client).expect("new");
        let mut kept: Vec<i64> = m.producers.iter().map(|(p, _)| p).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![7, 9, 10]);
        // The list visits every slot exactly once.
        let mut seen = 0;
        let mut i = m.producers.head;
        while i != NIL {
            seen += 1;
            i = m.producers.slots[i as usize].next;
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn eviction_skips_open_transactions() {
        let mut m = psm(5, 2);
        let mut t = data(1, 0, 0, 1, 0);
        t.is_transactional = true;
        append(&mut m, t, AppendOrigin::Client).expect("txn");
        append(&mut m, data(2, 0, 0, 1, 1), AppendOrigin::Client).expect("idle");
        append(&mut m, data(3, 0, 0, 1, 2), AppendOrigin::Client).expect("new");
        assert!(m.producers.get(1).is_some(), "producer with open txn survives");
        assert!(m.producers.get(2).is_none());
    }
}
