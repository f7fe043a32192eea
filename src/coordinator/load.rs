//! Loading a `__transaction_state` partition: replay its records (the last one of each
//! transactional id wins, a tombstone removes it), take the next coordinator epoch, and
//! complete every transaction left in a Prepare state before anyone is answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::{BatchIter, RecordBatch};
use crate::log::{Isolation, Log};
use crate::store::{StoreError, TRANSACTION_STATE_TOPIC};
use crate::types::{CoordinatorEpoch, Offset};

use super::metadata::TxnMetadata;
use super::state::{Loaded, Transactions};
use super::txn_log::{self, TxnKey};

/// Bytes read at a time while loading an internal partition (Kafka's
/// `transaction.state.log.load.buffer.size` default).
const LOAD_BUFFER: usize = 5 << 20;

/// Calls `f` with every batch of `log`, from its start to its end, and the offset after
/// it. `f` reports damage as a message, which becomes the load's error.
pub(crate) fn scan_batches(
    log: &Log,
    topic: &'static str,
    partition: i32,
    mut f: impl FnMut(&RecordBatch<'_>) -> Result<(), String>,
) -> Result<(), StoreError> {
    let mut at = log.log_start_offset();
    let end = log.log_end_offset();
    let damaged = |offset: i64, reason: String| StoreError::InternalRecord {
        topic,
        partition,
        offset,
        reason,
    };
    while at < end {
        let fetch = log
            .read(at, LOAD_BUFFER, Isolation::Replica)
            .map_err(|e| damaged(at.0, e.to_string()))?;
        let bytes = fetch.bytes()?;
        if bytes.is_empty() {
            break;
        }
        let mut next = at;
        for item in BatchIter::new(&bytes) {
            let (_, b) = item.map_err(|(_, e)| damaged(next.0, e.to_string()))?;
            if b.next_offset() <= at.0 {
                continue; // the first batch of a read may start before `at`
            }
            f(&b).map_err(|reason| damaged(b.base_offset(), reason))?;
            next = Offset(b.next_offset());
        }
        if next <= at {
            break;
        }
        at = next;
    }
    Ok(())
}

/// The transactional ids a partition's records describe.
fn replay(log: &Log, partition: i32) -> Result<HashMap<String, TxnMetadata>, StoreError> {
    let mut ids = HashMap::new();
    scan_batches(log, TRANSACTION_STATE_TOPIC, partition, |b| {
        if b.is_control() {
            return Ok(());
        }
        let records = b.records().map_err(|e| e.to_string())?;
        for r in records.iter() {
            let r = r.map_err(|e| e.to_string())?;
            let key = r.key.ok_or("record without a key")?;
            let id = match txn_log::decode_key(key).ok_or("unreadable key")? {
                TxnKey::Id(id) => id,
                TxnKey::Unknown(version) => {
                    tracing::warn!(
                        target: "eoslog::coordinator",
                        partition,
                        offset = r.offset,
                        version,
                        "skipping a record with an unknown key version"
                    );
                    continue;
                }
            };
            match r.value {
                None => {
                    ids.remove(&id);
                }
                Some(v) => {
                    let value =
                        txn_log::decode_value(v).map_err(|e| format!("transaction state of {id}: {e:?}"))?;
                    ids.insert(id, TxnMetadata::from_value(value));
                }
            }
        }
        Ok(())
    })?;
    Ok(ids)
}

impl Transactions<'_> {
    /// Loads `__transaction_state` partition `index` and completes its decided
    /// transactions; requests for its ids are answered from then on.
    pub(crate) fn load_partition(&self, index: i32) -> Result<(), StoreError> {
        let log = self.store.partition(TRANSACTION_STATE_TOPIC, index)?;
        let epoch = log.leader_epochs().last().map_or(-1, |e| e.epoch) + 1;
        let ids = replay(&log, index)?;
        let highest = ids
            .values()
            .map(|m| m.producer_id.max(m.previous_producer_id).max(m.next_producer_id))
            .max();
        if let Some(h) = highest {
            self.store.raise_producer_id_floor(h);
        }
        let loaded = Loaded {
            index,
            log,
            epoch: CoordinatorEpoch(epoch),
            ids: Mutex::new(
                ids.into_iter()
                    .map(|(k, m)| (Arc::<str>::from(k), Arc::new(Mutex::new(m))))
                    .collect(),
            ),
            incomplete: AtomicBool::new(false),
        };
        let part = &self.state().partitions[index as usize];
        // Cleared before completing: a completion that fails now sets it again.
        part.needs_reload.store(false, Ordering::Release);
        let decided: Vec<_> = loaded
            .ids
            .lock()
            .iter()
            .filter(|(_, m)| m.lock().state.is_prepare())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, entry) in &decided {
            let mut m = entry.lock();
            tracing::info!(
                target: "eoslog::coordinator",
                transactional_id = &**id,
                state = %m.state,
                "completing a transaction decided before the last shutdown"
            );
            self.complete(&loaded, id, &mut m);
            self.state().stats.recovered.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            target: "eoslog::coordinator",
            partition = index,
            coordinator_epoch = epoch,
            ids = loaded.ids.lock().len(),
            completed = decided.len(),
            "transaction state loaded"
        );
        *part.slot.write() = Some(loaded);
        Ok(())
    }

    /// Reloads every partition whose log failed a write: the log is reopened (recovery runs)
    /// and its state replayed at the next coordinator epoch. A partition that cannot reload
    /// now stays flagged for the next call. Returns how many reloaded, and how many failed.
    pub(crate) fn reload_failed(&self) -> (usize, usize) {
        let (mut done, mut failed) = (0, 0);
        for (index, part) in self.state().partitions.iter().enumerate() {
            if !part.needs_reload.load(Ordering::Acquire) {
                continue;
            }
            let mut slot = part.slot.write();
            slot.take();
            let reopened = self.store.reopen_partition(TRANSACTION_STATE_TOPIC, index as i32);
            drop(slot);
            match reopened.and_then(|_| self.load_partition(index as i32)) {
                Ok(()) => done += 1,
                Err(e) => {
                    part.needs_reload.store(true, Ordering::Release);
                    tracing::error!(
                        target: "eoslog::coordinator",
                        partition = index,
                        error = %e,
                        "reloading the transaction log failed; retried at the next maintenance"
                    );
                    failed += 1;
                }
            }
        }
        (done, failed)
    }
}
