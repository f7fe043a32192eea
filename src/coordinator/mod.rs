//! The embedded transaction coordinator and consumer-offset manager: what sits above one
//! partition in Kafka's exactly-once design, with no network code.
//!
//! * [`Transactions`] (`store.transactions()`): `transactional.id` → producer id and epoch,
//!   the transaction state machine persisted in `__transaction_state` with Kafka's record
//!   schemas, COMMIT/ABORT markers to every partition of a transaction, fencing, timeouts
//!   and expiry.
//! * [`Offsets`] (`store.offsets()`): committed consumer offsets in `__consumer_offsets`,
//!   with transactional commits kept pending until their transaction's marker lands.
//!
//! Both live in a [`crate::Store`]; their internal topics are ordinary partition logs of it.

mod describe;
mod end_txn;
mod error;
mod group_metadata;
mod groups;
mod init_pid;
mod load;
mod markers;
mod metadata;
mod offsets;
pub(crate) mod offsets_codec;
mod offsets_removal;
mod records;
mod state;
mod stats;
mod timers;
pub(crate) mod txn_log;
mod wire;

use std::fmt;
use std::sync::Arc;

pub use describe::{HangingTransaction, ListFilter, TransactionDescription, TransactionListing};
pub use error::{CoordinatorError, TxnApi};
pub use groups::{GroupMember, GroupMembership, GroupState};
pub use offsets::{CommittedOffset, FetchedOffset, OffsetCommit, Offsets, PartitionOffset, TxnOffsetCommit};
pub use offsets_removal::OffsetsExpiry;
pub use records::{
    decode_internal_record, GroupMemberMetadata, GroupMetadataValue, InternalRecord, InternalRecordError,
    TransactionStateValue,
};
pub use stats::CoordinatorStats;
pub use wire::partition_for;

pub(crate) use offsets::OffsetsState;
pub(crate) use state::CoordinatorState;
pub use state::Transactions;

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    #[must_use]
    pub fn new(topic: &str, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A transactional id's state (Kafka's `TransactionState`; the discriminant is the
/// `TransactionStatus` byte of `__transaction_state` records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i8)]
pub enum TxnState {
    /// No transaction: after InitProducerId, or a new id.
    Empty = 0,
    /// A transaction is open: partitions were added.
    Ongoing = 1,
    /// Decided to commit; markers are being written.
    PrepareCommit = 2,
    /// Decided to abort; markers are being written.
    PrepareAbort = 3,
    /// The last transaction committed.
    CompleteCommit = 4,
    /// The last transaction aborted.
    CompleteAbort = 5,
    /// Expired (never persisted: a tombstone removes the id).
    Dead = 6,
    /// Being fenced by a new producer instance (never persisted).
    PrepareEpochFence = 7,
}

impl TxnState {
    const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub(crate) fn from_id(id: i8) -> Option<TxnState> {
        usize::try_from(id).ok().and_then(|i| Self::ALL.get(i)).copied()
    }

    /// Whether records of `__transaction_state` ever hold this state.
    pub(crate) fn is_persisted(self) -> bool {
        !matches!(self, TxnState::Dead | TxnState::PrepareEpochFence)
    }

    /// Kafka's name (`kafka-transactions.sh` output).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Parses [`TxnState::name`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<TxnState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(crate) fn is_complete(self) -> bool {
        matches!(self, TxnState::CompleteCommit | TxnState::CompleteAbort)
    }

    fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The transaction protocol version of a request (Kafka's `transaction.version` feature):
/// 0 and 1 are the classic protocol (clients add partitions explicitly, the epoch stays
/// the same across transactions); 2 is KIP-890's (partitions added on produce, the epoch
/// bumped at every commit and abort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxnVersion(pub i16);

impl TxnVersion {
    /// Classic transactions.
    pub const TV0: TxnVersion = TxnVersion(0);
    /// Classic transactions, flexible `__transaction_state` values.
    pub const TV1: TxnVersion = TxnVersion(1);
    /// KIP-890 transactions.
    pub const TV2: TxnVersion = TxnVersion(2);

    /// Whether EndTxn bumps the producer epoch.
    #[must_use]
    pub fn bumps_epoch(self) -> bool {
        self.0 >= 2
    }
}

/// A producer id with its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdAndEpoch {
    /// The producer id.
    pub producer_id: crate::ProducerId,
    /// Its epoch.
    pub producer_epoch: crate::ProducerEpoch,
}

impl ProducerIdAndEpoch {
    /// `(producer_id, producer_epoch)`.
    #[must_use]
    pub fn new(producer_id: i64, producer_epoch: i16) -> Self {
        ProducerIdAndEpoch {
            producer_id: crate::ProducerId(producer_id),
            producer_epoch: crate::ProducerEpoch(producer_epoch),
        }
    }
}

impl fmt::Display for ProducerIdAndEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.producer_id.0, self.producer_epoch.0)
    }
}

/// An epoch at or above this is exhausted: the next bump moves to a new producer id.
pub(crate) const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;
