//! The narrow seam between the log and the operating system: every file and directory
//! operation the log performs goes through [`FileSystem`] and [`StorageFile`], and every
//! clock read through [`Clock`]. Tests substitute implementations that fail on chosen
//! operations or move time by hand; embedders normally use the defaults.

use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

#[expect(
    clippy::len_without_is_empty,
    reason = "a fallible file-length query; emptiness is never asked"
)]
/// An open file of the log (segment, index, snapshot). All methods take `&self`: positional
/// I/O needs no cursor, so readers and the writer share one handle.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `pos`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `pos`.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Writes `parts` back to back at `pos` (one `pwritev` where the backend has it).
    fn write_all_vectored_at(&self, parts: &[&[u8]], mut pos: u64) -> io::Result<()> {
        for p in parts {
            self.write_all_at(p, pos)?;
            pos += p.len() as u64;
        }
        Ok(())
    }
    /// Reserves disk blocks for `len` bytes from `offset` without changing the file's
    /// length (Linux `fallocate(FALLOC_FL_KEEP_SIZE)`), so that later writes there need not
    /// allocate. Advisory: the log is correct without it, and after a failure it stops
    /// asking for that segment. The default refuses (`Unsupported`): nothing is reserved.
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Truncates or extends the file. An implementation whose `preallocate` reserves space
    /// must release what lies past `len`, even when `len` is the current length (ext4, XFS
    /// and btrfs do so for `ftruncate`): the log releases a reservation that way.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current file length.
    fn len(&self) -> io::Result<u64>;
    /// `fdatasync`: data and the metadata needed to read it back (size) reach stable storage.
    fn sync_data(&self) -> io::Result<()>;
    /// The underlying OS file, for memory maps and zero-copy sends (`sendfile`).
    fn as_file(&self) -> &File;
    /// Called before the log memory-maps this file; an implementation may refuse.
    fn before_mmap(&self) -> io::Result<()> {
        Ok(())
    }
}

/// File-system operations on paths.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and writing, creating it when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsyncs a directory, making creations, renames and deletions in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The file names in a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Removes a directory and everything in it (a deleted topic's partitions).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFileSystem;

#[derive(Debug)]
struct StdFile(File);

impl StorageFile for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    #[cfg(target_os = "linux")]
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        Ok(fallocate(&self.0, FallocateFlags::KEEP_SIZE, offset, len)?)
    }
    fn write_all_vectored_at(&self, parts: &[&[u8]], mut pos: u64) -> io::Result<()> {
        // One pwritev per window of at most WINDOW parts, built in a stack array: no allocation
        // per append, and within IOV_MAX (1024) however many batches a replica appends at
        // once. pwritev may write less than asked: advance past what it wrote and go on.
        const WINDOW: usize = 64;
        let mut iov = [io::IoSlice::new(&[]); WINDOW];
        for chunk in parts.chunks(WINDOW) {
            for (slot, part) in iov.iter_mut().zip(chunk) {
                *slot = io::IoSlice::new(part);
            }
            let mut window: &mut [io::IoSlice<'_>] = &mut iov[..chunk.len()];
            io::IoSlice::advance_slices(&mut window, 0); // leading empty parts
            while !window.is_empty() {
                match rustix::io::pwritev(&self.0, window, pos) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        pos += n as u64;
                        io::IoSlice::advance_slices(&mut window, n);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn as_file(&self) -> &File {
        &self.0
    }
}

impl FileSystem for StdFileSystem {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// Reads all of a (small) file through the seam.
pub(crate) fn read_all(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.len()?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], done as u64)?;
        if n == 0 {
            buf.truncate(done);
            break;
        }
        done += n;
    }
    Ok(buf)
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, directory fsync.
pub(crate) fn write_atomic(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, PathBuf, io::Error)> {
    write_renamed(fs, path, bytes)?;
    // IMPORTANT: the rename is only durable once the directory entry is.
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir)
        .map_err(|e| ("fsync directory", dir.to_path_buf(), e))?;
    Ok(())
}

/// [`write_atomic`] without the directory fsync: the caller fsyncs the directory once after
/// several such writes. Until it does, a crash leaves either file under the name, each
/// whole (the content is fsynced before the rename).
pub(crate) fn write_renamed(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, PathBuf, io::Error)> {
    write_through_temp(fs, path, bytes, true)
}

/// Writes `bytes` to a temp file renamed to `path`, fsyncing nothing: a process crash leaves
/// the old file or the whole new one, a power loss possibly a damaged one. Only for derived
/// files whose readers check them (a producer snapshot), fsynced later by the caller.
pub(crate) fn write_renamed_unsynced(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, PathBuf, io::Error)> {
    write_through_temp(fs, path, bytes, false)
}

fn write_through_temp(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
    fsync: bool,
) -> Result<(), (&'static str, PathBuf, io::Error)> {
    let tmp = path.with_extension(match path.extension() {
        Some(e) => format!("{}.tmp", e.to_string_lossy()),
        None => "tmp".to_owned(),
    });
    write_file(fs, &tmp, bytes, fsync)?;
    fs.rename(&tmp, path)
        .map_err(|e| ("rename", path.to_path_buf(), e))
}

/// Creates (or empties) the file at `path` and writes `bytes` to it, fsynced with `fsync`:
/// the first half of a write through a temp file, for a caller that renames it itself.
pub(crate) fn write_file(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
    fsync: bool,
) -> Result<(), (&'static str, PathBuf, io::Error)> {
    let f = fs
        .open(path, true)
        .map_err(|e| ("create", path.to_path_buf(), e))?;
    f.set_len(0).map_err(|e| ("truncate", path.to_path_buf(), e))?;
    f.write_all_at(bytes, 0)
        .map_err(|e| ("write", path.to_path_buf(), e))?;
    if fsync {
        f.sync_data().map_err(|e| ("fsync", path.to_path_buf(), e))?;
    }
    Ok(())
}

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in milliseconds since the epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock moved by hand, for tests and simulations. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now_ms`.
    #[must_use]
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }
    /// Sets the time.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    /// Moves the time forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
