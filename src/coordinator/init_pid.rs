//! InitProducerId: a producer id for an idempotent producer, or a transactional id's
//! producer id and next epoch, fencing the previous holder of the id.

use std::sync::atomic::Ordering;

use super::error::CoordinatorError;
use super::metadata::{InitStep, TxnMetadata};
use super::state::{Loaded, Transactions};
use super::{ProducerIdAndEpoch, TxnState, TxnVersion};

/// The longest string a Kafka message field holds (an `int16` length).
pub(crate) const MAX_STRING: usize = i16::MAX as usize;

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
        self.check_request(id, TxnVersion::TV0)?;
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

    /// A new producer id from the store's allocator. Its failure (the block reservation
    /// could not be written) is `COORDINATOR_LOAD_IN_PROGRESS`, which clients retry, as in
    /// Kafka.
    pub(crate) fn allocate_producer_id(&self) -> Result<i64, CoordinatorError> {
        self.store.allocate_producer_id().map(|p| p.0).map_err(|e| {
            tracing::warn!(target: "eoslog::coordinator", error = %e, "producer id allocation failed");
            CoordinatorError::CoordinatorLoadInProgress
        })
    }

    /// Refuses a request whose transaction version is newer than the store's
    /// `transaction.version` (Kafka's clients only send what the cluster finalized) or
    /// whose transactional id cannot be stored (longer than a Kafka string).
    pub(crate) fn check_request(
        &self,
        transactional_id: &str,
        tv: TxnVersion,
    ) -> Result<(), CoordinatorError> {
        if transactional_id.is_empty() {
            return Err(CoordinatorError::InvalidRequest {
                reason: "empty transactional id",
            });
        }
        if transactional_id.len() > MAX_STRING {
            return Err(CoordinatorError::InvalidRequest {
                reason: "transactional id longer than 32767 bytes",
            });
        }
        if tv.0 > self.store.config().transaction_version {
            return Err(CoordinatorError::InvalidRequest {
                reason: "the request's transaction version is above the store's transaction.version",
            });
        }
        Ok(())
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
        let server_tv = TxnVersion(self.store.config().transaction_version);
        let persisted = m
            .prepare_forced_abort(server_tv, self.now(), || self.allocate_producer_id())
            .and_then(|t| self.persist(loaded, id, m, &t));
        if let Err(e) = persisted {
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
