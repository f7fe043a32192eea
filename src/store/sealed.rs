//! The store's small text files (the store file, topic files, the producer-id file): a
//! header line naming the file's kind and version, lines of content, and a last line
//! `crc <CRC-32C of every byte above>`. Written whole and atomically (temp file, fsync,
//! rename, directory fsync); a file whose checksum or header does not match is damage,
//! never guessed at.

use std::path::Path;

use crate::batch::crc32c;
use crate::error::{Corruption, CorruptionDetail, FileKind, StorageError};
use crate::fs::{read_all, write_atomic, FileSystem};

/// Writes `header`, then `body` (lines ending in `\n`), then the checksum line.
pub(crate) fn write(fs: &dyn FileSystem, path: &Path, header: &str, body: &str) -> Result<(), StorageError> {
    let sealed = format!("{header}\n{body}");
    let bytes = format!("{sealed}crc {}\n", crc32c(sealed.as_bytes()));
    write_atomic(fs, path, bytes.as_bytes()).map_err(|(op, p, e)| StorageError::io(op, p, e))
}

/// Reads a file written by [`write`] with this `header` and hands its content lines to
/// `parse`; `what` names the file in the error when the checksum, the header or `parse`
/// fails.
pub(crate) fn read<T>(
    fs: &dyn FileSystem,
    path: &Path,
    header: &str,
    what: &'static str,
    parse: impl FnOnce(std::str::Lines<'_>) -> Option<T>,
) -> Result<T, StorageError> {
    let f = fs
        .open(path, false)
        .map_err(|e| StorageError::io("open", path, e))?;
    let bytes = read_all(&*f).map_err(|e| StorageError::io("read", path, e))?;
    unseal(&bytes, header).and_then(parse).ok_or_else(|| {
        Corruption {
            path: path.to_path_buf(),
            kind: FileKind::Checkpoint,
            position: 0,
            detail: CorruptionDetail::Invalid(what),
        }
        .into()
    })
}

/// The content lines of a sealed file, if its checksum and header match.
fn unseal<'a>(bytes: &'a [u8], header: &str) -> Option<std::str::Lines<'a>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let end = text.trim_end_matches('\n').rfind('\n')? + 1;
    let stored: u32 = text[end..].trim_end().strip_prefix("crc ")?.parse().ok()?;
    if stored != crc32c(&bytes[..end]) {
        return None;
    }
    let mut lines = text[..end].lines();
    (lines.next()? == header).then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_and_foreign_headers_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = crate::fs::StdFileSystem;
        let path = dir.path().join("f");
        write(&fs, &path, "kind 1", "a 1\nb 2\n").expect("write");
        let lines = read(&fs, &path, "kind 1", "f", |l| {
            Some(l.map(str::to_owned).collect::<Vec<_>>())
        });
        assert_eq!(lines.expect("read"), vec!["a 1", "b 2"]);
        assert!(read(&fs, &path, "other 1", "f", |_| Some(())).is_err());
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[8] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(read(&fs, &path, "kind 1", "f", |_| Some(())).is_err());
    }
}
