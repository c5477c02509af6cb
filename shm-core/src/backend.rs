//! The [`Backend`] and [`Segment`] traits: the contract every backend keeps.

use crate::{Access, CreateOptions, Mapping, Result, SegmentInfo, SegmentName};

/// How a backend differs from the others. The conformance suite reads these and asserts the
/// matching behaviour, so that a difference is data, not a copy of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`Segment::resize`] works (POSIX `ftruncate`); otherwise it returns `Unsupported`.
    pub resizable: bool,
    /// The kernel counts attaches, and [`SegmentInfo::nattch`] reports them (System V).
    pub attach_count: bool,
    /// Any permitted process can attach a removed segment that is still attached somewhere,
    /// knowing only its id (Linux System V). Every backend lets a handle that is still open map
    /// its own segment after removal.
    pub attach_removed_by_id: bool,
    /// The kernel applies the umask to the mode of a new segment (POSIX). Backends still apply
    /// the requested mode exactly; this says what the raw system call would do.
    pub umask_applies: bool,
    /// The kernel reports the creator's and last user's process ids (System V).
    pub tracks_pids: bool,
    /// Segments are named by path-like names the kernel keeps (POSIX); otherwise by a key
    /// derived from the name (System V).
    pub keeps_names: bool,
}

/// A kind of shared memory: create, open, map and unlink segments of it.
///
/// # Contract
///
/// Every backend must, and the conformance suite (feature `conformance`) checks that it does:
///
/// * **create** makes a new segment of exactly `opts.size` bytes, zero-filled, with exactly
///   `opts.mode` whatever the umask, or fails with [`Error::AlreadyExists`] when the name is
///   taken (unless `opts.replace`). Of several threads or processes creating one name at once,
///   exactly one wins. Size 0 is [`Error::InvalidSize`]; a size beyond what the kernel can give
///   is an error at create ([`Error::NoSpace`], [`Error::LimitExceeded`] or
///   [`Error::InvalidSize`]), never a signal later. With `opts.reserve` the memory is allocated
///   at create.
/// * **open** finds an existing segment, learns its size from the kernel, or fails with
///   [`Error::NotFound`].
/// * **map** ([`Segment::map`]) maps the whole segment; mappings of one segment, in one process or
///   several, see the same bytes. A read-only handle maps read-only and the API refuses writes.
///   Mapping a segment of size 0 is [`Error::InvalidSize`].
/// * **unlink** removes the name: later opens fail with [`Error::NotFound`], existing mappings
///   stay valid.
/// * **ownership**: a segment handle from `create` unlinks on drop unless [`Segment::keep`] was
///   called; a handle from `open` never unlinks. Drop order is unmap, unlink, close.
/// * **names**: `name` and `/name` are one segment; invalid names fail in
///   [`SegmentName::new`], before any system call.
///
/// Use it generically (`fn f<B: Backend>(b: &B)`) at no cost, or hold a `Box<dyn DynBackend>`
/// (itself a `Backend`) when the backend is chosen at run time.
///
/// ```
/// use shm_core::{Backend, CreateOptions, Result, Segment, SegmentName};
///
/// /// Puts `data` in a new segment, on any backend.
/// fn publish<B: Backend>(backend: &B, name: &str, data: &[u8]) -> Result<B::Segment> {
///     let segment = backend.create(&SegmentName::new(name)?, &CreateOptions::new(data.len()))?;
///     segment.map()?.write_at(0, data)?;
///     Ok(segment) // removed when the caller drops it, unless it calls `keep()`
/// }
/// ```
///
/// # Implementing a backend
///
/// Implement `Backend` and [`Segment`]; wrap each mapping in a [`Mapping`] with
/// [`Mapping::from_raw_parts`] (or, for an object reached by a file descriptor, let
/// [`kit::map_fd`](crate::kit::map_fd) map it); keep ownership with
/// [`kit::Owned`](crate::kit::Owned), which removes only the object the handle identified; say
/// how the backend differs in [`Capabilities`]; then prove it
/// with the conformance suite (feature `conformance`):
/// `shm_core::conformance_tests!(MyBackend::new());` in a test module makes one `#[test]` per
/// rule, and `shm_core::conformance::all()` gives the same tests to run at run time. The
/// repository's `tests/src/file_backend.rs` is a complete backend written this way against the
/// public API alone; `cargo run -p shm-tests --example custom_backend` runs the suite on it.
///
/// [`Error::AlreadyExists`]: crate::Error::AlreadyExists
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::InvalidSize`]: crate::Error::InvalidSize
/// [`Error::NoSpace`]: crate::Error::NoSpace
/// [`Error::LimitExceeded`]: crate::Error::LimitExceeded
pub trait Backend {
    /// The handle of one segment.
    type Segment: Segment + 'static;

    /// The backend's short name: `"posix"`, `"sysv"`.
    fn name(&self) -> &'static str;

    /// How this backend differs from the others.
    fn capabilities(&self) -> Capabilities;

    /// Creates a new segment; see the contract.
    #[doc(alias = "shm_open")]
    #[doc(alias = "shmget")]
    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Self::Segment>;

    /// Opens an existing segment; its size comes from the kernel.
    fn open(&self, name: &SegmentName, access: Access) -> Result<Self::Segment>;

    /// Removes a segment's name; mappings stay valid.
    #[doc(alias = "shm_unlink")]
    #[doc(alias = "IPC_RMID")]
    fn unlink(&self, name: &SegmentName) -> Result<()>;

    /// What the kernel says about a segment, without mapping it.
    fn info(&self, name: &SegmentName) -> Result<SegmentInfo>;

    /// Every segment of this backend on the machine, whoever made it.
    fn list(&self) -> Result<Vec<SegmentInfo>>;
}

/// One segment, created or opened. Drop closes it and, if this handle created it and was not
/// told to [`keep`](Segment::keep) it, removes it.
pub trait Segment: Send + Sync {
    /// The segment's name.
    fn name(&self) -> &SegmentName;

    /// Its size in bytes, as the kernel reported it when created or opened.
    fn size(&self) -> usize;

    /// The access this handle was opened with.
    fn access(&self) -> Access;

    /// Maps the whole segment with this handle's access. Each call makes a new mapping.
    #[doc(alias = "mmap")]
    #[doc(alias = "shmat")]
    fn map(&self) -> Result<Mapping>;

    /// What the kernel says about this segment now.
    fn info(&self) -> Result<SegmentInfo>;

    /// True when dropping this handle removes the segment.
    fn is_owner(&self) -> bool;

    /// Gives up ownership: the segment stays after this handle is dropped.
    fn keep(&mut self);

    /// Removes the segment now; later drops do not remove it again. Mappings stay valid.
    fn unlink(&mut self) -> Result<()>;

    /// Changes the size (POSIX only; see [`Capabilities::resizable`]). Existing mappings keep
    /// their length.
    fn resize(&mut self, size: usize) -> Result<()>;
}

impl Segment for Box<dyn Segment> {
    fn name(&self) -> &SegmentName {
        (**self).name()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn access(&self) -> Access {
        (**self).access()
    }
    fn map(&self) -> Result<Mapping> {
        (**self).map()
    }
    fn info(&self) -> Result<SegmentInfo> {
        (**self).info()
    }
    fn is_owner(&self) -> bool {
        (**self).is_owner()
    }
    fn keep(&mut self) {
        (**self).keep()
    }
    fn unlink(&mut self) -> Result<()> {
        (**self).unlink()
    }
    fn resize(&mut self, size: usize) -> Result<()> {
        (**self).resize(size)
    }
}

/// The object-safe form of [`Backend`], for a backend chosen at run time.
///
/// Every [`Backend`] is a `DynBackend`, and `Box<dyn DynBackend>` is itself a [`Backend`] whose
/// segments come boxed. So hold a `Box<dyn DynBackend>` and call the [`Backend`] methods on it;
/// this trait's `dyn_*` methods are the plumbing behind them (named apart, so that importing
/// both traits never makes a call ambiguous).
///
/// ```
/// use shm_core::{Backend, DynBackend};
/// fn count<B: Backend>(b: &B) -> usize { b.list().map(|l| l.len()).unwrap_or(0) }
/// fn pick(chosen: Box<dyn DynBackend>) -> usize { count(&chosen) }
/// ```
pub trait DynBackend: Send + Sync {
    /// See [`Backend::name`].
    fn dyn_name(&self) -> &'static str;
    /// See [`Backend::capabilities`].
    fn dyn_capabilities(&self) -> Capabilities;
    /// See [`Backend::create`].
    fn dyn_create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>>;
    /// See [`Backend::open`].
    fn dyn_open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>>;
    /// See [`Backend::unlink`].
    fn dyn_unlink(&self, name: &SegmentName) -> Result<()>;
    /// See [`Backend::info`].
    fn dyn_info(&self, name: &SegmentName) -> Result<SegmentInfo>;
    /// See [`Backend::list`].
    fn dyn_list(&self) -> Result<Vec<SegmentInfo>>;
}

impl<B: Backend + Send + Sync> DynBackend for B {
    fn dyn_name(&self) -> &'static str {
        self.name()
    }
    fn dyn_capabilities(&self) -> Capabilities {
        self.capabilities()
    }
    fn dyn_create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>> {
        Ok(Box::new(self.create(name, opts)?))
    }
    fn dyn_open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>> {
        Ok(Box::new(self.open(name, access)?))
    }
    fn dyn_unlink(&self, name: &SegmentName) -> Result<()> {
        self.unlink(name)
    }
    fn dyn_info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        self.info(name)
    }
    fn dyn_list(&self) -> Result<Vec<SegmentInfo>> {
        self.list()
    }
}

impl Backend for Box<dyn DynBackend> {
    type Segment = Box<dyn Segment>;
    fn name(&self) -> &'static str {
        (**self).dyn_name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).dyn_capabilities()
    }
    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>> {
        (**self).dyn_create(name, opts)
    }
    fn open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>> {
        (**self).dyn_open(name, access)
    }
    fn unlink(&self, name: &SegmentName) -> Result<()> {
        (**self).dyn_unlink(name)
    }
    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        (**self).dyn_info(name)
    }
    fn list(&self) -> Result<Vec<SegmentInfo>> {
        (**self).dyn_list()
    }
}
