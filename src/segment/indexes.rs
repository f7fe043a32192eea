//! A segment's offset and time indexes: opening them, loading them when first needed,
//! rebuilding them from the log, switching them between writable and read-only, and checking
//! them against the log.

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
};

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::FileSystem;
use crate::index::{OffsetIndex, TimeIndex};

use super::{index_err, remove_if_present, IndexState, Indexes, ScanEnd, Segment, State};

impl Segment {
    /// Opens both index files: writable with `max_bytes` of capacity each, or read-only and
    /// checked against the log and against `crcs` (their recorded checksums), when given.
    pub(super) fn open_indexes(
        &self,
        fs: &dyn FileSystem,
        writable: Option<usize>,
        crcs: Option<(u32, u32)>,
    ) -> Result<Indexes, StorageError> {
        let (_, idx_path, time_path, _) = self.my_paths();
        self.open_index_files(fs, (idx_path, time_path), writable, crcs)
    }

    /// [`Segment::open_indexes`] on the files at `paths` (offset index, time index).
    fn open_index_files(
        &self,
        fs: &dyn FileSystem,
        (idx_path, time_path): (PathBuf, PathBuf),
        writable: Option<usize>,
        crcs: Option<(u32, u32)>,
    ) -> Result<Indexes, StorageError> {
        let open = |p: &Path| {
            fs.open(p, writable.is_some())
                .map_err(|e| StorageError::io("open", p, e))
        };
        let (offset, time) = match writable {
            Some(max) => (
                OffsetIndex::open_mapped(idx_path.clone(), open(&idx_path)?, self.base_offset, max),
                TimeIndex::open_mapped(time_path.clone(), open(&time_path)?, self.base_offset, max),
            ),
            None => {
                let size = self.size();
                let (offset_crc, time_crc) = (crcs.map(|c| c.0), crcs.map(|c| c.1));
                (
                    OffsetIndex::open_read(
                        idx_path.clone(),
                        open(&idx_path)?,
                        self.base_offset,
                        size,
                        offset_crc,
                    ),
                    TimeIndex::open_read(
                        time_path.clone(),
                        open(&time_path)?,
                        self.base_offset,
                        size,
                        time_crc,
                    ),
                )
            }
        };
        Ok(Indexes {
            offset: offset.map_err(|e| index_err(&idx_path, FileKind::OffsetIndex, e))?,
            time: time.map_err(|e| index_err(&time_path, FileKind::TimeIndex, e))?,
        })
    }

    /// Removes the index files and creates them empty and writable at full capacity.
    pub(super) fn recreate_indexes(&self, fs: &dyn FileSystem, st: &mut State) -> Result<(), StorageError> {
        debug_assert!(
            !matches!(st.indexes, IndexState::Deleted),
            "a deleted segment is never rebuilt"
        );
        st.indexes = IndexState::NotLoaded; // unmap before unlinking
        *self.index_crcs.lock() = None;
        let (_, idx_path, time_path, _) = self.my_paths();
        remove_if_present(fs, &idx_path)?;
        remove_if_present(fs, &time_path)?;
        st.indexes = IndexState::Loaded(self.open_indexes(fs, Some(self.limits.index_bytes), None)?);
        Ok(())
    }

    /// The indexes, writable. Indexes not loaded yet are opened as they are (recovery keeps
    /// their plausible prefix) if the checkpoint recorded no checksum for them, or if their
    /// checksum matches; otherwise they are recreated empty. Returns them and whether the
    /// entries they held were kept.
    pub(super) fn writable_indexes<'s>(
        &self,
        fs: &dyn FileSystem,
        st: &'s mut State,
    ) -> Result<(&'s mut Indexes, bool), StorageError> {
        let max = self.limits.index_bytes;
        let mut kept = true;
        if matches!(st.indexes, IndexState::NotLoaded) {
            let recorded = *self.index_crcs.lock();
            match recorded.map(|crcs| self.open_indexes(fs, None, Some(crcs))) {
                None => st.indexes = IndexState::Loaded(self.open_indexes(fs, Some(max), None)?),
                Some(Ok(ix)) => st.indexes = IndexState::Loaded(ix),
                Some(Err(StorageError::Corrupt(c))) => {
                    tracing::warn!(error = %c, "index differs from its recorded checksum; recreated");
                    self.recreate_indexes(fs, st)?;
                    kept = false;
                }
                Some(Err(e)) => return Err(e),
            }
        }
        // The files are about to change: whatever checksum was recorded no longer holds.
        *self.index_crcs.lock() = None;
        match &mut st.indexes {
            IndexState::Loaded(ix) => {
                if !ix.offset.is_writable() {
                    ix.offset
                        .make_writable(max)
                        .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
                }
                if !ix.time.is_writable() {
                    ix.time
                        .make_writable(max)
                        .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
                }
                Ok((ix, kept))
            }
            _ => {
                debug_assert!(false, "the writer never writes a deleted segment");
                Err(StorageError::Closed)
            }
        }
    }

    /// Makes sure an inactive segment's indexes are loaded and sane; an index that is
    /// missing or fails its check is rebuilt from the log (indexes are derived data). A
    /// deleted segment is left as it is.
    pub(super) fn ensure_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        if !matches!(self.state.read().indexes, IndexState::NotLoaded) {
            return Ok(());
        }
        let mut st = self.state.write();
        if !matches!(st.indexes, IndexState::NotLoaded) {
            return Ok(());
        }
        let (_, idx_path, time_path, _) = self.my_paths();
        let present = fs.exists(&idx_path) && fs.exists(&time_path);
        let recorded = *self.index_crcs.lock();
        match present.then(|| self.open_indexes(fs, None, recorded)) {
            Some(Ok(ix)) => {
                *self.index_crcs.lock() = ix.offset.crc().zip(ix.time.crc());
                // A trimmed time index ends with the segment's max timestamp (the final entry
                // written when it became inactive).
                if let Some(e) = ix.time.last() {
                    st.max_timestamp = e.timestamp;
                    st.offset_of_max_timestamp = e.offset;
                }
                st.indexes = IndexState::Loaded(ix);
            }
            Some(Err(StorageError::Io { op, path, source })) => {
                return Err(StorageError::Io { op, path, source });
            }
            failed => {
                if self.size() > 0 || failed.is_some() {
                    tracing::warn!(segment = %self.log_path.display(), "index missing or failed its check; rebuilding from the log");
                }
                self.rebuild_indexes(fs, &mut st)?;
            }
        }
        Ok(())
    }

    /// Rebuilds both indexes of an inactive segment from its log into temporary files that
    /// are trimmed, fsynced and renamed over the old ones, then the directory fsynced: a crash
    /// at any step leaves the old files or the new ones, never no file (which the next open
    /// would take for a lost index and answer with recovery of every later segment).
    fn rebuild_indexes(&self, fs: &dyn FileSystem, st: &mut State) -> Result<(), StorageError> {
        debug_assert!(
            !matches!(st.indexes, IndexState::Deleted),
            "a deleted segment is never rebuilt"
        );
        st.indexes = IndexState::NotLoaded;
        *self.index_crcs.lock() = None;
        let (_, idx_path, time_path, _) = self.my_paths();
        let tmp = |p: &Path| {
            let mut name = p.as_os_str().to_owned();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let (idx_tmp, time_tmp) = (tmp(&idx_path), tmp(&time_path));
        remove_if_present(fs, &idx_tmp)?;
        remove_if_present(fs, &time_tmp)?;
        let ix = self.open_index_files(
            fs,
            (idx_tmp.clone(), time_tmp.clone()),
            Some(self.limits.index_bytes),
            None,
        )?;
        st.indexes = IndexState::Loaded(ix);
        self.rebuild_indexes_locked(st)?;
        let IndexState::Loaded(ix) = &mut st.indexes else {
            return Ok(());
        };
        self.make_read_only(ix)?;
        ix.offset
            .flush()
            .map_err(|e| index_err(&idx_tmp, FileKind::OffsetIndex, e))?;
        ix.time
            .flush()
            .map_err(|e| index_err(&time_tmp, FileKind::TimeIndex, e))?;
        for (from, to) in [(&idx_tmp, &idx_path), (&time_tmp, &time_path)] {
            fs.rename(from, to)
                .map_err(|e| StorageError::io("rename", to.as_path(), e))?;
        }
        // IMPORTANT: the renames are durable once the directory is.
        fs.sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", self.dir.as_path(), e))?;
        ix.offset.path = idx_path;
        ix.time.path = time_path;
        Ok(())
    }

    /// Rebuilds offset and time index entries by scanning the (already valid) log.
    fn rebuild_indexes_locked(&self, st: &mut State) -> Result<(), StorageError> {
        let IndexState::Loaded(ix) = &mut st.indexes else {
            return Ok(());
        };
        ix.offset.reset();
        ix.time.reset();
        let mut since = 0u64;
        let mut max_ts = -1i64;
        let mut max_off = self.base_offset;
        let interval = self.limits.index_interval_bytes;
        let end = self.scan_headers(0, self.size(), |b| {
            if b.max_timestamp > max_ts {
                max_ts = b.max_timestamp;
                max_off = b.last_offset;
            }
            if since > interval {
                ix.offset.append(b.last_offset, b.position as u32);
                ix.time.maybe_append(max_ts, max_off, false);
                since = 0;
            }
            since += b.size;
            ControlFlow::Continue(())
        })?;
        if let ScanEnd::Invalid { position, error } = end {
            // Index the valid prefix only: a torn tail is recovery's to cut, and damage below
            // the recovery point is reported by the read that reaches it.
            tracing::warn!(segment = %self.log_path.display(), position, %error, "index rebuild stopped at an invalid batch");
        }
        if max_ts >= 0 {
            // The final entry an inactive segment's time index ends with.
            ix.time.maybe_append(max_ts, max_off, true);
        }
        st.bytes_since_last_index = since;
        st.max_timestamp = max_ts;
        st.offset_of_max_timestamp = max_off;
        Ok(())
    }

    /// Trims both indexes, switches them to `pread`, and records their checksums.
    pub(super) fn make_read_only(&self, ix: &mut Indexes) -> Result<(), StorageError> {
        ix.offset
            .make_read_only()
            .map_err(|e| index_err(&ix.offset.path, FileKind::OffsetIndex, e))?;
        ix.time
            .make_read_only()
            .map_err(|e| index_err(&ix.time.path, FileKind::TimeIndex, e))?;
        *self.index_crcs.lock() = ix.offset.crc().zip(ix.time.crc());
        Ok(())
    }

    /// Index entries both indexes can still take (0 when they are not loaded).
    pub(crate) fn index_room(&self) -> usize {
        match &self.state.read().indexes {
            IndexState::Loaded(ix) => ix.offset.room().min(ix.time.room()),
            _ => 0,
        }
    }

    /// The checksums of the offset and time index files while the segment is inactive (as
    /// loaded, or as recorded and not loaded yet); `None` while writable or unknown.
    pub(crate) fn index_crcs(&self) -> Option<(u32, u32)> {
        *self.index_crcs.lock()
    }

    /// Whether the index files of a segment not loaded yet still hold what the checkpoint
    /// recorded (true when nothing was recorded): recovery may then keep their entries.
    pub(crate) fn recorded_indexes_intact(&self, fs: &dyn FileSystem) -> Result<bool, StorageError> {
        let recorded = *self.index_crcs.lock();
        if recorded.is_none() || !matches!(self.state.read().indexes, IndexState::NotLoaded) {
            return Ok(true);
        }
        match self.open_indexes(fs, None, recorded) {
            Ok(_) => Ok(true),
            Err(StorageError::Corrupt(_)) => Ok(false),
            Err(e) if matches!(&e, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Roll conditions from the indexes' side.
    pub(crate) fn indexes_full(&self) -> bool {
        match &self.state.read().indexes {
            IndexState::Loaded(ix) => ix.offset.is_full() || ix.time.is_full(),
            _ => false,
        }
    }

    /// Checks the index files against the log without rebuilding anything, under the
    /// state lock (a roll cannot change them meanwhile) and without mapping anything: a
    /// loaded index is checked through its own store, one not loaded yet is read with
    /// `pread`. A missing index of a non-empty segment is reported.
    pub(crate) fn verify_indexes(&self, fs: &dyn FileSystem) -> Result<(), StorageError> {
        let (_, idx_path, time_path, _) = self.my_paths();
        let st = self.state.read();
        let size = self.size();
        let checks = match &st.indexes {
            IndexState::Deleted => return Ok(()),
            IndexState::Loaded(ix) => [
                (ix.offset.check(size), &idx_path, FileKind::OffsetIndex),
                (ix.time.check(size), &time_path, FileKind::TimeIndex),
            ],
            IndexState::NotLoaded => {
                for (p, kind) in [
                    (&idx_path, FileKind::OffsetIndex),
                    (&time_path, FileKind::TimeIndex),
                ] {
                    if size > 0 && !fs.exists(p) {
                        return Err(Corruption {
                            path: p.clone(),
                            kind,
                            position: 0,
                            detail: CorruptionDetail::Invalid("index file missing"),
                        }
                        .into());
                    }
                }
                if size == 0 {
                    return Ok(());
                }
                self.open_indexes(fs, None, *self.index_crcs.lock())?;
                return Ok(());
            }
        };
        for (result, path, kind) in checks {
            if let Err((position, detail)) = result {
                return Err(Corruption {
                    path: path.clone(),
                    kind,
                    position,
                    detail,
                }
                .into());
            }
        }
        Ok(())
    }
}
