//! A topic's ends: the publisher, its subscribers and their options, over the shared topic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shm_core::wait::{HYBRID_SPIN_MAX, Signal, WaitStrategy, wake_all};
use shm_core::{Backend, SegmentName, fence};

use super::fingerprint::Fingerprint;
use super::layout::*;
use crate::hub::Hub;
use crate::in_place::InPlace;
use crate::layout::{CLOSED, COUNT_MASK, SEQ_SET, SLOT_HEADER};
use crate::lent::Lent;
use crate::options::setters;
use crate::peer::{Proc, SEAT_CREATOR, Verdict, Witness};
use crate::ring::deadline_in;
use crate::shared::next_slice;
use crate::{Error, Result};

/// What a slow subscriber does to the publisher (see the [module docs](super#policies)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// The publisher waits for the slowest subscriber: nobody misses a message.
    #[default]
    BackPressure,
    /// The publisher overtakes a slow subscriber, which learns how many messages it missed.
    Lossy,
}

/// The parameters of a topic, fixed by its publisher at create.
///
/// ```
/// use shm_channel::pubsub::{Policy, TopicOptions};
/// let opts = TopicOptions::new(64, 1024).subscribers(32).history(8).policy(Policy::Lossy);
/// assert_eq!((opts.slots, opts.subscribers, opts.history), (64, 32, 8));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicOptions {
    /// Slots in the ring, a power of two from 2 to 2^20: how far the publisher may be ahead
    /// of its slowest subscriber.
    pub slots: u32,
    /// The largest message in bytes, 1 to 2^30.
    pub max_message: usize,
    /// The most subscribers at once, 1 to 1024 (default 16).
    pub subscribers: u32,
    /// How many of the messages published before it joined a subscriber receives first (those
    /// still in their slots), at most `slots - 1` (default 0).
    pub history: u32,
    /// Back-pressure (default) or lossy.
    pub policy: Policy,
    /// Permission bits of the segment (default `0o600`).
    pub mode: u32,
    /// How the publisher waits for room (default hybrid: see the
    /// [module docs](super#waiting)).
    pub wait: WaitStrategy,
}

impl TopicOptions {
    /// `slots` slots of at most `max_message` bytes; 16 subscribers, no history, back-pressure,
    /// mode 0600, hybrid waiting.
    pub fn new(slots: u32, max_message: usize) -> Self {
        Self {
            slots,
            max_message,
            subscribers: 16,
            history: 0,
            policy: Policy::BackPressure,
            mode: 0o600,
            wait: WaitStrategy::Hybrid,
        }
    }

    setters! {
        /// Sets the most subscribers at once.
        subscribers: u32,
        /// Sets the history a late subscriber receives.
        history: u32,
        /// Sets the policy.
        policy: Policy,
        /// Sets the permission bits.
        mode: u32,
        /// Sets how the publisher waits.
        wait: WaitStrategy,
    }

    /// Bytes of the segment a topic of these options takes, or [`Error::InvalidOptions`].
    pub fn segment_size(&self) -> Result<usize> {
        Ok(self.shape()?.total)
    }

    fn shape(&self) -> Result<Shape> {
        let shape = Shape::new(self.slots, self.max_message, self.subscribers)?;
        if self.history >= self.slots {
            return Err(Error::InvalidOptions(format!(
                "a history of {} messages in {} slots: at most slots - 1",
                self.history, self.slots
            )));
        }
        Ok(shape)
    }
}

impl Default for TopicOptions {
    /// 64 slots of 64 KiB.
    fn default() -> Self {
        Self::new(64, 64 * 1024)
    }
}

/// How a subscriber joins and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// How long [`Subscriber::open`] waits for the topic to appear (default: not at all).
    pub open_timeout: Option<Duration>,
    /// How the subscriber waits for messages (default hybrid: see the
    /// [module docs](super#waiting)).
    pub wait: WaitStrategy,
}

impl SubscribeOptions {
    /// No open timeout, hybrid waiting.
    pub fn new() -> Self {
        Self {
            open_timeout: None,
            wait: WaitStrategy::Hybrid,
        }
    }

    /// Waits up to `timeout` at open for a topic that does not exist yet.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = Some(timeout);
        self
    }

    /// Sets how the subscriber waits.
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// One end's hold on a topic: the segment, and its checked parameters in private memory.
pub(crate) struct Topic {
    shape: Shape,
    lossy: bool,
    history: u32,
    fingerprint: Fingerprint,
    /// What the kernel keeps of each end (a lock per seat, or the attach count).
    witness: Witness,
    hub: Hub,
}

/// The witness of a topic's segment mapped by `hub`.
fn witness_of(hub: &Hub) -> Witness {
    let sysv_id = match hub.mapping().fd() {
        Some(_) => None,
        None => hub.segment_info().ok().and_then(|i| i.id),
    };
    Witness::of(hub.mapping(), sysv_id)
}

impl Topic {
    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned, at least `shape.total` bytes (checked at open,
        // created so), and a Header is 128 atomics-only bytes at offset 0; it lives as long as
        // &self, which owns the mapping.
        unsafe { &*self.hub.base().cast::<Header>() }
    }

    fn line(&self, off: usize) -> &Line {
        debug_assert!(off == OFF_TAIL || off == OFF_RELEASE);
        // SAFETY: OFF_TAIL and OFF_RELEASE are 128-aligned lines inside the mapping.
        unsafe { &*self.hub.base().add(off).cast::<Line>() }
    }

    fn seat(&self, i: u32) -> &Seat {
        debug_assert!(i < self.shape.seats);
        // Clamped, not reduced modulo `seats`: a division on every message was a tenth of a
        // subscriber's release. Shape::new makes seats >= 1.
        let i = i.min(self.shape.seats - 1);
        // SAFETY: seat `i < seats` lies inside the mapping (Shape's tests), 128-aligned.
        unsafe { &*self.hub.base().add(self.shape.seat(i)).cast::<Seat>() }
    }

    /// Where message number `count`'s slot starts (its header word).
    fn slot(&self, count: u32) -> *mut u8 {
        let index = (count & (self.shape.slots - 1)) as usize;
        // SAFETY: slot index < slots, and slots_at + slots * stride <= total (Shape::new).
        unsafe {
            self.hub
                .base()
                .add(self.shape.slots_at() + index * self.shape.stride as usize)
        }
    }

    /// A signal over `line`, to keep beside the `Arc` of this topic.
    ///
    /// # Safety
    ///
    /// The [`Lent`] must not outlive this topic: the caller keeps it in the struct that holds
    /// the topic's `Arc`, declared before that `Arc`.
    unsafe fn signal(&self, off: usize, wait: WaitStrategy) -> Lent {
        let line = self.line(off);
        // SAFETY: the words are in this topic's mapping, which the caller keeps for as long as
        // the Lent lives.
        unsafe { Lent::new(Signal::new(&line.value, &line.sleepers, wait).asymmetric()) }
    }

    /// The header word of message number `count`'s slot (length in the low half, sequence in
    /// the high), for as long as the topic is borrowed.
    pub(crate) fn slot_word(&self, count: u32) -> &AtomicU64 {
        // SAFETY: the slot starts 64-aligned inside the mapping (see `slot`) with its 8-byte
        // header; AtomicU64 is valid for any bits; the mapping lives while `self` does.
        unsafe { &*self.slot(count).cast::<AtomicU64>() }
    }

    /// Wakes the publisher if it sleeps waiting for room (a subscriber released or left).
    fn wake_publisher(&self) {
        let line = self.line(OFF_RELEASE);
        if line.sleepers.load(Ordering::SeqCst) != 0 {
            Self::ring_release(line);
        }
    }

    /// Bumps the release line and wakes the publisher sleeping on it.
    fn ring_release(line: &Line) {
        line.value.fetch_add(1, Ordering::SeqCst);
        wake_all(&line.value);
    }

    /// The owner of seat `i`, as a process to check, when it is one.
    fn owner(&self, i: u32) -> Option<Proc> {
        let seat = self.seat(i);
        let pid = seat.owner.load(Ordering::SeqCst);
        Proc::checked(
            pid,
            seat.start.load(Ordering::SeqCst),
            seat.pidns.load(Ordering::SeqCst),
        )
    }

    /// Frees seat `i` if `owner` still owns it. Only one remover wins the seat.
    fn evict(&self, i: u32, owner: u32) -> bool {
        let seat = self.seat(i);
        if seat
            .owner
            .compare_exchange(owner, EVICTING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        seat.active.store(0, Ordering::SeqCst);
        seat.pin.store(0, Ordering::SeqCst);
        seat.owner.store(0, Ordering::SeqCst);
        self.wake_publisher();
        true
    }

    /// The lock byte of seat `i`'s owner (the publisher's is `SEAT_CREATOR`).
    pub(crate) fn lock_of(i: u32) -> u64 {
        SEAT_CREATOR + 1 + u64::from(i)
    }

    /// The verdict on `p`, announced as the owner of seat `i`.
    fn judge_owner(&self, i: u32, p: &Proc) -> Verdict {
        self.witness.judge(self.hub.mapping(), Self::lock_of(i), p)
    }

    /// The verdict on the publisher, announced as `p`.
    pub(crate) fn judge_publisher(&self, p: &Proc) -> Verdict {
        self.witness.judge(self.hub.mapping(), SEAT_CREATOR, p)
    }

    /// Removes the owners of seats that died; returns how many.
    fn evict_dead(&self, only: impl Fn(u32) -> bool) -> usize {
        let mut n = 0;
        for i in 0..self.shape.seats {
            if !only(i) {
                continue;
            }
            let pid = self.seat(i).owner.load(Ordering::SeqCst);
            if pid == 0 || pid == EVICTING {
                continue;
            }
            let dead = match self.owner(i) {
                Some(p) => self.judge_owner(i, &p) == Verdict::Dead,
                None => true, // no process could have that id: garbage
            };
            if dead && self.evict(i, pid) {
                n += 1;
            }
        }
        n
    }

    /// `PeerDead` once `publisher` died (the first to learn it removes the topic's name).
    /// Messages it completed come first: the caller looked and found none.
    pub(crate) fn check_publisher(&self, publisher: &Proc) -> Result<()> {
        if self.judge_publisher(publisher).maybe_alive() {
            return Ok(());
        }
        self.hub.remove_name_once(&self.header().unlinked);
        Err(Error::PeerDead { pid: publisher.pid })
    }

    /// The subscribers' process ids, each with whether it is alive.
    fn subscribers(&self) -> Vec<(i32, bool)> {
        (0..self.shape.seats)
            .filter(|&i| self.seat(i).active.load(Ordering::SeqCst) != 0)
            .filter_map(|i| Some((i, self.owner(i)?)))
            .map(|(i, p)| (p.pid, self.judge_owner(i, &p).maybe_alive()))
            .collect()
    }
}

/// Looks of a publisher waiting for room that ask for a quarter of the ring free, before
/// one free slot is enough.
const ROOM_MARGIN_LOOKS: u32 = 64;

/// How long a hybrid end of a topic hands its CPU over and looks again before it sleeps.
const YIELD_WINDOW: Duration = HYBRID_SPIN_MAX;

/// Looks before the first yield of a hybrid wait, with the pause hint between them (a few
/// hundred nanoseconds, about what a publisher that streams takes per message): the next
/// message already on its way costs no system call, and a subscriber that caught up gives its
/// CPU away at once (64 looks, a microsecond and a half, took a fifth of a subscriber's CPU in
/// `fanout_4`, and made it slower).
const QUICK_LOOKS: u32 = 8;

/// Waits on the signal over `words` (value, sleepers) until `early()` holds (`Ok(None)`) or
/// `done(value)` does (`Ok(Some(value))`), as [`Signal::wait_until_or`] does with `strategy`,
/// except that a hybrid wait, after a few quick looks, hands the CPU over (`sched_yield`) and
/// looks again, for up to [`YIELD_WINDOW`], then sleeps (the writer wakes only an end that
/// said it sleeps).
///
/// A topic's ends are often more processes than the machine has CPUs (one publisher and four
/// subscribers on two): an end that spins while it waits keeps the others, the very ones it
/// waits for, from running, and the scheduler shares the CPUs out evenly among the spinners.
/// A yield runs them instead, and returns at once when nobody else needs the CPU. An end
/// that wakes finds every message published meanwhile, and takes them one after the other
/// without waiting.
fn wait_shared(
    words: (&AtomicU32, &AtomicU32),
    strategy: WaitStrategy,
    mut early: impl FnMut() -> bool,
    mut done: impl FnMut(u32) -> bool,
    timeout: Duration,
) -> shm_core::Result<Option<u32>> {
    let (value, sleepers) = words;
    if strategy != WaitStrategy::Hybrid {
        return Signal::new(value, sleepers, strategy)
            .asymmetric()
            .wait_until_or(early, done, timeout);
    }
    if !one_cpu() {
        for _ in 0..QUICK_LOOKS {
            if early() {
                return Ok(None);
            }
            std::hint::spin_loop();
        }
    }
    let start = Instant::now();
    let window = timeout.min(YIELD_WINDOW);
    loop {
        std::thread::yield_now();
        if early() {
            return Ok(None);
        }
        let v = value.load(Ordering::SeqCst);
        if done(v) {
            return Ok(Some(v));
        }
        if start.elapsed() >= window {
            break;
        }
    }
    Signal::new(value, sleepers, WaitStrategy::Block)
        .asymmetric()
        .wait_until_or(early, done, timeout.saturating_sub(start.elapsed()))
}

/// True when this process may run on one CPU only: spinning would only keep the others from
/// running. Asked once (the answer reads files of /proc and /sys).
fn one_cpu() -> bool {
    static ONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() == 1))
}

fn mismatch(topic: &Hub, what: &'static str, expected: u64, found: u64) -> Error {
    Error::Mismatch {
        name: topic.name.clone(),
        backend: topic.backend,
        what,
        expected,
        found,
    }
}

/// The publishing end of a topic. [`finish`](Publisher::finish) closes the stream as complete
/// (subscribers receive what was published, then [`Error::Closed`]); dropping it unfinished
/// cuts it ([`Error::Aborted`] after what was published). Dropping it removes its name.
pub struct Publisher {
    tail_signal: Lent,
    release: Lent,
    /// Messages published, modulo 2^31: private.
    tail: u32,
    /// The oldest head any seat had when the seats were last looked at.
    min_head: u32,
    /// The seats' generation when they were last looked at.
    generation: u32,
    /// True once `finish` closed the stream as complete.
    finished: bool,
    topic: Arc<Topic>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic.hub)
            .field("published", &self.tail)
            .finish()
    }
}

macro_rules! topic_info {
    () => {
        /// The topic's name.
        pub fn name(&self) -> &str {
            &self.topic.hub.name
        }

        /// The backend's name.
        pub fn backend(&self) -> &'static str {
            self.topic.hub.backend
        }

        /// The largest message, fixed at create.
        pub fn max_message(&self) -> usize {
            self.topic.shape.max as usize
        }

        /// The number of slots, fixed at create.
        pub fn slots(&self) -> u32 {
            self.topic.shape.slots
        }

        /// The most subscribers at once, fixed at create.
        pub fn max_subscribers(&self) -> u32 {
            self.topic.shape.seats
        }

        /// The policy, fixed at create.
        pub fn policy(&self) -> Policy {
            if self.topic.lossy {
                Policy::Lossy
            } else {
                Policy::BackPressure
            }
        }

        /// The history a late subscriber receives, fixed at create.
        pub fn history(&self) -> u32 {
            self.topic.history
        }

        /// The message type's fingerprint ([`Fingerprint::BYTES`] for untyped topics).
        pub fn fingerprint(&self) -> Fingerprint {
            self.topic.fingerprint
        }

        /// What the kernel says about the topic's segment now.
        pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
            self.topic.hub.segment_info()
        }

        /// The subscribers now (process id, alive), as their seats say.
        pub fn subscribers(&self) -> Vec<(i32, bool)> {
            self.topic.subscribers()
        }
    };
}

impl Publisher {
    /// Creates the topic `name` on `backend`. A topic of that name whose publisher died is
    /// removed and made anew; one whose publisher lives is [`Error::Busy`]; any other segment
    /// of that name is `Error::Shm(AlreadyExists)`.
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &TopicOptions) -> Result<Publisher> {
        Self::create_typed(backend, name, opts, Fingerprint::BYTES)
    }

    pub(crate) fn create_typed<B: Backend>(
        backend: &B,
        name: &str,
        opts: &TopicOptions,
        fingerprint: Fingerprint,
    ) -> Result<Publisher> {
        // Before any subscriber can see this end: its stores of the count skip the full
        // barrier.
        fence::registered();
        let sname = SegmentName::new(name)?;
        let shape = opts.shape()?;
        let hub = match Hub::create(backend, &sname, shape.total, opts.mode) {
            Ok(h) => h,
            Err(Error::Shm(e)) if e.is_already_exists() => {
                Self::clear_stale(backend, &sname)?;
                Hub::create(backend, &sname, shape.total, opts.mode)?
            }
            Err(e) => return Err(e),
        };
        let topic = Topic {
            shape,
            lossy: opts.policy == Policy::Lossy,
            history: opts.history,
            fingerprint,
            witness: witness_of(&hub),
            hub,
        };
        // The publisher's seat, held until its mapping closes (its death included).
        topic
            .witness
            .hold(topic.hub.mapping(), SEAT_CREATOR)
            .map_err(|e| Error::Busy {
                name: name.to_owned(),
                backend: backend.name(),
                detail: format!("its publisher's seat is held by a live process ({e})"),
            })?;
        let me = Proc::me();
        let h = topic.header();
        // The segment is new and zero-filled; the magic goes last, with Release.
        let r = Ordering::Relaxed;
        h.version.store(VERSION, r);
        h.slots.store(shape.slots, r);
        h.max.store(shape.max, r);
        h.stride.store(shape.stride, r);
        h.seats.store(shape.seats, r);
        h.history.store(opts.history, r);
        h.policy.store(
            if topic.lossy {
                POLICY_LOSSY
            } else {
                POLICY_BACK_PRESSURE
            },
            r,
        );
        h.type_size.store(fingerprint.size, r);
        h.type_align.store(fingerprint.align, r);
        h.type_hash.store(fingerprint.hash, r);
        h.total.store(shape.total as u64, r);
        h.publisher_pid.store(me.pid as u32, r);
        h.publisher_start.store(me.start, r);
        h.publisher_pidns.store(me.pidns, r);
        h.magic.store(MAGIC, Ordering::Release);
        let topic = Arc::new(topic);
        // SAFETY: the signals are fields of the Publisher, which holds the Arc as well.
        let (tail_signal, release) = unsafe {
            (
                topic.signal(OFF_TAIL, opts.wait),
                topic.signal(OFF_RELEASE, opts.wait),
            )
        };
        Ok(Publisher {
            tail_signal,
            release,
            tail: 0,
            min_head: 0,
            generation: 0,
            finished: false,
            topic,
        })
    }

    /// Removes a topic of this name whose publisher died; anything else stays and is reported.
    fn clear_stale<B: Backend>(backend: &B, name: &SegmentName) -> Result<()> {
        let hub = Hub::open(backend, name, None)?;
        let already = || {
            Error::Shm(shm_core::Error::AlreadyExists {
                ctx: shm_core::Context::new(backend.name(), name.as_str(), shm_core::Op::Create),
                source: None,
            })
        };
        if hub.len() < size_of::<Header>() || hub.magic() != MAGIC {
            hub.keep();
            return Err(already());
        }
        // SAFETY: at least a header's bytes, page-aligned (checked above).
        let h = unsafe { &*hub.base().cast::<Header>() };
        let pid = h.publisher_pid.load(Ordering::SeqCst);
        let publisher = Proc::checked(
            pid,
            h.publisher_start.load(Ordering::SeqCst),
            h.publisher_pidns.load(Ordering::SeqCst),
        );
        hub.keep();
        let witness = witness_of(&hub);
        match publisher {
            Some(p) if witness.judge(hub.mapping(), SEAT_CREATOR, &p).maybe_alive() => {
                Err(Error::Busy {
                    name: name.as_str().to_owned(),
                    backend: backend.name(),
                    detail: format!("the topic's publisher (pid {}) is alive", p.pid),
                })
            }
            _ => {
                hub.remove_name_once(&h.unlinked);
                Ok(())
            }
        }
    }

    topic_info!();

    /// How many subscribers have joined: each receives every message published after this
    /// count included it (one still joining is not counted yet).
    pub fn subscriber_count(&self) -> usize {
        (0..self.topic.shape.seats)
            .filter(|&i| self.topic.seat(i).active.load(Ordering::SeqCst) == ACTIVE)
            .count()
    }

    /// Waits until at least `n` subscribers have joined (each then receives every message
    /// published after this returns), or [`Error::TimedOut`] after `timeout`.
    pub fn wait_for_subscribers(&self, n: usize, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        loop {
            if self.subscriber_count() >= n {
                return Ok(());
            }
            if t0.elapsed() >= timeout {
                return Err(Error::TimedOut {
                    after: t0.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes the topic's name now (it is removed when the publisher drops anyway): the
    /// subscribers there go on, no other can join, and nothing of the topic is left once its
    /// ends are gone, however they end (kill -9 of every end included).
    pub fn remove_name(&self) {
        self.topic
            .hub
            .remove_name_once(&self.topic.header().unlinked);
    }

    /// Removes the subscribers whose process died, and returns how many. The publisher does
    /// this by itself for those it waits for; this is for asking.
    pub fn remove_dead(&self) -> usize {
        self.topic.evict_dead(|_| true)
    }

    /// Ends the stream as complete and, under back-pressure, waits until every subscriber there
    /// has received every message (or left, or died: those are not waited for); under the lossy
    /// policy it returns at once. Subscribers receive what was published (what is still in its
    /// slot, under the lossy policy), then [`Error::Closed`]. Publishing afterwards fails with
    /// [`Error::Closed`].
    pub fn finish(&mut self) -> Result<()> {
        self.finish_until(None)
    }

    /// [`finish`](Self::finish), waiting at most `timeout` ([`Error::TimedOut`]; the stream
    /// stays closed as complete, and another call waits again).
    pub fn finish_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.finish_until(Some(Instant::now() + timeout))
    }

    fn finish_until(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.close(END_COMPLETE);
        self.finished = true;
        if self.topic.lossy {
            // The lossy publisher never waits for its subscribers.
            return Ok(());
        }
        self.wait_released(
            deadline,
            |p| Ok(Self::max_lag(&p.topic, p.tail) == 0),
            |p| {
                p.topic.evict_dead(|_| true);
            },
        )
    }

    /// Closes the stream, saying how it ended (once: a finished stream stays complete).
    fn close(&mut self, how: u32) {
        if self.finished {
            return;
        }
        // The end state before the closed bit: a subscriber that sees the bit sees how.
        self.topic.header().end.store(how, Ordering::SeqCst);
        self.tail_signal.get().store(self.tail | CLOSED);
    }

    /// Publishes a copy of `data` to every subscriber, waiting (back-pressure) while the
    /// slowest is `slots` messages behind.
    pub fn publish(&mut self, data: &[u8]) -> Result<()> {
        self.publish_until(data, None)
    }

    /// Publishes a copy of `data` if that needs no wait, or fails with [`Error::Full`].
    pub fn try_publish(&mut self, data: &[u8]) -> Result<()> {
        self.check_len(data.len())?;
        let mut loan = self.try_loan()?;
        loan.write_at(0, data)?;
        loan.send(data.len())
    }

    /// Publishes a copy of `data`, waiting at most `timeout` ([`Error::TimedOut`]).
    pub fn publish_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        self.publish_until(data, Some(timeout))
    }

    fn publish_until(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.check_len(data.len())?;
        let mut loan = self.loan_until(timeout)?;
        loan.write_at(0, data)?;
        loan.send(data.len())
    }

    /// Loans the next slot, waiting for room: fill it in place, then [`PubLoan::send`] it.
    #[inline]
    pub fn loan(&mut self) -> Result<PubLoan<'_>> {
        if self.room_now() {
            return Ok(self.make_loan());
        }
        self.loan_until(None)
    }

    /// Loans the next slot if that needs no wait, or fails with [`Error::Full`].
    pub fn try_loan(&mut self) -> Result<PubLoan<'_>> {
        self.check_open()?;
        if !self.room()? {
            // The subscribers in the way may be dead: remove those, and look again.
            if self.evict_blockers() == 0 || !self.room()? {
                return Err(Error::Full);
            }
        }
        Ok(self.make_loan())
    }

    /// Loans the next slot, waiting at most `timeout`.
    #[inline]
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<PubLoan<'_>> {
        if self.room_now() {
            return Ok(self.make_loan());
        }
        self.loan_until(Some(timeout))
    }

    /// True when message `tail` may be written without a look at the seats: the stream is
    /// open, no subscriber joined since the last look, and the slowest was then far enough
    /// behind. Every loan's first look, inline; the rest is [`room`](Self::room)'s.
    #[inline(always)]
    fn room_now(&self) -> bool {
        !self.finished && self.room_known(self.topic.shape.slots)
    }

    /// True while the last look at the seats holds (no subscriber joined since) and found the
    /// slowest fewer than `limit` messages behind message `tail`.
    #[inline(always)]
    fn room_known(&self, limit: u32) -> bool {
        self.topic.header().generation.load(Ordering::SeqCst) == self.generation
            && self.tail.wrapping_sub(self.min_head) & COUNT_MASK < limit
    }

    /// Loans the next slot, waiting at most `timeout` (`None`: as long as it takes). The
    /// clock is read only when there is no room.
    #[inline(never)]
    fn loan_until(&mut self, timeout: Option<Duration>) -> Result<PubLoan<'_>> {
        self.check_open()?;
        if !self.room()? {
            self.wait_for_room(timeout.and_then(deadline_in))?;
        }
        Ok(self.make_loan())
    }

    #[inline]
    fn make_loan(&mut self) -> PubLoan<'_> {
        let slot = self.topic.slot(self.tail);
        PubLoan { tx: self, slot }
    }

    /// [`Error::Closed`] once `finish` ended the stream.
    fn check_open(&self) -> Result<()> {
        if self.finished {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.topic.shape.max as usize;
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        Ok(())
    }

    /// How far behind `tail` seat `i`'s head is, or `None` when the seat does not count (free,
    /// or its head is impossible: then it is removed).
    fn lag(topic: &Topic, i: u32, tail: u32) -> Option<u32> {
        let seat = topic.seat(i);
        let active = seat.active.load(Ordering::SeqCst);
        if active != ACTIVE && active != JOINING {
            return None;
        }
        let head = seat.head.load(Ordering::SeqCst);
        let lag = tail.wrapping_sub(head) & COUNT_MASK;
        // Under back-pressure a joined subscriber is never more than the ring (plus the
        // history it started with) behind: a larger lag is not a head this crate writes. A
        // joining one may be, for the moment it takes to store its real head.
        if active == ACTIVE && !topic.lossy && lag > topic.shape.slots + topic.history + 1 {
            let owner = seat.owner.load(Ordering::SeqCst);
            topic.evict(i, owner);
            return None;
        }
        Some(lag)
    }

    /// Looks at every seat: the largest lag.
    fn max_lag(topic: &Topic, tail: u32) -> u32 {
        (0..topic.shape.seats)
            .filter_map(|i| Self::lag(topic, i, tail))
            .max()
            .unwrap_or(0)
    }

    /// True when message `tail` may be written now. Under the lossy policy, also invalidates
    /// the slot and makes sure no subscriber holds it.
    #[inline]
    fn room(&mut self) -> Result<bool> {
        self.room_below(self.topic.shape.slots)
    }

    /// As [`room`](Self::room), asking under back-pressure that the slowest subscriber be
    /// fewer than `limit` messages behind (`limit <= slots`; the lossy policy takes `slots`).
    #[inline]
    fn room_below(&mut self, limit: u32) -> Result<bool> {
        if self.room_known(limit) {
            return Ok(true);
        }
        // Read before the seats: a subscriber that joins during the look bumps it again, and
        // the next check looks again.
        self.generation = self.topic.header().generation.load(Ordering::SeqCst);
        let lag = Self::max_lag(&self.topic, self.tail);
        self.min_head = self.tail.wrapping_sub(lag) & COUNT_MASK;
        if lag < limit {
            return Ok(true);
        }
        if !self.topic.lossy {
            return Ok(false);
        }
        // Lossy: overtake the laggards, unless one holds the slot to be written.
        Ok(self.held().is_none())
    }

    /// Under the lossy policy: the seat that holds message `tail - slots` in place, if any.
    /// Marks the slot as being written first (SeqCst), so that a subscriber that pins the
    /// message afterwards sees it gone.
    fn held(&self) -> Option<u32> {
        let slots = self.topic.shape.slots;
        let old = self.tail.wrapping_sub(slots) & COUNT_MASK;
        self.topic.slot_word(self.tail).store(0, Ordering::SeqCst);
        (0..self.topic.shape.seats).find(|&i| {
            let seat = self.topic.seat(i);
            seat.active.load(Ordering::SeqCst) != 0 && seat.pin.load(Ordering::SeqCst) == old | HOLD
        })
    }

    /// Removes the dead among the seats that keep message `tail` from being written.
    fn evict_blockers(&self) -> usize {
        let (topic, tail, slots) = (&self.topic, self.tail, self.topic.shape.slots);
        topic.evict_dead(|i| Self::lag(topic, i, tail).is_some_and(|l| l >= slots))
    }

    /// Waits until message `tail` may be written, removing dead subscribers in the way every
    /// [`PEER_CHECK`](crate::shared::PEER_CHECK).
    #[inline(never)]
    fn wait_for_room(&mut self, deadline: Option<Instant>) -> Result<()> {
        // Under back-pressure, the first looks ask for a quarter of the ring free, so that
        // the next messages find room without looking at the seats again.
        let slots = self.topic.shape.slots;
        let margin = if self.topic.lossy {
            slots
        } else {
            (slots - slots / 4 + 1).min(slots)
        };
        let mut looks = 0u32;
        self.wait_released(
            deadline,
            |p| {
                looks = looks.saturating_add(1);
                p.room_below(if looks <= ROOM_MARGIN_LOOKS {
                    margin
                } else {
                    slots
                })
            },
            |p| {
                p.evict_blockers();
            },
        )
    }

    /// Waits on the release line (subscribers bump it as they release or leave) until `ready`
    /// says so or fails, calling `unblock` every [`PEER_CHECK`](crate::shared::PEER_CHECK) (to remove dead subscribers);
    /// [`Error::TimedOut`] at `deadline`.
    fn wait_released(
        &mut self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut Self) -> Result<bool>,
        mut unblock: impl FnMut(&Self),
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            let slice = next_slice(deadline, start)?;
            // A signal over the words of a topic of its own (an Arc), so that `ready` may have
            // the publisher mutably meanwhile.
            let topic = Arc::clone(&self.topic);
            let line = topic.line(OFF_RELEASE);
            let strategy = self.release.get().strategy();
            let mut err = None;
            let got = wait_shared(
                (&line.value, &line.sleepers),
                strategy,
                || match ready(self) {
                    Ok(r) => r,
                    Err(e) => {
                        err = Some(e);
                        true
                    }
                },
                |_| false,
                slice,
            );
            if let Some(e) = err {
                return Err(e);
            }
            match got {
                Ok(_) => return Ok(()),
                Err(shm_core::Error::TimedOut { .. }) => unblock(self),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.close(END_ABORTED);
        let topic = &self.topic;
        // The name is this publisher's while it lives: remove it whatever the flag says.
        topic.header().unlinked.store(0, Ordering::SeqCst);
        topic.hub.remove_name_once(&topic.header().unlinked);
        topic.hub.keep();
    }
}

/// A slot loaned by [`Publisher::loan`]: write the message in place, then
/// [`send`](PubLoan::send) it. Dropped unsent, it publishes nothing.
pub struct PubLoan<'a> {
    tx: &'a mut Publisher,
    slot: *mut u8,
}

impl std::fmt::Debug for PubLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubLoan")
            .field("message", &self.tx.tail)
            .finish()
    }
}

impl PubLoan<'_> {
    /// Bytes the slot holds (the topic's maximum message).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.tx.topic.shape.max as usize
    }

    /// The first byte of the slot's payload, in shared memory (`capacity()` bytes, 8-aligned).
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: the payload follows the slot header inside the mapping.
        unsafe { self.slot.add(SLOT_HEADER) }
    }

    /// Copies `data` into the slot at `offset`; [`Error::TooLarge`] past the capacity.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        let cap = self.capacity();
        let end = offset.checked_add(data.len()).filter(|&e| e <= cap);
        if end.is_none() {
            return Err(Error::TooLarge {
                len: offset.saturating_add(data.len()),
                max: cap,
            });
        }
        // SAFETY: offset + len <= capacity (checked), inside the slot's payload; `data` is
        // not in this slot (the loan borrows the publisher mutably, and no safe reference into
        // shared memory exists).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_mut_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// The slot's payload in place: zero-copy.
    ///
    /// # Safety
    ///
    /// Every subscriber must keep the protocol while the slice lives: a subscriber never
    /// writes into a slot's payload (this crate's never do). The segment must not shrink
    /// (SIGBUS; see the crate docs).
    #[inline]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let cap = self.capacity();
        // SAFETY: `cap` bytes of payload inside the mapping; exclusivity is the caller's
        // promise above and this loan's `&mut`.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), cap) }
    }

    /// Publishes the first `len` bytes of the slot.
    #[inline]
    pub fn send(self, len: usize) -> Result<()> {
        let cap = self.capacity();
        if len > cap {
            return Err(Error::TooLarge { len, max: cap });
        }
        let tx = self.tx;
        let word = (u64::from(tx.tail | SEQ_SET) << 32) | len as u64;
        // Release: a subscriber that sees the sequence sees the bytes.
        tx.topic.slot_word(tx.tail).store(word, Ordering::Release);
        tx.tail = tx.tail.wrapping_add(1) & COUNT_MASK;
        tx.tail_signal.get().store(tx.tail);
        Ok(())
    }
}

/// A subscribing end of a topic. Dropping it frees its seat (and the slots it held).
pub struct Subscriber {
    pub(crate) tail: Lent,
    /// The seat this subscriber owns.
    seat: u32,
    /// The next message to read, modulo 2^31: private.
    pub(crate) head: u32,
    /// The first message published after this subscriber joined: those before are history.
    first: u32,
    /// Messages it was overtaken by (lossy), in all.
    missed: u64,
    /// Of those, the ones skipped since the last sample it handed out: the next one reports
    /// them (a look that skips without taking, as a wait's, keeps them here).
    unreported: u64,
    pub(crate) publisher: Proc,
    me: Proc,
    /// When `try_recv` last looked at the publisher's process.
    last_check: Option<Instant>,
    pub(crate) topic: Arc<Topic>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topic", &self.topic.hub)
            .field("seat", &self.seat)
            .field("next", &self.head)
            .finish()
    }
}

impl Subscriber {
    /// Joins the topic `name` on `backend` as a subscriber of untyped (byte) messages.
    ///
    /// Fails with [`Error::NotAChannel`] (not a topic), [`Error::Version`],
    /// [`Error::WrongType`] (a typed topic), [`Error::Busy`] (every seat taken by a live
    /// subscriber), [`Error::PeerDead`] (its publisher died: the name is removed), or the
    /// backend's `NotFound` (after [`SubscribeOptions::open_timeout`], if set).
    pub fn open<B: Backend>(
        backend: &B,
        name: &str,
        opts: &SubscribeOptions,
    ) -> Result<Subscriber> {
        Self::open_typed(backend, name, opts, Fingerprint::BYTES)
    }

    pub(crate) fn open_typed<B: Backend>(
        backend: &B,
        name: &str,
        opts: &SubscribeOptions,
        want: Fingerprint,
    ) -> Result<Subscriber> {
        // Before the publisher can see this end: its releases skip the full barrier.
        fence::registered();
        let sname = SegmentName::new(name)?;
        let hub = Hub::open(backend, &sname, opts.open_timeout.and_then(deadline_in))?;
        let not_a_topic = |reason: String| Error::NotAChannel {
            name: sname.as_str().to_owned(),
            backend: backend.name(),
            reason,
        };
        if hub.len() < OFF_SEATS {
            hub.keep();
            return Err(not_a_topic(format!(
                "{} bytes, fewer than a topic's header ({OFF_SEATS})",
                hub.len()
            )));
        }
        let magic = hub.magic();
        if magic != MAGIC {
            hub.keep();
            return Err(not_a_topic(if magic == 0 {
                "its first 8 bytes stayed zero (no topic header)".to_owned()
            } else {
                format!("its first 8 bytes are {magic:#018x}, not a topic's magic")
            }));
        }
        // SAFETY: at least OFF_SEATS bytes, page-aligned (checked above).
        let h = unsafe { &*hub.base().cast::<Header>() };
        let r = Ordering::SeqCst;
        let version = h.version.load(r);
        if version != VERSION {
            hub.keep();
            return Err(Error::Version {
                name: sname.as_str().to_owned(),
                backend: backend.name(),
                found: version,
                expected: VERSION,
            });
        }
        // Every field read once, into private memory, and checked there.
        let (slots, max, stride, seats) = (
            h.slots.load(r),
            h.max.load(r),
            h.stride.load(r),
            h.seats.load(r),
        );
        let (history, policy, total) = (h.history.load(r), h.policy.load(r), h.total.load(r));
        let found = Fingerprint {
            size: h.type_size.load(r),
            align: h.type_align.load(r),
            hash: h.type_hash.load(r),
        };
        let (pid, start, pidns) = (
            h.publisher_pid.load(r),
            h.publisher_start.load(r),
            h.publisher_pidns.load(r),
        );
        let checked = (|| {
            let shape = Shape::new(slots, max as usize, seats)
                .map_err(|e| not_a_topic(format!("its header is impossible: {e}")))?;
            if shape.stride != stride || shape.total as u64 != total || history >= slots {
                return Err(not_a_topic(format!(
                    "its header says stride {stride}, size {total}, history {history}, which {slots} slots of {max} bytes never have"
                )));
            }
            if hub.len() != shape.total {
                return Err(mismatch(&hub, "size", shape.total as u64, hub.len() as u64));
            }
            let lossy = match policy {
                POLICY_BACK_PRESSURE => false,
                POLICY_LOSSY => true,
                other => return Err(not_a_topic(format!("its policy is {other}"))),
            };
            if found != want {
                return Err(Error::WrongType {
                    name: sname.as_str().to_owned(),
                    backend: backend.name(),
                    expected: want.to_string(),
                    found: found.to_string(),
                });
            }
            let publisher = Proc::checked(pid, start, pidns)
                .ok_or_else(|| not_a_topic(format!("its publisher's process id is {pid}")))?;
            Ok((shape, lossy, publisher))
        })();
        let (shape, lossy, publisher) = match checked {
            Ok(v) => v,
            Err(e) => {
                hub.keep();
                return Err(e);
            }
        };
        hub.keep(); // the publisher owns the name
        let topic = Arc::new(Topic {
            shape,
            lossy,
            history,
            fingerprint: found,
            witness: witness_of(&hub),
            hub,
        });
        if topic.judge_publisher(&publisher) == Verdict::Dead {
            topic.hub.remove_name_once(&topic.header().unlinked);
            return Err(Error::PeerDead { pid: publisher.pid });
        }
        let me = Proc::me();
        let seat = Self::claim(&topic, me)?;
        // SAFETY: the signal is a field of the Subscriber, which holds the Arc as well.
        let tail = unsafe { topic.signal(OFF_TAIL, opts.wait) };
        let s = topic.seat(seat);
        // Join: a head that holds back everything the history may need, marked joining,
        // then the generation (the publisher looks at the seats again before its next
        // message), then the count, which fixes where this subscriber starts: every message
        // the publisher writes after that count was stored was checked against this seat.
        let before = tail.get().load() & COUNT_MASK;
        s.head
            .store(before.wrapping_sub(history) & COUNT_MASK, Ordering::SeqCst);
        s.pin.store(0, Ordering::SeqCst);
        s.active.store(JOINING, Ordering::SeqCst);
        topic.header().generation.fetch_add(1, Ordering::SeqCst);
        // The publisher stores its count without a full barrier (shm_core::fence): its look
        // at the generation may pass that store, and a message or a few go out unchecked
        // against this seat, counted where this end cannot see it yet (it would start on a
        // slot about to be overwritten, and hand it out torn). Make it run the barrier:
        // either it sees the new generation before its next message, or every count it
        // stored before is visible here. Where that cannot be done, give its stores the time
        // to drain (they take nanoseconds).
        if !fence::heavy() {
            std::thread::sleep(fence::UNFENCED_SLEEP);
        }
        let first = tail.get().load() & COUNT_MASK;
        let head = first.wrapping_sub(history) & COUNT_MASK;
        s.head.store(head, Ordering::SeqCst);
        s.active.store(ACTIVE, Ordering::SeqCst);
        topic.wake_publisher();
        Ok(Subscriber {
            tail,
            seat,
            head,
            first,
            missed: 0,
            unreported: 0,
            publisher,
            me,
            last_check: None,
            topic,
        })
    }

    /// Takes a free seat, removing dead owners if every seat is taken: its lock first (a
    /// live holder keeps it), then its owner word.
    fn claim(topic: &Topic, me: Proc) -> Result<u32> {
        let map = topic.hub.mapping();
        for round in 0..2 {
            for i in 0..topic.shape.seats {
                let seat = topic.seat(i);
                if seat.owner.load(Ordering::SeqCst) != 0 {
                    continue;
                }
                let lock = Topic::lock_of(i);
                if topic.witness.hold(map, lock).is_err() {
                    continue;
                }
                if seat
                    .owner
                    .compare_exchange(0, me.pid as u32, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    seat.start.store(me.start, Ordering::SeqCst);
                    seat.pidns.store(me.pidns, Ordering::SeqCst);
                    return Ok(i);
                }
                topic.witness.release(map, lock);
            }
            if round == 0 && topic.evict_dead(|_| true) == 0 {
                break;
            }
        }
        Err(Error::Busy {
            name: topic.hub.name.clone(),
            backend: topic.hub.backend,
            detail: format!(
                "all {} subscriber seats are taken by live processes",
                topic.shape.seats
            ),
        })
    }

    topic_info!();

    /// Messages this subscriber was overtaken by (lossy policy), in all.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The publisher's process id.
    pub fn publisher_pid(&self) -> i32 {
        self.publisher.pid
    }

    /// True while the publisher's process lives.
    pub fn publisher_alive(&self) -> bool {
        self.topic.judge_publisher(&self.publisher).maybe_alive()
    }

    /// Receives the next message in place, waiting for it.
    ///
    /// Fails with [`Error::Closed`] once the publisher finished the stream and every message is
    /// received ([`Error::Aborted`] when it was dropped unfinished), [`Error::PeerDead`] when it
    /// died (messages it completed are received first), [`Error::Protocol`].
    #[inline]
    pub fn recv(&mut self) -> Result<SubSample<'_>> {
        if let Some(len) = self.ready() {
            return Ok(self.take(len));
        }
        self.recv_until(None)
    }

    /// Receives the next message if one is there, or fails with [`Error::Empty`] (or
    /// [`Error::PeerDead`], [`Error::Closed`]).
    #[inline]
    pub fn try_recv(&mut self) -> Result<SubSample<'_>> {
        if let Some(len) = self.ready() {
            return Ok(self.take(len));
        }
        self.try_recv_slow()
    }

    /// `try_recv` once the fast look found nothing (or the topic is lossy).
    #[inline(never)]
    fn try_recv_slow(&mut self) -> Result<SubSample<'_>> {
        match self.look()? {
            Look::Ready(len) => Ok(self.take(len)),
            Look::Closed => Err(self.closed()),
            Look::NotYet => {
                // A dead publisher is worth a look, at most once a millisecond.
                let now = Instant::now();
                if self
                    .last_check
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(1))
                {
                    self.last_check = Some(now);
                    self.check_publisher()?;
                }
                Err(Error::Empty)
            }
        }
    }

    /// Receives the next message, waiting at most `timeout` ([`Error::TimedOut`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<SubSample<'_>> {
        self.recv_until(Some(timeout))
    }

    /// Receives a copy of the next message into the front of `buf`; returns its length.
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        let s = self.recv()?;
        s.copy_to(buf)?;
        Ok(s.len())
    }

    /// Receives the next message, waiting at most `timeout` (`None`: as long as it takes).
    /// The clock is read only once there is something to wait for: a message that is there
    /// costs none.
    #[inline(never)]
    fn recv_until(&mut self, timeout: Option<Duration>) -> Result<SubSample<'_>> {
        let mut waiting: Option<(Instant, Option<Instant>)> = None;
        loop {
            match self.look()? {
                Look::Ready(len) => return Ok(self.take(len)),
                Look::Closed => return Err(self.closed()),
                Look::NotYet => {}
            }
            let (start, deadline) = *waiting.get_or_insert_with(|| {
                let now = Instant::now();
                (now, timeout.and_then(|t| now.checked_add(t)))
            });
            let slice = next_slice(deadline, start)?;
            let head = self.head;
            let seq = head | SEQ_SET;
            let word = self.topic.slot_word(head);
            let tail = self.tail.get();
            let got = wait_shared(
                tail.words(),
                tail.strategy(),
                || (word.load(Ordering::Acquire) >> 32) as u32 == seq,
                |t| t & COUNT_MASK != head || t & CLOSED != 0,
                slice,
            );
            match got {
                Ok(_) => {}
                Err(shm_core::Error::TimedOut { .. }) => {
                    self.check_publisher()?;
                    self.check_seat()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The length of message `head` when it is there, complete and in bounds, under
    /// back-pressure: every receive's first look, inline. `None` sends the receive to
    /// [`look`](Self::look), which also pins (lossy), skips history that is gone and reports
    /// what is wrong.
    #[inline(always)]
    fn ready(&self) -> Option<usize> {
        if self.topic.lossy {
            return None;
        }
        let word = self.topic.slot_word(self.head).load(Ordering::Acquire);
        let len = (word & 0xffff_ffff) as usize;
        ((word >> 32) as u32 == self.head | SEQ_SET && len <= self.topic.shape.max as usize)
            .then_some(len)
    }

    /// What is there for message `head` now. Under the lossy policy, pins it first; skips
    /// history that is gone; jumps over messages overtaken.
    pub(crate) fn look(&mut self) -> Result<Look> {
        let slots = self.topic.shape.slots;
        loop {
            let head = self.head;
            let seat = self.topic.seat(self.seat);
            if self.topic.lossy {
                seat.pin.store(head | HOLD, Ordering::SeqCst);
            }
            if let Some(len) = self.complete(head)? {
                return Ok(Look::Ready(len));
            }
            let tail = self.tail.get().load();
            let published = tail.wrapping_sub(head) & COUNT_MASK;
            // Published between the two looks: the count says so, the slot now too.
            if published != 0 {
                if let Some(len) = self.complete(head)? {
                    return Ok(Look::Ready(len));
                }
            }
            // The count may lag the slot by the message in flight: a head ahead of the count
            // is one the publisher is still counting, not one published long ago.
            if published == 0 || published > COUNT_MASK / 2 {
                if self.topic.lossy {
                    seat.pin.store(0, Ordering::SeqCst);
                }
                return Ok(if tail & CLOSED != 0 && published == 0 {
                    Look::Closed
                } else {
                    Look::NotYet
                });
            }
            // Message `head` was published, and its slot holds another: it is gone.
            let history = self.first.wrapping_sub(head) & COUNT_MASK;
            let (next, lost) = if history != 0 && history <= self.topic.history {
                (head.wrapping_add(1), 0) // history no longer there: skip it
            } else if self.topic.lossy {
                // Overtaken: go on from the oldest message that may still be there.
                let oldest = if published >= slots {
                    tail.wrapping_sub(slots - 1)
                } else {
                    head.wrapping_add(1)
                };
                (oldest, u64::from(oldest.wrapping_sub(head) & COUNT_MASK))
            } else if published > slots + self.topic.history {
                return Err(Error::Protocol(format!(
                    "the publisher says it published message {}, {published} past the one this subscriber waits for",
                    tail & COUNT_MASK
                )));
            } else {
                return Err(Error::Protocol(format!(
                    "message {head} was overwritten before this subscriber released it"
                )));
            };
            self.unreported += lost;
            self.missed += lost;
            self.head = next & COUNT_MASK;
            seat.head.store(self.head, Ordering::SeqCst);
        }
    }

    /// True when a receive would find a message now, without taking it (nor holding its
    /// slot); the reason none will ever come once the topic ended or went bad.
    #[cfg(feature = "async")]
    pub(crate) fn ready_now(&mut self) -> Result<bool> {
        match self.look()? {
            Look::Ready(_) => {
                if self.topic.lossy {
                    self.topic.seat(self.seat).pin.store(0, Ordering::SeqCst);
                }
                Ok(true)
            }
            Look::Closed => Err(self.closed()),
            Look::NotYet => Ok(false),
        }
    }

    /// The length of message `head` when `slot` holds it complete (checked).
    fn complete(&self, head: u32) -> Result<Option<usize>> {
        let word = self.topic.slot_word(head).load(Ordering::SeqCst);
        if (word >> 32) as u32 != head | SEQ_SET {
            return Ok(None);
        }
        let len = (word & 0xffff_ffff) as usize;
        if len > self.topic.shape.max as usize {
            return Err(Error::Protocol(format!(
                "message {head} claims {len} bytes; the topic's maximum is {}",
                self.topic.shape.max
            )));
        }
        Ok(Some(len))
    }

    #[inline]
    pub(crate) fn take(&mut self, len: usize) -> SubSample<'_> {
        let slot = self.topic.slot(self.head);
        let missed = std::mem::take(&mut self.unreported);
        SubSample {
            // SAFETY: the payload follows the slot header, inside the mapping.
            data: unsafe { slot.add(SLOT_HEADER) },
            len,
            missed,
            rx: self,
        }
    }

    /// `Closed` when the publisher finished the stream, `Aborted` when it was dropped
    /// unfinished.
    pub(crate) fn closed(&self) -> Error {
        match self.topic.header().end.load(Ordering::SeqCst) {
            END_COMPLETE => Error::Closed,
            _ => Error::Aborted,
        }
    }

    fn check_publisher(&self) -> Result<()> {
        self.topic.check_publisher(&self.publisher)
    }

    fn check_seat(&self) -> Result<()> {
        let seat = self.topic.seat(self.seat);
        if seat.owner.load(Ordering::SeqCst) != self.me.pid as u32
            || seat.active.load(Ordering::SeqCst) != ACTIVE
        {
            return Err(Error::Protocol(
                "this subscriber's seat was taken away (another process wrote over it)".to_owned(),
            ));
        }
        Ok(())
    }

    #[inline]
    fn release(&mut self) {
        self.head = self.head.wrapping_add(1) & COUNT_MASK;
        let seat = self.topic.seat(self.seat);
        if self.topic.lossy {
            seat.pin.store(0, Ordering::Release);
        }
        // Release: every read of the slot happened before the publisher can see it free.
        // Either the publisher sees this head or this end sees that it sleeps (the release
        // line is asymmetric: a publisher that sleeps makes this end run the barrier).
        let line = self.topic.line(OFF_RELEASE);
        if fence::store_then_load(&seat.head, self.head, &line.sleepers) != 0 {
            Topic::ring_release(line);
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let seat = self.topic.seat(self.seat);
        let me = self.me.pid as u32;
        if seat.owner.load(Ordering::SeqCst) == me {
            seat.active.store(0, Ordering::SeqCst);
            seat.pin.store(0, Ordering::SeqCst);
            let _ = seat
                .owner
                .compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
            self.topic.wake_publisher();
        }
        // The seat is free: its lock too (the mapping may outlive this end in a reactor).
        let t = &self.topic;
        t.witness
            .release(t.hub.mapping(), Topic::lock_of(self.seat));
        if t.judge_publisher(&self.publisher) == Verdict::Dead {
            t.hub.remove_name_once(&t.header().unlinked);
        }
    }
}

pub(crate) enum Look {
    /// Message `head` is there, of this length.
    Ready(usize),
    NotYet,
    Closed,
}

/// A message received in place; its slot is released when the sample drops.
pub struct SubSample<'a> {
    rx: &'a mut Subscriber,
    data: *const u8,
    len: usize,
    missed: u64,
}

impl std::fmt::Debug for SubSample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubSample")
            .field("message", &self.rx.head)
            .field("len", &self.len)
            .field("missed", &self.missed)
            .finish()
    }
}

impl SubSample<'_> {
    /// The message's length (read once from shared memory and checked).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a message of 0 bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many messages this subscriber was overtaken by just before this one (lossy).
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The message's number (counts from 0 modulo 2^31, in the order published).
    pub fn sequence(&self) -> u32 {
        self.rx.head
    }

    /// The first byte of the message, in shared memory (`len()` bytes, 8-aligned): for a
    /// system call that copies it (`write(2)`), with no Rust reference into shared memory.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.data
    }

    /// Copies the message to the front of `buf` ([`Error::TooLarge`] when shorter).
    pub fn copy_to(&self, buf: &mut [u8]) -> Result<()> {
        self.bytes().copy_to(buf)
    }

    /// A copy of the message.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }

    /// The message in place: zero-copy.
    ///
    /// # Safety
    ///
    /// The publisher must keep the protocol while the slice lives: it never writes a slot a
    /// subscriber has not released (back-pressure) or holds (lossy). A publisher built from
    /// this crate keeps it; another program may not, and Rust assumes the bytes behind a
    /// `&[u8]` never change. The segment must not shrink (SIGBUS; see the crate docs).
    #[inline]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes inside the mapping; immutability is the caller's promise.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The message's bytes, to read by copy.
    #[inline]
    pub(crate) fn bytes(&self) -> InPlace {
        // SAFETY: `len` bytes inside the mapping (checked at receive), which the subscriber
        // this sample borrows keeps mapped.
        unsafe { InPlace::new(self.data, self.len) }
    }
}

impl Drop for SubSample<'_> {
    #[inline]
    fn drop(&mut self) {
        self.rx.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hybrid wait ends on the early condition and on the word, yields for its window,
    /// then says it sleeps (the writer's store then wakes it), and times out with neither;
    /// the other strategies wait as their signal does.
    #[test]
    fn a_hybrid_wait_yields_then_sleeps() {
        let (value, sleepers, early) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
        let words = (&value, &sleepers);
        let long = Duration::from_secs(10);
        let wait = |strategy| {
            wait_shared(
                words,
                strategy,
                || early.load(Ordering::SeqCst) == 1,
                |v| v == 7,
                long,
            )
        };
        early.store(1, Ordering::SeqCst);
        for s in [
            WaitStrategy::Hybrid,
            WaitStrategy::Spin,
            WaitStrategy::Block,
        ] {
            assert_eq!(wait(s).unwrap(), None, "{s}: early");
        }
        early.store(0, Ordering::SeqCst);
        value.store(7, Ordering::SeqCst);
        for s in [
            WaitStrategy::Hybrid,
            WaitStrategy::Spin,
            WaitStrategy::Block,
        ] {
            assert_eq!(wait(s).unwrap(), Some(7), "{s}: the word");
        }
        value.store(0, Ordering::SeqCst);
        std::thread::scope(|sc| {
            // Only past its yield window (counted from after t0) does the waiter announce
            // that it sleeps, and a store that sees it wakes it.
            let t0 = Instant::now();
            let waiter = sc.spawn(|| wait(WaitStrategy::Hybrid));
            while sleepers.load(Ordering::SeqCst) == 0 {
                assert!(t0.elapsed() < long, "the waiter never said it sleeps");
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(t0.elapsed() >= YIELD_WINDOW, "it slept before its window");
            Signal::new(&value, &sleepers, WaitStrategy::Block).store(7);
            assert_eq!(waiter.join().unwrap().unwrap(), Some(7));
        });
        assert_eq!(
            sleepers.load(Ordering::SeqCst),
            0,
            "no sleeper left counted"
        );
        let err = wait_shared(
            words,
            WaitStrategy::Hybrid,
            || false,
            |_| false,
            Duration::from_millis(20),
        )
        .unwrap_err();
        assert!(matches!(err, shm_core::Error::TimedOut { .. }), "{err}");
    }
}
