//! Cross-process wait and wake on a 32-bit word in shared memory.
//!
//! On Linux this is the futex system call *without* `FUTEX_PRIVATE_FLAG`, so that a waiter in one
//! process is woken by a writer in another: the kernel keys the wait on the physical page, not on
//! this process's address. Elsewhere a portable fallback polls with short sleeps.
//!
//! [`Signal`] adds what makes waiting cheap: the waiter spins briefly ([`WaitStrategy::Hybrid`]),
//! then announces that it sleeps in a second word, and the writer makes the wake system call only
//! when someone announced it. While the peer answers quickly, no system call is made at all.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How [`Signal::wait_until`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WaitStrategy {
    /// Busy-wait with a pause hint: the lowest latency while both sides have a CPU of their own,
    /// and starvation when they share one.
    Spin,
    /// Sleep in the kernel at once: a system call on every wait and every wake.
    Block,
    /// Spin for [`HYBRID_SPIN`], then sleep; the writer wakes only a peer that said it sleeps.
    /// While spinning it yields the CPU now and then (about every microsecond), so that a peer
    /// the scheduler put on the same CPU can answer. With one CPU available to this process it
    /// sleeps at once, since spinning would only keep the peer from running.
    #[default]
    Hybrid,
}

impl std::str::FromStr for WaitStrategy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "spin" => Ok(Self::Spin),
            "block" => Ok(Self::Block),
            "hybrid" => Ok(Self::Hybrid),
            _ => Err(format!(
                "unknown wait strategy {s:?}: expected spin, block or hybrid"
            )),
        }
    }
}

impl std::fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Spin => "spin",
            Self::Block => "block",
            Self::Hybrid => "hybrid",
        })
    }
}

/// How long [`WaitStrategy::Hybrid`] spins before it sleeps: about what a sleep and a wake
/// cost together, so that spinning never costs more than twice the best choice.
pub const HYBRID_SPIN: Duration = Duration::from_micros(5);

/// Checks of the value between two looks at the clock while spinning: with the pause hint,
/// about a microsecond and a half, longer than a peer on another core takes to answer.
const SPINS_PER_CLOCK: u32 = 64;

/// Sleeps until `word` may no longer hold `expected`, `timeout` passes, or a spurious wake.
///
/// Returns at once when `word != expected`. Returns `false` only when the timeout passed.
/// Callers loop on their own condition.
#[doc(alias = "futex")]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    sys::wait(word, expected, timeout)
}

/// Wakes up to `count` waiters sleeping on `word`, in any process.
pub fn wake(word: &AtomicU32, count: u32) {
    sys::wake(word, count)
}

/// Wakes every waiter sleeping on `word`, in any process.
pub fn wake_all(word: &AtomicU32) {
    sys::wake(word, i32::MAX as u32)
}

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        mod sys {
            use std::sync::atomic::AtomicU32;
            use std::time::Duration;

            pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
                let ts = timeout.map(|t| libc::timespec {
                    tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                });
                let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
                // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAIT (without the private
                // flag, so that other processes sharing the page can wake us) only reads it; the
                // timespec outlives the call. Errors (EAGAIN: value changed, EINTR) need no
                // handling: the caller re-checks its condition.
                let rc = unsafe {
                    libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr)
                };
                !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
            }

            pub fn wake(word: &AtomicU32, count: u32) {
                // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE does not touch memory.
                unsafe {
                    libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count.min(i32::MAX as u32));
                }
            }
        }
    } else {
        mod sys {
            use std::sync::atomic::{AtomicU32, Ordering};
            use std::time::{Duration, Instant};

            /// Portable fallback: poll with short sleeps (no cross-process wake primitive).
            pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
                let start = Instant::now();
                let mut nap = Duration::from_micros(1);
                while word.load(Ordering::SeqCst) == expected {
                    if let Some(t) = timeout {
                        if start.elapsed() >= t {
                            return false;
                        }
                    }
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_micros(200));
                }
                true
            }

            pub fn wake(_word: &AtomicU32, _count: u32) {}
        }
    }
}

/// A 32-bit value that one side writes and another waits on, across processes, with a second
/// word in which waiters announce that they sleep.
///
/// Both words live in shared memory (take them from [`Mapping::atomics`](crate::Mapping::atomics)).
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Duration;
/// use shm_core::wait::{Signal, WaitStrategy};
/// let (value, sleepers) = (AtomicU32::new(0), AtomicU32::new(0));
/// let signal = Signal::new(&value, &sleepers, WaitStrategy::Hybrid);
/// std::thread::scope(|s| {
///     s.spawn(|| signal.store(7));
///     assert_eq!(signal.wait_until(|v| v == 7, Duration::from_secs(5)).unwrap(), 7);
/// });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Signal<'a> {
    value: &'a AtomicU32,
    sleepers: &'a AtomicU32,
    strategy: WaitStrategy,
    spin: Duration,
}

impl<'a> Signal<'a> {
    /// A signal over `value`, with waiters counted in `sleepers`.
    pub fn new(value: &'a AtomicU32, sleepers: &'a AtomicU32, strategy: WaitStrategy) -> Self {
        let spin = match strategy {
            WaitStrategy::Hybrid if single_cpu() => Duration::ZERO,
            _ => HYBRID_SPIN,
        };
        Self {
            value,
            sleepers,
            strategy,
            spin,
        }
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> u32 {
        self.value.load(SeqCst)
    }

    /// Stores `v` and wakes the waiters, making the system call only if one said it sleeps.
    #[inline]
    pub fn store(&self, v: u32) {
        self.value.store(v, SeqCst);
        // SeqCst on both sides: either the waiter sees the new value before it sleeps, or we
        // see its announcement here. No wake-up is lost.
        if self.sleepers.load(SeqCst) != 0 {
            wake_all(self.value);
        }
    }

    /// Waits until `done(value)` holds and returns that value, or fails with
    /// [`Error::TimedOut`] after `timeout`.
    pub fn wait_until(&self, mut done: impl FnMut(u32) -> bool, timeout: Duration) -> Result<u32> {
        let v = self.value.load(SeqCst);
        if done(v) {
            return Ok(v);
        }
        let (spin_for, yields) = match self.strategy {
            WaitStrategy::Spin => (timeout, false),
            WaitStrategy::Hybrid => (self.spin, true),
            WaitStrategy::Block => (Duration::ZERO, false),
        };
        // Read while the peer is still answering: it costs the wait nothing.
        let start = Instant::now();
        if spin_for.is_zero() {
            return self.sleep_until(&mut done, start, timeout);
        }
        loop {
            for _ in 0..SPINS_PER_CLOCK {
                let v = self.value.load(SeqCst);
                if done(v) {
                    return Ok(v);
                }
                spin_loop();
            }
            if start.elapsed() >= spin_for {
                break;
            }
            if yields {
                // The peer may be waiting for this very CPU: let it run. With nothing else to
                // run here the call returns at once.
                std::thread::yield_now();
            }
        }
        if self.strategy == WaitStrategy::Spin {
            return Err(Error::TimedOut { after: timeout });
        }
        self.sleep_until(&mut done, start, timeout)
    }

    fn sleep_until(
        &self,
        done: &mut impl FnMut(u32) -> bool,
        start: Instant,
        timeout: Duration,
    ) -> Result<u32> {
        self.sleepers.fetch_add(1, SeqCst);
        let result = loop {
            let v = self.value.load(SeqCst);
            if done(v) {
                break Ok(v);
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break Err(Error::TimedOut { after: timeout });
            }
            wait(self.value, v, Some(left));
        };
        self.sleepers.fetch_sub(1, SeqCst);
        result
    }
}

/// True when this process may run on one CPU only (its affinity mask, or the machine).
fn single_cpu() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_without_a_writer() {
        let (v, s) = (AtomicU32::new(0), AtomicU32::new(0));
        for strategy in [
            WaitStrategy::Spin,
            WaitStrategy::Block,
            WaitStrategy::Hybrid,
        ] {
            let sig = Signal::new(&v, &s, strategy);
            let err = sig
                .wait_until(|x| x == 1, Duration::from_millis(20))
                .unwrap_err();
            assert!(matches!(err, Error::TimedOut { .. }), "{strategy}: {err}");
            assert_eq!(s.load(SeqCst), 0);
        }
    }

    #[test]
    fn ping_pong_between_threads() {
        for strategy in [
            WaitStrategy::Spin,
            WaitStrategy::Block,
            WaitStrategy::Hybrid,
        ] {
            let words: [AtomicU32; 4] = Default::default();
            let a = Signal::new(&words[0], &words[1], strategy);
            let b = Signal::new(&words[2], &words[3], strategy);
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0..1000u32 {
                        a.store(2 * i + 1);
                        b.wait_until(|x| x == 2 * i + 2, Duration::from_secs(5))
                            .unwrap();
                    }
                });
                for i in 0..1000u32 {
                    a.wait_until(|x| x == 2 * i + 1, Duration::from_secs(5))
                        .unwrap();
                    b.store(2 * i + 2);
                }
            });
            assert_eq!(b.load(), 2000, "{strategy}");
        }
    }

    /// Both threads on one CPU that the signals do not know about (made before pinning, so
    /// they spin): hybrid waits yield and sleep, and the game goes on.
    #[cfg(target_os = "linux")]
    #[test]
    fn hybrid_on_a_shared_cpu_does_not_starve() {
        fn pin_to_first_cpu() {
            // SAFETY: zeroed cpu_set_t is the empty set; the calls read and write only `set`.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set);
                let first = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set));
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first.unwrap_or(0), &mut one);
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one);
            }
        }
        let words: [AtomicU32; 4] = Default::default();
        let a = Signal::new(&words[0], &words[1], WaitStrategy::Hybrid);
        let b = Signal::new(&words[2], &words[3], WaitStrategy::Hybrid);
        std::thread::scope(|s| {
            s.spawn(|| {
                pin_to_first_cpu();
                for i in 0..500u32 {
                    a.store(2 * i + 1);
                    b.wait_until(|x| x == 2 * i + 2, Duration::from_secs(10))
                        .unwrap();
                }
            });
            s.spawn(|| {
                pin_to_first_cpu();
                for i in 0..500u32 {
                    a.wait_until(|x| x == 2 * i + 1, Duration::from_secs(10))
                        .unwrap();
                    b.store(2 * i + 2);
                }
            });
        });
        assert_eq!(b.load(), 1000);
        assert_eq!((words[1].load(SeqCst), words[3].load(SeqCst)), (0, 0));
    }
}
