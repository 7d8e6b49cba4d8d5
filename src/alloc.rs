//! The process allocator: mimalloc, entered through plain `mi_malloc` for everyday layouts.
//!
//! The `mimalloc` crate calls `mi_malloc_aligned` for every allocation, and its alignment
//! checks cost ~45 instructions each (callgrind); the engine makes about six allocations per
//! event. Every mimalloc block is a whole number of 8-byte words from a word-aligned start,
//! so any layout aligned to at most a word can skip them; larger alignments still take the
//! aligned entry points.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Install with `#[global_allocator] static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;`.
pub struct Allocator;

const WORD: usize = std::mem::size_of::<usize>();

/// `mi::$plain(args)` for a layout aligned to at most a word, else `mi::$aligned(args,
/// alignment)`: written out at each use, so each compiles to the branch it stands for.
macro_rules! by_alignment {
    ($layout:expr, $plain:ident($($arg:expr),*), $aligned:ident) => {
        if $layout.align() <= WORD {
            mi::$plain($($arg),*).cast()
        } else {
            mi::$aligned($($arg,)* $layout.align()).cast()
        }
    };
}

// SAFETY: every path hands the layout to mimalloc, which returns blocks of at least the
// requested size at the requested alignment (word alignment holds for all its blocks), and
// frees any block with `mi_free` whatever its alignment.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        by_alignment!(layout, mi_malloc(layout.size()), mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        by_alignment!(layout, mi_zalloc(layout.size()), mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        by_alignment!(layout, mi_realloc(ptr.cast(), new_size), mi_realloc_aligned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_writable_and_keep_their_bytes_through_realloc() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 9, 16, 24, 40, 100, 1000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layouts are non-zero in size; every block is freed once, with
                // the layout it was made with.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xab, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert!((0..size).all(|i| *q.add(i) == 0xab));
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
