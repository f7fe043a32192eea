//! Log configuration, settable by Kafka's topic-config names (and eoslog's own under the
//! `eoslog.` prefix) so operators can reuse what they know.

use crate::compression::Compression;
use crate::error::ConfigError;

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// No fsync on append: data survives a process crash (it is in the page cache) but not
    /// a power loss or kernel crash, until [`crate::Log::flush`] runs. Kafka's default.
    Buffered,
    /// `fdatasync` before an append returns: acknowledged data survives power loss.
    /// Concurrent appenders share fsyncs (group commit).
    SyncEachAppend,
}

/// When a roll makes the segment it closes durable (`eoslog.roll.fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollFsync {
    /// The roll fsyncs the old segment's `.log` and `.txnindex`, the producer snapshot, the
    /// checkpoint and the directory before the append that asked for it goes on: a crash
    /// never costs more than the active segment to recover. The default for a bare log.
    Inline,
    /// The roll writes the same files but fsyncs nothing; [`crate::Log::run_maintenance`]
    /// (and [`crate::Log::flush`], close) fsyncs everything appended since it last ran and
    /// then advances the recovery point, with the writer lock released during the fsyncs.
    /// Appends never wait for a disk another writer (a cleaner, another log) keeps busy; a
    /// crash costs recovering what was appended since the last maintenance. Kafka flushes a
    /// rolled segment from a background thread the same way. The broker's default.
    Maintenance,
}

/// What the high watermark follows when the embedder does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HighWatermarkMode {
    /// The log end offset (single node, reads see everything written). The default.
    LogEnd,
    /// The durable (fsynced) end: read_committed readers never see data a power loss could
    /// take back.
    Durable,
    /// Only [`crate::Log::set_high_watermark`] moves it (replicating embedders).
    Manual,
}

/// Kafka's `cleanup.policy`: what keeps a log bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: segments past `retention.ms` or `retention.bytes` are deleted.
    pub delete: bool,
    /// `compact`: only the latest record of each key is kept ([`crate::Log::clean`]); a
    /// compacted-only topic is never deleted by retention.
    pub compact: bool,
}

/// Configuration of one partition log. Defaults are Kafka's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this (default 1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the segment's first batch is this old (default 7 days).
    pub segment_ms: i64,
    /// `segment.jitter.ms`: each segment rolls up to this much before `segment.ms`, so that
    /// partitions created together do not all roll at once (default 0). Kafka draws each
    /// segment's jitter at random; eoslog derives it from the partition directory's name and
    /// the segment's base offset, so it is spread as widely, needs no random source, and is
    /// the same after a reopen.
    pub segment_jitter_ms: i64,
    /// `index.interval.bytes`: bytes between offset-index entries (default 4096).
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: preallocated size of each index (default 10 MiB).
    pub segment_index_bytes: usize,
    /// `max.message.bytes`: largest batch accepted from a client (default 1,048,588).
    pub max_message_bytes: u64,
    /// `retention.bytes`: -1 = unlimited (default).
    pub retention_bytes: i64,
    /// `retention.ms`: -1 = unlimited (default 7 days).
    pub retention_ms: i64,
    /// `cleanup.policy`: `delete` (default), `compact` or `compact,delete`. Retention by
    /// time and size applies only with `delete`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: a compacted log is cleaned once its dirty bytes (written
    /// since the last clean) are at least this share of its cleanable bytes (default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger than this is not
    /// cleaned yet (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty record is older than this is cleaned
    /// whatever its dirty ratio (default `i64::MAX`: never forced).
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone, and a transaction marker whose data is
    /// gone, survive cleaning after the clean that first saw them (default 1 day).
    pub delete_retention_ms: i64,
    /// `file.delete.delay.ms`: how long the files of a segment deleted by retention,
    /// DeleteRecords or truncation, or replaced by the cleaner, stay on disk under a
    /// `.deleted` name before maintenance removes them, so that freeing their blocks is off
    /// the path of the operation that deleted them (default 60 s, Kafka's; 0 removes them at
    /// once, in the operation).
    pub file_delete_delay_ms: i64,
    /// `producer.id.expiration.ms` (default 1 day).
    pub producer_id_expiration_ms: i64,
    /// `message.timestamp.type`: `LogAppendTime` makes the log stamp `maxTimestamp`.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`: with CreateTime, a client's (or coordinator's)
    /// record stamped more than this before the log's clock is refused with
    /// `INVALID_TIMESTAMP` (default `i64::MAX`: any past time, Kafka's default).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: with CreateTime, a record stamped more than this
    /// after the log's clock is refused with `INVALID_TIMESTAMP` (default one hour, Kafka
    /// 4's default).
    pub message_timestamp_after_max_ms: i64,
    /// `compression.type`: `producer` (`None`, the default) keeps each batch as its
    /// producer compressed it; `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd` makes the
    /// log store a client's data batch in that codec, recompressing one that arrives in
    /// another, as Kafka's leader does (a copy of the batch: the same offsets, producer
    /// fields and records). Markers and replicated batches are never recompressed.
    /// [`LogConfig::set`] refuses a codec this build leaves out; a store whose files name
    /// one (written by a build with it) opens, and refuses only the appends that need it
    /// (`UNSUPPORTED_COMPRESSION_TYPE`).
    pub compression_type: Option<Compression>,
    /// `compression.gzip.level` (Kafka's default -1: zlib's default, 6; else 1 to 9) and
    /// `compression.zstd.level` (default 3; -131072 to 22): the level a batch recompressed
    /// for `compression.type` is written at. A producer's batch kept in its own codec keeps
    /// the producer's bytes. [`LogConfig::set`] checks the ranges; a gzip level set on the
    /// field outside them writes at zlib's default. `compression.lz4.level` has no field:
    /// it takes only Kafka's default 9, the level of lz4's fast compressor, the only one
    /// this build has.
    pub compression_gzip_level: i32,
    /// See [`LogConfig::compression_gzip_level`].
    pub compression_zstd_level: i32,
    /// `transaction.max.timeout.ms`: used for the late-transaction rule (default 15 min).
    pub transaction_max_timeout_ms: i64,
    /// `min.insync.replicas` (default 1): in-sync replicas an `acks=all` produce needs, for
    /// an embedder that replicates. Kafka (3.7+, KAFKA-15583) requires
    /// `min(min.insync.replicas, replicas)`, so a one-replica partition, as a log or a
    /// [`crate::Store`] is, takes every `acks=all` produce whatever the value; the log itself
    /// never reads it.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` (default false), kept for an embedder that
    /// replicates: whether a replica outside the in-sync set may lead. A one-replica
    /// partition is its own in-sync set, so it never changes what a log or a
    /// [`crate::Store`] does, as in a one-replica Kafka topic.
    pub unclean_leader_election_enable: bool,
    /// `leader.replication.throttled.replicas` and `follower.replication.throttled.replicas`
    /// (default empty): the replicas whose replication traffic Kafka throttles, `*` or
    /// `partition:broker` pairs, kept as given for an embedder that replicates. Nothing
    /// replicates from a log or a [`crate::Store`], so nothing is throttled.
    pub leader_replication_throttled_replicas: String,
    /// See [`LogConfig::leader_replication_throttled_replicas`].
    pub follower_replication_throttled_replicas: String,
    /// `eoslog.producer.window`: batches per producer kept for deduplication (default 5,
    /// Kafka's fixed value; up to 1024).
    pub producer_window: usize,
    /// `eoslog.max.producer.ids`: producers kept per partition before the least recently
    /// used idle one is evicted (default 1,000,000).
    pub max_producer_ids: usize,
    /// `eoslog.snapshot.interval.bytes`: take a producer snapshot when this many bytes were
    /// appended since the last one, bounding crash-recovery replay (default 256 MiB).
    pub snapshot_interval_bytes: u64,
    /// `eoslog.durability`: `buffered` (default) or `sync`.
    pub durability: Durability,
    /// `flush.messages`: an append that leaves at least this many offsets past the durable
    /// offset fsyncs before it returns, as Kafka's `log.flush.interval.messages` does (1 is
    /// `eoslog.durability=sync`). Default `i64::MAX`: never, Kafka's default.
    pub flush_messages: i64,
    /// `flush.ms`: [`crate::Log::run_maintenance`] fsyncs a log holding data that is not
    /// durable once this long has passed since its last fsync, as Kafka's log flusher does
    /// (which runs every `log.flush.scheduler.interval.ms`, by default never: stock Kafka
    /// ignores `flush.ms`; eoslog checks it at every maintenance). Default `i64::MAX`: never.
    pub flush_ms: i64,
    /// `eoslog.high.watermark`: `log-end` (default), `durable` or `manual`.
    pub high_watermark: HighWatermarkMode,
    /// `eoslog.transaction.timeout.ms`: when set (> 0), [`crate::Log::run_maintenance`]
    /// aborts transactions open longer than this. Default -1 (off, as in Kafka where the
    /// coordinator does it).
    pub transaction_timeout_ms: i64,
    /// `eoslog.transaction.verification`: a transactional batch that would open a
    /// transaction at this partition must carry the guard of a coordinator check
    /// ([`crate::Log::start_verification`], KIP-890), else it is refused with
    /// `INVALID_TXN_STATE`. Default false for a bare log; a [`crate::Store`] sets it from
    /// `transaction.partition.verification.enable` (Kafka's default: true).
    pub transaction_verification: bool,
    /// `eoslog.validate.records`: decode every record of a client batch on append, as
    /// Kafka's leader does (default true).
    pub validate_records: bool,
    /// `eoslog.preallocate.bytes`: disk space the active segment keeps reserved past its
    /// end: when a write would pass the reserved end, this much is reserved from the write
    /// position (`fallocate` with `KEEP_SIZE`: the reservation never changes the `.log`
    /// file's length), never past `segment.bytes`. Released when the segment rolls, the log
    /// closes or a truncation cuts the segment; one left by a crash is released at the
    /// segment's next roll or close. Appends into reserved space skip the file system's
    /// block allocation. It is real disk usage: budget this much per partition (8 MiB ×
    /// 1,000 partitions is 8 GiB). Default 8 MiB; 0 turns it off. Kafka's `preallocate`
    /// instead sets the file length to `segment.bytes` up front.
    pub preallocate_bytes: u64,
    /// `preallocate` (Kafka's; default false): reserve the whole `segment.bytes` when a
    /// segment is first written, in place of `eoslog.preallocate.bytes` ahead. Kafka sets
    /// the file's length to `segment.bytes`; eoslog reserves the blocks and keeps the length
    /// at the data's end, so the files read as Kafka's tools expect and recovery has no zero
    /// tail to cut.
    pub preallocate: bool,
    /// `eoslog.roll.fsync`: `inline` (default) or `maintenance` ([`RollFsync`]).
    pub roll_fsync: RollFsync,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            segment_jitter_ms: 0,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            max_message_bytes: 1_048_588,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 3_600_000,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            file_delete_delay_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            log_append_time: false,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            compression_type: None,
            compression_gzip_level: -1,
            compression_zstd_level: 3,
            transaction_max_timeout_ms: 900_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            leader_replication_throttled_replicas: String::new(),
            follower_replication_throttled_replicas: String::new(),
            producer_window: 5,
            max_producer_ids: 1_000_000,
            snapshot_interval_bytes: 256 << 20,
            durability: Durability::Buffered,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            high_watermark: HighWatermarkMode::LogEnd,
            transaction_timeout_ms: -1,
            transaction_verification: false,
            validate_records: true,
            preallocate_bytes: 8 << 20,
            preallocate: false,
            roll_fsync: RollFsync::Inline,
        }
    }
}

/// `KEY=VALUE`, trimmed.
pub(crate) fn split_pair(pair: &str) -> Result<(&str, &str), ConfigError> {
    match pair.split_once('=') {
        Some((k, v)) => Ok((k.trim(), v.trim())),
        None => Err(ConfigError::InvalidValue {
            key: pair.to_owned(),
            value: String::new(),
            reason: "expected KEY=VALUE",
        }),
    }
}

/// The keys [`LogConfig::set`] accepts.
pub const CONFIG_KEYS: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "segment.jitter.ms",
    "index.interval.bytes",
    "segment.index.bytes",
    "max.message.bytes",
    "retention.bytes",
    "retention.ms",
    "cleanup.policy",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "producer.id.expiration.ms",
    "message.timestamp.type",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "transaction.max.timeout.ms",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
    "remote.storage.enable",
    "eoslog.producer.window",
    "eoslog.max.producer.ids",
    "eoslog.snapshot.interval.bytes",
    "flush.messages",
    "flush.ms",
    "eoslog.durability",
    "eoslog.high.watermark",
    "eoslog.transaction.timeout.ms",
    "eoslog.transaction.verification",
    "eoslog.validate.records",
    "eoslog.preallocate.bytes",
    "preallocate",
    "eoslog.roll.fsync",
];

impl LogConfig {
    /// Sets one key by its Kafka (or `eoslog.`) name.
    ///
    /// # Errors
    /// An unknown key, or a value that does not parse or is out of range; a
    /// `compression.type` whose codec this build leaves out (its cargo feature is off).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_as(key, value, false)
    }

    /// As [`LogConfig::set`], for a value read back from a store's files: a
    /// `compression.type` whose codec this build leaves out is kept, so that a store written
    /// by a build with more codecs opens; the appends that would need the codec are refused
    /// (`UNSUPPORTED_COMPRESSION_TYPE`), and nothing else changes.
    pub(crate) fn set_stored(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_as(key, value, true)
    }

    fn set_as(&mut self, key: &str, value: &str, stored: bool) -> Result<(), ConfigError> {
        let bad = |reason| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let int = || value.trim().parse::<i64>().map_err(|_| bad("not an integer"));
        let at_least = |min: i64| -> Result<i64, ConfigError> {
            let v = int()?;
            if v < min {
                return Err(bad("below the minimum"));
            }
            Ok(v)
        };
        // Kafka's BOOLEAN: either case.
        let boolean = || match value.trim() {
            v if v.eq_ignore_ascii_case("true") => Ok(true),
            v if v.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        match key {
            // Kafka's minimum segment.bytes is 14 (one legacy record); a v2 batch needs 61.
            "segment.bytes" => self.segment_bytes = at_least(61)?.min(i64::from(i32::MAX)) as u64,
            "segment.ms" => self.segment_ms = at_least(1)?,
            "segment.jitter.ms" => self.segment_jitter_ms = at_least(0)?,
            "index.interval.bytes" => self.index_interval_bytes = at_least(0)? as u64,
            "segment.index.bytes" => {
                self.segment_index_bytes = usize::try_from(at_least(24)?).map_err(|_| bad("too large"))?;
            }
            "max.message.bytes" => self.max_message_bytes = at_least(0)? as u64,
            "retention.bytes" => self.retention_bytes = at_least(-1)?,
            "retention.ms" => self.retention_ms = at_least(-1)?,
            "cleanup.policy" => {
                let mut policy = CleanupPolicy {
                    delete: false,
                    compact: false,
                };
                for word in value.split(',').map(str::trim) {
                    match word {
                        "delete" => policy.delete = true,
                        "compact" => policy.compact = true,
                        _ => return Err(bad("expected delete, compact or compact,delete")),
                    }
                }
                self.cleanup_policy = policy;
            }
            "min.cleanable.dirty.ratio" => {
                let v: f64 = value.parse().map_err(|_| bad("not a number"))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(bad("expected a ratio between 0 and 1"));
                }
                self.min_cleanable_dirty_ratio = v;
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = at_least(0)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = at_least(1)?,
            "delete.retention.ms" => self.delete_retention_ms = at_least(0)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = at_least(0)?,
            "producer.id.expiration.ms" => self.producer_id_expiration_ms = at_least(1)?,
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = at_least(1)?,
            "min.insync.replicas" => {
                self.min_insync_replicas = i32::try_from(at_least(1)?).map_err(|_| bad("too large"))?;
            }
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = boolean()?,
            "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
                let (list, refusal) = if key.starts_with("leader") {
                    (
                        &mut self.leader_replication_throttled_replicas,
                        "leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                    )
                } else {
                    (
                        &mut self.follower_replication_throttled_replicas,
                        "follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                    )
                };
                // Kafka's `ThrottledReplicaListValidator` over its LIST parse (empty items
                // kept): `*`, or items each empty or `partition:broker`.
                let pair = |p: &str| {
                    p.split_once(':').is_some_and(|(a, b)| {
                        [a, b]
                            .iter()
                            .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                    })
                };
                let items: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .collect();
                if !(items == ["*"] || items.iter().all(|i| pair(i))) {
                    return Err(bad(refusal));
                }
                *list = items.join(",");
            }
            // Kafka's answer where tiered storage is off (`remote.log.storage.system.enable`).
            "remote.storage.enable" => {
                if boolean()? {
                    return Err(bad(
                        "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
                    ));
                }
            }
            "compression.gzip.level" => {
                let v = int()?;
                if v != -1 && !(1..=9).contains(&v) {
                    return Err(bad("expected -1 (the default) or 1 to 9"));
                }
                self.compression_gzip_level = v as i32;
            }
            "compression.lz4.level" => {
                let v = int()?;
                if !(1..=17).contains(&v) {
                    return Err(bad("expected 1 to 17"));
                }
                if v != 9 {
                    return Err(bad(
                        "this build compresses lz4 at level 9 only (lz4's fast compressor, Kafka's default)",
                    ));
                }
            }
            "compression.zstd.level" => {
                let v = int()?;
                if !(-131_072..=22).contains(&v) {
                    return Err(bad("expected -131072 to 22"));
                }
                self.compression_zstd_level = v as i32;
            }
            "message.timestamp.type" => {
                self.log_append_time = match value {
                    "CreateTime" => false,
                    "LogAppendTime" => true,
                    _ => return Err(bad("expected CreateTime or LogAppendTime")),
                }
            }
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms = at_least(0)?,
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms = at_least(0)?,
            "compression.type" => {
                let codec = match value.trim() {
                    "producer" => None,
                    "uncompressed" => Some(Compression::None),
                    "gzip" => Some(Compression::Gzip),
                    "snappy" => Some(Compression::Snappy),
                    "lz4" => Some(Compression::Lz4),
                    "zstd" => Some(Compression::Zstd),
                    _ => return Err(bad("expected producer, uncompressed, gzip, snappy, lz4 or zstd")),
                };
                if !stored && codec.is_some_and(|c| !c.is_enabled()) {
                    return Err(bad("this build leaves the codec out (its cargo feature is off)"));
                }
                self.compression_type = codec;
            }
            "eoslog.producer.window" => {
                let v = at_least(1)?;
                if v > 1024 {
                    return Err(bad("at most 1024"));
                }
                self.producer_window = v as usize;
            }
            "eoslog.max.producer.ids" => {
                self.max_producer_ids = usize::try_from(at_least(1)?).map_err(|_| bad("too large"))?;
            }
            "eoslog.snapshot.interval.bytes" => self.snapshot_interval_bytes = at_least(1)? as u64,
            "flush.messages" => self.flush_messages = at_least(1)?,
            "flush.ms" => self.flush_ms = at_least(0)?,
            "eoslog.durability" => {
                self.durability = match value {
                    "buffered" => Durability::Buffered,
                    "sync" => Durability::SyncEachAppend,
                    _ => return Err(bad("expected buffered or sync")),
                }
            }
            "eoslog.high.watermark" => {
                self.high_watermark = match value {
                    "log-end" => HighWatermarkMode::LogEnd,
                    "durable" => HighWatermarkMode::Durable,
                    "manual" => HighWatermarkMode::Manual,
                    _ => return Err(bad("expected log-end, durable or manual")),
                }
            }
            "eoslog.transaction.timeout.ms" => self.transaction_timeout_ms = at_least(-1)?,
            "eoslog.transaction.verification" => self.transaction_verification = boolean()?,
            "eoslog.validate.records" => self.validate_records = boolean()?,
            "eoslog.preallocate.bytes" => self.preallocate_bytes = at_least(0)? as u64,
            "preallocate" => self.preallocate = boolean()?,
            "eoslog.roll.fsync" => {
                self.roll_fsync = match value {
                    "inline" => RollFsync::Inline,
                    "maintenance" => RollFsync::Maintenance,
                    _ => return Err(bad("expected inline or maintenance")),
                }
            }
            _ => return Err(ConfigError::UnknownKey { key: key.to_owned() }),
        }
        Ok(())
    }

    /// The level `codec` is written at when a batch is recompressed for
    /// `compression.type`: `compression.gzip.level` (`None` for Kafka's -1, zlib's
    /// default) or `compression.zstd.level`; `None` for the codecs with one level.
    #[must_use]
    pub fn compression_level(&self, codec: Compression) -> Option<i32> {
        match codec {
            Compression::Gzip => Some(self.compression_gzip_level).filter(|l| *l != -1),
            Compression::Zstd => Some(self.compression_zstd_level),
            _ => None,
        }
    }

    /// The value of one key by its Kafka (or `eoslog.`) name, as [`LogConfig::set`] takes it
    /// (so `set(key, &get(key))` changes nothing); `None` for a key it does not know.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<String> {
        let flag = |b: bool| if b { "true" } else { "false" }.to_owned();
        Some(match key {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "segment.jitter.ms" => self.segment_jitter_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "cleanup.policy" => match (self.cleanup_policy.compact, self.cleanup_policy.delete) {
                (true, true) => "compact,delete",
                (true, false) => "compact",
                (false, true) => "delete",
                (false, false) => "",
            }
            .to_owned(),
            // As Kafka shows a double: `0.5`, `1.0`.
            "min.cleanable.dirty.ratio" => format!("{:?}", self.min_cleanable_dirty_ratio),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms.to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "file.delete.delay.ms" => self.file_delete_delay_ms.to_string(),
            "producer.id.expiration.ms" => self.producer_id_expiration_ms.to_string(),
            "message.timestamp.type" => if self.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .to_owned(),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms.to_string(),
            "compression.type" => match self.compression_type {
                None => "producer",
                Some(Compression::None) => "uncompressed",
                Some(codec) => codec.name(),
            }
            .to_owned(),
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "unclean.leader.election.enable" => flag(self.unclean_leader_election_enable),
            "leader.replication.throttled.replicas" => self.leader_replication_throttled_replicas.clone(),
            "follower.replication.throttled.replicas" => self.follower_replication_throttled_replicas.clone(),
            "remote.storage.enable" => flag(false),
            "compression.gzip.level" => self.compression_gzip_level.to_string(),
            "compression.lz4.level" => "9".to_owned(),
            "compression.zstd.level" => self.compression_zstd_level.to_string(),
            "eoslog.producer.window" => self.producer_window.to_string(),
            "eoslog.max.producer.ids" => self.max_producer_ids.to_string(),
            "eoslog.snapshot.interval.bytes" => self.snapshot_interval_bytes.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "eoslog.durability" => match self.durability {
                Durability::Buffered => "buffered",
                Durability::SyncEachAppend => "sync",
            }
            .to_owned(),
            "eoslog.high.watermark" => match self.high_watermark {
                HighWatermarkMode::LogEnd => "log-end",
                HighWatermarkMode::Durable => "durable",
                HighWatermarkMode::Manual => "manual",
            }
            .to_owned(),
            "eoslog.transaction.timeout.ms" => self.transaction_timeout_ms.to_string(),
            "eoslog.transaction.verification" => flag(self.transaction_verification),
            "eoslog.validate.records" => flag(self.validate_records),
            "eoslog.preallocate.bytes" => self.preallocate_bytes.to_string(),
            "preallocate" => flag(self.preallocate),
            "eoslog.roll.fsync" => match self.roll_fsync {
                RollFsync::Inline => "inline",
                RollFsync::Maintenance => "maintenance",
            }
            .to_owned(),
            _ => return None,
        })
    }

    /// Parses `KEY=VALUE` and sets it.
    ///
    /// # Errors
    /// As [`LogConfig::set`], or a missing `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (k, v) = split_pair(pair)?;
        self.set(k, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_parse() {
        let mut c = LogConfig::default();
        c.set("segment.bytes", "1024").expect("ok");
        assert_eq!(c.segment_bytes, 1024);
        c.set_pair("eoslog.producer.window=128").expect("ok");
        assert_eq!(c.producer_window, 128);
        assert!(matches!(
            c.set("segment.byte", "1"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(matches!(
            c.set("segment.bytes", "x"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(c.set("eoslog.producer.window", "0").is_err());
        for k in CONFIG_KEYS {
            assert!(
                !matches!(c.set(k, "bogus-value"), Err(ConfigError::UnknownKey { .. })),
                "{k}"
            );
        }
    }

    #[test]
    fn every_key_reads_back_as_set_takes_it() {
        let mut c = LogConfig::default();
        for pair in [
            "cleanup.policy=compact,delete",
            "message.timestamp.type=LogAppendTime",
            "min.cleanable.dirty.ratio=0.25",
            "eoslog.durability=sync",
            "eoslog.high.watermark=durable",
            "eoslog.roll.fsync=maintenance",
            "eoslog.validate.records=false",
            "segment.bytes=1048576",
        ] {
            c.set_pair(pair).expect(pair);
            let (k, v) = pair.split_once('=').expect("pair");
            assert_eq!(c.get(k).as_deref(), Some(v), "{k}");
        }
        for defaults in [LogConfig::default(), c] {
            for k in CONFIG_KEYS {
                let v = defaults.get(k).unwrap_or_else(|| panic!("{k} has no value"));
                let mut again = defaults.clone();
                again.set(k, &v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
                assert_eq!(format!("{again:?}"), format!("{defaults:?}"), "{k}={v}");
            }
        }
        assert_eq!(LogConfig::default().get("segment.byte"), None);
    }
}
