//! [`InPlace`]: a received message's bytes where they lie in a mapping, read by copy. The one
//! copy-out that the stream's and the pair's [`Sample`](crate::Sample) and the topic's
//! [`SubSample`](crate::pubsub::SubSample) share.

use zerocopy::{FromBytes, IntoBytes};

use crate::{Error, Result};

/// `len` bytes at `data`, inside a mapping that outlives this value (so its safe methods may
/// read them). A peer may change the bytes while they are read; never their bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InPlace {
    data: *const u8,
    len: usize,
}

impl InPlace {
    /// The `len` bytes at `data`.
    ///
    /// # Safety
    ///
    /// `data..data + len` lies inside a mapping that stays mapped while this value (or a copy
    /// of it) is used, the length checked against the slot's maximum by the caller.
    #[inline]
    pub(crate) unsafe fn new(data: *const u8, len: usize) -> InPlace {
        InPlace { data, len }
    }

    /// Copies the bytes to the front of `buf`; [`Error::TooLarge`] when `buf` is shorter.
    #[inline]
    pub(crate) fn copy_to(self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < self.len {
            return Err(Error::TooLarge {
                len: self.len,
                max: buf.len(),
            });
        }
        // SAFETY: `len` bytes inside the mapping (the promise of `new`); `buf` is private
        // memory, so no overlap. A peer writing meanwhile changes the bytes, never the bounds.
        unsafe { crate::bytes::copy(self.data, buf.as_mut_ptr(), self.len) };
        Ok(())
    }

    /// A copy of the bytes.
    pub(crate) fn to_vec(self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        // Cannot fail: the buffer has the message's length.
        let _ = self.copy_to(&mut v);
        v
    }

    /// A copy of the bytes as one value of plain data; [`Error::WrongSize`] when their length
    /// is not `size_of::<T>()`.
    #[inline]
    pub(crate) fn read_value<T: FromBytes + IntoBytes>(self) -> Result<T> {
        if self.len != size_of::<T>() {
            return Err(Error::WrongSize {
                len: self.len,
                expected: size_of::<T>(),
            });
        }
        let mut value = T::new_zeroed();
        // SAFETY: as for copy_to, with a length known at compile time (no call to memcpy):
        // exactly `size_of::<T>()` bytes inside the mapping; `value` is private memory.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.data,
                value.as_mut_bytes().as_mut_ptr(),
                size_of::<T>(),
            )
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::InPlace;
    use crate::Error;

    #[test]
    fn copies_within_its_bounds_only() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        // SAFETY: the first 8 bytes of `bytes`, which outlives `view`.
        let view = unsafe { InPlace::new(bytes.as_ptr(), 8) };
        assert_eq!(view.to_vec(), &bytes[..8]);
        let mut short = [0u8; 7];
        assert!(matches!(
            view.copy_to(&mut short),
            Err(Error::TooLarge { len: 8, max: 7 })
        ));
        assert_eq!(short, [0; 7], "nothing copied when it does not fit");
        let mut long = [0u8; 10];
        view.copy_to(&mut long).expect("fits");
        assert_eq!(long, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
        assert_eq!(
            view.read_value::<u64>().expect("8 bytes"),
            u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(matches!(
            view.read_value::<u32>(),
            Err(Error::WrongSize {
                len: 8,
                expected: 4
            })
        ));
    }
}
