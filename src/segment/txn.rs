//! A segment's transaction index (`.txnindex`): appending aborted transactions, reading them
//! back, and what the checkpoint and `verify` need to know about the file.

use std::path::PathBuf;

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::FileSystem;
use crate::txn_index::{read_entries, AbortedTxn};

use super::{IndexState, Segment};

impl Segment {
    pub(crate) fn append_aborted(&self, fs: &dyn FileSystem, e: AbortedTxn) -> Result<(), StorageError> {
        self.txn.lock().append(fs, e)
    }

    pub(crate) fn aborted_entries(&self) -> Vec<AbortedTxn> {
        self.txn.lock().entries.clone()
    }

    /// The transaction index as its file holds it now (empty when there is none), read
    /// without changing anything: what `verify` compares with the log. `None` for a deleted
    /// segment.
    pub(crate) fn txn_index_on_disk(
        &self,
        fs: &dyn FileSystem,
    ) -> Result<Option<(PathBuf, Vec<AbortedTxn>)>, StorageError> {
        let st = self.state.read();
        if matches!(st.indexes, IndexState::Deleted) {
            return Ok(None);
        }
        let path = self.txn.lock().path.clone();
        if !fs.exists(&path) {
            return Ok(Some((path, Vec::new())));
        }
        let f = fs
            .open(&path, false)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let read = read_entries(&*f, &path, self.base_offset)?;
        if read.torn_tail {
            return Err(Corruption {
                path,
                kind: FileKind::TxnIndex,
                position: (read.entries.len() * crate::txn_index::ENTRY_SIZE) as u64,
                detail: CorruptionDetail::Invalid("partial entry at the end of the transaction index"),
            }
            .into());
        }
        Ok(Some((path, read.entries)))
    }

    /// How many transaction-index entries have their marker below `offset`, and the CRC-32C
    /// of their bytes (what the checkpoint records, and what the next open must find).
    pub(crate) fn txn_summary_below(&self, offset: i64) -> (usize, u32) {
        self.txn.lock().summary_below(offset)
    }

    /// Whether the transaction index ends with a partial entry (a write torn by a crash).
    pub(crate) fn txn_index_torn(&self) -> bool {
        self.txn.lock().torn_tail
    }

    /// Creates the `.txnindex` file if no entry did: a cleaner's copy always has all four
    /// files, so that opening a log mid-swap can tell a renamed file from an original.
    pub(crate) fn ensure_txn_file(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let txn = self.txn.lock();
        if !fs.exists(&txn.path) {
            let f = fs
                .open(&txn.path, true)
                .map_err(|e| StorageError::io("create", &txn.path, e))?;
            drop(f);
        }
        Ok(())
    }
}
