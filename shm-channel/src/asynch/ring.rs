//! The async forms of a stream's waits (feature `async`): [`Receiver::recv_async`],
//! [`Sender::send_async`], [`Sender::loan_async`], with deadline forms.
//!
//! Each future looks first (spinning briefly, as the blocking form does), and only when the
//! end is not ready registers with `shm_core::reactor`. Dropping a future at any point takes
//! nothing: a message is taken only by the poll that returns its [`Sample`], a slot is loaned
//! only by the poll that returns its [`Loan`], and a copy is sent only by the poll that
//! returns `Ok(())`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::layout::SLOT_HEADER;
use crate::ring::{Loan, Receiver, Sample, Sender, deadline_in};
use crate::waiting::{PeerFuture, Wait, spin};
use crate::{Error, Result};

/// The future of [`Receiver::recv_async`]: the next message, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct RecvFuture<'a> {
    rx: Option<&'a mut Receiver>,
    wait: Wait,
}

/// The future of [`Sender::loan_async`]: a free slot, loaned.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct LoanFuture<'a> {
    tx: Option<&'a mut Sender>,
    wait: Wait,
}

/// The future of [`Sender::send_async`]: a copy of the bytes, sent once a slot is free.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SendFuture<'a, 'b> {
    loan: LoanFuture<'a>,
    data: &'b [u8],
}

impl Receiver {
    /// Receives the next message in place, as [`recv`](Self::recv) does, without blocking
    /// the thread: the future is ready once a message is waiting (or the sender closed, or
    /// died: [`Error::Closed`], [`Error::PeerDead`], within about 50 ms of the death).
    ///
    /// Dropping the future before it is ready takes no message: the next receive gets it.
    pub fn recv_async(&mut self) -> RecvFuture<'_> {
        RecvFuture {
            rx: Some(self),
            wait: Wait::new(None),
        }
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn recv_deadline_async(&mut self, deadline: Instant) -> RecvFuture<'_> {
        RecvFuture {
            rx: Some(self),
            wait: Wait::new(Some(deadline)),
        }
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] after `timeout`
    /// (counted from this call).
    pub fn recv_timeout_async(&mut self, timeout: Duration) -> RecvFuture<'_> {
        RecvFuture {
            rx: Some(self),
            wait: Wait::new(deadline_in(timeout)),
        }
    }

    /// Waits until the other end has joined, as [`wait_for_peer`](Self::wait_for_peer) does,
    /// without blocking the thread (ready at once on the end that opened).
    pub fn wait_for_peer_async(&self) -> PeerFuture<'_> {
        PeerFuture::new(&self.ring.shared, None)
    }

    /// As [`wait_for_peer_async`](Self::wait_for_peer_async), failing with
    /// [`Error::TimedOut`] at `deadline`.
    pub fn wait_for_peer_deadline_async(&self, deadline: Instant) -> PeerFuture<'_> {
        PeerFuture::new(&self.ring.shared, Some(deadline))
    }

    /// `Ok(true)` when a message is waiting; `Closed` once the sender closed and every
    /// message was received.
    pub(crate) fn ready_now(&mut self) -> Result<bool> {
        self.waiting_now()
    }

    /// Makes `wait`'s reactor waiter: on the signal a wait for a message sleeps on.
    pub(crate) fn start_wait(&self, wait: &mut Wait) -> Result<()> {
        wait.start(&self.ring.shared, self.ring.tail())
    }
}

impl<'a> Future for RecvFuture<'a> {
    type Output = Result<Sample<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let rx = this
            .rx
            .take()
            .expect("RecvFuture polled after it completed");
        if this.wait.fresh() {
            let (ring, head) = (&rx.ring, rx.head);
            // Ends on the message, or on any move of the count (closed included): then the
            // slow path below looks properly.
            if rx.avail > 0
                || (spin(ring.tail(), || ring.complete(head), |t| t != head) && ring.complete(head))
            {
                rx.avail = rx.avail.max(1);
                return Poll::Ready(rx.take());
            }
        }
        if let Err(e) = this.wait.start(&rx.ring.shared, rx.ring.tail()) {
            return Poll::Ready(Err(e));
        }
        match this.wait.poll(cx, || rx.waiting_now()) {
            Poll::Pending => {
                this.rx = Some(rx);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => Poll::Ready(rx.take()),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl Sender {
    /// Loans the next free slot, as [`loan`](Self::loan) does, without blocking the thread.
    /// Dropping the future (or the loan) sends nothing.
    pub fn loan_async(&mut self) -> LoanFuture<'_> {
        LoanFuture {
            tx: Some(self),
            wait: Wait::new(None),
        }
    }

    /// As [`loan_async`](Self::loan_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn loan_deadline_async(&mut self, deadline: Instant) -> LoanFuture<'_> {
        LoanFuture {
            tx: Some(self),
            wait: Wait::new(Some(deadline)),
        }
    }

    /// Sends a copy of `data`, as [`send`](Self::send) does, waiting for a free slot without
    /// blocking the thread. Dropping the future before it is ready sends nothing.
    pub fn send_async<'a, 'b>(&'a mut self, data: &'b [u8]) -> SendFuture<'a, 'b> {
        SendFuture {
            loan: self.loan_async(),
            data,
        }
    }

    /// As [`send_async`](Self::send_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn send_deadline_async<'a, 'b>(
        &'a mut self,
        data: &'b [u8],
        deadline: Instant,
    ) -> SendFuture<'a, 'b> {
        SendFuture {
            loan: self.loan_deadline_async(deadline),
            data,
        }
    }

    /// Waits until the other end has joined, as [`wait_for_peer`](Self::wait_for_peer) does,
    /// without blocking the thread (ready at once on the end that opened).
    pub fn wait_for_peer_async(&self) -> PeerFuture<'_> {
        PeerFuture::new(&self.ring.shared, None)
    }

    /// As [`wait_for_peer_async`](Self::wait_for_peer_async), failing with
    /// [`Error::TimedOut`] at `deadline`.
    pub fn wait_for_peer_deadline_async(&self, deadline: Instant) -> PeerFuture<'_> {
        PeerFuture::new(&self.ring.shared, Some(deadline))
    }

    /// `Ok(true)` when a slot is free; `Closed` once the receiver left.
    pub(crate) fn ready_now(&mut self) -> Result<bool> {
        self.free_now()
    }

    /// Makes `wait`'s reactor waiter: on the signal a wait for a free slot sleeps on.
    pub(crate) fn start_wait(&self, wait: &mut Wait) -> Result<()> {
        wait.start(&self.ring.shared, self.ring.head())
    }
}

impl<'a> LoanFuture<'a> {
    /// The sender, once a slot is free.
    fn poll_free(&mut self, cx: &mut Context<'_>) -> Poll<Result<&'a mut Sender>> {
        let tx = self
            .tx
            .take()
            .expect("LoanFuture polled after it completed");
        if self.wait.fresh() {
            let seen = tx.head_seen;
            let free = match tx.free_now() {
                Ok(false) if spin(tx.ring.head(), || false, |h| h != seen) => tx.free_now(),
                other => other,
            };
            match free {
                Ok(true) => return Poll::Ready(Ok(tx)),
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if let Err(e) = self.wait.start(&tx.ring.shared, tx.ring.head()) {
            return Poll::Ready(Err(e));
        }
        match self.wait.poll(cx, || tx.free_now()) {
            Poll::Pending => {
                self.tx = Some(tx);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(tx)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<'a> Future for LoanFuture<'a> {
    type Output = Result<Loan<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .poll_free(cx)
            .map(|r| r.map(|tx| tx.make_loan()))
    }
}

impl Future for SendFuture<'_, '_> {
    type Output = Result<()>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let data = this.data;
        if let Some(max) = this.loan.tx.as_ref().map(|tx| tx.ring.max) {
            if data.len() > max {
                this.loan.tx = None;
                return Poll::Ready(Err(Error::TooLarge {
                    len: data.len(),
                    max,
                }));
            }
        }
        this.loan.poll_free(cx).map(|r| {
            let tx = r?;
            let slot = tx.make_loan().slot;
            // SAFETY: the slot is loaned to this end (free); its payload holds `max` bytes,
            // `data` is no longer (checked above) and private memory, so no overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), slot.add(SLOT_HEADER), data.len())
            };
            tx.publish(data.len());
            Ok(())
        })
    }
}
