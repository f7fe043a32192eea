//! What a topic's configs are and where each comes from, for `kafka-configs --describe`
//! (Kafka's DescribeConfigs): the topic's own file, the store's defaults for every topic
//! (`log.segment.bytes`, ...: at open, or changed since as dynamic defaults), or the built-in
//! default.

use crate::compression::Compression;
use crate::config::{LogConfig, CONFIG_KEYS};
use crate::error::ConfigError;

use super::dynamic_defaults::DynamicScope;
use super::{config::LOG_DEFAULT_KEYS, Store, StoreConfig, StoreError, TopicRecord};

/// Where a topic's config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set for this topic (its `CreateTopics` configs): Kafka's `TOPIC_CONFIG`.
    Topic,
    /// This node's dynamic default ([`DynamicScope::Node`]): Kafka's
    /// `DYNAMIC_BROKER_CONFIG`.
    DynamicNode,
    /// The cluster-wide dynamic default ([`DynamicScope::Cluster`]): Kafka's
    /// `DYNAMIC_DEFAULT_BROKER_CONFIG`.
    DynamicCluster,
    /// The store's configuration (a broker's `--config`), for every topic: Kafka's
    /// `STATIC_BROKER_CONFIG`.
    Store,
    /// The default of a store configured with nothing: Kafka's `DEFAULT_CONFIG`.
    Default,
}

/// One config of a topic as it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicConfigEntry {
    /// Kafka's topic config name (or an `eoslog.` one).
    pub name: &'static str,
    /// The value, as [`LogConfig::set`] takes it: the topic's own as it was given, else the
    /// default's canonical form.
    pub value: String,
    /// Where it comes from.
    pub source: ConfigSource,
    /// The store config that gives it to every topic, if any (Kafka's synonym).
    pub store_default: Option<StoreDefault>,
}

/// The store config behind a topic config's default: `log.segment.bytes` for
/// `segment.bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreDefault {
    /// The store config's name (Kafka's broker config name, or an `eoslog.` one).
    pub key: &'static str,
    /// What it gives the topic in this store now (a dynamic default included).
    pub value: String,
    /// What the store's own config (at open) gives the topic.
    pub configured: String,
    /// The node's dynamic default, if set ([`Store::alter_dynamic_defaults`]).
    pub node: Option<String>,
    /// The cluster-wide dynamic default, if set.
    pub cluster: Option<String>,
    /// What it gives the topic in a store configured with nothing.
    pub unconfigured: String,
    /// When the store's config set it by a synonym in other units (`log.retention.hours`
    /// for `retention.ms`): that synonym's name and value, as given.
    pub configured_as: Option<(&'static str, String)>,
    /// When Kafka names the default of a store configured with nothing by a synonym in
    /// other units (`log.retention.hours=168` for `retention.ms`): that name and value.
    pub unconfigured_as: Option<(&'static str, String)>,
}

impl Store {
    /// Every config of topic `name` with its value as the topic's logs apply it, in
    /// [`CONFIG_KEYS`] order.
    ///
    /// # Errors
    /// A name no topic can have ([`StoreError::InvalidTopic`], as Kafka checks first); an
    /// unknown topic.
    pub fn topic_configs(&self, name: &str) -> Result<Vec<TopicConfigEntry>, StoreError> {
        super::topics::valid_name(name).map_err(|reason| StoreError::InvalidTopic {
            topic: name.to_owned(),
            reason,
        })?;
        let topics = self.topics.read();
        let topic = topics.get(name).ok_or_else(|| StoreError::UnknownTopic {
            topic: name.to_owned(),
        })?;
        let bare = TopicRecord {
            partitions: topic.record.partitions,
            configs: Vec::new(),
        };
        // What the topic would get without its own configs: in this store now, from the
        // store's own config, and in a store configured with nothing. None can fail: the
        // topic's own configs are what could.
        // One read of the dynamic layers and the defaults they give.
        let dynamic = self.dynamic.read();
        let from_store = effective_config(&self.config, &dynamic.defaults, name, &bare)?;
        let configured = effective_config(&self.config, &self.config.log_defaults, name, &bare)?;
        let unconfigured = effective_config(&StoreConfig::default(), &LogConfig::default(), name, &bare)?;
        let layer = |scope, key| dynamic.layers.get(scope, key).map(str::to_owned);
        let config = topic.config.read();
        Ok(CONFIG_KEYS
            .iter()
            .filter_map(|&key| {
                let value = config.get(key)?;
                let store_default = store_key(key, topic.internal).and_then(|store_key| {
                    Some(StoreDefault {
                        key: store_key,
                        value: from_store.get(key)?,
                        configured: configured.get(key)?,
                        node: layer(DynamicScope::Node, key),
                        cluster: layer(DynamicScope::Cluster, key),
                        unconfigured_as: unconfigured
                            .get(key)
                            .and_then(|v| super::config::default_in_other_units(key, &v)),
                        unconfigured: unconfigured.get(key)?,
                        configured_as: self
                            .config
                            .synonym_in_other_units(key)
                            .map(|(k, v)| (k, v.to_owned())),
                    })
                });
                let own = topic.record.configs.iter().find(|(k, _)| k == key);
                let source = match &store_default {
                    _ if own.is_some() => ConfigSource::Topic,
                    Some(d) if d.node.is_some() => ConfigSource::DynamicNode,
                    Some(d) if d.cluster.is_some() => ConfigSource::DynamicCluster,
                    Some(d) if d.configured != d.unconfigured => ConfigSource::Store,
                    _ => ConfigSource::Default,
                };
                Some(TopicConfigEntry {
                    name: key,
                    // The topic's own value as it was set (`delete,compact`), as Kafka shows it.
                    value: own.map_or(value, |(_, v)| v.clone()),
                    source,
                    store_default,
                })
            })
            .collect())
    }
}

impl Store {
    /// Checks the configs a topic named `name` would be created with, as
    /// [`Store::create_topic`] checks them, creating nothing (a broker's `validate_only`).
    ///
    /// # Errors
    /// The first key or value the topic's logs would refuse ([`StoreError::Config`]).
    pub fn check_topic_configs(&self, name: &str, configs: &[(&str, &str)]) -> Result<(), StoreError> {
        let record = TopicRecord {
            partitions: 1,
            configs: configs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        checked_config(&self.config, &self.log_defaults(), name, &record, None).map(drop)
    }
}

/// The config topic `name` with file `record` gives its logs, checked as a creation or a
/// config change checks it: a topic may not name the key the store decides, and its
/// compaction lags may not conflict (Kafka's `LogConfig.validateValues`). A topic loaded
/// from its file is not checked again ([`effective_config`]).
///
/// `before` is the topic's config before a change (`None` for a creation): a codec this
/// build leaves out, kept from a store's files ([`LogConfig::set_stored`]), stays through a
/// change of other keys, but no creation or change may bring one in.
pub(super) fn checked_config(
    config: &StoreConfig,
    defaults: &LogConfig,
    name: &str,
    record: &TopicRecord,
    before: Option<&LogConfig>,
) -> Result<LogConfig, StoreError> {
    if let Some((key, value)) = record.configs.iter().find(|(k, _)| k == STORE_DECIDED) {
        // The store would override it unseen.
        return Err(ConfigError::InvalidValue {
            key: key.clone(),
            value: value.clone(),
            reason: "a store takes it from transaction.partition.verification.enable",
        }
        .into());
    }
    let log = effective_config(config, defaults, name, record)?;
    check_codec_change(before.map(|b| b.compression_type), log.compression_type)?;
    if log.min_compaction_lag_ms > log.max_compaction_lag_ms {
        return Err(ConfigError::InvalidValue {
            key: "min.compaction.lag.ms".into(),
            value: format!(
                "{} > max.compaction.lag.ms {}",
                log.min_compaction_lag_ms, log.max_compaction_lag_ms
            ),
            reason: "conflict topic config setting: above max.compaction.lag.ms",
        }
        .into());
    }
    Ok(log)
}

/// Refuses a `compression.type` (a topic's, or the topics' default) that a change makes a
/// codec this build leaves out, as [`LogConfig::set`] refuses one; `before` is `None` for a
/// creation. One kept from a store's files, unchanged, passes.
pub(super) fn check_codec_change(
    before: Option<Option<Compression>>,
    after: Option<Compression>,
) -> Result<(), ConfigError> {
    match after {
        Some(codec) if !codec.is_enabled() && before != Some(after) => Err(ConfigError::InvalidValue {
            key: "compression.type".into(),
            value: codec.name().into(),
            reason: "this build leaves the codec out (its cargo feature is off)",
        }),
        _ => Ok(()),
    }
}

/// The log config a store sets for every topic itself (from
/// `transaction.partition.verification.enable`): neither a store config nor a topic's own
/// may name it.
pub(super) const STORE_DECIDED: &str = "eoslog.transaction.verification";

/// The store config that sets topic config `key`'s default.
fn store_key(key: &'static str, internal: bool) -> Option<&'static str> {
    match key {
        "eoslog.durability" if internal => Some("eoslog.internal.durability"),
        STORE_DECIDED => Some("transaction.partition.verification.enable"),
        _ if key.starts_with("eoslog.") => Some(key),
        _ => LOG_DEFAULT_KEYS
            .iter()
            .find(|&&(_, topic_key)| topic_key == key)
            .map(|&(store_key, _)| store_key)
            .or((key == "transaction.max.timeout.ms").then_some(key)),
    }
}

/// The config the logs of topic `name` with file `record` get in a store configured with
/// `config` whose topic defaults are `defaults` (`config.log_defaults` with the dynamic
/// ones over them): those defaults, the topic's own configs over them, then what the store
/// decides for every topic (KIP-890 verification, the internal topics' durability).
pub(super) fn effective_config(
    config: &StoreConfig,
    defaults: &LogConfig,
    name: &str,
    record: &TopicRecord,
) -> Result<LogConfig, StoreError> {
    let mut log = defaults.clone();
    for (k, v) in &record.configs {
        log.set_stored(k, v)?;
    }
    if log.transaction_timeout_ms > 0 {
        // A partition that aborted on its own would split a transaction its coordinator
        // commits elsewhere.
        return Err(crate::error::ConfigError::InvalidValue {
            key: "eoslog.transaction.timeout.ms".into(),
            value: log.transaction_timeout_ms.to_string(),
            reason: "in a store, the transaction coordinator times transactions out",
        }
        .into());
    }
    log.transaction_verification = config.transaction_verification;
    if super::is_internal_topic(name) {
        log.durability = config.internal_durability;
        // The coordinators' records are stored as they write them (uncompressed). Kafka
        // creates `__consumer_offsets` with `producer` and `__transaction_state` with
        // `uncompressed`, the same for records written uncompressed.
        log.compression_type = None;
    }
    Ok(log)
}
