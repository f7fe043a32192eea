//! What coordinator requests answer when they do not succeed, with Kafka's code for each
//! and the rewrites older request versions expect.

use thiserror::Error;

use crate::error::StorageError;
use crate::kafka::KafkaError;

use super::TxnState;

/// Why a transaction-coordinator or offsets request was refused. Every variant maps to
/// Kafka's error code ([`CoordinatorError::kafka_error`]); a broker that answers an older
/// request version rewrites it with [`CoordinatorError::code_for`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// Another transition of this transactional id is in progress (markers not all written
    /// yet): retry (`CONCURRENT_TRANSACTIONS`, 51).
    #[error("a transition of this transactional id is in progress; retry")]
    ConcurrentTransactions,
    /// The request does not fit the transaction's state (`INVALID_TXN_STATE`, 48).
    #[error("request {request} is invalid in state {state}")]
    InvalidTxnState {
        /// The state found.
        state: TxnState,
        /// What was asked.
        request: &'static str,
    },
    /// A transactional write would open a transaction at a partition that its
    /// coordinator did not add to the producer's transaction, or whose check a marker
    /// voided (KIP-890's verification; `INVALID_TXN_STATE`, 48).
    #[error("the partition is not part of the producer's ongoing transaction")]
    NotInTransaction,
    /// A newer producer instance holds the transactional id (`PRODUCER_FENCED`, 90).
    #[error("producer fenced: epoch {got} is not the current epoch {current}")]
    ProducerFenced {
        /// The current epoch.
        current: i16,
        /// The request's epoch.
        got: i16,
    },
    /// The producer id is not the one the transactional id maps to, or the id is unknown
    /// (`INVALID_PRODUCER_ID_MAPPING`, 49).
    #[error("the producer id is not the one this transactional id maps to")]
    InvalidProducerIdMapping,
    /// A transaction timeout outside `1..=transaction.max.timeout.ms`
    /// (`INVALID_TRANSACTION_TIMEOUT`, 50).
    #[error("transaction timeout {timeout_ms} ms is outside 1..={max_ms}")]
    InvalidTransactionTimeout {
        /// The timeout asked for.
        timeout_ms: i32,
        /// `transaction.max.timeout.ms`.
        max_ms: i64,
    },
    /// A malformed request (`INVALID_REQUEST`, 42).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: &'static str,
    },
    /// The coordinator's partition is loading (`COORDINATOR_LOAD_IN_PROGRESS`, 14).
    #[error("the coordinator is loading its state")]
    CoordinatorLoadInProgress,
    /// The coordinator could not persist a transition it may retry
    /// (`COORDINATOR_NOT_AVAILABLE`, 15).
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    /// The coordinator's partition failed and is being reloaded, or the store is closing
    /// (`NOT_COORDINATOR`, 16).
    #[error("not the coordinator: {reason}")]
    NotCoordinator {
        /// Why.
        reason: &'static str,
    },
    /// The partition is not part of the producer's transaction
    /// (`TRANSACTION_ABORTABLE`, 120; `INVALID_TXN_STATE` for older requests).
    #[error("partition is not part of the ongoing transaction; abort it")]
    TransactionAbortable,
    /// No such topic or partition (`UNKNOWN_TOPIC_OR_PARTITION`, 3).
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Not attempted because another part of the request failed (`OPERATION_NOT_ATTEMPTED`, 55).
    #[error("not attempted: another part of the request failed")]
    OperationNotAttempted,
    /// An internal inconsistency (`UNKNOWN_SERVER_ERROR`, -1).
    #[error("unexpected coordinator error: {reason}")]
    UnknownServerError {
        /// What went wrong.
        reason: String,
    },
    /// No such transactional id (`TRANSACTIONAL_ID_NOT_FOUND`, 105).
    #[error("transactional id not found")]
    TransactionalIdNotFound,
    /// The group's generation is not the committer's (`ILLEGAL_GENERATION`, 22).
    #[error("generation {got} is not the group's generation {current}")]
    IllegalGeneration {
        /// The group's generation (-1 for a group that does not exist).
        current: i32,
        /// The request's.
        got: i32,
    },
    /// The member is not in the group (`UNKNOWN_MEMBER_ID`, 25).
    #[error("unknown member {member_id}")]
    UnknownMemberId {
        /// The member id.
        member_id: String,
    },
    /// The static instance id belongs to another member (`FENCED_INSTANCE_ID`, 82).
    #[error("instance {instance_id} is fenced by another member")]
    FencedInstanceId {
        /// The instance id.
        instance_id: String,
    },
    /// An empty group id (`INVALID_GROUP_ID`, 24).
    #[error("invalid group id")]
    InvalidGroupId,
    /// The group is rebalancing (`REBALANCE_IN_PROGRESS`, 27).
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// The group has members, so it cannot be deleted (`NON_EMPTY_GROUP`, 68).
    #[error("the group has members")]
    NonEmptyGroup,
    /// No such group: no member, no offset, no stored record (`GROUP_ID_NOT_FOUND`, 69).
    #[error("group not found")]
    GroupIdNotFound,
    /// The group's members subscribe to the topic, so its offsets cannot be deleted
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`, 86).
    #[error("the group subscribes to topic {topic}")]
    GroupSubscribedToTopic {
        /// The topic.
        topic: String,
    },
    /// Offset metadata longer than `offset.metadata.max.bytes` (`OFFSET_METADATA_TOO_LARGE`, 12).
    #[error("offset metadata of {len} bytes exceeds {max}")]
    OffsetMetadataTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction holds uncommitted offsets for the partition (`UNSTABLE_OFFSET_COMMIT`, 88).
    #[error("a transaction holds pending offsets for this partition")]
    UnstableOffsetCommit,
    /// The producer's epoch is older than the partition's (`INVALID_PRODUCER_EPOCH`, 47).
    #[error("producer epoch is older than the partition's")]
    InvalidProducerEpoch,
    /// Internal topics are written by the coordinator only (`INVALID_TOPIC_EXCEPTION`, 17).
    #[error("topic {topic} cannot be written by clients")]
    InvalidTopic {
        /// The topic.
        topic: String,
    },
    /// Storage failed underneath the coordinator.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A failure that several partitions of one request share (a storage failure or an
    /// append refusal, repeated for each), with its Kafka error.
    #[error("{reason}")]
    Shared {
        /// Kafka's error.
        error: KafkaError,
        /// What failed.
        reason: String,
    },
}

/// The request a coordinator answer is for, to rewrite codes as each version expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnApi {
    /// `InitProducerId` (22).
    InitProducerId,
    /// `AddPartitionsToTxn` (24).
    AddPartitionsToTxn,
    /// `AddOffsetsToTxn` (25).
    AddOffsetsToTxn,
    /// `EndTxn` (26).
    EndTxn,
    /// `TxnOffsetCommit` (28).
    TxnOffsetCommit,
    /// `Produce` (0), for the answer of a transactional batch's verification.
    Produce,
}

impl CoordinatorError {
    /// Kafka's error code.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        use CoordinatorError as E;
        use KafkaError as K;
        match self {
            E::ConcurrentTransactions => K::ConcurrentTransactions,
            E::InvalidTxnState { .. } | E::NotInTransaction => K::InvalidTxnState,
            E::ProducerFenced { .. } => K::ProducerFenced,
            E::InvalidProducerIdMapping => K::InvalidProducerIdMapping,
            E::InvalidTransactionTimeout { .. } => K::InvalidTransactionTimeout,
            E::InvalidRequest { .. } => K::InvalidRequest,
            E::CoordinatorLoadInProgress => K::CoordinatorLoadInProgress,
            E::CoordinatorNotAvailable => K::CoordinatorNotAvailable,
            E::NotCoordinator { .. } => K::NotCoordinator,
            E::TransactionAbortable => K::TransactionAbortable,
            E::UnknownTopicOrPartition { .. } => K::UnknownTopicOrPartition,
            E::OperationNotAttempted => K::OperationNotAttempted,
            E::UnknownServerError { .. } => K::UnknownServerError,
            E::TransactionalIdNotFound => K::TransactionalIdNotFound,
            E::IllegalGeneration { .. } => K::IllegalGeneration,
            E::UnknownMemberId { .. } => K::UnknownMemberId,
            E::FencedInstanceId { .. } => K::FencedInstanceId,
            E::InvalidGroupId => K::InvalidGroupId,
            E::RebalanceInProgress => K::RebalanceInProgress,
            E::NonEmptyGroup => K::NonEmptyGroup,
            E::GroupIdNotFound => K::GroupIdNotFound,
            E::GroupSubscribedToTopic { .. } => K::GroupSubscribedToTopic,
            E::OffsetMetadataTooLarge { .. } => K::OffsetMetadataTooLarge,
            E::UnstableOffsetCommit => K::UnstableOffsetCommit,
            E::InvalidProducerEpoch => K::InvalidProducerEpoch,
            E::InvalidTopic { .. } => K::InvalidTopicException,
            E::Storage(e) => e.kafka_error(),
            E::Shared { error, .. } => *error,
        }
    }

    /// The code to answer request `api` at `version` with: Kafka rewrites some codes for
    /// clients that predate them (`PRODUCER_FENCED` is `INVALID_PRODUCER_EPOCH` before
    /// InitProducerId v4 and the other transaction APIs' v2, and always for Produce and
    /// TxnOffsetCommit, whose fencing comes from a verification; a verification answer to a
    /// produce request turns retriable coordinator errors into `NOT_ENOUGH_REPLICAS`, and
    /// `TRANSACTION_ABORTABLE` into `INVALID_TXN_STATE` before Produce v11).
    #[must_use]
    pub fn code_for(&self, api: TxnApi, version: i16) -> i16 {
        use KafkaError as K;
        let k = self.kafka_error();
        let rewritten = match (api, k) {
            (TxnApi::InitProducerId, K::ProducerFenced) if version < 4 => K::InvalidProducerEpoch,
            (TxnApi::AddPartitionsToTxn | TxnApi::AddOffsetsToTxn | TxnApi::EndTxn, K::ProducerFenced)
                if version < 2 =>
            {
                K::InvalidProducerEpoch
            }
            (TxnApi::Produce, K::ProducerFenced) => K::InvalidProducerEpoch,
            (
                TxnApi::Produce,
                K::ConcurrentTransactions
                | K::CoordinatorLoadInProgress
                | K::CoordinatorNotAvailable
                | K::NotCoordinator,
            ) => K::NotEnoughReplicas,
            (TxnApi::Produce, K::TransactionAbortable) if version <= 10 => K::InvalidTxnState,
            (TxnApi::TxnOffsetCommit, K::CoordinatorLoadInProgress) if version < 2 => {
                K::CoordinatorNotAvailable
            }
            // A fenced producer's commit is refused by the verification of its transaction,
            // whose PRODUCER_FENCED Kafka answers as INVALID_PRODUCER_EPOCH: the only code
            // clients handle here (aiokafka reads 90 as an unknown error).
            (TxnApi::TxnOffsetCommit, K::ProducerFenced) => K::InvalidProducerEpoch,
            (TxnApi::TxnOffsetCommit, K::TransactionAbortable) if version <= 3 => K::InvalidTxnState,
            (TxnApi::TxnOffsetCommit, K::NotEnoughReplicas) => K::CoordinatorNotAvailable,
            (TxnApi::TxnOffsetCommit, K::NotLeaderOrFollower | K::KafkaStorageError) => K::NotCoordinator,
            (TxnApi::TxnOffsetCommit, K::MessageTooLarge | K::RecordListTooLarge) => {
                K::InvalidCommitOffsetSize
            }
            _ => k,
        };
        rewritten.code()
    }

    /// The same answer again, for each partition of a request that shares it (a storage
    /// failure is repeated by its message).
    pub(crate) fn replicate(&self) -> CoordinatorError {
        use CoordinatorError as E;
        match self {
            E::ConcurrentTransactions => E::ConcurrentTransactions,
            E::InvalidTxnState { state, request } => E::InvalidTxnState {
                state: *state,
                request,
            },
            E::ProducerFenced { current, got } => E::ProducerFenced {
                current: *current,
                got: *got,
            },
            E::NotInTransaction => E::NotInTransaction,
            E::InvalidProducerIdMapping => E::InvalidProducerIdMapping,
            E::InvalidTransactionTimeout { timeout_ms, max_ms } => E::InvalidTransactionTimeout {
                timeout_ms: *timeout_ms,
                max_ms: *max_ms,
            },
            E::InvalidRequest { reason } => E::InvalidRequest { reason },
            E::CoordinatorLoadInProgress => E::CoordinatorLoadInProgress,
            E::CoordinatorNotAvailable => E::CoordinatorNotAvailable,
            E::NotCoordinator { reason } => E::NotCoordinator { reason },
            E::TransactionAbortable => E::TransactionAbortable,
            E::UnknownTopicOrPartition { topic, partition } => E::UnknownTopicOrPartition {
                topic: topic.clone(),
                partition: *partition,
            },
            E::OperationNotAttempted => E::OperationNotAttempted,
            E::UnknownServerError { reason } => E::UnknownServerError {
                reason: reason.clone(),
            },
            E::TransactionalIdNotFound => E::TransactionalIdNotFound,
            E::IllegalGeneration { current, got } => E::IllegalGeneration {
                current: *current,
                got: *got,
            },
            E::UnknownMemberId { member_id } => E::UnknownMemberId {
                member_id: member_id.clone(),
            },
            E::FencedInstanceId { instance_id } => E::FencedInstanceId {
                instance_id: instance_id.clone(),
            },
            E::InvalidGroupId => E::InvalidGroupId,
            E::RebalanceInProgress => E::RebalanceInProgress,
            E::NonEmptyGroup => E::NonEmptyGroup,
            E::GroupIdNotFound => E::GroupIdNotFound,
            E::GroupSubscribedToTopic { topic } => E::GroupSubscribedToTopic { topic: topic.clone() },
            E::OffsetMetadataTooLarge { len, max } => E::OffsetMetadataTooLarge { len: *len, max: *max },
            E::UnstableOffsetCommit => E::UnstableOffsetCommit,
            E::InvalidProducerEpoch => E::InvalidProducerEpoch,
            E::InvalidTopic { topic } => E::InvalidTopic { topic: topic.clone() },
            E::Storage(e) => E::Shared {
                error: e.kafka_error(),
                reason: e.to_string(),
            },
            E::Shared { error, reason } => E::Shared {
                error: *error,
                reason: reason.clone(),
            },
        }
    }

    /// Whether the client should retry the same request.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            CoordinatorError::ConcurrentTransactions
                | CoordinatorError::CoordinatorLoadInProgress
                | CoordinatorError::CoordinatorNotAvailable
                | CoordinatorError::NotCoordinator { .. }
                | CoordinatorError::UnstableOffsetCommit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_get_older_codes() {
        let fenced = CoordinatorError::ProducerFenced { current: 2, got: 1 };
        assert_eq!(fenced.code_for(TxnApi::InitProducerId, 3), 47);
        assert_eq!(fenced.code_for(TxnApi::InitProducerId, 4), 90);
        assert_eq!(fenced.code_for(TxnApi::EndTxn, 1), 47);
        assert_eq!(fenced.code_for(TxnApi::EndTxn, 2), 90);
        assert_eq!(fenced.code_for(TxnApi::Produce, 11), 47);
        let abortable = CoordinatorError::TransactionAbortable;
        assert_eq!(abortable.code_for(TxnApi::Produce, 10), 48);
        assert_eq!(abortable.code_for(TxnApi::Produce, 11), 120);
        assert_eq!(abortable.code_for(TxnApi::TxnOffsetCommit, 3), 48);
        assert_eq!(abortable.code_for(TxnApi::TxnOffsetCommit, 4), 120);
        assert_eq!(
            CoordinatorError::ConcurrentTransactions.code_for(TxnApi::Produce, 9),
            19
        );
        assert_eq!(
            CoordinatorError::CoordinatorLoadInProgress.code_for(TxnApi::TxnOffsetCommit, 1),
            15
        );
        assert_eq!(
            CoordinatorError::ConcurrentTransactions.code_for(TxnApi::EndTxn, 3),
            51
        );
    }
}
