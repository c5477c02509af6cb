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
//! A POSIX segment can be shrunk by another process (`ftruncate`) while it is mapped here, and a
//! sparse one (created without reserving) can meet a full `/dev/shm`; touching a page past the
//! object's end, or a hole the file system cannot fill, raises SIGBUS. What another process does
//! to the object's size must never kill this one, so:
//!
//! * [`Mapping::read_at`] and [`Mapping::write_at`] copy at `memcpy` speed under a SIGBUS guard
//!   where the object can change size (the backend says so by handing over its descriptor,
//!   [`MapBacking::fd`]). A fault during the copy is absorbed: the faulting page is replaced by
//!   a private zero page, the mapping is marked as faulted, and the copy is redone through the
//!   descriptor (`pread`/`pwrite`), which reads holes as zeros, reports a range past the
//!   object's end as [`Error::OutOfBounds`] and a full file system as [`Error::NoSpace`]. From
//!   then on this mapping's copies always go through the descriptor (exact, a system call each),
//!   and its atomic views are refused ([`Error::Stale`]): map the segment again. The guard is a
//!   process-wide SIGBUS handler installed on first use, which passes every other SIGBUS (a
//!   fault elsewhere, `kill -BUS`) on to the disposition that was there before and stays
//!   armed: a program's own handler installed before is called, an ignored signal sent by a
//!   process stays ignored, the default kills. A handler installed after the first guarded
//!   copy replaces the guard unless it chains to it (then the guard works through it, and the
//!   handler stays installed after a `kill -BUS`).
//! * Under threads: the substitute page replaces the page for every thread, so the mark is
//!   the mapping's and is set before the page is replaced. A copy through the same mapping on
//!   another thread, running at that moment or later, sees the mark after it copied and redoes
//!   its work through the descriptor: no copy returns the substitute's zeros as data, no write
//!   lands in it unreported. An atomic view taken before the fault is not told: it reads and
//!   writes the private page from then on. Other mappings of the object are not affected.
//! * Within the page that holds the object's new end, the kernel backs the bytes past the end
//!   with zeros: a copy there does not fault, reads zeros and writes bytes no one will see. Only
//!   whole pages past the end are refused.
//! * [`Mapping::atomics`] checks the object's current size when it makes the view. What it
//!   cannot check is the future: **an atomic view held while someone else shrinks the object
//!   faults on its next access past the new end** (`tests/tests/failures/shrink.rs` shows a
//!   child dying so). Shared state that untrusted processes can shrink belongs on System V, or
//!   behind a protocol that never shrinks.
//! * `Segment::map` maps the size the kernel reports at that moment.
//!
//! System V segments cannot shrink: their mapping stays valid until detached, and copies are a
//! plain `memcpy`.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering,
};

use crate::{Context, Error, Op, Result, SegmentRef};

/// What keeps a mapping alive: its drop unmaps (or detaches) the memory.
///
/// Backends implement it for whatever owns their mapping (a `memmap2::MmapRaw`, a `shmat`
/// address, ...) and hand it to [`Mapping::from_raw_parts`].
pub trait MapBacking: Send + Sync {
    /// The backend's name, for error context.
    fn backend(&self) -> &'static str;
    /// The segment as people name it (its name, or a System V key), for error context.
    fn segment(&self) -> SegmentRef;
    /// The segment's size now, where it can change after mapping and asking is cheap (POSIX:
    /// `fstat`); `Ok(None)` where the size cannot change (System V).
    fn current_size(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// The object's descriptor, where its size can change under the mapping (POSIX, files):
    /// [`Mapping::read_at`] and [`Mapping::write_at`] then copy under a SIGBUS guard and, after
    /// a fault, through it with `pread`/`pwrite` at the same offsets, so that a shrink or a
    /// full file system is an error and never SIGBUS. The mapping must map the object from file
    /// offset 0. `None` (the default) where the size cannot change: copies are plain `memcpy`s.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Integer atomics that may view shared memory: the `core::sync::atomic` types of 1 to 8 bytes.
///
/// Sealed: only those types implement it.
pub trait SharedAtomic: sealed::Sealed + Sync + Sized {
    /// The integer it holds.
    type Value: Copy;
    /// `load` of the atomic type.
    fn load_value(&self, order: Ordering) -> Self::Value;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! shared_atomic {
    ($($t:ty => $v:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl SharedAtomic for $t {
            type Value = $v;
            fn load_value(&self, order: Ordering) -> $v {
                self.load(order)
            }
        }
    )*};
}
shared_atomic!(
    AtomicU8 => u8, AtomicI8 => i8, AtomicU16 => u16, AtomicI16 => i16, AtomicU32 => u32,
    AtomicI32 => i32, AtomicU64 => u64, AtomicI64 => i64
);

/// An atomic of a read-only mapping: it can only be loaded, and only as the standard library
/// promises on read-only memory. What [`Mapping::loads`] hands out, where [`Mapping::atomics`]
/// would refuse (a store through a read-only mapping faults).
///
/// The standard library allows atomic accesses to read-only memory only as `Relaxed` loads of
/// small atomics (`core::sync::atomic`, "Atomic accesses to read-only memory"): a stronger
/// load may be built from an instruction that writes. So [`ReadOnlyAtomic::load`] is always
/// `Relaxed`, and [`ReadOnlyAtomic::load_acquire`] gets `Acquire` from a `Relaxed` load and an
/// acquire fence, which touches no memory. An ordering cannot be asked for:
///
/// ```compile_fail,E0061
/// # fn f(m: &shm_core::Mapping) -> shm_core::Result<()> {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// let words = m.loads::<AtomicU32>(0, 1)?;
/// let first: u32 = words[0].load(Ordering::Acquire);
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct ReadOnlyAtomic<T: SharedAtomic>(T);

impl<T: SharedAtomic> ReadOnlyAtomic<T> {
    /// Loads the value with `Relaxed` ordering, the one load the standard library promises on
    /// read-only memory.
    pub fn load(&self) -> T::Value {
        self.0.load_value(Ordering::Relaxed)
    }

    /// Loads the value with `Acquire` semantics: a `Relaxed` load followed by an acquire fence,
    /// so that what a writer published with `Release` before the value it stored is visible
    /// after this returns.
    pub fn load_acquire(&self) -> T::Value {
        let v = self.0.load_value(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        v
    }
}

impl<T: SharedAtomic> fmt::Debug for ReadOnlyAtomic<T>
where
    T::Value: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadOnlyAtomic").field(&self.load()).finish()
    }
}

/// A segment mapped into this process. Dropping it unmaps (detaches).
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    backing: Box<dyn MapBacking>,
    /// A guarded copy absorbed a SIGBUS: some pages of this mapping were replaced by private
    /// zero pages, so copies go through the descriptor from now on and atomic views are refused.
    /// The SIGBUS handler sets it, before it replaces a page.
    faulted: std::sync::atomic::AtomicBool,
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
            faulted: std::sync::atomic::AtomicBool::new(false),
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

    /// The descriptor of the object behind the mapping, where the backend keeps one open for
    /// as long as the mapping lives (POSIX, files); `None` elsewhere (System V). A channel
    /// takes its lock on it to tell its peer it lives (an OFD lock, which the kernel drops
    /// when the descriptor's last copy closes, at death included).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.backing.fd()
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
    /// Fails with [`Error::OutOfBounds`] (past the mapping, or past the object's current end),
    /// [`Error::Misaligned`], and [`Error::ReadOnly`] on a read-only mapping (a store through
    /// the view would fault).
    ///
    /// The view cannot be made safe against the future: if another process shrinks a POSIX
    /// object below the view while it is held, the next load or store past the new end raises
    /// SIGBUS. Only share atomics in segments whose users never shrink them (see the module
    /// docs).
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
        let ptr = self.view::<T>(offset, count)?;
        // SAFETY: `view` checked that the range is inside the mapping, inside the object's size
        // now, and aligned for T; integer atomics have the layout of their integer and every bit
        // pattern is valid; the memory is writable (so stores do not fault) and lives as long as
        // &self. Other processes writing it concurrently is exactly what atomics allow.
        Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
    }

    /// A view of `count` atomics of type `T` at byte `offset` that can only be loaded
    /// (`Relaxed`, or `Acquire` through a fence: see [`ReadOnlyAtomic`]): works on read-only
    /// mappings too. Fails as [`Mapping::atomics`] does, except for [`Error::ReadOnly`], and
    /// with [`Error::Unsupported`] for atomics wider than a pointer (the standard library
    /// promises loads on read-only memory only for small atomics: an `AtomicU64` on a 32-bit
    /// target may be loaded with an instruction that writes).
    ///
    /// ```no_run
    /// # fn f(m: &shm_core::Mapping) -> shm_core::Result<()> {
    /// use std::sync::atomic::AtomicU32;
    /// let words = m.loads::<AtomicU32>(0, 2)?;
    /// let first: u32 = words[0].load_acquire();
    /// let second: u32 = words[1].load();
    /// # Ok(()) }
    /// ```
    pub fn loads<T: SharedAtomic>(
        &self,
        offset: usize,
        count: usize,
    ) -> Result<&[ReadOnlyAtomic<T>]> {
        if size_of::<T>() > size_of::<usize>() {
            return Err(Error::Unsupported {
                ctx: self.ctx(),
                what: "loads of atomics wider than a pointer on read-only memory",
            });
        }
        let ptr = self.view::<T>(offset, count)?;
        // SAFETY: as in `atomics`, with ReadOnlyAtomic<T> transparent over T; the type offers
        // only `Relaxed` loads of at most a pointer's width (checked above), which the standard
        // library promises not to write, so they do not fault on read-only memory.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<ReadOnlyAtomic<T>>(), count) })
    }

    /// Checks a view of `count` `T`s at `offset` and returns its first element's address.
    fn view<T: SharedAtomic>(&self, offset: usize, count: usize) -> Result<*const T> {
        let bytes = count.saturating_mul(size_of::<T>());
        // Against the object's size now too: a view past the end would fault at once.
        self.check_live(offset, bytes)?;
        if self.faulted.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(self.faulted_error());
        }
        let align = align_of::<T>();
        // The base is page-aligned, so the offset decides the alignment.
        if offset % align != 0 {
            return Err(Error::Misaligned {
                ctx: self.ctx(),
                offset,
                align,
            });
        }
        // SAFETY: `offset` is inside the mapping (checked above).
        Ok(unsafe { self.ptr.as_ptr().add(offset) }.cast::<T>())
    }

    /// One atomic of type `T` at byte `offset`; see [`Mapping::atomics`].
    pub fn atomic<T: SharedAtomic>(&self, offset: usize) -> Result<&T> {
        Ok(&self.atomics::<T>(offset, 1)?[0])
    }

    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    ///
    /// Bytes another process writes meanwhile may be seen half-written: synchronize with atomics
    /// where that matters. Never raises SIGBUS: where the object can shrink (POSIX), the copy
    /// runs at `memcpy` speed under a SIGBUS guard, and a fault (someone shrank the object, or
    /// a hole of a sparse one meets a full file system) is absorbed and the copy redone
    /// through the descriptor (`pread`), which reads holes as zeros and reports a range past
    /// the object's end as [`Error::OutOfBounds`]. See the module docs for what this means for
    /// the mapping afterwards.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check_range(offset, buf.len(), self.len)?;
        let fd = self.backing.fd();
        // SAFETY: the range is inside the mapping; `buf` is private memory that cannot overlap
        // a shared mapping that we never hand out as a slice.
        let copied = unsafe {
            self.copy(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
                fd.is_some(),
            )
        };
        match (copied, fd) {
            (true, _) | (false, None) => Ok(()),
            (false, Some(fd)) => self.pread_all(fd, offset, buf),
        }
    }

    /// Copies `data` into the mapping starting at `offset`.
    ///
    /// Fails with [`Error::ReadOnly`] on a read-only mapping and [`Error::OutOfBounds`] past the
    /// end of the mapping. Never raises SIGBUS: where the object can shrink (POSIX), the copy
    /// runs under a SIGBUS guard like [`Mapping::read_at`]'s, and after a fault it is redone
    /// through the descriptor (`pwrite`): past the object's current end it is
    /// [`Error::OutOfBounds`], into a hole of a full file system [`Error::NoSpace`].
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly { ctx: self.ctx() });
        }
        self.check_range(offset, data.len(), self.len)?;
        let fd = self.backing.fd();
        // SAFETY: the range is inside a writable mapping; `data` is private memory and cannot
        // overlap it.
        let copied = unsafe {
            self.copy(
                data.as_ptr(),
                self.ptr.as_ptr().add(offset),
                data.len(),
                fd.is_some(),
            )
        };
        match (copied, fd) {
            (true, _) | (false, None) => Ok(()),
            (false, Some(fd)) => {
                self.check_live(offset, data.len())?;
                self.pwrite_all(fd, offset, data)
            }
        }
    }

    /// The copy of `read_at` and `write_at`: a plain `memcpy` where the object cannot change
    /// size (`guard` false), else a guarded one. Returns false when the copy must be redone
    /// through the descriptor: a fault was absorbed in this mapping before or during the copy
    /// (by this thread's copy or another's), or no guard is available.
    ///
    /// # Safety
    ///
    /// `src` and `dst` are valid for `len` bytes, do not overlap, and one of them lies inside
    /// this mapping (writable, if it is `dst`).
    unsafe fn copy(&self, src: *const u8, dst: *mut u8, len: usize, guard: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if !guard {
            // SAFETY: the caller's contract; the object cannot shrink, so no page faults.
            unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
            return true;
        }
        if self.faulted.load(Relaxed) {
            return false;
        }
        #[cfg(unix)]
        {
            let start = self.ptr.as_ptr() as usize;
            // SAFETY: the caller's contract; the guarded range is this mapping, alive for the
            // call, and every copy through it checks `faulted` afterwards (here) and atomic
            // views check it before they are made.
            let copied = unsafe {
                crate::sigbus::copy(src, dst, len, start, start + self.len, &self.faulted)
            };
            copied == Some(true)
        }
        #[cfg(not(unix))]
        {
            let _ = (src, dst, len);
            false
        }
    }

    /// The error for an atomic view of a mapping that a guarded copy found faulting.
    fn faulted_error(&self) -> Error {
        Error::Stale {
            ctx: self.ctx(),
            detail: "the object shrank (or ran out of space) under this mapping, and pages of it \
                     were replaced; map the segment again"
                .to_owned(),
        }
    }

    /// `pread` until `buf` is full; the end of the object before that is `OutOfBounds`.
    fn pread_all(&self, fd: BorrowedFd<'_>, offset: usize, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            let at = (offset + done) as libc::off_t;
            // SAFETY: `rest` is valid for writes of its length; the descriptor is borrowed
            // from the backing and open.
            let n =
                unsafe { libc::pread(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), at) };
            match n {
                0 => return Err(self.shrunk(offset, buf.len())),
                n if n > 0 => done += n as usize,
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(Error::from_os(self.ctx(), e));
                    }
                }
            }
        }
        Ok(())
    }

    /// `pwrite` until all of `data` is written.
    fn pwrite_all(&self, fd: BorrowedFd<'_>, offset: usize, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let rest = &data[done..];
            let at = (offset + done) as libc::off_t;
            // SAFETY: `rest` is valid for reads of its length; the descriptor is borrowed from
            // the backing and open.
            let n = unsafe { libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), at) };
            match n {
                n if n > 0 => done += n as usize,
                0 => {
                    return Err(Error::from_os(
                        self.ctx(),
                        io::Error::from(io::ErrorKind::WriteZero),
                    ));
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(Error::from_os(self.ctx(), e));
                    }
                }
            }
        }
        Ok(())
    }

    /// The error of a copy that met the object's end: it was shrunk after mapping.
    fn shrunk(&self, offset: usize, len: usize) -> Error {
        let size = match self.backing.current_size() {
            Ok(Some(now)) => usize::try_from(now).unwrap_or(usize::MAX),
            _ => self.len,
        };
        Error::OutOfBounds {
            ctx: self.ctx(),
            offset,
            len,
            size: size.min(offset.saturating_add(len).saturating_sub(1)),
        }
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
