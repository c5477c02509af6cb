//! The contract for shared memory on one host: one API, any kernel object behind it.
//!
//! Start here: the [`Backend`] trait (create, open, unlink) and the [`Mapping`] a [`Segment`]
//! gives; a backend crate (`shm-posix`, `shm-sysv`) supplies the `Backend`.
//!
//! `shm-core` holds what every backend shares and nothing backend-specific:
//!
//! * [`SegmentName`]: a name parsed once, with the C library's rules;
//! * [`Backend`] and [`Segment`]: create, open, map, unlink, info and list, with the
//!   [contract](Backend#contract) every backend keeps; [`DynBackend`] for a backend chosen at
//!   run time;
//! * [`Mapping`]: mapped memory reached only through atomics and copies (see below);
//! * [`Error`]: one error type with context and the errno kept;
//! * [`wait`]: cross-process wait and wake on a word in shared memory (futex);
//! * `reactor` (feature `async`, Linux): one process-wide set of waiter threads that sleep on
//!   many such words at once (`futex_waitv`) and wake `Waker`s: what async waits stand on;
//! * [`kit`]: what every backend needs, written once (ownership and identity, a mapping of a
//!   file descriptor, the exclusive create that can replace);
//! * `conformance` (feature `conformance`): the suite every backend must pass, and
//!   `conformance_tests!` to run it against yours.
//!
//! Backends live in their own crates: `shm-posix` (`shm_open`) and `shm-sysv` (`shmget`). Write
//! code generic over [`Backend`] and pick a backend at compile time (a cargo feature for each), or
//! hold a `Box<dyn DynBackend>` and pick at run time. The repository's examples show each:
//! `cargo run -p shm-tests --example taller` (two processes in lockstep on [`wait::Signal`]),
//! `--example choose_backend` (a backend by cargo feature) and `--example custom_backend` (a
//! third backend proven by the conformance suite).
//!
//! # The contract
//!
//! Every backend behaves the same where it can, and says where it cannot
//! ([`Capabilities`]); the [contract](Backend#contract) in full is on the trait. In short: a
//! name means the same segment in C, in Python and here; create is exclusive (one winner),
//! zero-filled, of exactly the size and mode asked for, and a segment that cannot be had fails
//! at create with an [`Error`], never with SIGBUS at first touch; open learns the size from the
//! kernel; unlink removes the name while mappings live on. The conformance suite checks each
//! rule on every backend.
//!
//! # Ownership
//!
//! The handle that created a segment removes it when dropped, unless [`Segment::keep`] was called;
//! a handle that opened one never removes it. A handle removes (and, on System V, maps) only its
//! own segment: if someone removed it and a new segment took the name (or the System V id),
//! the handle's `unlink` fails with [`Error::Stale`] and its drop removes nothing. A
//! [`Mapping`] is independent of its handle: it stays valid after the handle is dropped and
//! after the segment is removed, and unmaps on drop.
//!
//! # SIGBUS
//!
//! Another process can shrink a POSIX segment, or leave a sparse one on a full `/dev/shm`.
//! [`Mapping::read_at`] and [`Mapping::write_at`] then fail with an error instead of SIGBUS
//! (they copy through the descriptor); the one thing no library can protect is an atomic view
//! held while someone shrinks the object (see [`Mapping::atomics`]).
//!
//! Their guard is a process-wide SIGBUS handler, installed the first time a copy needs it:
//!
//! * **Threads.** A fault in a guarded copy replaces the faulting page with a private zero page
//!   for the whole process. The mapping is marked first, and every `read_at`/`write_at` through
//!   the same [`Mapping`], on any thread, checks the mark after it copied and then redoes its
//!   work through the descriptor: no copy returns the substitute's zeros, no write vanishes
//!   into it. Atomic views of that mapping taken before the fault are not told (they read and
//!   write the private page); new ones are refused. Other mappings of the object are untouched.
//! * **A program's own handlers.** A SIGBUS that is not a fault inside a guarded copy (a
//!   `kill -BUS`, a fault in another mapping) goes to the disposition that was there when the
//!   guard was installed: a handler of the program's (in Rust, at least the standard library's)
//!   is called, an ignored signal sent by a process stays ignored, the default kills the
//!   process. The guard stays armed; if the previous handler resets SIGBUS to the default for
//!   a signal a process sent (the standard library's does), what was installed when the signal
//!   came is put back: the guard, or a handler installed after it that calls it. A handler
//!   installed after the guard replaces it unless it calls the one it replaced: one that does
//!   keeps the guard working through it; with one that does not, guarded copies fault as plain
//!   ones do.
//!
//! # Why no `&[u8]`
//!
//! Another process can write shared memory at any time, and Rust assumes that the bytes behind a
//! `&[u8]` do not change and that those behind a `&mut [u8]` are seen by no one else. No safe
//! function here hands out either. Use [`Mapping::atomics`] for shared state and
//! [`Mapping::read_at`]/[`Mapping::write_at`] for bulk data; the raw slices are `unsafe`.
//!
//! ```no_run
//! use std::sync::atomic::{AtomicI32, Ordering};
//! use shm_core::{Backend, CreateOptions, Segment, SegmentName};
//!
//! fn play<B: Backend>(backend: &B) -> shm_core::Result<()> {
//!     let name = SegmentName::new("/example")?;
//!     let segment = backend.create(&name, &CreateOptions::new(4096))?;
//!     let map = segment.map()?;
//!     let ints = map.atomics::<AtomicI32>(0, 2)?;
//!     ints[0].store(1, Ordering::Release);
//!     map.write_at(8, b"hello")?;
//!     Ok(()) // map unmaps, then segment removes the name
//! }
//! ```
//!
//! # Platform notes
//!
//! Tested on Linux. On macOS POSIX names hold at most 31 bytes ([`MAX_NAME_LEN`]), `ftruncate`
//! works once per object and `fstat` reports a page-rounded size; System V defaults there are tiny
//! (shmmax 4 MiB, 32 segments). FreeBSD allows attaching a removed System V segment only with
//! `kern.ipc.shm_allow_removed`. Outside Linux, [`wait`] polls with short sleeps.

#![deny(missing_docs)]

mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod context;
mod detail;
mod error;
pub mod fence;
mod info;
pub mod kit;
mod mapping;
mod name;
mod options;
#[cfg(all(feature = "async", any(target_os = "linux", target_os = "android")))]
pub mod reactor;
#[cfg(unix)]
mod sigbus;
pub mod wait;

pub use backend::{Backend, Capabilities, DynBackend, Segment};
pub use context::{Context, Op, SegmentRef};
pub use detail::{Limit, Owner, Space};
pub use error::{Error, Report, Result};
pub use info::SegmentInfo;
pub use mapping::{MapBacking, Mapping, ReadOnlyAtomic, SharedAtomic};
pub use name::{MAX_NAME_LEN, SegmentName};
pub use options::{Access, CreateOptions, PERMISSION_BITS};
