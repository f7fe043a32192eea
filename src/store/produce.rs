//! A producer's batch into a store's partition, with the transactional checks a broker
//! makes before appending (KIP-890): a transactional batch that would open a transaction
//! at a partition is verified with the coordinator first (TV0/TV1), or adds the partition
//! to the transaction (TV2), and is appended with the guard the partition handed out, so a
//! marker that lands in between voids the check.

use thiserror::Error;

use crate::batch::BatchIter;
use crate::config::Durability;
use crate::coordinator::{CoordinatorError, ProducerIdAndEpoch, TopicPartition, TxnApi, TxnVersion};
use crate::error::AppendError;
use crate::kafka::KafkaError;
use crate::log::{AppendOptions, AppendOutcome, Verification};
use crate::producer_state::AppendOrigin;

use super::{Store, StoreError};

/// What a produce request says beyond its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProduceContext<'a> {
    /// The producer's `transactional.id`, required for transactional batches.
    pub transactional_id: Option<&'a str>,
    /// The transaction version the producer speaks: with TV2 (KIP-890) a transactional
    /// batch adds its partition to the transaction; with TV0/TV1 the producer added it
    /// with AddPartitionsToTxn and the batch is only verified.
    pub tv: TxnVersion,
    /// Overrides the topic's durability for this append.
    pub durability: Option<Durability>,
    /// The leader epoch to stamp.
    pub leader_epoch: Option<i32>,
}

/// Why a produce failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// No such topic or partition, or the partition's log cannot open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transaction check failed (fenced, not part of the transaction, coordinator busy).
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// The append failed (malformed batch, storage).
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl ProduceError {
    /// Kafka's error code.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            ProduceError::Store(e) => e.kafka_error(),
            ProduceError::Coordinator(e) => e.kafka_error(),
            ProduceError::Append(e) => e.kafka_error(),
        }
    }

    /// The code for a Produce response of `version` (coordinator answers are rewritten as
    /// Kafka does for the produce path).
    #[must_use]
    pub fn code_for(&self, version: i16) -> i16 {
        match self {
            ProduceError::Coordinator(e) => e.code_for(TxnApi::Produce, version),
            other => other.kafka_error().code(),
        }
    }
}

impl Store {
    /// Appends a producer's batch (one RecordBatch, as a produce request carries per
    /// partition) to `topic`'s partition `partition`. Internal topics are refused
    /// (`INVALID_TOPIC_EXCEPTION`). Producer-state refusals (fenced epoch, out-of-order
    /// sequence, a transaction the coordinator does not know) are
    /// `Ok(AppendOutcome::Rejected)`, as [`crate::Log::append`] reports them.
    ///
    /// # Errors
    /// Unknown partitions, coordinator answers for transactional batches
    /// ([`ProduceError::code_for`] gives the produce response's code), append failures.
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[u8],
        ctx: &ProduceContext<'_>,
    ) -> Result<AppendOutcome, ProduceError> {
        if self.is_internal(topic) {
            return Err(CoordinatorError::InvalidTopic {
                topic: topic.to_owned(),
            }
            .into());
        }
        let log = self.partition(topic, partition)?;
        let mut options = AppendOptions {
            durability: ctx.durability,
            leader_epoch: ctx.leader_epoch,
            ..AppendOptions::new(AppendOrigin::Client)
        };
        let header = BatchIter::new(records).next().and_then(Result::ok).map(|(_, b)| {
            (
                b.is_transactional() && !b.is_control(),
                ProducerIdAndEpoch {
                    producer_id: b.producer_id(),
                    producer_epoch: b.producer_epoch(),
                },
            )
        });
        if let Some((true, producer)) = header {
            let Some(id) = ctx.transactional_id else {
                return Err(CoordinatorError::InvalidRequest {
                    reason: "a transactional batch without its transactional id",
                }
                .into());
            };
            self.transactions().check_request(id, ctx.tv)?;
            let verify = log.config().transaction_verification;
            if verify || ctx.tv.bumps_epoch() {
                if let Verification::Required(guard) =
                    log.start_verification(producer.producer_id, producer.producer_epoch)
                {
                    let tp = TopicPartition::new(topic, partition);
                    let txns = self.transactions();
                    if ctx.tv.bumps_epoch() {
                        txns.add_partitions(id, producer, std::slice::from_ref(&tp), ctx.tv)?;
                    } else if let Some(Err(e)) = txns.verify_partitions(id, producer, &[tp]).pop() {
                        return Err(e.into());
                    }
                    options.verification_guard = verify.then_some(guard);
                }
            }
        }
        Ok(log.append_with(records, &options)?)
    }

    /// Whether `topic` is one of the coordinator's topics.
    #[must_use]
    pub fn is_internal(&self, topic: &str) -> bool {
        super::is_internal_topic(topic)
    }
}
