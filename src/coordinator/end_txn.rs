//! AddPartitionsToTxn, AddOffsetsToTxn, a produce's verification, and EndTxn.

use std::sync::atomic::Ordering;

use crate::store::CONSUMER_OFFSETS_TOPIC;

use super::error::CoordinatorError;
use super::metadata::EndStep;
use super::state::Transactions;
use super::{ProducerIdAndEpoch, TopicPartition, TxnState, TxnVersion};

impl Transactions<'_> {
    /// AddPartitionsToTxn: adds partitions to the producer's transaction, beginning one if
    /// none is open (`tv` is the request's transaction version; a TV2 produce adds its
    /// partition this way implicitly). Nothing is written when every partition is in the
    /// transaction already.
    ///
    /// # Errors
    /// `UNKNOWN_TOPIC_OR_PARTITION` for the first partition the store does not have (nothing
    /// is added; Kafka answers `OPERATION_NOT_ATTEMPTED` for the others),
    /// `INVALID_PRODUCER_ID_MAPPING`, `PRODUCER_FENCED`, `CONCURRENT_TRANSACTIONS` (the last
    /// transaction's markers are not all written yet), `INVALID_TXN_STATE`, coordinator
    /// and storage failures.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
        tv: TxnVersion,
    ) -> Result<(), CoordinatorError> {
        self.check_request(transactional_id, tv)?;
        for tp in partitions {
            if !self.store.has_partition(&tp.topic, tp.partition) {
                return Err(CoordinatorError::UnknownTopicOrPartition {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                });
            }
        }
        let loaded = self.loaded(transactional_id)?;
        let now = self.now();
        self.with_id(&loaded, transactional_id, None, |m| {
            let Some(t) = m.prepare_add(producer, partitions, tv, now)? else {
                return Ok(());
            };
            let begins = m.state != TxnState::Ongoing;
            self.persist(&loaded, transactional_id, m, &t)?;
            if begins {
                self.state().stats.started.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    }

    /// AddOffsetsToTxn: adds the `__consumer_offsets` partition of `group_id` to the
    /// transaction, so that a TxnOffsetCommit of the group can follow.
    ///
    /// # Errors
    /// As [`Transactions::add_partitions`]; `INVALID_GROUP_ID` for an empty group.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        group_id: &str,
        tv: TxnVersion,
    ) -> Result<(), CoordinatorError> {
        if group_id.is_empty() || group_id.len() > super::init_pid::MAX_STRING {
            return Err(CoordinatorError::InvalidGroupId);
        }
        let tp = TopicPartition::new(
            CONSUMER_OFFSETS_TOPIC,
            self.store.offsets().partition_for(group_id),
        );
        self.add_partitions(transactional_id, producer, &[tp], tv)
    }

    /// The verification of a TV0/TV1 transactional produce (KIP-890): whether each
    /// partition is part of the producer's ongoing transaction. Nothing is written.
    /// `TRANSACTION_ABORTABLE` for a partition that is not.
    #[must_use]
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Vec<Result<(), CoordinatorError>> {
        let found = self.loaded(transactional_id).and_then(|loaded| {
            self.with_id(&loaded, transactional_id, None, |m| {
                Ok(m.verify(producer, partitions))
            })
        });
        match found {
            Ok(v) => v,
            Err(e) => partitions.iter().map(|_| Err(e.replicate())).collect(),
        }
    }

    /// EndTxn: commits or aborts the producer's transaction. Once the decision is durable
    /// (PrepareCommit or PrepareAbort in `__transaction_state`), a marker goes to every
    /// partition of the transaction with this coordinator's epoch, each is made durable,
    /// and CompleteCommit/CompleteAbort is written; the call returns after that. If a
    /// partition cannot take its marker now, the call still succeeds (the outcome is
    /// decided) and maintenance, or the next open, writes the rest.
    ///
    /// `tv` is the request's transaction version. With TV2 the epoch is bumped at every
    /// end and the answer is the producer id and epoch to use next (a new producer id at
    /// epoch 0 when the epoch was exhausted); with TV0/TV1 the epoch stays and the answer
    /// is `-1/-1`, as in Kafka's response. A retry of an end that completed succeeds again
    /// without writing.
    ///
    /// # Errors
    /// `INVALID_PRODUCER_ID_MAPPING`, `PRODUCER_FENCED`, `CONCURRENT_TRANSACTIONS`,
    /// `INVALID_TXN_STATE` (e.g. commit with nothing open, or after an abort), coordinator
    /// and storage failures.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        commit: bool,
        tv: TxnVersion,
    ) -> Result<ProducerIdAndEpoch, CoordinatorError> {
        self.check_request(transactional_id, tv)?;
        let loaded = self.loaded(transactional_id)?;
        let now = self.now();
        self.with_id(&loaded, transactional_id, None, |m| {
            match m.prepare_end(producer, commit, tv, now, || self.allocate_producer_id())? {
                EndStep::AlreadyDone(answer) => Ok(answer),
                EndStep::Prepare(t) => {
                    self.persist(&loaded, transactional_id, m, &t)?;
                    tracing::debug!(
                        target: "eoslog::coordinator",
                        transactional_id,
                        producer = %m.identity(),
                        commit,
                        partitions = m.partitions.len(),
                        "transaction decided"
                    );
                    self.complete(&loaded, transactional_id, m);
                    Ok(if tv.bumps_epoch() {
                        // The identity after completion: the next producer id when the
                        // epoch was exhausted, even if the completion is still pending.
                        if m.next_producer_id >= 0 {
                            ProducerIdAndEpoch::new(m.next_producer_id, 0)
                        } else {
                            m.identity()
                        }
                    } else {
                        ProducerIdAndEpoch::new(-1, -1)
                    })
                }
            }
        })
    }
}
