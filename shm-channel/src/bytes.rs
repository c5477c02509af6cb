//! Copying a message's bytes into or out of shared memory.
//!
//! Messages on a round trip are often a few bytes (a request of two integers, an answer of
//! one), where a call to the C library's `memcpy` and its size dispatch cost more than the
//! copy: those are copied here with two loads and two stores each, inline.

use std::ptr::{copy_nonoverlapping, read_unaligned, write_unaligned};

/// Copies `len` bytes from `src` to `dst`.
///
/// # Safety
///
/// `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges do not
/// overlap (as for [`std::ptr::copy_nonoverlapping`]). Either may be shared memory that a peer
/// writes meanwhile: the bytes copied may then be any mix of old and new, never out of bounds.
#[inline(always)]
pub(crate) unsafe fn copy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's ranges; each access below lies inside `0..len` (the two accesses
    // of a size class overlap when `len` is not twice the class).
    unsafe {
        if len > 16 {
            copy_nonoverlapping(src, dst, len);
        } else if len >= 8 {
            let (a, b) = (
                read_unaligned(src.cast::<u64>()),
                read_unaligned(src.add(len - 8).cast::<u64>()),
            );
            write_unaligned(dst.cast::<u64>(), a);
            write_unaligned(dst.add(len - 8).cast::<u64>(), b);
        } else if len >= 4 {
            let (a, b) = (
                read_unaligned(src.cast::<u32>()),
                read_unaligned(src.add(len - 4).cast::<u32>()),
            );
            write_unaligned(dst.cast::<u32>(), a);
            write_unaligned(dst.add(len - 4).cast::<u32>(), b);
        } else {
            for i in 0..len {
                *dst.add(i) = *src.add(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_length_up_to_40_is_copied_exactly_and_nothing_beside_it() {
        let src: Vec<u8> = (1..=40).collect();
        for len in 0..=40 {
            let mut dst = [0u8; 48];
            // SAFETY: `len` bytes of `src` (40 long) into `dst[4..]` (44 long), no overlap.
            unsafe { super::copy(src.as_ptr(), dst.as_mut_ptr().add(4), len) };
            assert_eq!(&dst[4..4 + len], &src[..len], "len {len}");
            assert!(
                dst[..4].iter().chain(&dst[4 + len..]).all(|&b| b == 0),
                "len {len}"
            );
        }
    }
}
