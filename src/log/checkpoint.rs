//! `eoslog.checkpoint`: the recovery point and the log start offset.

use std::{path::Path, sync::atomic::Ordering};

use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, write_atomic, FileSystem};

use super::{io_err, Log, Writer, CHECKPOINT_FILE};

/// The contents of `eoslog.checkpoint`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Checkpoint {
    pub(super) recovery_point: i64,
    pub(super) log_start_offset: i64,
    /// Segment base and byte position of the recovery point, when recorded.
    pub(super) recovery_position: Option<(i64, u64)>,
}

/// Reads `eoslog.checkpoint` (all zero when absent).
pub(super) fn read_checkpoint(fs: &dyn FileSystem, dir: &Path) -> Result<Checkpoint, StorageError> {
    let path = dir.join(CHECKPOINT_FILE);
    if !fs.exists(&path) {
        return Ok(Checkpoint::default());
    }
    let f = fs.open(&path, false).map_err(io_err("open", &path))?;
    let bytes = read_all(&*f).map_err(io_err("read", &path))?;
    let corrupt = || -> StorageError {
        Corruption {
            path: path.clone(),
            kind: FileKind::Checkpoint,
            position: 0,
            detail: CorruptionDetail::Invalid("unreadable eoslog checkpoint"),
        }
        .into()
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt())?;
    let mut lines = text.lines();
    if lines.next() != Some("eoslog-checkpoint 0") {
        return Err(corrupt());
    }
    let mut field = |name: &str| -> Result<i64, StorageError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(corrupt)
    };
    let rp = field("recovery_point ")?;
    let ls = field("log_start_offset ")?;
    let position = lines.next().and_then(|l| {
        let mut it = l.strip_prefix("recovery_position ")?.split(' ');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    });
    Ok(Checkpoint {
        recovery_point: rp,
        log_start_offset: ls,
        recovery_position: position,
    })
}

impl Log {
    pub(super) fn write_checkpoint(&self, w: &Writer) -> Result<(), StorageError> {
        let mut text = format!(
            "eoslog-checkpoint 0\nrecovery_point {}\nlog_start_offset {}\n",
            w.recovery_point,
            self.log_start.load(Ordering::Acquire)
        );
        if let Some((base, pos)) = w.recovery_position {
            text.push_str(&format!("recovery_position {base} {pos}\n"));
        }
        let path = self.dir.join(CHECKPOINT_FILE);
        write_atomic(&*self.fs, &path, text.as_bytes()).map_err(|(op, p, e)| StorageError::io(op, p, e))
    }
}
