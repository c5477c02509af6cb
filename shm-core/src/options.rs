//! Options for creating and opening segments.

use crate::{Context, Error, Op, Result};

/// The permission bits a segment may have: read, write, execute for owner, group and others.
pub const PERMISSION_BITS: u32 = 0o777;

/// Whether a mapping of `size` bytes fits in this process's address space now: a trial
/// reservation (no access, no memory committed) that is released at once. A segment that fails
/// it could be made, but never mapped: `create` refuses it instead.
fn fits_address_space(size: usize) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: an anonymous, private, inaccessible mapping at an address the kernel picks
        // touches no existing memory; it is unmapped right below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        // SAFETY: `p` is the mapping of `size` bytes made above, used by nothing.
        unsafe { libc::munmap(p, size) };
        true
    }
    #[cfg(not(unix))]
    {
        let _ = size;
        true
    }
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Map with `PROT_READ` (`SHM_RDONLY`): writes are refused by the API.
    ReadOnly,
    /// Map with `PROT_READ | PROT_WRITE`.
    #[default]
    ReadWrite,
}

impl Access {
    /// True for [`Access::ReadWrite`].
    pub fn is_writable(self) -> bool {
        self == Access::ReadWrite
    }
}

/// How to create a segment.
///
/// ```
/// use shm_core::CreateOptions;
/// let opts = CreateOptions::new(4096).mode(0o640).replace(true);
/// assert_eq!(opts.size, 4096);
/// assert!(opts.reserve);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Size in bytes; must be greater than 0. Opening learns it back from the kernel.
    pub size: usize,
    /// Permission bits, applied exactly as given whatever the umask (default `0o600`). Only
    /// the nine permission bits (`0o777`) are allowed: any other bit (setuid, setgid, sticky)
    /// makes create fail with [`Error::InvalidMode`], on every backend.
    pub mode: u32,
    /// Access of the creating handle (default read-write).
    pub access: Access,
    /// Allocate the whole size at create (default on), so that a full `/dev/shm` is an error
    /// here. Off gives a sparse segment: on a full `/dev/shm`, `read_at` reads its holes as
    /// zeros and `write_at` fails with [`Error::NoSpace`], but an atomic view (or another
    /// program's mapping) that touches a hole raises SIGBUS.
    pub reserve: bool,
    /// Remove an existing segment of the same name first (default off).
    pub replace: bool,
}

impl CreateOptions {
    /// Options for a segment of `size` bytes with the defaults: mode 0600, read-write,
    /// reserved, not replacing.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            mode: 0o600,
            access: Access::ReadWrite,
            reserve: true,
            replace: false,
        }
    }

    /// Sets the permission bits (`0` to `0o777`; anything else is refused at create with
    /// [`Error::InvalidMode`], never masked silently).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the access of the creating handle.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Reserve the memory at create (true) or leave the segment sparse (false).
    pub fn reserve(mut self, reserve: bool) -> Self {
        self.reserve = reserve;
        self
    }

    /// Remove an existing segment of the same name first.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// Checks what every backend refuses before any system call: size 0
    /// ([`Error::InvalidSize`]) and a mode with bits beyond [`PERMISSION_BITS`]
    /// ([`Error::InvalidMode`]). Backends call it first in `create`; `segment` names the
    /// segment in the error (a name, or a [`SegmentRef`](crate::SegmentRef)).
    ///
    /// ```
    /// use shm_core::{CreateOptions, Error};
    /// assert!(CreateOptions::new(4096).mode(0o640).validate("posix", "/a").is_ok());
    /// let err = CreateOptions::new(4096).mode(0o4777).validate("posix", "/a").unwrap_err();
    /// assert!(matches!(err, Error::InvalidMode { mode: 0o4777, .. }));
    /// ```
    pub fn validate(
        &self,
        backend: &'static str,
        segment: impl Into<crate::SegmentRef>,
    ) -> Result<()> {
        let segment = segment.into();
        let ctx = || Context::new(backend, segment.clone(), Op::Create);
        if self.size == 0 {
            return Err(Error::InvalidSize {
                ctx: ctx(),
                size: 0,
                reason: "a segment needs at least one byte".to_owned(),
            });
        }
        if self.mode & !PERMISSION_BITS != 0 {
            return Err(Error::InvalidMode {
                ctx: ctx(),
                mode: self.mode,
            });
        }
        // Only a large size can fail to fit (a small one always finds room): no system call for
        // the usual segment.
        if self.size >= 1 << 30 && !fits_address_space(self.size) {
            return Err(Error::InvalidSize {
                ctx: ctx(),
                size: self.size as u64,
                reason: "no room for it in this process's address space, so it could never be \
                         mapped; ask for less"
                    .to_owned(),
            });
        }
        Ok(())
    }
}
