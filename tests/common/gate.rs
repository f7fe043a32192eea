//! File systems for tests that put a behaviour into some files' operations: a wrapper over
//! the standard one, and a gate that holds an operation until the test lets it go on.
//! Shared by the library's and the broker's integration tests (no dependency but `eoslog`).
#![allow(dead_code, missing_docs)]

use std::io;
use std::path::Path;
use std::sync::Arc;

use eoslog::{FileSystem, StdFileSystem, StorageFile};

/// The standard file system, with every opened file passed through `wrap` (which sees the
/// path): a test injects behaviour into some files and leaves the rest alone.
pub struct WrappedFs<F>(pub F);

impl<F> std::fmt::Debug for WrappedFs<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappedFs")
    }
}

impl<F> FileSystem for WrappedFs<F>
where
    F: Fn(&Path, Arc<dyn StorageFile>) -> Arc<dyn StorageFile> + Send + Sync,
{
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok((self.0)(path, StdFileSystem.open(path, create)?))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
}

/// Which operation of a gated file blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOn {
    Read,
    Write,
    Sync,
}

/// A synchronisation point inside the log's file operations: once armed, the next matching
/// operation of a gated file signals `entered` and blocks until the test releases it. Every
/// wait gives up after 20 s, so a broken test fails instead of hanging.
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateInner>);

#[derive(Debug)]
struct GateInner {
    on: GateOn,
    armed: std::sync::atomic::AtomicBool,
    /// Panic inside the operation once released (a file system that panics).
    panic: bool,
    state: std::sync::Mutex<(bool, bool)>,
    cv: std::sync::Condvar,
}

pub const GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl Gate {
    pub fn new(on: GateOn) -> Gate {
        Self::build(on, false)
    }

    /// A gate whose operation panics once released.
    pub fn panicking(on: GateOn) -> Gate {
        Self::build(on, true)
    }

    fn build(on: GateOn, panic: bool) -> Gate {
        Gate(Arc::new(GateInner {
            on,
            armed: std::sync::atomic::AtomicBool::new(false),
            panic,
            state: std::sync::Mutex::new((false, false)),
            cv: std::sync::Condvar::new(),
        }))
    }

    /// The next matching operation blocks.
    pub fn arm(&self) {
        *self.0.state.lock().expect("gate") = (false, false);
        self.0.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until an operation is blocked in the gate.
    pub fn wait_entered(&self) {
        let st = self.0.state.lock().expect("gate");
        let (st, timeout) = self
            .0
            .cv
            .wait_timeout_while(st, GATE_TIMEOUT, |(entered, _)| !*entered)
            .expect("gate");
        assert!(!timeout.timed_out() && st.0, "no operation reached the gate");
    }

    /// Lets the blocked operation go on.
    pub fn release(&self) {
        self.0.state.lock().expect("gate").1 = true;
        self.0.cv.notify_all();
    }

    fn pass(&self, op: GateOn) {
        if op != self.0.on || !self.0.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut st = self.0.state.lock().expect("gate");
        st.0 = true;
        self.0.cv.notify_all();
        let (_st, timeout) = self
            .0
            .cv
            .wait_timeout_while(st, GATE_TIMEOUT, |(_, released)| !*released)
            .expect("gate");
        assert!(!timeout.timed_out(), "the gate was never released");
        assert!(!self.0.panic, "injected panic inside a file operation");
    }
}

/// A file system whose files for which `gated` holds pass their operations through `gate`
/// (a store's; the library's tests' `Gate::open` opens a lone log on one).
pub fn gated_fs(gate: &Gate, gated: impl Fn(&Path) -> bool + Send + Sync + 'static) -> Arc<dyn FileSystem> {
    let gate = gate.clone();
    Arc::new(WrappedFs(
        move |path: &Path, f: Arc<dyn StorageFile>| -> Arc<dyn StorageFile> {
            Arc::new(GatedFile(f, gated(path).then(|| gate.clone())))
        },
    ))
}

/// Whether a path is a segment's `.log` file.
pub fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "log")
}

#[derive(Debug)]
struct GatedFile(Arc<dyn StorageFile>, Option<Gate>);

impl StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        if let Some(g) = &self.1 {
            g.pass(GateOn::Read);
        }
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if let Some(g) = &self.1 {
            g.pass(GateOn::Write);
        }
        self.0.write_all_at(buf, pos)
    }
    fn write_all_vectored_at(&self, parts: &[&[u8]], pos: u64) -> io::Result<()> {
        if let Some(g) = &self.1 {
            g.pass(GateOn::Write);
        }
        self.0.write_all_vectored_at(parts, pos)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync_data(&self) -> io::Result<()> {
        if let Some(g) = &self.1 {
            g.pass(GateOn::Sync);
        }
        self.0.sync_data()
    }
    fn as_file(&self) -> &std::fs::File {
        self.0.as_file()
    }
}
