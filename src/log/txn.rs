//! Transaction markers, forced aborts and the open transactions.

use std::sync::atomic::Ordering;

use crate::batch::{self, ControlType};
use crate::error::AppendError;

use crate::producer_state::{AppendOrigin, CompletedTxn};
use crate::txn_index::AbortedTxn;
use crate::types::{CoordinatorEpoch, Offset, ProducerEpoch, ProducerId};

use super::{AppendOptions, AppendOutcome, Log};

/// Kafka's `LATE_TRANSACTION_BUFFER_MS`.
pub(super) const LATE_TRANSACTION_BUFFER_MS: i64 = 5 * 60 * 1000;

/// COMMIT or ABORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// Commit the transaction.
    Commit,
    /// Abort the transaction.
    Abort,
}

/// A transaction marker as the coordinator sends it (WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer.
    pub producer_id: ProducerId,
    /// The producer epoch the coordinator writes with (a higher one fences the producer).
    pub producer_epoch: ProducerEpoch,
    /// The coordinator's epoch.
    pub coordinator_epoch: CoordinatorEpoch,
    /// COMMIT or ABORT.
    pub marker: MarkerType,
    /// The marker timestamp; `None` = the log's clock.
    pub timestamp: Option<i64>,
}

/// An open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTransaction {
    /// The producer.
    pub producer_id: ProducerId,
    /// Its epoch.
    pub producer_epoch: ProducerEpoch,
    /// First offset of the transaction.
    pub first_offset: Offset,
    /// The producer's last timestamp.
    pub last_timestamp: i64,
    /// Now minus the last timestamp.
    pub age_ms: i64,
    /// Kafka's "late" rule: older than `transaction.max.timeout.ms` + 5 minutes.
    pub is_late: bool,
}

impl Log {
    /// Open transactions in first-offset order.
    #[must_use]
    pub fn open_transactions(&self) -> Vec<OpenTransaction> {
        let now = self.clock.now_ms();
        let w = self.writer.lock();
        w.psm
            .ongoing
            .iter()
            .map(|(&first, &pid)| {
                let e = w.psm.producers.get(pid);
                let last_timestamp = e.map_or(-1, |e| e.last_timestamp);
                let age_ms = now.saturating_sub(last_timestamp);
                OpenTransaction {
                    producer_id: ProducerId(pid),
                    producer_epoch: ProducerEpoch(e.map_or(-1, |e| e.epoch)),
                    first_offset: Offset(first),
                    last_timestamp,
                    age_ms,
                    is_late: age_ms > self.config().transaction_max_timeout_ms + LATE_TRANSACTION_BUFFER_MS,
                }
            })
            .collect()
    }

    /// The transaction index: every aborted transaction still in the log.
    #[must_use]
    pub fn aborted_transactions(&self) -> Vec<AbortedTxn> {
        self.aborted.read().all().to_vec()
    }

    /// Writes a COMMIT or ABORT marker for a producer, as the transaction coordinator does.
    /// Fencing applies: an older producer epoch is `INVALID_PRODUCER_EPOCH`, an older
    /// coordinator epoch `TRANSACTION_COORDINATOR_FENCED`; a higher producer epoch bumps the
    /// producer's epoch (fencing a zombie). A marker for a producer with no open transaction
    /// is written but completes nothing.
    ///
    /// # Errors
    /// Storage failures; under [`Durability::SyncEachAppend`](crate::Durability::SyncEachAppend), a truncation before the
    /// marker's fsync ([`AppendError::TruncatedBeforeDurable`](crate::AppendError::TruncatedBeforeDurable)).
    pub fn write_marker(&self, marker: &TxnMarker) -> Result<AppendOutcome, AppendError> {
        let control = match marker.marker {
            MarkerType::Commit => ControlType::Commit,
            MarkerType::Abort => ControlType::Abort,
        };
        let bytes = batch::build_marker(
            control,
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch.0,
            marker.timestamp.unwrap_or_else(|| self.clock.now_ms()),
        );
        self.append(&bytes, AppendOrigin::Coordinator)
    }

    /// Aborts the open transaction of `producer_id` that began at `first_offset`, at the
    /// producer's current epoch and coordinator epoch: what `kafka-transactions.sh abort`
    /// does for a hanging transaction. The check and the marker happen under one hold of the
    /// writer lock, so if the producer completed that transaction meanwhile (and perhaps
    /// began another), nothing is written: `Ok(None)`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn abort_transaction(
        &self,
        producer_id: ProducerId,
        first_offset: Offset,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        self.abort_open(producer_id, first_offset, Fence::No)
    }

    /// Writes an ABORT marker for the transaction `(producer_id, first_offset)` if it is
    /// still open, checked under the same lock hold as the write. With [`Fence::Bump`] the
    /// marker carries the next producer epoch, fencing the producer: a zombie that
    /// continues the transaction gets `INVALID_PRODUCER_EPOCH` (Kafka's coordinator aborts a
    /// timed-out transaction the same way). At epoch `i16::MAX` there is no next epoch (Kafka
    /// moves such a producer to a new id first) and the marker keeps the current one.
    pub(super) fn abort_open(
        &self,
        producer_id: ProducerId,
        first_offset: Offset,
        fence: Fence,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        let w = self.writer.lock();
        let Some(e) = w
            .psm
            .producers
            .get(producer_id.0)
            .filter(|e| e.txn_first_offset >= 0 && e.txn_first_offset == first_offset.0)
        else {
            return Ok(None);
        };
        let epoch = match fence {
            Fence::No => e.epoch,
            Fence::Bump => e.epoch.checked_add(1).unwrap_or(e.epoch),
        };
        let bytes = batch::build_marker(
            ControlType::Abort,
            producer_id,
            ProducerEpoch(epoch),
            e.coordinator_epoch.max(0),
            self.clock.now_ms(),
        );
        self.appending.fetch_add(1, Ordering::AcqRel);
        let options = AppendOptions::new(AppendOrigin::Coordinator);
        let outcome = self.append_holding(w, &options, |w| self.append_locked(w, &bytes, &options))?;
        if matches!(outcome, AppendOutcome::Appended(_)) {
            self.stats.forced_aborts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                producer_id = producer_id.0,
                first_offset = first_offset.0,
                epoch,
                ?fence,
                "transaction aborted by force"
            );
        }
        Ok(Some(outcome))
    }
}

/// Whether a forced abort fences the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fence {
    /// The marker carries the producer's epoch.
    No,
    /// The marker carries the next epoch.
    Bump,
}

pub(super) fn aborted_entry(c: &CompletedTxn, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: c.producer_id,
        first_offset: c.first_offset,
        last_offset: c.last_offset,
        last_stable_offset: lso,
    }
}
