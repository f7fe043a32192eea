//! Cheap counters and gauges of one log, for an embedder's metrics system.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::kafka::KafkaError;

/// Counters updated with relaxed atomics (statistics only; never used for control flow).
#[derive(Debug)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub appended_records: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejections: [AtomicU64; KafkaError::ALL.len()],
    pub markers: AtomicU64,
    pub aborted_transactions: AtomicU64,
    pub rolls: AtomicU64,
    pub recoveries: AtomicU64,
    pub truncated_bytes_on_recovery: AtomicU64,
    pub fsyncs: AtomicU64,
    pub forced_aborts: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        let zero = AtomicU64::default;
        Counters {
            appends: zero(),
            appended_bytes: zero(),
            appended_records: zero(),
            duplicates: zero(),
            rejections: std::array::from_fn(|_| zero()),
            markers: zero(),
            aborted_transactions: zero(),
            rolls: zero(),
            recoveries: zero(),
            truncated_bytes_on_recovery: zero(),
            fsyncs: zero(),
            forced_aborts: zero(),
        }
    }
}

impl Counters {
    pub(crate) fn reject(&self, e: KafkaError) {
        self.rejections[e as usize].fetch_add(1, Relaxed);
    }
}

/// A point-in-time copy of a log's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Appends that wrote data (including markers).
    pub appends: u64,
    /// Bytes written by appends.
    pub appended_bytes: u64,
    /// Records written.
    pub appended_records: u64,
    /// Retried batches answered from the dedup window.
    pub duplicates: u64,
    /// Rejected appends by Kafka error name (only non-zero counts).
    pub rejections: Vec<(&'static str, u64)>,
    /// COMMIT/ABORT markers written.
    pub markers: u64,
    /// Producers tracked now.
    pub producers: u64,
    /// Producers evicted by `eoslog.max.producer.ids`.
    pub producer_evictions: u64,
    /// Producers expired by `producer.id.expiration.ms`.
    pub producers_expired: u64,
    /// Transactions open now.
    pub open_transactions: u64,
    /// Age in ms of the oldest open transaction (now minus its producer's last timestamp), 0 if none.
    pub oldest_open_transaction_age_ms: i64,
    /// High watermark minus last stable offset.
    pub lso_lag: i64,
    /// Aborted transactions in the transaction index.
    pub aborted_transactions: u64,
    /// Transactions aborted by `abort_transaction` or the transaction timeout.
    pub forced_aborts: u64,
    /// Segment rolls.
    pub rolls: u64,
    /// Unclean-shutdown recoveries run at open.
    pub recoveries: u64,
    /// Bytes cut from torn or corrupt tails by recovery.
    pub truncated_bytes_on_recovery: u64,
    /// fsyncs of segment data.
    pub fsyncs: u64,
    /// Durable appends and `wait_durable` calls waiting right now for an fsync another
    /// caller is running (group commit's queue).
    pub durable_waiters: u64,
}
