//! InitProducerId: a producer id for an idempotent producer, or a transactional id's
//! producer id and next epoch, fencing the previous holder of the id.

use std::sync::atomic::Ordering;

use super::error::CoordinatorError;
use super::metadata::{InitStep, TxnMetadata};
use super::state::{Loaded, Transactions};
use super::{ProducerIdAndEpoch, TxnState};

impl Transactions<'_> {
    /// Kafka's InitProducerId.
    ///
    /// * Without a transactional id: a new producer id at epoch 0 for an idempotent
    ///   producer (never one handed out before, across restarts); nothing is stored.
    /// * With one: the id's producer id and the next epoch, persisted. The first call for an
    ///   id allocates its producer id. A transaction the previous holder left open is
    ///   aborted at a bumped epoch first (fencing it: its batches and requests are refused
    ///   from then on), and the call answers [`CoordinatorError::ConcurrentTransactions`]:
    ///   retry, and the retry gets the epoch after the fence. When the epoch is exhausted
    ///   the id moves to a new producer id at epoch 0.
    /// * `expected` (KIP-360): a producer that already has an id and epoch gives them, so
    ///   that a retried request gets the same answer and a fenced one is refused.
    ///
    /// `timeout_ms` is the transaction timeout, `1..=transaction.max.timeout.ms`.
    ///
    /// # Errors
    /// `INVALID_REQUEST` (an empty id, or `expected` with only one of its fields set),
    /// `INVALID_TRANSACTION_TIMEOUT`, `PRODUCER_FENCED` (an `expected` identity that is
    /// neither the current one nor the one before the last bump),
    /// `CONCURRENT_TRANSACTIONS` (a transaction is being completed, or was just fenced),
    /// `COORDINATOR_LOAD_IN_PROGRESS` / `NOT_COORDINATOR`, storage failures.
    pub fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, CoordinatorError> {
        let expected = match expected {
            Some(e) if e.producer_id.0 == -1 && e.producer_epoch.0 == -1 => None,
            Some(e) if e.producer_id.0 == -1 || e.producer_epoch.0 == -1 => {
                return Err(CoordinatorError::InvalidRequest {
                    reason: "expected producer id and epoch must both be set or both be -1",
                })
            }
            e => e,
        };
        let Some(id) = transactional_id else {
            return Ok(ProducerIdAndEpoch::new(self.allocate_producer_id()?, 0));
        };
        if id.is_empty() {
            return Err(CoordinatorError::InvalidRequest {
                reason: "empty transactional id",
            });
        }
        let max = self.store.config().transaction_max_timeout_ms;
        if timeout_ms <= 0 || i64::from(timeout_ms) > max {
            return Err(CoordinatorError::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: max,
            });
        }
        let loaded = self.loaded(id)?;
        let now = self.now();
        let mut create = || {
            Ok(TxnMetadata::placeholder(
                self.allocate_producer_id()?,
                timeout_ms,
                now,
            ))
        };
        self.with_id(&loaded, id, Some(&mut create), |m| {
            match m.prepare_init(expected, timeout_ms, now, || self.allocate_producer_id())? {
                InitStep::Write(t) => {
                    self.persist(&loaded, id, m, &t)?;
                    tracing::debug!(
                        target: "eoslog::coordinator",
                        transactional_id = id,
                        producer = %m.identity(),
                        "producer id initialized"
                    );
                    Ok(m.identity())
                }
                InitStep::Fence => {
                    self.fence_and_abort(&loaded, id, m, "a new producer instance")?;
                    Err(CoordinatorError::ConcurrentTransactions)
                }
            }
        })
    }

    /// A new producer id from the store's allocator.
    pub(crate) fn allocate_producer_id(&self) -> Result<i64, CoordinatorError> {
        self.store
            .allocate_producer_id()
            .map(|p| p.0)
            .map_err(|e| match e {
                crate::StoreError::Storage(s) => CoordinatorError::Storage(s),
                other => CoordinatorError::UnknownServerError {
                    reason: other.to_string(),
                },
            })
    }

    /// Fences the producer of `m`'s ongoing transaction and aborts it: PrepareAbort at the
    /// bumped epoch, then markers at that epoch (which fence the producer at every
    /// partition), then CompleteAbort. If the PrepareAbort cannot be written, the next
    /// fence reuses the epoch instead of bumping again.
    pub(crate) fn fence_and_abort(
        &self,
        loaded: &Loaded,
        id: &str,
        m: &mut TxnMetadata,
        why: &'static str,
    ) -> Result<(), CoordinatorError> {
        debug_assert_eq!(m.state, TxnState::Ongoing);
        let before = m.producer_epoch;
        m.fence();
        let t = m.prepare_forced_abort(
            crate::coordinator::TxnVersion(self.store.config().transaction_version),
            self.now(),
        );
        if let Err(e) = self.persist(loaded, id, m, &t) {
            m.has_failed_epoch_fence = true;
            return Err(e);
        }
        self.state().stats.fenced.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "eoslog::coordinator",
            transactional_id = id,
            producer_id = m.producer_id,
            from_epoch = before,
            to_epoch = m.producer_epoch,
            why,
            "producer fenced; its transaction aborts"
        );
        self.complete(loaded, id, m);
        Ok(())
    }
}
