//! The conformance suite: what every backend must do, as plain functions generic over it.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]
//!
//! Each function takes the system under test and panics when it breaks the
//! [contract](crate::Backend#contract). Run the whole list against a backend with
//! [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! mod my_backend {
//!     shm_core::conformance_tests!(my_crate::MyBackend::new());
//! }
//! ```
//!
//! Every test makes its own uniquely named segments ([`unique_name`]) and removes them also when
//! it fails ([`Cleanup`]). Where backends differ, the test reads [`Capabilities`] and asserts the
//! matching behaviour.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use crate::wait::{Signal, WaitStrategy};
use crate::{Access, Backend, Capabilities, CreateOptions, Error, Segment, SegmentName};

/// The prefix of every segment name the suite makes, so that leftovers can be found.
pub const PREFIX: &str = "shmt-";

/// A name no other test, run or process uses: `/shmt-PID-N-TEST`.
pub fn unique_name(test: &str) -> SegmentName {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = format!("/{PREFIX}{}-{n}-{test}", std::process::id());
    s.truncate(crate::MAX_NAME_LEN);
    SegmentName::new(&s).expect("generated names are valid")
}

/// Removes a name when dropped, also when the test panics. Errors are ignored: the segment may
/// already be gone.
pub struct Cleanup<'a, B: Backend> {
    backend: &'a B,
    /// The name it removes.
    pub name: SegmentName,
}

impl<'a, B: Backend> Cleanup<'a, B> {
    /// A fresh unique name for `test`, removed on drop.
    pub fn new(backend: &'a B, test: &str) -> Self {
        Self {
            backend,
            name: unique_name(test),
        }
    }
}

impl<B: Backend> Drop for Cleanup<'_, B> {
    fn drop(&mut self) {
        let _ = self.backend.unlink(&self.name);
    }
}

/// Runs `child` in a forked process and returns whether it exited 0 (a panic, or a signal
/// such as SIGBUS, is a failure). The child never returns into the caller: it leaves with
/// `_exit`, and it ends itself after 60 s (SIGALRM), so that a child stuck on a lock that
/// will never be released is a failure rather than a hang.
///
/// ```compile_fail,E0133
/// // Forking is not safe to call without its contract (E0133: an unsafe call outside `unsafe`).
/// shm_core::conformance::in_child_process(|| true);
/// ```
///
/// # Safety
///
/// The child is a copy of this process that holds only the calling thread. So `child` must:
///
/// * not wait for anything that another thread of this process does or releases: a lock held
///   by another thread at the fork (a `Mutex` of your own, a backend's internal lock, the
///   standard library's stdout lock or the test harness's output capture) stays held forever
///   in the child, and data that another thread was in the middle of changing stays half
///   changed;
/// * touch only what the calling thread owned or shared at the fork, through the backend's
///   handles and mappings and system calls (the C library keeps `malloc` usable after a fork;
///   a panic message is written to a captured output only when it can take its lock).
///
/// Every test of this suite calls it this way: the child uses the handles and mappings the
/// test made before the fork, and a backend that passes the suite must be usable so (its
/// `open`, `map` and copies take no lock that another thread may hold across a fork).
pub unsafe fn in_child_process(child: impl FnOnce() -> bool) -> bool {
    // SAFETY: fork has no memory-safety preconditions of its own; what the child may do after
    // it is the caller's contract.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm has no preconditions; it only bounds the child's life.
        unsafe { libc::alarm(60) };
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
        // SAFETY: _exit ends the child at once, running no destructors of the parent's state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "waitpid: {e}");
    }
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn caps<Sut: Backend>(sut: &Sut) -> Capabilities {
    sut.capabilities()
}

fn opts(size: usize) -> CreateOptions {
    CreateOptions::new(size)
}

/// Two mappings of one segment, one from create and one from open, see the same bytes.
pub fn create_then_open_sees_same_bytes<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "same-bytes");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    let a = seg.map().expect("map created");
    let other = sut.open(&c.name, Access::ReadWrite).expect("open");
    let b = other.map().expect("map opened");
    a.write_at(100, b"hello, other mapping").unwrap();
    let mut buf = [0u8; 20];
    b.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"hello, other mapping");
    b.write_at(4090, b"tail!!").unwrap();
    let mut tail = [0u8; 6];
    a.read_at(4090, &mut tail).unwrap();
    assert_eq!(&tail, b"tail!!");
}

/// A second process opens the segment by name, sees the creator's bytes, and its writes are
/// seen by the creator.
pub fn bytes_cross_processes<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "cross-process");
    let seg = sut.create(&c.name, &opts(8192)).expect("create");
    let map = seg.map().expect("map");
    map.write_at(0, b"from parent").unwrap();
    // SAFETY: the child uses only the backend and this test's handle and mapping, through
    // system calls; it waits for no other thread.
    let ok = unsafe {
        in_child_process(|| {
            let Ok(seg) = sut.open(&c.name, Access::ReadWrite) else {
                return false;
            };
            let Ok(map) = seg.map() else { return false };
            let mut buf = [0u8; 11];
            map.read_at(0, &mut buf).is_ok()
                && &buf == b"from parent"
                && seg.size() == 8192
                && map.write_at(5000, b"from child").is_ok()
        })
    };
    assert!(
        ok,
        "the child process did not see the parent's bytes or could not write"
    );
    let mut buf = [0u8; 10];
    map.read_at(5000, &mut buf).unwrap();
    assert_eq!(&buf, b"from child");
}

/// Atomics and [`Signal`] ping-pong between two processes through the segment, with both
/// sleeping and spinning waiters.
pub fn signal_cross_processes<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "signal");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    let map = seg.map().expect("map");
    let words = map.atomics::<AtomicU32>(0, 4).unwrap();
    const ROUNDS: u32 = 300;
    let t = Duration::from_secs(10);
    for strategy in [WaitStrategy::Block, WaitStrategy::Hybrid] {
        words.iter().for_each(|w| w.store(0, Ordering::SeqCst));
        let ping = Signal::new(&words[0], &words[1], strategy);
        let pong = Signal::new(&words[2], &words[3], strategy);
        let ok = std::thread::scope(|s| {
            // fork from a thread of our own, so that this thread can play the parent's side
            let child = s.spawn(|| {
                // SAFETY: the child only waits on and stores to the segment's words (futex
                // calls and atomics); the parent's side runs in the parent, not in the child.
                unsafe {
                    in_child_process(|| {
                        (1..=ROUNDS).all(|i| {
                            let seen = ping.wait_until(|v| v == i, t).is_ok();
                            pong.store(i);
                            seen
                        })
                    })
                }
            });
            for i in 1..=ROUNDS {
                ping.store(i);
                pong.wait_until(|v| v == i, t).expect("the child answers");
            }
            child.join().expect("join")
        });
        assert!(
            ok,
            "{strategy}: the child process did not follow the ping-pong"
        );
        assert_eq!(words[1].load(Ordering::SeqCst), 0, "no sleeper left behind");
    }
}

/// Creating a name that exists fails with `AlreadyExists`; with `replace` it succeeds.
pub fn create_twice_already_exists<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "twice");
    let mut first = sut.create(&c.name, &opts(4096)).expect("create");
    first.map().unwrap().write_at(0, b"old").unwrap();
    let err = sut
        .create(&c.name, &opts(4096))
        .err()
        .expect("second create must fail");
    assert!(err.is_already_exists(), "{err}");
    assert!(
        err.to_string().contains(c.name.as_str()),
        "message names the segment: {err}"
    );
    first.keep();
    drop(first);
    let second = sut
        .create(&c.name, &opts(8192).replace(true))
        .expect("create with replace");
    assert_eq!(second.size(), 8192);
    let mut buf = [9u8; 3];
    second.map().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0, 0, 0], "a replaced segment starts empty");
}

/// Opening a missing name fails with `NotFound`.
pub fn open_missing_not_found<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "missing");
    let err = sut
        .open(&c.name, Access::ReadWrite)
        .err()
        .expect("open must fail");
    assert!(err.is_not_found(), "{err}");
    assert!(
        sut.info(&c.name)
            .expect_err("info must fail")
            .is_not_found()
    );
    assert!(
        sut.unlink(&c.name)
            .expect_err("unlink must fail")
            .is_not_found()
    );
}

/// After unlink, open fails with `NotFound`, and the mapping still works.
pub fn unlink_then_open_not_found<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "unlink");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    let map = seg.map().unwrap();
    sut.unlink(&c.name).expect("unlink");
    let err = sut
        .open(&c.name, Access::ReadOnly)
        .err()
        .expect("open after unlink");
    assert!(err.is_not_found(), "{err}");
    map.write_at(0, b"still here").unwrap();
    let mut buf = [0u8; 10];
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    drop(seg); // its own unlink finds nothing: no error, no panic
}

/// A mapping made before the handle and the name are gone keeps working; a handle can still
/// map its segment after removal.
pub fn mapping_outlives_handle_and_name<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "outlives");
    let mut seg = sut.create(&c.name, &opts(4096)).expect("create");
    let a = seg.map().unwrap();
    a.write_at(0, b"abc").unwrap();
    seg.unlink().expect("unlink through the handle");
    assert!(!seg.is_owner());
    let b = seg.map().expect("map after unlink through a live handle");
    let mut buf = [0u8; 3];
    b.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"abc");
    drop(seg);
    b.write_at(1, b"Z").unwrap();
    a.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"aZc");
}

/// The size reported by create, open, info and the mapping is the size requested, also when
/// it is not a multiple of the page size; new bytes are zero.
pub fn size_reported_equals_requested<Sut: Backend>(sut: &Sut) {
    for size in [1usize, 100, 4096, 5000, 1 << 20] {
        let c = Cleanup::new(sut, "size");
        let seg = sut.create(&c.name, &opts(size)).expect("create");
        assert_eq!(seg.size(), size);
        let opened = sut.open(&c.name, Access::ReadOnly).expect("open");
        assert_eq!(opened.size(), size, "open learns the size from the kernel");
        assert_eq!(sut.info(&c.name).expect("info").size, size as u64);
        let map = opened.map().expect("map");
        assert_eq!(map.len(), size);
        let mut buf = vec![1u8; size.min(8192)];
        map.read_at(size - buf.len(), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "new bytes are zero");
        let mut one = [0u8; 1];
        let err = map.read_at(size, &mut one).unwrap_err();
        assert!(matches!(err, Error::OutOfBounds { .. }), "{err}");
    }
}

/// Size 0 is refused at create, and nothing is left.
pub fn size_zero_refused<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "zero");
    let err = sut
        .create(&c.name, &opts(0))
        .err()
        .expect("size 0 must fail");
    assert!(matches!(err, Error::InvalidSize { .. }), "{err}");
    assert!(
        sut.open(&c.name, Access::ReadOnly)
            .err()
            .expect("nothing made")
            .is_not_found()
    );
}

/// Sizes beyond what the kernel can give fail at create with a clear error, and leave nothing.
pub fn size_over_limit_refused<Sut: Backend>(sut: &Sut) {
    for size in [usize::MAX, 1usize << 50] {
        let c = Cleanup::new(sut, "huge");
        let err = sut
            .create(&c.name, &opts(size))
            .err()
            .expect("huge size must fail");
        assert!(
            matches!(
                err,
                Error::InvalidSize { .. } | Error::NoSpace { .. } | Error::LimitExceeded { .. }
            ),
            "size {size}: {err}"
        );
        assert!(
            sut.open(&c.name, Access::ReadOnly)
                .err()
                .expect("nothing made")
                .is_not_found()
        );
    }
}

/// A read-only handle maps read-only: writes and atomic views are refused by the API; loads
/// (`Mapping::loads`) work.
pub fn read_only_refuses_writes<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "readonly");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    seg.map().unwrap().write_at(0, b"x").unwrap();
    let ro = sut.open(&c.name, Access::ReadOnly).expect("open read-only");
    assert_eq!(ro.access(), Access::ReadOnly);
    let map = ro.map().expect("map read-only");
    assert!(!map.is_writable());
    let err = map.write_at(0, b"y").unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    assert!(map.atomics::<AtomicU32>(0, 1).is_err());
    let mut buf = [0u8; 1];
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"x");
    // Loads work on a read-only mapping, and see the writer's stores.
    let words = map
        .loads::<AtomicU32>(4, 1)
        .expect("loads on a read-only mapping");
    seg.map()
        .unwrap()
        .atomic::<AtomicU32>(4)
        .unwrap()
        .store(7, Ordering::SeqCst);
    assert_eq!(words[0].load_acquire(), 7);
    assert_eq!(words[0].load(), 7);
}

/// The creator's drop removes the segment; an opener's drop does not; `keep` keeps it.
pub fn ownership_on_drop<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "owner");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    assert!(seg.is_owner());
    let opener = sut.open(&c.name, Access::ReadWrite).expect("open");
    assert!(!opener.is_owner());
    drop(opener);
    assert!(
        sut.open(&c.name, Access::ReadOnly).is_ok(),
        "opener drop must not remove"
    );
    drop(seg);
    assert!(
        sut.open(&c.name, Access::ReadOnly)
            .err()
            .expect("creator drop removes")
            .is_not_found()
    );

    let mut kept = sut.create(&c.name, &opts(4096)).expect("create again");
    kept.keep();
    assert!(!kept.is_owner());
    drop(kept);
    assert!(
        sut.open(&c.name, Access::ReadOnly).is_ok(),
        "keep must keep"
    );
    sut.unlink(&c.name).expect("unlink kept");
}

/// `name` and `/name` are one segment.
pub fn slash_is_optional<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "slash");
    let _seg = sut.create(&c.name, &opts(4096)).expect("create");
    let bare = SegmentName::new(c.name.bare()).unwrap();
    let opened = sut
        .open(&bare, Access::ReadOnly)
        .expect("open without slash");
    assert_eq!(opened.name(), &c.name);
}

/// Invalid names fail in `SegmentName::new`, before any backend call.
pub fn invalid_names_fail_before_syscalls<Sut: Backend>(_sut: &Sut) {
    let long = "n".repeat(crate::MAX_NAME_LEN + 1);
    for bad in [
        "",
        "/",
        "/a/b",
        "a/b/",
        ".",
        "..",
        "/.",
        "/..",
        "a\0b",
        long.as_str(),
    ] {
        match SegmentName::new(bad) {
            Err(Error::InvalidName { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{bad:?} must be refused, got {other:?}"),
        }
    }
}

/// Of eight threads creating one name at once, exactly one wins; the others get
/// `AlreadyExists`.
pub fn concurrent_create_one_wins<Sut: Backend + Sync>(sut: &Sut) {
    let c = Cleanup::new(sut, "race");
    let barrier = Barrier::new(8);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    sut.create(&c.name, &opts(4096)).map(|mut seg| {
                        seg.keep(); // keep it until every thread has tried
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one create wins: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(r.is_already_exists(), "{r}");
    }
}

/// The mode is applied exactly as asked, whatever the umask; info reports it and our uid.
pub fn mode_applied_exactly<Sut: Backend>(sut: &Sut) {
    for mode in [0o600, 0o640, 0o666, 0o400] {
        let c = Cleanup::new(sut, "mode");
        let seg = sut.create(&c.name, &opts(4096).mode(mode)).expect("create");
        let info = seg.info().expect("info");
        assert_eq!(info.mode, mode, "mode {mode:o} applied exactly");
        // SAFETY: geteuid has no preconditions.
        assert_eq!(info.uid, unsafe { libc::geteuid() });
        assert_eq!(sut.info(&c.name).expect("info by name").mode, mode);
    }
}

/// Setuid, setgid, sticky and unknown mode bits are refused with `InvalidMode`, and nothing is
/// made: no segment may ever carry them.
pub fn special_mode_bits_refused<Sut: Backend>(sut: &Sut) {
    for mode in [0o4777, 0o2600, 0o1600, 0o6600, 0o10600] {
        let c = Cleanup::new(sut, "badmode");
        let err = sut
            .create(&c.name, &opts(4096).mode(mode))
            .err()
            .unwrap_or_else(|| panic!("mode {mode:o} was accepted"));
        assert!(
            matches!(err, Error::InvalidMode { .. }),
            "mode {mode:o}: {err}"
        );
        assert!(
            sut.open(&c.name, Access::ReadOnly)
                .err()
                .expect("nothing made")
                .is_not_found(),
            "mode {mode:o} left a segment"
        );
    }
}

/// A handle removes only its own segment: after someone else removed it and a new segment was
/// made under the same name, the old owner's `unlink` fails with `Stale` and its drop leaves the
/// new one alone.
pub fn owner_leaves_a_successor_alone<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "successor");
    let first = sut.create(&c.name, &opts(4096)).expect("create");
    let _map = first.map().expect("map");
    let mut second_owner = sut
        .create(&c.name, &opts(4096).replace(true))
        .expect("replace");
    second_owner.keep();
    let mut first = first;
    let err = first.unlink().expect_err("unlink of a replaced segment");
    assert!(matches!(err, Error::Stale { .. }), "{err}");
    let again = sut
        .create(&c.name, &opts(4096).replace(true))
        .expect("replace again");
    drop(second_owner);
    let third = sut
        .open(&c.name, Access::ReadOnly)
        .expect("the newest stands");
    drop(third);
    drop(again); // the owner of what stands removes it
    assert!(
        sut.open(&c.name, Access::ReadOnly)
            .err()
            .expect("removed")
            .is_not_found()
    );
}

/// After another handle shrinks the object, copies past the new end are errors (never SIGBUS),
/// a new atomic view past it is refused, and `map` maps the new size. Run in a child process,
/// so that a SIGBUS fails the test instead of killing the harness.
pub fn shrink_is_an_error_not_sigbus<Sut: Backend>(sut: &Sut) {
    if !caps(sut).resizable {
        return;
    }
    let c = Cleanup::new(sut, "shrink");
    let seg = sut.create(&c.name, &opts(4 * 4096)).expect("create");
    let map = seg.map().expect("map");
    map.write_at(3 * 4096, b"tail")
        .expect("write before the shrink");
    let mut other = sut.open(&c.name, Access::ReadWrite).expect("open");
    other.resize(4096).expect("shrink");
    // SAFETY: the child uses only this test's handle and mapping, through system calls and
    // copies; it waits for no other thread.
    let ok = unsafe {
        in_child_process(|| {
            let mut buf = [0u8; 4];
            let read = map.read_at(3 * 4096, &mut buf);
            let view = map.atomics::<AtomicU32>(2 * 4096, 1);
            let remap = seg.map().map(|m| m.len());
            matches!(read, Err(Error::OutOfBounds { .. }))
                && matches!(view, Err(Error::OutOfBounds { .. } | Error::Stale { .. }))
                && remap.ok() == Some(4096)
                && map.read_at(0, &mut buf).is_ok()
        })
    };
    assert!(
        ok,
        "a copy, view or map after a shrink faulted or did not fail cleanly"
    );
}

/// Whatever the backend declares about resizing: where another program can reach the object
/// through a name in the file system (the path the kernel shows for the mapping in
/// `/proc/self/maps`: a file, a POSIX object in `/dev/shm`), it can shrink the object with
/// `ftruncate`, and copies past the new end must then be errors, never SIGBUS. Run in a child
/// process, so that a SIGBUS fails the test instead of killing the harness. An object with no
/// such name (System V, anything removed or anonymous) passes: no other program can shrink it.
pub fn shrink_behind_the_backends_back_is_an_error_not_sigbus<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "shrunk-behind");
    let seg = sut.create(&c.name, &opts(4 * 4096)).expect("create");
    let map = seg.map().expect("map");
    map.write_at(3 * 4096, b"tail")
        .expect("write before the shrink");
    let Some(file) = file_behind(map.as_ptr() as usize) else {
        return;
    };
    file.set_len(4096)
        .expect("shrink the file behind the mapping, as another program could");
    // SAFETY: the child uses only this test's mapping, through copies; it waits for no other
    // thread.
    let ok = unsafe {
        in_child_process(|| {
            let mut buf = [0u8; 4];
            map.read_at(3 * 4096, &mut buf).is_err()
                && map.write_at(3 * 4096, b"gone").is_err()
                && map.read_at(0, &mut buf).is_ok()
        })
    };
    assert!(
        ok,
        "after another program shrank the object (it is {} in the file system), a copy past \
         the new end faulted or did not fail: copies of a backend whose objects have a name \
         others can open need SIGBUS protection (`MapBacking::fd`), whatever it declares",
        c.name
    );
}

/// The file behind the mapping that starts at `addr`, opened for writing, when the kernel shows
/// it with a path that still names it (same inode); `None` for System V, removed or anonymous
/// objects, and where `/proc` cannot tell.
fn file_behind(addr: usize) -> Option<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let start = format!("{addr:x}-");
    let line = maps.lines().find(|l| l.starts_with(&start))?;
    // start-end perms offset dev inode path (the path may hold spaces)
    let mut fields = line.splitn(6, ' ');
    let inode: u64 = fields.nth(4)?.parse().ok()?;
    let path = fields.next()?.trim_start();
    if inode == 0 || !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        // The suite's own segment, of its own mode: another program of this user could.
        Err(e) => panic!("cannot open {path}, the file behind a mapping of the suite's: {e}"),
    };
    (file.metadata().ok()?.ino() == inode).then_some(file)
}

/// Resizing works where the backend says it does, and is `Unsupported` elsewhere.
pub fn resize_matches_capability<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "resize");
    let mut seg = sut.create(&c.name, &opts(4096)).expect("create");
    let result = seg.resize(8192);
    if caps(sut).resizable {
        result.expect("resize");
        assert_eq!(sut.open(&c.name, Access::ReadOnly).unwrap().size(), 8192);
    } else {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }
}

/// The attach count is reported where the backend says so, and counts every mapping.
pub fn attach_count_matches_capability<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "nattch");
    let seg = sut.create(&c.name, &opts(4096)).expect("create");
    let (_a, _b) = (seg.map().unwrap(), seg.map().unwrap());
    let mut info = seg.info().expect("info");
    if caps(sut).attach_count {
        // A process forked meanwhile by another test of this process inherits the two
        // attachments until it exits or execs: count again until it is gone (bounded).
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while info.nattch != Some(2) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            info = seg.info().expect("info");
        }
        assert_eq!(info.nattch, Some(2));
        assert!(caps(sut).tracks_pids);
        // SAFETY: getpid has no preconditions.
        assert_eq!(info.cpid, Some(unsafe { libc::getpid() }));
    } else {
        assert_eq!(info.nattch, None);
    }
}

/// `list` finds the segment, and `info` agrees with it.
pub fn list_finds_segment<Sut: Backend>(sut: &Sut) {
    let c = Cleanup::new(sut, "list");
    let seg = sut.create(&c.name, &opts(12345)).expect("create");
    let info = seg.info().expect("info");
    let listed = sut.list().expect("list");
    let found = listed
        .iter()
        .find(|i| (i.name.is_some() && i.name == info.name) || (i.id.is_some() && i.id == info.id))
        .unwrap_or_else(|| panic!("{} not in list", c.name));
    assert_eq!(found.size, 12345);
    assert_eq!(found.mode, info.mode);
    if caps(sut).keeps_names {
        assert_eq!(found.name.as_deref(), Some(c.name.as_str()));
    }
}

/// One conformance test: panics when the backend breaks the contract.
pub type Test<Sut> = fn(&Sut);

/// Expands to one `#[test]` per conformance test, each running it against the backend that
/// `$make` builds. Use it inside a module named for the backend, so that test names say which
/// backend they ran on (`posix::ownership_on_drop`).
///
/// The list of tests is written once, here: [`conformance::all`](crate::conformance::all) gives
/// the same list as functions, to run at run time.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@list each ($make));
    };
    // The one list: hands every test's name to the `@each` or `@all` arm.
    (@list $how:ident $args:tt) => {
        $crate::conformance_tests! { @$how $args;
            create_then_open_sees_same_bytes,
            bytes_cross_processes,
            signal_cross_processes,
            create_twice_already_exists,
            open_missing_not_found,
            unlink_then_open_not_found,
            mapping_outlives_handle_and_name,
            size_reported_equals_requested,
            size_zero_refused,
            size_over_limit_refused,
            read_only_refuses_writes,
            ownership_on_drop,
            slash_is_optional,
            invalid_names_fail_before_syscalls,
            concurrent_create_one_wins,
            mode_applied_exactly,
            special_mode_bits_refused,
            owner_leaves_a_successor_alone,
            shrink_is_an_error_not_sigbus,
            shrink_behind_the_backends_back_is_an_error_not_sigbus,
            resize_matches_capability,
            attach_count_matches_capability,
            list_finds_segment
        }
    };
    (@each ($make:expr); $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let sut = $make;
                $crate::conformance::$test(&sut);
            }
        )*
    };
    (@all ($sut:ty); $($test:ident),* $(,)?) => {
        vec![$((stringify!($test), $crate::conformance::$test::<$sut> as fn(&$sut))),*]
    };
}

/// Every conformance test with its name, for running the suite at run time (from an example, a
/// binary, or a harness of your own) rather than as `#[test]`s. The list is the one that
/// [`conformance_tests!`](crate::conformance_tests) turns into tests.
///
/// ```ignore
/// for (name, test) in shm_core::conformance::all::<my_crate::MyBackend>() {
///     test(&my_crate::MyBackend::new()); // panics when the backend breaks the contract
///     println!("ok {name}");
/// }
/// ```
pub fn all<Sut: Backend + Sync>() -> Vec<(&'static str, Test<Sut>)> {
    // The macro is this module's own (`#[macro_export]` only places it at the crate's root).
    conformance_tests!(@list all (Sut))
}
