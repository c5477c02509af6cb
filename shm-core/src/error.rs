//! [`Error`]: the one error type of every backend, with the context needed to act on it.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::{Context, Limit, Owner, Space};

/// Every error of the shm crates.
///
/// Variants say what went wrong by meaning; each carries the [`Context`] where one applies and
/// keeps the operating system's error as its [`source`](std::error::Error::source), so that the
/// errno stays reachable through [`Error::raw_os_error`]. The message ([`Display`](fmt::Display))
/// says what happened, in one line; [`Error::hint`] says what to do next, so that a program
/// can give its own advice in its own terms (the `shm` command says `shm rm`, not
/// `Backend::unlink`). [`Error::report`] writes both. [`Error::kind`] classifies it as an
/// [`io::ErrorKind`], and an `Error` converts into an [`io::Error`] of that kind.
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
/// // An OS error keeps its errno; the context says where, the hint what to do next.
/// let err = Error::from_os(
///     Context::new("posix", "/test.shmem", Op::Create),
///     std::io::Error::from_raw_os_error(libc::EEXIST),
/// );
/// assert!(err.is_already_exists());
/// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
/// assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
/// assert_eq!(err.context().map(|c| c.op), Some(Op::Create));
/// assert_eq!(err.to_string(), "cannot create /test.shmem (posix): it already exists");
/// assert!(err.hint().unwrap().contains("CreateOptions::replace"));
/// assert!(err.report().to_string().contains("exists; remove it first"));
///
/// // Into an io::Error of the same kind, the shm error inside.
/// let io = std::io::Error::from(err);
/// assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
/// assert!(io.get_ref().unwrap().downcast_ref::<Error>().is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment of that name already exists.
    #[error("{ctx}: it already exists")]
    AlreadyExists {
        /// Where.
        ctx: Context,
        /// The OS error, where there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// No segment of that name exists.
    #[error("{ctx}: no such segment")]
    NotFound {
        /// Where.
        ctx: Context,
        /// The OS error, where there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// The caller may not do this to the segment.
    #[error("{ctx}: permission denied{}", fmt_owner(owner))]
    PermissionDenied {
        /// Where.
        ctx: Context,
        /// Owner and mode of the segment, where they could be read.
        owner: Option<Owner>,
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
    /// A kernel limit was hit; `limit` says which, its value and what was asked.
    #[error("{ctx}: limit exceeded: {limit}")]
    LimitExceeded {
        /// Where.
        ctx: Context,
        /// The limit, its value and what was asked.
        limit: Limit,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// There is not enough memory where the segment lives (a full `/dev/shm`).
    #[error("{ctx}: no space: {space}")]
    NoSpace {
        /// Where.
        ctx: Context,
        /// How much was asked, and how much is free where that is known.
        space: Space,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// A symbolic link stands where the segment should be; it was not followed.
    #[error("{ctx}: a symbolic link stands at its place in /dev/shm and is not followed")]
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
    #[error("{ctx}: the segment is mapped read-only")]
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
    #[error("the peer stopped answering: waited {after:?} for {waited_for}")]
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

fn fmt_owner(owner: &Option<Owner>) -> String {
    match owner {
        Some(o) => format!(" ({o})"),
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
                owner: None,
                source: Some(source),
            },
            Some(libc::ELOOP) => Error::Symlink {
                ctx,
                source: Some(source),
            },
            Some(libc::ENOSPC) => Error::NoSpace {
                ctx,
                space: Space::default(),
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

    /// What to do next, where there is advice to give, in the terms of this library
    /// (`Backend::unlink`, `CreateOptions::replace`, a `sysctl` to raise a limit). Not part of
    /// the [`Display`](fmt::Display) message: a program that has its own words for the advice
    /// gives those instead. [`Error::report`] writes the message and the hint.
    ///
    /// ```
    /// use shm_core::{Context, Error, Op};
    /// let ctx = Context::new("posix", "/x", Op::Map);
    /// assert!(Error::ReadOnly { ctx: ctx.clone() }.hint().unwrap().contains("read-write"));
    /// assert_eq!(Error::Misaligned { ctx, offset: 1, align: 8 }.hint(), None);
    /// ```
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::AlreadyExists { .. } => {
                "remove it first (`Backend::unlink`) or create with `CreateOptions::replace`"
                    .to_owned()
            }
            Error::NotFound { .. } => "check the name and the backend".to_owned(),
            Error::LimitExceeded { limit, .. } => limit.hint(),
            Error::NoSpace { .. } => {
                "free space (remove unused segments) or ask for less".to_owned()
            }
            Error::Symlink { .. } => "if you did not make it, remove the name (`Backend::unlink` \
                                      removes the link, not its target)"
                .to_owned(),
            Error::ReadOnly { .. } => "open it read-write to write".to_owned(),
            Error::TimedOut { .. } => "if it died, what it made may be left behind".to_owned(),
            Error::PermissionDenied { .. }
            | Error::InvalidName { .. }
            | Error::InvalidSize { .. }
            | Error::InvalidMode { .. }
            | Error::NotSegment { .. }
            | Error::Stale { .. }
            | Error::OutOfBounds { .. }
            | Error::Misaligned { .. }
            | Error::Unsupported { .. }
            | Error::Os { .. } => return None,
        })
    }

    /// The message and, after a semicolon, the [hint](Error::hint): what a program that has no
    /// advice of its own shows its user.
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }

    /// The kind of I/O error this is, as [`io::Error`] classifies errors: what the conversion
    /// into an [`io::Error`] carries. [`Error::Os`] has the kind of its OS error.
    ///
    /// | variant | kind |
    /// |---|---|
    /// | `AlreadyExists` | `AlreadyExists` |
    /// | `NotFound`, `Stale` (its segment is gone) | `NotFound` |
    /// | `PermissionDenied`, `ReadOnly` | `PermissionDenied` |
    /// | `InvalidName`, `InvalidSize`, `InvalidMode`, `NotSegment`, `OutOfBounds`, `Misaligned` | `InvalidInput` |
    /// | `LimitExceeded` | `QuotaExceeded` |
    /// | `NoSpace` | `StorageFull` |
    /// | `Unsupported` | `Unsupported` |
    /// | `TimedOut` | `TimedOut` |
    /// | `Symlink` | `Other` |
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::AlreadyExists { .. } => K::AlreadyExists,
            Error::NotFound { .. } | Error::Stale { .. } => K::NotFound,
            Error::PermissionDenied { .. } | Error::ReadOnly { .. } => K::PermissionDenied,
            Error::InvalidName { .. }
            | Error::InvalidSize { .. }
            | Error::InvalidMode { .. }
            | Error::NotSegment { .. }
            | Error::OutOfBounds { .. }
            | Error::Misaligned { .. } => K::InvalidInput,
            Error::LimitExceeded { .. } => K::QuotaExceeded,
            Error::NoSpace { .. } => K::StorageFull,
            Error::Unsupported { .. } => K::Unsupported,
            Error::TimedOut { .. } => K::TimedOut,
            Error::Symlink { .. } => K::Other,
            Error::Os { source, .. } => source.kind(),
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

/// An [`Error`] and its [hint](Error::hint) in one line: `cannot create /x (posix): it already
/// exists; remove it first ...`. Made by [`Error::report`].
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.hint() {
            Some(hint) => write!(f, "{}; {hint}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// An [`io::Error`] of the error's [kind](Error::kind), with the error inside: its message is
/// the error's, and [`io::Error::get_ref`] gives the [`Error`] back (with its context, hint
/// and errno).
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::new(err.kind(), err)
    }
}

/// The result type of the shm crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Op, SegmentRef};

    fn ctx() -> Context {
        Context::new("sysv", SegmentRef::Key(0x0bad_1dea), Op::Create)
    }

    #[test]
    fn errno_stays_reachable_and_the_hint_says_what_next() {
        let ctx = Context::new("posix", "/x", Op::Create);
        let err = Error::from_os(ctx, io::Error::from_raw_os_error(libc::EEXIST));
        assert!(err.is_already_exists());
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        let msg = err.to_string();
        assert_eq!(msg, "cannot create /x (posix): it already exists");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("Backend::unlink") && hint.contains("CreateOptions::replace"),
            "{hint}"
        );
        assert_eq!(err.report().to_string(), format!("{msg}; {hint}"));
    }

    #[test]
    fn a_key_is_named_as_a_key() {
        let err = Error::from_os(ctx(), io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(
            err.to_string(),
            "cannot create key 0x0bad1dea (sysv): no such segment"
        );
        assert_eq!(err.context().unwrap().segment.key(), Some(0x0bad_1dea));
    }

    #[test]
    fn limits_and_owners_are_fields_and_their_advice_is_a_hint() {
        let err = Error::LimitExceeded {
            ctx: ctx(),
            limit: Limit::SegmentSize {
                max: Some(1 << 20),
                asked: 2 << 20,
            },
            source: Some(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        assert_eq!(
            err.to_string(),
            "cannot create key 0x0bad1dea (sysv): limit exceeded: 2097152 bytes is above \
             kernel.shmmax = 1048576 bytes"
        );
        assert!(err.hint().unwrap().contains("sysctl -w kernel.shmmax"));
        assert!(!err.to_string().contains("sysctl"));
        assert_eq!(err.kind(), io::ErrorKind::QuotaExceeded);
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));

        let denied = Error::PermissionDenied {
            ctx: ctx(),
            owner: Some(Owner {
                uid: 0,
                mode: 0o600,
            }),
            source: None,
        };
        assert!(
            denied
                .to_string()
                .ends_with("permission denied (owner uid 0, mode 0600)")
        );
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(denied.hint(), None);
        assert_eq!(denied.report().to_string(), denied.to_string());

        let full = Error::NoSpace {
            ctx: ctx(),
            space: Space {
                asked: Some(8192),
                free: Some((4096, 1 << 20)),
            },
            source: None,
        };
        assert!(
            full.to_string()
                .ends_with("no space: 8192 bytes asked, /dev/shm has 4096 bytes free of 1048576")
        );
        assert!(full.hint().unwrap().contains("ask for less"));
        assert_eq!(full.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn every_variant_has_a_kind_and_advice_stays_out_of_the_message() {
        let os = |errno| Error::from_os(ctx(), io::Error::from_raw_os_error(errno));
        let cases = [
            (os(libc::EEXIST), io::ErrorKind::AlreadyExists),
            (os(libc::ENOENT), io::ErrorKind::NotFound),
            (os(libc::EACCES), io::ErrorKind::PermissionDenied),
            (os(libc::ENOSPC), io::ErrorKind::StorageFull),
            (os(libc::ELOOP), io::ErrorKind::Other),
            (os(libc::EBUSY), io::ErrorKind::ResourceBusy),
            (
                Error::InvalidName {
                    name: "a/b".into(),
                    reason: "slash",
                },
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::ReadOnly { ctx: ctx() },
                io::ErrorKind::PermissionDenied,
            ),
            (
                Error::Stale {
                    ctx: ctx(),
                    detail: "gone".into(),
                },
                io::ErrorKind::NotFound,
            ),
            (
                Error::OutOfBounds {
                    ctx: ctx(),
                    offset: 1,
                    len: 2,
                    size: 2,
                },
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::Unsupported {
                    ctx: ctx(),
                    what: "no",
                },
                io::ErrorKind::Unsupported,
            ),
            (
                Error::TimedOut {
                    after: Duration::from_secs(1),
                    waited_for: "x".into(),
                },
                io::ErrorKind::TimedOut,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err:?}");
            let msg = err.to_string();
            if let Some(hint) = err.hint() {
                assert!(!msg.contains(&hint), "{msg} holds its hint {hint}");
                assert_eq!(err.report().to_string(), format!("{msg}; {hint}"));
            }
        }
    }

    #[test]
    fn into_io_error_keeps_kind_message_and_the_error() {
        let err = Error::from_os(ctx(), io::Error::from_raw_os_error(libc::ENOENT));
        let msg = err.to_string();
        let io_err = io::Error::from(err);
        assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
        assert_eq!(io_err.to_string(), msg);
        let inner = io_err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .expect("the shm error inside");
        assert_eq!(inner.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(inner.context().unwrap().segment.key(), Some(0x0bad_1dea));
        // `?` converts in a function that returns io::Result.
        fn io_fn() -> io::Result<()> {
            Err(Error::ReadOnly { ctx: ctx() })?
        }
        assert_eq!(io_fn().unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }
}
