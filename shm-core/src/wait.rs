//! Cross-process wait and wake on a 32-bit word in shared memory.
//!
//! On Linux this is the futex system call *without* `FUTEX_PRIVATE_FLAG`, so that a waiter in one
//! process is woken by a writer in another: the kernel keys the wait on the physical page, not on
//! this process's address. Elsewhere a portable fallback polls with short sleeps.
//!
//! [`Signal`] adds what makes waiting cheap: the waiter spins for a while it learns from the
//! peer's answers ([`WaitStrategy::Hybrid`]), then announces that it sleeps in a second word, and
//! the writer makes the wake system call only when someone announced it. While the peer answers
//! quickly, no system call is made at all.
//!
//! Why a futex and not a doorbell file descriptor (a pipe, FIFO, Unix socket or eventfd, whose
//! wake-ups may carry the scheduler's "sync" hint, so that the woken process may run where the
//! waker was instead of on its own idle CPU): on this project's 2-vCPU VM a pipe doorbell was
//! faster than the futex in most runs (`shm bench`'s `posix_block_bell` measures it beside
//! `posix_block`), but a pipe can only reach the other process over a socket or through a FIFO
//! in the file system, and the one doorbell that can be found by name with nothing left behind,
//! a Unix datagram socket at an abstract address, was slower than the futex. See the README's
//! Performance section.

use std::hint::spin_loop;
use std::sync::atomic::{
    AtomicU32,
    Ordering::{Relaxed, SeqCst},
};
use std::time::{Duration, Instant};

use crate::{Error, Result, fence};

/// How [`Signal::wait_until`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WaitStrategy {
    /// Busy-wait with a pause hint: the lowest latency while both sides have a CPU of their own,
    /// and starvation when they share one.
    Spin,
    /// Sleep in the kernel at once: a system call on every wait and every wake.
    Block,
    /// Spin for a budget learned from the peer's recent answers (between [`HYBRID_SPIN_MIN`]
    /// and [`HYBRID_SPIN_MAX`], starting at [`HYBRID_SPIN`]), then sleep; the writer wakes only
    /// a peer that said it sleeps. While spinning it yields the CPU a few times, at doubling
    /// intervals (about 2, 4, 8, ... µs), so that a peer the scheduler put on the same CPU can
    /// answer without a storm of `sched_yield` calls. With one CPU available to this process it
    /// does not spin (that would only keep the peer from running): it hands the CPU over to the
    /// peer with `sched_yield` and looks again, for up to [`ONE_CPU_HANDOVER`], then sleeps.
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

/// The spin budget a new [`WaitStrategy::Hybrid`] signal starts with.
///
/// On the 2-vCPU VMs this project measures on, a futex wake of an idle vCPU costs 20 to 50 µs.
/// Spinning for about that long before sleeping means a wait never costs more than about twice
/// the best choice made in hindsight; spinning longer when the peer answers late in the window
/// makes sleeps, and their wake-up cost, rare while the peer runs.
pub const HYBRID_SPIN: Duration = Duration::from_micros(50);

/// The least a [`WaitStrategy::Hybrid`] signal spins (while more than one CPU is available):
/// about what a sleep and a wake cost on a quiet machine.
pub const HYBRID_SPIN_MIN: Duration = Duration::from_micros(20);

/// The most a [`WaitStrategy::Hybrid`] signal spins before it sleeps. Below a millisecond, so
/// that a waiter whose peer stopped uses no CPU after its first millisecond.
pub const HYBRID_SPIN_MAX: Duration = Duration::from_micros(500);

/// How long a [`WaitStrategy::Hybrid`] waiter with one CPU hands the CPU over to its peer
/// (`sched_yield`) before it sleeps.
pub const ONE_CPU_HANDOVER: Duration = Duration::from_micros(50);

/// What a wake-up may add to a sleep, at most, on the machines measured (an idle vCPU is woken
/// by the host): a sleep that ended within [`HYBRID_SPIN_MAX`] plus this was for an answer that
/// the longest spin would have caught.
const WAKE_COST: Duration = Duration::from_micros(50);

/// The first yield of a hybrid spin, after which the interval doubles.
const FIRST_YIELD: Duration = Duration::from_micros(2);

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
/// # Memory ordering
///
/// [`store`](Signal::store) is a sequentially consistent store, and every load of the value in
/// [`wait_until`](Signal::wait_until) and [`load`](Signal::load) is a sequentially consistent
/// load: a store releases, a load acquires. So when a waiter sees a value `v` (returned by
/// `wait_until`, or passed to its `done`), it also sees every write that the writer made before
/// `store(v)`, to shared memory or any other memory the two share, plain or atomic. Nothing is
/// promised about writes the writer makes after that `store`. The sleepers word is ordered with
/// the value in the same total order, so that no wake-up is lost: either the waiter sees the new
/// value before it sleeps, or the writer sees that it sleeps and wakes it.
///
/// # Timeouts
///
/// A wait that gives up fails with [`Error::TimedOut`], which names what was waited for: the
/// name given with [`named`](Signal::named) (`"the value"` by default) and how long.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Duration;
/// use shm_core::wait::{Signal, WaitStrategy};
/// let (value, sleepers) = (AtomicU32::new(0), AtomicU32::new(0));
/// let signal = Signal::new(&value, &sleepers, WaitStrategy::Hybrid).named("the answer");
/// std::thread::scope(|s| {
///     s.spawn(|| signal.store(7));
///     assert_eq!(signal.wait_until(|v| v == 7, Duration::from_secs(5)).unwrap(), 7);
/// });
/// let err = signal.wait_until(|v| v == 8, Duration::from_millis(10)).unwrap_err();
/// assert!(err.to_string().contains("the answer"), "{err}");
/// ```
#[derive(Debug)]
pub struct Signal<'a> {
    value: &'a AtomicU32,
    sleepers: &'a AtomicU32,
    strategy: WaitStrategy,
    what: &'a str,
    /// Hybrid's spin budget in nanoseconds, learned from the waits (0: never spin). Only this
    /// side's waits read and write it, so relaxed accesses suffice.
    budget: AtomicU32,
    /// Hybrid with one CPU for this process: hand the CPU over instead of spinning.
    one_cpu: bool,
    /// The sleepers pay for the writer's barrier (see [`crate::fence`]).
    asymmetric: bool,
}

impl Clone for Signal<'_> {
    /// A signal over the same words, starting from the spin budget this one has learned.
    fn clone(&self) -> Self {
        Self {
            value: self.value,
            sleepers: self.sleepers,
            strategy: self.strategy,
            what: self.what,
            budget: AtomicU32::new(self.budget.load(Relaxed)),
            one_cpu: self.one_cpu,
            asymmetric: self.asymmetric,
        }
    }
}

/// `d` in nanoseconds, as the budget stores it.
fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// How one hybrid wait went, for the budget to learn from.
enum Outcome {
    /// The value came while spinning, after this long.
    Spun(Duration),
    /// The waiter slept, and the whole wait took this long.
    Slept(Duration),
}

impl<'a> Signal<'a> {
    /// A signal over `value`, with waiters counted in `sleepers`.
    pub fn new(value: &'a AtomicU32, sleepers: &'a AtomicU32, strategy: WaitStrategy) -> Self {
        let one_cpu = strategy == WaitStrategy::Hybrid && single_cpu();
        let budget = match strategy {
            WaitStrategy::Hybrid if one_cpu => 0,
            WaitStrategy::Hybrid => nanos(HYBRID_SPIN),
            WaitStrategy::Spin | WaitStrategy::Block => 0,
        };
        Self {
            value,
            sleepers,
            strategy,
            what: "the value",
            budget: AtomicU32::new(budget),
            one_cpu,
            asymmetric: false,
        }
    }

    /// The same signal, with the barrier between a store and the look at the sleepers moved
    /// to the sleepers ([`crate::fence`]): a writer registered with `membarrier(2)` stores
    /// without a full barrier, and a waiter, once it said it sleeps, makes the writer run one
    /// (or, where it cannot, sleeps at most [`UNFENCED_SLEEP`](crate::fence::UNFENCED_SLEEP)
    /// at a time). Every process that writes or waits on these words must make its signal so,
    /// and so must every [`reactor::Waiter`](crate::reactor::Waiter) on them (it takes the
    /// flag from the signal it is made from).
    pub fn asymmetric(mut self) -> Self {
        self.asymmetric = true;
        self
    }

    /// True when made with [`asymmetric`](Self::asymmetric).
    pub fn is_asymmetric(&self) -> bool {
        self.asymmetric
    }

    /// The same signal, naming what it carries in its timeout errors ("the client's move").
    pub fn named(mut self, what: &'a str) -> Self {
        self.what = what;
        self
    }

    /// Its two words: the value, and the count of waiters that said they sleep. A waiter that
    /// sleeps elsewhere (`reactor::Waiter`, feature `async`) announces itself in the second.
    pub fn words(&self) -> (&'a AtomicU32, &'a AtomicU32) {
        (self.value, self.sleepers)
    }

    /// The strategy its waits use.
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// How long a hybrid wait spins now before it sleeps (zero for the other strategies, and
    /// for hybrid with one CPU).
    pub fn spin_budget(&self) -> Duration {
        Duration::from_nanos(u64::from(self.budget.load(Relaxed)))
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> u32 {
        self.value.load(SeqCst)
    }

    /// Stores `v` and wakes the waiters, making the system call only if one said it sleeps.
    #[inline]
    pub fn store(&self, v: u32) {
        // A full barrier between the two on both sides (or, asymmetric, one the waiter makes
        // the writer run): either the waiter sees the new value before it sleeps, or we see its
        // announcement here. No wake-up is lost.
        let sleepers = if self.asymmetric {
            fence::store_then_load(self.value, v, self.sleepers)
        } else {
            self.value.store(v, SeqCst);
            self.sleepers.load(SeqCst)
        };
        if sleepers != 0 {
            wake_all(self.value);
        }
    }

    /// Waits until `done(value)` holds and returns that value, or fails with
    /// [`Error::TimedOut`] (naming what it waited for) after `timeout`.
    pub fn wait_until(&self, mut done: impl FnMut(u32) -> bool, timeout: Duration) -> Result<u32> {
        let value = self.value;
        self.wait_with(
            &mut |seen: Option<u32>| {
                let v = seen.unwrap_or_else(|| value.load(SeqCst));
                done(v).then_some(v)
            },
            timeout,
        )
    }

    /// Waits as [`wait_until`](Self::wait_until) does, but while it spins it looks at
    /// `early()` instead of the word: other memory that tells sooner, and more cheaply, what
    /// the word is about to say. A channel's receiver spins on the next message's own sequence
    /// word, whose cache line the message brings anyway, rather than on the sender's count,
    /// whose line would then travel to the receiver and back on every message.
    ///
    /// Returns `Ok(None)` when `early()` held, `Ok(Some(v))` when `done(v)` held. The word
    /// itself is read about once a microsecond while spinning, and at every look while the
    /// waiter hands the CPU over or sleeps: the writer must still store the word (with
    /// [`store`](Self::store), which wakes sleepers) for every event `early()` would show.
    pub fn wait_until_or(
        &self,
        mut early: impl FnMut() -> bool,
        mut done: impl FnMut(u32) -> bool,
        timeout: Duration,
    ) -> Result<Option<u32>> {
        self.wait_with(
            &mut |seen: Option<u32>| {
                if early() {
                    return Some(None);
                }
                let v = seen?;
                done(v).then_some(Some(v))
            },
            timeout,
        )
    }

    /// The first phase of a spinning wait, to run inline before calling one: looks at `look`
    /// up to 64 times (about a microsecond and a half), with the pause hint
    /// between looks, and returns what it found. Looks once only when this signal does not
    /// spin (the block strategy, or hybrid with one CPU).
    ///
    /// A wait through [`wait_until_or`](Self::wait_until_or) spins the same way, but after
    /// the calls and checks that a wait with a timeout needs; a caller at the floor of a
    /// round trip (tens of nanoseconds) looks here first.
    #[inline(always)]
    pub fn spin_first<T>(&self, mut look: impl FnMut() -> Option<T>) -> Option<T> {
        let spins = match self.strategy {
            WaitStrategy::Spin => SPINS_PER_CLOCK,
            WaitStrategy::Hybrid if !self.one_cpu => SPINS_PER_CLOCK,
            _ => 1,
        };
        for _ in 0..spins {
            if let Some(t) = look() {
                return Some(t);
            }
            spin_loop();
        }
        None
    }

    /// The one wait every strategy runs. `look(None)` checks what spinning checks;
    /// `look(Some(v))` checks everything, with `v` the word as just read.
    fn wait_with<T>(
        &self,
        look: &mut impl FnMut(Option<u32>) -> Option<T>,
        timeout: Duration,
    ) -> Result<T> {
        // Every branch looks before it spins, yields or sleeps.
        match self.strategy {
            WaitStrategy::Block => self.sleep_until(look, Instant::now(), timeout),
            WaitStrategy::Spin => match self.spin(look, timeout, false) {
                Ok((t, _)) => Ok(t),
                Err(_) => Err(self.timed_out(timeout)),
            },
            WaitStrategy::Hybrid => {
                let budget = self.spin_budget().min(timeout);
                let start = if self.one_cpu {
                    match self.hand_over(look, ONE_CPU_HANDOVER.min(timeout)) {
                        Ok(t) => return Ok(t),
                        Err(start) => start,
                    }
                } else if budget.is_zero() {
                    Instant::now()
                } else {
                    match self.spin(look, budget, true) {
                        Ok((t, spent)) => {
                            if let Some(spent) = spent {
                                self.learn(Outcome::Spun(spent));
                            }
                            return Ok(t);
                        }
                        Err(start) => start,
                    }
                };
                let result = self.sleep_until(look, start, timeout);
                if result.is_ok() {
                    self.learn(Outcome::Slept(start.elapsed()));
                }
                result
            }
        }
    }

    /// Spins until `look` finds what it waits for, or `limit` has passed; yields the CPU at
    /// doubling intervals when `yields`. Returns what it found and, when the spin lasted long
    /// enough to look at the clock, how long it took; or, when `limit` passed, when it started.
    /// The clock is read only after the first [`SPINS_PER_CLOCK`] checks (a peer that answers
    /// at once costs no clock reads), and the word itself once per clock read.
    #[inline]
    fn spin<T>(
        &self,
        look: &mut impl FnMut(Option<u32>) -> Option<T>,
        limit: Duration,
        yields: bool,
    ) -> std::result::Result<(T, Option<Duration>), Instant> {
        // Only the spinning strategies get here: spin_first looks SPINS_PER_CLOCK times.
        if let Some(t) = self.spin_first(|| look(None)) {
            return Ok((t, None));
        }
        // The spins before count as nothing: about a microsecond.
        let start = Instant::now();
        let mut next_yield = FIRST_YIELD;
        loop {
            for _ in 0..SPINS_PER_CLOCK {
                if let Some(t) = look(None) {
                    return Ok((t, Some(start.elapsed())));
                }
                spin_loop();
            }
            if let Some(t) = look(Some(self.value.load(SeqCst))) {
                return Ok((t, Some(start.elapsed())));
            }
            let spent = start.elapsed();
            if spent >= limit {
                return Err(start);
            }
            if yields && spent >= next_yield {
                // The peer may be waiting for this very CPU: let it run. With nothing else to
                // run here the call returns at once.
                std::thread::yield_now();
                next_yield = spent * 2;
            }
        }
    }

    /// With one CPU: gives the CPU to the peer (`sched_yield`) and looks again, until `limit`.
    /// A peer that waits the same way is runnable, so the yield runs it at once, and a round
    /// trip costs two yields, less than the two sleeps and wakes of a pipe; a peer that sleeps
    /// leaves nothing to run, the yield returns at once, and after `limit` this side sleeps too.
    fn hand_over<T>(
        &self,
        look: &mut impl FnMut(Option<u32>) -> Option<T>,
        limit: Duration,
    ) -> std::result::Result<T, Instant> {
        let start = Instant::now();
        loop {
            if let Some(t) = look(Some(self.value.load(SeqCst))) {
                return Ok(t);
            }
            std::thread::yield_now();
            if start.elapsed() >= limit {
                return Err(start);
            }
        }
    }

    /// Adapts hybrid's spin budget to how the peer answered, as glibc's adaptive mutex adapts
    /// its spin count: an answer late in the spin, or after a sleep short enough that the
    /// longest spin would have caught it, means a longer spin would have saved a sleep and a
    /// wake (double it, up to the maximum); an answer that not even the longest spin would have
    /// caught means the peer was away and spinning only burnt the CPU (halve it, down to the
    /// minimum).
    ///
    /// Judging a sleep against the longest spin, not the current one, keeps two sides that both
    /// fell asleep from staying asleep: each answer then takes two wake-ups (20-50 µs each on
    /// a VM), longer than a short spin, and the spin must grow past that to catch it.
    fn learn(&self, outcome: Outcome) {
        let budget = self.budget.load(Relaxed);
        if budget == 0 {
            return;
        }
        let b = Duration::from_nanos(u64::from(budget));
        let next = match outcome {
            Outcome::Spun(t) if t > b / 2 => b * 2,
            Outcome::Spun(_) => return,
            Outcome::Slept(t) if t <= HYBRID_SPIN_MAX + WAKE_COST => b * 2,
            Outcome::Slept(_) => b / 2,
        };
        let next = next.clamp(HYBRID_SPIN_MIN, HYBRID_SPIN_MAX);
        self.budget.store(nanos(next), Relaxed);
    }

    fn timed_out(&self, after: Duration) -> Error {
        Error::TimedOut {
            after,
            waited_for: self.what.to_owned(),
        }
    }

    /// Announces a sleeper, then sleeps until `look` finds what it waits for. The word is
    /// read before `look` runs and the sleep is on that value: a store after the read ends
    /// the sleep at once, a store before it is one `look` sees.
    fn sleep_until<T>(
        &self,
        look: &mut impl FnMut(Option<u32>) -> Option<T>,
        start: Instant,
        timeout: Duration,
    ) -> Result<T> {
        if start.elapsed() >= timeout {
            // No time left to sleep (a spin took it all): one look, without announcing a
            // sleeper and making the writers run a barrier for nothing.
            return look(Some(self.value.load(SeqCst))).ok_or_else(|| self.timed_out(timeout));
        }
        self.sleepers.fetch_add(1, SeqCst);
        // The writer's barrier, where it stores without one: a wake-up it would miss is one
        // this end looks for at least every UNFENCED_SLEEP.
        let nap = if self.asymmetric && !fence::heavy() {
            fence::UNFENCED_SLEEP
        } else {
            Duration::MAX
        };
        let result = loop {
            let v = self.value.load(SeqCst);
            if let Some(t) = look(Some(v)) {
                break Ok(t);
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break Err(self.timed_out(timeout));
            }
            wait(self.value, v, Some(left.min(nap)));
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

    /// Two asymmetric signals played in turn by two threads that always sleep (block
    /// strategy), 20 000 times each way: the writers store without a full barrier, the
    /// sleepers make them run one. A lost wake-up leaves a sleeper asleep until its 10 s
    /// timeout, and the test fails: a store that does not look at the sleepers, or a look that
    /// reads the wrong word, fails at once. (The window the membarrier closes, a store still in
    /// the writer's store buffer, is a few nanoseconds wide: a run without the barrier passes
    /// here too, checked. This test guards the rest of the path.)
    #[test]
    fn asymmetric_signals_lose_no_wake_up() {
        const ROUNDS: u32 = 20_000;
        let words: [AtomicU32; 4] = Default::default();
        let ping = Signal::new(&words[0], &words[1], WaitStrategy::Block).asymmetric();
        let pong = Signal::new(&words[2], &words[3], WaitStrategy::Block).asymmetric();
        let long = Duration::from_secs(10);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=ROUNDS {
                    ping.wait_until(|v| v == i, long).expect("a ping was lost");
                    pong.store(i);
                }
            });
            for i in 1..=ROUNDS {
                ping.store(i);
                pong.wait_until(|v| v == i, long).expect("a pong was lost");
            }
        });
        assert_eq!(words[1].load(SeqCst) + words[3].load(SeqCst), 0);
    }

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
            assert!(err.to_string().contains("the value"), "{strategy}: {err}");
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

    /// `wait_until_or` ends on the early condition without the word, on the word without the
    /// early condition (a writer that only stores the word, as a closing sender does), and
    /// times out with neither, with every strategy.
    #[test]
    fn waits_on_early_memory_or_the_word() {
        for strategy in [
            WaitStrategy::Spin,
            WaitStrategy::Block,
            WaitStrategy::Hybrid,
        ] {
            let (v, s, early) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
            let sig = Signal::new(&v, &s, strategy);
            let t = Duration::from_secs(5);
            let wait = || {
                sig.wait_until_or(|| early.load(SeqCst) == 1, |x| x == 7, t)
                    .unwrap()
            };
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    std::thread::sleep(Duration::from_millis(5));
                    early.store(1, SeqCst);
                    // The writer stores the word too, as the contract asks: it wakes a
                    // blocked waiter.
                    sig.store(1);
                });
                assert_eq!(wait(), None, "{strategy}: early");
            });
            early.store(0, SeqCst);
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    std::thread::sleep(Duration::from_millis(5));
                    sig.store(7);
                });
                assert_eq!(wait(), Some(7), "{strategy}: the word");
            });
            sig.store(0);
            let err = sig
                .wait_until_or(|| false, |x| x == 7, Duration::from_millis(20))
                .unwrap_err();
            assert!(matches!(err, Error::TimedOut { .. }), "{strategy}: {err}");
            assert_eq!(s.load(SeqCst), 0, "{strategy}: no sleeper left counted");
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

    /// Both threads pinned to one CPU before they make their signals: hybrid hands the CPU
    /// over instead of spinning, and the game goes on, also when one side is slow to answer.
    #[cfg(target_os = "linux")]
    #[test]
    fn hybrid_with_one_cpu_hands_over() {
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
        let words = &words;
        std::thread::scope(|s| {
            s.spawn(|| {
                pin_to_first_cpu();
                let a = Signal::new(&words[0], &words[1], WaitStrategy::Hybrid);
                let b = Signal::new(&words[2], &words[3], WaitStrategy::Hybrid);
                assert!(a.one_cpu && a.spin_budget().is_zero());
                for i in 0..500u32 {
                    a.store(2 * i + 1);
                    b.wait_until(|x| x == 2 * i + 2, Duration::from_secs(10))
                        .unwrap();
                }
            });
            s.spawn(|| {
                pin_to_first_cpu();
                let a = Signal::new(&words[0], &words[1], WaitStrategy::Hybrid);
                let b = Signal::new(&words[2], &words[3], WaitStrategy::Hybrid);
                for i in 0..500u32 {
                    a.wait_until(|x| x == 2 * i + 1, Duration::from_secs(10))
                        .unwrap();
                    if i % 100 == 0 {
                        // Longer than the hand-over: the other side falls asleep.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    b.store(2 * i + 2);
                }
            });
        });
        assert_eq!(words[2].load(SeqCst), 1000);
        assert_eq!((words[1].load(SeqCst), words[3].load(SeqCst)), (0, 0));
    }

    /// The budget stays within its bounds whatever the waits teach it.
    #[test]
    fn hybrid_budget_stays_within_bounds() {
        let (v, s) = (AtomicU32::new(0), AtomicU32::new(0));
        let sig = Signal::new(&v, &s, WaitStrategy::Hybrid);
        if sig.one_cpu {
            return;
        }
        for _ in 0..20 {
            sig.learn(Outcome::Slept(Duration::from_secs(1)));
        }
        assert_eq!(sig.spin_budget(), HYBRID_SPIN_MIN);
        // Answers after two wake-ups (a sleep-sleep rhythm): the spin grows out of it.
        for _ in 0..20 {
            sig.learn(Outcome::Slept(Duration::from_micros(120)));
        }
        assert_eq!(sig.spin_budget(), HYBRID_SPIN_MAX);
        sig.learn(Outcome::Spun(Duration::from_micros(1)));
        assert_eq!(sig.spin_budget(), HYBRID_SPIN_MAX);
    }
}
