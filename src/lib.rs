//! # eoslog
//!
//! An embedded storage engine for Kafka partition logs with Kafka's exactly-once guarantees:
//! idempotent producers, transactions and read_committed reads, stored in Kafka's own on-disk
//! format, with no network code.
//!
//! **The model.** A [`Log`] is one partition directory of segments (`.log` files of Kafka
//! RecordBatch v2 bytes, with `.index`, `.timeindex` and `.txnindex` beside them). A broker
//! hands it the bytes of a produce request; the log validates them as Kafka's leader does,
//! checks the producer's epoch and sequence (answering a retried batch with its original
//! offsets instead of writing it twice), assigns offsets and stores the bytes unchanged
//! otherwise. A transaction coordinator writes COMMIT/ABORT markers with
//! [`Log::write_marker`]. Reads return whole batches, up to the high watermark or, for
//! read_committed, up to the last stable offset together with the aborted transactions in
//! the range, exactly as a Kafka fetch response carries them.
//!
//! ```
//! use eoslog::{
//!     AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig,
//!     MarkerType, NewRecord, Offset, ProducerEpoch, ProducerId, Sequence, TxnMarker,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path().join("orders-0"), LogConfig::default())?;
//!
//! // An idempotent producer's batch, and its retry.
//! let batch = BatchBuilder::idempotent(ProducerId(7), ProducerEpoch(0), Sequence(0))
//!     .build(&[NewRecord::value(1_700_000_000_000, b"hello")])?;
//! let first = log.append(&batch, AppendOrigin::Client)?;
//! let retry = log.append(&batch, AppendOrigin::Client)?;
//! assert!(matches!(first, AppendOutcome::Appended(_)));
//! assert!(matches!(retry, AppendOutcome::Duplicate(i) if i.first_offset == Offset(0)));
//!
//! // A transaction that aborts, then one that commits.
//! let pid = ProducerId(9);
//! for (seq, value, marker) in [(0, "lost", MarkerType::Abort), (1, "kept", MarkerType::Commit)] {
//!     let txn = BatchBuilder::transactional(pid, ProducerEpoch(0), Sequence(seq))
//!         .build(&[NewRecord::value(1_700_000_000_000, value.as_bytes())])?;
//!     log.append(&txn, AppendOrigin::Client)?;
//!     log.write_marker(&TxnMarker {
//!         producer_id: pid,
//!         producer_epoch: ProducerEpoch(0),
//!         coordinator_epoch: CoordinatorEpoch(0),
//!         marker,
//!         timestamp: None,
//!     })?;
//! }
//!
//! // read_committed sees "hello" and "kept", never "lost".
//! let (records, _) = log.read_records(Offset(0), 1 << 20, Isolation::ReadCommitted)?;
//! let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
//! assert_eq!(values, vec![b"hello".to_vec(), b"kept".to_vec()]);
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Durability.** [`Durability::Buffered`] (the default, as in Kafka) survives a process
//! crash but not a power loss until [`Log::flush`]; [`Durability::SyncEachAppend`] fsyncs
//! before an append returns, sharing one fsync among concurrent appenders. A producer with
//! several appends in flight appends buffered and acknowledges each once
//! [`Log::wait_durable`] returns an offset past it; those waits share fsyncs too. After any failed
//! write or fsync the log refuses writes ([`StorageError::Poisoned`]) until it is reopened,
//! which runs recovery. After an unclean shutdown, recovery re-validates every batch from the
//! recovery point, rebuilds the indexes and the transaction index, and truncates at the first
//! torn or corrupt batch; damage below the recovery point is reported, never truncated.
//!
//! **Derived files.** Indexes, transaction indexes and snapshots are derived from the
//! segments and never trusted blindly: one that is missing, short or inconsistent (checked
//! against checksums the log's checkpoint records) is rebuilt from the segment it derives
//! from on, and [`Log::verify`] reports it.
//!
//! **Other processes.** A `Log` holds an advisory lock on its directory; the contract is that
//! nothing else writes, truncates or deletes its files while it is open. Only the active
//! segment's `.index` and `.timeindex` are memory-mapped; if another process truncates one of
//! those two files anyway, the kernel kills the embedding process with SIGBUS (as with every
//! memory-mapped index, Kafka's included). Every other file is read with positional reads, so
//! damage there is an error the log reports or survives (a shortened inactive index makes its
//! lookups walk the segment instead), never a fault.
//!
//! **Cargo features.** `cli` (the `eoslog` binary), `gzip`, `snappy`, `lz4`, `zstd` (codecs
//! used when records must be decoded), all on by default; `internals` (test seams).
//!
//! **Format.** Byte-compatible with Kafka; see `docs/FORMAT.md` for every file and where
//! eoslog does better than Kafka while staying readable by it.
//!
//! **A store and its transaction coordinator.** A [`Store`] holds many partition logs in
//! Kafka's `topic-partition` layout and embeds Kafka's transaction coordinator
//! ([`Store::transactions`]) and consumer-offset manager ([`Store::offsets`]): a transaction
//! over several partitions commits or aborts as one, a restarted producer fences its
//! predecessor, a hung transaction times out, and consumer offsets commit with the
//! transaction. The coordinator's state lives in the internal topics `__transaction_state`
//! and `__consumer_offsets`, in Kafka's record schemas.
//!
//! ```
//! use eoslog::{
//!     BatchBuilder, Isolation, NewRecord, OffsetCommit, PartitionOffset, ProduceContext, Sequence, Store,
//!     StoreConfig, TopicPartition, TxnOffsetCommit, TxnVersion,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreConfig::default())?;
//! store.create_topic("out", 2, &[])?;
//! let txns = store.transactions();
//!
//! // A consume-transform-produce step: output to two partitions and the consumed offset,
//! // in one transaction (TV2: partitions join the transaction as they are written).
//! let p = txns.init_producer_id(Some("worker-1"), 60_000, None)?;
//! let ctx = ProduceContext { transactional_id: Some("worker-1"), tv: TxnVersion::TV2, ..Default::default() };
//! for partition in 0..2 {
//!     let batch = BatchBuilder::transactional(p.producer_id, p.producer_epoch, Sequence(0))
//!         .build(&[NewRecord::value(1_700_000_000_000, b"result")])?;
//!     store.produce("out", partition, &batch, &ctx)?;
//! }
//! let consumed = PartitionOffset { partition: TopicPartition::new("out", 0), offset: 42, leader_epoch: -1, metadata: None };
//! let commit = OffsetCommit { group_id: "app", generation_id: -1, member_id: "", group_instance_id: None, retention_ms: None, offsets: vec![consumed] };
//! for answer in store.offsets().txn_commit(&TxnOffsetCommit { transactional_id: "worker-1", producer: p, tv: TxnVersion::TV2, commit }) {
//!     answer?;
//! }
//! // Nothing is visible until the commit; then everything is.
//! let out0 = store.partition("out", 0)?;
//! assert!(out0.read_records(out0.log_start_offset(), 1 << 20, Isolation::ReadCommitted)?.0.is_empty());
//! let next = txns.end_txn("worker-1", p, true, TxnVersion::TV2)?; // the next epoch to use
//! assert_eq!(next.producer_epoch.0, p.producer_epoch.0 + 1);
//! assert_eq!(out0.read_records(out0.log_start_offset(), 1 << 20, Isolation::ReadCommitted)?.0.len(), 1);
//! let fetched = store.offsets().fetch("app", None, true)?;
//! assert_eq!(fetched[0].1.as_ref().map(|o| o.as_ref().map(|o| o.offset)).ok().flatten(), Some(42));
//! drop(out0);
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Compaction.** A log with `cleanup.policy=compact` keeps the latest record of each key,
//! at its original offset, when [`Log::clean`] runs (a [`Store`] runs it for the logs that
//! are due, its internal topics among them, from its maintenance or from cleaner threads
//! calling [`Store::run_cleaner`]). It is transaction-aware: aborted
//! data goes, a marker stays while data of its transaction does, tombstones and finished
//! markers go after `delete.retention.ms`, the last batch of every producer the log tracks
//! stays (emptied if need be) so its retries are still duplicates, and nothing at or above
//! the last stable offset is touched. A crash at any step leaves the old segments or the new
//! ones (`docs/FORMAT.md` §8).
//!
//! ```
//! use eoslog::{AppendOrigin, BatchBuilder, CleanerOptions, Isolation, Log, LogConfig, NewRecord, Offset};
//!
//! let dir = tempfile::tempdir()?;
//! let mut config = LogConfig::default();
//! config.set("cleanup.policy", "compact")?;
//! let log = Log::open(dir.path().join("table-0"), config)?;
//! for value in ["v1", "v2", "v3"] {
//!     let batch = BatchBuilder::new().build(&[NewRecord::key_value(1_700_000_000_000, b"k", value.as_bytes())])?;
//!     log.append(&batch, AppendOrigin::Client)?;
//! }
//! log.roll_segment()?; // the active segment is never cleaned
//! let report = log.clean(&CleanerOptions::default(), true)?.expect("cleaned");
//! assert_eq!((report.records_read, report.records_kept), (3, 1));
//! let (records, _) = log.read_records(log.log_start_offset(), 1 << 20, Isolation::ReadCommitted)?;
//! assert_eq!(records[0].offset, Offset(2));
//! assert_eq!(records[0].value.as_deref(), Some(&b"v3"[..]));
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Limitations.** Magic v0/v1 batches are refused. Tiered storage is not implemented. The
//! LRU bound on producer ids evicts only producers without an open transaction.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod codec;
mod compression;
mod config;
mod coordinator;
mod epoch_cache;
mod error;
mod fs;
mod index;
mod kafka;
mod log;
mod mmap;
mod producer_state;
mod segment;
mod snapshot;
mod stats;
mod store;
mod txn_index;
mod types;

pub use batch::{
    build_marker, crc32c, BatchBuilder, BatchIter, ControlType, Marker, NewRecord, Record, RecordBatch,
    RecordIter, Records, TimestampType, HEADER_SIZE, LOG_OVERHEAD, MARKER_BATCH_SIZE,
};
pub use compression::Compression;
pub use config::{CleanupPolicy, Durability, HighWatermarkMode, LogConfig, RollFsync, CONFIG_KEYS};
pub use coordinator::{
    decode_internal_record, partition_for, CommittedOffset, CoordinatorError, CoordinatorStats,
    FetchedOffset, GroupMember, GroupMemberMetadata, GroupMembership, GroupMetadataValue, GroupState,
    HangingTransaction, InternalRecord, InternalRecordError, ListFilter, OffsetCommit, Offsets,
    OffsetsExpiry, PartitionOffset, ProducerIdAndEpoch, TopicPartition, TransactionDescription,
    TransactionListing, TransactionStateValue, Transactions, TxnApi, TxnOffsetCommit, TxnState, TxnVersion,
};
pub use epoch_cache::EpochEntry;
pub use error::{
    AppendError, BatchError, ConfigError, Corruption, CorruptionDetail, FileKind, InvalidRecordReason,
    InvalidTimestampReason, OpenError, ReadError, RecordErrorKind, RecordRefusal, RefusedRecord,
    StorageError,
};
pub use fs::{Clock, FileSystem, ManualClock, StdFileSystem, StorageFile, SystemClock};
pub use kafka::KafkaError;
pub use log::{
    AbortedTransaction, AppendInfo, AppendOptions, AppendOutcome, CleanReport, Cleanability, CleanerOptions,
    FetchResult, FileSlice, Isolation, Log, LogOptions, MaintenanceReport, MarkerType, OpenTransaction,
    OwnedRecord, RecordStream, SegmentInfo, TxnMarker, Verification, VerificationGuard, CHECKPOINT_FILE,
    CLEANER_FILE, CLEAN_SHUTDOWN_FILE,
};
pub use producer_state::{AppendOrigin, ProducerInfo, Rejection};
pub use segment::{file_name, parse_file_name};
pub use stats::LogStats;
pub use store::{
    default_in_other_units, is_dynamic_default, is_list_config, CleanerPassReport, ConfigSource,
    DynamicScope, ProduceContext, ProduceError, Store, StoreConfig, StoreDefault, StoreError,
    StoreMaintenanceReport, TopicConfigEntry, TopicConfigOp, TopicInfo, CONSUMER_OFFSETS_TOPIC,
    DYNAMIC_CONFIGS_FILE, PRODUCER_IDS_FILE, STORE_FILE, TOPICS_DIR, TRANSACTION_STATE_TOPIC,
};
pub use txn_index::AbortedTxn;
pub use types::{CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};

/// Internal structures exposed for benches and tests behind the `internals` feature. Not a
/// stable API.
#[cfg(feature = "internals")]
pub mod internals {
    /// The in-memory aborted-transaction index that answers read_committed fetches.
    #[derive(Debug, Default)]
    pub struct AbortedIndex(crate::txn_index::AbortedIndex);

    impl AbortedIndex {
        /// Appends an entry (markers in increasing offset order).
        pub fn push(&mut self, e: crate::AbortedTxn) {
            self.0.push(e);
        }
        /// Entries overlapping `[fetch_offset, upper_bound)`, appended to `out`.
        pub fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<crate::AbortedTxn>) {
            self.0.collect(fetch_offset, upper_bound, out);
        }
    }

    /// The producer-state manager alone: the per-batch check and update of an append.
    #[derive(Debug)]
    pub struct ProducerState {
        psm: crate::producer_state::ProducerStateManager,
        pending: crate::producer_state::PendingAppend,
    }

    impl ProducerState {
        /// A manager with the dedup window and producer-id cap given (no expiry).
        #[must_use]
        pub fn new(window: usize, max_producer_ids: usize) -> Self {
            ProducerState {
                psm: crate::producer_state::ProducerStateManager::new(
                    crate::producer_state::ProducerConfig {
                        window,
                        expiration_ms: i64::MAX,
                        max_producer_ids,
                    },
                ),
                pending: crate::producer_state::PendingAppend::default(),
            }
        }

        /// Checks a client's idempotent batch and applies it as the log does after writing it.
        /// Returns `true` when it was accepted (not a duplicate, not rejected).
        pub fn append(
            &mut self,
            producer_id: i64,
            epoch: i16,
            first_seq: i32,
            records: i32,
            first_offset: i64,
            timestamp: i64,
        ) -> bool {
            let b = crate::producer_state::ProducerBatch {
                producer_id,
                epoch,
                first_seq,
                last_seq: crate::types::increment_sequence(first_seq, records - 1),
                first_offset,
                last_offset: first_offset + i64::from(records) - 1,
                max_timestamp: timestamp,
                is_transactional: false,
            };
            self.pending.clear();
            match self
                .psm
                .check_data(&mut self.pending, &b, crate::AppendOrigin::Client)
            {
                Ok(None) => {
                    self.psm.apply(&mut self.pending, b.last_offset + 1);
                    true
                }
                _ => false,
            }
        }

        /// Producers tracked.
        #[must_use]
        pub fn producers(&self) -> usize {
            self.psm.producers.len()
        }
    }
}

/// Decoders of eoslog's files, for tools and fuzzers.
pub mod decode {
    pub use crate::coordinator::offsets_codec::encode_group_value as encode_group_metadata;
    pub use crate::coordinator::offsets_codec::subscription_topics;
    pub use crate::snapshot::{
        decode as snapshot, encode as encode_snapshot, ProducerSnapshot, SnapshotBatch, SnapshotEntry,
        UnreplicatedTxn,
    };
}
