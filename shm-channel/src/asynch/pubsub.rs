//! The async receive of a topic (feature `async`): [`Subscriber::recv_async`], with deadline
//! forms, on the same reactor as the stream's futures.
//!
//! As there, the future looks first (spinning briefly, as the stream's futures do), registers
//! with `shm_core::reactor` only when nothing is there, and takes a message only in the poll
//! that returns its [`SubSample`]: dropping it at any point takes nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use shm_core::reactor::Watch;

use crate::layout::{CLOSED, COUNT_MASK, SEQ_SET};
use crate::peer::Proc;
use crate::pubsub::ends::{Look, SubSample, Subscriber, Topic};
use crate::ring::deadline_in;
use crate::waiting::{PeerCheck, Wait, process_key, spin};
use crate::{Error, Result};

/// The future of [`Subscriber::recv_async`]: the next message, in place.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SubRecvFuture<'a> {
    rx: Option<&'a mut Subscriber>,
    wait: Wait,
}

/// A topic's publisher, as the reactor's watcher checks it every 40 ms.
struct PublisherWatch {
    topic: Arc<Topic>,
    publisher: Proc,
}

impl Watch for PublisherWatch {
    fn key(&self) -> u128 {
        process_key(&self.publisher)
    }

    fn alive(&self) -> bool {
        self.topic.judge_publisher(&self.publisher).maybe_alive()
    }
}

impl PeerCheck for PublisherWatch {
    fn check(&self) -> Result<()> {
        self.topic.check_publisher(&self.publisher)
    }
}

impl Subscriber {
    /// Receives the next message in place, as [`recv`](Self::recv) does, without blocking the
    /// thread: the future is ready once a message is there (or the topic closed:
    /// [`Error::Closed`]; or its publisher died: [`Error::PeerDead`], within about 50 ms).
    ///
    /// Dropping the future before it is ready takes no message: the next receive gets it.
    pub fn recv_async(&mut self) -> SubRecvFuture<'_> {
        SubRecvFuture {
            rx: Some(self),
            wait: Wait::new(None),
        }
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] at `deadline`.
    pub fn recv_deadline_async(&mut self, deadline: Instant) -> SubRecvFuture<'_> {
        SubRecvFuture {
            rx: Some(self),
            wait: Wait::new(Some(deadline)),
        }
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] after `timeout`
    /// (counted from this call).
    pub fn recv_timeout_async(&mut self, timeout: Duration) -> SubRecvFuture<'_> {
        SubRecvFuture {
            rx: Some(self),
            wait: Wait::new(deadline_in(timeout)),
        }
    }

    /// Makes `wait`'s reactor waiter: on the topic's count, watching the publisher.
    pub(crate) fn start_wait(&self, wait: &mut Wait) {
        let watch = Arc::new(PublisherWatch {
            topic: self.topic.clone(),
            publisher: self.publisher,
        });
        // SAFETY: the tail line lives in the topic's mapping, which `keep` (the topic) owns.
        unsafe { wait.start_with(self.topic.clone(), self.tail.get(), watch) };
    }

    /// The sample of what `look` found, or why there is none.
    fn taken(&mut self, look: Look) -> Option<Result<SubSample<'_>>> {
        match look {
            Look::Ready(len) => Some(Ok(self.take(len))),
            Look::Closed => Some(Err(self.closed())),
            Look::NotYet => None,
        }
    }
}

impl<'a> Future for SubRecvFuture<'a> {
    type Output = Result<SubSample<'a>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let rx = this
            .rx
            .take()
            .expect("SubRecvFuture polled after it completed");
        let look = match rx.look() {
            Ok(l) => l,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let look = match look {
            Look::NotYet if this.wait.fresh() => {
                // Spin as the blocking receive would: until the slot or the count moves.
                let head = rx.head;
                let word = rx.topic.slot_word(head);
                let seq = head | SEQ_SET;
                spin(
                    rx.tail.get(),
                    || (word.load(Ordering::Acquire) >> 32) as u32 == seq,
                    |t| t & COUNT_MASK != head || t & CLOSED != 0,
                );
                match rx.look() {
                    Ok(l) => l,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            other => other,
        };
        if !matches!(look, Look::NotYet) {
            return Poll::Ready(rx.taken(look).unwrap_or(Err(Error::Empty)));
        }
        rx.start_wait(&mut this.wait);
        let mut found = Look::NotYet;
        match this.wait.poll(cx, || {
            found = rx.look()?;
            Ok(!matches!(found, Look::NotYet))
        }) {
            Poll::Pending => {
                this.rx = Some(rx);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => Poll::Ready(rx.taken(found).unwrap_or(Err(Error::Empty))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}
