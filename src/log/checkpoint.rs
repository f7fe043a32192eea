//! `eoslog.checkpoint`: the recovery point, the log start offset, and what each segment's
//! derived files held when it was written, so that the next open can tell a lost or altered
//! file from an intact one.
//!
//! ```text
//! eoslog-checkpoint 1
//! recovery_point <offset>
//! log_start_offset <offset>
//! recovery_position <segment base> <byte position>          (optional)
//! segment <base> <txn entries> <txn crc> <index crc> <timeindex crc>
//!                                       (one line per segment with anything to record)
//! crc <CRC-32C of every byte above>
//! ```
//! `txn entries` and `txn crc` describe the segment's `.txnindex` entries whose marker lies
//! below the recovery point (count and CRC-32C of their bytes); a segment without a line
//! holds none. `index crc` and `timeindex crc` are the CRC-32C of the inactive segment's
//! `.index` and `.timeindex` as they were trimmed (`-` when unknown, for the active
//! segment). Kafka cannot tell a lost `.txnindex` from a segment without aborted
//! transactions; eoslog can. A file written before version 1 (no `segment` lines, no `crc`)
//! is read with nothing recorded; a missing file means nothing is known and every segment is
//! recovered; a file whose CRC does not match is corrupt.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, sync::atomic::Ordering};

use crate::batch::crc32c;
use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, write_file, FileSystem};

use super::{io_err, Log, Writer, CHECKPOINT_FILE};

/// What the checkpoint recorded of one segment's derived files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SegmentRecord {
    /// `.txnindex` entries below the recovery point, and the CRC-32C of their bytes.
    pub(super) txn: (usize, u32),
    /// CRC-32C of the `.index` and `.timeindex` files, when recorded.
    pub(super) index_crcs: Option<(u32, u32)>,
}

/// The contents of `eoslog.checkpoint`.
#[derive(Debug, Clone, Default)]
pub(super) struct Checkpoint {
    /// Whether the file exists.
    pub(super) present: bool,
    pub(super) recovery_point: i64,
    pub(super) log_start_offset: i64,
    /// Segment base and byte position of the recovery point, when recorded.
    pub(super) recovery_position: Option<(i64, u64)>,
    /// Per segment base, what was recorded; `None` for a file of version 0.
    pub(super) segments: Option<BTreeMap<i64, SegmentRecord>>,
    /// Bases whose records no longer apply ([`Checkpoint::forget`]).
    pub(super) forgotten: std::collections::BTreeSet<i64>,
}

impl Checkpoint {
    /// Whether segment `base`'s transaction index holds what the checkpoint recorded below
    /// the recovery point. Without a record (version 0) anything agrees.
    pub(super) fn txn_index_agrees(&self, base: i64, below: (usize, u32)) -> bool {
        if self.forgotten.contains(&base) {
            return true;
        }
        let empty = (0, crc32c(&[]));
        self.segments
            .as_ref()
            .is_none_or(|s| s.get(&base).map_or(empty, |r| r.txn) == below)
    }

    /// The recorded checksums of segment `base`'s offset and time indexes.
    pub(super) fn index_crcs(&self, base: i64) -> Option<(u32, u32)> {
        if self.forgotten.contains(&base) {
            return None;
        }
        self.segments.as_ref()?.get(&base)?.index_crcs
    }

    /// Forgets what was recorded of the segments at `bases` (replaced by a cleaned copy
    /// since): nothing is known of them, so anything agrees and no checksum is expected, and
    /// a recovery position inside one of them (a byte offset in the file the copy replaced)
    /// is dropped, so that recovery scans the copy from its start.
    pub(super) fn forget(&mut self, bases: &[i64]) {
        self.forgotten.extend(bases.iter().copied());
        if self.recovery_position.is_some_and(|(b, _)| bases.contains(&b)) {
            self.recovery_position = None;
        }
    }
}

/// Reads `eoslog.checkpoint` (`present: false` and all zero when absent).
pub(super) fn read_checkpoint(fs: &dyn FileSystem, dir: &Path) -> Result<Checkpoint, StorageError> {
    let path = dir.join(CHECKPOINT_FILE);
    if !fs.exists(&path) {
        return Ok(Checkpoint::default());
    }
    let f = fs.open(&path, false).map_err(io_err("open", &path))?;
    let bytes = read_all(&*f).map_err(io_err("read", &path))?;
    let corrupt = |position: usize, detail: &'static str| -> StorageError {
        Corruption {
            path: path.clone(),
            kind: FileKind::Checkpoint,
            position: position as u64,
            detail: CorruptionDetail::Invalid(detail),
        }
        .into()
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| corrupt(e.valid_up_to(), "eoslog checkpoint is not UTF-8"))?;
    let version = match text.lines().next() {
        Some("eoslog-checkpoint 0") => 0,
        Some("eoslog-checkpoint 1") => 1,
        _ => return Err(corrupt(0, "unknown eoslog checkpoint version")),
    };
    let body = if version >= 1 {
        // The last line is the checksum of everything before it.
        let end = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
        let stored = text[end..]
            .trim_end()
            .strip_prefix("crc ")
            .and_then(|c| c.parse::<u32>().ok())
            .ok_or_else(|| corrupt(end, "eoslog checkpoint has no checksum line"))?;
        let computed = crc32c(&bytes[..end]);
        if stored != computed {
            return Err(Corruption {
                path: path.clone(),
                kind: FileKind::Checkpoint,
                position: end as u64,
                detail: CorruptionDetail::Checksum { stored, computed },
            }
            .into());
        }
        &text[..end]
    } else {
        text
    };
    let mut lines = body.lines().skip(1);
    let mut field = |name: &str| -> Result<i64, StorageError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| corrupt(0, "unreadable eoslog checkpoint field"))
    };
    let mut checkpoint = Checkpoint {
        present: true,
        recovery_point: field("recovery_point ")?,
        log_start_offset: field("log_start_offset ")?,
        recovery_position: None,
        segments: (version >= 1).then(BTreeMap::new),
        forgotten: std::collections::BTreeSet::new(),
    };
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        match (words.as_slice(), checkpoint.segments.as_mut()) {
            (["recovery_position", base, pos], _) => {
                checkpoint.recovery_position = base.parse().ok().zip(pos.parse().ok());
            }
            (["segment", base, n, txn_crc, index_crc, time_crc], Some(segments)) => {
                let crc = |w: &str| (w != "-").then(|| w.parse::<u32>().ok()).flatten();
                let record = base
                    .parse::<i64>()
                    .ok()
                    .zip(n.parse::<usize>().ok())
                    .zip(txn_crc.parse::<u32>().ok())
                    .map(|((base, n), txn_crc)| {
                        (
                            base,
                            SegmentRecord {
                                txn: (n, txn_crc),
                                index_crcs: crc(index_crc).zip(crc(time_crc)),
                            },
                        )
                    })
                    .ok_or_else(|| corrupt(0, "unreadable eoslog checkpoint segment line"))?;
                segments.insert(record.0, record.1);
            }
            _ => return Err(corrupt(0, "unreadable eoslog checkpoint line")),
        }
    }
    Ok(checkpoint)
}

/// A checkpoint's text, numbered in the order the writer lock saw the state it describes.
pub(crate) struct CheckpointText {
    seq: u64,
    text: String,
    /// Its `recovery_position` line.
    position: Option<(i64, u64)>,
}

/// What may be in `eoslog.checkpoint` after a crash, as far as this process knows: the
/// number of the text last put in place, and the recovery positions of every text put in
/// place since the last one known durable (that one first). A crash leaves one of them.
#[derive(Debug, Default)]
pub(super) struct CheckpointPlace {
    seq: u64,
    maybe_on_disk: Vec<(u64, Option<(i64, u64)>)>,
}

impl CheckpointPlace {
    /// Whether a checkpoint that a crash may leave names a byte position past the start of
    /// a segment of `bases` (open resumes at no position 0).
    pub(super) fn may_name_position_in(&self, bases: &[i64]) -> bool {
        self.maybe_on_disk
            .iter()
            .any(|(_, p)| p.is_some_and(|(b, pos)| pos > 0 && bases.contains(&b)))
    }
}

impl Log {
    /// Writes the checkpoint atomically (temp file, fsync, rename, directory fsync).
    pub(super) fn write_checkpoint(&self, w: &Writer) -> Result<(), StorageError> {
        let text = self.checkpoint_text(w);
        self.store_checkpoint(text)
    }

    /// Writes a checkpoint built earlier (possibly after the writer lock was released),
    /// unless a newer one was written meanwhile: a checkpoint never goes back.
    pub(super) fn store_checkpoint(&self, c: CheckpointText) -> Result<(), StorageError> {
        self.store_checkpoint_with(c, true)
    }

    /// [`Log::store_checkpoint`]; with `sync_dir` false the caller fsyncs the directory
    /// afterwards.
    ///
    /// Writers run side by side, each through a temp file of its own (named by its number)
    /// written and fsynced with no lock held, so a roll does not wait behind the fsyncs of
    /// a clean's checkpoint; only the rename is ordered: a text goes in place only if no
    /// newer one has, under `checkpoint_written`.
    pub(super) fn store_checkpoint_with(
        &self,
        c: CheckpointText,
        sync_dir: bool,
    ) -> Result<(), StorageError> {
        // Held to the end: [`Log::retire`] waits for every writer in flight, and once it has
        // closed the log none starts (its directory may be gone, or another log's by now).
        let _in_flight = self.checkpoint_io.read();
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let superseded = || self.checkpoint_written.lock().seq > c.seq;
        if !superseded() {
            let tmp = self.dir.join(format!("{CHECKPOINT_FILE}.{}.tmp", c.seq));
            write_file(&*self.fs, &tmp, c.text.as_bytes(), true)
                .map_err(|(op, p, e)| StorageError::io(op, p, e))?;
            let mut written = self.checkpoint_written.lock();
            if written.seq > c.seq {
                drop(written);
                // A newer text took the name meanwhile; a leftover is removed by the next open.
                if let Err(e) = self.fs.remove_file(&tmp) {
                    tracing::warn!(path = %tmp.display(), error = %e, "could not remove a superseded checkpoint");
                }
            } else {
                let path = self.dir.join(CHECKPOINT_FILE);
                self.fs.rename(&tmp, &path).map_err(io_err("rename", &path))?;
                written.seq = c.seq;
                // Only a position past a segment's start matters (open resumes at no
                // position 0), and leaving the others out keeps the list short: a text with
                // one is stored with a directory fsync, which prunes it.
                if c.position.is_some_and(|(_, pos)| pos > 0) {
                    written.maybe_on_disk.push((c.seq, c.position));
                }
            }
        }
        // Also when superseded: the newer text's rename may not be durable yet, and this
        // caller asked for a checkpoint at least as new as its own to be.
        if sync_dir {
            let in_place = self.checkpoint_written.lock().seq;
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_err("fsync directory", &self.dir))?;
            // Every rename up to `in_place` is durable now: older texts cannot come back.
            self.checkpoint_written
                .lock()
                .maybe_on_disk
                .retain(|&(seq, _)| seq >= in_place);
        }
        Ok(())
    }

    /// The checkpoint describing the writer's state (the caller holds the writer lock).
    ///
    /// IMPORTANT: a text whose recovery position lies past a segment's start is stored
    /// before the writer lock is released (flush, truncation, retention, open). A clean
    /// checks what a crash may leave from the texts already renamed into place
    /// ([`CheckpointPlace`]); one built with such a position but stored later would escape
    /// that check. (`sync_rolled`'s texts, stored after the lock, are at a segment start.)
    pub(super) fn checkpoint_text(&self, w: &Writer) -> CheckpointText {
        let seq = self.checkpoint_seq.fetch_add(1, Ordering::AcqRel) + 1;
        let rp = w.recovery_point;
        let mut text = format!(
            "eoslog-checkpoint 1\nrecovery_point {rp}\nlog_start_offset {}\n",
            self.log_start.load(Ordering::Acquire)
        );
        if let Some((base, pos)) = w.recovery_position {
            let _ = writeln!(text, "recovery_position {base} {pos}");
        }
        for s in &w.segments {
            let txn = if s.base_offset < rp {
                s.txn_summary_below(rp)
            } else {
                (0, crc32c(&[]))
            };
            let crcs = s.index_crcs();
            if txn.0 == 0 && crcs.is_none() {
                continue;
            }
            let (index, time) = crcs.map_or(("-".to_owned(), "-".to_owned()), |(i, t)| {
                (i.to_string(), t.to_string())
            });
            let _ = writeln!(
                text,
                "segment {} {} {} {index} {time}",
                s.base_offset, txn.0, txn.1
            );
        }
        let crc = crc32c(text.as_bytes());
        let _ = writeln!(text, "crc {crc}");
        CheckpointText {
            seq,
            text,
            position: w.recovery_position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFileSystem;

    #[test]
    fn a_changed_byte_or_a_missing_checksum_is_corrupt() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut body = String::from("eoslog-checkpoint 1\nrecovery_point 7\nlog_start_offset 2\n");
        body.push_str("segment 0 1 99 5 6\nsegment 4 0 0 - -\n");
        let text = format!("{body}crc {}\n", crc32c(body.as_bytes()));
        std::fs::write(&path, &text).expect("write");
        let c = read_checkpoint(&StdFileSystem, dir.path()).expect("read");
        assert_eq!((c.recovery_point, c.log_start_offset), (7, 2));
        assert_eq!(c.index_crcs(0), Some((5, 6)));
        assert_eq!(c.index_crcs(4), None);
        assert!(c.txn_index_agrees(0, (1, 99)));
        assert!(!c.txn_index_agrees(0, (1, 98)));
        assert!(c.txn_index_agrees(9, (0, crc32c(&[]))));
        std::fs::write(&path, text.replace("recovery_point 7", "recovery_point 8")).expect("write");
        assert!(read_checkpoint(&StdFileSystem, dir.path()).is_err());
        std::fs::write(&path, &body).expect("write");
        assert!(read_checkpoint(&StdFileSystem, dir.path()).is_err());
        // Version 0 (no checksum, nothing recorded per segment) is still read.
        std::fs::write(
            &path,
            "eoslog-checkpoint 0\nrecovery_point 3\nlog_start_offset 0\n",
        )
        .expect("write");
        let c = read_checkpoint(&StdFileSystem, dir.path()).expect("v0");
        assert!(c.segments.is_none() && c.txn_index_agrees(0, (5, 5)));
    }
}
