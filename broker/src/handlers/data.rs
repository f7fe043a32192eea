//! Produce, Fetch, ListOffsets and OffsetForLeaderEpoch: the data path.
//!
//! Produce hands each partition's bytes to [`eoslog::Store::produce`] as they arrived (the
//! store checks the batch, the producer's sequence and epoch, and the transaction), and is
//! answered once the append is durable by the topic's durability setting. Fetch returns
//! whole batches, aborted data included, with the aborted-transaction list only for
//! read_committed (clients filter with it), and answers every partition it was asked
//! for; it waits up to `max_wait_ms` for `min_bytes`, woken when data or a marker lands.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eoslog::{
    AppendError, AppendOutcome, InvalidTimestampReason, Isolation, KafkaError, Offset, ProduceContext,
    ProduceError, RecordRefusal, TxnVersion,
};
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::meta::LEADER_EPOCH;
use super::{topic_name, Ctx};

/// A partition's refusal in a produce answer: the code, and for a record-level refusal
/// (v8+) Kafka's summary and each record at fault with its index in the batch and why.
struct Refusal {
    code: i16,
    message: Option<String>,
    records: Vec<(i32, String)>,
    log_start_offset: i64,
}

impl From<i16> for Refusal {
    fn from(code: i16) -> Self {
        Refusal {
            code,
            message: None,
            records: Vec::new(),
            log_start_offset: -1,
        }
    }
}

impl Refusal {
    /// As Kafka's `ReplicaManager` answers a `RecordValidationException`: a summary and
    /// every record at fault, in Kafka's words; other refusals carry only their code. A
    /// refusal from the batch's header alone (`eoslog.validate.records=false`) names no
    /// record, so it lists none.
    fn of(e: &ProduceError, version: i16, topic: &str, partition: i32) -> Self {
        let code = e.code_for(version);
        let ProduceError::Append(AppendError::RecordsRefused { records, .. }) = e else {
            return code.into();
        };
        let errors: Vec<(i32, String)> = records
            .iter()
            .filter_map(|r| {
                let index = r.index?;
                let why = match r.reason {
                    RecordRefusal::MissingKeyInCompactedLog => {
                        format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}")
                    }
                    RecordRefusal::Timestamp(InvalidTimestampReason::OutOfRange {
                        timestamp,
                        earliest,
                        latest,
                    }) => format!(
                        "Timestamp {timestamp} of message with offset {index} is out of range. The timestamp should be within [{earliest}, {latest}]"
                    ),
                    // Kafka names the record by its text; here by its offset in the batch.
                    RecordRefusal::Timestamp(InvalidTimestampReason::LogAppendTimeFromProducer) => format!(
                        "Invalid timestamp type in message at offset {index}. Producer should not set timestamp type to LogAppendTime."
                    ),
                    other => other.to_string(),
                };
                Some((i32::try_from(index).unwrap_or(i32::MAX), why))
            })
            .collect();
        let message = if code == KafkaError::InvalidTimestamp.code() {
            "One or more records have been rejected due to invalid timestamp".to_owned()
        } else {
            let shown: Vec<String> = errors
                .iter()
                .take(3)
                .map(|(i, why)| format!("RecordError(batchIndex={i}, message='{why}')"))
                .collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                records.len(),
                shown.join(", ")
            )
        };
        Refusal {
            message: Some(message),
            records: errors,
            ..code.into()
        }
    }

    /// Kafka's `ReplicaManager` answers a refused partition with its log start offset,
    /// except for the refusals it lists (unknown partition, not leader, too large, corrupt,
    /// storage), which get -1.
    fn with_log_start(mut self, store: &eoslog::Store, topic: &str, partition: i32) -> Self {
        const WITHOUT: [KafkaError; 6] = [
            KafkaError::UnknownTopicOrPartition,
            KafkaError::NotLeaderOrFollower,
            KafkaError::MessageTooLarge,
            KafkaError::RecordListTooLarge,
            KafkaError::CorruptMessage,
            KafkaError::KafkaStorageError,
        ];
        if !WITHOUT.iter().any(|k| k.code() == self.code) {
            if let Ok(log) = store.partition(topic, partition) {
                self.log_start_offset = log.log_start_offset().0;
            }
        }
        self
    }
}

/// Whether any partition of a produce answer failed.
pub(crate) fn any_failed(r: &ProduceResponse) -> bool {
    r.responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .any(|p| p.error_code != 0)
}

pub(crate) async fn produce(ctx: &Ctx, r: ProduceRequest) -> ProduceResponse {
    let version = ctx.version;
    let acks_valid = matches!(r.acks, -1..=1);
    let answers = ctx
        .blocking(move |sh| {
            let txn_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
            let pctx = ProduceContext {
                transactional_id: txn_id.as_deref(),
                tv: TxnVersion::TV0,
                durability: None,
                leader_epoch: Some(LEADER_EPOCH),
            };
            let mut wrote = false;
            let out: Vec<_> = r
                .topic_data
                .into_iter()
                .map(|t| {
                    let name = t.name.0.to_string();
                    let parts: Vec<_> = t
                        .partition_data
                        .into_iter()
                        .map(|p| {
                            // In Kafka's order: the partition, then the records, then acks.
                            let answer = if !sh.store.has_partition(&name, p.index) {
                                Err(KafkaError::UnknownTopicOrPartition.code().into())
                            } else {
                                match p.records.as_deref() {
                                    // `ProduceRequest.validateRecords`: at least one batch.
                                    None | Some([]) => Err(KafkaError::InvalidRecord.code().into()),
                                    Some(_) if !acks_valid => Err(ResponseError::InvalidRequiredAcks.code().into()),
                                    Some(bytes) => match sh.store.produce(&name, p.index, bytes, &pctx) {
                                        Ok(AppendOutcome::Appended(i)) => {
                                            wrote = true;
                                            Ok(i)
                                        }
                                        Ok(AppendOutcome::Duplicate(i)) => Ok(i),
                                        Ok(AppendOutcome::Rejected(rej)) => Err(Refusal::from(rej.kafka_error().code())
                                            .with_log_start(&sh.store, &name, p.index)),
                                        Err(e) => {
                                            tracing::debug!(target: "eoslog_broker", topic = %name, partition = p.index, error = %e, "produce refused");
                                            Err(Refusal::of(&e, version, &name, p.index).with_log_start(&sh.store, &name, p.index))
                                        }
                                    },
                                }
                            };
                            (p.index, answer)
                        })
                        .collect();
                    (name, parts)
                })
                .collect();
            if wrote {
                sh.data_arrived.notify_waiters();
            }
            out
        })
        .await;
    let mut out = ProduceResponse::default();
    out.responses = answers
        .into_iter()
        .map(|(name, parts)| {
            let mut t = TopicProduceResponse::default();
            t.name = topic_name(&name);
            t.partition_responses = parts
                .into_iter()
                .map(|(index, answer)| {
                    let mut p = PartitionProduceResponse::default();
                    p.index = index;
                    match answer {
                        Ok(info) => {
                            p.base_offset = info.first_offset.0;
                            p.log_append_time_ms = info.log_append_time;
                            if version >= 5 {
                                p.log_start_offset = info.log_start_offset.0;
                            }
                        }
                        Err(refusal) => {
                            p.error_code = refusal.code;
                            p.base_offset = -1;
                            p.log_append_time_ms = -1;
                            if version >= 5 {
                                p.log_start_offset = refusal.log_start_offset;
                            }
                            if version >= 8 {
                                p.error_message = refusal.message.map(StrBytes::from_string);
                                p.record_errors = refusal
                                    .records
                                    .into_iter()
                                    .map(|(index, why)| {
                                        let mut e = BatchIndexAndErrorMessage::default();
                                        e.batch_index = index;
                                        e.batch_index_error_message = Some(StrBytes::from_string(why));
                                        e
                                    })
                                    .collect();
                            }
                        }
                    }
                    p
                })
                .collect();
            t
        })
        .collect();
    out
}

/// One partition of a fetch, as read.
struct FetchedPartition {
    index: i32,
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    aborted: Option<Vec<(i64, i64)>>,
    records: Bytes,
}

pub(crate) async fn fetch(ctx: &Ctx, r: FetchRequest) -> FetchResponse {
    let version = ctx.version;
    let isolation = if r.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let max_bytes = usize::try_from(r.max_bytes).unwrap_or(0).max(1);
    let min_bytes = usize::try_from(r.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    let wanted: Arc<Wanted> = Arc::new(
        r.topics
            .iter()
            .map(|t| {
                (
                    t.topic.0.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| {
                            (
                                p.partition,
                                p.fetch_offset,
                                p.partition_max_bytes,
                                p.current_leader_epoch,
                            )
                        })
                        .collect(),
                )
            })
            .collect(),
    );
    // A fetch of nothing is answered at once, as Kafka's `fetchMessages` does.
    let nothing = wanted.iter().all(|(_, parts)| parts.is_empty());
    let fetched = loop {
        let notified = ctx.shared.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let w = wanted.clone();
        let (fetched, total, failed) = ctx
            .blocking(move |sh| read_partitions(&sh.store, &w, isolation, max_bytes))
            .await;
        if nothing || total >= min_bytes || failed || tokio::time::Instant::now() >= deadline {
            break fetched;
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    let mut out = FetchResponse::default();
    out.responses = fetched
        .into_iter()
        .map(|(name, parts)| {
            let mut t = FetchableTopicResponse::default();
            t.topic = topic_name(&name);
            t.partitions = parts
                .into_iter()
                .map(|f| {
                    let mut p = PartitionData::default();
                    p.partition_index = f.index;
                    p.error_code = f.error;
                    p.high_watermark = f.high_watermark;
                    p.last_stable_offset = f.last_stable_offset;
                    if version >= 5 {
                        p.log_start_offset = f.log_start_offset;
                    }
                    p.aborted_transactions = f.aborted.map(|a| {
                        a.into_iter()
                            .map(|(pid, first)| {
                                let mut x = AbortedTransaction::default();
                                x.producer_id = ProducerId(pid);
                                x.first_offset = first;
                                x
                            })
                            .collect()
                    });
                    p.records = Some(f.records);
                    p
                })
                .collect();
            t
        })
        .collect();
    out
}

type Fetched = Vec<(String, Vec<FetchedPartition>)>;

/// A fetch's partitions: topic, then (partition, offset, max bytes, current leader epoch).
type Wanted = Vec<(String, Vec<(i32, i64, i32, i32)>)>;

/// Reads every requested partition within the response's byte budget; returns the bytes
/// read and whether a partition failed (a failed fetch is answered at once).
fn read_partitions(
    store: &eoslog::Store,
    wanted: &Wanted,
    isolation: Isolation,
    max_bytes: usize,
) -> (Fetched, usize, bool) {
    let mut total = 0usize;
    let mut failed = false;
    let out = wanted
        .iter()
        .map(|(name, parts)| {
            let parts = parts
                .iter()
                .map(|&(index, offset, part_max, leader_epoch)| {
                    let mut f = FetchedPartition {
                        index,
                        error: 0,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        aborted: None,
                        records: Bytes::new(),
                    };
                    if leader_epoch > LEADER_EPOCH {
                        f.error = ResponseError::UnknownLeaderEpoch.code();
                        failed = true;
                        return f;
                    }
                    let log = match store.partition(name, index) {
                        Ok(log) => log,
                        Err(e) => {
                            f.error = e.kafka_error().code();
                            failed = true;
                            return f;
                        }
                    };
                    let budget = usize::try_from(part_max)
                        .unwrap_or(0)
                        .min(max_bytes.saturating_sub(total));
                    if budget == 0 && total > 0 {
                        f.high_watermark = log.high_watermark().0;
                        f.last_stable_offset = log.last_stable_offset().0;
                        f.log_start_offset = log.log_start_offset().0;
                        return f;
                    }
                    match log
                        .read(Offset(offset), budget.max(1), isolation)
                        .and_then(|res| {
                            let bytes = res.bytes()?;
                            Ok((res, bytes))
                        }) {
                        Ok((res, bytes)) => {
                            f.high_watermark = res.high_watermark.0;
                            f.last_stable_offset = res.last_stable_offset.0;
                            f.log_start_offset = res.log_start_offset.0;
                            f.aborted = res
                                .aborted_transactions
                                .map(|a| a.iter().map(|t| (t.producer_id.0, t.first_offset.0)).collect());
                            total += bytes.len();
                            f.records = Bytes::from(bytes);
                        }
                        Err(e) => {
                            f.error = e.kafka_error().code();
                            f.high_watermark = log.high_watermark().0;
                            f.last_stable_offset = log.last_stable_offset().0;
                            f.log_start_offset = log.log_start_offset().0;
                            failed = true;
                        }
                    }
                    f
                })
                .collect();
            (name.clone(), parts)
        })
        .collect();
    (out, total, failed)
}

pub(crate) async fn list_offsets(ctx: &Ctx, r: ListOffsetsRequest) -> ListOffsetsResponse {
    let version = ctx.version;
    let isolation = if version >= 2 && r.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    // A partition asked for twice is answered INVALID_REQUEST each time, as Kafka's
    // `ListOffsetsRequest.duplicatePartitions` (every version served here, 1 and up).
    let mut seen = HashSet::new();
    let duplicated: HashSet<(String, i32)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .filter(|tp| !seen.insert(tp.clone()))
        .collect();
    let topics = ctx
        .blocking(move |sh| {
            r.topics
                .into_iter()
                .map(|t| {
                    let name = t.name.0.to_string();
                    let parts: Vec<_> = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let answer = if duplicated.contains(&(name.clone(), p.partition_index)) {
                                Err(KafkaError::InvalidRequest.code())
                            } else {
                                list_offset(&sh.store, &name, p.partition_index, p.timestamp, isolation)
                            };
                            (p.partition_index, answer)
                        })
                        .collect();
                    (name, parts)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = ListOffsetsResponse::default();
    out.topics = topics
        .into_iter()
        .map(|(name, parts)| {
            let mut t = ListOffsetsTopicResponse::default();
            t.name = topic_name(&name);
            t.partitions = parts
                .into_iter()
                .map(|(index, answer)| {
                    let mut p = ListOffsetsPartitionResponse::default();
                    p.partition_index = index;
                    match answer {
                        Ok((offset, timestamp)) => {
                            p.offset = offset;
                            p.timestamp = timestamp;
                            if version >= 4 {
                                p.leader_epoch = if offset >= 0 { LEADER_EPOCH } else { -1 };
                            }
                        }
                        Err(code) => {
                            p.error_code = code;
                            p.offset = -1;
                            p.timestamp = -1;
                        }
                    }
                    p
                })
                .collect();
            t
        })
        .collect();
    out
}

/// Kafka's special timestamps: latest (-1: the high watermark, or the LSO for
/// read_committed), earliest (-2), the record with the largest timestamp (-3).
fn list_offset(
    store: &eoslog::Store,
    topic: &str,
    partition: i32,
    timestamp: i64,
    isolation: Isolation,
) -> Result<(i64, i64), i16> {
    let log = store
        .partition(topic, partition)
        .map_err(|e| e.kafka_error().code())?;
    match timestamp {
        -1 => Ok((
            match isolation {
                Isolation::ReadCommitted => log.last_stable_offset().0,
                _ => log.high_watermark().0,
            },
            -1,
        )),
        -2 => Ok((log.log_start_offset().0, -1)),
        -3 => match log.offset_of_max_timestamp(isolation) {
            Ok(Some((offset, ts))) => Ok((offset.0, ts)),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(e.kafka_error().code()),
        },
        t if t >= 0 => match log.offset_for_timestamp(t, isolation) {
            Ok(Some((offset, ts))) => Ok((offset.0, ts)),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(e.kafka_error().code()),
        },
        _ => Err(KafkaError::InvalidRequest.code()),
    }
}

pub(crate) async fn offset_for_leader_epoch(
    ctx: &Ctx,
    r: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = ctx
        .blocking(move |sh| {
            r.topics
                .into_iter()
                .map(|t| {
                    let name = t.topic.0.to_string();
                    let parts: Vec<_> = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut e = EpochEndOffset::default();
                            e.partition = p.partition;
                            e.leader_epoch = -1;
                            e.end_offset = -1;
                            if p.current_leader_epoch > LEADER_EPOCH {
                                e.error_code = ResponseError::UnknownLeaderEpoch.code();
                                return e;
                            }
                            match sh.store.partition(&name, p.partition) {
                                Err(err) => e.error_code = err.kafka_error().code(),
                                Ok(log) => match log.end_offset_for_epoch(p.leader_epoch) {
                                    Some((epoch, end)) => {
                                        e.leader_epoch = epoch;
                                        e.end_offset = end.0;
                                    }
                                    // A log with no batch yet: its only epoch ends at its end.
                                    None if p.leader_epoch >= LEADER_EPOCH => {
                                        e.leader_epoch = LEADER_EPOCH;
                                        e.end_offset = log.log_end_offset().0;
                                    }
                                    None => {}
                                },
                            }
                            e
                        })
                        .collect();
                    (name, parts)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut out = OffsetForLeaderEpochResponse::default();
    out.topics = topics
        .into_iter()
        .map(|(name, parts)| {
            let mut t = OffsetForLeaderTopicResult::default();
            t.topic = topic_name(&name);
            t.partitions = parts;
            t
        })
        .collect();
    out
}
