//! The broker binary's global allocator: the system allocator, except that an allocation of
//! 1 GiB or more is a private anonymous mapping with `MAP_NORESERVE`.
//!
//! Why: the protocol crate sizes a decoded array from the count on the wire before it reads
//! the elements (`Vec::with_capacity(n)`), so a 14-byte frame whose array count is
//! 2^31 - 1 asks for ~150 GB. The system allocator refuses that and Rust aborts the
//! process. Mapped with `MAP_NORESERVE`, the request only reserves address space (no page
//! is touched, nothing is committed under the kernel's default overcommit policy); the
//! decode then fails at the first missing element, the vector is dropped and the range
//! unmapped. Real allocations of that size do not occur in the broker (frames are bounded
//! by `socket.request.max.bytes`), so the path costs nothing in normal operation.
//! Under strict overcommit (`vm.overcommit_memory=2`) the mapping fails and the process
//! still aborts: the limit of this guard.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};

/// Allocations at least this large are mapped.
const MAPPED: usize = 1 << 30;
/// `mmap` returns page-aligned addresses; larger alignments stay with the system allocator.
const PAGE: usize = 4096;

/// See the module documentation.
pub struct Allocator;

fn mapped(layout: Layout) -> bool {
    layout.size() >= MAPPED && layout.align() <= PAGE
}

// SAFETY: every block is either the system allocator's or a fresh anonymous mapping of
// exactly `layout.size()` bytes. Which one is decided by `mapped(layout)`, and Rust passes
// `dealloc` and `realloc` the same layout the block was allocated with, so each block is
// returned to the allocator that made it. Mappings are page-aligned, and `mapped` admits
// only alignments up to a page, so the alignment contract holds.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(layout) {
            // SAFETY: the caller's contract (non-zero size) is passed on unchanged.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a new mapping (null hint) of `size` bytes; it aliases nothing.
        match unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                layout.size(),
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        } {
            Ok(p) => p.cast(),
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !mapped(layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
            unsafe { System.dealloc(ptr, layout) };
            return;
        }
        // SAFETY: `ptr` is the start of a mapping of exactly `layout.size()` bytes made by
        // `alloc`, and the caller no longer uses it.
        let _ = unsafe { munmap(ptr.cast(), layout.size()) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` rounded to `layout.align()` does not
        // overflow, so the new layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !mapped(layout) && !mapped(new_layout) {
            // SAFETY: a system block resized within the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Crossing to or from a mapping: allocate, copy, free, each by its own allocator.
        // SAFETY: `new_layout` has a non-zero size (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_capacity_reserves_address_space_only() {
        // 150 GB: what a forged array count asks for.
        let layout = Layout::from_size_align(150 << 30, 8).expect("layout");
        // SAFETY: non-zero size; freed with the same layout below.
        let p = unsafe { Allocator.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: the first page of the mapping is writable.
        unsafe {
            p.write(7);
            assert_eq!(p.read(), 7);
            Allocator.dealloc(p, layout);
        }
    }
}
