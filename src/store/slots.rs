//! The partition logs a store has open, and the bound on how many: a log opens at its first
//! use, and when more than `eoslog.max.open.partitions` are open, the least recently used
//! one that nobody else holds is closed cleanly (its next use reopens it without recovery).
//! Kafka keeps every partition open, one file handle per file; eoslog lets a store hold more
//! partitions than the process may have files open.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::log::Log;

use super::{Store, StoreError, Topic};

/// One partition of a topic: its log while open, and when it was last asked for.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) log: Mutex<Option<Arc<Log>>>,
    used: AtomicU64,
    /// Its topic was deleted: it never opens a log again (set and read under `log`'s lock,
    /// so a lookup that found the topic before the deletion cannot open the old directory
    /// after it).
    deleted: AtomicBool,
}

/// The store-wide counters of open logs.
#[derive(Debug, Default)]
pub(crate) struct OpenLogs {
    count: AtomicUsize,
    tick: AtomicU64,
}

impl Store {
    /// The log of `topic`'s partition `partition`, opened if it is not (or, with `reopen`,
    /// dropped and opened again).
    pub(super) fn open_slot(
        &self,
        topic: &str,
        partition: i32,
        reopen: bool,
    ) -> Result<Arc<Log>, StoreError> {
        let (t, i) = self.slot_of(topic, partition)?;
        let slot = &t.slots[i];
        slot.used.store(
            self.opened.tick.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut log = slot.log.lock();
        if slot.deleted.load(Ordering::Acquire) {
            return Err(StoreError::UnknownTopic {
                topic: topic.to_owned(),
            });
        }
        if reopen && log.take().is_some() && !t.internal {
            self.opened.count.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(log) = log.as_ref() {
            return Ok(log.clone());
        }
        // Read under the slot's lock (a config change hands its new config to the logs open
        // in its slots under the same lock), and copied out before the open: a change waits
        // for no recovery.
        let config = t.config.read().clone();
        let opened = Arc::new(Log::open_with(
            self.partition_dir(topic, partition),
            config,
            self.options.clone(),
        )?);
        *log = Some(opened.clone());
        drop(log);
        if !t.internal {
            let open = self.opened.count.fetch_add(1, Ordering::AcqRel) + 1;
            if open > self.config.max_open_partitions {
                self.close_least_recently_used(slot);
            }
        }
        Ok(opened)
    }

    /// Closes the least recently used open log that only its slot holds (never `keep`, never
    /// an internal topic's). Best effort: a log in use by a request stays open.
    fn close_least_recently_used(&self, keep: &Slot) {
        let topics = self.topics.read();
        let mut oldest: Option<(u64, &Slot)> = None;
        for t in topics.values().filter(|t| !t.internal) {
            for slot in &t.slots {
                if std::ptr::eq(&**slot, keep) {
                    continue;
                }
                let used = slot.used.load(Ordering::Relaxed);
                if oldest.is_some_and(|(u, _)| u <= used) {
                    continue;
                }
                let Some(guard) = slot.log.try_lock() else {
                    continue;
                };
                if guard.as_ref().is_some_and(|l| Arc::strong_count(l) == 1) {
                    oldest = Some((used, slot));
                }
            }
        }
        let Some((_, slot)) = oldest else { return };
        let Some(mut guard) = slot.log.try_lock() else {
            return;
        };
        let Some(log) = guard.take() else { return };
        match Arc::try_unwrap(log) {
            Ok(log) => {
                self.opened.count.fetch_sub(1, Ordering::AcqRel);
                drop(guard);
                if let Err(e) = log.close() {
                    tracing::warn!(error = %e, "closing an idle partition failed; it recovers at its next open");
                }
            }
            Err(shared) => *guard = Some(shared), // taken by a reader meanwhile
        }
    }

    pub(super) fn slot_of(&self, topic: &str, partition: i32) -> Result<(Arc<Topic>, usize), StoreError> {
        let t = self
            .topics
            .read()
            .get(topic)
            .cloned()
            .ok_or_else(|| StoreError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        let i = usize::try_from(partition)
            .ok()
            .filter(|&p| p < t.slots.len())
            .ok_or_else(|| StoreError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })?;
        Ok((t, i))
    }

    /// The partition logs open now, with their topic and partition.
    pub(super) fn open_logs(&self) -> Vec<(String, i32, Arc<Log>)> {
        let topics = self.topics.read();
        let mut out = Vec::new();
        for (name, t) in topics.iter() {
            for (p, slot) in t.slots.iter().enumerate() {
                if let Some(log) = slot.log.lock().as_ref() {
                    out.push((name.clone(), p as i32, log.clone()));
                }
            }
        }
        out
    }

    /// Whether `topic`'s partition `partition` has its log open.
    pub(super) fn is_open(&self, topic: &str, partition: i32) -> bool {
        self.slot_of(topic, partition)
            .is_ok_and(|(t, i)| t.slots[i].log.lock().is_some())
    }

    /// How many partition logs of user topics are open (the internal topics' stay open).
    #[must_use]
    pub fn open_partition_count(&self) -> usize {
        self.opened.count.load(Ordering::Acquire)
    }

    /// Takes every log out of its slot (closing the store), and counts them closed.
    pub(super) fn take_all_logs(&self) -> Vec<Arc<Log>> {
        let topics = std::mem::take(&mut *self.topics.write());
        let mut out = Vec::new();
        for t in topics.into_values() {
            for slot in &t.slots {
                if let Some(log) = slot.log.lock().take() {
                    out.push(log);
                }
            }
        }
        self.opened.count.store(0, Ordering::Release);
        out
    }

    /// Takes a deleted topic's open logs out of their slots and retires each ([`Log::retire`]):
    /// once this returns, none of them touches its directory again.
    pub(super) fn retire_logs(&self, t: &Topic) {
        for slot in &t.slots {
            let log = {
                let mut log = slot.log.lock();
                slot.deleted.store(true, Ordering::Release);
                log.take()
            };
            if let Some(log) = log {
                self.opened.count.fetch_sub(1, Ordering::AcqRel);
                log.retire();
            }
        }
    }
}
