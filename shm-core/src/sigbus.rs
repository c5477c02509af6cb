//! Copies that survive SIGBUS: a fault inside a guarded copy is absorbed and reported, never
//! fatal.
//!
//! A POSIX object that another process shrinks, or a sparse one on a full file system, raises
//! SIGBUS on the first touch of a page the file no longer (or cannot) back. [`copy`] marks the
//! mapping's range as guarded for the calling thread while it copies. A SIGBUS that the kernel
//! raised for an address inside that range is absorbed: the handler first sets the mapping's
//! fault flag, then replaces the faulting page with a private zero page, and the copy completes
//! on bytes that mean nothing. The caller learns of it from the flag and redoes the copy
//! through the descriptor. (Wayland compositors guard client buffers the same way.)
//!
//! # Threads
//!
//! The substitute page replaces the page for the whole process, not only for the thread whose
//! copy faulted. So the flag is the mapping's, not the thread's, and it is set before the page
//! is replaced: every copy through the same mapping, on any thread, reads the flag after it
//! copied, and one that may have touched a substitute page sees the flag and redoes its work
//! through the descriptor. Nobody is handed the substitute's zeros as data. What the flag
//! cannot reach is an atomic view of the mapping taken before the fault: it reads the private
//! zero page from then on (where, without the guard, it would have died of SIGBUS).
//!
//! # Other SIGBUS, and a program's own handler
//!
//! Everything else goes to the disposition that was there before the guard was installed,
//! and the guard stays armed:
//!
//! * a program's own handler (installed before the first guarded copy; in a Rust program
//!   that is at least the standard library's, which watches for stack overflows) is called
//!   with the signal, its `siginfo_t` and context (or the signal number alone, without
//!   `SA_SIGINFO`), inside ours: SIGBUS is blocked meanwhile, and its own `sa_mask` is not
//!   applied. If it resets SIGBUS to the default for a signal that a process sent (the
//!   standard library's does, expecting a fault to repeat and kill), the guard is put back;
//! * an ignored SIGBUS stays ignored when a process sent it (`kill -BUS`); a fault cannot be
//!   ignored, and kills the process as the kernel would have;
//! * under the default disposition the process dies of SIGBUS, as it would have without us.
//!
//! A fault counts as guarded only when the kernel raised it (`si_code > 0`) for an address in
//! the calling thread's guarded range; a SIGBUS sent by a process never does, whatever
//! `si_addr` reads. The handler is installed once, the first time a guarded copy runs. A
//! program that installs its own SIGBUS handler later replaces ours: unless it chains to the
//! one it replaced, guarded copies are plain ones again and a fault kills the process. One
//! that chains keeps the guard working, and is what goes back in place of a reset to the
//! default after a sent SIGBUS (not ours in its place).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, compiler_fence, fence};

thread_local! {
    /// The range a copy on this thread is guarding, `[start, end)` (empty when none), and the
    /// address of the mapping's fault flag.
    static GUARDED: std::cell::Cell<Guarded> = const {
        std::cell::Cell::new(Guarded { start: 0, end: 0, flag: std::ptr::null() })
    };
}

/// What the handler needs to know about this thread's copy.
#[derive(Clone, Copy)]
struct Guarded {
    start: usize,
    end: usize,
    /// The mapping's fault flag, alive while `start..end` is not empty.
    flag: *const AtomicBool,
}

/// What was installed before us, to hand other signals to. Set before our handler is.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();
/// Whether our handler is installed (decided once).
static INSTALLED: OnceLock<bool> = OnceLock::new();

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
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let Ok(page) = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) else {
            return false;
        };
        // SAFETY: an all-zero sigaction is a valid out-value.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // The previous disposition must be known before ours can run: read it first, then
        // install. (A signal between the two calls goes to the previous one, as before.)
        // SAFETY: reading the current disposition into a valid out-pointer.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return false;
        }
        let _ = PREVIOUS.set(Previous {
            action: previous,
            page,
        });
        // SAFETY: `ours()` is fully initialized; the old one was read above.
        unsafe { libc::sigaction(libc::SIGBUS, &ours(), std::ptr::null_mut()) == 0 }
    })
}

/// Our disposition of SIGBUS.
fn ours() -> libc::sigaction {
    // SAFETY: an all-zero sigaction is a valid value of a plain C struct.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialize (sigemptyset is
    // async-signal-safe).
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    action
}

/// The SIGBUS handler: absorbs a fault in this thread's guarded range, passes on any other.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only async-signal-safe work here: a thread-local cell (const-initialized, no destructor,
    // so no lazy set-up), atomic stores and loads, mmap, sigaction, raise.
    let Some(previous) = PREVIOUS.get() else {
        // Cannot happen (PREVIOUS is set before the handler is installed); die as by default.
        die_by_default();
        return;
    };
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let code = unsafe { (*info).si_code };
    // si_addr means something only for a signal the kernel raised for a fault.
    let kernel = code > 0;
    if kernel {
        // SAFETY: as above.
        let addr = unsafe { (*info).si_addr() } as usize;
        let guarded = GUARDED.with(std::cell::Cell::get);
        if addr >= guarded.start && addr < guarded.end && !guarded.flag.is_null() {
            // Tell every copy through this mapping before any of them can read the substitute.
            // SAFETY: the flag belongs to the mapping whose copy this thread is running; it
            // lives at least as long as the copy.
            unsafe { (*guarded.flag).store(true, Ordering::SeqCst) };
            let page = addr & !(previous.page - 1);
            // SAFETY: the page lies inside a mapping this thread is copying from or to (the
            // guarded range is a `Mapping`'s, alive for the copy); replacing it with a private
            // zero page changes only that mapping's memory, whose flag now says so.
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
                return;
            }
        }
    }
    // Not ours: what was there before.
    let handler = previous.action.sa_sigaction;
    if handler == libc::SIG_IGN && !kernel {
        // Sent by a process and ignored before we came: still ignored.
    } else if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // The default, or a fault that cannot be ignored: the process dies of SIGBUS as it
        // would have without us.
        die_by_default();
    } else {
        // What is installed now: ours, or a handler installed after ours that chained to it.
        let installed = current();
        if previous.action.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: with SA_SIGINFO the previous handler has this signature; it was
            // installed by someone in this process and stays valid.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: without SA_SIGINFO the previous handler takes the signal number only.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
        rearm_after(kernel, installed);
    }
}

/// The disposition of SIGBUS now (`None` if the kernel would not say).
fn current() -> Option<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid out-value.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction is async-signal-safe; reading into a valid out-pointer.
    (unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut now) } == 0).then_some(now)
}

/// After the previous handler ran: a handler that answers a SIGBUS it does not recognize by
/// restoring the default and returning (the standard library's own, which watches for stack
/// overflows, does so: for a fault, the faulting instruction then runs again and kills) would
/// disarm the guard for good when the signal was only sent (`kill -BUS`), which no instruction
/// repeats. Then what was installed when the signal came (`installed`: ours, or a program's
/// handler installed after ours that chained to it) goes back in place of the default. A
/// fault's reset stays (it is about to kill), as does anything else the handler installed.
fn rearm_after(kernel: bool, installed: Option<libc::sigaction>) {
    if kernel {
        return;
    }
    let back = match installed {
        Some(a) if a.sa_sigaction != libc::SIG_DFL => a,
        _ => ours(),
    };
    if current().is_some_and(|now| now.sa_sigaction == libc::SIG_DFL) {
        // SAFETY: sigaction is async-signal-safe; `back` is a disposition read from the
        // kernel or `ours()`, both fully initialized.
        unsafe { libc::sigaction(libc::SIGBUS, &back, std::ptr::null_mut()) };
    }
}

/// Restores the default disposition and raises SIGBUS again: it is blocked while this handler
/// runs and is delivered when the handler returns, killing the process. (A fault would also
/// re-run its instruction; the pending signal comes first.)
fn die_by_default() {
    // SAFETY: an all-zero sigaction with SIG_DFL (0) is the default disposition.
    let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
    default.sa_sigaction = libc::SIG_DFL;
    // SAFETY: sigaction and raise are async-signal-safe; `default` is initialized.
    unsafe {
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
        libc::raise(libc::SIGBUS);
    }
}

/// Copies `len` bytes from `src` to `dst` while a SIGBUS at an address in `[start, end)` is
/// absorbed. `faulted` is the mapping's fault flag: a fault in the range sets it before the
/// faulting page is replaced by a private zero page. Returns `Some(true)` when the copy ran and
/// the flag was still clear after it (the bytes are the mapping's), `Some(false)` when the flag
/// is set (this copy's fault, or another thread's in the same mapping: the bytes copied may be
/// a substitute's and mean nothing), and `None` when no guard could be installed (nothing was
/// copied).
///
/// # Safety
///
/// `src` is valid for reads and `dst` for writes of `len` bytes, they do not overlap, and
/// `[start, end)` is a mapping that stays mapped for the call, whose every direct user checks
/// `faulted` after touching it (its faulting pages are replaced).
pub(crate) unsafe fn copy(
    src: *const u8,
    dst: *mut u8,
    len: usize,
    start: usize,
    end: usize,
    faulted: &AtomicBool,
) -> Option<bool> {
    if !installed() {
        return None;
    }
    GUARDED.with(|g| {
        g.set(Guarded {
            start,
            end,
            flag: faulted,
        })
    });
    // The handler reads the cell: keep the store before the copy.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
    compiler_fence(Ordering::SeqCst);
    GUARDED.with(|g| {
        g.set(Guarded {
            start: 0,
            end: 0,
            flag: std::ptr::null(),
        })
    });
    Some(copied_clean(faulted))
}

/// After a copy through a mapping: true when no fault was absorbed in it so far.
///
/// Why one load suffices: the handler stores the flag before its `mmap` replaces the page, and
/// that `mmap` flushes the old translation from every CPU that runs a thread of this process
/// (an interrupt, which orders everything on that CPU) or reaches a thread that is not running
/// only through a context switch (which orders everything too). A copy that touched the
/// substitute did so after that flush on its CPU, and the fence keeps this load after the
/// copy's accesses, so the load sees the flag. On x86 the fence costs nothing.
pub(crate) fn copied_clean(faulted: &AtomicBool) -> bool {
    fence(Ordering::Acquire);
    !faulted.load(Ordering::Relaxed)
}
