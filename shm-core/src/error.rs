//! [`Error`]: the one error type of every backend, with the context needed to act on it.

use std::fmt;
use std::io;
use std::time::Duration;

/// What was being done when an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a new segment.
    Create,
    /// Opening an existing segment.
    Open,
    /// Mapping (attaching) a segment into this process.
    Map,
    /// Removing a segment's name (`shm_unlink`, `IPC_RMID`).
    Unlink,
    /// Reading a segment's metadata.
    Info,
    /// Listing the segments of a backend.
    List,
    /// Changing a segment's size.
    Resize,
    /// Reading or writing a mapping.
    Access,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Open => "open",
            Op::Map => "map",
            Op::Unlink => "remove",
            Op::Info => "inspect",
            Op::List => "list",
            Op::Resize => "resize",
            Op::Access => "access",
        })
    }
}

/// Where an error happened: which backend, which segment, which operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The backend's name (`"posix"`, `"sysv"`, ...).
    pub backend: &'static str,
    /// The segment as the user named it (`/test.shmem`), or the key or id where there is no name.
    pub segment: String,
    /// The operation that failed.
    pub op: Op,
}

impl Context {
    /// Builds a context.
    pub fn new(backend: &'static str, segment: impl Into<String>, op: Op) -> Self {
        Self {
            backend,
            segment: segment.into(),
            op,
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {} ({})", self.op, self.segment, self.backend)
    }
}

/// Every error of the shm crates.
///
/// Variants say what went wrong by meaning; each carries the [`Context`] where one applies and
/// keeps the operating system's error as its [`source`](std::error::Error::source), so that the
/// errno stays reachable through [`Error::raw_os_error`]. The message says what to do next.
///
/// ```
/// use shm_core::{Context, Error, Op, SegmentName};
///
/// // Match on the meaning.
/// match SegmentName::new("a/b") {
///     Err(Error::InvalidName { reason, .. }) => assert!(reason.contains("slash")),
///     other => panic!("{other:?}"),
/// }
///
/// // An OS error keeps its errno; the context says where, the message what to do next.
/// let err = Error::from_os(
///     Context::new("posix", "/test.shmem", Op::Create),
///     std::io::Error::from_raw_os_error(libc::EEXIST),
/// );
/// assert!(err.is_already_exists());
/// assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
/// assert_eq!(err.context().map(|c| c.op), Some(Op::Create));
/// let message = err.to_string();
/// assert!(message.starts_with("cannot create /test.shmem (posix): it already exists"));
/// assert!(message.contains("CreateOptions::replace"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment of that name already exists.
    #[error(
        "{ctx}: it already exists; remove it first (`Backend::unlink`) or create with `CreateOptions::replace`"
    )]
    AlreadyExists {
        /// Where.
        ctx: Context,
        /// The OS error, where there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// No segment of that name exists.
    #[error("{ctx}: no such segment; check the name and the backend")]
    NotFound {
        /// Where.
        ctx: Context,
        /// The OS error, where there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// The caller may not do this to the segment.
    #[error("{ctx}: permission denied{}", fmt_detail(detail))]
    PermissionDenied {
        /// Where.
        ctx: Context,
        /// Owner and mode of the segment, where they could be read.
        detail: Option<String>,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// The name breaks a rule of the C library; nothing was asked of the kernel.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The size is 0, too large to map, or otherwise unusable.
    #[error("{ctx}: invalid size {size}: {reason}")]
    InvalidSize {
        /// Where.
        ctx: Context,
        /// The size asked for or found.
        size: u64,
        /// Why it cannot be used.
        reason: String,
    },
    /// A kernel limit was hit; `limit` names it and its value.
    #[error("{ctx}: limit exceeded: {limit}")]
    LimitExceeded {
        /// Where.
        ctx: Context,
        /// The limit and its value, e.g. `kernel.shmmax = 1048576 bytes`.
        limit: String,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// There is not enough memory where the segment lives (a full `/dev/shm`).
    #[error("{ctx}: no space: {detail}")]
    NoSpace {
        /// Where.
        ctx: Context,
        /// What is full and how much is free.
        detail: String,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// A symbolic link stands where the segment should be; it was not followed.
    #[error(
        "{ctx}: a symbolic link stands at its place in /dev/shm and is not followed; if you did not make it, remove the name (`Backend::unlink` removes the link, not its target)"
    )]
    Symlink {
        /// Where.
        ctx: Context,
        /// The OS error (`ELOOP`).
        #[source]
        source: Option<io::Error>,
    },
    /// Mode bits other than the nine permission bits (setuid, setgid, sticky, or bits that are
    /// no mode at all) were asked for: a segment never gets them, on any backend.
    #[error(
        "{ctx}: invalid mode {mode:04o}: a segment takes permission bits only (0 to 0777); setuid, setgid and sticky bits are refused, because a write through a mapping does not clear them as write(2) would"
    )]
    InvalidMode {
        /// Where.
        ctx: Context,
        /// The mode asked for.
        mode: u32,
    },
    /// What stands at the name is not a shared memory object (a directory, a FIFO, a socket, a
    /// device, or a glibc named semaphore): it was not opened, mapped or removed.
    #[error("{ctx}: not a shared memory object ({what}); it was left as it is")]
    NotSegment {
        /// Where.
        ctx: Context,
        /// What stands there instead.
        what: &'static str,
    },
    /// The segment this handle made or opened is no longer the one its name (or System V id)
    /// stands for: someone removed it, and the name or id may now belong to another program's
    /// segment, which this handle does not touch.
    #[error("{ctx}: {detail}; nothing was done to what stands there now")]
    Stale {
        /// Where.
        ctx: Context,
        /// What changed.
        detail: String,
    },
    /// A write through a read-only mapping or handle.
    #[error("{ctx}: the segment is mapped read-only; open it read-write to write")]
    ReadOnly {
        /// Where.
        ctx: Context,
    },
    /// An offset and length that reach past the end of a mapping.
    #[error("{ctx}: {offset}+{len} is past the end of the segment ({size} bytes)")]
    OutOfBounds {
        /// Where.
        ctx: Context,
        /// The offset asked for.
        offset: usize,
        /// The length asked for.
        len: usize,
        /// The size of the segment.
        size: usize,
    },
    /// An atomic view at an offset that is not aligned for its type.
    #[error("{ctx}: offset {offset} is not aligned to {align} bytes")]
    Misaligned {
        /// Where.
        ctx: Context,
        /// The offset asked for.
        offset: usize,
        /// The alignment the type needs.
        align: usize,
    },
    /// The backend cannot do this at all (for example, resize a System V segment).
    #[error("{ctx}: not supported: {what}")]
    Unsupported {
        /// Where.
        ctx: Context,
        /// What is not supported, and why.
        what: &'static str,
    },
    /// A wait for another process gave up.
    #[error(
        "the peer stopped answering: waited {after:?} for {waited_for} (if it died, what it made may be left behind)"
    )]
    TimedOut {
        /// How long it waited.
        after: Duration,
        /// What it waited for (the name given to [`Signal::named`](crate::wait::Signal::named)).
        waited_for: String,
    },
    /// Any other error of the operating system.
    #[error("{ctx}: {source}")]
    Os {
        /// Where.
        ctx: Context,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn fmt_detail(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl Error {
    /// Classifies an OS error by its errno: `EEXIST` is [`Error::AlreadyExists`], `ENOENT`
    /// [`Error::NotFound`], `EACCES`/`EPERM` [`Error::PermissionDenied`], `ELOOP`
    /// [`Error::Symlink`], `ENOSPC` [`Error::NoSpace`]; anything else is [`Error::Os`].
    /// Backends refine the cases where an errno means something more specific.
    pub fn from_os(ctx: Context, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EEXIST) => Error::AlreadyExists {
                ctx,
                source: Some(source),
            },
            Some(libc::ENOENT) => Error::NotFound {
                ctx,
                source: Some(source),
            },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                ctx,
                detail: None,
                source: Some(source),
            },
            Some(libc::ELOOP) => Error::Symlink {
                ctx,
                source: Some(source),
            },
            Some(libc::ENOSPC) => Error::NoSpace {
                ctx,
                detail: "the kernel has no room for it".to_owned(),
                source: Some(source),
            },
            _ => Error::Os { ctx, source },
        }
    }

    /// The errno of the operating system error behind this one, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        std::error::Error::source(self)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error)
    }

    /// The context of this error, where it has one.
    pub fn context(&self) -> Option<&Context> {
        match self {
            Error::AlreadyExists { ctx, .. }
            | Error::NotFound { ctx, .. }
            | Error::PermissionDenied { ctx, .. }
            | Error::InvalidSize { ctx, .. }
            | Error::LimitExceeded { ctx, .. }
            | Error::NoSpace { ctx, .. }
            | Error::Symlink { ctx, .. }
            | Error::InvalidMode { ctx, .. }
            | Error::NotSegment { ctx, .. }
            | Error::Stale { ctx, .. }
            | Error::ReadOnly { ctx }
            | Error::OutOfBounds { ctx, .. }
            | Error::Misaligned { ctx, .. }
            | Error::Unsupported { ctx, .. }
            | Error::Os { ctx, .. } => Some(ctx),
            Error::InvalidName { .. } | Error::TimedOut { .. } => None,
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists { .. })
    }
}

/// The result type of the shm crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_stays_reachable_and_message_says_what_next() {
        let ctx = Context::new("posix", "/x", Op::Create);
        let err = Error::from_os(ctx, io::Error::from_raw_os_error(libc::EEXIST));
        assert!(err.is_already_exists());
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        let msg = err.to_string();
        assert!(
            msg.contains("Backend::unlink") && msg.contains("CreateOptions::replace"),
            "{msg}"
        );
    }
}
