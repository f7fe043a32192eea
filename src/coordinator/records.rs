//! Decoding the records of the internal topics for tools (`eoslog dump --decode`, as
//! `kafka-dump-log --transaction-log-decoder / --offsets-decoder` do).

use thiserror::Error;

use super::offsets::CommittedOffset;
use super::offsets_codec::{self as oc, OffsetsKey};
use super::txn_log::{self, TxnKey, ValueError};
use super::{TopicPartition, TxnState};
use crate::store::{CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};

/// A transactional id's state as one `__transaction_state` record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStateValue {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions of the transaction.
    pub partitions: Vec<TopicPartition>,
    /// Last state change.
    pub last_update_ms: i64,
    /// Start of the transaction (-1: none).
    pub start_ms: i64,
    /// Producer id before a rotation (-1: none).
    pub previous_producer_id: i64,
    /// Producer id after an exhausted TV2 end (-1: none).
    pub next_producer_id: i64,
    /// The client's transaction version.
    pub client_transaction_version: i16,
}

/// A group's metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// The chosen assignor.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the group's state last changed.
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<GroupMemberMetadata>,
}

/// A member as its group's metadata record stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMemberMetadata {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// The static member's `group.instance.id`, if any.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// How long a rebalance waits for it to rejoin (version 1 and up; else the session
    /// timeout).
    pub rebalance_timeout_ms: i32,
    /// How long it stays a member without a heartbeat.
    pub session_timeout_ms: i32,
    /// Its subscription to the group's protocol (opaque to the broker).
    pub subscription: Vec<u8>,
    /// The assignment the leader gave it (opaque to the broker).
    pub assignment: Vec<u8>,
}

/// One record of an internal topic. A `None` value is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InternalRecord {
    /// `__transaction_state`.
    TransactionState {
        /// The transactional id.
        transactional_id: String,
        /// Its state, or `None` (expired).
        value: Option<TransactionStateValue>,
    },
    /// `__consumer_offsets`: a committed offset.
    Offset {
        /// The group.
        group: String,
        /// The partition consumed.
        partition: TopicPartition,
        /// The offset, or `None` (deleted).
        value: Option<CommittedOffset>,
    },
    /// `__consumer_offsets`: a group's metadata.
    GroupMetadata {
        /// The group.
        group: String,
        /// The metadata, or `None` (group deleted).
        value: Option<GroupMetadataValue>,
    },
    /// A key (or value) version this version of eoslog does not know: Kafka skips such
    /// records, and so does eoslog.
    Unknown {
        /// The version found.
        version: i16,
    },
}

/// Why an internal record could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InternalRecordError {
    /// Not one of the two internal topics.
    #[error("{topic} is not an internal topic")]
    NotInternal {
        /// The topic.
        topic: String,
    },
    /// The bytes do not follow the schema.
    #[error("malformed {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
    },
}

fn malformed(what: &'static str) -> InternalRecordError {
    InternalRecordError::Malformed { what }
}

/// Decodes a record of `__transaction_state` or `__consumer_offsets`.
///
/// # Errors
/// Another topic, a missing key, bytes that do not follow Kafka's schema.
pub fn decode_internal_record(
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<InternalRecord, InternalRecordError> {
    let key = key.ok_or(malformed("key (null)"))?;
    match topic {
        TRANSACTION_STATE_TOPIC => {
            let id = match txn_log::decode_key(key).ok_or(malformed("transaction key"))? {
                TxnKey::Id(id) => id,
                TxnKey::Unknown(version) => return Ok(InternalRecord::Unknown { version }),
            };
            let value = match value {
                None => None,
                Some(v) => match txn_log::decode_value(v) {
                    Ok(v) => Some(TransactionStateValue {
                        producer_id: v.producer_id,
                        producer_epoch: v.producer_epoch,
                        timeout_ms: v.timeout_ms,
                        state: v.state,
                        partitions: v.partitions.into_iter().collect(),
                        last_update_ms: v.last_update_ms,
                        start_ms: v.start_ms,
                        previous_producer_id: v.previous_producer_id,
                        next_producer_id: v.next_producer_id,
                        client_transaction_version: v.client_tv,
                    }),
                    Err(ValueError::Version(version)) => return Ok(InternalRecord::Unknown { version }),
                    Err(_) => return Err(malformed("transaction state value")),
                },
            };
            Ok(InternalRecord::TransactionState {
                transactional_id: id,
                value,
            })
        }
        CONSUMER_OFFSETS_TOPIC => match oc::decode_key(key).ok_or(malformed("offsets key"))? {
            OffsetsKey::Offset {
                group,
                topic,
                partition,
            } => {
                let value = match value {
                    None => None,
                    Some(v) => match oc::decode_offset_value(v) {
                        Ok(v) => Some(CommittedOffset {
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata,
                            commit_timestamp: v.commit_timestamp,
                        }),
                        Err(Some(version)) => return Ok(InternalRecord::Unknown { version }),
                        Err(None) => return Err(malformed("offset value")),
                    },
                };
                Ok(InternalRecord::Offset {
                    group,
                    partition: TopicPartition::new(&topic, partition),
                    value,
                })
            }
            OffsetsKey::Group { group } => {
                let value = match value {
                    None => None,
                    Some(v) => match oc::decode_group_value(v) {
                        Ok(g) => Some(g),
                        Err(Some(version)) => return Ok(InternalRecord::Unknown { version }),
                        Err(None) => return Err(malformed("group metadata value")),
                    },
                };
                Ok(InternalRecord::GroupMetadata { group, value })
            }
            OffsetsKey::Other(version) => Ok(InternalRecord::Unknown { version }),
        },
        other => Err(InternalRecordError::NotInternal {
            topic: other.to_owned(),
        }),
    }
}
