//! Coordinator counters: what an operator graphs (Kafka's transaction metrics) and what
//! the benches read.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the coordinator updates lock-free.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) started: AtomicU64,
    pub(crate) committed: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) markers_written: AtomicU64,
    pub(crate) markers_abandoned: AtomicU64,
    pub(crate) txn_log_appends: AtomicU64,
    pub(crate) completions: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) completion_us_sum: AtomicU64,
    pub(crate) completion_us_max: AtomicU64,
}

impl Counters {
    /// Records the time from an EndTxn's decision to its last marker.
    pub(crate) fn completion(&self, us: u64) {
        self.completions.fetch_add(1, Ordering::Relaxed);
        self.completion_us_sum.fetch_add(us, Ordering::Relaxed);
        self.completion_us_max.fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CoordinatorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CoordinatorStats {
            transactions_started: get(&self.started),
            transactions_committed: get(&self.committed),
            transactions_aborted: get(&self.aborted),
            transactions_timed_out: get(&self.timed_out),
            producers_fenced: get(&self.fenced),
            transactional_ids_expired: get(&self.expired),
            markers_written: get(&self.markers_written),
            markers_abandoned: get(&self.markers_abandoned),
            txn_log_appends: get(&self.txn_log_appends),
            completions: get(&self.completions),
            transactions_recovered: get(&self.recovered),
            completion_us_sum: get(&self.completion_us_sum),
            completion_us_max: get(&self.completion_us_max),
        }
    }
}

/// The transaction coordinator's counters since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoordinatorStats {
    /// Transactions begun (a first partition added).
    pub transactions_started: u64,
    /// Transactions committed (CompleteCommit written).
    pub transactions_committed: u64,
    /// Transactions aborted, by their producer, a fence or a timeout (CompleteAbort written).
    pub transactions_aborted: u64,
    /// Transactions aborted because they outlived their timeout.
    pub transactions_timed_out: u64,
    /// Producers fenced: by a new instance's InitProducerId or by a timeout.
    pub producers_fenced: u64,
    /// Transactional ids removed by `transactional.id.expiration.ms`.
    pub transactional_ids_expired: u64,
    /// COMMIT/ABORT markers written to partitions.
    pub markers_written: u64,
    /// Markers a partition refused (an epoch newer than the marker's): the transaction
    /// stays in its Prepare state until the store reopens.
    pub markers_abandoned: u64,
    /// Appends to `__transaction_state`.
    pub txn_log_appends: u64,
    /// Transactions whose markers were all written (the count behind the two timings).
    pub completions: u64,
    /// Transactions found decided but not completed when the store opened (a crash came
    /// between the decision and the last marker), completed by the open.
    pub transactions_recovered: u64,
    /// Sum, in microseconds, of the time from EndTxn's decision being durable to its last
    /// marker being durable.
    pub completion_us_sum: u64,
    /// The longest such time, in microseconds.
    pub completion_us_max: u64,
}
