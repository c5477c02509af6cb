//! Copies that survive SIGBUS: a fault inside a guarded copy is absorbed and reported, never
//! fatal.
//!
//! A POSIX object that another process shrinks, or a sparse one on a full file system, raises
//! SIGBUS on the first touch of a page the file no longer (or cannot) back. [`copy`] marks the
//! mapping's range as guarded for the calling thread while it copies; a SIGBUS inside that range
//! is handled by replacing the faulting page with a private zero page (the copy then completes,
//! on bytes that mean nothing) and noting the hit, so that the caller can redo the copy through
//! the descriptor and report what really happened. This is what Wayland compositors do for
//! client buffers. A SIGBUS anywhere else goes to the disposition that was there before (the
//! standard library's, the default), so this process dies of a real fault as it would have.
//!
//! The handler is installed once, the first time a guarded copy runs. An application that later
//! installs its own SIGBUS handler without chaining to ours turns these copies back into plain
//! ones: their faults then kill the process as before.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{Ordering, compiler_fence};

thread_local! {
    /// The range a copy on this thread is guarding: `[start, end)`, empty when none.
    static GUARDED: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Set by the handler when it absorbed a fault in the guarded range.
    static HIT: Cell<bool> = const { Cell::new(false) };
}

/// What was installed before us, to hand other faults to; `None` when installing failed.
static PREVIOUS: OnceLock<Option<Previous>> = OnceLock::new();

/// The previous disposition of SIGBUS and the page size, read once.
struct Previous {
    action: libc::sigaction,
    page: usize,
}

// SAFETY: `sigaction` is plain data (a handler address, flags, a mask); it is written once
// before the handler can run and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as for Sync.
unsafe impl Send for Previous {}

/// Installs the handler once; false when it could not be installed.
fn installed() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf has no preconditions.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
            // SAFETY: an all-zero sigaction is a valid value of a plain C struct.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: an all-zero sigaction is a valid out-value.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: `action.sa_mask` is a valid sigset_t to initialize.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // The previous disposition must be known before ours can run: read it first, then
            // install. (A fault between the two calls goes to the previous one, as before.)
            // SAFETY: reading the current disposition into a valid out-pointer.
            if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
                return None;
            }
            let stored = Previous {
                action: previous,
                page,
            };
            // SAFETY: `action` is fully initialized; the old one is not asked for again.
            if unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) } != 0 {
                return None;
            }
            Some(stored)
        })
        .is_some()
}

/// The SIGBUS handler: absorbs a fault in this thread's guarded range, passes on any other.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only async-signal-safe work here: thread-local cells (const-initialized, no destructor,
    // so no lazy set-up), one mmap, atomic loads.
    let Some(Some(previous)) = PREVIOUS.get() else {
        return;
    };
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = GUARDED.with(Cell::get);
    if addr >= start && addr < end {
        let page = addr & !(previous.page - 1);
        // SAFETY: the page lies inside a mapping this thread is copying from or to (the
        // guarded range is a `Mapping`'s, alive for the copy); replacing it with a private zero
        // page changes only that mapping's memory, which is flagged unusable for direct access
        // by the caller once it sees the hit.
        let p = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                previous.page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            HIT.with(|h| h.set(true));
            return;
        }
    }
    // Not ours: what was there before.
    let handler = previous.action.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Back to the default; returning re-runs the faulting instruction, which now kills the
        // process with SIGBUS as it would have without us.
        // SAFETY: an all-zero sigaction with SIG_DFL (0) is the default disposition.
        let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
        default.sa_sigaction = libc::SIG_DFL;
        // SAFETY: sigaction is async-signal-safe; `default` is initialized.
        unsafe { libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut()) };
    } else if previous.action.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the previous handler has this signature; it was installed by
        // someone in this process and stays valid.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// Copies `len` bytes from `src` to `dst` while a SIGBUS at an address in `[start, end)` is
/// absorbed. Returns `Some(true)` when the copy ran without a fault, `Some(false)` when a fault
/// was absorbed (the bytes copied are then meaningless, and the pages that faulted in the range
/// were replaced by private zero pages), and `None` when no guard could be installed (nothing
/// was copied).
///
/// # Safety
///
/// `src` is valid for reads and `dst` for writes of `len` bytes, they do not overlap, and
/// `[start, end)` is a mapping that stays mapped for the call, that no one else relies on
/// after a hit without checking for it (its faulting pages are replaced).
pub(crate) unsafe fn copy(
    src: *const u8,
    dst: *mut u8,
    len: usize,
    start: usize,
    end: usize,
) -> Option<bool> {
    if !installed() {
        return None;
    }
    HIT.with(|h| h.set(false));
    GUARDED.with(|g| g.set((start, end)));
    // The handler reads these cells: keep the stores before the copy and the loads after it.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
    compiler_fence(Ordering::SeqCst);
    GUARDED.with(|g| g.set((0, 0)));
    Some(!HIT.with(Cell::get))
}
