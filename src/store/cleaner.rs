//! The store's cleaner passes: every open compacted log that is due gets cleaned, either
//! inside [`Store::run_maintenance`] (`log.cleaner.threads` = 0, the library's default) or
//! from the embedder's own cleaner threads calling [`Store::run_cleaner`] (Kafka's
//! `log.cleaner.threads`; the example broker runs one by default). On their own threads, a
//! long clean never holds up maintenance's transaction timeouts. A pass takes the due logs
//! dirtiest first, as Kafka's cleaner threads grab the filthiest log.

use std::collections::HashSet;

use parking_lot::Mutex;

use super::Store;
use crate::TopicPartition;

/// What one cleaner pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanerPassReport {
    /// Compacted logs cleaned.
    pub cleaned_logs: usize,
    /// The logs cleaned, in the order they were.
    pub cleaned: Vec<TopicPartition>,
    /// Logs whose clean failed (each logged; tried again at the next pass).
    pub failures: usize,
}

/// The logs a cleaner thread is cleaning now, so that the others pass them by.
#[derive(Debug, Default)]
pub(super) struct Cleaning(Mutex<HashSet<(String, i32)>>);

/// Releases a claimed log when its clean ends, however it ends.
struct Claim<'a> {
    cleaning: &'a Cleaning,
    key: (String, i32),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.cleaning.0.lock().remove(&self.key);
    }
}

impl Cleaning {
    fn claim(&self, topic: &str, partition: i32) -> Option<Claim<'_>> {
        let key = (topic.to_owned(), partition);
        let claimed = self.0.lock().insert(key.clone());
        // (Not `then_some`: it would build, and drop, a claim for a log another thread has.)
        claimed.then(|| Claim { cleaning: self, key })
    }
}

impl Store {
    /// One cleaner pass: cleans every open compacted log that is due (its dirty ratio or
    /// `max.compaction.lag.ms`), passing by logs that another thread is cleaning and logs
    /// that failed a write (maintenance reopens those). Does nothing when `log.cleaner.enable`
    /// is off. A cleaner thread calls it in a loop and sleeps `log.cleaner.backoff.ms` after
    /// a pass that cleaned nothing, as Kafka's cleaner threads do.
    pub fn run_cleaner(&self) -> CleanerPassReport {
        let mut report = CleanerPassReport::default();
        if !self.config.cleaner_enabled {
            return report;
        }
        // Due logs first (the dirty ratio reached, or `max.compaction.lag.ms` passed), each
        // group dirtiest first. A log whose state cannot be read goes first: its clean then
        // reports the failure.
        let mut candidates: Vec<_> = self
            .open_logs()
            .into_iter()
            .filter(|(_, _, log)| !log.is_poisoned() && log.config().cleanup_policy.compact)
            .filter_map(|(topic, p, log)| {
                let rank = match log.cleanability() {
                    Ok(c) if c.due => (1, c.dirty_ratio),
                    Ok(_) => return None,
                    Err(_) => (2, 0.0),
                };
                Some((rank, topic, p, log))
            })
            .collect();
        candidates.sort_by(|a, b| b.0 .0.cmp(&a.0 .0).then(b.0 .1.total_cmp(&a.0 .1)));
        for (_, topic, p, log) in candidates {
            let Some(_claim) = self.cleaning.claim(&topic, p) else {
                continue;
            };
            match log.clean(&self.config.cleaner, false) {
                Ok(Some(_)) => {
                    report.cleaned_logs += 1;
                    report.cleaned.push(TopicPartition::new(&topic, p));
                }
                Ok(None) => {}
                Err(e) => {
                    report.failures += 1;
                    tracing::warn!(topic, partition = p, error = %e, "cleaning failed");
                }
            }
        }
        report
    }
}
