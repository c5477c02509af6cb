//! A service's ends: the server, its clients, a request, and the shared segment they use.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shm_core::wait::{Signal, WaitStrategy, wake_all};
use shm_core::{Backend, SegmentName};
use zerocopy::{Immutable, IntoBytes};

use super::layout::*;
use crate::hub::Hub;
use crate::layout::{CLOSED, COUNT_MASK, SEQ_SET, SLOT_HEADER};
use crate::lent::Lent;
use crate::options::setters;
use crate::pair::call_forms;
use crate::peer::{Proc, SEAT_CREATOR, Verdict, Witness};
use crate::ring::deadline_in;
use crate::shared::{Deadline, PEER_CHECK, wait_in_slices};
use crate::{Error, Result, Sample};

/// The parameters of a service. The server fixes `clients` and `max_message` at create; a
/// client takes them from the service's header, and uses only `wait` and `open_timeout`.
///
/// ```
/// use shm_channel::service::ServiceOptions;
/// let opts = ServiceOptions::new(1024).clients(32).mode(0o660);
/// assert_eq!((opts.clients, opts.max_message), (32, 1024));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// The most clients at once, 1 to 1024 (default 16).
    pub clients: u32,
    /// The largest request or answer in bytes, 1 to 2^29.
    pub max_message: usize,
    /// Permission bits of the segment (default `0o600`).
    pub mode: u32,
    /// How this end waits (default hybrid: spin briefly, then sleep on a futex).
    pub wait: WaitStrategy,
    /// How long a client's open waits for a header in the making or for a seat that a client
    /// that left or died still holds (default 5 s).
    pub open_timeout: Duration,
}

impl ServiceOptions {
    /// Requests and answers of at most `max_message` bytes; 16 clients, mode 0600, hybrid
    /// waiting, an open timeout of 5 s.
    pub fn new(max_message: usize) -> Self {
        Self {
            clients: 16,
            max_message,
            mode: 0o600,
            wait: WaitStrategy::Hybrid,
            open_timeout: Duration::from_secs(5),
        }
    }

    setters! {
        /// Sets the most clients at once.
        clients: u32,
        /// Sets the permission bits.
        mode: u32,
        /// Sets how this end waits.
        wait: WaitStrategy,
        /// Sets how long a client's open waits.
        open_timeout: Duration,
    }

    /// Bytes of the segment a service of these options takes, or [`Error::InvalidOptions`].
    pub fn segment_size(&self) -> Result<usize> {
        Ok(Shape::new(self.clients, self.max_message)?.total)
    }
}

impl Default for ServiceOptions {
    /// 16 clients, messages of 64 KiB.
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

/// One end's hold on a service's segment, its shape checked against the mapping.
pub(crate) struct Seg {
    shape: Shape,
    witness: Witness,
    hub: Hub,
}

impl Seg {
    /// `hub` as a service of `shape`, if its mapping holds that shape.
    fn new(hub: Hub, shape: Shape) -> Result<Seg> {
        if hub.len() < shape.total || !hub.mapping().is_writable() {
            return Err(Error::Mismatch {
                name: hub.name.clone(),
                backend: hub.backend,
                what: "size",
                expected: shape.total as u64,
                found: hub.len() as u64,
            });
        }
        let sysv_id = match hub.mapping().fd() {
            Some(_) => None,
            None => hub.segment_info().ok().and_then(|i| i.id),
        };
        Ok(Seg {
            shape,
            witness: Witness::of(hub.mapping(), sysv_id),
            hub,
        })
    }

    /// The `T` at `offset`.
    ///
    /// # Safety
    ///
    /// `offset + size_of::<T>() <= shape.total` (so inside the mapping: checked in `new`),
    /// `offset` aligned for `T` (the mapping is page-aligned), and `T` made only of atomics.
    unsafe fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset + size_of::<T>() <= self.shape.total);
        // SAFETY: as the caller promises; the mapping lives as long as `self`.
        unsafe { &*self.hub.base().add(offset).cast::<T>() }
    }

    fn header(&self) -> &Header {
        // SAFETY: a Header of atomics at offset 0; every shape is longer.
        unsafe { self.at(0) }
    }

    fn bell(&self) -> &Bell {
        // SAFETY: a Bell of atomics at OFF_BELL (128-aligned), before the seats.
        unsafe { self.at(OFF_BELL) }
    }

    /// `i` as a seat: itself when below the seats (every caller's case), else modulo the
    /// seats. No division on the way of a call: the seat is looked up at every look of a
    /// spinning wait.
    #[inline(always)]
    fn seat_no(&self, i: u32) -> u32 {
        let n = self.shape.seats;
        if i < n { i } else { i % n }
    }

    /// Seat `i`'s control line (`i` is taken modulo the seats: always a seat).
    #[inline]
    fn seat(&self, i: u32) -> &SeatControl {
        // SAFETY: seat `seat_no(i) < seats` is inside the shape, 128-aligned (layout's tests).
        unsafe { self.at(self.shape.seat(self.seat_no(i))) }
    }

    /// Seat `i`'s slot header.
    #[inline]
    fn slot_header(&self, i: u32) -> &AtomicU64 {
        // SAFETY: the slot header follows the seat's control line, 8 bytes, 128-aligned.
        unsafe { self.at(self.shape.slot(self.seat_no(i))) }
    }

    /// Seat `i`'s payload: `max` bytes.
    #[inline]
    fn payload(&self, i: u32) -> *mut u8 {
        // SAFETY: the payload follows the slot header and ends inside the shape.
        unsafe {
            self.hub
                .base()
                .add(self.shape.slot(self.seat_no(i)) + SLOT_HEADER)
        }
    }

    /// A signal over two words of the mapping, to keep beside this `Seg`.
    ///
    /// # Safety
    ///
    /// The [`Lent`] must be dropped before `self` (the holder declares it before its `Seg`).
    unsafe fn signal(&self, value: &AtomicU32, sleepers: &AtomicU32, wait: WaitStrategy) -> Lent {
        // SAFETY: both words are in the mapping, which never moves and outlives the Lent (the
        // caller's promise).
        unsafe { Lent::new(Signal::new(value, sleepers, wait)) }
    }

    /// The lock byte of seat `i`'s owner.
    fn lock_of(i: u32) -> u64 {
        SEAT_CREATOR + 1 + u64::from(i)
    }

    /// The verdict on the owner of seat `i`, announced as `p`.
    fn judge_owner(&self, i: u32, p: &Proc) -> Verdict {
        self.witness.judge(self.hub.mapping(), Self::lock_of(i), p)
    }

    /// Whether seat `i` is held by an end that is gone (left, dead, or garbage).
    fn seat_is_stale(&self, i: u32) -> bool {
        let s = self.seat(i);
        if s.owner.pid.load(Ordering::SeqCst) == 0 {
            return false;
        }
        s.left.load(Ordering::SeqCst) != 0
            || Proc::read(&s.owner).is_none_or(|p| self.judge_owner(i, &p) == Verdict::Dead)
    }

    /// Tells a server that sleeps, or is about to, that a request is in a seat: rings the bell
    /// only when a waiter announced itself. The fence orders the request's header before the
    /// look at the sleepers, as the waiter's announcement is ordered before its last scan of
    /// the seats (see `Service::recv_until`): either the waiter's scan sees the request, or
    /// this look sees the waiter. A server that spins is not rung at all, so the bell's line
    /// stays in its cache instead of crossing to every client and back on every call.
    #[inline]
    fn ring_if_waited(&self) {
        let bell = self.bell();
        std::sync::atomic::fence(Ordering::SeqCst);
        if bell.sleepers.load(Ordering::Relaxed) != 0 {
            self.ring();
        }
    }

    /// Rings the bell: the server wakes if it sleeps.
    fn ring(&self) {
        let bell = self.bell();
        bell.value.fetch_add(1, Ordering::SeqCst);
        if bell.sleepers.load(Ordering::SeqCst) != 0 {
            wake_all(&bell.value);
        }
    }

    /// `PeerDead` (and the name removed) when the server, announced as `server`, died.
    pub(crate) fn check_server(&self, server: &Proc) -> Result<()> {
        if self.witness.judge(self.hub.mapping(), SEAT_CREATOR, server) == Verdict::Dead {
            self.remove_name();
            return Err(Error::PeerDead { pid: server.pid });
        }
        Ok(())
    }

    /// Removes the name once (the first end to learn that the server is gone does it).
    fn remove_name(&self) {
        if !self.hub.remove_name_once(&self.header().unlinked) {
            self.hub.keep();
        }
    }
}

fn next(count: u32) -> u32 {
    count.wrapping_add(1) & COUNT_MASK
}

/// A slot header word: the call's count in the high half, length and flags in the low.
fn word(count: u32, low: u32) -> u64 {
    (u64::from(count | SEQ_SET) << 32) | u64::from(low)
}

/// The serving end of a service: waits for any client's request, answers it to that client.
/// Dropping it closes the service: clients waiting for an answer get [`Error::Closed`], and the
/// name is removed.
pub struct Service {
    /// The bell clients ring; declared before `seg`, which it points into.
    pub(crate) bell: Lent,
    /// Per seat: the count of the call answered last (0: none since the seat was freed).
    answered: Vec<Cell<u32>>,
    /// The seat the next look starts from.
    next_seat: u32,
    /// The seats a spinning wait looks at: up to the last seat with an owner, as the last
    /// judgement of the seats found it (or beyond, once a request came from there). A
    /// client seated since is seen by the slower looks, which scan every seat.
    span: Cell<u32>,
    /// Receives since the seats were last judged.
    since_tidy: u32,
    tidied: Cell<Instant>,
    pub(crate) seg: Arc<Seg>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.seg.hub.name)
            .field("backend", &self.seg.hub.backend)
            .field("clients", &self.seg.shape.seats)
            .field("max_message", &self.seg.shape.max)
            .finish()
    }
}

/// How often a busy server judges its clients (it also does whenever it waits that long).
const TIDY_EVERY: Duration = PEER_CHECK;

impl Service {
    /// Creates the service `name` on `backend`, as its server. A segment of that name whose
    /// server died is replaced; one whose server lives is [`Error::Busy`].
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &ServiceOptions) -> Result<Service> {
        let sname = SegmentName::new(name)?;
        let shape = Shape::new(opts.clients, opts.max_message)?;
        let mut tries = 0;
        let hub = loop {
            tries += 1;
            match Hub::create(backend, &sname, shape.total, opts.mode) {
                Ok(h) => break h,
                Err(Error::Shm(e)) if e.is_already_exists() && tries < 4 => {
                    match stale_server(backend, &sname)? {
                        Stale::Removed => {}
                        Stale::Live(pid) => {
                            return Err(Error::Busy {
                                name: name.to_owned(),
                                backend: backend.name(),
                                detail: format!("a live server (pid {pid}) serves it"),
                            });
                        }
                        Stale::Stranger => return Err(Error::Shm(e)),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let seg = Seg::new(hub, shape)?;
        seg.witness
            .hold(seg.hub.mapping(), SEAT_CREATOR)
            .map_err(|e| Error::Busy {
                name: name.to_owned(),
                backend: backend.name(),
                detail: format!("its server's seat is held by a live process ({e})"),
            })?;
        let h = seg.header();
        h.version.store(VERSION, Ordering::Relaxed);
        h.seats.store(shape.seats, Ordering::Relaxed);
        h.max.store(shape.max, Ordering::Relaxed);
        h.stride.store(shape.stride, Ordering::Relaxed);
        h.total.store(shape.total as u64, Ordering::Relaxed);
        h.unlinked.store(0, Ordering::Relaxed);
        Proc::me().write(&h.server);
        h.state.store(OPEN, Ordering::SeqCst);
        // Last, with Release: a client that sees the magic sees everything before it.
        h.magic.store(MAGIC, Ordering::Release);
        let bell = seg.bell();
        // SAFETY: `bell` is declared before `seg` in Service and lent only for a borrow of it.
        let bell = unsafe { seg.signal(&bell.value, &bell.sleepers, opts.wait) };
        Ok(Service {
            bell,
            answered: (0..shape.seats).map(|_| Cell::new(0)).collect(),
            next_seat: 0,
            span: Cell::new(shape.seats),
            since_tidy: 0,
            tidied: Cell::new(Instant::now()),
            seg: Arc::new(seg),
        })
    }

    /// The next request of any client, waiting for one; the seats are looked at in turn, from
    /// the one after the seat served last. Fails only with [`Error::Protocol`] for a segment
    /// this end cannot use, or an error of the wait.
    #[inline]
    pub fn recv(&mut self) -> Result<Request<'_>> {
        self.recv_until(|| None)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` ([`Error::TimedOut`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<'_>> {
        self.recv_until(|| deadline_in(timeout))
    }

    /// As [`recv`](Self::recv), waiting until `deadline` at most.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Request<'_>> {
        self.recv_until(|| Some(deadline))
    }

    /// A request if one waits, else [`Error::Empty`].
    pub fn try_recv(&mut self) -> Result<Request<'_>> {
        self.housekeep();
        match self.find() {
            Some((seat, h)) => self.take(seat, h),
            None => Err(Error::Empty),
        }
    }

    /// Receives as `recv` does, waiting until `deadline()` at most: computed only when no
    /// request came within the first looks (a request that comes while the server spins
    /// costs no clock read).
    #[inline]
    fn recv_until(&mut self, deadline: impl FnOnce() -> Deadline) -> Result<Request<'_>> {
        self.housekeep();
        let first = self
            .find()
            .or_else(|| self.bell.get().spin_first(|| self.find_near()));
        match first {
            Some((seat, h)) => self.take(seat, h),
            None => self.wait_request(deadline()),
        }
    }

    /// [`recv_until`](Self::recv_until) after its first looks.
    #[inline(never)]
    fn wait_request(&mut self, deadline: Deadline) -> Result<Request<'_>> {
        let found = loop {
            let rung = self.bell.get().load();
            if let Some(found) = self.find() {
                break found;
            }
            // While it spins, the wait looks at the seats that had owners (see `span`); what
            // it matched, as read once, is taken as it is, without a second scan. Each slower
            // look (and the last before a sleep, after the sleeper is announced) scans every
            // seat: a client rings the bell only for an announced waiter
            // (`Seg::ring_if_waited`), the fence pairs with its own.
            let matched = Cell::new(None);
            let early = || {
                matched.set(self.find_near());
                matched.get().is_some()
            };
            wait_in_slices(
                deadline,
                || {
                    self.tidy();
                    Ok(())
                },
                |slice| {
                    self.bell.get().wait_until_or(
                        &early,
                        |v| {
                            v != rung || {
                                std::sync::atomic::fence(Ordering::SeqCst);
                                self.find().is_some()
                            }
                        },
                        slice,
                    )
                },
            )?;
            if let Some(found) = matched.get() {
                break found;
            }
        };
        self.take(found.0, found.1)
    }

    /// Judges the clients when a client asked for it, or when it is time.
    #[inline]
    pub(crate) fn housekeep(&mut self) {
        // The clock is read once every 16 receives.
        self.since_tidy += 1;
        let due = self.since_tidy >= 16 && {
            self.since_tidy = 0;
            self.tidied.get().elapsed() >= TIDY_EVERY
        };
        if due || self.seg.bell().check.load(Ordering::Relaxed) != 0 {
            self.tidy();
        }
    }

    /// Frees the seats whose clients left or died; returns how many.
    fn tidy(&self) -> usize {
        self.seg.bell().check.store(0, Ordering::SeqCst);
        self.tidied.set(Instant::now());
        let (mut freed, mut span) = (0, 0);
        for i in 0..self.seg.shape.seats {
            if self.seg.seat_is_stale(i) {
                self.free(i);
                freed += 1;
            } else if self.seg.seat(i).owner.pid.load(Ordering::SeqCst) != 0 {
                span = i + 1;
            }
        }
        self.span.set(span);
        freed
    }

    /// Empties seat `i` and gives it to the next client: its owner announced last.
    fn free(&self, i: u32) {
        let s = self.seg.seat(i);
        self.seg.slot_header(i).store(0, Ordering::SeqCst);
        s.answer.store(0, Ordering::SeqCst);
        s.left.store(0, Ordering::SeqCst);
        s.owner.start.store(0, Ordering::SeqCst);
        s.owner.pidns.store(0, Ordering::SeqCst);
        self.answered[i as usize].set(0);
        s.owner.pid.store(0, Ordering::SeqCst);
    }

    /// Seat `i`'s slot header, if it holds the request the server expects there next.
    #[inline]
    fn pending(&self, i: u32) -> Option<u64> {
        let h = self.seg.slot_header(i).load(Ordering::Acquire);
        let want = next(self.answered[i as usize].get()) | SEQ_SET;
        ((h >> 32) as u32 == want && h as u32 & ANSWER == 0).then_some(h)
    }

    /// The first seat, from `next_seat` on, that holds a request.
    #[inline]
    pub(crate) fn find(&self) -> Option<(u32, u64)> {
        self.find_below(self.seg.shape.seats)
    }

    /// As [`find`](Self::find), among the seats a spinning wait looks at (see `span`).
    #[inline]
    fn find_near(&self) -> Option<(u32, u64)> {
        self.find_below(self.span.get())
    }

    /// The first seat below `n`, from `next_seat` on, that holds a request.
    #[inline]
    fn find_below(&self, n: u32) -> Option<(u32, u64)> {
        let from = self.next_seat.min(n);
        // A plain loop, in turn from `from` and round: no iterator state between the looks.
        let mut i = from;
        for _ in 0..n {
            if let Some(h) = self.pending(i) {
                return Some((i, h));
            }
            i = if i + 1 < n { i + 1 } else { 0 };
        }
        None
    }

    /// The request in seat `seat`, whose header said `h`: its length checked.
    #[inline]
    pub(crate) fn take(&mut self, seat: u32, h: u64) -> Result<Request<'_>> {
        if seat >= self.span.get() {
            self.span.set(seat + 1);
        }
        self.next_seat = if seat + 1 < self.seg.shape.seats {
            seat + 1
        } else {
            0
        };
        let count = (h >> 32) as u32 & COUNT_MASK;
        let len = (h as u32 & LEN_MASK) as usize;
        let client = self.seg.seat(seat).owner.pid.load(Ordering::Relaxed) as i32;
        let request = Request {
            service: self,
            seat,
            count,
            len,
            client,
            done: false,
        };
        if len > request.service.seg.shape.max as usize {
            return Err(request.refuse_length());
        }
        Ok(request)
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.seg.hub.name
    }

    /// The most clients at once, fixed at create.
    pub fn max_clients(&self) -> u32 {
        self.seg.shape.seats
    }

    /// The largest request or answer, in bytes.
    pub fn max_message(&self) -> usize {
        self.seg.shape.max as usize
    }

    /// The process ids of the clients that hold a seat now (a client that left or died is
    /// counted until the server frees its seat, within about 40 ms of the server waiting).
    pub fn clients(&self) -> Vec<i32> {
        (0..self.seg.shape.seats)
            .filter_map(|i| {
                let s = self.seg.seat(i);
                let pid = s.owner.pid.load(Ordering::SeqCst);
                (pid != 0 && s.left.load(Ordering::SeqCst) == 0).then_some(pid as i32)
            })
            .collect()
    }

    /// Removes the service's name now, before the server is dropped: the clients that hold
    /// seats go on calling, and no new client can open it (for a fixed set of clients; also so
    /// that nothing is left of the service once every end is gone, however they end).
    pub fn remove_name(&self) -> Result<()> {
        self.seg.header().unlinked.store(1, Ordering::SeqCst);
        self.seg.hub.remove_name()
    }

    /// Frees the seats of clients that left or died now, without waiting for the next check;
    /// returns how many.
    pub fn free_departed(&mut self) -> usize {
        self.tidy()
    }

    /// What the kernel says about the service's segment now.
    pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
        self.seg.hub.segment_info()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.seg.header().state.store(SHUT, Ordering::SeqCst);
        for i in 0..self.seg.shape.seats {
            let s = self.seg.seat(i);
            s.answer.fetch_or(CLOSED, Ordering::SeqCst);
            if s.answer_sleepers.load(Ordering::SeqCst) != 0 {
                wake_all(&s.answer);
            }
        }
        // The segment's handle removes the name as it drops (the creator's, whatever a client
        // wrote in the flag; a name that now stands for another segment is left alone).
        self.seg.header().unlinked.store(1, Ordering::SeqCst);
    }
}

/// One client's request, received by [`Service::recv`], in place in the client's seat. Answer
/// it with [`reply`](Self::reply) (or [`fail`](Self::fail)); dropped unanswered, it fails the
/// call ([`Error::CallFailed`] for the client).
pub struct Request<'a> {
    service: &'a mut Service,
    seat: u32,
    count: u32,
    len: usize,
    client: i32,
    done: bool,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("seat", &self.seat)
            .field("client", &self.client)
            .field("len", &self.len)
            .finish()
    }
}

impl Request<'_> {
    /// The request in place (zero-copy): read it through the [`Sample`]'s forms. Valid until
    /// the answer, which takes `self`.
    pub fn data(&self) -> Sample<'_> {
        // SAFETY: `len` was checked against the service's maximum at receive; the payload lies
        // inside the mapping, which the service keeps while this request borrows it.
        unsafe { Sample::in_pair(self.service.seg.payload(self.seat), self.len) }
    }

    /// A copy of the request.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// The request's length in bytes (read once, checked against the maximum).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a request of 0 bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The seat of the client that called (0 to `max_clients - 1`).
    pub fn seat(&self) -> u32 {
        self.seat
    }

    /// The process id the calling client announced.
    pub fn client_pid(&self) -> i32 {
        self.client
    }

    /// Answers with a copy of `data` ([`Error::TooLarge`] beyond the maximum: the call then
    /// fails for the client).
    #[inline]
    pub fn reply(mut self, data: &[u8]) -> Result<()> {
        self.answer(data, 0)
    }

    /// Answers with one value of plain data.
    #[inline]
    pub fn reply_value<T: IntoBytes + Immutable + ?Sized>(self, value: &T) -> Result<()> {
        self.reply(value.as_bytes())
    }

    /// Fails the call: the client's `call` returns [`Error::CallFailed`] with `message` (cut
    /// to the service's maximum message).
    pub fn fail(mut self, message: &str) -> Result<()> {
        let max = self.service.seg.shape.max as usize;
        let cut = &message.as_bytes()[..message.len().min(max)];
        self.answer(cut, FAILED)
    }

    /// Fails a request whose header claims more than the maximum (a client that breaks the
    /// protocol): the client learns why, the server gets [`Error::Protocol`].
    #[cold]
    fn refuse_length(self) -> Error {
        let max = self.service.seg.shape.max;
        let why = format!(
            "the request claims {} bytes; the service's maximum is {max}",
            self.len
        );
        let client = self.client;
        match self.fail(&why) {
            Ok(()) => Error::Protocol(format!("client pid {client}: {why}")),
            Err(e) => e,
        }
    }

    /// Writes the answer into the seat and tells its client.
    #[inline]
    fn answer(&mut self, data: &[u8], flags: u32) -> Result<()> {
        let seg = &self.service.seg;
        let max = seg.shape.max as usize;
        if data.len() > max {
            return Err(Error::TooLarge {
                len: data.len(),
                max,
            });
        }
        // SAFETY: the payload holds `max` bytes, `data` is no longer (checked above) and
        // private memory, so no overlap; the seat is the server's until it answers.
        unsafe { crate::bytes::copy(data.as_ptr(), seg.payload(self.seat), data.len()) };
        // Release: a client that sees the header sees the bytes.
        seg.slot_header(self.seat).store(
            word(self.count, data.len() as u32 | ANSWER | flags),
            Ordering::Release,
        );
        self.done = true;
        self.service.answered[self.seat as usize].set(self.count);
        let s = seg.seat(self.seat);
        s.answer.store(self.count, Ordering::SeqCst);
        if s.answer_sleepers.load(Ordering::SeqCst) != 0 {
            wake_all(&s.answer);
        }
        Ok(())
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.answer(b"the server dropped the request without answering", FAILED);
        }
    }
}

/// The calling end of a service: one seat, one call at a time.
pub struct ServiceClient {
    /// The seat's answer count; declared before `seg`, which it points into.
    pub(crate) answer: Lent,
    seat: u32,
    /// Calls made (modulo 2^31).
    pub(crate) calls: u32,
    /// Answers taken: `calls`, or one behind it after a call that timed out.
    pub(crate) taken: u32,
    pub(crate) server: Proc,
    pub(crate) seg: Arc<Seg>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("name", &self.seg.hub.name)
            .field("backend", &self.seg.hub.backend)
            .field("seat", &self.seat)
            .field("server", &self.server.pid)
            .finish()
    }
}

/// What a segment found in the way of a new server is.
enum Stale {
    /// A service whose server died: its name was removed.
    Removed,
    /// A service whose server lives.
    Live(i32),
    /// Something else.
    Stranger,
}

/// Judges the service `name` whose segment is in the way of a new one.
fn stale_server<B: Backend>(backend: &B, name: &SegmentName) -> Result<Stale> {
    let hub = match Hub::open(backend, name, None) {
        Ok(h) => h,
        // Gone meanwhile: try again.
        Err(Error::Shm(e)) if e.is_not_found() => return Ok(Stale::Removed),
        Err(e) => return Err(e),
    };
    if hub.len() < OFF_SEATS || hub.magic() != MAGIC {
        return Ok(Stale::Stranger);
    }
    let Ok(seg) = Seg::new(hub, Shape::new(1, 1)?) else {
        return Ok(Stale::Stranger);
    };
    let Some(server) = Proc::read(&seg.header().server) else {
        return Ok(Stale::Stranger);
    };
    if seg.witness.judge(seg.hub.mapping(), SEAT_CREATOR, &server) != Verdict::Dead {
        return Ok(Stale::Live(server.pid));
    }
    seg.remove_name();
    Ok(Stale::Removed)
}

impl ServiceClient {
    /// Opens the service `name` on `backend` and takes a free seat. Fails with
    /// [`Error::ServiceFull`] when every seat is held by a live client, [`Error::PeerDead`]
    /// when the server died (the name is removed then), [`Error::Closed`] when it is closing,
    /// and as [`Sender::open`](crate::Sender::open) for what is not a service.
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &ServiceOptions) -> Result<Self> {
        let sname = SegmentName::new(name)?;
        let deadline = Instant::now().checked_add(opts.open_timeout);
        let before = |d: Deadline| d.is_none_or(|d| Instant::now() < d);
        let not_service = |reason: String| Error::NotAChannel {
            name: name.to_owned(),
            backend: backend.name(),
            reason,
        };
        let hub = Hub::open(backend, &sname, None)?;
        let magic = loop {
            let m = hub.magic();
            if m != 0 || !before(deadline) {
                break m;
            }
        };
        if hub.len() < OFF_SEATS {
            return Err(not_service(format!(
                "{} bytes, fewer than a service's header",
                hub.len()
            )));
        }
        if magic != MAGIC {
            return Err(not_service(format!(
                "its first 8 bytes are {magic:#018x}, not a service's magic"
            )));
        }
        // Every field read once, into private memory, and checked there.
        let (version, seats, max, stride, total) = {
            // SAFETY: the mapping holds at least a header (checked above), page-aligned.
            let h = unsafe { &*hub.base().cast::<Header>() };
            (
                h.version.load(Ordering::Relaxed),
                h.seats.load(Ordering::Relaxed),
                h.max.load(Ordering::Relaxed),
                h.stride.load(Ordering::Relaxed),
                h.total.load(Ordering::Relaxed),
            )
        };
        if version != VERSION {
            return Err(Error::Version {
                name: name.to_owned(),
                backend: backend.name(),
                found: version,
                expected: VERSION,
            });
        }
        let shape = Shape::new(seats, max as usize).map_err(|e| {
            not_service(format!(
                "its header says {seats} clients of {max} bytes ({e})"
            ))
        })?;
        if shape.stride != stride || shape.total as u64 != total {
            return Err(not_service(format!(
                "its header says stride {stride} and size {total}, which {seats} clients of {max} bytes never have"
            )));
        }
        let seg = Seg::new(hub, shape)?;
        let h = seg.header();
        let Some(server) = Proc::read(&h.server) else {
            return Err(not_service(format!(
                "its server's process id is {}",
                h.server.pid.load(Ordering::SeqCst)
            )));
        };
        seg.check_server(&server)?;
        if h.state.load(Ordering::SeqCst) != OPEN {
            return Err(Error::Closed);
        }
        let seat = loop {
            if let Some(seat) = claim(&seg) {
                break seat;
            }
            // Seats of clients that left or died are the server's to free: ask it, and wait.
            let stale = (0..seats).any(|i| seg.seat_is_stale(i));
            if !stale || !before(deadline) {
                return Err(Error::ServiceFull {
                    name: name.to_owned(),
                    backend: backend.name(),
                    clients: seats,
                });
            }
            seg.bell().check.store(1, Ordering::SeqCst);
            seg.ring();
            std::thread::sleep(Duration::from_millis(2));
        };
        let s = seg.seat(seat);
        // SAFETY: `answer` is declared before `seg` in ServiceClient, lent only for a borrow.
        let answer = unsafe { seg.signal(&s.answer, &s.answer_sleepers, opts.wait) };
        Ok(ServiceClient {
            answer,
            seat,
            calls: 0,
            taken: 0,
            server,
            seg: Arc::new(seg),
        })
    }

    call_forms! {
        /// Sends a request (a copy of the bytes of `request`) and waits for the answer,
        /// received in place (the seat is the client's again once the answer is dropped).
        /// Fails with [`Error::CallFailed`] when the server failed the call, [`Error::Closed`]
        /// when the server left before answering, [`Error::PeerDead`], [`Error::TooLarge`] or
        /// [`Error::Protocol`].
    }

    #[inline]
    fn call_until(&mut self, request: &[u8], deadline: Deadline) -> Result<Sample<'_>> {
        if self.taken != self.calls {
            // The server may still be reading the last request: the seat is its until it
            // answers.
            self.wait_answer(self.calls, deadline)?;
            self.taken = self.calls;
        }
        let count = self.put_request(request)?;
        let h = self.wait_answer(count, deadline)?;
        self.taken = count;
        self.answer_in(count, h)
    }

    /// Writes `request` into the seat as the next call and rings the bell; its count.
    #[inline]
    pub(crate) fn put_request(&mut self, request: &[u8]) -> Result<u32> {
        let max = self.seg.shape.max as usize;
        if request.len() > max {
            return Err(Error::TooLarge {
                len: request.len(),
                max,
            });
        }
        let count = next(self.calls);
        // SAFETY: the payload holds `max` bytes, `request` is no longer (checked above) and
        // private memory; the seat is this client's between calls.
        unsafe { crate::bytes::copy(request.as_ptr(), self.seg.payload(self.seat), request.len()) };
        // Release: a server that sees the header sees the bytes.
        self.seg
            .slot_header(self.seat)
            .store(word(count, request.len() as u32), Ordering::Release);
        self.calls = count;
        self.seg.ring_if_waited();
        Ok(count)
    }

    /// The answer to call `count`, whose header said `h`: in place, its length checked; a
    /// failed call is [`Error::CallFailed`].
    #[inline]
    pub(crate) fn answer_in(&self, count: u32, h: u64) -> Result<Sample<'_>> {
        let max = self.seg.shape.max as usize;
        let len = (h as u32 & LEN_MASK) as usize;
        if len > max {
            return Err(Error::Protocol(format!(
                "the answer to call {count} claims {len} bytes; the service's maximum is {max}"
            )));
        }
        // SAFETY: `len <= max` (checked above), inside the seat's payload in the mapping the
        // client keeps while the answer borrows it.
        let answer = unsafe { Sample::in_pair(self.seg.payload(self.seat), len) };
        if h as u32 & FAILED != 0 {
            return Err(Error::CallFailed {
                message: String::from_utf8_lossy(&answer.to_vec()).into_owned(),
            });
        }
        Ok(answer)
    }

    /// The seat's header when it holds the answer to call `count`.
    #[inline]
    pub(crate) fn answered(&self, count: u32) -> Option<u64> {
        let h = self.seg.slot_header(self.seat).load(Ordering::Acquire);
        ((h >> 32) as u32 == count | SEQ_SET && h as u32 & ANSWER != 0).then_some(h)
    }

    /// Waits until the seat holds the answer to call `count`; returns its header. The first
    /// looks are inline: an answer that comes within them costs no call.
    #[inline(always)]
    fn wait_answer(&self, count: u32, deadline: Deadline) -> Result<u64> {
        match self.answer.get().spin_first(|| self.answered(count)) {
            Some(h) => Ok(h),
            None => self.wait_answer_slowly(count, deadline),
        }
    }

    /// [`wait_answer`](Self::wait_answer) after its first looks.
    #[inline(never)]
    fn wait_answer_slowly(&self, count: u32, deadline: Deadline) -> Result<u64> {
        let look = || self.answered(count);
        // The header that matched, as read once: never read again to decide.
        let matched = Cell::new(None);
        let early = || {
            matched.set(look());
            matched.get().is_some()
        };
        let seen = wait_in_slices(
            deadline,
            || self.seg.check_server(&self.server),
            |slice| {
                self.answer
                    .get()
                    .wait_until_or(&early, |v| v & CLOSED != 0 || v == count, slice)
            },
        )?;
        if let Some(h) = matched.get().or_else(look) {
            return Ok(h);
        }
        match seen {
            Some(v) if v & CLOSED != 0 => Err(Error::Closed),
            _ => Err(Error::Protocol(format!(
                "the server counted call {count} answered, but the seat does not hold its answer"
            ))),
        }
    }

    /// Whether the server lives (as the calls judge it).
    pub fn server_alive(&self) -> bool {
        self.seg.check_server(&self.server).is_ok()
    }

    /// The server's process id, as it announced itself.
    pub fn server_pid(&self) -> i32 {
        self.server.pid
    }

    /// This client's seat (0 to `max_clients - 1`).
    pub fn seat(&self) -> u32 {
        self.seat
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.seg.hub.name
    }

    /// The largest request or answer, in bytes (the service's, from its header).
    pub fn max_message(&self) -> usize {
        self.seg.shape.max as usize
    }

    /// The most clients the service takes at once.
    pub fn max_clients(&self) -> u32 {
        self.seg.shape.seats
    }
}

/// Takes the first free seat: its lock first (a live holder keeps it), then its owner word.
fn claim(seg: &Seg) -> Option<u32> {
    let me = Proc::me();
    let map = seg.hub.mapping();
    (0..seg.shape.seats).find(|&i| {
        let s = seg.seat(i);
        if s.owner.pid.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let lock = Seg::lock_of(i);
        if seg.witness.hold(map, lock).is_err() {
            return false;
        }
        if s.owner
            .pid
            .compare_exchange(0, me.pid as u32, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            seg.witness.release(map, lock);
            return false;
        }
        s.owner.start.store(me.start, Ordering::SeqCst);
        s.owner.pidns.store(me.pidns, Ordering::SeqCst);
        true
    })
}

impl Drop for ServiceClient {
    fn drop(&mut self) {
        // The server frees the seat (it may still be answering a call that timed out).
        self.seg.seat(self.seat).left.store(1, Ordering::SeqCst);
        self.seg.bell().check.store(1, Ordering::SeqCst);
        self.seg.ring();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;

    /// A client rings the bell (a store to the line the server reads, and maybe a system
    /// call) only when the server announced that it waits; a server that is busy or spins is
    /// not rung, and one that sleeps is.
    #[test]
    fn a_client_rings_only_a_server_that_waits() {
        let backend = shm_posix::Posix::new();
        let name = format!("/shmt-{}-0-service-ring", std::process::id());
        let opts = ServiceOptions::new(16).clients(1).wait(WaitStrategy::Block);
        let mut service = Service::create(&backend, &name, &opts).unwrap();
        let mut client = ServiceClient::open(&backend, &name, &opts).unwrap();
        let seg = Arc::clone(&client.seg);
        let rung = || seg.bell().value.load(SeqCst);
        std::thread::scope(|s| {
            // The server is not waiting: the call puts its request and rings nothing.
            let before = rung();
            let call = s.spawn(|| {
                let answer = client.call_timeout(&7u64, Duration::from_secs(20));
                answer.unwrap().read_value::<u64>().unwrap()
            });
            let request = loop {
                match service.try_recv() {
                    Ok(r) => break r,
                    Err(Error::Empty) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            let quiet = rung() == before;
            request.reply_value(&8u64).unwrap();
            assert!(quiet, "a call rang a server that was not waiting");
            assert_eq!(call.join().unwrap(), 8);
        });
        std::thread::scope(|s| {
            // The server sleeps (announced in the bell's sleepers): the call rings it.
            let server = s.spawn(|| {
                let request = service.recv_timeout(Duration::from_secs(20)).unwrap();
                request.reply_value(&9u64).unwrap();
            });
            while seg.bell().sleepers.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            let before = rung();
            let answer = client.call_timeout(&1u64, Duration::from_secs(20));
            assert_eq!(answer.unwrap().read_value::<u64>().unwrap(), 9);
            assert_ne!(rung(), before, "a call did not ring a sleeping server");
            server.join().unwrap();
        });
    }
}
