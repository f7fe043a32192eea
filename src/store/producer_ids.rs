//! Producer-id allocation: ids are reserved on disk a block at a time, so an id is never
//! handed out twice, across restarts and crashes (the rest of a block reserved before a crash
//! is skipped, as Kafka's `ProducerIdManager` skips the rest of its block).
//!
//! ```text
//! eoslog.producer-ids:
//! eoslog-producer-ids 1
//! next_block <i64>            the first id not yet reserved
//! crc <CRC-32C of every byte above>
//! ```

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::FileSystem;
use crate::types::ProducerId;

use super::sealed;

/// The file name inside the store directory.
pub const PRODUCER_IDS_FILE: &str = "eoslog.producer-ids";

#[derive(Debug)]
struct Range {
    /// The next id to hand out.
    next: i64,
    /// The first id not reserved on disk.
    limit: i64,
}

/// Hands out producer ids from blocks reserved durably.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    block: i64,
    range: Mutex<Range>,
}

const HEADER: &str = "eoslog-producer-ids 1";

impl ProducerIds {
    /// Loads the allocator of the store at `dir` (ids from 0 for a new store).
    pub(crate) fn open(fs: &dyn FileSystem, dir: &Path, block: i64) -> Result<ProducerIds, StorageError> {
        let path = dir.join(PRODUCER_IDS_FILE);
        let next_block = if fs.exists(&path) {
            sealed::read(
                fs,
                &path,
                HEADER,
                "unreadable producer-id allocation file",
                |mut lines| lines.next()?.strip_prefix("next_block ")?.parse().ok(),
            )?
        } else {
            0
        };
        Ok(ProducerIds {
            path,
            block: block.max(1),
            range: Mutex::new(Range {
                next: next_block,
                limit: next_block,
            }),
        })
    }

    /// The next producer id; reserves a new block on disk first when the current one is used
    /// up (temp file, fsync, rename, directory fsync).
    pub(crate) fn allocate(&self, fs: &dyn FileSystem) -> Result<ProducerId, StorageError> {
        let mut r = self.range.lock();
        if r.next >= r.limit {
            let next_block = r.limit.checked_add(self.block).ok_or_else(|| {
                StorageError::from(Corruption {
                    path: self.path.clone(),
                    kind: FileKind::Checkpoint,
                    position: 0,
                    detail: CorruptionDetail::Invalid("producer ids exhausted"),
                })
            })?;
            sealed::write(fs, &self.path, HEADER, &format!("next_block {next_block}\n"))?;
            r.limit = next_block;
        }
        let id = r.next;
        r.next += 1;
        Ok(ProducerId(id))
    }

    /// Never hands out an id at or below `seen` (a producer id found in the data, e.g. after
    /// the allocation file was lost).
    pub(crate) fn raise_floor(&self, seen: i64) {
        let mut r = self.range.lock();
        if r.next <= seen {
            r.next = seen.saturating_add(1);
            r.limit = r.limit.max(r.next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFileSystem;

    #[test]
    fn ids_are_never_reused_across_reopens() {
        let dir = tempfile::tempdir().expect("tmp");
        let fs = StdFileSystem;
        let ids = ProducerIds::open(&fs, dir.path(), 3).expect("open");
        let first: Vec<i64> = (0..4).map(|_| ids.allocate(&fs).expect("id").0).collect();
        assert_eq!(first, vec![0, 1, 2, 3]);
        drop(ids); // as after a crash: the rest of the second block (4, 5) is skipped
        let ids = ProducerIds::open(&fs, dir.path(), 3).expect("reopen");
        assert_eq!(ids.allocate(&fs).expect("id").0, 6);
        ids.raise_floor(100);
        assert_eq!(ids.allocate(&fs).expect("id").0, 101);
        drop(ids);
        let ids = ProducerIds::open(&fs, dir.path(), 3).expect("reopen");
        assert!(ids.allocate(&fs).expect("id").0 > 101);
        std::fs::write(
            dir.path().join(PRODUCER_IDS_FILE),
            "eoslog-producer-ids 1\nnext_block 5\ncrc 1\n",
        )
        .expect("damage");
        assert!(ProducerIds::open(&fs, dir.path(), 3).is_err());
    }
}
