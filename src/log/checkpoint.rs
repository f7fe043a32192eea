//! `eoslog.checkpoint`: the recovery point, the log start offset, and how many aborted
//! transactions each segment's `.txnindex` holds below the recovery point.
//!
//! ```text
//! eoslog-checkpoint 1
//! recovery_point <offset>
//! log_start_offset <offset>
//! recovery_position <segment base> <byte position>      (optional)
//! aborted <segment base> <entries>                      (one line per segment with entries)
//! ```
//! The `aborted` lines are what lets eoslog tell a lost `.txnindex` from a segment without
//! aborted transactions (Kafka cannot): at open, a segment whose transaction index holds a
//! different number of entries below the recovery point than recorded is recovered. A file
//! written before version 1 (no `aborted` lines) is read as "counts unknown"; a missing file
//! means nothing is known and every segment is recovered.

use std::{collections::BTreeMap, path::Path, sync::atomic::Ordering};

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, write_atomic, FileSystem};

use super::{io_err, Log, Writer, CHECKPOINT_FILE};

/// The contents of `eoslog.checkpoint`.
#[derive(Debug, Clone, Default)]
pub(super) struct Checkpoint {
    /// Whether the file exists.
    pub(super) present: bool,
    pub(super) recovery_point: i64,
    pub(super) log_start_offset: i64,
    /// Segment base and byte position of the recovery point, when recorded.
    pub(super) recovery_position: Option<(i64, u64)>,
    /// Per segment base, the transaction-index entries whose marker lies below the
    /// recovery point (segments without entries are absent); `None` when not recorded.
    pub(super) aborted_below_recovery_point: Option<BTreeMap<i64, usize>>,
}

impl Checkpoint {
    /// Whether segment `base`'s transaction index holds what the checkpoint recorded:
    /// `entries_below` entries below the recovery point. Unknown counts agree with anything.
    pub(super) fn txn_index_agrees(&self, base: i64, entries_below: usize) -> bool {
        self.aborted_below_recovery_point
            .as_ref()
            .is_none_or(|counts| counts.get(&base).copied().unwrap_or(0) == entries_below)
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
    let corrupt = |detail: &'static str| -> StorageError {
        Corruption {
            path: path.clone(),
            kind: FileKind::Checkpoint,
            position: 0,
            detail: CorruptionDetail::Invalid(detail),
        }
        .into()
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt("eoslog checkpoint is not UTF-8"))?;
    let mut lines = text.lines();
    let version = match lines.next() {
        Some("eoslog-checkpoint 0") => 0,
        Some("eoslog-checkpoint 1") => 1,
        _ => return Err(corrupt("unknown eoslog checkpoint version")),
    };
    let mut field = |name: &str| -> Result<i64, StorageError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| corrupt("unreadable eoslog checkpoint field"))
    };
    let mut checkpoint = Checkpoint {
        present: true,
        recovery_point: field("recovery_point ")?,
        log_start_offset: field("log_start_offset ")?,
        recovery_position: None,
        aborted_below_recovery_point: (version >= 1).then(BTreeMap::new),
    };
    for line in lines {
        let mut words = line.split(' ');
        let (key, a, b) = (words.next(), words.next(), words.next());
        let numbers = a
            .and_then(|a| a.parse::<i64>().ok())
            .zip(b.and_then(|b| b.parse::<u64>().ok()));
        match (key, numbers) {
            (Some("recovery_position"), Some((base, pos))) => {
                checkpoint.recovery_position = Some((base, pos))
            }
            (Some("aborted"), Some((base, n))) if version >= 1 => {
                let n = usize::try_from(n).map_err(|_| corrupt("aborted count out of range"))?;
                if let Some(counts) = checkpoint.aborted_below_recovery_point.as_mut() {
                    counts.insert(base, n);
                }
            }
            _ => return Err(corrupt("unreadable eoslog checkpoint line")),
        }
    }
    Ok(checkpoint)
}

impl Log {
    /// Writes the checkpoint atomically (temp file, fsync, rename, directory fsync).
    pub(super) fn write_checkpoint(&self, w: &Writer) -> Result<(), StorageError> {
        let mut text = format!(
            "eoslog-checkpoint 1\nrecovery_point {}\nlog_start_offset {}\n",
            w.recovery_point,
            self.log_start.load(Ordering::Acquire)
        );
        if let Some((base, pos)) = w.recovery_position {
            text.push_str(&format!("recovery_position {base} {pos}\n"));
        }
        for s in w.segments.iter().take_while(|s| s.base_offset < w.recovery_point) {
            let n = s.aborted_count_below(w.recovery_point);
            if n > 0 {
                text.push_str(&format!("aborted {} {n}\n", s.base_offset));
            }
        }
        let path = self.dir.join(CHECKPOINT_FILE);
        write_atomic(&*self.fs, &path, text.as_bytes()).map_err(|(op, p, e)| StorageError::io(op, p, e))
    }
}
