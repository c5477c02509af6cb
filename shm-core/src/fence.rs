//! Asymmetric fences: the writer of a signal stores without a full barrier, its sleepers pay.
//!
//! A writer that stores a value and then looks whether anyone sleeps on it, and a waiter that
//! says it sleeps and then looks at the value, must each put a full barrier between their
//! store and their load, or both may miss the other (the waiter sleeps on a value that has
//! changed, and nobody wakes it). On x86 that barrier is a locked instruction that waits for
//! every store still in flight, cache misses included: in a publisher writing a message every
//! few tens of nanoseconds, it was a third of the time per message.
//!
//! Writers store a message far more often than waiters fall asleep, so the cost can move to the
//! waiter: a process that registered with `membarrier(2)` (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`)
//! keeps only a compiler barrier between its store and its load ([`store_then_load`]), and a
//! waiter, after it announced itself, makes every registered process run a full barrier
//! ([`heavy`], `MEMBARRIER_CMD_GLOBAL_EXPEDITED`, a few microseconds). Then either the
//! writer's store happened before that barrier, and the waiter's next look sees it, or the
//! writer's load of the sleepers happens after it, and sees the announcement.
//!
//! Both sides of a signal must agree: a signal whose sleepers run [`heavy`] is made with
//! [`Signal::asymmetric`](crate::wait::Signal::asymmetric). Where the kernel has no such
//! command (or a filter refuses it), a writer keeps its full barrier, and a waiter that cannot
//! run [`heavy`] sleeps at most [`UNFENCED_SLEEP`] at a time, looking again after each.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering, compiler_fence};
use std::time::Duration;

/// The longest a waiter that could not run [`heavy`] sleeps before it looks again: a wake-up
/// it missed costs it at most this much.
pub const UNFENCED_SLEEP: Duration = Duration::from_millis(1);

/// True when this process is registered for the waiters' barriers (registered at the first
/// call, once for the process): its stores to an asymmetric signal may then skip the full
/// barrier. An end calls it before its peers can see it, so that no waiter's barrier comes
/// between its registration and its first store.
#[inline]
pub fn registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let done = sys::membarrier(sys::REGISTER_GLOBAL_EXPEDITED);
        // What this process wrote before it registered is ordered before its light stores.
        std::sync::atomic::fence(Ordering::SeqCst);
        done
    })
}

/// Makes every running thread of every registered process run a full memory barrier; false
/// when the kernel refuses (the caller then must not sleep for long).
pub fn heavy() -> bool {
    sys::membarrier(sys::GLOBAL_EXPEDITED)
}

/// Stores `v` in `word`, then loads `sleepers`, ordered as two sequentially consistent
/// operations are against a waiter of an asymmetric signal: with only a compiler barrier
/// between them when this process is [`registered`], with a full one otherwise.
#[inline]
pub fn store_then_load(word: &AtomicU32, v: u32, sleepers: &AtomicU32) -> u32 {
    if registered() {
        word.store(v, Ordering::Release);
        // The compiler keeps the load after the store; the CPU may not, and the waiter's
        // `heavy` covers that.
        compiler_fence(Ordering::SeqCst);
        sleepers.load(Ordering::Relaxed)
    } else {
        word.store(v, Ordering::SeqCst);
        sleepers.load(Ordering::SeqCst)
    }
}

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        mod sys {
            /// `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (linux/membarrier.h).
            pub const GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
            /// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`.
            pub const REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

            /// True when the command succeeded.
            pub fn membarrier(cmd: libc::c_int) -> bool {
                // SAFETY: membarrier takes no pointers; with flags 0 and cpu_id 0 these two
                // commands only register the process or make the kernel run barriers.
                unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
            }
        }
    } else {
        mod sys {
            pub const GLOBAL_EXPEDITED: i32 = 0;
            pub const REGISTER_GLOBAL_EXPEDITED: i32 = 0;

            /// No such call here: writers keep full barriers, waiters sleep in short steps.
            pub fn membarrier(_cmd: i32) -> bool {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the kernel says it has the commands (every Linux since 4.16, unless a filter
    /// hides them), a process registers and a waiter's barrier succeeds; a store through the
    /// light path lands.
    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_registers_and_runs_the_waiters_barrier() {
        // SAFETY: MEMBARRIER_CMD_QUERY (0) takes no pointers and changes nothing.
        let commands = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) };
        if commands < 0 || commands & i64::from(sys::GLOBAL_EXPEDITED) == 0 {
            eprintln!(
                "skipped: this kernel (or a seccomp filter) offers no membarrier GLOBAL_EXPEDITED ({commands})"
            );
            return;
        }
        assert!(registered(), "membarrier registration refused");
        assert!(heavy(), "membarrier(GLOBAL_EXPEDITED) refused");
        let (w, s) = (AtomicU32::new(0), AtomicU32::new(3));
        assert_eq!(store_then_load(&w, 9, &s), 3);
        assert_eq!(w.load(Ordering::SeqCst), 9);
    }
}
