//! What the coordinator does on a clock: abort transactions that outlived their timeout
//! (fencing their producer), and remove transactional ids idle past
//! `transactional.id.expiration.ms`.

use std::sync::atomic::Ordering;

use super::state::{Entry, Loaded, Transactions};
use super::txn_log;

/// Bytes a tombstone record adds to a batch beyond its key (length, attributes, deltas,
/// null value, header count: at most this many varint bytes).
const TOMBSTONE_OVERHEAD: usize = 24;
/// A batch's header.
const BATCH_HEADER: usize = crate::batch::HEADER_SIZE;

impl Transactions<'_> {
    /// Aborts every ongoing transaction older than its timeout, with an epoch bump that
    /// fences its producer (Kafka's `abortTimedOutTransactions`). Maintenance calls it every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`. Returns how many were
    /// aborted.
    pub fn abort_timed_out_transactions(&self) -> usize {
        let now = self.now();
        let mut aborted = 0;
        for index in 0..self.state().partitions.len() {
            let Ok(loaded) = self.loaded_index(index as i32) else {
                continue;
            };
            for (id, entry) in snapshot_ids(&loaded) {
                let mut m = entry.lock();
                if m.removed || !m.timed_out(now) {
                    continue;
                }
                tracing::info!(
                    target: "eoslog::coordinator",
                    transactional_id = &*id,
                    producer_id = m.producer_id,
                    epoch = m.producer_epoch,
                    timeout_ms = m.timeout_ms,
                    "transaction timed out"
                );
                if self
                    .fence_and_abort(&loaded, &id, &mut m, "transaction timeout")
                    .is_ok()
                {
                    self.state().stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    aborted += 1;
                }
            }
        }
        aborted
    }

    /// Removes every transactional id with no transaction whose last update is older than
    /// `transactional.id.expiration.ms`, writing tombstones in batches no larger than the
    /// partition's `max.message.bytes`. A producer still holding such an id is answered
    /// `INVALID_PRODUCER_ID_MAPPING` afterwards; its InitProducerId starts afresh. Returns
    /// how many were removed.
    pub fn expire_transactional_ids(&self) -> usize {
        let now = self.now();
        let expiration = self.store.config().transactional_id_expiration_ms;
        let mut removed = 0;
        for index in 0..self.state().partitions.len() {
            let Ok(loaded) = self.loaded_index(index as i32) else {
                continue;
            };
            let max_batch = usize::try_from(loaded.log.config().max_message_bytes).unwrap_or(usize::MAX);
            let candidates: Vec<_> = snapshot_ids(&loaded)
                .into_iter()
                .filter(|(_, e)| {
                    let m = e.lock();
                    !m.removed && m.expirable(now, expiration)
                })
                .collect();
            let mut batch = Vec::new();
            let mut size = BATCH_HEADER;
            for (id, entry) in candidates {
                let key = txn_log::encode_key(&id);
                let len = key.len() + TOMBSTONE_OVERHEAD;
                if !batch.is_empty() && size + len > max_batch {
                    removed += self.expire_batch(&loaded, std::mem::take(&mut batch), now, expiration);
                    size = BATCH_HEADER;
                }
                size += len;
                batch.push((id, entry, key));
            }
            if !batch.is_empty() {
                removed += self.expire_batch(&loaded, batch, now, expiration);
            }
        }
        self.state()
            .stats
            .expired
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Writes one batch of tombstones for ids still expirable (each held locked until its
    /// tombstone landed) and forgets them.
    fn expire_batch(
        &self,
        loaded: &Loaded,
        batch: Vec<(std::sync::Arc<str>, Entry, Vec<u8>)>,
        now: i64,
        expiration: i64,
    ) -> usize {
        let mut held = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        for (id, entry, key) in &batch {
            let m = entry.lock();
            if m.removed || !m.expirable(now, expiration) {
                continue; // used again since it was picked
            }
            held.push((id, m));
            records.push((key.clone(), None));
        }
        if records.is_empty() {
            return 0;
        }
        if let Err(e) = self.append_records(loaded, &records, None) {
            tracing::warn!(target: "eoslog::coordinator", error = %e, "transactional id expiry failed; retried next time");
            return 0;
        }
        let mut ids = loaded.ids.lock();
        for (id, m) in &mut held {
            m.removed = true;
            ids.remove(&***id);
            tracing::debug!(target: "eoslog::coordinator", transactional_id = &***id, "transactional id expired");
        }
        held.len()
    }
}

/// The ids of a partition and their entries, copied out so no map lock is held while an
/// entry is.
fn snapshot_ids(loaded: &Loaded) -> Vec<(std::sync::Arc<str>, Entry)> {
    loaded
        .ids
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
