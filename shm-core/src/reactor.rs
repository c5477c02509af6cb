//! Waiting for shared-memory words without a thread per wait (feature `async`, Linux): the
//! process-wide waiter behind every future and wait set of the workspace.
//!
//! A [`Registration`] asks: wake this [`Waker`] once the 32-bit word at this address no
//! longer holds this value, once this deadline passes, or once this [`Watch`] says the peer
//! died. A [`Waiter`] drives one such wait for a [`Signal`]: it announces
//! itself in the signal's sleepers word (so that the writer makes the wake system call), reads
//! the value, checks the caller's condition once more, and registers.
//!
//! # How
//!
//! A few waiter threads, made on demand, each sleep on up to [`WORDS_PER_THREAD`] registered
//! words at once with one `futex_waitv` system call (Linux 5.16 or later), plus one private
//! futex word of their own through which a new registration tells them to look again. A
//! writer's `futex_wake` on any of the words (the same wake a blocking waiter gets: the words
//! are process-shared, so no private flag) ends the call; the thread then reads each word it
//! waited on and wakes the [`Waker`]s of those that changed. Deadlines and peer checks are the
//! call's timeout. So:
//!
//! - **idle costs nothing** but the peer checks: a waiter thread sleeps without a timeout
//!   (unless a deadline asks for one); one watcher thread wakes every [`WATCH_INTERVAL`]
//!   while any [`Watch`] is registered and asks each distinct peer once whether it lives
//!   (however many words wait on it), then fires the registrations of the dead;
//! - **threads**: one waiter per [`WORDS_PER_THREAD`] words waited on at the same time (the
//!   kernel takes at most 128 words per `futex_waitv`, one of which is the thread's own),
//!   made the first time that many wait at once and kept for the life of the process, and
//!   the one watcher, made with the first [`Watch`];
//! - **a wait** that registers costs a lock, a private futex wake of the waiter thread (which
//!   looks again and sleeps on the new list), and the sleepers announcement; **a wake** costs
//!   the writer's `futex_wake`, the waiter thread's wake-up and its look at each of its words,
//!   then the [`Waker`]. `cargo test -p shm-channel --features async --release --test async_many --
//!   --include-ignored --nocapture` measures both; shm-channel's front page has the figures.
//!
//! Why not the alternatives: a thread per wait is what the issue forbids; io_uring's futex
//! wait (Linux 6.7) takes any number of words in one thread but is blocked by the seccomp
//! profiles of common container runtimes and needs a ring per process; a doorbell file
//! descriptor (a pipe, an eventfd, a Unix socket) that the writer rings would change what the
//! peer does on every message, and the peer may be a blocking program of an older version.
//! `futex_waitv` needs nothing of the writer: a blocking peer's wake wakes a future here.
//!
//! A child made by `fork` has none of its parent's threads: its first registration makes
//! threads of its own (the parent's registrations it inherited are never served there; drop
//! them).
//!
//! Without `futex_waitv` (a kernel older than 5.16, or a seccomp filter that refuses it with
//! `ENOSYS`), each thread falls back to looking at its words every millisecond.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::wait::Signal;

/// How many words one waiter thread sleeps on (`futex_waitv` takes 128; one is its own).
pub const WORDS_PER_THREAD: usize = 127;

/// How often the watcher thread checks the peers of the words waited on ([`Watch::alive`]).
pub const WATCH_INTERVAL: Duration = Duration::from_millis(40);

/// How often a waiter thread looks at its words when the kernel has no `futex_waitv`.
const FALLBACK_POLL: Duration = Duration::from_millis(1);

/// Who is on the other side of a word: asked every [`WATCH_INTERVAL`] while a registration
/// waits, so that a pending wait learns of a peer's death without waking its task for nothing.
pub trait Watch: Send + Sync {
    /// Equal for watches of the same peer: each distinct key is checked once per interval.
    fn key(&self) -> u128;
    /// False once the peer is gone for good.
    fn alive(&self) -> bool;
}

/// Why a registration fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fired {
    /// The word no longer held the value registered (or a spurious wake: look again).
    Changed,
    /// The deadline passed.
    Deadline,
    /// The [`Watch`] said the peer died.
    PeerDead,
}

/// One registered word.
struct Entry {
    word: *const AtomicU32,
    expected: u32,
    waker: Waker,
    deadline: Option<Instant>,
    /// The peer watched, by [`Watch::key`] (registered in [`watches`]).
    watch_key: Option<u128>,
    fired: Option<Fired>,
    /// Keeps the memory of `word` alive while the entry exists.
    _keep: Arc<dyn Any + Send + Sync>,
}

// SAFETY: `word` points into memory that `_keep` keeps alive, and is only used for atomic
// loads and as a futex address; the rest is Send.
unsafe impl Send for Entry {}

#[derive(Default)]
struct Entries {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
}

/// One waiter thread and what it waits on.
struct Shard {
    /// Bumped at each registration; the thread sleeps on it too (a private futex word).
    changed: AtomicU32,
    /// Registrations held (reserved under the reactor's lock).
    load: AtomicUsize,
    entries: Mutex<Entries>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the entries consistent (each change is one
        // assignment): go on with them.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shards of one process: a child made by `fork` has none of its parent's threads.
struct Shards {
    pid: u32,
    list: Vec<Arc<Shard>>,
}

/// This process's shards (after a fork: none yet; the parent's registrations inherited stay
/// on shards no thread serves, and only dropping them is any use).
fn shards() -> MutexGuard<'static, Shards> {
    static R: Mutex<Shards> = Mutex::new(Shards {
        pid: 0,
        list: Vec::new(),
    });
    let mut shards = R.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if shards.pid != pid {
        shards.list.clear();
        shards.pid = pid;
    }
    shards
}

/// Waiter threads made so far in this process.
pub fn threads() -> usize {
    shards().list.len()
}

/// Registrations held now in this process (every one is dropped with its future).
pub fn registered() -> usize {
    shards().list.iter().map(|s| s.load.load(SeqCst)).sum()
}

/// A registered word: its [`Waker`] is woken once, when the registration fires. Dropping it
/// removes it (cancellation leaves nothing behind).
pub struct Registration {
    shard: Arc<Shard>,
    index: usize,
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
    /// Fails only when a new waiter thread was needed and could not be made.
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
            Some(w) => Some(watch_peer(w)?),
            None => None,
        };
        let shard = match pick_shard() {
            Ok(s) => s,
            Err(e) => {
                if let Some(key) = watch_key {
                    unwatch_peer(key);
                }
                return Err(e);
            }
        };
        let entry = Entry {
            word,
            expected,
            waker: waker.clone(),
            deadline,
            watch_key,
            fired: None,
            _keep: keep,
        };
        let index = {
            let mut e = shard.lock();
            match e.free.pop() {
                Some(i) => {
                    e.slots[i] = Some(entry);
                    i
                }
                None => {
                    e.slots.push(Some(entry));
                    e.slots.len() - 1
                }
            }
        };
        // After the entry is in: a thread that built its list before sees the word change.
        shard.changed.fetch_add(1, SeqCst);
        sys::wake_private(&shard.changed);
        Ok(Registration { shard, index })
    }

    /// Why it fired, or `None` while it waits.
    pub fn fired(&self) -> Option<Fired> {
        self.shard.lock().slots[self.index]
            .as_ref()
            .and_then(|e| e.fired)
    }

    /// While it waits, makes `waker` the one woken (a task may move between threads);
    /// returns why it fired otherwise.
    pub fn update(&self, waker: &Waker) -> Option<Fired> {
        let mut e = self.shard.lock();
        let entry = e.slots[self.index].as_mut()?;
        if entry.fired.is_none() && !entry.waker.will_wake(waker) {
            entry.waker = waker.clone();
        }
        entry.fired
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let entry = {
            let mut e = self.shard.lock();
            let entry = e.slots[self.index].take();
            e.free.push(self.index);
            entry
        };
        self.shard.load.fetch_sub(1, SeqCst);
        if let Some(key) = entry.as_ref().and_then(|e| e.watch_key) {
            unwatch_peer(key);
        }
        // The waiter thread may still sleep on the word: a wake there is a spurious look, and
        // the next registration on this thread rebuilds its list. Dropped outside the lock:
        // `keep` may be the last hold on a mapping.
        drop(entry);
    }
}

/// A shard with room, made (with its thread) when all are full.
fn pick_shard() -> std::io::Result<Arc<Shard>> {
    let mut shards = shards();
    for s in shards.list.iter() {
        if s.load.load(SeqCst) < WORDS_PER_THREAD {
            s.load.fetch_add(1, SeqCst);
            return Ok(s.clone());
        }
    }
    let shard = Arc::new(Shard {
        changed: AtomicU32::new(0),
        load: AtomicUsize::new(1),
        entries: Mutex::new(Entries::default()),
    });
    let run = shard.clone();
    std::thread::Builder::new()
        .name(format!("shm-async-{}", shards.list.len()))
        .spawn(move || serve(&run))?;
    shards.list.push(shard.clone());
    Ok(shard)
}

/// Each distinct [`Watch::key`] once, with how many registrations watch it.
type Watched = HashMap<u128, (Arc<dyn Watch>, usize)>;

/// The peers watched.
struct Watches {
    peers: Mutex<Watched>,
    /// The watcher thread, once made, and the process it was made in (a fork's child has
    /// none of its parent's threads).
    thread: Mutex<Option<(u32, std::thread::Thread)>>,
}

fn watches() -> &'static Watches {
    static W: OnceLock<Watches> = OnceLock::new();
    W.get_or_init(|| Watches {
        peers: Mutex::new(HashMap::new()),
        thread: Mutex::new(None),
    })
}

/// This process's watcher thread, made the first time.
fn watcher_thread() -> std::io::Result<std::thread::Thread> {
    let mut thread = watches().thread.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((made_in, t)) = thread.as_ref() {
        if *made_in == pid {
            return Ok(t.clone());
        }
    }
    let handle = std::thread::Builder::new()
        .name("shm-async-watch".to_owned())
        .spawn(watcher)?;
    let t = handle.thread().clone();
    *thread = Some((pid, t.clone()));
    Ok(t)
}

/// Counts a registration watching `watch`'s peer (making the watcher thread the first time);
/// returns its key.
fn watch_peer(watch: Arc<dyn Watch>) -> std::io::Result<u128> {
    let w = watches();
    let thread = watcher_thread()?;
    let key = watch.key();
    let mut peers = w.peers.lock().unwrap_or_else(|e| e.into_inner());
    let first = peers.is_empty();
    peers.entry(key).or_insert_with(|| (watch, 0)).1 += 1;
    drop(peers);
    if first {
        thread.unpark();
    }
    Ok(key)
}

/// Counts a registration watching `key` no more.
fn unwatch_peer(key: u128) {
    let mut peers = watches().peers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, n)) = peers.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            // Dropped outside the lock: the watch may hold the last hold on a mapping.
            let gone = peers.remove(&key);
            drop(peers);
            drop(gone);
        }
    }
}

/// The watcher thread: every [`WATCH_INTERVAL`] while anything is watched, asks each distinct
/// peer once whether it lives, and fires the registrations of those that died; parked while
/// nothing is watched. One thread for the process: the waiter threads themselves sleep
/// without a timeout unless a deadline asks for one.
fn watcher() {
    let w = watches();
    loop {
        if w.peers.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            std::thread::park();
            continue;
        }
        std::thread::sleep(WATCH_INTERVAL);
        let peers: Vec<(u128, Arc<dyn Watch>)> = {
            let peers = w.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .iter()
                .map(|(k, (watch, _))| (*k, watch.clone()))
                .collect()
        };
        let dead: Vec<u128> = peers
            .iter()
            .filter(|(_, watch)| !watch.alive())
            .map(|(k, _)| *k)
            .collect();
        drop(peers);
        if dead.is_empty() {
            continue;
        }
        let shards: Vec<Arc<Shard>> = shards().list.clone();
        let mut wake = Vec::new();
        for shard in shards {
            let mut e = shard.lock();
            for entry in e.slots.iter_mut().flatten() {
                if entry.fired.is_none() && entry.watch_key.is_some_and(|k| dead.contains(&k)) {
                    entry.fired = Some(Fired::PeerDead);
                    wake.push(entry.waker.clone());
                }
            }
        }
        for waker in wake {
            waker.wake();
        }
    }
}

/// A waiter thread: sleeps on its words, wakes the Wakers of those that fired.
fn serve(shard: &Shard) {
    let mut list: Vec<sys::WaitV> = Vec::with_capacity(WORDS_PER_THREAD + 1);
    let mut wake: Vec<Waker> = Vec::new();
    loop {
        let generation = shard.changed.load(SeqCst);
        list.clear();
        list.push(sys::WaitV::private(&shard.changed, generation));
        let mut until: Option<Instant> = None;
        {
            let e = shard.lock();
            for entry in e.slots.iter().flatten().filter(|e| e.fired.is_none()) {
                if list.len() > WORDS_PER_THREAD {
                    break; // never: the load is reserved; but the kernel refuses more
                }
                list.push(sys::WaitV::shared(entry.word, entry.expected));
                if let Some(d) = entry.deadline {
                    until = Some(until.map_or(d, |u| u.min(d)));
                }
            }
        }
        sys::wait_any(&list, until);
        {
            let mut e = shard.lock();
            let now = Instant::now();
            for entry in e.slots.iter_mut().flatten() {
                if entry.fired.is_some() {
                    continue;
                }
                // SAFETY: the entry's `_keep` keeps the word's memory alive (Registration::new's
                // contract), and the entry exists (we hold the lock that removes it).
                let now_value = unsafe { (*entry.word).load(SeqCst) };
                let fired = if now_value != entry.expected {
                    Fired::Changed
                } else if entry.deadline.is_some_and(|d| now >= d) {
                    Fired::Deadline
                } else {
                    continue;
                };
                entry.fired = Some(fired);
                wake.push(entry.waker.clone());
            }
        }
        for w in wake.drain(..) {
            w.wake();
        }
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
                self.deadline,
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

mod sys {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
    use std::time::Instant;

    /// `struct futex_waitv` of `linux/futex.h`.
    #[repr(C)]
    pub struct WaitV {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }

    /// `FUTEX2_SIZE_U32`: a 32-bit word.
    const SIZE_U32: u32 = 0x02;
    /// `FUTEX2_PRIVATE`: this process only.
    const PRIVATE: u32 = 128;

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

    static NO_WAITV: AtomicBool = AtomicBool::new(false);

    /// Sleeps until any word of `list` may differ from its value, until `until`, or a
    /// spurious wake-up. The first word is the caller's own.
    pub fn wait_any(list: &[WaitV], until: Option<Instant>) {
        if NO_WAITV.load(Relaxed) {
            fallback(list, until);
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
                    NO_WAITV.store(true, Relaxed);
                    fallback(list, until);
                }
                // A word unmapped since the list was built: the next list leaves it out.
                Some(libc::EFAULT) => std::thread::yield_now(),
                // EAGAIN (a word differs), ETIMEDOUT, EINTR: the caller looks.
                _ => {}
            }
        }
    }

    /// Without futex_waitv: sleep on the thread's own word for a millisecond at most.
    fn fallback(list: &[WaitV], until: Option<Instant>) {
        let own = list[0].uaddr as *const u32;
        let mut left = super::FALLBACK_POLL;
        if let Some(t) = until {
            left = left.min(t.saturating_duration_since(Instant::now()));
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the thread's own word lives in its shard (the caller holds it); the
        // timespec outlives the call.
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

    /// Wakes the waiter thread sleeping on its own word.
    pub fn wake_private(word: &AtomicU32) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

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
