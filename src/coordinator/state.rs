//! The coordinator's state: one slot per `__transaction_state` partition holding its log,
//! its coordinator epoch and the metadata of every transactional id it owns; and the one
//! path by which a transition reaches the log ([`Transactions::persist`]).
//!
//! Locking: a request holds its partition's slot lock shared for its whole run (a reload
//! after a storage failure takes it exclusively, so no request straddles two loads), and
//! its transactional id's mutex while it validates, persists and applies a transition, so
//! a check and the write it guards happen under one hold. Different ids append
//! concurrently, so their transitions share the log's fsyncs (group commit). Marker
//! writes happen under the id's mutex too: a request that meets an id whose markers are
//! still being written waits instead of being told `CONCURRENT_TRANSACTIONS`; it gets that
//! answer only for a transaction whose markers could not be written (it stays in its
//! Prepare state until maintenance completes it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};

use crate::batch::{BatchBuilder, NewRecord};
use crate::config::Durability;
use crate::error::AppendError;
use crate::log::{AppendOptions, AppendOutcome, Log};
use crate::producer_state::AppendOrigin;
use crate::store::Store;
use crate::types::CoordinatorEpoch;

use super::error::CoordinatorError;
use super::metadata::{Transit, TxnMetadata};
use super::stats::Counters;
use super::txn_log;
use super::wire::partition_for;

/// A transactional id's metadata, locked while a request works on it.
pub(crate) type Entry = Arc<Mutex<TxnMetadata>>;

/// One loaded `__transaction_state` partition.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) index: i32,
    pub(crate) log: Arc<Log>,
    /// Carried by every marker this load writes, and stamped as the leader epoch of every
    /// record it appends: one more than the last epoch the log recorded.
    pub(crate) epoch: CoordinatorEpoch,
    pub(crate) ids: Mutex<HashMap<Arc<str>, Entry>>,
    /// Some transaction's markers could not all be written: maintenance completes it.
    pub(crate) incomplete: AtomicBool,
}

/// A `__transaction_state` partition's slot: `None` until loaded, and while reloading.
#[derive(Debug, Default)]
pub(crate) struct TxnPartition {
    pub(crate) slot: RwLock<Option<Loaded>>,
    /// A write to its log failed: maintenance reopens the log and loads it again.
    pub(crate) needs_reload: AtomicBool,
}

/// Everything the transaction coordinator keeps in a store.
#[derive(Debug)]
pub(crate) struct CoordinatorState {
    pub(crate) partitions: Vec<TxnPartition>,
    pub(crate) stats: Counters,
    pub(crate) next_timeout_sweep_ms: AtomicI64,
    pub(crate) next_expiry_sweep_ms: AtomicI64,
    /// When the next offsets-retention sweep is due (`offsets.retention.check.interval.ms`).
    pub(crate) next_offsets_sweep_ms: AtomicI64,
    pub(crate) closing: AtomicBool,
}

impl CoordinatorState {
    pub(crate) fn new(partitions: u32) -> Self {
        CoordinatorState {
            partitions: (0..partitions).map(|_| TxnPartition::default()).collect(),
            stats: Counters::default(),
            next_timeout_sweep_ms: AtomicI64::new(0),
            next_expiry_sweep_ms: AtomicI64::new(0),
            next_offsets_sweep_ms: AtomicI64::new(0),
            closing: AtomicBool::new(false),
        }
    }
}

/// The transaction coordinator of a store: `store.transactions()`.
#[derive(Debug, Clone, Copy)]
pub struct Transactions<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Transactions<'a> {
    pub(crate) fn state(&self) -> &'a CoordinatorState {
        &self.store.txn
    }

    pub(crate) fn now(&self) -> i64 {
        self.store.now_ms()
    }

    /// The `__transaction_state` partition that owns `transactional_id`.
    #[must_use]
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.store.config().txn_state_partitions)
    }

    /// The loaded partition that owns `transactional_id`, held shared.
    pub(crate) fn loaded(&self, transactional_id: &str) -> Result<LoadedGuard<'a>, CoordinatorError> {
        self.loaded_index(self.partition_for(transactional_id))
    }

    pub(crate) fn loaded_index(&self, index: i32) -> Result<LoadedGuard<'a>, CoordinatorError> {
        if self.state().closing.load(Ordering::Acquire) {
            return Err(CoordinatorError::NotCoordinator {
                reason: "the store is closing",
            });
        }
        let part = &self.state().partitions[index as usize];
        RwLockReadGuard::try_map(part.slot.read(), Option::as_ref).map_err(|_| {
            if part.needs_reload.load(Ordering::Acquire) {
                CoordinatorError::NotCoordinator {
                    reason: "the transaction log failed and is being reloaded",
                }
            } else {
                CoordinatorError::CoordinatorLoadInProgress
            }
        })
    }

    /// Runs `f` on `transactional_id`'s metadata under its mutex. `create` makes the
    /// metadata of an unknown id (InitProducerId); without it an unknown id is
    /// `INVALID_PRODUCER_ID_MAPPING`.
    pub(crate) fn with_id<R>(
        &self,
        loaded: &Loaded,
        transactional_id: &str,
        mut create: Option<&mut dyn FnMut() -> Result<TxnMetadata, CoordinatorError>>,
        f: impl FnOnce(&mut TxnMetadata) -> Result<R, CoordinatorError>,
    ) -> Result<R, CoordinatorError> {
        loop {
            let entry = {
                let mut ids = loaded.ids.lock();
                match ids.get(transactional_id) {
                    Some(e) => e.clone(),
                    None => match create.as_mut() {
                        Some(make) => {
                            let e = Arc::new(Mutex::new(make()?));
                            ids.insert(transactional_id.into(), e.clone());
                            e
                        }
                        None => return Err(CoordinatorError::InvalidProducerIdMapping),
                    },
                }
            };
            let mut m = entry.lock();
            if m.removed {
                continue; // expired after we found it: look again
            }
            return f(&mut m);
        }
    }

    /// The transaction-log value version this store writes: 1 (flexible) from transaction
    /// version 1 on, as Kafka 4.x.
    fn value_version(&self) -> i16 {
        i16::from(self.store.config().transaction_version >= 1)
    }

    /// Appends one transition of `transactional_id` to its partition's log (durably: the
    /// internal topics are synchronous) and, when it landed, applies it to `meta`.
    pub(crate) fn persist(
        &self,
        loaded: &Loaded,
        transactional_id: &str,
        meta: &mut TxnMetadata,
        t: &Transit,
    ) -> Result<(), CoordinatorError> {
        let value = txn_log::encode_value(&t.value, self.value_version()).map_err(|e| {
            CoordinatorError::UnknownServerError {
                reason: format!("transaction state of {transactional_id} cannot be written: {e:?}"),
            }
        })?;
        // A Complete state need not be durable before the answer: if it is lost, the next
        // load finds the Prepare state and writes the markers again, which complete nothing
        // where they already landed. It is durable before anything can depend on it: the
        // id's next record (fsynced) is written after it in the same file.
        let durability = if t.value.state.is_complete() {
            Some(Durability::Buffered)
        } else {
            None
        };
        self.append_records(
            loaded,
            &[(txn_log::encode_key(transactional_id), Some(value))],
            durability,
        )?;
        meta.apply(t);
        Ok(())
    }

    /// Appends records (key, value or tombstone) to a partition's log as one batch.
    pub(crate) fn append_records(
        &self,
        loaded: &Loaded,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        durability: Option<Durability>,
    ) -> Result<(), CoordinatorError> {
        let now = self.now();
        let recs: Vec<NewRecord<'_>> = records
            .iter()
            .map(|(k, v)| NewRecord {
                timestamp: now,
                key: Some(k),
                value: v.as_deref(),
                headers: Vec::new(),
            })
            .collect();
        let batch = BatchBuilder::new()
            .build(&recs)
            .map_err(|e| CoordinatorError::UnknownServerError {
                reason: format!("transaction log batch: {e}"),
            })?;
        let options = AppendOptions {
            leader_epoch: Some(loaded.epoch.0),
            durability,
            ..AppendOptions::new(AppendOrigin::Coordinator)
        };
        self.state().stats.txn_log_appends.fetch_add(1, Ordering::Relaxed);
        match loaded.log.append_with(&batch, &options) {
            Ok(AppendOutcome::Appended(_)) => Ok(()),
            Ok(other) => Err(CoordinatorError::UnknownServerError {
                reason: format!("transaction log append answered {other:?}"),
            }),
            Err(e @ (AppendError::MessageTooLarge { .. } | AppendError::RecordListTooLarge { .. })) => {
                Err(CoordinatorError::UnknownServerError {
                    reason: format!("transaction log record too large: {e}"),
                })
            }
            Err(e) => {
                tracing::error!(
                    target: "eoslog::coordinator",
                    partition = loaded.index,
                    error = %e,
                    "transaction log write failed; the partition reloads at the next maintenance"
                );
                self.state().partitions[loaded.index as usize]
                    .needs_reload
                    .store(true, Ordering::Release);
                Err(CoordinatorError::NotCoordinator {
                    reason: "the transaction log write failed",
                })
            }
        }
    }
}

/// A loaded partition held shared for the length of a request.
pub(crate) type LoadedGuard<'a> = MappedRwLockReadGuard<'a, Loaded>;
