//! The backend kit: what every backend needs and would otherwise write again, once.
//!
//! * [`Owned`] and [`Identity`]: who removes a segment. The handle that created it removes it
//!   when dropped (unless [kept](Owned::keep)), and removes only the object it identified: if
//!   someone removed it and another took its name (or its System V id), the handle's `unlink`
//!   is [`Error::Stale`] and its drop leaves the newcomer alone.
//! * [`map_fd`]: maps an object reached by a file descriptor (a POSIX object, a file), with the
//!   size it has now and the descriptor handed to the [`Mapping`], so that copies survive a
//!   shrink by another process (see [`MapBacking::fd`]).
//! * [`create_exclusive`]: an exclusive create that, asked to replace, removes what stands at
//!   the name and tries again until it wins or the race has gone on for long.
//!
//! The repository's POSIX and System V backends are built on it, and so is the file backend of
//! its tests (`tests/src/file_backend.rs`), written against the public API alone.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::{Context, Error, MapBacking, Mapping, Op, Result, SegmentName, SegmentRef};

/// What a segment handle knows of the object it created or opened: enough to tell whether the
/// name (key, id) still stands for that object, and to remove it by that name.
pub trait Identity {
    /// `Ok` while the name still stands for this handle's object. Otherwise an error that says
    /// so for `op`: [`Error::Stale`] when the name is gone or stands for another object now,
    /// [`Error::NotFound`] where the object itself is gone.
    fn check_ours(&self, op: Op) -> Result<()>;

    /// Removes the object by its name. [`Owned`] calls it only right after
    /// [`check_ours`](Identity::check_ours) said the name is still this handle's.
    fn remove(&self) -> Result<()>;
}

/// A segment handle's ownership of its object: created handles own it, opened ones never do.
///
/// Dropping an owner removes the object, if the name still stands for it
/// ([`Identity::check_ours`]); after [`keep`](Owned::keep) or [`unlink`](Owned::unlink) the
/// drop removes nothing. A segment holds one as a field and forwards
/// [`Segment::is_owner`](crate::Segment::is_owner), [`Segment::keep`](crate::Segment::keep) and
/// [`Segment::unlink`](crate::Segment::unlink) to it. The identity drops right after the
/// removal, so a descriptor it holds closes after the name is gone (mappings hold their own).
#[derive(Debug)]
pub struct Owned<I: Identity> {
    identity: I,
    owner: bool,
}

impl<I: Identity> Owned<I> {
    /// The handle of an object this handle made: it removes the object when dropped.
    pub fn created(identity: I) -> Self {
        Self {
            identity,
            owner: true,
        }
    }

    /// The handle of an object someone made: it never removes it on drop.
    pub fn opened(identity: I) -> Self {
        Self {
            identity,
            owner: false,
        }
    }

    /// What identifies the object.
    pub fn identity(&self) -> &I {
        &self.identity
    }

    /// True when dropping the handle removes the object.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Gives up ownership: the object stays after the handle is dropped.
    pub fn keep(&mut self) {
        self.owner = false;
    }

    /// Removes the object now, if the name still stands for it; the drop then removes nothing,
    /// whatever this returns.
    pub fn unlink(&mut self) -> Result<()> {
        self.owner = false;
        self.identity.check_ours(Op::Unlink)?;
        self.identity.remove()
    }
}

impl<I: Identity> Drop for Owned<I> {
    fn drop(&mut self) {
        // Only this handle's own object: one that took the name since is someone else's.
        // Nothing to do about a failure here: the object may be gone by now.
        if self.owner && self.identity.check_ours(Op::Unlink).is_ok() {
            let _ = self.identity.remove();
        }
    }
}

/// Runs an exclusive create. Without `replace`, it is `create()` once. With `replace`, each
/// round first calls `remove_old()` (which removes what stands at the name; nothing there is
/// fine), then `create()`; racing replacers each remove what the others made, so a create that
/// finds the name taken (`EEXIST`) tries again, up to 64 rounds (each round, one of them wins),
/// and reports `EEXIST` only once the race has gone on that long. `create`'s other errors, and
/// its last one, go through `error`.
pub fn create_exclusive<T>(
    replace: bool,
    mut remove_old: impl FnMut() -> Result<()>,
    mut create: impl FnMut() -> io::Result<T>,
    error: impl FnOnce(io::Error) -> Error,
) -> Result<T> {
    let mut tries = if replace { 64 } else { 1 };
    loop {
        if replace {
            remove_old()?;
        }
        match create() {
            Ok(made) => return Ok(made),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && tries > 1 => {
                tries -= 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(error(e)),
        }
    }
}

/// Turns an OS error of an operation on one segment into an [`Error`], as its backend says it.
pub type OsError = Box<dyn Fn(Op, io::Error) -> Error + Send + Sync>;

/// Maps the whole object behind `file` (a POSIX object, a file), from offset 0, with the size
/// it has now (`fstat`): another process may have shrunk or grown it since the handle was made,
/// and mapping past its end would invite SIGBUS. Read-only unless `writable`.
///
/// The [`Mapping`] keeps `file` open and answers [`MapBacking::current_size`] and
/// [`MapBacking::fd`] with it, so that its copies go through the descriptor after a fault
/// rather than raise SIGBUS. Size 0 (a creator that has not sized its object yet) is
/// [`Error::InvalidSize`]; `os_error` says what a failed system call means.
pub fn map_fd<F: AsFd + Send + Sync + 'static>(
    file: &Arc<F>,
    writable: bool,
    backend: &'static str,
    name: &SegmentName,
    os_error: OsError,
) -> Result<Mapping> {
    let size = fd_size(file.as_fd()).map_err(|e| os_error(Op::Map, e))?;
    let invalid = |reason: &str| Error::InvalidSize {
        ctx: Context::new(backend, name.as_str(), Op::Map),
        size,
        reason: reason.to_owned(),
    };
    if size == 0 {
        return Err(invalid(
            "the segment has size 0 (its creator has not sized it yet); touching it would \
             raise SIGBUS",
        ));
    }
    let len = usize::try_from(size)
        .ok()
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or_else(|| invalid("larger than this process can address"))?;
    let mut options = memmap2::MmapOptions::new();
    options.len(len);
    let raw = file.as_fd().as_raw_fd();
    let map = if writable {
        options.map_raw(raw)
    } else {
        options.map_raw_read_only(raw)
    }
    .map_err(|e| os_error(Op::Map, e))?;
    let ptr = NonNull::new(map.as_mut_ptr()).ok_or_else(|| Error::Os {
        ctx: Context::new(backend, name.as_str(), Op::Map),
        source: io::Error::other("mmap returned a null pointer"),
    })?;
    let backing = FdMap {
        _map: map,
        file: Arc::clone(file),
        backend,
        name: name.clone(),
        os_error,
    };
    // SAFETY: memmap2 mapped `len` bytes of the object from offset 0, page-aligned, with the
    // protection asked for; they stay mapped until `backing` (which owns the MmapRaw) is
    // dropped, and nothing else unmaps them.
    Ok(unsafe { Mapping::from_raw_parts(ptr, len, writable, Box::new(backing)) })
}

/// The size of the object behind `fd` now.
fn fd_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: an all-zero stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; the descriptor is borrowed and open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// Keeps a mapping of [`map_fd`] alive: dropping it unmaps (memmap2), then the descriptor
/// closes once its segment handle and other mappings are gone too.
struct FdMap<F> {
    _map: memmap2::MmapRaw,
    file: Arc<F>,
    backend: &'static str,
    name: SegmentName,
    os_error: OsError,
}

impl<F: AsFd + Send + Sync> MapBacking for FdMap<F> {
    fn backend(&self) -> &'static str {
        self.backend
    }
    fn segment(&self) -> SegmentRef {
        SegmentRef::from(&self.name)
    }
    fn current_size(&self) -> Result<Option<u64>> {
        fd_size(self.file.as_fd())
            .map(Some)
            .map_err(|e| (self.os_error)(Op::Access, e))
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        // Another process can shrink the object: copies go through the descriptor after a
        // fault.
        Some(self.file.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// An object that is ours while `ours` says so, and counts its removals.
    #[derive(Debug)]
    struct Fake<'a> {
        ours: &'a Cell<bool>,
        removed: &'a Cell<u32>,
    }

    impl Identity for Fake<'_> {
        fn check_ours(&self, op: Op) -> Result<()> {
            if self.ours.get() {
                Ok(())
            } else {
                Err(Error::Stale {
                    ctx: Context::new("fake", "/x", op),
                    detail: "not ours".to_owned(),
                })
            }
        }
        fn remove(&self) -> Result<()> {
            self.removed.set(self.removed.get() + 1);
            Ok(())
        }
    }

    #[test]
    fn an_owner_removes_only_its_own_object_and_only_once() {
        let (ours, removed) = (Cell::new(true), Cell::new(0));
        let fake = || Fake {
            ours: &ours,
            removed: &removed,
        };
        drop(Owned::opened(fake()));
        assert_eq!(removed.get(), 0, "an opener never removes");
        drop(Owned::created(fake()));
        assert_eq!(removed.get(), 1, "a creator removes on drop");
        let mut kept = Owned::created(fake());
        kept.keep();
        assert!(!kept.is_owner());
        drop(kept);
        assert_eq!(removed.get(), 1, "a kept object stays");
        let mut unlinked = Owned::created(fake());
        unlinked.unlink().unwrap();
        drop(unlinked);
        assert_eq!(removed.get(), 2, "unlink removes, the drop does not again");
        ours.set(false);
        drop(Owned::created(fake()));
        assert_eq!(
            removed.get(),
            2,
            "a name that stands for another object is left alone"
        );
        let mut stale = Owned::created(fake());
        assert!(matches!(stale.unlink(), Err(Error::Stale { .. })));
        assert!(!stale.is_owner());
    }

    #[test]
    fn a_replacing_create_removes_and_tries_again_until_it_wins() {
        let exists = || io::Error::from_raw_os_error(libc::EEXIST);
        let fail = |e: io::Error| Error::from_os(Context::new("fake", "/x", Op::Create), e);
        // Without replace: one try, EEXIST reported.
        let tries = Cell::new(0);
        let r: Result<()> = create_exclusive(
            false,
            || panic!("nothing is removed without replace"),
            || {
                tries.set(tries.get() + 1);
                Err(exists())
            },
            fail,
        );
        assert!(r.unwrap_err().is_already_exists());
        assert_eq!(tries.get(), 1);
        // With replace: racers take the name twice, the third round wins.
        let (removals, tries) = (Cell::new(0), Cell::new(0));
        let made = create_exclusive(
            true,
            || {
                removals.set(removals.get() + 1);
                Ok(())
            },
            || {
                tries.set(tries.get() + 1);
                if tries.get() < 3 {
                    Err(exists())
                } else {
                    Ok(7)
                }
            },
            fail,
        )
        .unwrap();
        assert_eq!((made, removals.get(), tries.get()), (7, 3, 3));
        // A race that never ends is reported after 64 rounds.
        let tries = Cell::new(0);
        let r: Result<()> = create_exclusive(
            true,
            || Ok(()),
            || {
                tries.set(tries.get() + 1);
                Err(exists())
            },
            fail,
        );
        assert!(r.unwrap_err().is_already_exists());
        assert_eq!(tries.get(), 64);
    }
}
