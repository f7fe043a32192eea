//! Opening a log after a crash mid-clean: a copy whose `.log.swap` exists is committed and
//! is put in place of the originals it replaces; the files of one that never committed
//! (`.cleaned`, or derived `.swap` files without their `.log.swap`) are removed.

use std::{collections::BTreeSet, path::Path};

use crate::batch::{RecordBatch, HEADER_SIZE, LOG_OVERHEAD};
use crate::error::{BatchError, Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::FileSystem;
use crate::segment::{parse_file_name, Segment, SWAP_SUFFIX};

use super::super::io_err;

/// Completes every committed swap in `dir`. Returns the bases of the segments it put in
/// place: what the checkpoint recorded of the originals at those bases no longer applies.
pub(crate) fn finish_swaps(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<i64>, StorageError> {
    let names = fs.list_dir(dir).map_err(io_err("list", dir))?;
    let swaps: BTreeSet<i64> = names
        .iter()
        .filter_map(|n| parse_file_name(n))
        .filter(|(_, suffix)| *suffix == "log.swap")
        .map(|(base, _)| base)
        .collect();
    let mut changed = false;
    for &base in &swaps {
        let swap = Segment::files(dir, base, SWAP_SUFFIX);
        let next = next_offset(fs, &swap[0], base)?;
        // The copy replaces segments below the active one, so a segment at or past its next
        // offset exists; a next offset past every segment is damage, not a reason to delete.
        let last_base = names
            .iter()
            .filter_map(|n| parse_file_name(n))
            .filter(|(_, suffix)| *suffix == "log")
            .map(|(b, _)| b)
            .max();
        if last_base.is_some_and(|b| next > b) {
            return Err(Corruption {
                path: swap[0].clone(),
                kind: FileKind::Log,
                position: 0,
                detail: CorruptionDetail::Invalid("compaction swap file reaches past the last segment"),
            }
            .into());
        }
        if next == base {
            // eoslog's copies always hold their group's last batch: an empty one was not
            // written by this cleaner, and putting it in place would drop the originals.
            return Err(Corruption {
                path: swap[0].clone(),
                kind: FileKind::Log,
                position: 0,
                detail: CorruptionDetail::Invalid("empty compaction swap file (.log.swap)"),
            }
            .into());
        }
        // The copy holds the group's last batch, so its next offset ends the group exactly.
        for name in &names {
            if let Some((b, "log" | "index" | "timeindex" | "txnindex")) = parse_file_name(name) {
                if b > base && b < next {
                    let p = dir.join(name);
                    fs.remove_file(&p).map_err(io_err("remove", &p))?;
                }
            }
        }
        let finals = Segment::files(dir, base, "");
        // The `.log` last, as the clean renamed them: a crash in between repeats this.
        for (from, to) in swap
            .iter()
            .zip(&finals)
            .skip(1)
            .chain(std::iter::once((&swap[0], &finals[0])))
        {
            if fs.exists(from) {
                fs.rename(from, to).map_err(io_err("rename", to))?;
            }
        }
        tracing::warn!(dir = %dir.display(), base, next, "completed a clean interrupted during its swap");
        changed = true;
    }
    for name in &names {
        if let Some((base, suffix)) = parse_file_name(name) {
            if suffix.ends_with(SWAP_SUFFIX) && !swaps.contains(&base) {
                let p = dir.join(name);
                fs.remove_file(&p).map_err(io_err("remove", &p))?;
                changed = true;
            }
        }
    }
    if changed {
        fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    }
    Ok(swaps.into_iter().collect())
}

/// The offset after the last batch of the `.log` at `path` (`base` when it is empty). Its
/// batches were fsynced before the rename that committed it, so anything that does not check
/// out (a length, a CRC, offsets that do not increase from `base`) is damage: the open stops
/// rather than delete segments on the word of a bad header.
fn next_offset(fs: &dyn FileSystem, path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = fs.open(path, false).map_err(io_err("open", path))?;
    let size = file.len().map_err(io_err("stat", path))?;
    let damaged = |position: u64, detail: CorruptionDetail| -> StorageError {
        Corruption {
            path: path.to_path_buf(),
            kind: FileKind::Log,
            position,
            detail,
        }
        .into()
    };
    let mut next = base;
    let mut pos = 0u64;
    let mut buf = Vec::new();
    while pos < size {
        let mut head = [0u8; LOG_OVERHEAD];
        let want = (size - pos).min(LOG_OVERHEAD as u64) as usize;
        read_exact(&*file, &mut head[..want], pos, path)?;
        let truncated = |needed: u64| {
            damaged(
                pos,
                BatchError::Truncated {
                    needed,
                    available: size - pos,
                }
                .into(),
            )
        };
        let Some((_, len)) = crate::batch::peek_batch_size(&head[..want]) else {
            return Err(truncated(LOG_OVERHEAD as u64));
        };
        let total = u64::try_from(len)
            .ok()
            .map(|l| l + LOG_OVERHEAD as u64)
            .filter(|&t| t >= HEADER_SIZE as u64);
        let Some(total) = total.filter(|&t| pos + t <= size) else {
            return Err(truncated(LOG_OVERHEAD as u64 + len.max(0) as u64));
        };
        buf.resize(total as usize, 0);
        read_exact(&*file, &mut buf, pos, path)?;
        let batch = RecordBatch::parse_exact(&buf).map_err(|e| damaged(pos, e.into()))?;
        batch.validate_crc().map_err(|e| damaged(pos, e.into()))?;
        if batch.base_offset() < next || batch.last_offset() < batch.base_offset() {
            return Err(damaged(
                pos,
                CorruptionDetail::Invalid("offsets in a compaction swap file do not increase"),
            ));
        }
        next = batch.last_offset().checked_add(1).ok_or_else(|| {
            damaged(
                pos,
                CorruptionDetail::Invalid("offset overflow in a compaction swap file"),
            )
        })?;
        pos += total;
    }
    Ok(next)
}

fn read_exact(
    file: &dyn crate::fs::StorageFile,
    buf: &mut [u8],
    pos: u64,
    path: &Path,
) -> Result<(), StorageError> {
    let mut done = 0;
    while done < buf.len() {
        let n = file
            .read_at(&mut buf[done..], pos + done as u64)
            .map_err(io_err("read", path))?;
        if n == 0 {
            return Err(StorageError::io(
                "read",
                path,
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shorter than its length"),
            ));
        }
        done += n;
    }
    Ok(())
}
