//! Kafka's protocol error codes: every error eoslog reports, and every one its store and
//! transaction coordinator answer, has one (`Errors.java` in Kafka's clients).

/// A Kafka protocol error code, as a broker returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KafkaError {
    /// `UNKNOWN_SERVER_ERROR` (-1).
    UnknownServerError,
    /// `OFFSET_OUT_OF_RANGE` (1).
    OffsetOutOfRange,
    /// `CORRUPT_MESSAGE` (2).
    CorruptMessage,
    /// `UNKNOWN_TOPIC_OR_PARTITION` (3).
    UnknownTopicOrPartition,
    /// `NOT_LEADER_OR_FOLLOWER` (6).
    NotLeaderOrFollower,
    /// `REQUEST_TIMED_OUT` (7).
    RequestTimedOut,
    /// `MESSAGE_TOO_LARGE` (10).
    MessageTooLarge,
    /// `OFFSET_METADATA_TOO_LARGE` (12).
    OffsetMetadataTooLarge,
    /// `COORDINATOR_LOAD_IN_PROGRESS` (14).
    CoordinatorLoadInProgress,
    /// `COORDINATOR_NOT_AVAILABLE` (15).
    CoordinatorNotAvailable,
    /// `NOT_COORDINATOR` (16).
    NotCoordinator,
    /// `INVALID_TOPIC_EXCEPTION` (17).
    InvalidTopicException,
    /// `RECORD_LIST_TOO_LARGE` (18).
    RecordListTooLarge,
    /// `NOT_ENOUGH_REPLICAS` (19).
    NotEnoughReplicas,
    /// `ILLEGAL_GENERATION` (22).
    IllegalGeneration,
    /// `INVALID_GROUP_ID` (24).
    InvalidGroupId,
    /// `UNKNOWN_MEMBER_ID` (25).
    UnknownMemberId,
    /// `REBALANCE_IN_PROGRESS` (27).
    RebalanceInProgress,
    /// `INVALID_COMMIT_OFFSET_SIZE` (28).
    InvalidCommitOffsetSize,
    /// `INVALID_TIMESTAMP` (32).
    InvalidTimestamp,
    /// `TOPIC_ALREADY_EXISTS` (36).
    TopicAlreadyExists,
    /// `INVALID_PARTITIONS` (37).
    InvalidPartitions,
    /// `INVALID_CONFIG` (40).
    InvalidConfig,
    /// `INVALID_REQUEST` (42).
    InvalidRequest,
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    OutOfOrderSequenceNumber,
    /// `DUPLICATE_SEQUENCE_NUMBER` (46).
    DuplicateSequenceNumber,
    /// `INVALID_PRODUCER_EPOCH` (47).
    InvalidProducerEpoch,
    /// `INVALID_TXN_STATE` (48).
    InvalidTxnState,
    /// `INVALID_PRODUCER_ID_MAPPING` (49).
    InvalidProducerIdMapping,
    /// `INVALID_TRANSACTION_TIMEOUT` (50).
    InvalidTransactionTimeout,
    /// `CONCURRENT_TRANSACTIONS` (51).
    ConcurrentTransactions,
    /// `TRANSACTION_COORDINATOR_FENCED` (52).
    TransactionCoordinatorFenced,
    /// `OPERATION_NOT_ATTEMPTED` (55).
    OperationNotAttempted,
    /// `KAFKA_STORAGE_ERROR` (56).
    KafkaStorageError,
    /// `NON_EMPTY_GROUP` (68).
    NonEmptyGroup,
    /// `GROUP_ID_NOT_FOUND` (69).
    GroupIdNotFound,
    /// `UNSUPPORTED_COMPRESSION_TYPE` (76).
    UnsupportedCompressionType,
    /// `FENCED_INSTANCE_ID` (82).
    FencedInstanceId,
    /// `GROUP_SUBSCRIBED_TO_TOPIC` (86).
    GroupSubscribedToTopic,
    /// `INVALID_RECORD` (87).
    InvalidRecord,
    /// `UNSTABLE_OFFSET_COMMIT` (88).
    UnstableOffsetCommit,
    /// `PRODUCER_FENCED` (90).
    ProducerFenced,
    /// `TRANSACTIONAL_ID_NOT_FOUND` (105).
    TransactionalIdNotFound,
    /// `TRANSACTION_ABORTABLE` (120).
    TransactionAbortable,
}

/// Every code, in one table: variant, number, name.
const TABLE: [(KafkaError, i16, &str); 44] = [
    (KafkaError::UnknownServerError, -1, "UNKNOWN_SERVER_ERROR"),
    (KafkaError::OffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE"),
    (KafkaError::CorruptMessage, 2, "CORRUPT_MESSAGE"),
    (
        KafkaError::UnknownTopicOrPartition,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
    ),
    (KafkaError::NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER"),
    (KafkaError::RequestTimedOut, 7, "REQUEST_TIMED_OUT"),
    (KafkaError::MessageTooLarge, 10, "MESSAGE_TOO_LARGE"),
    (
        KafkaError::OffsetMetadataTooLarge,
        12,
        "OFFSET_METADATA_TOO_LARGE",
    ),
    (
        KafkaError::CoordinatorLoadInProgress,
        14,
        "COORDINATOR_LOAD_IN_PROGRESS",
    ),
    (
        KafkaError::CoordinatorNotAvailable,
        15,
        "COORDINATOR_NOT_AVAILABLE",
    ),
    (KafkaError::NotCoordinator, 16, "NOT_COORDINATOR"),
    (KafkaError::InvalidTopicException, 17, "INVALID_TOPIC_EXCEPTION"),
    (KafkaError::RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE"),
    (KafkaError::NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS"),
    (KafkaError::IllegalGeneration, 22, "ILLEGAL_GENERATION"),
    (KafkaError::InvalidGroupId, 24, "INVALID_GROUP_ID"),
    (KafkaError::UnknownMemberId, 25, "UNKNOWN_MEMBER_ID"),
    (KafkaError::RebalanceInProgress, 27, "REBALANCE_IN_PROGRESS"),
    (
        KafkaError::InvalidCommitOffsetSize,
        28,
        "INVALID_COMMIT_OFFSET_SIZE",
    ),
    (KafkaError::InvalidTimestamp, 32, "INVALID_TIMESTAMP"),
    (KafkaError::TopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS"),
    (KafkaError::InvalidPartitions, 37, "INVALID_PARTITIONS"),
    (KafkaError::InvalidConfig, 40, "INVALID_CONFIG"),
    (KafkaError::InvalidRequest, 42, "INVALID_REQUEST"),
    (
        KafkaError::OutOfOrderSequenceNumber,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
    ),
    (
        KafkaError::DuplicateSequenceNumber,
        46,
        "DUPLICATE_SEQUENCE_NUMBER",
    ),
    (KafkaError::InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH"),
    (KafkaError::InvalidTxnState, 48, "INVALID_TXN_STATE"),
    (
        KafkaError::InvalidProducerIdMapping,
        49,
        "INVALID_PRODUCER_ID_MAPPING",
    ),
    (
        KafkaError::InvalidTransactionTimeout,
        50,
        "INVALID_TRANSACTION_TIMEOUT",
    ),
    (KafkaError::ConcurrentTransactions, 51, "CONCURRENT_TRANSACTIONS"),
    (
        KafkaError::TransactionCoordinatorFenced,
        52,
        "TRANSACTION_COORDINATOR_FENCED",
    ),
    (KafkaError::OperationNotAttempted, 55, "OPERATION_NOT_ATTEMPTED"),
    (KafkaError::KafkaStorageError, 56, "KAFKA_STORAGE_ERROR"),
    (KafkaError::NonEmptyGroup, 68, "NON_EMPTY_GROUP"),
    (KafkaError::GroupIdNotFound, 69, "GROUP_ID_NOT_FOUND"),
    (
        KafkaError::UnsupportedCompressionType,
        76,
        "UNSUPPORTED_COMPRESSION_TYPE",
    ),
    (KafkaError::FencedInstanceId, 82, "FENCED_INSTANCE_ID"),
    (
        KafkaError::GroupSubscribedToTopic,
        86,
        "GROUP_SUBSCRIBED_TO_TOPIC",
    ),
    (KafkaError::InvalidRecord, 87, "INVALID_RECORD"),
    (KafkaError::UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT"),
    (KafkaError::ProducerFenced, 90, "PRODUCER_FENCED"),
    (
        KafkaError::TransactionalIdNotFound,
        105,
        "TRANSACTIONAL_ID_NOT_FOUND",
    ),
    (KafkaError::TransactionAbortable, 120, "TRANSACTION_ABORTABLE"),
];

impl KafkaError {
    /// Every code eoslog knows (per-error counters index this).
    pub const ALL: [KafkaError; TABLE.len()] = {
        let mut all = [KafkaError::UnknownServerError; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// The numeric code on the wire.
    #[must_use]
    pub const fn code(self) -> i16 {
        TABLE[self as usize].1
    }

    /// The name Kafka uses (`Errors.java`), e.g. `"OUT_OF_ORDER_SEQUENCE_NUMBER"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        TABLE[self as usize].2
    }

    /// The error with this code, if eoslog knows it.
    #[must_use]
    pub fn from_code(code: i16) -> Option<KafkaError> {
        TABLE.iter().find(|(_, c, _)| *c == code).map(|(e, _, _)| *e)
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_variant_order_and_codes_are_kafkas() {
        for (i, (e, _, _)) in TABLE.iter().enumerate() {
            assert_eq!(*e as usize, i, "{e:?}");
        }
        assert_eq!(KafkaError::OutOfOrderSequenceNumber.code(), 45);
        assert_eq!(KafkaError::ProducerFenced.name(), "PRODUCER_FENCED");
        assert_eq!(KafkaError::from_code(88), Some(KafkaError::UnstableOffsetCommit));
        assert_eq!(KafkaError::from_code(0), None);
    }
}
