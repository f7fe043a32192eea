//! `eoslog.cleaner`: where the dirty section starts and what the last clean did.
//!
//! ```text
//! eoslog-cleaner 1
//! first_dirty_offset <offset>
//! last_run <finished ms> <duration ms> <start offset> <end offset> <segments read>
//!          <segments written> <bytes read> <bytes written> <records read> <records kept>
//!                                                        (one line; absent before a clean)
//! crc <CRC-32C of every byte above>
//! ```
//! Kafka keeps the first dirty offset of every partition of a data directory in one
//! `cleaner-offset-checkpoint`; eoslog keeps it beside the partition's segments, so a log
//! moves with its directory. The file is advisory: a missing or damaged one means the whole
//! log is dirty, which costs one clean and loses nothing.

use std::{fmt::Write as _, path::Path};

use crate::batch::crc32c;
use crate::error::StorageError;
use crate::fs::{read_all, write_atomic, FileSystem};
use crate::types::Offset;

use super::CleanReport;

/// The cleaner's file in a partition directory.
pub const CLEANER_FILE: &str = "eoslog.cleaner";

/// What the file holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct CleanerFile {
    pub(crate) first_dirty_offset: i64,
    pub(crate) last_run: Option<CleanReport>,
}

/// Reads the file; `None` when it is missing or does not check out (with a warning).
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Option<CleanerFile> {
    let path = dir.join(CLEANER_FILE);
    if !fs.exists(&path) {
        return None;
    }
    let parsed = fs
        .open(&path, false)
        .and_then(|f| read_all(&*f))
        .ok()
        .and_then(|bytes| parse(&bytes));
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "cleaner state unreadable; the whole log counts as dirty");
    }
    parsed
}

fn parse(bytes: &[u8]) -> Option<CleanerFile> {
    let text = std::str::from_utf8(bytes).ok()?;
    let crc_at = text.rfind("crc ")?;
    let (body, crc_line) = text.split_at(crc_at);
    if crc_line.trim_end().strip_prefix("crc ")?.parse::<u32>().ok()? != crc32c(body.as_bytes()) {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != "eoslog-cleaner 1" {
        return None;
    }
    let first_dirty_offset = lines.next()?.strip_prefix("first_dirty_offset ")?.parse().ok()?;
    let last_run = match lines.next() {
        None => None,
        Some(line) => {
            let v: Vec<i64> = line
                .strip_prefix("last_run ")?
                .split(' ')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let [finished_ms, duration_ms, start, end, read, written, bytes_read, bytes_written, records_read, records_kept] =
                v[..]
            else {
                return None;
            };
            Some(CleanReport {
                finished_ms,
                duration_ms,
                start_offset: Offset(start),
                end_offset: Offset(end),
                segments_read: read as usize,
                segments_written: written as usize,
                bytes_read: bytes_read as u64,
                bytes_written: bytes_written as u64,
                records_read: records_read as u64,
                records_kept: records_kept as u64,
            })
        }
    };
    Some(CleanerFile {
        first_dirty_offset,
        last_run,
    })
}

/// Writes the file atomically.
pub(crate) fn write(fs: &dyn FileSystem, dir: &Path, state: &CleanerFile) -> Result<(), StorageError> {
    let mut text = format!(
        "eoslog-cleaner 1\nfirst_dirty_offset {}\n",
        state.first_dirty_offset
    );
    if let Some(r) = &state.last_run {
        let _ = writeln!(
            text,
            "last_run {} {} {} {} {} {} {} {} {} {}",
            r.finished_ms,
            r.duration_ms,
            r.start_offset.0,
            r.end_offset.0,
            r.segments_read,
            r.segments_written,
            r.bytes_read,
            r.bytes_written,
            r.records_read,
            r.records_kept
        );
    }
    let crc = crc32c(text.as_bytes());
    let _ = writeln!(text, "crc {crc}");
    write_atomic(fs, &dir.join(CLEANER_FILE), text.as_bytes())
        .map_err(|(op, p, e)| StorageError::io(op, p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_a_changed_byte() {
        let dir = tempfile::tempdir().expect("dir");
        let fs = crate::fs::StdFileSystem;
        let state = CleanerFile {
            first_dirty_offset: 42,
            last_run: Some(CleanReport {
                finished_ms: 5,
                duration_ms: 2,
                start_offset: Offset(0),
                end_offset: Offset(42),
                segments_read: 3,
                segments_written: 1,
                bytes_read: 900,
                bytes_written: 300,
                records_read: 30,
                records_kept: 10,
            }),
        };
        write(&fs, dir.path(), &state).expect("write");
        let back = read(&fs, dir.path()).expect("read");
        assert_eq!(back.first_dirty_offset, 42);
        assert_eq!(back.last_run, state.last_run);
        let path = dir.path().join(CLEANER_FILE);
        let mut bytes = std::fs::read(&path).expect("bytes");
        bytes[27] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        assert!(read(&fs, dir.path()).is_none());
    }
}
