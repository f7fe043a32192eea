//! Opening a log after a crash mid-clean: a copy whose `.log.swap` exists is committed and
//! is put in place of the originals it replaces; the files of one that never committed
//! (`.cleaned`, or derived `.swap` files without their `.log.swap`) are removed.

use std::{collections::BTreeSet, path::Path};

use crate::batch::{HEADER_SIZE, LAST_OFFSET_DELTA_OFFSET, LOG_OVERHEAD};
use crate::error::{BatchError, Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::FileSystem;
use crate::segment::{parse_file_name, Segment, SWAP_SUFFIX};

use super::super::io_err;

/// Completes every committed swap in `dir`. Returns whether it changed anything.
pub(crate) fn finish_swaps(fs: &dyn FileSystem, dir: &Path) -> Result<bool, StorageError> {
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
    Ok(changed)
}

/// The offset after the last batch of the `.log` at `path` (`base` when it is empty). Its
/// batches were fsynced before the rename that committed it, so a bad length is damage.
fn next_offset(fs: &dyn FileSystem, path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = fs.open(path, false).map_err(io_err("open", path))?;
    let size = file.len().map_err(io_err("stat", path))?;
    let damaged = |position: u64, error: BatchError| -> StorageError {
        Corruption {
            path: path.to_path_buf(),
            kind: FileKind::Log,
            position,
            detail: CorruptionDetail::from(error),
        }
        .into()
    };
    let mut next = base;
    let mut pos = 0u64;
    let mut head = [0u8; HEADER_SIZE];
    while pos < size {
        let want = (size - pos).min(HEADER_SIZE as u64) as usize;
        let mut done = 0;
        while done < want {
            let n = file
                .read_at(&mut head[done..want], pos + done as u64)
                .map_err(io_err("read", path))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        let (batch_base, len) = crate::batch::peek_batch_size(&head[..done])
            .filter(|&(_, len)| len >= 0 && done == HEADER_SIZE)
            .ok_or_else(|| {
                damaged(
                    pos,
                    BatchError::Truncated {
                        needed: HEADER_SIZE as u64,
                        available: done as u64,
                    },
                )
            })?;
        let total = LOG_OVERHEAD as u64 + len as u64;
        if (total as usize) < HEADER_SIZE || pos + total > size {
            return Err(damaged(
                pos,
                BatchError::Truncated {
                    needed: total,
                    available: size - pos,
                },
            ));
        }
        let d = LAST_OFFSET_DELTA_OFFSET;
        let delta = i32::from_be_bytes([head[d], head[d + 1], head[d + 2], head[d + 3]]);
        next = batch_base + i64::from(delta) + 1;
        pos += total;
    }
    Ok(next)
}
