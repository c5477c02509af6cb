//! What every async wait of a channel end shares (feature `async`): one wait for one of the
//! end's signals, through `shm_core::reactor`, with a deadline and a watch on the peer.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use shm_core::reactor::{Waiter, Watch, Woke};
use shm_core::wait::{HYBRID_SPIN, Signal, WaitStrategy};

use crate::layout::WAITING;
use crate::peer::Proc;
use crate::shared::{Deadline, Shared};
use crate::{Error, Result};

/// Before a future registers: spins as a blocking wait of `signal` would before it sleeps
/// (its hybrid budget, at most [`HYBRID_SPIN`]; nothing more than a first look for the other
/// strategies), looking at `early()` and, about once a microsecond, at `done(value)`. True
/// when either held: the caller then looks properly. So a flowing stream costs an awaiting
/// end what it costs a blocking one, at the price of keeping the executor's thread for up to
/// 50 µs while the peer is late (choose `WaitStrategy::Block` for an end that must not).
pub(crate) fn spin(
    signal: &Signal<'_>,
    mut early: impl FnMut() -> bool,
    done: impl FnMut(u32) -> bool,
) -> bool {
    if signal.spin_first(|| early().then_some(())).is_some() {
        return true;
    }
    let budget = signal.spin_budget().min(HYBRID_SPIN);
    if budget.is_zero() {
        return false;
    }
    signal.wait_until_or(early, done, budget).is_ok()
}

/// A peer an async wait watches: the reactor's watcher asks [`Watch::alive`] every 40 ms,
/// and a wait it fires asks [`check`](PeerCheck::check) for the error to report (or `Ok`: the
/// peer lives after all, and the wait goes on).
pub(crate) trait PeerCheck: Watch {
    /// `Err(PeerDead)` (or another error) once the peer is gone.
    fn check(&self) -> Result<()>;
}

/// The [`Watch::key`] of a process: its pid within its pid namespace, at its start time.
pub(crate) fn process_key(p: &Proc) -> u128 {
    (u128::from(p.pid as u32) << 96) | (u128::from(p.pidns as u32) << 64) | u128::from(p.start)
}

/// The peer of a channel, as the reactor's watcher checks it every 40 ms.
struct PeerWatch(Arc<Shared>);

impl Watch for PeerWatch {
    fn key(&self) -> u128 {
        match self.0.peer() {
            Ok(Some(p)) => process_key(&p),
            // No peer yet: this channel alone.
            _ => (1 << 127) | Arc::as_ptr(&self.0) as usize as u128,
        }
    }

    fn alive(&self) -> bool {
        self.0.check_peer().is_ok()
    }
}

impl PeerCheck for PeerWatch {
    fn check(&self) -> Result<()> {
        self.0.check_peer()
    }
}

/// One wait in progress: nothing until the first poll that finds the end not ready, then a
/// reactor [`Waiter`] over the signal, kept until the wait ends (or the future is dropped,
/// which withdraws it).
pub(crate) struct Wait {
    deadline: Deadline,
    started: Option<Instant>,
    waiter: Option<(Waiter, Arc<dyn PeerCheck>)>,
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("deadline", &self.deadline)
            .field("registered", &self.waiter.is_some())
            .finish()
    }
}

impl Wait {
    pub(crate) fn new(deadline: Deadline) -> Wait {
        Wait {
            deadline,
            started: None,
            waiter: None,
        }
    }

    /// True before the first slow poll: the caller may spin briefly first.
    pub(crate) fn fresh(&self) -> bool {
        self.waiter.is_none()
    }

    /// Makes the reactor waiter for `signal` (the word the peer stores when the end may
    /// become ready) of the end whose segment is `shared`, unless made already.
    pub(crate) fn start(&mut self, shared: &Arc<Shared>, signal: &Signal<'_>) -> Result<()> {
        if self.waiter.is_some() {
            return Ok(());
        }
        // A creator learns who its peer is as early as it can (as blocking waits do).
        shared.peer()?;
        // SAFETY: the signal's words live in the mapping that `shared` owns.
        unsafe { self.start_with(shared.clone(), signal, Arc::new(PeerWatch(shared.clone()))) };
        Ok(())
    }

    /// Makes the reactor waiter for `signal`, watching `peer`, unless made already.
    ///
    /// # Safety
    ///
    /// `signal`'s words must live as long as `keep` (the waiter holds a clone of it).
    pub(crate) unsafe fn start_with<P: PeerCheck + 'static>(
        &mut self,
        keep: Arc<dyn Any + Send + Sync>,
        signal: &Signal<'_>,
        peer: Arc<P>,
    ) {
        if self.waiter.is_some() {
            return;
        }
        self.started = Some(Instant::now());
        let watch: Arc<dyn Watch> = peer.clone();
        // SAFETY: the caller's contract.
        let waiter = unsafe { Waiter::new(signal, keep, self.deadline, Some(watch)) };
        self.waiter = Some((waiter, peer));
    }

    /// Polls until `ready()` holds: `Ready(Ok(()))` then, `TimedOut` at the deadline,
    /// `PeerDead` once the peer died (checked every 40 ms by the reactor, and by `ready` where
    /// it looks), or `ready`'s error. [`start`](Self::start) (or `start_with`) first.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        mut ready: impl FnMut() -> Result<bool>,
    ) -> Poll<Result<()>> {
        let Some((waiter, peer)) = self.waiter.as_mut() else {
            return Poll::Ready(Err(Error::Protocol(
                "an async wait was polled before it started".to_owned(),
            )));
        };
        loop {
            return match waiter.poll(cx, &mut ready) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(Woke::Ready)) => Poll::Ready(Ok(())),
                Poll::Ready(Ok(Woke::TimedOut)) => Poll::Ready(Err(Error::TimedOut {
                    after: self.started.map_or_else(Default::default, |s| s.elapsed()),
                })),
                Poll::Ready(Ok(Woke::PeerDead)) => match peer.check() {
                    Err(e) => Poll::Ready(Err(e)),
                    // Alive after all: wait again.
                    Ok(()) => {
                        waiter.rearm();
                        continue;
                    }
                },
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            };
        }
    }

    /// The deadline this wait has.
    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
    }
}

/// The future of `wait_for_peer_async` (on every end): ready once the other end has joined.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct PeerFuture<'a> {
    shared: &'a Arc<Shared>,
    wait: Wait,
}

impl<'a> PeerFuture<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>, deadline: Deadline) -> Self {
        PeerFuture {
            shared,
            wait: Wait::new(deadline),
        }
    }
}

impl std::future::Future for PeerFuture<'_> {
    type Output = Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let shared = this.shared;
        let header = &shared.control().header;
        let state = &header.state;
        let joined = || state.load(Ordering::SeqCst) != WAITING;
        if this.wait.fresh() && joined() {
            return Poll::Ready(shared.peer().map(|_| ()));
        }
        let signal = Signal::new(state, &header.state_sleepers, WaitStrategy::Block);
        if let Err(e) = this.wait.start(shared, &signal) {
            return Poll::Ready(Err(e));
        }
        this.wait
            .poll(cx, || Ok(joined()))
            .map(|r| r.and_then(|()| shared.peer().map(|_| ())))
    }
}
