//! The topics' defaults changed while the store serves: Kafka's dynamic broker configs
//! (`kafka-configs --entity-type brokers --entity-default` for the cluster-wide layer,
//! `--entity-name <id>` for the node's) of the `log.*` keys a topic config falls back to.
//!
//! A topic's config is, from least to most specific: the built-in default, the store's
//! [`StoreConfig`] (Kafka's static broker config), the cluster-wide dynamic default, the
//! node's dynamic default, the topic's own. Both dynamic layers live in one sealed file,
//! `eoslog.dynamic-configs` (docs/FORMAT.md §6), written before any log sees a change; every
//! open log of every topic without its own value takes the new one before the call returns
//! ([`Log::set_config`](crate::Log::set_config)).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{ConfigError, StorageError};
use crate::fs::FileSystem;

use super::alter_configs::{apply, TopicConfigOp};
use super::config::LOG_DEFAULT_KEYS;
use super::topic_configs::effective_config;
use super::{sealed, Store, StoreError};

/// The file holding both dynamic layers, in the store's directory.
pub const DYNAMIC_CONFIGS_FILE: &str = "eoslog.dynamic-configs";
const HEADER: &str = "eoslog-dynamic-configs 1";

/// Which layer of dynamic defaults a change is for (Kafka's BROKER config resource named
/// `""` or by the node's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DynamicScope {
    /// Every broker's default (Kafka's `DYNAMIC_DEFAULT_BROKER_CONFIG`).
    Cluster,
    /// This node's, over the cluster's (Kafka's `DYNAMIC_BROKER_CONFIG`).
    Node,
}

/// Both layers, each by topic config name (`retention.ms`) in the order first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct DynamicDefaults {
    cluster: Vec<(String, String)>,
    node: Vec<(String, String)>,
}

/// The dynamic layers and the topics' defaults they give (the store's own with both over
/// them), swapped together.
#[derive(Debug)]
pub(super) struct Dynamic {
    pub(super) layers: DynamicDefaults,
    pub(super) defaults: Arc<LogConfig>,
}

impl DynamicDefaults {
    /// The `scope` layer's value of topic config `key`, if set.
    pub(super) fn get(&self, scope: DynamicScope, key: &str) -> Option<&str> {
        self.layer(scope)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn layer(&self, scope: DynamicScope) -> &Vec<(String, String)> {
        match scope {
            DynamicScope::Cluster => &self.cluster,
            DynamicScope::Node => &self.node,
        }
    }

    fn layer_mut(&mut self, scope: DynamicScope) -> &mut Vec<(String, String)> {
        match scope {
            DynamicScope::Cluster => &mut self.cluster,
            DynamicScope::Node => &mut self.node,
        }
    }

    /// `statics` (the store's topic defaults) with the cluster's layer, then the node's,
    /// over them.
    pub(super) fn over(&self, statics: &LogConfig) -> Result<LogConfig, ConfigError> {
        let mut out = statics.clone();
        for (k, v) in self.cluster.iter().chain(&self.node) {
            out.set_stored(k, v)?;
        }
        Ok(out)
    }

    /// The layers stored in `dir` (none when the file does not exist).
    pub(super) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(DYNAMIC_CONFIGS_FILE);
        if !fs.exists(&path) {
            return Ok(Self::default());
        }
        sealed::read(fs, &path, HEADER, "unreadable dynamic configs file", |lines| {
            let mut out = Self::default();
            for line in lines {
                let (scope, pair) = line.split_once(' ')?;
                let (k, v) = pair.split_once('=')?;
                let layer = match scope {
                    "cluster" => &mut out.cluster,
                    "node" => &mut out.node,
                    _ => return None,
                };
                layer.push((k.to_owned(), v.to_owned()));
            }
            Some(out)
        })
    }

    fn write(&self, fs: &dyn FileSystem, dir: &Path) -> Result<(), StorageError> {
        let mut body = String::new();
        for (scope, layer) in [("cluster", &self.cluster), ("node", &self.node)] {
            for (k, v) in layer {
                let _ = writeln!(body, "{scope} {k}={v}");
            }
        }
        sealed::write(fs, &dir.join(DYNAMIC_CONFIGS_FILE), HEADER, &body)
    }
}

/// The topic config a dynamic broker key sets (`log.retention.ms`: `retention.ms`).
pub(super) fn topic_key(broker_key: &str) -> Result<&'static str, ConfigError> {
    LOG_DEFAULT_KEYS
        .iter()
        .find(|&&(b, _)| b == broker_key)
        .map(|&(_, t)| t)
        .ok_or_else(|| ConfigError::UnknownKey {
            key: broker_key.to_owned(),
        })
}

/// The dynamic broker key of a topic config (`retention.ms`: `log.retention.ms`).
pub(super) fn broker_key(topic_key: &str) -> Option<&'static str> {
    LOG_DEFAULT_KEYS
        .iter()
        .find(|&&(_, t)| t == topic_key)
        .map(|&(b, _)| b)
}

/// `e` naming the broker key of the topic config it names (the key the caller gave).
fn by_broker_key(e: StoreError) -> StoreError {
    let rename = |key: &mut String| {
        if let Some(b) = broker_key(key) {
            *key = b.to_owned();
        }
    };
    match e {
        StoreError::Config(mut c) => {
            match &mut c {
                ConfigError::UnknownKey { key }
                | ConfigError::NotAList { key }
                | ConfigError::InvalidValue { key, .. } => rename(key),
            }
            StoreError::Config(c)
        }
        other => other,
    }
}

/// Whether `key` is a broker config [`Store::alter_dynamic_defaults`] takes.
#[must_use]
pub fn is_dynamic_default(key: &str) -> bool {
    topic_key(key).is_ok()
}

impl Store {
    /// Applies `ops` to the `scope` layer of the topics' dynamic defaults, in order, all or
    /// none (Kafka's IncrementalAlterConfigs for a BROKER resource). Keys are Kafka's broker
    /// names of topic defaults (`log.retention.ms`, `log.cleanup.policy`, `message.max.bytes`,
    /// ... [`is_dynamic_default`]); a DELETE gives the key back to the layer below. With
    /// `validate_only` it checks them and changes nothing.
    ///
    /// Every open log of a topic without its own value takes the new default before this
    /// returns; a topic created later starts from it; it survives a reopen.
    ///
    /// # Errors
    /// A key that is not a topic default ([`ConfigError::UnknownKey`]); a list op on a key
    /// that is not a list; a value a topic would refuse ([`StoreError::Config`]); storage
    /// failures.
    pub fn alter_dynamic_defaults(
        &self,
        scope: DynamicScope,
        ops: &[TopicConfigOp<'_>],
        validate_only: bool,
    ) -> Result<(), StoreError> {
        self.change_dynamic_defaults(scope, validate_only, |layer| {
            for op in ops {
                apply(layer, &op.with_key(topic_key(op.key())?))?;
            }
            Ok(())
        })
    }

    /// Replaces the `scope` layer with `configs` (Kafka's legacy AlterConfigs for a BROKER
    /// resource). Otherwise as [`Store::alter_dynamic_defaults`].
    ///
    /// # Errors
    /// As [`Store::alter_dynamic_defaults`].
    pub fn replace_dynamic_defaults(
        &self,
        scope: DynamicScope,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> Result<(), StoreError> {
        self.change_dynamic_defaults(scope, validate_only, |layer| {
            layer.clear();
            for &(k, v) in configs {
                layer.push((topic_key(k)?.to_owned(), v.to_owned()));
            }
            Ok(())
        })
    }

    /// The `scope` layer's keys (Kafka's broker names) and values.
    #[must_use]
    pub fn dynamic_defaults(&self, scope: DynamicScope) -> Vec<(&'static str, String)> {
        self.dynamic
            .read()
            .layers
            .layer(scope)
            .iter()
            .filter_map(|(k, v)| Some((broker_key(k)?, v.clone())))
            .collect()
    }

    /// The topics' defaults now: the store's own with the dynamic layers over them.
    pub(super) fn log_defaults(&self) -> Arc<LogConfig> {
        Arc::clone(&self.dynamic.read().defaults)
    }

    /// The one path of a change: `change` edits the layer; every topic's config is computed
    /// under the result (a refusal changes nothing), the file is written, then the topics
    /// and their open logs take it. The topics lock is held from the read of the layers to
    /// the install, so a change, a topic's own change and a creation apply one after the
    /// other.
    fn change_dynamic_defaults(
        &self,
        scope: DynamicScope,
        validate_only: bool,
        change: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let topics = self.topics.write();
        let mut layers = self.dynamic.read().layers.clone();
        change(layers.layer_mut(scope)).map_err(by_broker_key)?;
        let defaults = layers
            .over(&self.config.log_defaults)
            .map_err(|e| by_broker_key(e.into()))?;
        super::topic_configs::check_codec_change(
            Some(self.log_defaults().compression_type),
            defaults.compression_type,
        )?;
        if defaults.min_compaction_lag_ms > defaults.max_compaction_lag_ms {
            // Else every topic created without its own lags would be refused.
            return Err(ConfigError::InvalidValue {
                key: "log.cleaner.min.compaction.lag.ms".into(),
                value: defaults.min_compaction_lag_ms.to_string(),
                reason: "above log.cleaner.max.compaction.lag.ms",
            }
            .into());
        }
        let configs = topics
            .iter()
            .map(|(name, topic)| {
                let config = effective_config(&self.config, &defaults, name, &topic.record)?;
                Ok((Arc::clone(topic), config))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if validate_only {
            return Ok(());
        }
        layers.write(&*self.options.fs, &self.dir)?;
        *self.dynamic.write() = Dynamic {
            layers,
            defaults: Arc::new(defaults),
        };
        for (topic, config) in &configs {
            *topic.config.write() = config.clone();
        }
        drop(topics);
        for (topic, _) in &configs {
            topic.hand_over_config();
        }
        Ok(())
    }
}
