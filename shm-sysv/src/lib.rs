//! System V shared memory behind the [`shm_core`](crate::core) contract.
//!
//! Start here: [`SysV::new`], then [`Backend::create`] or [`Backend::open`] and
//! [`Segment::map`].
//!
//! One dependency is enough to start: this crate re-exports what a user needs of shm-core
//! ([`Backend`], [`Segment`], [`SegmentName`], [`CreateOptions`], [`Access`], [`Error`],
//! [`Result`], [`Mapping`]), and the whole crate as [`core`].
//!
//! Segments are made with `shmget(IPC_CREAT | IPC_EXCL | mode)`, mapped with `shmat` (`SHM_RDONLY`
//! for read-only), inspected with `shmctl(IPC_STAT)` and removed with `shmctl(IPC_RMID)`.
//!
//! # One name for both backends
//!
//! System V knows keys, not names. A [`SegmentName`] maps to a key by
//! [`key_for`]: a name that is a key literal (`0x1234`, `/0x1234` or decimal `4660`) is that key;
//! any other name hashes to one (FNV-1a, 32 bits, over the name with its leading slash; a hash of
//! 0, which would be `IPC_PRIVATE`, becomes 1). The mapping is stable across versions: the same
//! name always meets the same segment, from this crate, from `shm --backend sysv`, or from C.
//!
//! ```
//! use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};
//!
//! let sysv = shm_sysv::SysV::new();
//! let name = SegmentName::new(&format!("/shm-sysv-doc-{}", std::process::id()))?;
//! let key = shm_sysv::key_for(&name)?; // as `ipcs -m` shows it
//!
//! let created = sysv.create(&name, &CreateOptions::new(4096))?;
//! let map = created.map()?;
//! map.write_at(0, b"hi")?;
//! let info = created.info()?;
//! assert_eq!(info.key, Some(key.as_raw()));
//! assert_eq!(info.nattch, Some(1)); // the kernel counts attaches
//!
//! let opened = sysv.open(&name, Access::ReadOnly)?;
//! let mut buf = [0u8; 2];
//! opened.map()?.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hi");
//! // Dropped in reverse order: the mappings detach, then `created` removes the segment.
//! # Ok::<(), shm_core::Error>(())
//! ```

#![deny(missing_docs)]

mod consts;
mod ids;
mod key;
mod proc;
mod shmget;

pub use ids::{Key, ParseKeyError, ShmId};
pub use key::{is_key_literal, key_for, segment_ref};
pub use proc::Limits;
/// The contract crate itself, for everything else (`core::wait`, `core::DynBackend`, ...).
pub use shm_core as core;
pub use shm_core::{
    Access, Backend, CreateOptions, Error, Mapping, Result, Segment, SegmentInfo, SegmentName,
};
pub use shmget::{SysV, SysVSegment};
