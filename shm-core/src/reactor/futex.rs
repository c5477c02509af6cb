//! The futex system calls of the fallback waiter threads: `futex_waitv` on up to 128 words,
//! the 1 ms look when the kernel has none, and the private wake of a thread's bell.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often a waiter thread looks at its words when the kernel has no `futex_waitv`.
pub(super) const FALLBACK_POLL: Duration = Duration::from_millis(1);

/// `struct futex_waitv` of `linux/futex.h`.
#[repr(C)]
pub(super) struct WaitV {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: a 32-bit word.
pub(super) const SIZE_U32: u32 = 0x02;
/// `FUTEX2_PRIVATE`: this process only.
pub(super) const PRIVATE: u32 = 128;

impl WaitV {
    pub fn private(word: &AtomicU32, expected: u32) -> WaitV {
        WaitV {
            val: expected.into(),
            uaddr: word.as_ptr() as u64,
            flags: SIZE_U32 | PRIVATE,
            reserved: 0,
        }
    }

    /// A process-shared word (no private flag: the kernel keys it on the page).
    pub fn shared(word: *const AtomicU32, expected: u32) -> WaitV {
        WaitV {
            val: expected.into(),
            uaddr: word as u64,
            flags: SIZE_U32,
            reserved: 0,
        }
    }
}

/// Set once `futex_waitv` said `ENOSYS` (or the poll engine was asked for).
static NO_WAITV: AtomicBool = AtomicBool::new(false);

/// Looks at the words every [`FALLBACK_POLL`] from now on, instead of `futex_waitv`.
pub(super) fn use_poll() {
    NO_WAITV.store(true, Relaxed);
}

/// True once the waiter threads poll.
pub(super) fn polling() -> bool {
    NO_WAITV.load(Relaxed)
}

/// True when the kernel takes `futex_waitv` (it refuses an empty list with `EINVAL`; a kernel
/// without it, or a seccomp filter, says `ENOSYS`).
pub(super) fn has_waitv() -> bool {
    // SAFETY: an empty list: the kernel reads no memory and fails with EINVAL (or ENOSYS).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            std::ptr::null::<WaitV>(),
            0 as libc::c_long,
            0 as libc::c_long,
            std::ptr::null::<libc::timespec>(),
            libc::CLOCK_MONOTONIC as libc::c_long,
        )
    };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
}

/// Sleeps until any word of `list` may differ from its value, until `until`, or a spurious
/// wake-up. The first word is the caller's own bell.
pub(super) fn wait_any(list: &[WaitV], until: Option<Instant>) {
    if polling() {
        poll(list, until);
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let ts_ptr = match until {
        None => std::ptr::null(),
        Some(t) => {
            let left = t.saturating_duration_since(Instant::now());
            // SAFETY: clock_gettime writes one timespec, ours.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            let nanos = ts.tv_nsec as u64 + u64::from(left.subsec_nanos());
            ts.tv_sec = ts
                .tv_sec
                .saturating_add(left.as_secs().min(i64::MAX as u64 / 2) as libc::time_t)
                .saturating_add((nanos / 1_000_000_000) as libc::time_t);
            ts.tv_nsec = (nanos % 1_000_000_000) as libc::c_long;
            &ts as *const libc::timespec
        }
    };
    // SAFETY: `list` is an array of `list.len()` (at most 128) futex_waitv structs that
    // outlives the call; every address in it is a live, aligned 32-bit word (the caller's
    // own, or a registered one whose memory its entry keeps alive; one dropped since the
    // list was built is at worst unmapped, which the kernel reports as EFAULT). Flags 0,
    // an absolute CLOCK_MONOTONIC timeout or none.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            list.as_ptr(),
            list.len() as libc::c_long,
            0 as libc::c_long,
            ts_ptr,
            libc::CLOCK_MONOTONIC as libc::c_long,
        )
    };
    if rc == -1 {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS) => {
                use_poll();
                poll(list, until);
            }
            // A word unmapped since the list was built: the next list leaves it out.
            Some(libc::EFAULT) => std::thread::yield_now(),
            // EAGAIN (a word differs), ETIMEDOUT, EINTR: the caller looks.
            _ => {}
        }
    }
}

/// Without futex_waitv: sleep on the thread's own bell for a millisecond at most.
fn poll(list: &[WaitV], until: Option<Instant>) {
    let own = list[0].uaddr as *const u32;
    let mut left = FALLBACK_POLL;
    if let Some(t) = until {
        left = left.min(t.saturating_duration_since(Instant::now()));
    }
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: left.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the thread's own word lives in its table (the caller holds it); the timespec
    // outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            own,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            list[0].val as u32,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes the waiter thread sleeping on its own bell.
pub(super) fn wake_private(word: &AtomicU32) {
    // SAFETY: a live, aligned 32-bit word; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}
