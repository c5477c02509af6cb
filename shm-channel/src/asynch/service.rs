//! The async forms of a service's waits (feature `async`): [`ServiceClient::call_async`] and
//! [`Service::recv_async`], with deadline forms, on the same reactor as the pair's.
//!
//! Dropping a call's future before its request went leaves the seat as it was; after, the call
//! is in flight as after a [`ServiceClient::call_timeout`] that timed out: the next call first
//! takes (and drops) its late answer. Dropping a server's future takes no request.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use shm_core::reactor::Watch;
use zerocopy::{Immutable, IntoBytes};

use crate::layout::CLOSED;
use crate::peer::Proc;
use crate::service::ends::{Request, Seg, Service, ServiceClient};
use crate::waiting::{PeerCheck, Wait, process_key, spin};
use crate::{Error, Result, Sample};

/// The server of a service, as a waiting client's reactor watch checks it every 40 ms.
struct ServerWatch {
    seg: Arc<Seg>,
    server: Proc,
}

impl Watch for ServerWatch {
    fn key(&self) -> u128 {
        process_key(&self.server)
    }

    fn alive(&self) -> bool {
        self.seg.check_server(&self.server).is_ok()
    }
}

impl PeerCheck for ServerWatch {
    fn check(&self) -> Result<()> {
        self.seg.check_server(&self.server)
    }
}

/// A server waits for any client: no one peer to watch (its seats are judged when it
/// receives, as for a blocking server).
struct NoPeer(u128);

impl Watch for NoPeer {
    fn key(&self) -> u128 {
        self.0
    }

    fn alive(&self) -> bool {
        true
    }
}

impl PeerCheck for NoPeer {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// The future of [`ServiceClient::call_async`]: the answer, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct ServiceCallFuture<'a, 'b> {
    client: Option<&'a mut ServiceClient>,
    request: &'b [u8],
    sent: bool,
    wait: Wait,
}

/// The future of [`Service::recv_async`]: the next request of any client, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct ServiceRecvFuture<'a> {
    service: Option<&'a mut Service>,
    looked: bool,
    wait: Wait,
}

impl ServiceClient {
    /// Calls as [`call`](Self::call) does, awaiting the answer without blocking the thread.
    /// Fails as `call` does; [`Error::PeerDead`] within about 50 ms of the server's death.
    pub fn call_async<'a, 'b, T: IntoBytes + Immutable + ?Sized>(
        &'a mut self,
        request: &'b T,
    ) -> ServiceCallFuture<'a, 'b> {
        self.call_future(request.as_bytes(), None)
    }

    /// As [`call_async`](Self::call_async), failing with [`Error::TimedOut`] at `deadline`
    /// (then the call is in flight, as after [`call_timeout`](Self::call_timeout)).
    pub fn call_deadline_async<'a, 'b, T: IntoBytes + Immutable + ?Sized>(
        &'a mut self,
        request: &'b T,
        deadline: Instant,
    ) -> ServiceCallFuture<'a, 'b> {
        self.call_future(request.as_bytes(), Some(deadline))
    }

    fn call_future<'a, 'b>(
        &'a mut self,
        request: &'b [u8],
        deadline: Option<Instant>,
    ) -> ServiceCallFuture<'a, 'b> {
        ServiceCallFuture {
            client: Some(self),
            request,
            sent: false,
            wait: Wait::new(deadline),
        }
    }

    /// The seat's header once it holds the answer to call `count`; `Closed` once the server
    /// left without answering it. One look, without waiting.
    fn check_answer(&self, count: u32) -> Result<Option<u64>> {
        // The answer count first: the server stores it after the header (and CLOSED last).
        let v = self.answer.get().load();
        if let Some(h) = self.answered(count) {
            return Ok(Some(h));
        }
        if v & CLOSED != 0 {
            return Err(Error::Closed);
        }
        Ok(None)
    }

    /// Makes `wait`'s reactor waiter: on the seat's answer count, watching the server.
    pub(crate) fn start_wait(&self, wait: &mut Wait) {
        let watch = Arc::new(ServerWatch {
            seg: self.seg.clone(),
            server: self.server,
        });
        // SAFETY: the answer signal's words are in the mapping that `seg` keeps.
        unsafe { wait.start_with(self.seg.clone(), self.answer.get(), watch) };
    }

    /// True when no call is in flight, or its answer came (for the wait set); `Closed` once
    /// the server left without answering it.
    pub(crate) fn ready_now(&self) -> Result<bool> {
        if self.taken == self.calls {
            return Ok(true);
        }
        self.check_answer(self.calls).map(|h| h.is_some())
    }

    /// Polls until the seat holds the answer to call `count`: its header.
    fn poll_answer(&self, wait: &mut Wait, cx: &mut Context<'_>, count: u32) -> Poll<Result<u64>> {
        if wait.fresh() {
            let matched = Cell::new(None);
            let early = || {
                matched.set(self.answered(count));
                matched.get().is_some()
            };
            if spin(self.answer.get(), early, |v| v & CLOSED != 0 || v == count) {
                if let Some(h) = matched.get() {
                    return Poll::Ready(Ok(h));
                }
            }
        }
        self.start_wait(wait);
        let matched = Cell::new(None);
        wait.poll(cx, || {
            matched.set(self.check_answer(count)?);
            Ok(matched.get().is_some())
        })
        .map(|r| r.map(|()| matched.get().unwrap_or_default()))
    }
}

impl<'a> Future for ServiceCallFuture<'a, '_> {
    type Output = Result<Sample<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let c = this
            .client
            .take()
            .expect("a ServiceCallFuture polled after it returned Ready");
        if !this.sent && c.taken != c.calls {
            // An earlier call's late answer first: the seat is the server's until then.
            match c.poll_answer(&mut this.wait, cx, c.calls) {
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
        if !this.sent {
            if let Err(e) = c.put_request(this.request) {
                return Poll::Ready(Err(e));
            }
            this.sent = true;
        }
        let count = c.calls;
        match c.poll_answer(&mut this.wait, cx, count) {
            Poll::Pending => {
                this.client = Some(c);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(h)) => {
                c.taken = count;
                Poll::Ready(c.answer_in(count, h))
            }
        }
    }
}

impl Service {
    /// Receives as [`recv`](Self::recv) does, awaiting a request of any client without
    /// blocking the thread.
    pub fn recv_async(&mut self) -> ServiceRecvFuture<'_> {
        self.recv_future(None)
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn recv_deadline_async(&mut self, deadline: Instant) -> ServiceRecvFuture<'_> {
        self.recv_future(Some(deadline))
    }

    fn recv_future(&mut self, deadline: Option<Instant>) -> ServiceRecvFuture<'_> {
        ServiceRecvFuture {
            service: Some(self),
            looked: false,
            wait: Wait::new(deadline),
        }
    }

    /// Makes `wait`'s reactor waiter: on the bell clients ring.
    pub(crate) fn start_wait(&self, wait: &mut Wait) {
        // A key of its own: the reactor's watcher has nothing to check for it.
        let key = (1 << 127) | Arc::as_ptr(&self.seg) as usize as u128;
        // SAFETY: the bell's words are in the mapping that `seg` keeps.
        unsafe { wait.start_with(self.seg.clone(), self.bell.get(), Arc::new(NoPeer(key))) };
    }

    /// A request waiting, looked for by a server that announced it waits (a reactor waiter
    /// on the bell counts as its sleeper).
    fn find_announced(&self) -> Option<(u32, u64)> {
        // Pairs with the fence of a client that rings only an announced waiter
        // (`ring_if_waited`): the announcement comes before this scan.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.find()
    }

    /// True when a receive would find a request now (without taking it).
    pub(crate) fn ready_now(&self) -> bool {
        self.find_announced().is_some()
    }
}

impl<'a> Future for ServiceRecvFuture<'a> {
    type Output = Result<Request<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let s = this
            .service
            .take()
            .expect("a ServiceRecvFuture polled after it returned Ready");
        if !this.looked {
            s.housekeep();
            this.looked = true;
        }
        let found = Cell::new(s.find());
        if found.get().is_none() && this.wait.fresh() {
            let rung = s.bell.get().load();
            let early = || {
                found.set(s.find());
                found.get().is_some()
            };
            spin(s.bell.get(), early, |v| v != rung);
        }
        if found.get().is_none() {
            s.start_wait(&mut this.wait);
            let polled = this.wait.poll(cx, || {
                found.set(s.find_announced());
                Ok(found.get().is_some())
            });
            match polled {
                Poll::Pending => {
                    this.service = Some(s);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        }
        match found.get() {
            Some((seat, h)) => Poll::Ready(s.take(seat, h)),
            None => Poll::Ready(Err(Error::Protocol(
                "an awaited request was ready, then gone".to_owned(),
            ))),
        }
    }
}
