//! What `kafka-transactions.sh` shows: list, describe, find-hanging.

use crate::log::OpenTransaction;
use crate::types::ProducerId;

use super::error::CoordinatorError;
use super::state::Transactions;
use super::{TopicPartition, TxnState};

/// A transactional id as `transactions list` shows it (Kafka's `ListTransactions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: ProducerId,
    /// Its state.
    pub state: TxnState,
}

/// Which ids [`Transactions::list`] returns; empty sets match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only these states.
    pub states: Vec<TxnState>,
    /// Only these producer ids.
    pub producer_ids: Vec<ProducerId>,
    /// Only transactions running at least this long (KIP-994), in milliseconds.
    pub min_duration_ms: Option<i64>,
}

/// A transactional id in detail (Kafka's `DescribeTransactions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state.
    pub state: TxnState,
    /// Producer id.
    pub producer_id: ProducerId,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// When the current transaction began (-1 when none).
    pub start_ms: i64,
    /// When the state last changed.
    pub last_update_ms: i64,
    /// The partitions of the ongoing (or completing) transaction.
    pub partitions: Vec<TopicPartition>,
    /// The `__transaction_state` partition that holds it.
    pub coordinator_partition: i32,
}

/// An open transaction at a partition that its coordinator will not end on its own: older
/// than `transaction.max.timeout.ms`, or whose producer's coordinator state does not have
/// it (what `kafka-transactions.sh find-hanging` reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangingTransaction {
    /// The partition.
    pub partition: TopicPartition,
    /// The open transaction.
    pub transaction: OpenTransaction,
    /// Why it counts as hanging.
    pub reason: &'static str,
}

impl Transactions<'_> {
    /// Describes one transactional id.
    ///
    /// # Errors
    /// `TRANSACTIONAL_ID_NOT_FOUND` for an unknown (or expired) id; coordinator not loaded.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionDescription, CoordinatorError> {
        let loaded = self.loaded(transactional_id)?;
        let found = self.with_id(&loaded, transactional_id, None, |m| {
            Ok(TransactionDescription {
                transactional_id: transactional_id.to_owned(),
                state: m.state,
                producer_id: ProducerId(m.producer_id),
                producer_epoch: m.producer_epoch,
                timeout_ms: m.timeout_ms,
                start_ms: m.start_ms,
                last_update_ms: m.last_update_ms,
                partitions: m.partitions.iter().cloned().collect(),
                coordinator_partition: loaded.index,
            })
        });
        match found {
            Err(CoordinatorError::InvalidProducerIdMapping) => Err(CoordinatorError::TransactionalIdNotFound),
            other => other,
        }
    }

    /// Every transactional id matching `filter`, by id.
    #[must_use]
    pub fn list(&self, filter: &ListFilter) -> Vec<TransactionListing> {
        let now = self.now();
        let mut out = Vec::new();
        for index in 0..self.state().partitions.len() {
            let Ok(loaded) = self.loaded_index(index as i32) else {
                continue;
            };
            let entries: Vec<_> = loaded
                .ids
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (id, entry) in entries {
                let m = entry.lock();
                let keep = !m.removed
                    && (filter.states.is_empty() || filter.states.contains(&m.state))
                    && (filter.producer_ids.is_empty()
                        || filter.producer_ids.contains(&ProducerId(m.producer_id)))
                    && filter
                        .min_duration_ms
                        .is_none_or(|d| m.state == TxnState::Ongoing && now - m.start_ms >= d);
                if keep {
                    out.push(TransactionListing {
                        transactional_id: id.to_string(),
                        producer_id: ProducerId(m.producer_id),
                        state: m.state,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// The hanging transactions at `partitions` (every partition of every user topic when
    /// `None`, each opened to look).
    ///
    /// # Errors
    /// A partition's log could not be opened.
    pub fn find_hanging(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<HangingTransaction>, crate::StoreError> {
        let all: Vec<TopicPartition>;
        let partitions = match partitions {
            Some(p) => p,
            None => {
                all = self.store.all_partitions(false);
                &all
            }
        };
        let max_timeout = self.store.config().transaction_max_timeout_ms;
        // Producer id -> (state, partitions) of every transactional id.
        let mut coordinated = std::collections::HashMap::new();
        for index in 0..self.state().partitions.len() {
            if let Ok(loaded) = self.loaded_index(index as i32) {
                // Entries copied out first: no entry is locked while the map is.
                let entries: Vec<_> = loaded.ids.lock().values().cloned().collect();
                for entry in entries {
                    let m = entry.lock();
                    coordinated.insert(m.producer_id, (m.state, m.partitions.clone()));
                }
            }
        }
        let mut out = Vec::new();
        for tp in partitions {
            let log = self.store.partition(&tp.topic, tp.partition)?;
            for t in log.open_transactions() {
                let reason = match coordinated.get(&t.producer_id.0) {
                    _ if t.age_ms > max_timeout => Some("open longer than transaction.max.timeout.ms"),
                    None => Some("its producer id has no transactional id at this coordinator"),
                    Some((state, parts))
                        if !(state.is_prepare() || *state == TxnState::Ongoing) || !parts.contains(tp) =>
                    {
                        Some("its producer's transaction does not include this partition")
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    out.push(HangingTransaction {
                        partition: tp.clone(),
                        transaction: t,
                        reason,
                    });
                }
            }
        }
        Ok(out)
    }
}
