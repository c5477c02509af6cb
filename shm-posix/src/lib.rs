//! POSIX shared memory behind the [`shm_core`](crate::core) contract.
//!
//! Start here: [`Posix::new`], then [`Backend::create`] or [`Backend::open`] and
//! [`Segment::map`].
//!
//! One dependency is enough to start: this crate re-exports what a user needs of shm-core
//! ([`Backend`], [`Segment`], [`SegmentName`], [`CreateOptions`], [`Access`], [`Error`],
//! [`Result`], [`Mapping`]), and the whole crate as [`core`].
//!
//! Segments are made with the C library's `shm_open` (which opens `/dev/shm/NAME` with
//! `O_NOFOLLOW | O_CLOEXEC` on Linux, so a planted symlink is refused, never followed; this crate
//! never opens /dev/shm by hand), sized and reserved with `posix_fallocate` (or sized with
//! `ftruncate` when not reserving), mapped with `mmap` (through shm-core's backend kit,
//! [`core::kit::map_fd`]) and removed with `shm_unlink`.
//!
//! Three choices differ from the raw calls, so that POSIX and System V agree and nothing crashes:
//!
//! * **The mode is applied exactly**: `shm_open` subtracts the umask, so create follows it with
//!   `fchmod` to the requested mode.
//! * **The memory is reserved** (unless [`CreateOptions::reserve`] is off): `ftruncate` on tmpfs
//!   succeeds for any size and the first touch past the free space raises SIGBUS;
//!   `posix_fallocate` turns that into [`Error::NoSpace`] at create.
//! * **No one maps a half-made segment**: between a creator's `shm_open` and its sizing call (a
//!   few microseconds) the object has size 0; open waits up to 100 ms for the size instead of
//!   reporting 0, and mapping a segment whose size stays 0 is an [`Error::InvalidSize`], never a
//!   SIGBUS. A create that fails removes what it made.
//! * **Only what it made or opened**: open refuses what is not a regular file (a FIFO is opened
//!   without blocking, then refused; `sem.*` names are glibc's semaphores), and a handle removes
//!   its name only while the name still stands for its own object (same device and inode).
//! * **Copies never fault**: a mapping's `read_at`/`write_at` go through the descriptor
//!   (`pread`/`pwrite`), so a neighbour's shrink is an error, not a SIGBUS.
//!
//! Create, write, open from a second handle (as another process would), read back, and let the
//! creator remove it:
//!
//! ```
//! use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};
//! use shm_posix::Posix;
//!
//! let posix = Posix::new();
//! let name = SegmentName::new(&format!("/shm-posix-doc-{}", std::process::id()))?;
//!
//! // 4096 zero bytes in /dev/shm, reserved, with mode 0640 whatever the umask.
//! let created = posix.create(&name, &CreateOptions::new(4096).mode(0o640))?;
//! created.map()?.write_at(0, b"hello")?;
//! assert_eq!(posix.info(&name)?.mode, 0o640);
//!
//! // Opening learns the size from the kernel; the bytes are the same memory.
//! let opened = posix.open(&name, Access::ReadOnly)?;
//! assert_eq!(opened.size(), 4096);
//! let mut buf = [0u8; 5];
//! opened.map()?.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//!
//! // The handle that created the segment removes it when dropped (also when this example
//! // fails halfway); one that opened it never does.
//! drop(opened);
//! drop(created);
//! assert!(posix.open(&name, Access::ReadOnly).unwrap_err().is_not_found());
//! # Ok::<(), shm_core::Error>(())
//! ```

#![deny(missing_docs)]

mod shm_open;

/// The contract crate itself, for everything else (`core::wait`, `core::DynBackend`, ...).
pub use shm_core as core;
pub use shm_core::{
    Access, Backend, CreateOptions, Error, Mapping, Result, Segment, SegmentInfo, SegmentName,
};
pub use shm_open::{Posix, PosixSegment};
