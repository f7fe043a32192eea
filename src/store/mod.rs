//! A store: one directory of many partition logs in Kafka's layout (`<topic>-<partition>`
//! directories), opened together, with what is per store rather than per partition: the
//! topics and their configs, the clock and file system, producer-id allocation, and the
//! maintenance of every log.
//!
//! ```text
//! <dir>/
//! ├── .lock                      flock'ed while a Store is open
//! ├── eoslog.store               store version and internal topic partition counts
//! ├── eoslog.producer-ids        producer-id blocks reserved (producer_ids.rs)
//! ├── eoslog.topics/<topic>.topic   one file per topic: partitions, configs (topics.rs)
//! └── <topic>-<partition>/       one partition log each (created at its first use)
//! ```
//!
//! Opening reads the topic files and nothing of any partition: a partition's log opens the
//! first time [`Store::partition`] asks for it, so a store of 10,000 idle partitions opens
//! in milliseconds and holds a few hundred bytes per idle partition.

mod alter_configs;
mod cleaner;
mod config;
mod dynamic_defaults;
mod produce;
mod producer_ids;
mod sealed;
mod slots;
mod topic_admin;
mod topic_configs;
mod topics;

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    sync::{atomic::Ordering, Arc},
};

use parking_lot::{Mutex, RwLock};
use thiserror::Error;

use crate::config::LogConfig;
use crate::coordinator::{
    CoordinatorState, CoordinatorStats, Offsets, OffsetsState, TopicPartition, Transactions,
};
use crate::error::{ConfigError, OpenError, StorageError};
use crate::fs::FileSystem;
use crate::kafka::KafkaError;
use crate::log::{Log, LogOptions, MaintenanceReport};
use crate::types::ProducerId;

pub use alter_configs::{is_list_config, TopicConfigOp};
pub use cleaner::CleanerPassReport;
pub use config::{default_in_other_units, StoreConfig};
pub use dynamic_defaults::{is_dynamic_default, DynamicScope, DYNAMIC_CONFIGS_FILE};
pub use produce::{ProduceContext, ProduceError};
pub use producer_ids::PRODUCER_IDS_FILE;
pub use topic_configs::{ConfigSource, StoreDefault, TopicConfigEntry};
pub use topics::TOPICS_DIR;

use producer_ids::ProducerIds;
use slots::{OpenLogs, Slot};
use topics::TopicRecord;

/// Partitions not open that one `run_maintenance` call opens for their retention.
const SWEEP_PER_RUN: usize = 64;

/// The most partitions a topic may have.
const MAX_PARTITIONS: u32 = 1 << 20;

/// The file naming the store's version and internal topic partition counts.
pub const STORE_FILE: &str = "eoslog.store";
/// Kafka's topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Kafka's topic of consumer offsets.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why a store operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Storage failed or is damaged.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A configuration key or value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No such topic.
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The topic has no such partition.
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// The topic exists already.
    #[error("topic {topic} already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// The topic name differs from an existing topic's only in `.` against `_`, which
    /// Kafka refuses (they collide in metric names).
    #[error("Topic '{topic}' collides with existing topic: {existing}")]
    TopicCollides {
        /// The name asked for.
        topic: String,
        /// The existing topic it collides with.
        existing: String,
    },
    /// The topic name breaks Kafka's rules, or names an internal topic.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The name.
        topic: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// A partition count of zero (or too many).
    #[error("invalid partition count {partitions} for topic {topic}")]
    InvalidPartitions {
        /// The topic.
        topic: String,
        /// The count asked for.
        partitions: u32,
    },
    /// A topic's partition count can only grow (CreatePartitions).
    #[error("topic {topic} has {current} partitions; it cannot go to {requested}")]
    PartitionsNotIncreased {
        /// The topic.
        topic: String,
        /// Its partition count.
        current: u32,
        /// The count asked for.
        requested: u32,
    },
    /// A record of an internal topic cannot be read: the coordinator refuses to guess
    /// what state it held.
    #[error("{topic}-{partition} at offset {offset}: {reason}")]
    InternalRecord {
        /// The internal topic.
        topic: &'static str,
        /// Its partition.
        partition: i32,
        /// The batch or record.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The store was created with other internal topic partition counts: they decide which
    /// partition holds each transactional id and group, so they never change.
    #[error("{topic} has {stored} partitions in this store, the config asks for {configured}")]
    PartitionCountChanged {
        /// The internal topic.
        topic: &'static str,
        /// The count the store was created with.
        stored: u32,
        /// The count configured now.
        configured: u32,
    },
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Storage(s) => StoreError::Storage(s),
            OpenError::Config(c) => StoreError::Config(c),
        }
    }
}

impl StoreError {
    /// The Kafka error code a broker returns.
    #[must_use]
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            StoreError::Storage(e) => e.kafka_error(),
            StoreError::Config(_) => KafkaError::InvalidConfig,
            StoreError::UnknownTopic { .. } | StoreError::UnknownPartition { .. } => {
                KafkaError::UnknownTopicOrPartition
            }
            StoreError::TopicExists { .. } => KafkaError::TopicAlreadyExists,
            StoreError::InvalidTopic { .. } | StoreError::TopicCollides { .. } => {
                KafkaError::InvalidTopicException
            }
            StoreError::InvalidPartitions { .. } | StoreError::PartitionsNotIncreased { .. } => {
                KafkaError::InvalidPartitions
            }
            StoreError::PartitionCountChanged { .. } | StoreError::InternalRecord { .. } => {
                KafkaError::UnknownServerError
            }
        }
    }
}

/// A topic as [`Store::topics`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
    /// Its own configs (Kafka's names), on top of the store's defaults.
    pub configs: Vec<(String, String)>,
    /// `__transaction_state` or `__consumer_offsets`.
    pub internal: bool,
}

#[derive(Debug)]
struct Topic {
    record: TopicRecord,
    /// The config its logs open with: shared with the topic's next versions, and read under
    /// a slot's lock by a log opening there, so a config change cannot miss a log opening
    /// meanwhile.
    config: Arc<RwLock<LogConfig>>,
    internal: bool,
    /// Shared with the topic's next version when partitions are added (the open logs stay).
    slots: Vec<Arc<Slot>>,
}

/// What [`Store::run_maintenance`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreMaintenanceReport {
    /// Partition logs maintained (the open ones).
    pub logs: usize,
    /// What they did, summed.
    pub logs_report: MaintenanceReport,
    /// Logs reopened (recovered) after a failed write or fsync.
    pub reopened: usize,
    /// Transactions aborted for outliving their timeout.
    pub timed_out_transactions: usize,
    /// Transactional ids expired.
    pub expired_transactional_ids: usize,
    /// Transactions whose markers were completed now.
    pub completed_transactions: usize,
    /// Committed offsets removed by `offsets.retention.minutes`.
    pub expired_offsets: usize,
    /// Groups deleted for being Empty with no offset left (an embedding broker forgets
    /// them too): Kafka's groups that turn Dead. Each with its generation (see
    /// [`crate::OffsetsExpiry::deleted_groups`]).
    pub deleted_groups: Vec<(String, i32)>,
    /// Compacted logs cleaned.
    pub cleaned_logs: usize,
    /// Logs whose maintenance or reopening failed (each logged; retried next time).
    pub failures: usize,
}

/// Many partition logs in one directory. All methods take `&self`.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    options: LogOptions,
    config: StoreConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// The topics' dynamic defaults (Kafka's dynamic broker configs); read under the
    /// topics lock when a topic's config is computed, changed with the topics lock held.
    dynamic: RwLock<dynamic_defaults::Dynamic>,
    producer_ids: ProducerIds,
    opened: OpenLogs,
    /// Where the round-robin maintenance of partitions not open resumes.
    sweep_cursor: Mutex<usize>,
    /// When retention last ran (`log.retention.check.interval.ms`).
    last_retention_ms: std::sync::atomic::AtomicI64,
    /// When the cleaner last looked for dirty logs (`log.cleaner.backoff.ms`).
    last_clean_check_ms: std::sync::atomic::AtomicI64,
    /// The logs cleaner threads are cleaning now.
    cleaning: cleaner::Cleaning,
    pub(crate) txn: CoordinatorState,
    pub(crate) offsets_state: OffsetsState,
    _lock: File,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

impl Store {
    /// Opens (or creates) the store in `dir` with the real file system and clock.
    ///
    /// # Errors
    /// Storage failures, a damaged store file, a locked directory, internal topic partition
    /// counts that differ from the ones the store was created with.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        Self::open_with(dir, config, LogOptions::default())
    }

    /// Opens (or creates) the store with an injected file system and clock, which every
    /// partition log shares.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: StoreConfig,
        options: LogOptions,
    ) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        // The embedder's config is new, not read back: it may not name a codec this build
        // leaves out (`StoreConfig::set` refuses one; the field can be set directly).
        topic_configs::check_codec_change(None, config.log_defaults.compression_type)?;
        let fs = &*options.fs;
        let existed = fs.exists(&dir);
        fs.create_dir_all(&dir.join(TOPICS_DIR))
            .map_err(io_err("create directory", &dir))?;
        if !existed {
            // IMPORTANT: the new directories' entries durable in their parents.
            fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent).map_err(io_err("fsync directory", parent))?;
            }
        }
        let lock = crate::log::lock_dir(fs, &dir)?;
        check_store_file(fs, &dir, &config)?;
        let producer_ids = ProducerIds::open(fs, &dir, config.producer_id_block_size)?;
        let layers = dynamic_defaults::DynamicDefaults::load(fs, &dir)?;
        let dynamic = dynamic_defaults::Dynamic {
            defaults: Arc::new(layers.over(&config.log_defaults)?),
            layers,
        };
        let store = Store {
            dir,
            options,
            txn: CoordinatorState::new(config.txn_state_partitions),
            offsets_state: OffsetsState::new(config.offsets_partitions),
            config,
            topics: RwLock::new(BTreeMap::new()),
            dynamic: RwLock::new(dynamic),
            producer_ids,
            opened: OpenLogs::default(),
            sweep_cursor: Mutex::new(0),
            last_retention_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            last_clean_check_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            cleaning: cleaner::Cleaning::default(),
            _lock: lock,
        };
        store.load_topics()?;
        for (name, partitions) in [
            (TRANSACTION_STATE_TOPIC, store.config.txn_state_partitions),
            (CONSUMER_OFFSETS_TOPIC, store.config.offsets_partitions),
        ] {
            if !store.topics.read().contains_key(name) {
                store.create_topic_record(name, partitions, &internal_configs(&store.config, name))?;
            }
        }
        // Offsets first: completing a decided transaction writes markers into them.
        for k in 0..store.config.offsets_partitions {
            store.offsets().load_partition(k as i32)?;
        }
        for p in 0..store.config.txn_state_partitions {
            store.transactions().load_partition(p as i32)?;
        }
        // Transactions that outlived their timeout while the store was closed end now.
        store.transactions().abort_timed_out_transactions();
        store.schedule_sweeps(store.now_ms());
        Ok(store)
    }

    /// The store's clock, in milliseconds: what its records are stamped with and its
    /// timeouts and retention count by (an embedding broker stamps group records with it).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.options.clock.now_ms()
    }

    fn schedule_sweeps(&self, now: i64) {
        self.txn.next_timeout_sweep_ms.store(
            now + self.config.transaction_timeout_check_interval_ms,
            Ordering::Relaxed,
        );
        self.txn.next_expiry_sweep_ms.store(
            now + self.config.transactional_id_expiry_interval_ms,
            Ordering::Relaxed,
        );
        self.txn.next_offsets_sweep_ms.store(
            now + self.config.offsets_retention_check_interval_ms,
            Ordering::Relaxed,
        );
    }

    /// The transaction coordinator.
    #[must_use]
    pub fn transactions(&self) -> Transactions<'_> {
        Transactions { store: self }
    }

    /// The consumer offsets.
    #[must_use]
    pub fn offsets(&self) -> Offsets<'_> {
        Offsets { store: self }
    }

    /// The coordinator's counters.
    #[must_use]
    pub fn coordinator_stats(&self) -> CoordinatorStats {
        self.txn.stats.snapshot()
    }

    /// Whether `topic` has partition `partition`.
    #[must_use]
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .read()
            .get(topic)
            .is_some_and(|t| partition >= 0 && (partition as usize) < t.slots.len())
    }

    /// Every partition of every topic (internal ones only when asked), in name order.
    #[must_use]
    pub fn all_partitions(&self, internal: bool) -> Vec<TopicPartition> {
        self.topics
            .read()
            .iter()
            .filter(|(_, t)| internal || !t.internal)
            .flat_map(|(name, t)| (0..t.slots.len()).map(move |p| TopicPartition::new(name, p as i32)))
            .collect()
    }

    pub(crate) fn raise_producer_id_floor(&self, seen: i64) {
        self.producer_ids.raise_floor(seen);
    }

    /// Drops a partition's log and opens it again (recovery runs): after a failed write
    /// or fsync, the log refuses writes until this. Fails with `Locked` while someone else
    /// still holds the old log.
    pub(crate) fn reopen_partition(&self, topic: &str, partition: i32) -> Result<Arc<Log>, StoreError> {
        self.open_slot(topic, partition, true)
    }

    /// Reads every topic file (never a partition).
    fn load_topics(&self) -> Result<(), StoreError> {
        let fs = &*self.options.fs;
        let topics_dir = self.dir.join(TOPICS_DIR);
        let mut map = BTreeMap::new();
        for file in fs.list_dir(&topics_dir).map_err(io_err("list", &topics_dir))? {
            let path = topics_dir.join(&file);
            if file.ends_with(".tmp") {
                fs.remove_file(&path).map_err(io_err("remove", &path))?;
                continue;
            }
            let Some(name) = topics::name_of(&file) else {
                continue;
            };
            let record = topics::read(fs, &path)?;
            let topic = self.topic(name, record)?;
            if let Some(codec) = topic.config.read().compression_type.filter(|c| !c.is_enabled()) {
                tracing::warn!(
                    topic = name,
                    codec = codec.name(),
                    "compression.type names a codec this build leaves out: appends that need it are refused"
                );
            }
            map.insert(name.to_owned(), Arc::new(topic));
        }
        *self.topics.write() = map;
        Ok(())
    }

    fn topic(&self, name: &str, record: TopicRecord) -> Result<Topic, StoreError> {
        let config = topic_configs::effective_config(&self.config, &self.log_defaults(), name, &record)?;
        let internal = is_internal_topic(name);
        let slots = (0..record.partitions).map(|_| Arc::default()).collect();
        Ok(Topic {
            internal,
            record,
            config: Arc::new(RwLock::new(config)),
            slots,
        })
    }

    fn create_topic_record(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(String, String)],
    ) -> Result<(), StoreError> {
        let record = TopicRecord {
            partitions,
            configs: configs.to_vec(),
        };
        // Under the topics lock: a change of the dynamic defaults cannot slip in between
        // the config computed (and for a user topic checked) here and the topic in the map.
        let mut topics = self.topics.write();
        if !is_internal_topic(name) {
            topic_configs::checked_config(&self.config, &self.log_defaults(), name, &record, None)?;
        }
        let topic = Arc::new(self.topic(name, record.clone())?);
        if topics.contains_key(name) {
            return Err(StoreError::TopicExists {
                topic: name.to_owned(),
            });
        }
        if let Some(existing) = topics::colliding(name, topics.keys()) {
            return Err(StoreError::TopicCollides {
                topic: name.to_owned(),
                existing: existing.to_owned(),
            });
        }
        topics::write(&*self.options.fs, &self.dir, name, &record)?;
        topics.insert(name.to_owned(), topic);
        Ok(())
    }

    /// Every topic, by name.
    #[must_use]
    pub fn topics(&self) -> Vec<TopicInfo> {
        self.topics
            .read()
            .iter()
            .map(|(name, t)| TopicInfo {
                name: name.clone(),
                partitions: t.record.partitions,
                configs: t.record.configs.clone(),
                internal: t.internal,
            })
            .collect()
    }

    /// Whether two different topic names differ only in `.` against `_`, which Kafka
    /// refuses for a new topic beside an existing one (their metric names would be the
    /// same).
    #[must_use]
    pub fn topic_names_collide(a: &str, b: &str) -> bool {
        topics::collide(a, b)
    }

    /// The existing topic that a new topic `name` would collide with: one whose name
    /// differs only in `.` against `_` (Kafka refuses to create such a topic, as their
    /// metric names would be the same). [`Store::create_topic`] checks this itself.
    #[must_use]
    pub fn colliding_topic(&self, name: &str) -> Option<String> {
        let topics = self.topics.read();
        topics::colliding(name, topics.keys()).map(str::to_owned)
    }

    /// The directory of partition `partition` of `topic` (Kafka's `<topic>-<partition>`).
    #[must_use]
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.dir.join(format!("{topic}-{partition}"))
    }

    /// The log of partition `partition` of `topic`, opened (and recovered) at its first use.
    ///
    /// # Errors
    /// An unknown topic or partition; the log's open failed.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Log>, StoreError> {
        self.open_slot(topic, partition, false)
    }

    /// A new producer id for an idempotent producer (never one handed out before, across
    /// restarts).
    ///
    /// # Errors
    /// Storage failures while reserving a block of ids.
    pub fn allocate_producer_id(&self) -> Result<ProducerId, StoreError> {
        Ok(self.producer_ids.allocate(&*self.options.fs)?)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The store directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs what is due: every open log's maintenance (producer expiry, retention), the
    /// reopening of logs that failed a write, the completion of transactions whose markers
    /// could not all be written, and, on their intervals, the coordinator's transaction
    /// timeouts and transactional-id expiry. An embedder calls it periodically (every
    /// second or so).
    ///
    /// A log whose maintenance or reopening fails is logged and counted in the report
    /// ([`StoreMaintenanceReport::failures`]), and the rest still runs: one failing
    /// partition never holds up the others' transaction timeouts.
    pub fn run_maintenance(&self) -> StoreMaintenanceReport {
        let mut report = StoreMaintenanceReport::default();
        let now = self.now_ms();
        let txns = self.transactions();
        let interval = self.config.retention_check_interval_ms;
        let last = self.last_retention_ms.load(Ordering::Acquire);
        let retention = interval <= 0 || last == i64::MIN || now.saturating_sub(last) >= interval;
        if retention {
            self.last_retention_ms.store(now, Ordering::Release);
        }
        let last_clean = self.last_clean_check_ms.load(Ordering::Acquire);
        // With cleaner threads of its own (`log.cleaner.threads` > 0) the embedder runs
        // `run_cleaner` there, and maintenance does not clean.
        let clean = self.config.cleaner_enabled
            && self.config.cleaner_threads == 0
            && (last_clean == i64::MIN || now.saturating_sub(last_clean) >= self.config.cleaner_backoff_ms);
        if clean {
            self.last_clean_check_ms.store(now, Ordering::Release);
        }
        for (topic, p, log) in self.open_logs() {
            if log.is_poisoned() {
                drop(log);
                let reopened = match topic.as_str() {
                    TRANSACTION_STATE_TOPIC => {
                        txns.state().partitions[p as usize]
                            .needs_reload
                            .store(true, Ordering::Release);
                        continue;
                    }
                    CONSUMER_OFFSETS_TOPIC => self.offsets().reload_partition(p),
                    _ => self.reopen_partition(&topic, p).map(drop),
                };
                match reopened {
                    Ok(()) => report.reopened += 1,
                    Err(e) => {
                        report.failures += 1;
                        tracing::warn!(topic, partition = p, error = %e, "reopening a failed log");
                    }
                }
                continue;
            }
            match log.maintain(retention) {
                Ok(r) => {
                    report.logs += 1;
                    report.logs_report.expired_producers += r.expired_producers;
                    report.logs_report.deleted_segments += r.deleted_segments;
                    report.logs_report.aborted_transactions += r.aborted_transactions;
                }
                Err(e) => {
                    report.failures += 1;
                    tracing::warn!(topic, partition = p, error = %e, "log maintenance failed");
                }
            }
        }
        if clean {
            let pass = self.run_cleaner();
            report.cleaned_logs += pass.cleaned_logs;
            report.failures += pass.failures;
        }
        // Partitions not open get their maintenance (retention) too, a few per call, in turn.
        let all = if retention {
            self.all_partitions(false)
        } else {
            Vec::new()
        };
        if !all.is_empty() {
            let mut cursor = self.sweep_cursor.lock();
            for _ in 0..SWEEP_PER_RUN.min(all.len()) {
                *cursor = (*cursor + 1) % all.len();
                let tp = &all[*cursor];
                if self.is_open(&tp.topic, tp.partition) {
                    continue;
                }
                let swept = self
                    .partition(&tp.topic, tp.partition)
                    .and_then(|log| Ok(log.run_maintenance()?));
                match swept {
                    Ok(r) => {
                        report.logs += 1;
                        report.logs_report.deleted_segments += r.deleted_segments;
                        report.logs_report.expired_producers += r.expired_producers;
                    }
                    Err(e) => {
                        report.failures += 1;
                        tracing::warn!(partition = %tp, error = %e, "maintenance of a partition not open failed");
                    }
                }
            }
        }
        for (done, failed) in [self.offsets().reload_failed(), txns.reload_failed()] {
            report.reopened += done;
            report.failures += failed;
        }
        report.completed_transactions = txns.complete_pending();
        if now >= self.txn.next_timeout_sweep_ms.load(Ordering::Relaxed) {
            self.txn.next_timeout_sweep_ms.store(
                now + self.config.transaction_timeout_check_interval_ms,
                Ordering::Relaxed,
            );
            report.timed_out_transactions = txns.abort_timed_out_transactions();
        }
        if now >= self.txn.next_expiry_sweep_ms.load(Ordering::Relaxed) {
            self.txn.next_expiry_sweep_ms.store(
                now + self.config.transactional_id_expiry_interval_ms,
                Ordering::Relaxed,
            );
            report.expired_transactional_ids = txns.expire_transactional_ids();
        }
        if now >= self.txn.next_offsets_sweep_ms.load(Ordering::Relaxed) {
            self.txn.next_offsets_sweep_ms.store(
                now + self.config.offsets_retention_check_interval_ms,
                Ordering::Relaxed,
            );
            let expiry = self.offsets().remove_expired();
            report.expired_offsets = expiry.expired_offsets;
            report.deleted_groups = expiry.deleted_groups;
            report.failures += expiry.failures;
        }
        report
    }

    /// fsyncs every open log.
    ///
    /// # Errors
    /// The first storage failure.
    pub fn flush(&self) -> Result<(), StoreError> {
        for (_, _, log) in self.open_logs() {
            match log.flush() {
                // Its topic was deleted meanwhile: nothing of it is to be kept.
                Err(StorageError::Closed) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Closes every open log cleanly (the next open skips their recovery). A log still held
    /// elsewhere is flushed instead, and recovered at the next open.
    ///
    /// # Errors
    /// The first storage failure; every log is tried.
    pub fn close(self) -> Result<(), StoreError> {
        self.txn.closing.store(true, Ordering::Release);
        for part in &self.txn.partitions {
            part.slot.write().take();
        }
        self.offsets_state.unload();
        let mut first = None;
        for log in self.take_all_logs() {
            let result = match Arc::try_unwrap(log) {
                Ok(log) => log.close(),
                Err(shared) => shared.flush(),
            };
            if let Err(e) = result {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// `__transaction_state` or `__consumer_offsets`.
fn is_internal_topic(name: &str) -> bool {
    name == TRANSACTION_STATE_TOPIC || name == CONSUMER_OFFSETS_TOPIC
}

/// The configs every internal topic is created with (Kafka's: compacted, never deleted by
/// retention). Their durability is the store's `eoslog.internal.durability`, applied at each
/// open.
fn internal_configs(config: &StoreConfig, topic: &str) -> Vec<(String, String)> {
    let segment = if topic == TRANSACTION_STATE_TOPIC {
        config.txn_state_segment_bytes
    } else {
        config.offsets_segment_bytes
    };
    vec![
        ("cleanup.policy".into(), "compact".into()),
        ("segment.bytes".into(), segment.to_string()),
    ]
}

/// Creates `eoslog.store` in a new store, or checks that the internal topic partition counts
/// are the ones the store was created with.
fn check_store_file(fs: &dyn FileSystem, dir: &Path, config: &StoreConfig) -> Result<(), StoreError> {
    const HEADER: &str = "eoslog-store 1";
    let path = dir.join(STORE_FILE);
    let counts = [
        (TRANSACTION_STATE_TOPIC, config.txn_state_partitions),
        (CONSUMER_OFFSETS_TOPIC, config.offsets_partitions),
    ];
    if !fs.exists(&path) {
        let body: String = counts.iter().map(|(t, n)| format!("{t} {n}\n")).collect();
        sealed::write(fs, &path, HEADER, &body)?;
        return Ok(());
    }
    let stored: Vec<u32> = sealed::read(fs, &path, HEADER, "unreadable store file", |lines| {
        lines
            .zip(counts)
            .map(|(line, (topic, _))| line.strip_prefix(topic)?.trim().parse().ok())
            .collect::<Option<Vec<u32>>>()
            .filter(|v| v.len() == counts.len())
    })?;
    for ((topic, configured), stored) in counts.into_iter().zip(stored) {
        if stored != configured {
            return Err(StoreError::PartitionCountChanged {
                topic,
                stored,
                configured,
            });
        }
    }
    Ok(())
}
