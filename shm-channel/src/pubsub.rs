//! Publish/subscribe: one [`Publisher`], up to a configured number of [`Subscriber`]s, each
//! seeing every message published after it joined.
//!
//! A topic is one segment: a header, the publisher's count, one seat per subscriber, and a ring
//! of slots. A message is written once, in its slot, whatever the number of subscribers; every
//! subscriber reads it there, and the slot is reused once the last subscriber has released it
//! (each seat says which message its subscriber reads next, and the publisher writes a slot
//! only when every seat has passed it).
//!
//! # Policies
//!
//! What a slow or stopped subscriber does to the others is the publisher's choice
//! ([`TopicOptions::policy`]):
//!
//! - [`Policy::BackPressure`] (the default): no subscriber misses anything. When the slowest
//!   subscriber is `slots` messages behind, the publisher waits (`publish` blocks,
//!   `try_publish` fails with [`Error::Full`], `publish_timeout` with [`Error::TimedOut`]). So the
//!   slowest subscriber sets the pace of all.
//! - [`Policy::Lossy`]: the publisher never waits for a slow subscriber; it overwrites the
//!   oldest slot, and a subscriber that was that far behind is overtaken: it goes on from the
//!   oldest message still there, and learns how many it missed ([`SubSample::missed`],
//!   [`Subscriber::missed`]). The one thing the publisher waits for is a subscriber that holds
//!   the very slot it must write, in place, as a [`SubSample`] (for as long as the sample
//!   lives): hold samples briefly.
//!
//! # Joining, leaving, dying
//!
//! Subscribers join ([`Subscriber::open`]) and leave (drop) at any time; the others do not
//! notice. A subscriber sees every message published after it joined, and with
//! [`TopicOptions::history`] `K`, also up to the last `K` published before (those still in their
//! slots). The publisher's name stays while it lives, so that subscribers can join. A join
//! costs a streaming publisher one memory barrier, which the joiner makes it run
//! (`membarrier(2)`) before it reads where it starts, so that no message goes out unchecked
//! against the new seat (where the kernel refuses, the joiner waits a millisecond instead).
//!
//! The end of the stream says how it ended, as the stream's does: [`Publisher::finish`] closes
//! it as complete (each subscriber receives what was published, then [`Error::Closed`]; under
//! back-pressure `finish` returns once every subscriber there has received everything, or
//! left, or died); a publisher
//! dropped without `finish` (an error, a panic, a signal) cuts it (what was published, then
//! [`Error::Aborted`]); a publisher that dies gives [`Error::PeerDead`].
//!
//! A subscriber that dies holds its seat, and with it (under back-pressure) the slots it did
//! not release, until someone notices: the publisher checks the subscribers it waits for every
//! 40 ms, and removes the dead ones (so their slots return within about 50 ms of the publisher
//! needing them); a subscriber that finds every seat taken removes dead owners before it gives
//! up. A dead publisher is known to its subscribers the same way, within about 50 ms of a
//! blocking call, and at once by `try_recv` ([`Error::PeerDead`]); the first subscriber that
//! learns it removes the topic's name, so nothing is left once every end is gone. Liveness is
//! judged as for the stream (see the crate docs): the publisher and each subscriber seat hold a
//! lock on one byte of the segment's object (POSIX and file backends), which the kernel drops
//! when the process dies, whatever its pid namespace; the process id and start time judge an
//! end in this pid namespace too. On System V, which keeps no descriptor to lock, the witness
//! is the attach count: it tells only that every other end is gone. So there, an end in
//! another pid namespace (where its pid tells nothing) is known dead only once no other
//! process is attached: a lone subscriber's death, or the publisher's when one subscriber is
//! left; with several, a dead one in another pid namespace stays (counted alive) until the
//! others are gone too. A pid that cannot be judged is never taken for dead.
//!
//! # Waiting
//!
//! A topic's ends are often more processes than the machine has CPUs (one publisher and four
//! subscribers on two), so a blocking receive with the hybrid strategy
//! ([`WaitStrategy::Hybrid`](shm_core::wait::WaitStrategy::Hybrid), the default) does not
//! spin as a stream's does: after a few quick looks (a few hundred nanoseconds) it hands its
//! CPU over (`sched_yield`) and looks again, for up to half a millisecond, then sleeps. A
//! subscriber that waits so lets the publisher and the other subscribers run, and when it
//! looks again takes every message published meanwhile one after the other; with nothing else
//! to run, the yield returns at once. The publisher waits for room the same way; once the ring
//! was full, its first looks wait for a quarter of the ring to be free (then it writes that
//! many messages without looking at the seats), its later ones for one slot. Neither side
//! puts a full memory barrier between a message and the look at who sleeps: the one that
//! sleeps makes the other run it (`membarrier(2)`, see `shm_core::fence`). The spin and
//! block strategies keep their meaning; `recv_async` looks briefly, then leaves the thread to
//! its executor (see Async). `shm bench fanout_1 fanout_4` measures what four subscribers
//! cost.
//!
//! # Async
//!
//! With the feature `async`, [`Subscriber::recv_async`] (and its deadline forms,
//! [`TypedSubscriber::recv_async`]) awaits the next message without blocking the thread, on
//! the same reactor as the stream's futures (no thread per subscriber), and learns of a dead
//! publisher within about 50 ms. Dropped before it is ready, it takes no message.
//!
//! # Trust
//!
//! As for the stream: the header is read once at open and checked, every value read from
//! shared memory afterwards (the publisher's count, a seat's head and pin, a slot's header) is
//! checked before use, and every address is computed from private values only. A garbage count
//! or length fails with [`Error::Protocol`]; a seat whose head is impossible is removed by the
//! publisher as if its owner had died.
//!
//! ```
//! use shm_channel::pubsub::{Publisher, Subscriber, SubscribeOptions, TopicOptions};
//!
//! # fn main() -> shm_channel::Result<()> {
//! let backend = shm_posix::Posix::new();
//! # let name: &'static str = Box::leak(format!("/doc-topic-{}", std::process::id()).into());
//! let mut publisher = Publisher::create(&backend, name, &TopicOptions::new(16, 4096))?;
//! let mut a = Subscriber::open(&backend, name, &SubscribeOptions::new())?;
//! let mut b = Subscriber::open(&backend, name, &SubscribeOptions::new())?;
//! publisher.publish(b"to everyone")?;
//! assert_eq!(a.recv()?.to_vec(), b"to everyone");
//! assert_eq!(b.recv()?.to_vec(), b"to everyone");
//! publisher.finish()?; // complete: both have received everything
//! drop(publisher);
//! assert!(matches!(a.recv(), Err(shm_channel::Error::Closed)));
//! # Ok(()) }
//! ```

mod describe;
pub(crate) mod ends;
mod fingerprint;
mod layout;
mod typed;

#[cfg(doc)]
use crate::Error;

#[cfg(feature = "async")]
pub use crate::asynch::SubRecvFuture;
pub(crate) use describe::describe;
pub use ends::{Policy, PubLoan, Publisher, SubSample, SubscribeOptions, Subscriber, TopicOptions};
pub use fingerprint::Fingerprint;
pub(crate) use layout::MAGIC;
pub use typed::{TypedPublisher, TypedSubscriber};
