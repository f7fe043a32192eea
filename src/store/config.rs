//! Store configuration, by Kafka's broker config names: what a topic gets by default (the
//! `log.*` names map to topic configs, as in Kafka), the internal topics, the transaction
//! coordinator and the consumer-offsets rules.

use crate::config::LogConfig;
use crate::error::ConfigError;

/// Configuration of a [`crate::Store`]. Defaults are Kafka's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// What every topic starts from; a topic's own configs override it.
    pub log_defaults: LogConfig,
    /// `num.partitions`: partitions of a topic created without a count (default 1).
    pub num_partitions: u32,
    /// `auto.create.topics.enable` (default true): for an embedding broker to consult.
    pub auto_create_topics: bool,
    /// `offsets.topic.num.partitions` (default 50), fixed when the store is created.
    pub offsets_partitions: u32,
    /// `transaction.state.log.num.partitions` (default 50), fixed when the store is created.
    pub txn_state_partitions: u32,
    /// `offsets.topic.segment.bytes` (default 100 MiB).
    pub offsets_segment_bytes: u64,
    /// `transaction.state.log.segment.bytes` (default 100 MiB).
    pub txn_state_segment_bytes: u64,
    /// `transaction.max.timeout.ms` (default 15 minutes): the longest transaction timeout a
    /// producer may ask for.
    pub transaction_max_timeout_ms: i64,
    /// `transactional.id.expiration.ms` (default 7 days).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (default 10 s).
    pub transaction_timeout_check_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (default 1 hour).
    pub transactional_id_expiry_interval_ms: i64,
    /// `transaction.partition.verification.enable` (default true): a transactional batch
    /// for a partition outside its producer's ongoing transaction is refused (KIP-890).
    pub transaction_verification: bool,
    /// `eoslog.internal.durability`: `sync` (default) makes every coordinator decision,
    /// transactional offset commit and marker durable (fsynced) before it is relied on, so
    /// exactly-once holds across a power loss on one machine. `buffered` is what a
    /// single Kafka broker does (it never fsyncs; replication is its durability): exactly-once
    /// across process crashes only, with fewer fsyncs per transaction.
    pub internal_durability: crate::config::Durability,
    /// `eoslog.max.open.partitions` (default 1000): partition logs kept open; beyond it the
    /// least recently used idle one is closed cleanly and reopens at its next use. Each
    /// open partition holds four files (five with a transaction index), so the process's
    /// open-file limit must allow four times this (Kafka keeps every partition open).
    pub max_open_partitions: usize,
    /// `transaction.version` (Kafka's feature level, default 2): from 1 on,
    /// `__transaction_state` values are written in their flexible version 1; the version
    /// the coordinator's own aborts (timeouts, fencing) run with. Clients' requests carry
    /// their own version.
    pub transaction_version: i16,
    /// `offset.metadata.max.bytes` (default 4096).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes` (default 7 days), kept in milliseconds: how long an
    /// Empty group's offsets (or a simple consumer's, from each commit) are kept
    /// ([`crate::Offsets::remove_expired`]).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (default 10 minutes): how often
    /// [`crate::Store::run_maintenance`] removes expired offsets and deletes the groups left
    /// with nothing.
    pub offsets_retention_check_interval_ms: i64,
    /// `eoslog.producer.id.block.size` (default 1000): producer ids reserved on disk at a
    /// time; ids of a block not handed out before a restart are never handed out.
    pub producer_id_block_size: i64,
    /// `log.retention.check.interval.ms`: how often [`crate::Store::run_maintenance`]
    /// applies retention (Kafka's default is 300000). Default 0: at every call.
    pub retention_check_interval_ms: i64,
    /// `log.cleaner.enable` (default true): [`crate::Store::run_maintenance`] cleans the
    /// compacted logs that are due, the internal topics among them.
    pub cleaner_enabled: bool,
    /// `log.cleaner.backoff.ms` (default 15 s): how often maintenance looks for dirty logs,
    /// or how long a cleaner thread sleeps after a pass that cleaned nothing.
    pub cleaner_backoff_ms: i64,
    /// `log.cleaner.threads`: 0 (the library's default) cleans inside
    /// [`crate::Store::run_maintenance`]; more means the embedder runs that many threads
    /// calling [`crate::Store::run_cleaner`] and maintenance does not clean (the example
    /// broker does, with Kafka's default of 1).
    pub cleaner_threads: usize,
    /// `log.cleaner.io.max.bytes.per.second` and `log.cleaner.dedupe.buffer.size`.
    pub cleaner: crate::log::CleanerOptions,
    /// For each topic default with several broker names, the rank of the highest one set
    /// ([`SYNONYM_CHAINS`]): a lower one set later does not override it.
    /// With the value as given.
    synonyms_set: Vec<(&'static str, usize, String)>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            log_defaults: LogConfig::default(),
            num_partitions: 1,
            auto_create_topics: true,
            offsets_partitions: 50,
            txn_state_partitions: 50,
            offsets_segment_bytes: 100 << 20,
            txn_state_segment_bytes: 100 << 20,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 3_600_000,
            transaction_timeout_check_interval_ms: 10_000,
            transactional_id_expiry_interval_ms: 3_600_000,
            transaction_verification: true,
            transaction_version: 2,
            max_open_partitions: 1000,
            internal_durability: crate::config::Durability::SyncEachAppend,
            offset_metadata_max_bytes: 4096,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            offsets_retention_check_interval_ms: 600_000,
            producer_id_block_size: 1000,
            retention_check_interval_ms: 0,
            cleaner_enabled: true,
            cleaner_backoff_ms: 15_000,
            cleaner_threads: 0,
            cleaner: crate::log::CleanerOptions::default(),
            synonyms_set: Vec::new(),
        }
    }
}

/// Topic defaults Kafka's broker also takes in other units, each broker name with the
/// milliseconds in one of its units, in Kafka's order of priority
/// (`ServerTopicConfigSynonyms`): when a config sets several of one chain, the first wins,
/// whatever the order they were set in (`log.retention.ms` over `log.retention.minutes`
/// over `log.retention.hours`). The first of each is also in [`LOG_DEFAULT_KEYS`].
const SYNONYM_CHAINS: &[(&str, &[(&str, i64)])] = &[
    (
        "retention.ms",
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
    ),
    ("segment.ms", &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)]),
    (
        "segment.jitter.ms",
        &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)],
    ),
];

/// The broker name and value Kafka gives a default as when that is a synonym in other units:
/// `key` is a topic config (`retention.ms`) or a broker name of its chain
/// (`log.retention.ms`), and `default_ms` its default in milliseconds; 604800000 is Kafka's
/// `log.retention.hours=168` (`log.retention.ms` and `log.retention.minutes` have no
/// default). `None` for a key without such a synonym, or a value that is not a whole number
/// of its units. For DescribeConfigs' DEFAULT synonyms.
#[must_use]
pub fn default_in_other_units(key: &str, default_ms: &str) -> Option<(&'static str, String)> {
    let (_, chain) = SYNONYM_CHAINS
        .iter()
        .find(|(topic_key, chain)| *topic_key == key || chain.iter().any(|(name, _)| *name == key))?;
    let &(name, unit) = chain.last()?;
    let ms: i64 = default_ms.parse().ok()?;
    (unit > 1 && ms % unit == 0).then(|| (name, (ms / unit).to_string()))
}

/// Kafka broker names of topic defaults, and the topic config each sets.
pub(super) const LOG_DEFAULT_KEYS: &[(&str, &str)] = &[
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.roll.jitter.ms", "segment.jitter.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.segment.delete.delay.ms", "file.delete.delay.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    ("producer.id.expiration.ms", "producer.id.expiration.ms"),
    ("compression.type", "compression.type"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("unclean.leader.election.enable", "unclean.leader.election.enable"),
    ("compression.gzip.level", "compression.gzip.level"),
    ("compression.lz4.level", "compression.lz4.level"),
    ("compression.zstd.level", "compression.zstd.level"),
    ("log.preallocate", "preallocate"),
];

impl StoreConfig {
    /// Sets one key by its Kafka broker name (or an `eoslog.` name; an `eoslog.` log key sets
    /// the default of every topic).
    ///
    /// # Errors
    /// An unknown key, or a value that does not parse or is out of range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |reason| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let int = |min: i64| -> Result<i64, ConfigError> {
            let v = value.trim().parse::<i64>().map_err(|_| bad("not an integer"))?;
            if v < min {
                return Err(bad("below the minimum"));
            }
            Ok(v)
        };
        let count = || -> Result<u32, ConfigError> { u32::try_from(int(1)?).map_err(|_| bad("too large")) };
        // Kafka's BOOLEAN: either case.
        let flag = || match value.trim() {
            v if v.eq_ignore_ascii_case("true") => Ok(true),
            v if v.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        match key {
            "num.partitions" => self.num_partitions = count()?,
            "auto.create.topics.enable" => self.auto_create_topics = flag()?,
            "offsets.topic.num.partitions" => self.offsets_partitions = count()?,
            "transaction.state.log.num.partitions" => self.txn_state_partitions = count()?,
            "offsets.topic.segment.bytes" => self.offsets_segment_bytes = int(61)? as u64,
            "transaction.state.log.segment.bytes" => self.txn_state_segment_bytes = int(61)? as u64,
            "transaction.max.timeout.ms" => {
                self.transaction_max_timeout_ms = int(1)?;
                self.log_defaults.set(key, value)?;
            }
            "transactional.id.expiration.ms" => self.transactional_id_expiration_ms = int(1)?,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.transaction_timeout_check_interval_ms = int(1)?;
            }
            "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                self.transactional_id_expiry_interval_ms = int(1)?;
            }
            "transaction.partition.verification.enable" => self.transaction_verification = flag()?,
            "offset.metadata.max.bytes" => {
                let v = int(0)?;
                if v > i64::from(i16::MAX) {
                    return Err(bad("at most 32767 (a Kafka string)"));
                }
                self.offset_metadata_max_bytes = v as usize;
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_ms = int(1)?.checked_mul(60_000).ok_or_else(|| bad("too large"))?;
            }
            "offsets.retention.check.interval.ms" => self.offsets_retention_check_interval_ms = int(1)?,
            "log.retention.check.interval.ms" => self.retention_check_interval_ms = int(0)?,
            "log.cleaner.enable" => self.cleaner_enabled = flag()?,
            "log.cleaner.backoff.ms" => self.cleaner_backoff_ms = int(0)?,
            "log.cleaner.threads" => {
                let v = int(0)?;
                if v > 64 {
                    return Err(bad("at most 64"));
                }
                self.cleaner_threads = v as usize;
            }
            "log.cleaner.dedupe.buffer.size" => {
                self.cleaner.dedupe_buffer_bytes = usize::try_from(int(1)?).map_err(|_| bad("too large"))?;
            }
            "log.cleaner.io.max.bytes.per.second" => {
                let v: f64 = value.trim().parse().map_err(|_| bad("not a number"))?;
                if v.is_nan() || v <= 0.0 {
                    return Err(bad("must be positive"));
                }
                // Kafka's default, `Double.MAX_VALUE`, is no limit.
                self.cleaner.io_max_bytes_per_second = if v >= f64::MAX { f64::INFINITY } else { v };
            }
            "eoslog.producer.id.block.size" => self.producer_id_block_size = int(1)?,
            "eoslog.internal.durability" => {
                self.internal_durability = match value.trim() {
                    "sync" => crate::config::Durability::SyncEachAppend,
                    "buffered" => crate::config::Durability::Buffered,
                    _ => return Err(bad("expected sync or buffered")),
                }
            }
            "eoslog.max.open.partitions" => {
                self.max_open_partitions = usize::try_from(int(1)?).map_err(|_| bad("too large"))?;
            }
            "transaction.version" => {
                let v = int(0)?;
                if v > 2 {
                    return Err(bad("transaction versions are 0, 1 and 2"));
                }
                self.transaction_version = v as i16;
            }
            // A store decides it for every topic (the log key would be overridden unseen).
            "eoslog.transaction.verification" => {
                return Err(bad(
                    "a store takes it from transaction.partition.verification.enable",
                ));
            }
            _ => {
                let chained = SYNONYM_CHAINS.iter().find_map(|&(topic_key, chain)| {
                    let rank = chain.iter().position(|&(k, _)| k == key)?;
                    Some((topic_key, rank, chain[rank].1))
                });
                if let Some((topic_key, rank, unit_ms)) = chained {
                    let mut checked = self.log_defaults.clone();
                    if unit_ms == 1 && topic_key != "retention.ms" {
                        checked.set(topic_key, value)?;
                    } else {
                        // Kafka's conversion: `log.retention.ms` is a LONG, the others an
                        // INT of minutes or hours; a negative retention is none (-1); a
                        // roll keeps its topic config's minimum.
                        let ms = if unit_ms == 1 {
                            value.trim().parse::<i64>().map_err(|_| bad("not an integer"))?
                        } else {
                            let units = value
                                .trim()
                                .parse::<i32>()
                                .map_err(|_| bad("not a 32-bit integer"))?;
                            i64::from(units) * unit_ms
                        };
                        let ms = if topic_key == "retention.ms" {
                            ms.max(-1)
                        } else {
                            ms
                        };
                        checked
                            .set(topic_key, &ms.to_string())
                            .map_err(|_| bad("below the minimum"))?;
                    }
                    let best = self
                        .synonyms_set
                        .iter()
                        .find(|(t, ..)| *t == topic_key)
                        .map(|&(_, r, _)| r);
                    if best.is_none_or(|b| rank <= b) {
                        self.log_defaults = checked;
                        self.synonyms_set.retain(|(t, ..)| *t != topic_key);
                        self.synonyms_set.push((topic_key, rank, value.trim().to_owned()));
                    }
                    return Ok(());
                }
                if let Some(&(_, topic_key)) = LOG_DEFAULT_KEYS.iter().find(|(k, _)| *k == key) {
                    return self.log_defaults.set(topic_key, value);
                }
                if key.starts_with("eoslog.") {
                    return self.log_defaults.set(key, value);
                }
                return Err(ConfigError::UnknownKey { key: key.to_owned() });
            }
        }
        Ok(())
    }

    /// Every key [`StoreConfig::set`] takes with its value as `set` takes it, by Kafka's
    /// broker names (`log.segment.bytes` for the topics' default `segment.bytes`), for a
    /// broker's DescribeConfigs.
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| if b { "true" } else { "false" }.to_owned();
        let mut out = vec![
            ("num.partitions", self.num_partitions.to_string()),
            ("auto.create.topics.enable", flag(self.auto_create_topics)),
            (
                "offsets.topic.num.partitions",
                self.offsets_partitions.to_string(),
            ),
            (
                "transaction.state.log.num.partitions",
                self.txn_state_partitions.to_string(),
            ),
            (
                "offsets.topic.segment.bytes",
                self.offsets_segment_bytes.to_string(),
            ),
            (
                "transaction.state.log.segment.bytes",
                self.txn_state_segment_bytes.to_string(),
            ),
            (
                "transaction.max.timeout.ms",
                self.transaction_max_timeout_ms.to_string(),
            ),
            (
                "transactional.id.expiration.ms",
                self.transactional_id_expiration_ms.to_string(),
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                self.transaction_timeout_check_interval_ms.to_string(),
            ),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                self.transactional_id_expiry_interval_ms.to_string(),
            ),
            (
                "transaction.partition.verification.enable",
                flag(self.transaction_verification),
            ),
            ("transaction.version", self.transaction_version.to_string()),
            (
                "offset.metadata.max.bytes",
                self.offset_metadata_max_bytes.to_string(),
            ),
            (
                "offsets.retention.minutes",
                (self.offsets_retention_ms / 60_000).to_string(),
            ),
            (
                "offsets.retention.check.interval.ms",
                self.offsets_retention_check_interval_ms.to_string(),
            ),
            (
                "log.retention.check.interval.ms",
                self.retention_check_interval_ms.to_string(),
            ),
            ("log.cleaner.enable", flag(self.cleaner_enabled)),
            ("log.cleaner.backoff.ms", self.cleaner_backoff_ms.to_string()),
            ("log.cleaner.threads", self.cleaner_threads.to_string()),
            (
                "log.cleaner.dedupe.buffer.size",
                self.cleaner.dedupe_buffer_bytes.to_string(),
            ),
            ("log.cleaner.io.max.bytes.per.second", {
                let rate = self.cleaner.io_max_bytes_per_second;
                // As Kafka shows its default.
                if rate.is_infinite() {
                    "1.7976931348623157E308".to_owned()
                } else {
                    format!("{rate:?}")
                }
            }),
            (
                "eoslog.producer.id.block.size",
                self.producer_id_block_size.to_string(),
            ),
            (
                "eoslog.internal.durability",
                match self.internal_durability {
                    crate::config::Durability::SyncEachAppend => "sync",
                    crate::config::Durability::Buffered => "buffered",
                }
                .to_owned(),
            ),
            ("eoslog.max.open.partitions", self.max_open_partitions.to_string()),
        ];
        for &(store_key, topic_key) in LOG_DEFAULT_KEYS {
            // A default set by a synonym in other units shows as that synonym, as given.
            match self.synonym_in_other_units(topic_key) {
                Some((synonym, raw)) => out.push((synonym, raw.to_owned())),
                None => out.extend(self.log_defaults.get(topic_key).map(|v| (store_key, v))),
            }
        }
        out.extend(
            crate::config::CONFIG_KEYS
                .iter()
                .filter(|k| k.starts_with("eoslog.") && **k != super::topic_configs::STORE_DECIDED)
                .filter_map(|&k| Some((k, self.log_defaults.get(k)?))),
        );
        out
    }

    /// The broker synonym in other units (`log.retention.hours`) that gave topic default
    /// `topic_key` its value, and the value as it was given; `None` when the first name
    /// (`log.retention.ms`) or nothing set it.
    pub(crate) fn synonym_in_other_units(&self, topic_key: &str) -> Option<(&'static str, &str)> {
        let (_, rank, raw) = self
            .synonyms_set
            .iter()
            .find(|(t, r, _)| *t == topic_key && *r > 0)?;
        let (_, chain) = SYNONYM_CHAINS.iter().find(|(t, _)| *t == topic_key)?;
        Some((chain[*rank].0, raw))
    }

    /// Parses `KEY=VALUE` and sets it.
    ///
    /// # Errors
    /// As [`StoreConfig::set`], or a missing `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (k, v) = crate::config::split_pair(pair)?;
        self.set(k, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_names_set_store_and_topic_defaults() {
        let mut c = StoreConfig::default();
        c.set("num.partitions", "3").expect("ok");
        c.set("log.segment.bytes", "1048576").expect("ok");
        c.set_pair("transaction.state.log.num.partitions=4").expect("ok");
        c.set("eoslog.durability", "sync").expect("ok");
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_defaults.segment_bytes, 1 << 20);
        assert_eq!(c.txn_state_partitions, 4);
        assert!(matches!(
            c.set("num.partition", "1"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(c.set("num.partitions", "0").is_err());
        assert!(c.set("auto.create.topics.enable", "yes").is_err());
        assert!(
            c.set("eoslog.transaction.verification", "false").is_err(),
            "a key the store would override unseen"
        );
    }

    #[test]
    fn the_synonyms_in_other_units_follow_kafkas_priority_in_any_order() {
        let retention = |pairs: &[&str]| {
            let mut c = StoreConfig::default();
            for p in pairs {
                c.set_pair(p).expect(p);
            }
            c.log_defaults.retention_ms
        };
        assert_eq!(retention(&["log.retention.hours=24"]), 86_400_000);
        assert_eq!(retention(&["log.retention.minutes=5"]), 300_000);
        assert_eq!(retention(&["log.retention.hours=-1"]), -1, "negative is none");
        assert_eq!(
            retention(&["log.retention.hours=1", "log.retention.minutes=5"]),
            300_000
        );
        assert_eq!(
            retention(&["log.retention.minutes=5", "log.retention.hours=1"]),
            300_000
        );
        assert_eq!(retention(&["log.retention.hours=1", "log.retention.ms=7"]), 7);
        assert_eq!(
            retention(&[
                "log.retention.ms=7",
                "log.retention.minutes=5",
                "log.retention.hours=1"
            ]),
            7
        );
        let mut c = StoreConfig::default();
        c.set_pair("log.roll.hours=2").expect("roll");
        c.set_pair("log.roll.jitter.hours=1").expect("jitter");
        assert_eq!(
            (c.log_defaults.segment_ms, c.log_defaults.segment_jitter_ms),
            (7_200_000, 3_600_000)
        );
        assert!(
            c.set_pair("log.roll.hours=0").is_err(),
            "segment.ms is at least 1"
        );
        assert!(c.set_pair("log.retention.hours=x").is_err());
        assert!(
            c.set_pair("log.retention.hours=3000000000").is_err(),
            "Kafka's INT"
        );
        assert_eq!(c.log_defaults.segment_ms, 7_200_000, "a refusal changes nothing");
        c.set_pair("log.retention.ms=604800000000").expect("a LONG");
        c.set_pair("log.retention.ms=-5")
            .expect("Kafka's broker LONG has no lower bound");
        assert_eq!(c.log_defaults.retention_ms, -1, "a negative one is none");
        // The synonym that set a default is what the broker's entries show, as given.
        let mut c = StoreConfig::default();
        c.set_pair("log.retention.hours=2").expect("hours");
        let entries = c.entries();
        assert!(entries.contains(&("log.retention.hours", "2".to_owned())));
        assert!(!entries.iter().any(|(k, _)| *k == "log.retention.ms"));
        assert_eq!(
            c.synonym_in_other_units("retention.ms"),
            Some(("log.retention.hours", "2"))
        );
        c.set_pair("log.retention.ms=5").expect("ms");
        assert_eq!(c.synonym_in_other_units("retention.ms"), None);
        assert!(c.entries().contains(&("log.retention.ms", "5".to_owned())));
    }

    #[test]
    fn entries_cover_every_key_and_read_back_as_set_takes_them() {
        let mut c = StoreConfig::default();
        for pair in [
            "log.cleanup.policy=compact",
            "log.cleaner.io.max.bytes.per.second=1048576",
            "offsets.retention.minutes=60",
            "eoslog.internal.durability=buffered",
            "eoslog.roll.fsync=maintenance",
        ] {
            c.set_pair(pair).expect(pair);
        }
        for config in [StoreConfig::default(), c] {
            let entries = config.entries();
            for (k, v) in &entries {
                let mut again = config.clone();
                again.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
                assert_eq!(again.entries(), entries, "{k}={v}");
                assert_eq!(
                    format!("{:?}", again.log_defaults),
                    format!("{:?}", config.log_defaults),
                    "{k}={v}"
                );
            }
            for &(store_key, _) in LOG_DEFAULT_KEYS {
                assert!(
                    entries.iter().any(|(k, _)| *k == store_key),
                    "{store_key} missing"
                );
            }
        }
        let entries = StoreConfig::default().entries();
        let value = |key| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(value("log.cleanup.policy"), Some("delete"));
        assert_eq!(
            value("log.cleaner.io.max.bytes.per.second"),
            Some("1.7976931348623157E308")
        );
        assert_eq!(value("producer.id.expiration.ms"), Some("86400000"));
    }
}
