//! Producer-state snapshots: taking them, keeping the right ones, loading the newest valid one.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{atomic::Ordering, Arc},
};

use crate::error::{CorruptionDetail, StorageError};
use crate::fs::{read_all, write_atomic, write_renamed, write_renamed_unsynced, FileSystem};
use crate::producer_state::ProducerStateManager;
use crate::segment::{file_name, Segment};
use crate::snapshot::{self, ProducerSnapshot};

use super::recovery::replay;
use super::{fs_remove, io_err, Log, Writer};

/// How durable a snapshot is when [`Log::write_snapshot`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnapshotWrite {
    /// Content fsynced, renamed, directory fsynced.
    Durable,
    /// Content fsynced and renamed; the caller fsyncs the directory.
    DirSyncLater,
    /// Written and renamed, nothing fsynced: the caller fsyncs the file and the directory
    /// before the recovery point passes it (a roll with `eoslog.roll.fsync=maintenance`).
    SyncLater,
}

impl Log {
    pub(super) fn take_snapshot(&self, w: &mut Writer, offset: i64) -> Result<(), StorageError> {
        self.write_snapshot(w, offset, SnapshotWrite::Durable)
    }

    /// [`Log::take_snapshot`], made as durable as `how` says.
    pub(super) fn write_snapshot(
        &self,
        w: &mut Writer,
        offset: i64,
        how: SnapshotWrite,
    ) -> Result<(), StorageError> {
        if w.snapshots.last() == Some(&offset) && w.bytes_since_snapshot == 0 {
            return Ok(());
        }
        let bytes = snapshot::encode(&w.psm.snapshot());
        let path = self.dir.join(file_name(offset, "snapshot"));
        let written = match how {
            SnapshotWrite::Durable => write_atomic(&*self.fs, &path, &bytes),
            SnapshotWrite::DirSyncLater => write_renamed(&*self.fs, &path, &bytes),
            SnapshotWrite::SyncLater => write_renamed_unsynced(&*self.fs, &path, &bytes),
        };
        written.map_err(|(op, p, e)| StorageError::io(op, p, e))?;
        w.snapshots.insert(offset);
        w.bytes_since_snapshot = 0;
        // Keep snapshots at segment bases (recovery starts there) and the newest one.
        let newest = offset;
        let keep: BTreeSet<i64> = w.segments.iter().map(|s| s.base_offset).collect();
        let stale: Vec<i64> = w
            .snapshots
            .iter()
            .copied()
            .filter(|o| *o != newest && !keep.contains(o))
            .collect();
        for o in stale {
            let p = self.dir.join(file_name(o, "snapshot"));
            fs_remove(&*self.fs, &p)?;
            w.snapshots.remove(&o);
        }
        Ok(())
    }

    /// Kafka's stray-snapshot rule: keep snapshots at segment bases, plus the largest one
    /// if it lies above the highest segment base (the clean-shutdown snapshot).
    pub(super) fn remove_stray_snapshots(&self, w: &mut Writer) -> Result<(), StorageError> {
        let bases: BTreeSet<i64> = w.segments.iter().map(|s| s.base_offset).collect();
        let highest_base = bases.last().copied().unwrap_or(0);
        let largest = w.snapshots.last().copied();
        let end = self.log_end.load(Ordering::Acquire);
        let stray: Vec<i64> = w
            .snapshots
            .iter()
            .copied()
            .filter(|o| *o > end || !(bases.contains(o) || (Some(*o) == largest && *o > highest_base)))
            .collect();
        let any = !stray.is_empty();
        for o in stray {
            fs_remove(&*self.fs, &self.dir.join(file_name(o, "snapshot")))?;
            w.snapshots.remove(&o);
        }
        if any {
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_err("fsync directory", &self.dir))?;
        }
        Ok(())
    }
}

/// Loads the newest valid snapshot at or below `upto` into `psm` (deleting corrupt ones and
/// falling back to older), then replays the log from the snapshot up to `upto` (or the end).
pub(super) fn load_producer_state(
    fs: &dyn FileSystem,
    dir: &Path,
    psm: &mut ProducerStateManager,
    snapshots: &mut BTreeSet<i64>,
    segments: &[Arc<Segment>],
    upto: i64,
) -> Result<(), StorageError> {
    let first_base = segments.first().map_or(0, |s| s.base_offset);
    psm.clear(first_base);
    while let Some(&offset) = snapshots.range(..=upto).next_back() {
        match read_snapshot(fs, dir, offset)? {
            Ok(loaded) => {
                psm.load(loaded, offset);
                break;
            }
            Err((position, detail)) => {
                let path = dir.join(file_name(offset, "snapshot"));
                tracing::warn!(snapshot = %path.display(), position, %detail, "corrupt producer snapshot deleted; trying an older one");
                fs_remove(fs, &path)?;
                snapshots.remove(&offset);
            }
        }
    }
    let end = upto;
    if psm.map_end_offset < end {
        replay(fs, psm, segments, psm.map_end_offset, end)?;
    }
    Ok(())
}

/// Reads and decodes the snapshot at `offset`, changing nothing: the outer error is I/O, the
/// inner one what is wrong with the bytes.
pub(super) fn read_snapshot(
    fs: &dyn FileSystem,
    dir: &Path,
    offset: i64,
) -> Result<Result<ProducerSnapshot, (u64, CorruptionDetail)>, StorageError> {
    let path = dir.join(file_name(offset, "snapshot"));
    let bytes = fs
        .open(&path, false)
        .and_then(|f| read_all(&*f))
        .map_err(io_err("read", &path))?;
    Ok(snapshot::decode(&bytes))
}
