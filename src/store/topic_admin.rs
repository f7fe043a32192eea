//! Creating, growing and deleting topics: each change is durable in the topic's file (or
//! its removal) before the store's map shows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{io_err, topics, Store, StoreError, Topic, TopicRecord, MAX_PARTITIONS, TOPICS_DIR};

impl Store {
    /// Creates a topic with `partitions` partitions and its own configs (Kafka's topic config
    /// names, checked now). Its partition directories appear at their first use.
    ///
    /// # Errors
    /// An invalid or internal name, an existing topic, a name colliding with an existing
    /// topic's in `.` against `_` ([`StoreError::TopicCollides`]), a zero count, an invalid
    /// config, storage failures.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        topics::valid_name(name).map_err(|reason| StoreError::InvalidTopic {
            topic: name.to_owned(),
            reason,
        })?;
        if name.starts_with("__") {
            return Err(StoreError::InvalidTopic {
                topic: name.to_owned(),
                reason: "names starting with \"__\" are Kafka's internal topics",
            });
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(StoreError::InvalidPartitions {
                topic: name.to_owned(),
                partitions,
            });
        }
        self.check_topic_configs(name, configs)?;
        let configs: Vec<(String, String)> = configs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.create_topic_record(name, partitions, &configs)
    }

    /// Raises a topic's partition count to `partitions` (Kafka's CreatePartitions,
    /// `kafka-topics --alter --partitions`): the topic's file records the new count, the
    /// new partitions start empty (their directories appear at first use), and the existing
    /// ones, open or not, are untouched. As in Kafka, keys hash to other partitions from
    /// then on.
    ///
    /// # Errors
    /// An unknown topic; an internal one (the coordinators place ids by its count); a count
    /// not above the current one, or too large; storage failures.
    pub fn increase_partitions(&self, name: &str, partitions: u32) -> Result<(), StoreError> {
        let mut topics = self.topics.write();
        let topic = Self::increasable(&topics, name, partitions)?;
        let record = TopicRecord {
            partitions,
            configs: topic.record.configs.clone(),
        };
        topics::write(&*self.options.fs, &self.dir, name, &record)?;
        let slots = topic
            .slots
            .iter()
            .cloned()
            .chain((topic.slots.len()..partitions as usize).map(|_| Arc::default()))
            .collect();
        let grown = Topic {
            record,
            config: topic.config.clone(),
            internal: false,
            slots,
        };
        topics.insert(name.to_owned(), Arc::new(grown));
        Ok(())
    }

    /// Whether [`Store::increase_partitions`] would accept `partitions` for `name` now
    /// (CreatePartitions with `validate_only`, and its checks of a manual assignment):
    /// the topic's partition count if it would.
    ///
    /// # Errors
    /// As [`Store::increase_partitions`], storage failures aside.
    pub fn check_increase_partitions(&self, name: &str, partitions: u32) -> Result<u32, StoreError> {
        Self::increasable(&self.topics.read(), name, partitions).map(|t| t.record.partitions)
    }

    /// The rules of a partition increase: the topic as it is, if `partitions` may replace
    /// its count.
    fn increasable(
        topics: &BTreeMap<String, Arc<Topic>>,
        name: &str,
        partitions: u32,
    ) -> Result<Arc<Topic>, StoreError> {
        let topic = user_topic(
            topics,
            name,
            "an internal topic's partition count places the coordinators' ids",
        )?;
        let current = topic.record.partitions;
        if partitions <= current {
            return Err(StoreError::PartitionsNotIncreased {
                topic: name.to_owned(),
                current,
                requested: partitions,
            });
        }
        if partitions > MAX_PARTITIONS {
            return Err(StoreError::InvalidPartitions {
                topic: name.to_owned(),
                partitions,
            });
        }
        Ok(topic)
    }

    /// Deletes a topic: its file first (it is gone from then on), then every partition
    /// directory (open logs are closed first).
    ///
    /// # Errors
    /// An unknown or internal topic, storage failures.
    pub fn delete_topic(&self, name: &str) -> Result<(), StoreError> {
        let fs = &*self.options.fs;
        let topic = {
            let mut topics = self.topics.write();
            let Some(topic) = topics.get(name).cloned() else {
                return Err(StoreError::UnknownTopic {
                    topic: name.to_owned(),
                });
            };
            if topic.internal {
                return Err(StoreError::InvalidTopic {
                    topic: name.to_owned(),
                    reason: "an internal topic cannot be deleted",
                });
            }
            let path = topics::topic_path(&self.dir, name);
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
            let topics_dir = self.dir.join(TOPICS_DIR);
            // IMPORTANT: the topic is gone once its file's removal is durable.
            fs.sync_dir(&topics_dir)
                .map_err(io_err("fsync directory", &topics_dir))?;
            topics.remove(name);
            topic
        };
        // A reader still holding a log keeps its open files and reads on; the directory goes
        // once no writer of the log (a clean above all) can touch it again, so a topic
        // created again under the name never sees the old one's files.
        self.retire_logs(&topic);
        for p in 0..topic.slots.len() {
            let pdir = self.partition_dir(name, p as i32);
            if fs.exists(&pdir) {
                fs.remove_dir_all(&pdir).map_err(io_err("remove", &pdir))?;
            }
        }
        fs.sync_dir(&self.dir)
            .map_err(io_err("fsync directory", &self.dir))?;
        Ok(())
    }
}

/// Topic `name` as it is, for a change a user topic may take and an internal one may not
/// (refused for `internal_reason`).
pub(super) fn user_topic(
    topics: &BTreeMap<String, Arc<Topic>>,
    name: &str,
    internal_reason: &'static str,
) -> Result<Arc<Topic>, StoreError> {
    let topic = topics
        .get(name)
        .cloned()
        .ok_or_else(|| StoreError::UnknownTopic {
            topic: name.to_owned(),
        })?;
    if topic.internal {
        return Err(StoreError::InvalidTopic {
            topic: name.to_owned(),
            reason: internal_reason,
        });
    }
    Ok(topic)
}
