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

/// `mi_option_purge_delay`'s place in mimalloc's option enum (`mimalloc.h`); the Rust crate
/// names only some of the options.
const PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// Settings for the workloads here; call once at the start of `main`. An operator's
/// `MIMALLOC_PURGE_DELAY` still wins.
///
/// mimalloc gives freed pages back to the OS 10 ms after they empty. A replay worker frees a
/// block's events every 30-50 ms and allocates as many again, so each block faulted in
/// pages the kernel had to zero again: 13 % of a backtest's time. Held a second, the pages
/// are reused; memory still goes back after a spike, a second later.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads options at any time.
        unsafe { mi_option_set(PURGE_DELAY, 1000) };
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

    #[test]
    fn the_purge_delay_is_where_tune_sets_it() {
        // Nothing in the tests calls `tune`: the option still holds mimalloc's default
        // (10 ms), so a mimalloc whose enum moved fails here instead of tuning another option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an integer option.
            assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, 10);
        }
    }
}
