//! Segments leaving the log: their files unlinked at once, or set aside under Kafka's
//! `.deleted` names and removed `file.delete.delay.ms` later by maintenance.
//!
//! Removing a file frees its blocks, and on ext4 that work is done by the call that drops
//! the last link or the last open handle: milliseconds for a large segment. Set aside, the
//! segment's files are renamed (no blocks freed) and its handles close while the files still
//! have a name, so retention, truncation and the cleaner do not pay for the freeing, and
//! neither does an append waiting on the writer lock that retention holds. The blocks go
//! when the files are removed: by the first maintenance pass after the delay, or by the next
//! retention, DeleteRecords, truncation or clean (each removes the files that are due before
//! it takes a lock), so an embedder that schedules those itself frees the space too. A crash
//! or a close in between leaves nothing wrong: opening a log removes every `.deleted` file it
//! finds, and [`Log::close`] removes the ones set aside.

use std::path::PathBuf;

use crate::error::StorageError;
use crate::segment::Segment;

use super::{fs_remove, Log};

/// Files set aside, each with the time (the log's clock) from which it may be removed.
#[derive(Debug, Default)]
pub(super) struct SetAside(Vec<(i64, PathBuf)>);

impl SetAside {
    /// Forgets every file (the log is retired: its directory goes, files and all).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

impl Log {
    /// Takes `seg`'s files out of the log's names: unlinked now when `file.delete.delay.ms`
    /// is 0, else renamed to `.deleted`. The caller fsyncs the directory.
    pub(super) fn delete_segment(&self, seg: &Segment) -> Result<(), StorageError> {
        let delay = self.config().file_delete_delay_ms;
        if delay == 0 {
            return seg.delete(&*self.fs);
        }
        self.set_aside(seg, delay)
    }

    /// `seg` is about to be replaced by a cleaned copy renamed over its files: they are set
    /// aside first unless `file.delete.delay.ms` is 0 (then the renames replace them, and
    /// their blocks are freed by the last close of their handles).
    pub(super) fn retire_replaced(&self, seg: &Segment) -> Result<(), StorageError> {
        let delay = self.config().file_delete_delay_ms;
        if delay == 0 {
            seg.retire();
            return Ok(());
        }
        self.set_aside(seg, delay)
    }

    fn set_aside(&self, seg: &Segment, delay: i64) -> Result<(), StorageError> {
        let paths = seg.set_aside(&*self.fs)?;
        let due = self.clock.now_ms().saturating_add(delay);
        self.set_aside
            .lock()
            .0
            .extend(paths.into_iter().map(|p| (due, p)));
        Ok(())
    }

    /// Removes the files set aside whose delay has passed (every one with `all`), outside
    /// every lock but the list's. A file that cannot be removed is logged and forgotten: it
    /// holds nothing the log needs, and the next open removes it.
    pub(super) fn remove_set_aside(&self, all: bool) {
        // Held through the unlinks: [`Log::retire`] waits for them, so none lands in a
        // directory that another log has taken since.
        let _removing = self.removing_set_aside.lock();
        let now = self.clock.now_ms();
        let due: Vec<PathBuf> = {
            let mut list = self.set_aside.lock();
            let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut list.0)
                .into_iter()
                .partition(|(at, _)| all || *at <= now);
            list.0 = wait;
            due.into_iter().map(|(_, p)| p).collect()
        };
        for path in due {
            if let Err(e) = fs_remove(&*self.fs, &path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a deleted segment's file; the next open removes it");
            }
        }
    }
}
