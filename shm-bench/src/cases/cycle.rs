//! Create, map, unmap, unlink: through a backend, and as system calls made directly.
//!
//! `cycle_posix` and `cycle_sysv` make a 4096-byte segment with the default options (mode 0600,
//! reserved). `cycle_raw_posix` and `cycle_raw_sysv` make exactly the system calls the backends
//! make, in the same order, with libc, so that their ratio is the cost of the abstraction alone:
//!
//! * POSIX: `shm_open(O_CREAT|O_EXCL|O_RDWR)`, `posix_fallocate` (size and reserve in one call),
//!   `fchmod` (the mode exactly, whatever the umask), `mmap`, `munmap`, `shm_unlink`, `close`.
//!   This follows shm-posix's create: when that changes, this must too;
//! * System V: `shmget(IPC_CREAT|IPC_EXCL|0600)`, `shmat`, `shmdt`, `shmctl(IPC_RMID)`.
//!
//! `cycle_posix_{4k,1m,64m}_{reserve,noreserve}` show how create grows with the size, with and
//! without reserving the memory.

use std::time::Instant;

use anyhow::{Context, Result};
use shm_core::{Backend, CreateOptions, DynBackend, Segment, SegmentName};

use crate::case::Section;
use crate::case::{Case, Samples, segment_name};
use crate::host::{Host, Kind};

/// The sizes of the growth cases: bytes, the label in their keys, and in the table.
pub const SIZES: [(usize, &str, &str); 3] = [
    (4096, "4k", "4.0 KiB"),
    (1 << 20, "1m", "1.0 MiB"),
    (64 << 20, "64m", "64.0 MiB"),
];

/// The 4 KiB of the basic cycle cases.
const SMALL: usize = 4096;

enum How {
    Backend(Box<dyn DynBackend>, SegmentName, CreateOptions),
    Raw(raw::Raw),
}

/// One cycle case: `per_rep` cycles per repetition, each timed.
pub struct Cycle {
    key: String,
    what: String,
    how: How,
    per_rep: usize,
}

impl Cycle {
    /// Through the backend `kind`; `size` None is the plain case (`cycle_posix`), Some a growth
    /// case (`cycle_posix_1m_noreserve`).
    pub fn backend(
        host: &Host,
        kind: Kind,
        size: Option<(usize, &str, &str)>,
        reserve: bool,
        per_rep: usize,
    ) -> Result<Self> {
        let (key, what, bytes) = match size {
            None => (
                format!("cycle_{kind}"),
                format!("backend, {SMALL} bytes"),
                SMALL,
            ),
            Some((bytes, label, shown)) => {
                let r = if reserve { "reserve" } else { "noreserve" };
                let what = if reserve { "reserved" } else { "not reserved" };
                (
                    format!("cycle_{kind}_{label}_{r}"),
                    format!("backend, {shown}, {what}"),
                    bytes,
                )
            }
        };
        let name = SegmentName::new(&segment_name(&key))?;
        let how = How::Backend(
            (host.backend)(kind)?,
            name,
            CreateOptions::new(bytes).reserve(reserve),
        );
        Ok(Self {
            key,
            what,
            how,
            per_rep,
        })
    }

    /// The system calls of the backend `kind` made directly. None where this binary cannot
    /// make them.
    pub fn raw(host: &Host, kind: Kind, per_rep: usize) -> Result<Option<Self>> {
        let key = format!("cycle_raw_{kind}");
        let name = SegmentName::new(&segment_name(&key))?;
        let Some(raw) = raw::Raw::new(host, kind, &name, SMALL)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            key,
            what: "the same calls, libc".into(),
            how: How::Raw(raw),
            per_rep,
        }))
    }

    fn once(&self) -> Result<()> {
        match &self.how {
            How::Backend(backend, name, opts) => {
                let mut segment = backend.create(name, opts)?;
                let map = segment.map()?;
                drop(map);
                segment.unlink()?;
                Ok(())
            }
            How::Raw(raw) => Ok(raw.cycle()?),
        }
    }
}

impl Case for Cycle {
    fn key(&self) -> &str {
        &self.key
    }
    fn what(&self) -> &str {
        &self.what
    }
    fn section(&self) -> Section {
        Section::Cycle
    }

    fn run(&mut self, out: &mut Samples) -> Result<()> {
        for _ in 0..self.per_rep {
            let start = Instant::now();
            self.once()
                .with_context(|| format!("{}: one cycle", self.key))?;
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            out.push(ns.max(1));
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod raw {
    //! The raw cycles are written for Linux; elsewhere they are left out.
    pub enum Raw {}
    impl Raw {
        pub fn new(
            _: &crate::Host,
            _: crate::Kind,
            _: &shm_core::SegmentName,
            _: usize,
        ) -> anyhow::Result<Option<Self>> {
            Ok(None)
        }
        pub fn cycle(&self) -> std::io::Result<()> {
            match *self {}
        }
    }
}

#[cfg(target_os = "linux")]
mod raw {
    //! The backends' system calls, made directly. Each cycle removes what it made, also when
    //! a call fails.

    use std::ffi::CString;
    use std::io;

    use shm_core::SegmentName;

    use crate::host::{Host, Kind};

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// A raw cycle on one name.
    pub enum Raw {
        /// shm-posix's calls.
        Posix {
            /// `/NAME`, for shm_open and shm_unlink.
            name: CString,
            size: usize,
        },
        /// shm-sysv's calls.
        Sysv { key: libc::key_t, size: usize },
    }

    impl Raw {
        /// None where the host cannot say which key its System V backend gives `name`.
        pub fn new(
            host: &Host,
            kind: Kind,
            name: &SegmentName,
            size: usize,
        ) -> anyhow::Result<Option<Self>> {
            Ok(match kind {
                Kind::Posix => Some(Raw::Posix {
                    name: CString::new(name.as_str())?,
                    size,
                }),
                Kind::Sysv => (host.sysv_key)(name).map(|key| Raw::Sysv { key, size }),
            })
        }

        pub fn cycle(&self) -> io::Result<()> {
            match self {
                Raw::Posix { name, size } => {
                    let fd = posix_create(name, *size)?;
                    // shm-posix maps the size the kernel reports now: one fstat.
                    let mapped = fstat(fd).and_then(|_| map_unmap(fd, *size));
                    // shm-posix removes the name only while it stands for the handle's object:
                    // lstat of the name, fstat of the descriptor, compared.
                    let path = dev_shm_path(name);
                    let same = lstat(&path)
                        .and_then(|by_name| Ok((by_name, fstat(fd)?)))
                        .map(|(a, b)| a.st_dev == b.st_dev && a.st_ino == b.st_ino);
                    let unlinked = match same {
                        // SAFETY: `name` is NUL-terminated and outlives the call.
                        Ok(true) => check(unsafe { libc::shm_unlink(name.as_ptr()) }),
                        Ok(false) => Err(io::Error::other("the name stands for another object")),
                        Err(e) => Err(e),
                    };
                    // SAFETY: `fd` is ours and closed exactly once, here.
                    unsafe { libc::close(fd) };
                    mapped.and(unlinked)
                }
                Raw::Sysv { key, size } => sysv_cycle(*key, *size),
            }
        }
    }

    fn fstat(fd: libc::c_int) -> io::Result<libc::stat> {
        // SAFETY: an all-zero stat is a valid value of a plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer.
        check(unsafe { libc::fstat(fd, &mut st) })?;
        Ok(st)
    }

    fn lstat(path: &CString) -> io::Result<libc::stat> {
        // SAFETY: an all-zero stat is a valid value of a plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `st` a valid out-pointer.
        check(unsafe { libc::lstat(path.as_ptr(), &mut st) })?;
        Ok(st)
    }

    /// `/dev/shm/NAME` of a `/NAME` (made once per cycle, as shm-posix does).
    fn dev_shm_path(name: &CString) -> CString {
        let mut bytes = b"/dev/shm".to_vec();
        bytes.extend_from_slice(name.as_bytes());
        CString::new(bytes).unwrap_or_default()
    }

    /// shm-posix's create: shm_open(O_CREAT|O_EXCL|O_RDWR, 0600), posix_fallocate, fchmod.
    fn posix_create(name: &CString, size: usize) -> io::Result<libc::c_int> {
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR;
        // SAFETY: `name` is NUL-terminated and outlives the call.
        let fd = unsafe { libc::shm_open(name.as_ptr(), flags, 0o600) };
        check(fd)?;
        // SAFETY: plain system call on a descriptor we own; posix_fallocate returns the error
        // number; the size is small.
        let sized = match unsafe { libc::posix_fallocate(fd, 0, size as libc::off_t) } {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
        // SAFETY: plain system call on a descriptor we own.
        .and_then(|()| check(unsafe { libc::fchmod(fd, 0o600) }));
        if sized.is_err() {
            // SAFETY: as above; `fd` is ours and closed exactly once, here.
            unsafe {
                libc::shm_unlink(name.as_ptr());
                libc::close(fd);
            }
        }
        sized.map(|()| fd)
    }

    fn map_unmap(fd: libc::c_int, size: usize) -> io::Result<()> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new shared mapping of `size` bytes of our object, placed by the kernel.
        let addr = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, libc::MAP_SHARED, fd, 0) };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `addr` is the mapping of `size` bytes made just above; nothing uses it.
        check(unsafe { libc::munmap(addr, size) })
    }

    fn ipc_stat(id: libc::c_int) -> io::Result<()> {
        // SAFETY: an all-zero shmid_ds is a valid value of a plain C struct.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes one shmid_ds to a valid out-pointer.
        check(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) })
    }

    /// shmget(IPC_CREAT|IPC_EXCL|0600), shmat, shmdt, shmctl(IPC_RMID), and the IPC_STATs with
    /// which shm-sysv learns the segment's fingerprint at create and checks it before shmat and
    /// IPC_RMID (an id may have been given to another segment).
    fn sysv_cycle(key: libc::key_t, size: usize) -> io::Result<()> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
        // SAFETY: shmget takes plain values.
        let id = unsafe { libc::shmget(key, size, flags) };
        check(id)?;
        let stated = ipc_stat(id).and_then(|()| ipc_stat(id));
        // SAFETY: the kernel picks the address; the result is checked below.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        let result = if addr as isize == -1 {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: `addr` was attached just above and nothing uses it.
            check(unsafe { libc::shmdt(addr) })
        };
        let checked = ipc_stat(id);
        // SAFETY: IPC_RMID ignores the buffer argument.
        let removed = check(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) });
        stated.and(result).and(checked).and(removed)
    }
}
