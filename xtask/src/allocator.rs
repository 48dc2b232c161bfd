//! The commands' allocator: mimalloc, called the way its own C API is fastest.
//!
//! The simulation allocates a small buffer or future for nearly every message and record:
//! mimalloc's thread-local free lists cost a fraction of the system allocator's. The `mimalloc`
//! crate's allocator sends every request through `mi_malloc_aligned`, whose fast path misses
//! whenever the free block at hand is not aligned to the request's alignment by chance, and
//! then takes a slow generic path (1.6% of a run's instructions in a callgrind profile). An
//! alignment that `mi_malloc` guarantees anyway needs none of that.
//!
//! Without transparent huge pages: mimalloc asks the kernel for them on its arenas (built here
//! with `no_thp`, it does not), and a kernel set to give them unasked is told not to
//! ([`without_huge_pages`]). An hour of exactly-once recovery grows by 110 MB of Kafka log,
//! and with huge pages the kernel zeroed 2 MiB at each first touch: 0.20 to 0.35 s of system
//! time in a 1.7 s run, and 153 MB resident against 130 MB without (`/usr/bin/time`, five runs
//! each, alternating: 1.68 s against 1.54 s, medians).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// Every block `mi_malloc` returns is aligned to this much (`MI_MAX_ALIGN_SIZE`, 16 on
/// 64-bit targets), and a block no larger than its alignment is aligned to its size.
const GUARANTEED_ALIGN: usize = 16;

/// mimalloc, through `mi_malloc` when the alignment asked for is one it guarantees.
pub struct MiMalloc;

/// Whether `mi_malloc` alone already aligns a block of `size` bytes to `align`.
fn plain(size: usize, align: usize) -> bool {
    align <= GUARANTEED_ALIGN && align <= size
}

// SAFETY: each call hands mimalloc a size and alignment it accepts, and frees only what it
// allocated; mimalloc is thread-safe.
unsafe impl GlobalAlloc for MiMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls with a nonzero size (GlobalAlloc's contract).
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is mimalloc for every alignment.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; the new size is nonzero.
        unsafe {
            if plain(new_size, layout.align()) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Tells the kernel not to back this process (and the processes it starts, such as the bench's
/// cases) with transparent huge pages; where it cannot, nothing changes but speed.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
