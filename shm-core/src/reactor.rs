//! Waiting for shared-memory words without a thread per wait (feature `async`, Linux): the
//! process-wide waiter behind every future and wait set of the workspace.
//!
//! A [`Registration`] asks: wake this [`Waker`] once the 32-bit word at this address no
//! longer holds this value, once this deadline passes, or once this [`Watch`] says the peer
//! died. A [`Waiter`] drives one such wait for a [`Signal`]: it announces itself in the
//! signal's sleepers word (so that the writer makes the wake system call), reads the value,
//! checks the caller's condition once more, and registers.
//!
//! # How: two threads, whatever the number of waits
//!
//! The writer of a word does what it does for a blocking waiter: stores, then `futex_wake`s
//! the word (process-shared, so no private flag). Nothing new is asked of the peer, which may
//! be a blocking program. On this side, the engine is chosen once per process
//! ([`engine`]):
//!
//! - **[`Engine::Uring`]** (Linux 6.7 or later, io_uring allowed): **one waiter thread**
//!   holds every registered word as an `IORING_OP_FUTEX_WAIT` request in one io_uring, however
//!   many words (10 000 in the tests), and sleeps in `io_uring_enter` until a request
//!   completes (the peer's `futex_wake` completes it in the kernel), the nearest deadline
//!   passes, or its bell rings. Only that thread submits, so the kernel's completion work
//!   runs there and never interrupts an executor's thread: a registering thread queues its
//!   request, bumps the thread's bell (a private futex word on which the thread keeps a
//!   futex wait in the same ring) and wakes it; the thread submits the wait and sleeps again.
//!   A registration dropped before it fired has its request cancelled
//!   (`IORING_OP_ASYNC_CANCEL`) the same way.
//! - **[`Engine::Waitv`]** (Linux 5.16 or later, where io_uring cannot be had: refused by a
//!   seccomp filter, as in common container runtimes, or by `kernel.io_uring_disabled`):
//!   waiter threads that each sleep on up to [`WORDS_PER_THREAD`] words and their bell in one
//!   `futex_waitv` call (the kernel takes 128 words at most), made as the waits need them: one
//!   thread per 127 words waited on at once.
//! - **[`Engine::Poll`]** (no `futex_waitv` either, `ENOSYS`): the same threads look at their
//!   words every millisecond.
//!
//! Plus, with every engine, **one watcher thread**, made with the first [`Watch`]: every
//! [`WATCH_INTERVAL`] while any registration watches a peer, it asks each distinct peer once
//! whether it lives (however many words wait on it) and fires the registrations of the dead.
//! It is a thread of its own so that a slow look at a peer (a `/proc` read) never delays a
//! wake. So with io_uring the reactor makes **two threads in all**, whatever the number of
//! waits (`threads()` counts them), and both sleep without a timeout while nothing waits.
//!
//! `SHM_REACTOR=uring|waitv|poll` in the environment chooses the engine (falling back as
//! above when the kernel cannot serve it); the tests run every engine that way.
//!
//! # Cost
//!
//! - **A wait that registers**: a lock, a queued request and a private `futex_wake` of the
//!   waiter thread, which wakes, submits the request (one `io_uring_enter`) and sleeps again.
//!   A wait that ends before it must sleep (the futures spin briefly first) registers
//!   nothing.
//! - **A wake**: the peer's `futex_wake` (which it makes for a blocking waiter too), the
//!   waiter thread's wake-up in `io_uring_enter`, a lock, then the [`Waker`]: one thread
//!   wake-up more than a blocking wait, as any waker thread costs.
//! - **A wait dropped before it fired**: a lock, a queued cancel and a wake of the thread.
//! - **Idle**: nothing but the watcher's look at each distinct peer every 40 ms.
//!
//! `cargo test -p shm-channel --features async --release --test async_many --
//! --include-ignored --nocapture` measures them; shm-channel's front page has the figures.
//!
//! # Why io_uring
//!
//! A thread per wait is what this module exists to avoid. `futex_waitv` alone takes at most
//! 128 words per sleeping thread. A doorbell (an eventfd, a pipe, a Unix socket, or one futex
//! word per process) that every writer rings would change what the peer does on every
//! message, and the peer may be a blocking program of an older version that only
//! `futex_wake`s its word. io_uring's futex wait is the one kernel interface that sleeps on
//! any number of process-shared futex words in one thread and is woken by the peer's plain
//! `futex_wake`. Where it is refused, `futex_waitv` keeps every guarantee but the thread count.
//!
//! A child made by `fork` has none of its parent's threads nor its ring: its first
//! registration makes threads (and a ring) of its own. The parent's registrations it
//! inherited are never served there: drop them.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::wait::Signal;

mod fired;
mod futex;
mod process;
mod shards;
mod table;
mod uring;
mod watch;

pub use fired::{Fired, Watch};
pub use process::Engine;

pub use shards::WORDS_PER_THREAD;
pub use watch::WATCH_INTERVAL;

use table::{Entry, Table};

/// The engine this process's reactor uses (chosen at the first call or registration).
pub fn engine() -> Engine {
    process::choose(&mut process::process())
}

/// Threads the reactor made in this process: its waiter threads and its watcher.
pub fn threads() -> usize {
    process::process().threads
}

/// Registrations held now in this process (every one is dropped with its future).
pub fn registered() -> usize {
    process::tables().iter().map(|t| t.load.load(SeqCst)).sum()
}

/// A registered word: its [`Waker`] is woken once, when the registration fires. Dropping it
/// removes it (cancellation leaves nothing behind, in this process or in the kernel).
pub struct Registration {
    table: Arc<Table>,
    id: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fired", &self.fired())
            .finish()
    }
}

impl Registration {
    /// Registers `word`: `waker` is woken once `word` may no longer hold `expected`, once
    /// `deadline` passes, or once `watch` says its peer died.
    ///
    /// Fails only when a thread was needed and could not be made.
    ///
    /// # Safety
    ///
    /// `word` must stay valid (mapped, readable) for as long as `keep` lives: the waiter
    /// thread reads it, under its lock, until the registration is dropped, and holds a clone
    /// of `keep` until then.
    pub unsafe fn new(
        word: &AtomicU32,
        expected: u32,
        waker: &Waker,
        deadline: Option<Instant>,
        watch: Option<Arc<dyn Watch>>,
        keep: Arc<dyn Any + Send + Sync>,
    ) -> std::io::Result<Registration> {
        let watch_key = match watch {
            Some(w) => Some(watch::watch_peer(w)?),
            None => None,
        };
        let table = match process::place() {
            Ok(t) => t,
            Err(e) => {
                if let Some(key) = watch_key {
                    watch::unwatch_peer(key);
                }
                return Err(e);
            }
        };
        let id = table.insert(Entry {
            word,
            expected,
            waker: waker.clone(),
            deadline,
            watch_key,
            fired: None,
            in_kernel: false,
            _keep: keep,
        });
        // After the entry is in: a thread that looked before sees its bell changed.
        table.ring();
        Ok(Registration { table, id })
    }

    /// Why it fired, or `None` while it waits.
    pub fn fired(&self) -> Option<Fired> {
        self.table.lock().get_mut(self.id).and_then(|e| e.fired)
    }

    /// While it waits, makes `waker` the one woken (a task may move between threads);
    /// returns why it fired otherwise.
    pub fn update(&self, waker: &Waker) -> Option<Fired> {
        let mut e = self.table.lock();
        let entry = e.get_mut(self.id)?;
        if entry.fired.is_none() && !entry.waker.will_wake(waker) {
            entry.waker = waker.clone();
        }
        entry.fired
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (entry, ring) = self.table.remove(self.id);
        if ring {
            // Its futex wait is in the ring: the thread cancels it.
            self.table.ring();
        }
        if let Some(key) = entry.as_ref().and_then(|e| e.watch_key) {
            watch::unwatch_peer(key);
        }
        // A fallback thread may still sleep on the word: a wake there is a spurious look, and
        // its next look leaves the word out. Dropped outside the lock: `keep` may be the last
        // hold on a mapping.
        drop(entry);
    }
}

/// One wait for a [`Signal`], driven by polls: what a future or a wait set keeps between
/// polls. It announces itself in the signal's sleepers word once it registers (so that the
/// writer wakes), and withdraws when it ends or is dropped.
pub struct Waiter {
    value: *const AtomicU32,
    sleepers: *const AtomicU32,
    keep: Arc<dyn Any + Send + Sync>,
    deadline: Option<Instant>,
    watch: Option<Arc<dyn Watch>>,
    reg: Option<Registration>,
    announced: bool,
    /// The signal is asymmetric ([`crate::fence`]): after announcing, make the writer run its
    /// barrier.
    asymmetric: bool,
    /// Set when that barrier could not be made: then no registration outlasts
    /// [`UNFENCED_SLEEP`](crate::fence::UNFENCED_SLEEP).
    unfenced: bool,
}

// SAFETY: the two pointers point into memory that `keep` keeps alive, and are used only for
// atomic operations; everything else is Send and Sync.
unsafe impl Send for Waiter {}
// SAFETY: as for Send; `&Waiter` gives no access to the pointers.
unsafe impl Sync for Waiter {}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("deadline", &self.deadline)
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

/// What a [`Waiter`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Woke {
    /// The caller's condition held.
    Ready,
    /// The deadline passed first.
    TimedOut,
    /// The watch said the peer died (check it, and report it).
    PeerDead,
}

impl Waiter {
    /// A wait on `signal`'s words, until `deadline`, watching `watch`.
    ///
    /// # Safety
    ///
    /// `signal`'s two words must stay valid for as long as `keep` lives (the waiter holds a
    /// clone of it until dropped).
    pub unsafe fn new(
        signal: &Signal<'_>,
        keep: Arc<dyn Any + Send + Sync>,
        deadline: Option<Instant>,
        watch: Option<Arc<dyn Watch>>,
    ) -> Waiter {
        let (value, sleepers) = signal.words();
        Waiter {
            value,
            sleepers,
            keep,
            deadline,
            watch,
            reg: None,
            announced: false,
            asymmetric: signal.is_asymmetric(),
            unfenced: false,
        }
    }

    /// Polls: `Ready(Ok(Woke::Ready))` once `ready()` holds, `TimedOut` or `PeerDead` when
    /// those came first; `Pending` with `cx`'s waker registered otherwise. `ready` must
    /// return true once the signal's value (or memory the writer stores before it) says so.
    pub fn poll<E>(
        &mut self,
        cx: &mut Context<'_>,
        mut ready: impl FnMut() -> Result<bool, E>,
    ) -> Poll<Result<Woke, E>> {
        let result = self.poll_inner(cx, &mut ready);
        if result.is_ready() {
            self.finish();
        }
        result
    }

    fn poll_inner<E>(
        &mut self,
        cx: &mut Context<'_>,
        ready: &mut impl FnMut() -> Result<bool, E>,
    ) -> Poll<Result<Woke, E>> {
        if ready()? {
            return Poll::Ready(Ok(Woke::Ready));
        }
        match self.reg.as_ref().map(|r| r.update(cx.waker())) {
            Some(None) => return Poll::Pending,
            Some(Some(Fired::PeerDead)) => return Poll::Ready(Ok(Woke::PeerDead)),
            Some(Some(Fired::Changed | Fired::Deadline)) | None => {}
        }
        self.reg = None;
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Poll::Ready(Ok(Woke::TimedOut));
        }
        if !self.announced {
            // SAFETY: `keep` keeps the word alive (new's contract).
            unsafe { (*self.sleepers).fetch_add(1, SeqCst) };
            self.announced = true;
            self.unfenced = self.asymmetric && !crate::fence::heavy();
        }
        // SAFETY: as above.
        let v = unsafe { (*self.value).load(SeqCst) };
        // Announced before this look: a store after it wakes the word.
        if ready()? {
            return Poll::Ready(Ok(Woke::Ready));
        }
        // SAFETY: the word lives as long as `keep`, which the registration clones.
        let reg = unsafe {
            Registration::new(
                &*self.value,
                v,
                cx.waker(),
                match self.unfenced {
                    // A wake-up the writer may miss: look again soon (the deadline that fires
                    // is only a reason to look; the wait's own is checked above).
                    true => {
                        let soon = Instant::now() + crate::fence::UNFENCED_SLEEP;
                        Some(self.deadline.map_or(soon, |d| d.min(soon)))
                    }
                    false => self.deadline,
                },
                self.watch.clone(),
                self.keep.clone(),
            )
        };
        match reg {
            Ok(r) => self.reg = Some(r),
            // No thread could be made: look again soon rather than never.
            Err(_) => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }

    /// Ends the wait: the registration goes, the announcement is withdrawn.
    fn finish(&mut self) {
        self.reg = None;
        if self.announced {
            // SAFETY: `keep` keeps the word alive (new's contract).
            unsafe { (*self.sleepers).fetch_sub(1, SeqCst) };
            self.announced = false;
        }
    }

    /// Forgets why the registration fired (a peer that the caller found alive after all):
    /// the next poll registers again.
    pub fn rearm(&mut self) {
        self.reg = None;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;
    use std::time::Duration;

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    fn wait_for(flag: &Flag, within: Duration) -> bool {
        let t0 = Instant::now();
        while !flag.0.load(SeqCst) {
            if t0.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// A registration fires on a change of its word (with a futex wake), on its deadline,
    /// and on its watch; a dropped one leaves nothing registered.
    #[test]
    fn fires_on_change_deadline_and_death() {
        let word: Arc<AtomicU32> = Arc::new(AtomicU32::new(5));
        let keep: Arc<dyn Any + Send + Sync> = word.clone();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        // SAFETY: `keep` is the Arc of the word.
        let reg = unsafe { Registration::new(&word, 5, &waker, None, None, keep.clone()) }
            .expect("register");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(reg.fired(), None);
        word.store(6, SeqCst);
        crate::wait::wake_all(&word);
        assert!(
            wait_for(&flag, Duration::from_secs(5)),
            "woken by the change"
        );
        assert_eq!(reg.fired(), Some(Fired::Changed));
        drop(reg);

        flag.0.store(false, SeqCst);
        let deadline = Instant::now() + Duration::from_millis(30);
        // SAFETY: as above.
        let reg =
            unsafe { Registration::new(&word, 6, &waker, Some(deadline), None, keep.clone()) }
                .expect("register");
        assert!(
            wait_for(&flag, Duration::from_secs(5)),
            "woken by the deadline"
        );
        assert!(Instant::now() >= deadline);
        assert_eq!(reg.fired(), Some(Fired::Deadline));
        drop(reg);

        struct Dead;
        impl Watch for Dead {
            fn key(&self) -> u128 {
                u128::MAX - 7
            }
            fn alive(&self) -> bool {
                false
            }
        }
        flag.0.store(false, SeqCst);
        // SAFETY: as above.
        let reg = unsafe { Registration::new(&word, 6, &waker, None, Some(Arc::new(Dead)), keep) }
            .expect("register");
        assert!(
            wait_for(&flag, Duration::from_secs(5)),
            "woken by the watch"
        );
        assert_eq!(reg.fired(), Some(Fired::PeerDead));
    }
}
