//! Changing a topic's own configs while its logs are open (Kafka's IncrementalAlterConfigs
//! and AlterConfigs for a TOPIC resource): the change is durable in the topic's file before
//! the store's map shows it, and every open log of the topic takes it before the call
//! returns ([`Log::set_config`](crate::Log::set_config)).

use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::ConfigError;

use super::topic_configs::checked_config;
use super::{topics, Store, StoreError, Topic, TopicRecord};

impl Topic {
    /// Hands the topic's config to each of its open logs. Each takes it as it is when its
    /// slot is locked: a log opening meanwhile read it under the same lock, and of two
    /// changes racing, the later one's config is what both hand over last.
    pub(super) fn hand_over_config(&self) {
        for slot in &self.slots {
            let log = slot.log.lock();
            if let Some(log) = log.as_ref() {
                let config = self.config.read().clone();
                // Checked by the change as the log checks it (and its high watermark mode
                // is the topic's): a refusal here would be a bug, and the change is durable.
                if let Err(e) = log.set_config(config) {
                    tracing::error!(dir = %log.dir().display(), error = %e, "an open log refused its topic's new config");
                }
            }
        }
    }
}

/// One change to a topic's own configs: Kafka's `AlterConfigOp` types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicConfigOp<'a> {
    /// Gives the topic its own `value` for `key`.
    Set {
        /// The config name.
        key: &'a str,
        /// Its value, as [`LogConfig::set`] takes it.
        value: &'a str,
    },
    /// Removes the topic's own value of `key`: the store's default applies again. A key the
    /// topic has no value of is left as it is.
    Delete {
        /// The config name.
        key: &'a str,
    },
    /// Adds the comma-separated `items` a list config (`cleanup.policy`) does not have yet,
    /// in order, to its value: the topic's own, else the built-in default (`delete`, as
    /// Kafka starts from its static default, not the broker's `log.cleanup.policy`).
    Append {
        /// The config name.
        key: &'a str,
        /// Comma-separated items.
        items: &'a str,
    },
    /// Removes the comma-separated `items` from a list config's value.
    Subtract {
        /// The config name.
        key: &'a str,
        /// Comma-separated items.
        items: &'a str,
    },
}

impl<'a> TopicConfigOp<'a> {
    /// The same op on `key`.
    pub(super) fn with_key<'b>(&self, key: &'b str) -> TopicConfigOp<'b>
    where
        'a: 'b,
    {
        match *self {
            TopicConfigOp::Set { value, .. } => TopicConfigOp::Set { key, value },
            TopicConfigOp::Delete { .. } => TopicConfigOp::Delete { key },
            TopicConfigOp::Append { items, .. } => TopicConfigOp::Append { key, items },
            TopicConfigOp::Subtract { items, .. } => TopicConfigOp::Subtract { key, items },
        }
    }

    /// The config name it changes.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            TopicConfigOp::Set { key, .. }
            | TopicConfigOp::Delete { key }
            | TopicConfigOp::Append { key, .. }
            | TopicConfigOp::Subtract { key, .. } => key,
        }
    }
}

/// The config keys whose value is a list (Kafka's `ConfigDef.Type.LIST`).
const LIST_KEYS: &[&str] = &[
    "cleanup.policy",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// Whether `key`, a topic config or its broker name (`log.cleanup.policy`), holds a list
/// (Kafka's `ConfigDef.Type.LIST`): APPEND and SUBTRACT apply to it, and DescribeConfigs
/// types it LIST.
#[must_use]
pub fn is_list_config(key: &str) -> bool {
    LIST_KEYS.contains(&key) || super::dynamic_defaults::topic_key(key).is_ok_and(|k| LIST_KEYS.contains(&k))
}

impl Store {
    /// Applies `ops` to topic `name`'s own configs, in order, all or none (Kafka's
    /// IncrementalAlterConfigs for one TOPIC resource). With `validate_only` it checks them
    /// and changes nothing.
    ///
    /// Every open log of the topic takes the new config before this returns; each key
    /// applies from the next operation that reads it ([`Log::set_config`](crate::Log::set_config)).
    ///
    /// # Errors
    /// An invalid name or an internal topic ([`StoreError::InvalidTopic`]: the store
    /// configures its internal topics; Kafka lets an operator change them); an unknown
    /// topic; an APPEND or SUBTRACT of a key that is not a list ([`ConfigError::NotAList`]);
    /// a config the topic's logs would refuse, as [`Store::create_topic`] checks them
    /// ([`StoreError::Config`]); storage failures.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        ops: &[TopicConfigOp<'_>],
        validate_only: bool,
    ) -> Result<(), StoreError> {
        self.change_topic_configs(name, validate_only, |own| {
            for op in ops {
                apply(own, op)?;
            }
            Ok(())
        })
    }

    /// Replaces topic `name`'s own configs with `configs`: a key not in it gets the store's
    /// default again (Kafka's legacy AlterConfigs). Otherwise as
    /// [`Store::alter_topic_configs`].
    ///
    /// # Errors
    /// As [`Store::alter_topic_configs`].
    pub fn replace_topic_configs(
        &self,
        name: &str,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> Result<(), StoreError> {
        self.change_topic_configs(name, validate_only, |own| {
            *own = configs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Ok(())
        })
    }

    /// The one path of a config change: `change` edits the topic's own configs; the result
    /// is checked as a creation's, written to the topic's file, and handed to its open logs. The topics lock is held from the read of the current
    /// configs to the install, so concurrent changes apply one after the other.
    fn change_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        super::topics::valid_name(name).map_err(|reason| StoreError::InvalidTopic {
            topic: name.to_owned(),
            reason,
        })?;
        let mut topics = self.topics.write();
        let topic = super::topic_admin::user_topic(
            &topics,
            name,
            "the store configures its internal topics (offsets.topic.* and \
             transaction.state.log.* configs)",
        )?;
        let current = topic.config.read().clone();
        let mut own = topic.record.configs.clone();
        change(&mut own)?;
        let record = TopicRecord {
            partitions: topic.record.partitions,
            configs: own,
        };
        let config = checked_config(&self.config, &self.log_defaults(), name, &record, Some(&current))?;
        if config.high_watermark != current.high_watermark {
            return Err(ConfigError::InvalidValue {
                key: "eoslog.high.watermark".into(),
                value: config.get("eoslog.high.watermark").unwrap_or_default(),
                reason: "fixed for the topic's life (its logs' watermarks were computed by it): set it at creation",
            }
            .into());
        }
        if validate_only {
            return Ok(());
        }
        topics::write(&*self.options.fs, &self.dir, name, &record)?;
        *topic.config.write() = config;
        let changed = Topic {
            record,
            config: topic.config.clone(),
            internal: false,
            slots: topic.slots.clone(),
        };
        topics.insert(name.to_owned(), Arc::new(changed));
        drop(topics);
        topic.hand_over_config();
        Ok(())
    }
}

/// Applies one op to a topic's own configs (or a layer of dynamic defaults, by topic key).
pub(super) fn apply(own: &mut Vec<(String, String)>, op: &TopicConfigOp<'_>) -> Result<(), StoreError> {
    let key = op.key();
    let position = own.iter().position(|(k, _)| k == key);
    let value = match *op {
        TopicConfigOp::Set { value, .. } => value.to_owned(),
        TopicConfigOp::Delete { .. } => {
            if let Some(i) = position {
                own.remove(i);
            }
            return Ok(());
        }
        TopicConfigOp::Append { items, .. } | TopicConfigOp::Subtract { items, .. } => {
            if !LIST_KEYS.contains(&key) {
                // An unknown key too, as Kafka's controller answers it.
                return Err(ConfigError::NotAList { key: key.to_owned() }.into());
            }
            let base = position
                .map(|i| own[i].1.clone())
                .or_else(|| LogConfig::default().get(key))
                .unwrap_or_default();
            let mut list: Vec<&str> = base.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            for item in items.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if matches!(op, TopicConfigOp::Append { .. }) {
                    if !list.contains(&item) {
                        list.push(item);
                    }
                } else {
                    list.retain(|&i| i != item);
                }
            }
            list.join(",")
        }
    };
    match position {
        Some(i) => own[i].1 = value,
        None => own.push((key.to_owned(), value)),
    }
    Ok(())
}
