//! POSIX shared memory behind the [`shm_core`] contract.
//!
//! Segments are made with the C library's `shm_open` (which opens `/dev/shm/NAME` with
//! `O_NOFOLLOW | O_CLOEXEC` on Linux, so a planted symlink is refused, never followed), sized with
//! `ftruncate`, reserved with `posix_fallocate`, mapped with `mmap` (through memmap2's
//! [`MmapRaw`](memmap2::MmapRaw)) and removed with `shm_unlink`.
//!
//! Two choices differ from the raw calls, so that POSIX and System V agree:
//!
//! * **The mode is applied exactly**: `shm_open` subtracts the umask, so create follows it with
//!   `fchmod` to the requested mode.
//! * **The memory is reserved** (unless [`CreateOptions::reserve`] is off): `ftruncate` on tmpfs
//!   succeeds for any size and the first touch past the free space raises SIGBUS;
//!   `posix_fallocate` turns that into [`Error::NoSpace`] at create.
//! * **Create is atomic** (Linux): the object is made whole (mode, size, memory) as an unnamed
//!   file of /dev/shm's tmpfs (`O_TMPFILE`), then named with `linkat`, which fails with `EEXIST`
//!   when the name exists. No one can open a half-made segment (size 0 until `ftruncate`: its
//!   first touch would be SIGBUS), and a failed create leaves nothing. Where `O_TMPFILE` is not
//!   available it falls back to `shm_open(O_CREAT | O_EXCL)`.
//!
//! ```no_run
//! use shm_core::{Backend, CreateOptions, Segment, SegmentName};
//! let posix = shm_posix::Posix::new();
//! let seg = posix.create(&SegmentName::new("/demo")?, &CreateOptions::new(4096))?;
//! seg.map()?.write_at(0, b"hi")?;
//! # Ok::<(), shm_core::Error>(())
//! ```

#![deny(missing_docs)]

mod shm_open;

pub use shm_core::{Access, CreateOptions, Error};
pub use shm_open::{Posix, PosixSegment};
