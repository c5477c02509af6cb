//! A request/response pair: one segment under one name, whose one slot carries the client's
//! request and then, in place, the server's response to it.
//!
//! Why one slot, answered in place: the response then travels in the cache line that brought
//! the request, which the server already holds, and the next request in the line that brought
//! the response, which the client holds; a call costs two transfers of one cache line, as two
//! threads that play ping-pong on one word do. Two rings, one each way, cost twice that and
//! more on the machines measured (the README's Performance section has the figures). The
//! price: one call at a time per pair (open more pairs for more at once).
//!
//! The words: the ring's `tail` counts the client's calls (bit 31: the client left), its
//! `head` the server's answers (bit 31: the server left); the slot header holds a request's
//! count and length, or the same count and the length with [`RESPONSE`] set.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_core::Backend;
use zerocopy::{Immutable, IntoBytes};

use crate::layout::*;
use crate::ring::{Ring, deadline_in};
use crate::shared::{Deadline, How, Role, Shared};
use crate::{Error, Options, Result, Sample};

/// What one end of a pair holds: the ring (one slot), which holds the segment.
pub(crate) struct End {
    pub(crate) ring: Ring,
}

impl End {
    fn connect<B: Backend>(
        backend: &B,
        name: &str,
        opts: &Options,
        role: Role,
        how: How,
    ) -> Result<End> {
        let shared = Shared::connect(backend, name, opts, role, how)?;
        Ok(End {
            ring: Ring::new(shared)?,
        })
    }

    /// The one slot.
    fn slot(&self) -> *mut u8 {
        self.ring.slot(0)
    }

    /// The slot's header, read once.
    pub(crate) fn header(&self) -> u64 {
        self.ring.slot_header(0).word.load(Ordering::Acquire)
    }

    /// Writes `data` into the slot and publishes it as message `count` (a response when
    /// `response`), in one store of its header.
    #[inline]
    pub(crate) fn put(&self, data: &[u8], count: u32, response: bool) -> Result<()> {
        if data.len() > self.ring.max {
            return Err(Error::TooLarge {
                len: data.len(),
                max: self.ring.max,
            });
        }
        let slot = self.slot();
        // SAFETY: the payload holds `max` bytes after the 8-byte header, `data` is no longer
        // (checked above) and private memory, so no overlap; the slot is this end's turn.
        unsafe { crate::bytes::copy(data.as_ptr(), slot.add(SLOT_HEADER), data.len()) };
        let len = data.len() as u32 | if response { RESPONSE } else { 0 };
        // Release: a peer that sees the header sees the bytes.
        self.ring.slot_header(0).word.store(
            (u64::from(count | SEQ_SET) << 32) | u64::from(len),
            Ordering::Release,
        );
        Ok(())
    }

    /// The message in the slot, whose header said `count` (checked by the caller): its
    /// length read once and checked against the maximum.
    #[inline]
    pub(crate) fn take(&self, header: u64, count: u32) -> Result<Sample<'_>> {
        let len = (header as u32 & !RESPONSE) as usize;
        if len > self.ring.max {
            return Err(Error::Protocol(format!(
                "message {count} claims {len} bytes; the pair's maximum is {}",
                self.ring.max
            )));
        }
        // SAFETY: the payload follows the header, `len <= max` bytes inside the mapping, which
        // lives as long as `self` borrows it.
        Ok(unsafe { Sample::in_pair(self.slot().add(SLOT_HEADER), len) })
    }

    /// Waits until the slot holds message `count` of the kind `response`, or the peer's
    /// counter (in `signal`) says it left or moved somewhere impossible.
    ///
    /// The first looks are inline, with nothing to set up: a peer that answers within them
    /// (a round trip at full speed) costs no call.
    #[inline(always)]
    fn wait_for(&self, count: u32, response: bool, deadline: Deadline) -> Result<u64> {
        match self.look_first(count, response) {
            Some(h) => Ok(h),
            None => self.wait_slowly(count, response, deadline),
        }
    }

    /// The signal a wait for a message of the kind `response` sleeps on: the server's count
    /// for a response, the client's for a request.
    #[inline(always)]
    pub(crate) fn signal(&self, response: bool) -> &shm_core::wait::Signal<'_> {
        if response {
            self.ring.head()
        } else {
            self.ring.tail()
        }
    }

    /// The first looks of every wait, blocking or awaited (see `Signal::spin_first`): the
    /// slot's header once it holds message `count` of the kind `response`.
    #[inline(always)]
    pub(crate) fn look_first(&self, count: u32, response: bool) -> Option<u64> {
        let seq = count | SEQ_SET;
        let header = self.ring.slot_header(0);
        self.signal(response).spin_first(|| {
            let h = header.word.load(Ordering::Acquire);
            ((h >> 32) as u32 == seq && (h as u32 & RESPONSE != 0) == response).then_some(h)
        })
    }

    /// [`wait_for`](Self::wait_for) after its first looks: waits as the signal's strategy
    /// says, watching the peer.
    #[inline(never)]
    fn wait_slowly(&self, count: u32, response: bool, deadline: Deadline) -> Result<u64> {
        let signal = self.signal(response);
        let want =
            |h: u64| (h >> 32) as u32 == count | SEQ_SET && (h as u32 & RESPONSE != 0) == response;
        let before = count.wrapping_sub(1) & COUNT_MASK;
        // The peer publishes its count after the header: a count one behind `before` is a
        // store not yet seen here, of a message this end took by its header.
        let lag = before.wrapping_sub(1) & COUNT_MASK;
        let quiet = |v: u32| v == before || v == lag;
        // The header that matched, as read once: never read again to decide.
        let matched = std::cell::Cell::new(None);
        let early = || {
            let h = self.header();
            matched.set(Some(h).filter(|&h| want(h)));
            matched.get().is_some()
        };
        loop {
            let seen = self
                .ring
                .shared
                .wait_or(signal, early, |v| !quiet(v), deadline)?;
            if let Some(h) = matched.get() {
                return Ok(h);
            }
            match seen {
                Some(v) if v & CLOSED != 0 && v & COUNT_MASK == before => {
                    return Err(Error::Closed);
                }
                Some(v) if v & COUNT_MASK == count => {
                    // The count is published after the header: a header that does not match
                    // now never will.
                    return Err(Error::Protocol(format!(
                        "the peer counted message {count}, but the slot does not hold it"
                    )));
                }
                Some(v) if !quiet(v) => {
                    return Err(Error::Protocol(format!(
                        "the peer's count went to {} while this end waited for {count}",
                        v & COUNT_MASK
                    )));
                }
                _ => {}
            }
        }
    }
}

/// The serving end of a request/response pair: receives a request, answers it, and so on.
///
/// ```no_run
/// # fn f() -> shm_channel::Result<()> {
/// use shm_channel::{Options, Server};
/// let backend = shm_posix::Posix::new();
/// let mut server = Server::create(&backend, "/adder", &Options::new(1, 64))?;
/// loop {
///     let request = match server.recv() {
///         Err(e) if e.is_disconnected() => break, // the client left
///         other => other?,
///     };
///     let [a, b]: [u32; 2] = request.read_value()?;
///     drop(request); // the answer goes into its slot
///     server.reply_value(&(a + b))?;
/// }
/// # Ok(()) }
/// ```
pub struct Server {
    pub(crate) end: End,
    /// Requests received (modulo 2^31).
    pub(crate) received: u32,
    /// Requests answered: `received` or one behind it.
    pub(crate) answered: u32,
}

/// The calling end of a request/response pair: one call at a time.
///
/// ```no_run
/// # fn f() -> shm_channel::Result<()> {
/// use shm_channel::{Client, Options};
/// let backend = shm_posix::Posix::new();
/// let mut client = Client::open(&backend, "/adder", &Options::new(1, 64))?;
/// let sum: u32 = client.call(&[2u32, 3])?.read_value()?;
/// assert_eq!(sum, 5);
/// # Ok(()) }
/// ```
pub struct Client {
    pub(crate) end: End,
    /// Calls made (modulo 2^31).
    pub(crate) calls: u32,
    /// Responses taken: `calls`, or one behind it after a call that timed out.
    pub(crate) taken: u32,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pair", &self.end.ring.shared)
            .field("received", &self.received)
            .field("answered", &self.answered)
            .finish()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("pair", &self.end.ring.shared)
            .field("calls", &self.calls)
            .field("taken", &self.taken)
            .finish()
    }
}

macro_rules! pair_info {
    () => {
        /// The pair's name.
        pub fn name(&self) -> &str {
            &self.end.ring.shared.name
        }

        /// The largest request or response, in bytes, fixed at create.
        pub fn max_message(&self) -> usize {
            self.end.ring.max
        }

        /// True when this end created the pair.
        pub fn is_creator(&self) -> bool {
            self.end.ring.shared.creator
        }

        /// What the kernel says about the pair's segment now (as
        /// [`Sender::segment_info`](crate::Sender::segment_info)).
        pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
            self.end.ring.shared.segment_info()
        }

        /// The peer's process id, once a peer has joined.
        pub fn peer_pid(&self) -> Option<i32> {
            self.end.ring.shared.peer().ok().flatten().map(|p| p.pid)
        }

        /// Whether the peer lives: `None` before a peer joined, `Some(false)` once it is known
        /// dead, `Some(true)` otherwise (as [`Sender::peer_alive`](crate::Sender::peer_alive)).
        pub fn peer_alive(&self) -> Result<Option<bool>> {
            self.end.ring.shared.peer_alive()
        }

        /// Waits until the other end has joined (returns at once on the end that opened).
        pub fn wait_for_peer(&self, timeout: Option<Duration>) -> Result<()> {
            self.end
                .ring
                .shared
                .wait_for_peer(timeout.and_then(deadline_in))
        }
    };
}

/// A client's three forms of a call (blocking, with a timeout, with a deadline), over its
/// `call_until(&[u8], Deadline)`; `call`'s docs are the macro's argument.
macro_rules! call_forms {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        #[inline]
        pub fn call<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized>(
            &mut self,
            request: &T,
        ) -> Result<Sample<'_>> {
            self.call_until(request.as_bytes(), None)
        }

        /// As [`call`](Self::call), waiting at most `timeout` for the answer. After a
        /// timeout, the next call first waits (within its own time) for the late answer and
        /// drops it: the slot is the server's until it answers, so a server that never
        /// answers leaves every later call timing out (drop the client to give up).
        pub fn call_timeout<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized>(
            &mut self,
            request: &T,
            timeout: Duration,
        ) -> Result<Sample<'_>> {
            self.call_until(request.as_bytes(), crate::ring::deadline_in(timeout))
        }

        /// As [`call`](Self::call), waiting until `deadline` at most.
        pub fn call_deadline<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized>(
            &mut self,
            request: &T,
            deadline: Instant,
        ) -> Result<Sample<'_>> {
            self.call_until(request.as_bytes(), Some(deadline))
        }
    };
}
pub(crate) use call_forms;

pub(crate) fn next(count: u32) -> u32 {
    count.wrapping_add(1) & COUNT_MASK
}

impl Server {
    /// Creates the pair `name` on `backend`, as its server. A pair has one slot of
    /// `opts.max_message` bytes for requests and responses alike (`opts.slots` is not used).
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the pair `name` that a client created (the same checks as
    /// [`Sender::open`](crate::Sender::open)).
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the pair, or creates it when there is none.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Server> {
        Ok(Server {
            end: End::connect(backend, name, opts, Role::Server, how)?,
            received: 0,
            answered: 0,
        })
    }

    /// The next request, in place in the pair's slot, waiting for it while the client
    /// lives; until it is answered, the same request again (every request must be answered:
    /// the client waits for it). Fails with [`Error::Closed`] once the client left (also
    /// while a request waits for its answer: nobody would read it), [`Error::PeerDead`], or
    /// [`Error::Protocol`].
    #[inline]
    pub fn recv(&mut self) -> Result<Sample<'_>> {
        self.recv_until(None)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` ([`Error::TimedOut`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<'_>> {
        self.recv_until(deadline_in(timeout))
    }

    fn recv_until(&mut self, deadline: Deadline) -> Result<Sample<'_>> {
        let count = if self.received == self.answered {
            next(self.received)
        } else {
            // Again the request not answered yet: unless nobody waits for the answer any
            // more (a loop that skips a request it cannot use would spin here forever).
            if self.end.ring.tail().load() & CLOSED != 0 {
                return Err(Error::Closed);
            }
            self.end.ring.shared.check_peer()?;
            self.received
        };
        let h = self.end.wait_for(count, false, deadline)?;
        // Counted received only once its length passed: a refused request is not answered.
        let sample = self.end.take(h, count)?;
        self.received = count;
        Ok(sample)
    }

    /// Answers the request received last with a copy of `data`. Fails with
    /// [`Error::NoRequest`] when it was answered already (or none came), and
    /// [`Error::TooLarge`].
    #[inline]
    pub fn reply(&mut self, data: &[u8]) -> Result<()> {
        if self.received == self.answered {
            return Err(Error::NoRequest);
        }
        self.end.put(data, self.received, true)?;
        self.answered = self.received;
        // Wakes a client that sleeps (SeqCst: see Signal::store).
        self.end.ring.head().store(self.answered);
        Ok(())
    }

    /// Answers with one value of plain data.
    pub fn reply_value<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<()> {
        self.reply(value.as_bytes())
    }

    pair_info!();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.end.ring.head().store(self.answered | CLOSED);
    }
}

impl Client {
    /// Creates the pair `name` on `backend`, as its client (see [`Server::create`]).
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the pair `name` that a server created (the same checks as
    /// [`Sender::open`](crate::Sender::open)).
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the pair, or creates it when there is none.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Client> {
        Ok(Client {
            end: End::connect(backend, name, opts, Role::Client, how)?,
            calls: 0,
            taken: 0,
        })
    }

    call_forms! {
        /// Sends a request (a copy of the bytes of `request`, plain data) and waits for the
        /// response, received in place (its slot is the client's again once the response is
        /// dropped). Fails with [`Error::Closed`] when the server left before answering,
        /// [`Error::PeerDead`], [`Error::TooLarge`] or [`Error::Protocol`].
    }

    #[inline]
    fn call_until(&mut self, request: &[u8], deadline: Deadline) -> Result<Sample<'_>> {
        if self.taken != self.calls {
            // The server may still be reading the last request: the slot is its until it
            // answers.
            self.end.wait_for(self.calls, true, deadline)?;
            self.taken = self.calls;
        }
        let count = next(self.calls);
        self.end.put(request, count, false)?;
        self.calls = count;
        // Wakes a server that sleeps (SeqCst: see Signal::store).
        self.end.ring.tail().store(count);
        let h = self.end.wait_for(count, true, deadline)?;
        self.taken = count;
        self.end.take(h, count)
    }

    pair_info!();
}

impl Drop for Client {
    fn drop(&mut self) {
        self.end.ring.tail().store(self.calls | CLOSED);
    }
}
