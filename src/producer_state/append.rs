//! Checking an append against producer state and applying it: the pending working copy
//! ([`PendingAppend`]) that data batches and markers are checked into before anything is
//! written, and its application (with LRU eviction) once the write succeeded.

use crate::types::{in_sequence, CoordinatorEpoch, ProducerEpoch, ProducerId, Sequence};

use super::{
    AppendOrigin, BatchMeta, CompletedTxn, Duplicate, ProducerBatch, ProducerEntry, ProducerStateManager,
    Rejection,
};

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

impl ProducerStateManager {
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

    /// Evicts least recently used idle producers until one more fits under the cap (more
    /// than one only after the cap was lowered: `Log::set_config`).
    fn make_room(&mut self) {
        while self.producers.len() >= self.config.max_producer_ids {
            let Some(victim) = self.producers.lru_idle() else {
                break;
            };
            self.producers.remove(victim);
            self.evictions += 1;
            tracing::debug!(
                producer_id = victim,
                "evicted least recently used idle producer (max_producer_ids reached)"
            );
        }
        if self.producers.len() >= self.config.max_producer_ids {
            tracing::warn!(
                cap = self.config.max_producer_ids,
                "every producer has an open transaction; exceeding max_producer_ids"
            );
        }
    }
}
