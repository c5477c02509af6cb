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
/// Use it generically (`fn f<B: Backend>(b: &B)`) at no cost, or as `&dyn DynBackend` /
/// `Box<dyn DynBackend>` when the backend is chosen at run time.
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

/// [`Backend`] for a backend chosen at run time: segments come boxed.
///
/// Every [`Backend`] is a `DynBackend`; `Box<dyn DynBackend>` is itself a [`Backend`], so code
/// written generically runs on a backend picked from a command-line flag.
pub trait DynBackend: Send + Sync {
    /// See [`Backend::name`].
    fn name(&self) -> &'static str;
    /// See [`Backend::capabilities`].
    fn capabilities(&self) -> Capabilities;
    /// See [`Backend::create`].
    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>>;
    /// See [`Backend::open`].
    fn open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>>;
    /// See [`Backend::unlink`].
    fn unlink(&self, name: &SegmentName) -> Result<()>;
    /// See [`Backend::info`].
    fn info(&self, name: &SegmentName) -> Result<SegmentInfo>;
    /// See [`Backend::list`].
    fn list(&self) -> Result<Vec<SegmentInfo>>;
}

impl<B: Backend + Send + Sync> DynBackend for B {
    fn name(&self) -> &'static str {
        Backend::name(self)
    }
    fn capabilities(&self) -> Capabilities {
        Backend::capabilities(self)
    }
    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>> {
        Ok(Box::new(Backend::create(self, name, opts)?))
    }
    fn open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>> {
        Ok(Box::new(Backend::open(self, name, access)?))
    }
    fn unlink(&self, name: &SegmentName) -> Result<()> {
        Backend::unlink(self, name)
    }
    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        Backend::info(self, name)
    }
    fn list(&self) -> Result<Vec<SegmentInfo>> {
        Backend::list(self)
    }
}

impl Backend for Box<dyn DynBackend> {
    type Segment = Box<dyn Segment>;
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<Box<dyn Segment>> {
        (**self).create(name, opts)
    }
    fn open(&self, name: &SegmentName, access: Access) -> Result<Box<dyn Segment>> {
        (**self).open(name, access)
    }
    fn unlink(&self, name: &SegmentName) -> Result<()> {
        (**self).unlink(name)
    }
    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        (**self).info(name)
    }
    fn list(&self) -> Result<Vec<SegmentInfo>> {
        (**self).list()
    }
}
