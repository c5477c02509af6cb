//! Options for creating and opening segments.

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
    /// Permission bits, applied exactly as given whatever the umask (default `0o600`).
    pub mode: u32,
    /// Access of the creating handle (default read-write).
    pub access: Access,
    /// Allocate the whole size at create (default on), so that a full `/dev/shm` is an error
    /// here and never a SIGBUS later. Off gives a sparse segment and that risk.
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

    /// Sets the permission bits (only the low 9 bits are used).
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
}
