//! Completing a decided transaction: a COMMIT or ABORT marker to every partition of it,
//! each made durable, then CompleteCommit/CompleteAbort in `__transaction_state`.
//!
//! Order of durable steps (a crash between any two is safe):
//! 1. PrepareCommit/PrepareAbort is durable (the decision; written by the caller);
//! 2. every marker is appended, then every marker is durable (fsyncs run in parallel and
//!    are shared with the partitions' other appends);
//! 3. CompleteCommit/CompleteAbort is appended.
//!
//! A crash before 3 leaves the id in its Prepare state; the next open writes every marker
//! again (a marker for a transaction already ended completes nothing at a partition) and
//! then step 3. A marker is durable before step 3 so that a power loss cannot leave a
//! partition without the marker of a transaction the coordinator considers complete. With
//! `eoslog.internal.durability=buffered` (one Kafka broker's durability) no step waits for
//! an fsync and the order guards against process crashes only.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::log::{AppendOutcome, Log, MarkerType, TxnMarker};
use crate::store::{StoreError, CONSUMER_OFFSETS_TOPIC};
use crate::types::{Offset, ProducerEpoch, ProducerId};

use super::metadata::TxnMetadata;
use super::state::{Loaded, Transactions};
use super::{TopicPartition, TxnState};

/// At most this many partitions' fsyncs are awaited in parallel.
const PARALLEL_SYNCS: usize = 8;

/// Why a transaction could not be completed now.
#[derive(Debug)]
enum Pending {
    /// A partition failed (storage): retried by maintenance.
    Retry,
    /// A partition refused the marker (its producer epoch or coordinator epoch is newer):
    /// Kafka leaves such a transaction to the next coordinator load.
    Abandoned,
}

impl Transactions<'_> {
    /// Writes the markers of `m`'s Prepare state and completes it. On failure the id stays
    /// in its Prepare state (requests answer `CONCURRENT_TRANSACTIONS`) and maintenance
    /// tries again.
    pub(crate) fn complete(&self, loaded: &Loaded, id: &str, m: &mut TxnMetadata) {
        debug_assert!(m.state.is_prepare(), "complete() of {:?}", m.state);
        if m.abandoned {
            return; // until the coordinator loads again
        }
        let started = Instant::now();
        match self.write_markers(loaded, m) {
            Ok(()) => {}
            Err(p) => {
                tracing::warn!(
                    target: "eoslog::coordinator",
                    transactional_id = id,
                    state = %m.state,
                    outcome = ?p,
                    remaining = m.pending_markers.as_ref().map_or(0, |s| s.len()),
                    "transaction markers not all written"
                );
                match p {
                    Pending::Retry => loaded.incomplete.store(true, Ordering::Release),
                    Pending::Abandoned => m.abandoned = true,
                }
                return;
            }
        }
        let t = m.prepare_complete(self.now());
        if let Err(e) = self.persist(loaded, id, m, &t) {
            tracing::warn!(
                target: "eoslog::coordinator",
                transactional_id = id,
                error = %e,
                "markers written but the completion was not; retried later"
            );
            loaded.incomplete.store(true, Ordering::Release);
            return;
        }
        let stats = &self.state().stats;
        let counter = if m.state == TxnState::CompleteCommit {
            &stats.committed
        } else {
            &stats.aborted
        };
        counter.fetch_add(1, Ordering::Relaxed);
        stats.completion(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        tracing::debug!(
            target: "eoslog::coordinator",
            transactional_id = id,
            state = %m.state,
            us = started.elapsed().as_micros() as u64,
            "transaction completed"
        );
    }

    /// Appends the marker to every partition of the transaction that lacks it, then waits
    /// until each is durable; the partitions that failed stay in `m.pending_markers`.
    fn write_markers(&self, loaded: &Loaded, m: &mut TxnMetadata) -> Result<(), Pending> {
        let marker = TxnMarker {
            producer_id: ProducerId(m.producer_id),
            producer_epoch: ProducerEpoch(m.producer_epoch),
            coordinator_epoch: loaded.epoch,
            marker: if m.state == TxnState::PrepareCommit {
                MarkerType::Commit
            } else {
                MarkerType::Abort
            },
            timestamp: Some(self.now()),
        };
        let targets = m.pending_markers.take().unwrap_or_else(|| m.partitions.clone());
        let mut remaining = std::collections::BTreeSet::new();
        let mut written: Vec<(TopicPartition, Arc<Log>, Offset)> = Vec::with_capacity(targets.len());
        let mut failed = None;
        for tp in targets {
            let outcome = if &*tp.topic == CONSUMER_OFFSETS_TOPIC {
                self.store.offsets().complete_transaction(tp.partition, &marker)
            } else {
                match self.store.partition(&tp.topic, tp.partition) {
                    Ok(log) => log
                        .write_marker(&marker)
                        .map(|o| (log, o))
                        .map_err(|e| e.to_string()),
                    Err(StoreError::UnknownTopic { .. } | StoreError::UnknownPartition { .. }) => {
                        // Deleted since it joined the transaction: nothing to mark.
                        continue;
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            match outcome {
                Ok((log, AppendOutcome::Appended(info) | AppendOutcome::Duplicate(info))) => {
                    self.state().stats.markers_written.fetch_add(1, Ordering::Relaxed);
                    written.push((tp, log, info.last_offset.next()));
                }
                Ok((_, AppendOutcome::Rejected(r))) => {
                    self.state()
                        .stats
                        .markers_abandoned
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        target: "eoslog::coordinator",
                        partition = %tp,
                        rejection = ?r,
                        "a partition refused a transaction marker; the transaction stays undecided there until the store reopens"
                    );
                    failed = Some(Pending::Abandoned);
                    remaining.insert(tp);
                }
                Err(e) => {
                    tracing::warn!(target: "eoslog::coordinator", partition = %tp, error = %e, "marker write failed");
                    failed.get_or_insert(Pending::Retry);
                    remaining.insert(tp);
                }
            }
        }
        let sync = self.store.config().internal_durability == crate::config::Durability::SyncEachAppend;
        let waited = if sync {
            wait_all_durable(&written)
        } else {
            vec![false; written.len()] // `buffered`: Kafka's single-broker durability
        };
        for (tp, not_durable) in written.iter().map(|(tp, ..)| tp).zip(waited) {
            if not_durable {
                failed.get_or_insert(Pending::Retry);
                remaining.insert(tp.clone());
            }
        }
        match failed {
            Some(p) => {
                m.pending_markers = Some(remaining);
                Err(p)
            }
            None => Ok(()),
        }
    }

    /// Completes every transaction left in a Prepare state (markers that could not be
    /// written before). Returns how many completed.
    pub(crate) fn complete_pending(&self) -> usize {
        let mut done = 0;
        for index in 0..self.state().partitions.len() {
            let Ok(loaded) = self.loaded_index(index as i32) else {
                continue;
            };
            if !loaded.incomplete.swap(false, Ordering::AcqRel) {
                continue;
            }
            let ids: Vec<_> = loaded
                .ids
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (id, entry) in ids {
                let mut m = entry.lock();
                if m.removed || !m.state.is_prepare() {
                    continue;
                }
                self.complete(&loaded, &id, &mut m);
                done += usize::from(m.state.is_complete());
            }
        }
        done
    }
}

/// Waits until every `(partition, log, end)` is durable, several logs at a time. Returns,
/// for each, whether its wait failed.
fn wait_all_durable(written: &[(TopicPartition, Arc<Log>, Offset)]) -> Vec<bool> {
    let wait = |(_, log, end): &(TopicPartition, Arc<Log>, Offset)| match log.wait_durable(*end) {
        Ok(durable) => durable < *end,
        Err(e) => {
            tracing::warn!(target: "eoslog::coordinator", dir = %log.dir().display(), error = %e, "marker fsync failed");
            true
        }
    };
    if written.len() <= 1 {
        return written.iter().map(wait).collect();
    }
    let chunk = written.len().div_ceil(PARALLEL_SYNCS);
    std::thread::scope(|s| {
        let handles: Vec<_> = written
            .chunks(chunk)
            .map(|part| {
                (
                    part.len(),
                    s.spawn(move || part.iter().map(wait).collect::<Vec<bool>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| h.join().unwrap_or_else(|_| vec![true; n]))
            .collect()
    })
}
