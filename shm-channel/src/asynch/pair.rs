//! The async forms of a pair's waits (feature `async`): [`Client::call_async`] and
//! [`Server::recv_async`], with deadline forms.
//!
//! Dropping a call's future before its request went leaves the pair as it was; after, the
//! call is in flight as after a [`Client::call_timeout`] that timed out: the next call first
//! takes (and drops) its late response. Dropping a server's future takes no request.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use zerocopy::{Immutable, IntoBytes};

use crate::layout::*;
use crate::pair::{Client, End, Server, next};
use crate::waiting::{PeerFuture, Wait, spin};
use crate::{Error, Result, Sample};

impl End {
    /// The slot's header if it holds message `count` of the kind `response`; `None` while the
    /// peer's count says nothing happened; `Closed` once the peer left without it; `Protocol`
    /// for a count that went anywhere else. What one look of `wait_for` decides, without
    /// waiting.
    pub(crate) fn check_for(&self, count: u32, response: bool) -> Result<Option<u64>> {
        let signal = self.signal(response);
        // The count first: the peer publishes it after the header, so a count that says the
        // message came with a header that does not hold it is a lie.
        let v = signal.load();
        let h = self.header();
        if (h >> 32) as u32 == count | SEQ_SET && (h as u32 & RESPONSE != 0) == response {
            return Ok(Some(h));
        }
        let before = count.wrapping_sub(1) & COUNT_MASK;
        let lag = before.wrapping_sub(1) & COUNT_MASK;
        if v == before || v == lag {
            return Ok(None);
        }
        if v & CLOSED != 0 && v & COUNT_MASK == before {
            return Err(Error::Closed);
        }
        Err(Error::Protocol(if v & COUNT_MASK == count {
            format!("the peer counted message {count}, but the slot does not hold it")
        } else {
            format!(
                "the peer's count went to {} while this end waited for {count}",
                v & COUNT_MASK
            )
        }))
    }

    /// Polls until the slot holds message `count` of the kind `response`: its header. A fresh
    /// wait first looks inline, as a blocking one does (`End::look_first`): a message that
    /// comes within those looks costs no call.
    #[inline(always)]
    fn poll_for(
        &self,
        wait: &mut Wait,
        cx: &mut Context<'_>,
        count: u32,
        response: bool,
    ) -> Poll<Result<u64>> {
        if wait.fresh() {
            if let Some(h) = self.look_first(count, response) {
                return Poll::Ready(Ok(h));
            }
        }
        self.poll_slowly(wait, cx, count, response)
    }

    /// [`poll_for`](Self::poll_for) after its first looks.
    #[inline(never)]
    fn poll_slowly(
        &self,
        wait: &mut Wait,
        cx: &mut Context<'_>,
        count: u32,
        response: bool,
    ) -> Poll<Result<u64>> {
        let signal = self.signal(response);
        if wait.fresh() {
            let want = |h: u64| {
                (h >> 32) as u32 == count | SEQ_SET && (h as u32 & RESPONSE != 0) == response
            };
            let before = count.wrapping_sub(1) & COUNT_MASK;
            // Ends on the message in the slot (the header that matched, as read once, is the
            // one used: the peer's count line is not touched), or on any move of the count.
            let matched = Cell::new(None);
            let early = || {
                let h = self.header();
                matched.set(Some(h).filter(|&h| want(h)));
                matched.get().is_some()
            };
            if spin(signal, early, |v| v != before) {
                if let Some(h) = matched.get() {
                    return Poll::Ready(Ok(h));
                }
            }
        }
        // The header that matched, as read once.
        let matched = Cell::new(None);
        let ready = || {
            let h = self.check_for(count, response)?;
            matched.set(h);
            Ok(h.is_some())
        };
        if let Err(e) = wait.start(&self.ring.shared, signal) {
            return Poll::Ready(Err(e));
        }
        wait.poll(cx, ready)
            .map(|r| r.map(|()| matched.get().unwrap_or_default()))
    }

    /// True when this end may go on: `Client`: no response outstanding, or it came;
    /// `Server`: a request waits (used by the wait set).
    pub(crate) fn ready_for(&self, count: u32, response: bool) -> Result<bool> {
        self.check_for(count, response).map(|h| h.is_some())
    }
}

/// The future of [`Client::call_async`]: the response, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct CallFuture<'a, 'b> {
    client: Option<&'a mut Client>,
    request: &'b [u8],
    sent: bool,
    wait: Wait,
}

/// The future of [`Server::recv_async`]: the next request, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct RequestFuture<'a> {
    server: Option<&'a mut Server>,
    /// The request waited for, once known.
    count: Option<u32>,
    wait: Wait,
}

impl Client {
    /// Calls as [`call`](Self::call) does, awaiting the response without blocking the
    /// thread. Fails as `call` does; [`Error::PeerDead`] within about 50 ms of the server's
    /// death.
    pub fn call_async<'a, 'b, T: IntoBytes + Immutable + ?Sized>(
        &'a mut self,
        request: &'b T,
    ) -> CallFuture<'a, 'b> {
        CallFuture {
            client: Some(self),
            request: request.as_bytes(),
            sent: false,
            wait: Wait::new(None),
        }
    }

    /// As [`call_async`](Self::call_async), failing with [`Error::TimedOut`] at `deadline`
    /// (then the call is in flight, as after [`call_timeout`](Self::call_timeout)).
    pub fn call_deadline_async<'a, 'b, T: IntoBytes + Immutable + ?Sized>(
        &'a mut self,
        request: &'b T,
        deadline: Instant,
    ) -> CallFuture<'a, 'b> {
        CallFuture {
            client: Some(self),
            request: request.as_bytes(),
            sent: false,
            wait: Wait::new(Some(deadline)),
        }
    }

    /// Waits until the other end has joined, as [`wait_for_peer`](Self::wait_for_peer) does,
    /// without blocking the thread (ready at once on the end that opened).
    pub fn wait_for_peer_async(&self) -> PeerFuture<'_> {
        PeerFuture::new(&self.end.ring.shared, None)
    }

    /// As [`wait_for_peer_async`](Self::wait_for_peer_async), failing with
    /// [`Error::TimedOut`] at `deadline`.
    pub fn wait_for_peer_deadline_async(&self, deadline: Instant) -> PeerFuture<'_> {
        PeerFuture::new(&self.end.ring.shared, Some(deadline))
    }

    /// True when no response is outstanding, or the outstanding one came.
    pub(crate) fn ready_now(&self) -> Result<bool> {
        if self.taken == self.calls {
            return Ok(true);
        }
        self.end.ready_for(self.calls, true)
    }

    /// Makes `wait`'s reactor waiter: on the signal a wait for a response sleeps on.
    pub(crate) fn start_wait(&self, wait: &mut Wait) -> Result<()> {
        wait.start(&self.end.ring.shared, self.end.ring.head())
    }
}

impl<'a> Future for CallFuture<'a, '_> {
    type Output = Result<Sample<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let c = this
            .client
            .take()
            .expect("CallFuture polled after it completed");
        if !this.sent {
            if c.taken != c.calls {
                // The late response of an earlier call first: the slot is the server's
                // until it answers.
                match c.end.poll_for(&mut this.wait, cx, c.calls, true) {
                    Poll::Pending => {
                        this.client = Some(c);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(_)) => {
                        c.taken = c.calls;
                        this.wait = Wait::new(this.wait.deadline());
                    }
                }
            }
            let count = next(c.calls);
            if let Err(e) = c.end.put(this.request, count, false) {
                return Poll::Ready(Err(e));
            }
            c.calls = count;
            // Wakes a server that sleeps (SeqCst: see Signal::store).
            c.end.ring.tail().store(count);
            this.sent = true;
        }
        let count = c.calls;
        match c.end.poll_for(&mut this.wait, cx, count, true) {
            Poll::Pending => {
                this.client = Some(c);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(h)) => {
                let Client { end, taken, .. } = c;
                *taken = count;
                let end: &'a End = end;
                Poll::Ready(end.take(h, count))
            }
        }
    }
}

impl Server {
    /// Receives the next request as [`recv`](Self::recv) does, without blocking the thread.
    /// Fails as `recv` does; [`Error::PeerDead`] within about 50 ms of the client's death.
    pub fn recv_async(&mut self) -> RequestFuture<'_> {
        RequestFuture {
            server: Some(self),
            count: None,
            wait: Wait::new(None),
        }
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn recv_deadline_async(&mut self, deadline: Instant) -> RequestFuture<'_> {
        RequestFuture {
            server: Some(self),
            count: None,
            wait: Wait::new(Some(deadline)),
        }
    }

    /// Waits until the other end has joined, as [`wait_for_peer`](Self::wait_for_peer) does,
    /// without blocking the thread (ready at once on the end that opened).
    pub fn wait_for_peer_async(&self) -> PeerFuture<'_> {
        PeerFuture::new(&self.end.ring.shared, None)
    }

    /// As [`wait_for_peer_async`](Self::wait_for_peer_async), failing with
    /// [`Error::TimedOut`] at `deadline`.
    pub fn wait_for_peer_deadline_async(&self, deadline: Instant) -> PeerFuture<'_> {
        PeerFuture::new(&self.end.ring.shared, Some(deadline))
    }

    /// The request `recv` waits for next: a new one, or again the one not answered yet.
    fn next_request(&self) -> Result<u32> {
        if self.received == self.answered {
            return Ok(next(self.received));
        }
        if self.end.ring.tail().load() & CLOSED != 0 {
            return Err(Error::Closed);
        }
        self.end.ring.shared.check_peer()?;
        Ok(self.received)
    }

    /// True when a request waits (a new one, or the one not answered yet).
    pub(crate) fn ready_now(&self) -> Result<bool> {
        let count = self.next_request()?;
        self.end.ready_for(count, false)
    }

    /// Makes `wait`'s reactor waiter: on the signal a wait for a request sleeps on.
    pub(crate) fn start_wait(&self, wait: &mut Wait) -> Result<()> {
        wait.start(&self.end.ring.shared, self.end.ring.tail())
    }
}

impl<'a> Future for RequestFuture<'a> {
    type Output = Result<Sample<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let s = this
            .server
            .take()
            .expect("RequestFuture polled after it completed");
        let count = match this.count {
            Some(c) => c,
            None => match s.next_request() {
                Ok(c) => *this.count.insert(c),
                Err(e) => return Poll::Ready(Err(e)),
            },
        };
        match s.end.poll_for(&mut this.wait, cx, count, false) {
            Poll::Pending => {
                this.server = Some(s);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(h)) => {
                let Server { end, received, .. } = s;
                let end: &'a End = end;
                // Counted received only once its length passed (as recv does).
                let sample = end.take(h, count);
                if sample.is_ok() {
                    *received = count;
                }
                Poll::Ready(sample)
            }
        }
    }
}
