//! [`WaitSet`]: blocking code waits on several ends at once (feature `async`).

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::pubsub::Subscriber;
use crate::ring::deadline_in;
use crate::service::{Service, ServiceClient};
use crate::shared::Deadline;
use crate::waiting::Wait;
use crate::{Client, Error, Receiver, Result, Sender, Server};

/// One end a [`WaitSet`] waits on, and what it waits for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Waitable<'a> {
    /// A message to receive (or the end of the stream).
    Receiver(&'a mut Receiver),
    /// A free slot to send into.
    Sender(&'a mut Sender),
    /// A request to answer.
    Server(&'a mut Server),
    /// The response of a call in flight (one that timed out, or whose future was dropped);
    /// ready at once when none is in flight.
    Client(&'a mut Client),
    /// A message of a topic (or the end of it).
    Subscriber(&'a mut Subscriber),
    /// A request of any client of a service.
    Service(&'a mut Service),
    /// The answer of a service call in flight (one that timed out, or whose future was
    /// dropped); ready at once when none is in flight.
    ServiceClient(&'a mut ServiceClient),
}

macro_rules! waitable_from {
    ($($t:ident),*) => {$(
        impl<'a> From<&'a mut $t> for Waitable<'a> {
            fn from(end: &'a mut $t) -> Self {
                Waitable::$t(end)
            }
        }
    )*};
}
waitable_from!(
    Receiver,
    Sender,
    Server,
    Client,
    Subscriber,
    Service,
    ServiceClient
);

impl Waitable<'_> {
    /// Makes the reactor waiter of `wait` for this end.
    fn start(&mut self, wait: &mut Wait) -> Result<()> {
        match self {
            Waitable::Receiver(e) => e.start_wait(wait),
            Waitable::Sender(e) => e.start_wait(wait),
            Waitable::Server(e) => e.start_wait(wait),
            Waitable::Client(e) => e.start_wait(wait),
            Waitable::Subscriber(e) => {
                e.start_wait(wait);
                Ok(())
            }
            Waitable::Service(e) => {
                // Dead clients' seats freed first, as a receive does.
                e.housekeep();
                e.start_wait(wait);
                Ok(())
            }
            Waitable::ServiceClient(e) => {
                e.start_wait(wait);
                Ok(())
            }
        }
    }

    fn ready_now(&mut self) -> Result<bool> {
        match self {
            Waitable::Receiver(e) => e.ready_now(),
            Waitable::Sender(e) => e.ready_now(),
            Waitable::Server(e) => e.ready_now(),
            Waitable::Client(e) => e.ready_now(),
            Waitable::Subscriber(e) => e.ready_now(),
            Waitable::Service(e) => Ok(e.ready_now()),
            Waitable::ServiceClient(e) => e.ready_now(),
        }
    }
}

/// What [`WaitSet::wait`] found at one end.
#[derive(Debug)]
pub struct Event {
    /// The end's index, as [`WaitSet::add`] returned it.
    pub index: usize,
    /// `Ok(())`: the end is ready (its `try_` call will not say `Empty`/`Full`); or why it
    /// never will be: [`Error::Closed`], [`Error::PeerDead`], [`Error::Protocol`], or
    /// [`Error::TimedOut`] when the end's own deadline passed.
    pub result: Result<()>,
}

/// Waits on several ends at once, in blocking code: channels' receivers and senders, servers
/// and clients, topics' subscribers, services' servers and clients, in any mix, each with
/// its own deadline if you like, peer death reported per end. It uses the same waiter threads
/// as the futures (`shm_core::reactor`): no thread per end.
///
/// The set borrows its ends for one wait; build it again for the next (it is a `Vec`).
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use std::time::Duration;
/// use shm_channel::{Options, Receiver, Sender, WaitSet};
/// let backend = shm_posix::Posix::new();
/// let opts = Options::new(4, 64);
/// let names: Vec<String> = (0..3).map(|i| format!("/doc-waitset-{}-{i}", std::process::id())).collect();
/// let mut rxs: Vec<Receiver> = names.iter().map(|n| Receiver::create(&backend, n, &opts)).collect::<Result<_, _>>()?;
/// let mut txs: Vec<Sender> = names.iter().map(|n| Sender::open(&backend, n, &opts)).collect::<Result<_, _>>()?;
/// txs[1].send(b"to the second")?;
///
/// let mut set = WaitSet::new();
/// for rx in rxs.iter_mut() {
///     set.add(rx);
/// }
/// let events = set.wait(Some(Duration::from_secs(5)))?;
/// assert_eq!(events.len(), 1);
/// assert_eq!(events[0].index, 1);
/// assert!(events[0].result.is_ok());
/// assert_eq!(rxs[1].try_recv()?.to_vec(), b"to the second");
/// # }
/// # Ok::<(), shm_channel::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct WaitSet<'a> {
    ends: Vec<(Waitable<'a>, Deadline)>,
}

/// Wakes the thread that waits.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl<'a> WaitSet<'a> {
    /// An empty set.
    pub fn new() -> Self {
        Self { ends: Vec::new() }
    }

    /// Adds an end; returns its index (0, 1, 2, ... in the order added).
    pub fn add(&mut self, end: impl Into<Waitable<'a>>) -> usize {
        self.ends.push((end.into(), None));
        self.ends.len() - 1
    }

    /// Adds an end with a deadline of its own: once it passes, the end reports
    /// [`Error::TimedOut`] as its event.
    pub fn add_deadline(&mut self, end: impl Into<Waitable<'a>>, deadline: Instant) -> usize {
        self.ends.push((end.into(), Some(deadline)));
        self.ends.len() - 1
    }

    /// How many ends the set holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Waits until at least one end is ready or done, at most `timeout` (`None`: while any
    /// end's peer lives), and returns an event for every end that is, in index order. Fails
    /// with [`Error::TimedOut`] when the time passed with no event; an empty set waits for
    /// the time, then says so.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>> {
        self.wait_deadline(timeout.and_then(deadline_in))
    }

    /// As [`wait`](Self::wait), until `deadline` at most.
    pub fn wait_deadline(&mut self, deadline: Option<Instant>) -> Result<Vec<Event>> {
        let start = Instant::now();
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut waits = Vec::with_capacity(self.ends.len());
        // An end that cannot even start waiting (its header went bad) is its own event.
        let mut failed = Vec::new();
        for (index, (end, deadline)) in self.ends.iter_mut().enumerate() {
            let mut wait = Wait::new(*deadline);
            if let Err(e) = end.start(&mut wait) {
                failed.push(Event {
                    index,
                    result: Err(e),
                });
            }
            waits.push(wait);
        }
        if !failed.is_empty() {
            return Ok(failed);
        }
        loop {
            let mut events = Vec::new();
            for (index, ((end, _), wait)) in self.ends.iter_mut().zip(waits.iter_mut()).enumerate()
            {
                if let Poll::Ready(result) = wait.poll(&mut cx, || end.ready_now()) {
                    events.push(Event { index, result });
                }
            }
            if !events.is_empty() {
                return Ok(events);
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::TimedOut {
                            after: start.elapsed(),
                        });
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }
}
