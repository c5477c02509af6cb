//! [`Mapping`]: shared memory mapped into this process, reached only through atomics and copies.
//!
//! Shared memory is not Rust memory: another process may write it at any moment, so a `&[u8]` or
//! `&mut [u8]` into it would promise what no one can keep. Safe access goes through
//! [`Mapping::atomics`] (typed atomic views, bounds and alignment checked) and
//! [`Mapping::read_at`]/[`Mapping::write_at`] (copies, bounds checked). Raw slices exist only as
//! `unsafe fn`s whose callers promise that no one else writes meanwhile.
//!
//! # SIGBUS
//!
//! A POSIX segment can be shrunk by another process (`ftruncate`) while it is mapped here; a
//! touch of a page past the new end then raises SIGBUS. [`Mapping::read_at`] and
//! [`Mapping::write_at`] ask the backend for the current size first (one `fstat` for POSIX) and
//! return [`Error::OutOfBounds`] instead of touching such pages. Atomic views cannot check on
//! every access: do not shrink a segment that others use.
//!
//! What the check does not cover:
//!
//! * an atomic view ([`Mapping::atomics`]) taken before the shrink: a load or store through it
//!   past the new end raises SIGBUS (`tests/tests/failures_shrink.rs` shows a child dying so);
//! * a shrink that lands between the check and the copy of one `read_at`/`write_at`: the
//!   window is a few instructions wide, but it is there;
//! * a sparse segment (created without reserving) on a full `/dev/shm`: its size is right, but
//!   the first touch of a page the file system cannot supply raises SIGBUS. Creating with
//!   reserve (the default) makes that an [`Error::NoSpace`] at create instead.
//!
//! System V segments cannot shrink: their mapping stays valid until detached.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64,
};

use crate::error::{Context, Error, Op, Result};

/// What keeps a mapping alive: its drop unmaps (or detaches) the memory.
///
/// Backends implement it for whatever owns their mapping (a `memmap2::MmapRaw`, a `shmat`
/// address, ...) and hand it to [`Mapping::from_raw_parts`].
pub trait MapBacking: Send + Sync {
    /// The backend's name, for error context.
    fn backend(&self) -> &'static str;
    /// The segment's name (or key), for error context.
    fn segment(&self) -> &str;
    /// The segment's size now, where it can change after mapping and asking is cheap (POSIX:
    /// `fstat`); `Ok(None)` where the size cannot change (System V).
    fn current_size(&self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// Integer atomics that may view shared memory: the `core::sync::atomic` types of 1 to 8 bytes.
///
/// Sealed: only those types implement it.
pub trait SharedAtomic: sealed::Sealed + Sync + Sized {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! shared_atomic {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl SharedAtomic for $t {}
    )*};
}
shared_atomic!(
    AtomicU8, AtomicI8, AtomicU16, AtomicI16, AtomicU32, AtomicI32, AtomicU64, AtomicI64
);

/// A segment mapped into this process. Dropping it unmaps (detaches).
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    backing: Box<dyn MapBacking>,
}

// SAFETY: the memory is shared with other processes anyway; every safe access goes through
// atomics or copies, which are as valid from any thread as from the one that mapped it, and the
// backing is Send + Sync.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: no safe method hands out non-atomic references into the memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Wraps memory that a backend has mapped.
    ///
    /// # Safety
    ///
    /// * `ptr` points to `len` bytes, mapped readable (and writable when `writable`), that stay
    ///   mapped until `backing` is dropped, and are page-aligned;
    /// * dropping `backing` unmaps them, and nothing else does.
    pub unsafe fn from_raw_parts(
        ptr: NonNull<u8>,
        len: usize,
        writable: bool,
        backing: Box<dyn MapBacking>,
    ) -> Self {
        Self {
            ptr,
            len,
            writable,
            backing,
        }
    }

    /// Length of the mapping in bytes (the segment's size when it was mapped).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the mapping has no bytes (never, for mappings made by this project's backends).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the mapping may be written.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The address of the first byte. Using it is `unsafe` in the usual ways, and more: other
    /// processes write this memory.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn ctx(&self) -> Context {
        Context::new(self.backing.backend(), self.backing.segment(), Op::Access)
    }

    fn check_range(&self, offset: usize, len: usize, size: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(()),
            _ => Err(Error::OutOfBounds {
                ctx: self.ctx(),
                offset,
                len,
                size,
            }),
        }
    }

    /// Checks `offset..offset+len` against the mapping and the segment's current size.
    fn check_live(&self, offset: usize, len: usize) -> Result<()> {
        self.check_range(offset, len, self.len)?;
        if let Some(now) = self.backing.current_size()? {
            let now = usize::try_from(now).unwrap_or(usize::MAX);
            // Touching a page past the object's end raises SIGBUS: refuse instead.
            self.check_range(offset, len, now)?;
        }
        Ok(())
    }

    /// A view of `count` atomics of type `T` starting at byte `offset`.
    ///
    /// Fails with [`Error::OutOfBounds`] or [`Error::Misaligned`], and with
    /// [`Error::ReadOnly`] on a read-only mapping (a store through the view would fault).
    ///
    /// ```no_run
    /// # fn f(m: &shm_core::Mapping) -> shm_core::Result<()> {
    /// use std::sync::atomic::{AtomicI32, Ordering};
    /// let ints = m.atomics::<AtomicI32>(0, 2)?;
    /// ints[0].store(1, Ordering::Release);
    /// # Ok(()) }
    /// ```
    pub fn atomics<T: SharedAtomic>(&self, offset: usize, count: usize) -> Result<&[T]> {
        if !self.writable {
            return Err(Error::ReadOnly { ctx: self.ctx() });
        }
        let bytes = count.saturating_mul(size_of::<T>());
        self.check_range(offset, bytes, self.len)?;
        let align = align_of::<T>();
        // The base is page-aligned, so the offset decides the alignment.
        if offset % align != 0 {
            return Err(Error::Misaligned {
                ctx: self.ctx(),
                offset,
                align,
            });
        }
        // SAFETY: the range is inside the mapping and aligned for T; integer atomics have the
        // layout of their integer and every bit pattern is valid; the memory is writable (so
        // stores do not fault) and lives as long as &self. Other processes writing it
        // concurrently is exactly what atomics allow.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset).cast::<T>(), count) })
    }

    /// One atomic of type `T` at byte `offset`; see [`Mapping::atomics`].
    pub fn atomic<T: SharedAtomic>(&self, offset: usize) -> Result<&T> {
        Ok(&self.atomics::<T>(offset, 1)?[0])
    }

    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    ///
    /// The copy runs at `memcpy` speed. Bytes another process writes meanwhile may be seen
    /// half-written: synchronize with atomics where that matters.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check_live(offset, buf.len())?;
        // SAFETY: the range is inside the mapping and inside the object's current size, so no
        // page is touched past its end; `buf` is private memory that cannot overlap a shared
        // mapping that we never hand out as a slice.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Copies `data` into the mapping starting at `offset`.
    ///
    /// Fails with [`Error::ReadOnly`] on a read-only mapping, [`Error::OutOfBounds`] past the
    /// end. Runs at `memcpy` speed.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly { ctx: self.ctx() });
        }
        self.check_live(offset, data.len())?;
        // SAFETY: the range is inside a writable mapping and inside the object's current size;
        // `data` is private memory and cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// The whole mapping as a byte slice.
    ///
    /// # Safety
    ///
    /// No process may write the segment while the slice lives (Rust assumes a `&[u8]` does not
    /// change), and no one may shrink it (SIGBUS).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds by construction; the caller promises no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole mapping as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// The mapping must be writable; no one else (no other process, no other slice or view in
    /// this one) may read or write the segment while the slice lives, and no one may shrink it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: in bounds by construction; the caller promises exclusive access and a
        // writable mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("backend", &self.backing.backend())
            .field("segment", &self.backing.segment())
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("writable", &self.writable)
            .finish()
    }
}
