//! The leader-epoch cache (`leader-epoch-checkpoint`): for each leader epoch, the first offset
//! written in it, so a follower can find where its log diverged from the leader's
//! (Kafka's `OffsetsForLeaderEpoch`).
//!
//! ```text
//! Format (text, as Kafka writes it): "0\n" (version) "<count>\n" then "<epoch> <start offset>\n" * count
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, write_atomic, FileSystem};

/// File name inside the partition directory.
pub const FILE_NAME: &str = "leader-epoch-checkpoint";

/// An epoch and the first offset of its leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// Leader epoch.
    pub epoch: i32,
    /// First offset appended under it.
    pub start_offset: i64,
}

#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(FILE_NAME);
        let mut entries = Vec::new();
        if fs.exists(&path) {
            let f = fs
                .open(&path, false)
                .map_err(|e| StorageError::io("open", &path, e))?;
            let bytes = read_all(&*f).map_err(|e| StorageError::io("read", &path, e))?;
            let corrupt = |detail: &'static str| -> StorageError {
                Corruption {
                    path: path.clone(),
                    kind: FileKind::Checkpoint,
                    position: 0,
                    detail: CorruptionDetail::Invalid(detail),
                }
                .into()
            };
            let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))?;
            let mut lines = text.lines();
            if lines.next() != Some("0") {
                return Err(corrupt("unknown checkpoint version"));
            }
            let count: usize = lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .ok_or_else(|| corrupt("bad entry count"))?;
            for line in lines.by_ref().take(count) {
                let mut it = line.split_whitespace();
                let (Some(e), Some(o), None) = (it.next(), it.next(), it.next()) else {
                    return Err(corrupt("bad entry line"));
                };
                let (Ok(epoch), Ok(start_offset)) = (e.parse(), o.parse()) else {
                    return Err(corrupt("bad entry number"));
                };
                entries.push(EpochEntry { epoch, start_offset });
            }
            if entries.len() != count {
                return Err(corrupt("fewer entries than the count"));
            }
        }
        Ok(LeaderEpochCache { path, entries })
    }

    fn persist(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomic(fs, &self.path, text.as_bytes()).map_err(|(op, p, e)| StorageError::io(op, p, e))
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `offset` if it is newer than the latest.
    pub(crate) fn assign(
        &mut self,
        fs: &dyn FileSystem,
        epoch: i32,
        offset: i64,
    ) -> Result<(), StorageError> {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return Ok(());
        }
        // An entry may not start at or after the new one (a truncated-away leadership).
        self.entries.retain(|e| e.start_offset < offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset: offset,
        });
        self.persist(fs)
    }

    /// Kafka's `endOffsetFor(epoch)`: the largest epoch <= `epoch` and the offset where the
    /// next epoch starts (or `log_end` for the latest).
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let i = self.entries.partition_point(|e| e.epoch <= epoch);
        if i == 0 {
            return None;
        }
        let found = self.entries[i - 1].epoch;
        let end = self.entries.get(i).map_or(log_end, |n| n.start_offset);
        Some((found, end))
    }

    /// Drops entries starting at or after `offset` (truncation).
    pub(crate) fn truncate_from_end(&mut self, fs: &dyn FileSystem, offset: i64) -> Result<(), StorageError> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < offset);
        if self.entries.len() != before {
            self.persist(fs)?;
        }
        Ok(())
    }

    /// Moves the start: entries wholly below `offset` go, the one covering it starts there.
    pub(crate) fn truncate_from_start(
        &mut self,
        fs: &dyn FileSystem,
        offset: i64,
    ) -> Result<(), StorageError> {
        let covering = self.entries.partition_point(|e| e.start_offset <= offset);
        if covering == 0 {
            return Ok(());
        }
        let mut changed = covering > 1;
        self.entries.drain(..covering - 1);
        if let Some(first) = self.entries.first_mut() {
            if first.start_offset < offset {
                first.start_offset = offset;
                changed = true;
            }
        }
        if changed {
            self.persist(fs)?;
        }
        Ok(())
    }

    pub(crate) fn clear(&mut self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.persist(fs)?;
        }
        Ok(())
    }
}
