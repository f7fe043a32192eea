//! Appends: validation as Kafka's leader does it, producer checks against a pending copy of
//! producer state, offsets and leader epochs patched into the batch heads, one `pwritev`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::MutexGuard;

use crate::batch::{self, BatchIter, ControlType, RecordBatch, TimestampType};
use crate::config::{Durability, HighWatermarkMode, LogConfig};
use crate::error::{
    AppendError, InvalidRecordReason, InvalidTimestampReason, RecordRefusal, RefusedRecord, StorageError,
};

use crate::producer_state::{
    AppendOrigin, Duplicate, PendingAppend, ProducerBatch, ProducerStateManager, Rejection, StartVerification,
};
use crate::types::{Offset, ProducerEpoch, ProducerId};

use super::txn::aborted_entry;
use super::watermarks::HwMove;
use super::{Log, Writer};

/// Options of one append.
#[derive(Debug, Clone, Copy)]
pub struct AppendOptions {
    /// Who is appending.
    pub origin: AppendOrigin,
    /// Leader epoch to stamp into each batch (client and coordinator appends).
    pub leader_epoch: Option<i32>,
    /// Overrides the configured durability for this append.
    pub durability: Option<Durability>,
    /// The guard [`Log::start_verification`] handed out, for a transactional batch that
    /// opens a transaction on a log with `eoslog.transaction.verification` on.
    pub verification_guard: Option<VerificationGuard>,
}

impl AppendOptions {
    /// Options for `origin` with the configured durability and no leader epoch.
    #[must_use]
    pub fn new(origin: AppendOrigin) -> Self {
        AppendOptions {
            origin,
            leader_epoch: None,
            durability: None,
            verification_guard: None,
        }
    }
}

/// A KIP-890 verification guard: proof that a coordinator check of a producer's
/// transaction started at this log before the append that carries it, with no batch or
/// marker of that producer applied in between. Only the log that handed it out accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

/// What [`Log::start_verification`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The producer has a transaction open at this partition at that epoch: its batches
    /// need no check.
    AlreadyOngoing,
    /// Ask the transaction coordinator whether this partition is part of the producer's
    /// transaction; if it is, append with this guard.
    Required(VerificationGuard),
}

/// Where an append landed (or, for a duplicate, where the original landed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub first_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// Largest record timestamp (the append time for LogAppendTime topics).
    pub max_timestamp: i64,
    /// The append time when the topic uses LogAppendTime, else -1 (Kafka's produce response).
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
}

/// The outcome of an append that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum AppendOutcome {
    /// Written.
    Appended(AppendInfo),
    /// A retry of a batch already in the log: nothing written, the original offsets returned.
    Duplicate(AppendInfo),
    /// Refused by producer-state rules; nothing written.
    Rejected(Rejection),
}

impl AppendOutcome {
    /// The offsets for `Appended` and `Duplicate`.
    #[must_use]
    pub fn info(&self) -> Option<AppendInfo> {
        match self {
            AppendOutcome::Appended(i) | AppendOutcome::Duplicate(i) => Some(*i),
            AppendOutcome::Rejected(_) => None,
        }
    }
}

/// Bytes of a batch head the log rewrites: base offset, length, partition leader epoch.
pub(super) const HEAD_PATCH: usize = batch::MAGIC_OFFSET;

/// Where one batch of an append lands.
#[derive(Debug, Clone, Copy)]
/// What one append's batches add up to.
pub(super) struct Placement {
    /// Records in all batches.
    records: i64,
    /// The offset after the last batch.
    next: i64,
    max_timestamp: i64,
    /// Last offset of the batch with the max timestamp.
    offset_of_max: i64,
}

pub(super) struct Placed {
    /// Position in the appended bytes.
    pos: usize,
    size: usize,
    /// Assigned base offset.
    base: i64,
    /// Leader epoch stamped (or carried).
    epoch: i32,
    /// The max timestamp to stamp, with the CreateTime type, over the header's: a
    /// CreateTime batch whose header disagrees with its records, a producer's LogAppendTime
    /// batch in a CreateTime log, or a recompressed copy (as Kafka's `LogValidator` does).
    restamp: Option<i64>,
    /// The batch recompressed in the log's `compression.type`, written in its place.
    recompressed: Option<Vec<u8>>,
}

/// Kafka's `LogValidator.validateTimestamp` for one record timestamp (`timestamp`, as its
/// batch of type `batch_type` gives it) of a client's or coordinator's data batch at `now`.
///
/// The distance to `now` is exact, and a bound of `i64::MAX` is no bound. Kafka's `now - ts`
/// wraps instead: it refuses a timestamp more than 2^63 ms before now as one too far ahead,
/// which eoslog accepts under the default (unbounded) `before.max.ms`. Nothing else differs.
fn timestamp_rule(
    config: &LogConfig,
    batch_type: TimestampType,
    timestamp: i64,
    now: i64,
) -> Result<(), InvalidTimestampReason> {
    /// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a create time is not judged.
    const NO_TIMESTAMP: i64 = -1;
    if !config.log_append_time && timestamp != NO_TIMESTAMP {
        let (before, after) = (
            config.message_timestamp_before_max_ms,
            config.message_timestamp_after_max_ms,
        );
        let behind = i128::from(now) - i128::from(timestamp);
        if (before != i64::MAX && behind > i128::from(before))
            || (after != i64::MAX && -behind > i128::from(after))
        {
            return Err(InvalidTimestampReason::OutOfRange {
                timestamp,
                earliest: now.saturating_sub(before),
                latest: now.saturating_add(after),
            });
        }
    } else if batch_type == TimestampType::LogAppendTime {
        return Err(InvalidTimestampReason::LogAppendTimeFromProducer);
    }
    Ok(())
}

/// Producer fields of a data batch whose base offset is (or will be) `base`.
pub(super) fn producer_batch(b: &RecordBatch<'_>, base: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id: b.producer_id().0,
        epoch: b.producer_epoch().0,
        first_seq: b.base_sequence().0,
        last_seq: b.last_sequence().0,
        first_offset: base,
        last_offset: base + i64::from(b.last_offset_delta()),
        max_timestamp: b.max_timestamp(),
        is_transactional: b.is_transactional(),
    }
}

/// Feeds one batch to producer-state checks. `Ok(Some(..))` for a client retry of a cached
/// batch. Marker parse failures are reported as `Err(Ok(..))`, rejections as `Err(Err(..))`.
pub(super) fn check_batch(
    psm: &ProducerStateManager,
    pending: &mut PendingAppend,
    b: &RecordBatch<'_>,
    base_offset: i64,
    origin: AppendOrigin,
) -> Result<Option<Duplicate>, Result<crate::error::BatchError, Rejection>> {
    if b.producer_id().0 < 0 {
        return Ok(None);
    }
    if b.is_control() {
        if b.records_count() == 0 {
            return Ok(None); // a compacted marker: "transaction already cleaned"
        }
        let marker = b.marker().map_err(Ok)?;
        let Some(marker) = marker else { return Ok(None) };
        let aborted = match marker.control_type {
            ControlType::Abort => true,
            ControlType::Commit => false,
            ControlType::Other(_) => return Ok(None),
        };
        return psm
            .check_marker(
                pending,
                b.producer_id().0,
                b.producer_epoch().0,
                marker.coordinator_epoch,
                aborted,
                base_offset,
                b.max_timestamp(),
                origin,
            )
            .map(|()| None)
            .map_err(Err);
    }
    psm.check_data(pending, &producer_batch(b, base_offset), origin)
        .map_err(Err)
}

impl Log {
    /// Appends the batches in `records` as `origin`.
    ///
    /// # Errors
    /// Malformed or unacceptable batches, and storage failures (after which the log refuses
    /// writes until reopened). Producer-state refusals are `Ok(AppendOutcome::Rejected)`.
    /// A [`Durability::SyncEachAppend`] append fails with
    /// [`AppendError::TruncatedBeforeDurable`] if a truncation ran before an fsync covered it.
    pub fn append(&self, records: &[u8], origin: AppendOrigin) -> Result<AppendOutcome, AppendError> {
        self.append_with(records, &AppendOptions::new(origin))
    }

    /// Starts the KIP-890 check of a transactional batch from `producer_id` at `epoch`
    /// before it is appended: unless the producer has a transaction open here, the caller
    /// asks the coordinator and then appends with the returned guard. Any batch or marker of
    /// the producer applied meanwhile clears the guard, so an append whose check raced with
    /// the end of the transaction is refused ([`Rejection::NotVerified`]) instead of opening
    /// a transaction nobody will end. Guards live in memory and expire with
    /// `producer.id.expiration.ms`.
    pub fn start_verification(&self, producer_id: ProducerId, epoch: ProducerEpoch) -> Verification {
        let now = self.clock.now_ms();
        match self
            .writer
            .lock()
            .psm
            .start_verification(producer_id.0, epoch.0, now)
        {
            StartVerification::Ongoing => Verification::AlreadyOngoing,
            StartVerification::Guard(g) => Verification::Required(VerificationGuard(g)),
        }
    }

    /// Appends with explicit options.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_with(&self, records: &[u8], options: &AppendOptions) -> Result<AppendOutcome, AppendError> {
        self.appending.fetch_add(1, Ordering::AcqRel);
        let w = self.writer.lock();
        self.append_holding(w, options, |w| self.append_locked(w, records, options))
    }

    /// What every append does once it holds the writer lock (and `appending` counts it):
    /// refuse on a poisoned or closed log, run `write` under that same lock hold, count the
    /// outcome, and for a durable append wait for the fsync that covers it. A caller that
    /// must check state before writing (a forced abort) checks under the lock it passes in,
    /// so nothing can change between its check and the write.
    pub(super) fn append_holding(
        &self,
        mut w: MutexGuard<'_, Writer>,
        options: &AppendOptions,
        write: impl FnOnce(&mut Writer) -> Result<AppendOutcome, AppendError>,
    ) -> Result<AppendOutcome, AppendError> {
        let result = self
            .check_writable()
            .map_err(AppendError::from)
            .and_then(|()| write(&mut w));
        // A durable answer is owed only if no truncation (always under the writer lock) ran
        // between placing the records and the fsync that covers them.
        // `flush.messages`: an append that leaves that many offsets undurable fsyncs too.
        let sync_each = options.durability.unwrap_or(w.config.durability) == Durability::SyncEachAppend;
        let flush_messages = w.config.flush_messages;
        let truncations = match &result {
            Ok(AppendOutcome::Appended(info)) if sync_each || flush_messages != i64::MAX => {
                let st = self.sync.lock();
                (sync_each || (info.last_offset.0 + 1).saturating_sub(st.durable) >= flush_messages)
                    .then_some(st.truncations)
            }
            Ok(AppendOutcome::Duplicate(_)) if sync_each => Some(self.sync.lock().truncations),
            _ => None,
        };
        drop(w);
        if self.appending.fetch_sub(1, Ordering::AcqRel) == 1 && self.leader_waiting.load(Ordering::Acquire) {
            let _sync = self.sync.lock();
            self.appends_done.notify_one();
        }
        match &result {
            Ok(AppendOutcome::Appended(_)) => {}
            Ok(AppendOutcome::Duplicate(_)) => {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Ok(AppendOutcome::Rejected(r)) => self.stats.reject(r.kafka_error()),
            Err(e) => self.stats.reject(e.kafka_error()),
        }
        // A durable answer waits for the fsync, for a duplicate too: its original may still
        // be waiting for one (a retry that overtook the first attempt's acknowledgement).
        if let (Some(truncations), Ok(AppendOutcome::Appended(info) | AppendOutcome::Duplicate(info))) =
            (truncations, &result)
        {
            let durable = self.sync_to(info.last_offset.0 + 1)?;
            if durable <= info.last_offset.0 || self.sync.lock().truncations != truncations {
                let e = AppendError::TruncatedBeforeDurable {
                    first_offset: info.first_offset,
                    last_offset: info.last_offset,
                };
                self.stats.reject(e.kafka_error());
                return Err(e);
            }
        }
        result
    }

    /// `segment.jitter.ms`: how much earlier than `segment.ms` the segment at `base` rolls,
    /// in `[0, min(segment.jitter.ms, segment.ms, 2^31 - 1))` as Kafka's
    /// `randomSegmentJitter` (whose draw is a non-negative `int`), from a hash (FNV-1a) of
    /// the directory's name and `base` instead of a random draw.
    pub(super) fn roll_jitter(&self, config: &LogConfig, base: i64) -> i64 {
        let bound = config
            .segment_jitter_ms
            .min(config.segment_ms)
            .min(i64::from(i32::MAX));
        if bound <= 0 {
            return 0;
        }
        let name = self
            .dir
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        let hash = name
            .iter()
            .chain(&base.to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        (hash % bound.unsigned_abs()) as i64
    }

    /// Validates every batch as the origin requires and places it (offsets and leader epoch
    /// to stamp, into `placed`), in one pass over the batches.
    pub(super) fn validate_and_place(
        &self,
        config: &LogConfig,
        records: &[u8],
        options: &AppendOptions,
        log_end: i64,
        now: i64,
        placed: &mut Vec<Placed>,
    ) -> Result<Placement, AppendError> {
        let origin = options.origin;
        let assign = origin != AppendOrigin::Replication;
        let log_append_time = assign && config.log_append_time;
        placed.clear();
        let mut n = 0;
        let mut out = Placement {
            records: 0,
            next: log_end,
            max_timestamp: -1,
            offset_of_max: log_end,
        };
        let mut expected_next = log_end;
        for item in BatchIter::new(records) {
            let (position, b) = item.map_err(|(position, source)| AppendError::InvalidBatch {
                batch: n,
                position,
                source,
            })?;
            let invalid = |source| AppendError::InvalidBatch {
                batch: n,
                position,
                source,
            };
            let reason = |reason| AppendError::InvalidRecord { batch: n, reason };
            let refused = |records| AppendError::RecordsRefused { batch: n, records };
            b.validate_crc().map_err(invalid)?;
            let mut restamp = None;
            let size = b.size() as u64;
            let count = b.records_count();
            match origin {
                AppendOrigin::Client | AppendOrigin::Coordinator => {
                    if origin == AppendOrigin::Client && n > 0 {
                        return Err(reason(InvalidRecordReason::MultipleBatches));
                    }
                    if size > config.max_message_bytes {
                        return Err(AppendError::MessageTooLarge {
                            batch: n,
                            size,
                            max: config.max_message_bytes,
                        });
                    }
                    if origin == AppendOrigin::Client && b.base_offset() != 0 {
                        return Err(reason(InvalidRecordReason::NonZeroBaseOffset(b.base_offset())));
                    }
                    if origin == AppendOrigin::Client && b.is_control() {
                        return Err(reason(InvalidRecordReason::ControlBatchFromClient));
                    }
                    if count <= 0 || i64::from(count) != i64::from(b.last_offset_delta()) + 1 {
                        return Err(reason(InvalidRecordReason::RecordCountMismatch {
                            count,
                            last_offset_delta: b.last_offset_delta(),
                        }));
                    }
                    if b.producer_id().is_some()
                        && b.base_sequence().0 < 0
                        && !b.is_control()
                        && origin == AppendOrigin::Client
                    {
                        return Err(reason(InvalidRecordReason::MissingSequence));
                    }
                    if b.is_transactional() && !b.producer_id().is_some() {
                        return Err(reason(InvalidRecordReason::TransactionalWithoutProducer));
                    }
                    if b.is_control() {
                        match b.marker() {
                            Ok(Some(_)) if b.records_count() == 1 => {}
                            _ => return Err(reason(InvalidRecordReason::MalformedControlBatch)),
                        }
                    } else if config.validate_records || config.cleanup_policy.compact {
                        // A compacted log checks every record's key even when record
                        // validation is off, as Kafka's leader does.
                        let compact = config.cleanup_policy.compact;
                        let recs = b.records().map_err(invalid)?;
                        let mut records_max = -1i64;
                        let mut faults = Vec::new();
                        for (i, r) in recs.iter().enumerate() {
                            let r = r.map_err(invalid)?;
                            records_max = records_max.max(r.timestamp);
                            if r.offset - b.base_offset() != i as i64 {
                                return Err(reason(InvalidRecordReason::RecordOffsetMismatch));
                            }
                            // Kafka's order: a record without a key is not judged by its
                            // timestamp; every record at fault is named.
                            let fault = if compact && r.key.is_none() {
                                Some(RecordRefusal::MissingKeyInCompactedLog)
                            } else {
                                timestamp_rule(config, b.timestamp_type(), r.timestamp, now)
                                    .err()
                                    .map(RecordRefusal::Timestamp)
                            };
                            if let Some(reason) = fault {
                                faults.push(RefusedRecord {
                                    index: Some(i),
                                    reason,
                                });
                            }
                        }
                        if !faults.is_empty() {
                            return Err(refused(faults));
                        }
                        // The header's max timestamp is what indexes, retention and
                        // timestamp lookups read: Kafka sets it from the records.
                        let create_time = b.timestamp_type() == TimestampType::CreateTime;
                        if !log_append_time && create_time && records_max != b.max_timestamp() {
                            restamp = Some(records_max);
                        }
                    } else {
                        // Records are not decoded: the header's first and max timestamps
                        // stand for them (a LogAppendTime batch's records all read its max).
                        let first = match b.timestamp_type() {
                            TimestampType::CreateTime => b.base_timestamp(),
                            TimestampType::LogAppendTime => b.max_timestamp(),
                        };
                        for ts in [first, b.max_timestamp()] {
                            timestamp_rule(config, b.timestamp_type(), ts, now).map_err(|e| {
                                refused(vec![RefusedRecord {
                                    index: None,
                                    reason: RecordRefusal::Timestamp(e),
                                }])
                            })?;
                        }
                    }
                    // A producer's LogAppendTime batch in a CreateTime log is stored as
                    // CreateTime with the max timestamp its records read (Kafka's
                    // `setMaxTimestamp(CREATE_TIME, ...)`).
                    if !b.is_control()
                        && !log_append_time
                        && b.timestamp_type() == TimestampType::LogAppendTime
                    {
                        restamp = Some(restamp.unwrap_or(b.max_timestamp()));
                    }
                }
                AppendOrigin::Replication => {
                    if b.base_offset() < expected_next || b.last_offset() < b.base_offset() {
                        return Err(AppendError::UnexpectedOffset {
                            expected: Offset(expected_next),
                            got: Offset(b.base_offset()),
                        });
                    }
                    expected_next = b.next_offset();
                }
            }
            // A client's (or coordinator's) data batch in another codec than the log's
            // `compression.type` is stored recompressed; its max timestamp then comes from
            // its records, as a restamp's does.
            let recompressed = match config.compression_type {
                Some(codec) if assign && !b.is_control() && b.compression().map_err(invalid)? != codec => {
                    let decoded = b.records().map_err(invalid)?;
                    let recs = decoded.iter().collect::<Result<Vec<_>, _>>().map_err(invalid)?;
                    let bytes = batch::recompressed(&b, &recs, codec, config.compression_level(codec))
                        .map_err(invalid)?;
                    if bytes.len() as u64 > config.max_message_bytes {
                        return Err(AppendError::MessageTooLarge {
                            batch: n,
                            size: bytes.len() as u64,
                            max: config.max_message_bytes,
                        });
                    }
                    if !log_append_time {
                        restamp = Some(recs.iter().map(|r| r.timestamp).max().unwrap_or(-1));
                    }
                    Some(bytes)
                }
                _ => None,
            };
            let base = if assign { out.next } else { b.base_offset() };
            let last = base + i64::from(b.last_offset_delta());
            let max = if log_append_time {
                now
            } else {
                restamp.unwrap_or(b.max_timestamp())
            };
            if max > out.max_timestamp {
                out.max_timestamp = max;
                out.offset_of_max = last;
            }
            placed.push(Placed {
                pos: position as usize,
                size: b.size(),
                base,
                epoch: match options.leader_epoch {
                    Some(e) if assign => e,
                    _ => b.partition_leader_epoch(),
                },
                restamp,
                recompressed,
            });
            out.next = last + 1;
            out.records += i64::from(count.max(0));
            n += 1;
        }
        if n == 0 {
            return Err(AppendError::Empty);
        }
        // What will be written (Kafka checks the validated records): the input, with any
        // recompressed copy in place of its batch.
        let size: u64 = placed
            .iter()
            .map(|p| p.recompressed.as_ref().map_or(p.size, Vec::len) as u64)
            .sum();
        if size > config.segment_bytes {
            return Err(AppendError::RecordListTooLarge {
                size,
                max: config.segment_bytes,
            });
        }
        Ok(out)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the append pipeline reads best as one sequence"
    )]
    pub(super) fn append_locked(
        &self,
        w: &mut Writer,
        records: &[u8],
        options: &AppendOptions,
    ) -> Result<AppendOutcome, AppendError> {
        let origin = options.origin;
        // One config for the whole append ([`Log::set_config`] swaps it under this lock).
        let config = Arc::clone(&w.config);
        let log_end = self.log_end.load(Ordering::Acquire);
        let now = self.clock.now_ms();
        // Assign offsets and the leader epoch. Both live outside the CRC, so the batches are
        // written as the client sent them behind a patched 16-byte head each (one pwritev, no
        // copy of the records). LogAppendTime changes CRC-covered fields: those appends are
        // copied once and patched in place.
        let mut placed = std::mem::take(&mut w.placed);
        let placement = match self.validate_and_place(&config, records, options, log_end, now, &mut placed) {
            Ok(p) => p,
            Err(e) => {
                w.placed = placed;
                return Err(e);
            }
        };
        let log_append_time = origin != AppendOrigin::Replication && config.log_append_time;
        let Placement {
            records: record_count,
            next,
            max_timestamp: max_ts,
            offset_of_max,
        } = placement;
        let first_offset = placed.first().map_or(log_end, |p| p.base);
        let last_offset = next - 1;
        // Batches whose header changes beyond its first bytes (a new CRC), or that are
        // recompressed, are copied; the copies' positions and sizes replace the input's.
        let rewrite = log_append_time
            || placed
                .iter()
                .any(|p| p.restamp.is_some() || p.recompressed.is_some());
        let mut buf = std::mem::take(&mut w.scratch);
        buf.clear();
        if rewrite {
            for p in &mut placed {
                let pos = buf.len();
                match p.recompressed.take() {
                    Some(copy) => buf.extend_from_slice(&copy),
                    None => buf.extend_from_slice(&records[p.pos..p.pos + p.size]),
                }
                p.pos = pos;
                p.size = buf.len() - pos;
                let slot = &mut buf[p.pos..p.pos + p.size];
                batch::set_base_offset(slot, p.base);
                batch::set_partition_leader_epoch(slot, p.epoch);
                if log_append_time {
                    batch::set_max_timestamp(slot, TimestampType::LogAppendTime, now);
                } else if let Some(ts) = p.restamp {
                    batch::set_max_timestamp(slot, TimestampType::CreateTime, ts);
                }
            }
        }
        let data: &[u8] = if rewrite { &buf } else { records };

        // Producer checks against the current state; nothing is written on a rejection.
        let mut pending = std::mem::take(&mut w.pending);
        pending.clear();
        if config.transaction_verification {
            pending.verify = Some(options.verification_guard.map_or(0, |g| g.0));
        }
        let mut refused = None;
        for (item, p) in BatchIter::new(data).zip(&placed) {
            let Ok((position, b)) = item else { break };
            match check_batch(&w.psm, &mut pending, &b, p.base, origin) {
                Ok(None) => {}
                Ok(Some(d)) => {
                    refused = Some(Ok(AppendOutcome::Duplicate(AppendInfo {
                        first_offset: Offset(d.first_offset),
                        last_offset: Offset(d.last_offset),
                        max_timestamp: d.timestamp,
                        log_append_time: if config.log_append_time { d.timestamp } else { -1 },
                        log_start_offset: self.log_start_offset(),
                    })));
                    break;
                }
                Err(Ok(source)) => {
                    refused = Some(Err(AppendError::InvalidBatch {
                        batch: 0,
                        position,
                        source,
                    }));
                    break;
                }
                Err(Err(rejection)) => {
                    if let Rejection::InvalidProducerEpoch { producer_id, .. }
                    | Rejection::CoordinatorFenced { producer_id, .. } = rejection
                    {
                        tracing::info!(producer_id = producer_id.0, ?rejection, "fenced append refused");
                    }
                    refused = Some(Ok(AppendOutcome::Rejected(rejection)));
                    break;
                }
            }
        }
        if let Some(outcome) = refused {
            w.scratch = buf;
            w.pending = pending;
            w.placed = placed;
            return outcome;
        }

        // Roll if the active segment cannot take this append.
        let total = data.len() as u64;
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        let size = active.size();
        let time_roll = size > 0 && {
            let max_age = config.segment_ms - self.roll_jitter(&config, active.base_offset);
            match active.first_batch_timestamp() {
                Some(first_ts) if first_ts >= 0 => max_ts - first_ts > max_age,
                _ => now - active.created_ms > max_age,
            }
        };
        if size + total > config.segment_bytes
            || time_roll
            || active.indexes_full()
            || last_offset - active.base_offset > i64::from(i32::MAX)
        {
            self.roll(w, first_offset.max(log_end))
                .map_err(|e| self.poison(e))?;
        }
        let active = w.segments.last().cloned().ok_or(StorageError::Closed)?;
        let mut heads = std::mem::take(&mut w.heads);
        heads.clear();
        if !rewrite {
            for p in &placed {
                let mut head = [0u8; HEAD_PATCH];
                head.copy_from_slice(&records[p.pos..p.pos + HEAD_PATCH]);
                batch::set_base_offset(&mut head, p.base);
                batch::set_partition_leader_epoch(&mut head, p.epoch);
                heads.push(head);
            }
        }
        let written = if rewrite {
            active.append(&[data], last_offset, max_ts, offset_of_max)
        } else {
            // Head and rest of each batch; a client's append (one batch) needs no allocation.
            let pairs = placed
                .iter()
                .zip(&heads)
                .flat_map(|(p, head)| [&head[..], &records[p.pos + HEAD_PATCH..p.pos + p.size]]);
            let mut inline: [&[u8]; 8] = [&[]; 8];
            let spilled: Vec<&[u8]>;
            let parts: &[&[u8]] = if placed.len() * 2 <= inline.len() {
                for (slot, part) in inline.iter_mut().zip(pairs) {
                    *slot = part;
                }
                &inline[..placed.len() * 2]
            } else {
                spilled = pairs.collect();
                &spilled
            };
            active.append(parts, last_offset, max_ts, offset_of_max)
        };
        w.heads = heads;
        written.map_err(|e| self.poison(e))?;

        // Leader epochs first seen in this append.
        for p in &placed {
            if p.epoch >= 0 && w.epochs.latest_epoch().is_none_or(|l| l < p.epoch) {
                w.epochs
                    .assign(&*self.fs, p.epoch, p.base)
                    .map_err(|e| self.poison(e))?;
            }
        }
        w.placed = placed;

        // Apply producer state, record aborted transactions, then publish.
        let new_txn_pids: Vec<i64> = pending.new_txn_producers().collect();
        let markers = pending.completed.len();
        let completed = w.psm.apply(&mut pending, next);
        w.pending = pending;
        self.log_end.store(next, Ordering::Release);
        for pid in new_txn_pids {
            w.txn_started_ms.entry(pid).or_insert(now);
        }
        for (c, lso) in &completed {
            w.txn_started_ms.remove(&c.producer_id);
            if c.aborted {
                let e = aborted_entry(c, *lso);
                active.append_aborted(&*self.fs, e).map_err(|e| self.poison(e))?;
                self.aborted.write().push(e);
                self.stats.aborted_transactions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let hw = match config.high_watermark {
            HighWatermarkMode::LogEnd => HwMove::Advance(next),
            _ => HwMove::Keep,
        };
        self.publish_watermarks(w, hw);
        w.bytes_since_snapshot += total;
        if w.bytes_since_snapshot >= config.snapshot_interval_bytes {
            // A snapshot is also a flush point: the recovery point moves to it, so crash
            // recovery replays at most `eoslog.snapshot.interval.bytes`.
            self.flush_locked(w).map_err(|e| self.poison(e))?;
            self.take_snapshot(w, next).map_err(|e| self.poison(e))?;
        }
        w.scratch = buf;
        let c = &self.stats;
        c.appends.fetch_add(1, Ordering::Relaxed);
        c.appended_bytes.fetch_add(total, Ordering::Relaxed);
        c.appended_records
            .fetch_add(record_count as u64, Ordering::Relaxed);
        if markers > 0 || origin == AppendOrigin::Coordinator {
            c.markers.fetch_add(markers as u64, Ordering::Relaxed);
        }
        Ok(AppendOutcome::Appended(AppendInfo {
            first_offset: Offset(first_offset),
            last_offset: Offset(last_offset),
            max_timestamp: max_ts,
            log_append_time: if log_append_time { now } else { -1 },
            log_start_offset: self.log_start_offset(),
        }))
    }
}
