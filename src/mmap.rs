//! The one module allowed to use `unsafe`: memory maps of index files.
//!
//! Only the active segment's `.index` and `.timeindex` are mapped (inactive indexes are read
//! with `pread`, `index.rs`), so at most two maps per partition exist.
//!
//! Contract (why mapping is sound here):
//! - the partition directory is held under an exclusive lock (`Log::open`), so no other
//!   cooperating process writes, truncates or deletes an index while it is mapped;
//! - the log itself never shrinks a mapped file: [`MmapRegion`] is dropped before any
//!   `set_len` that shortens the file, and re-created afterwards;
//! - the bytes in a map are never trusted: every read of a mapped index goes through
//!   bounds-checked slice accessors and the values read are validated by the caller.
//!
//! An outside process that truncates a mapped file despite the lock can make the kernel raise
//! SIGBUS on access; that is the residual risk every mmap-based index (Kafka's included) accepts.

use std::{fs::File, io};

use memmap2::MmapMut;

/// A writable shared mapping of the first `len` bytes of a file.
#[derive(Debug)]
pub(crate) struct MmapRegion {
    map: MmapMut,
}

impl MmapRegion {
    /// Maps `len` bytes of `file` (which must be at least `len` long).
    #[allow(unsafe_code)]
    pub(crate) fn map(file: &File, len: usize) -> io::Result<MmapRegion> {
        // SAFETY: `MmapMut::map_mut` is unsafe because another process or handle could
        // modify or truncate the file while mapped, which is undefined behaviour for a `&[u8]`.
        // The module-level contract rules that out for cooperating owners: the directory lock
        // is held, and this crate never shrinks the file while this region lives.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(file)? };
        // An index is written one entry at a time at its end and read by binary search, never
        // sequentially. Without this hint the first write to each page of the (sparse,
        // preallocated) file faults in a whole readahead window of zero-filled pages: perf
        // showed that at 12% of append time (`benches/append.rs`). The advice only tunes
        // paging, so a platform that refuses it loses speed, not correctness.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Ok(MmapRegion { map })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.map
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// `msync`s the mapping, so index entries written through it reach the disk.
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }
}
