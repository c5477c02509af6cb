//! A channel carried across hosts over [Zenoh](https://zenoh.io): the `out` half receives
//! from a local channel and publishes each message on a Zenoh key; the `in` half, on another
//! host, subscribes to the key and sends each message into a local channel there. Each side's
//! local programs see an ordinary `shm-channel` stream.
//!
//! Start here: [`Link::open`] makes the Zenoh session, [`Bridge::new`] names the key, then
//! [`Bridge::out`] on the sending host and [`Bridge::inbound`] on the receiving one.
//!
//! ```no_run
//! use shm_bridge::{Bridge, Link};
//! use shm_channel::{Options, Receiver, Sender};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = shm_posix::Posix::new();
//! let opts = Options::new(32, 64 * 1024); // as the local programs use it
//!
//! // Host A: the local sender's messages, out on the key `shm/logs`.
//! let session = Link::listen("tcp/0.0.0.0:7447").open()?;
//! let rx = Receiver::open_or_create(&backend, "/logs", &opts)?;
//! let carried = Bridge::new(&session, "shm/logs")?.out(rx)?;
//! println!("{} messages, {} bytes, {:?}", carried.messages, carried.bytes, carried.end);
//!
//! // Host B: the same messages, into the local channel /logs there.
//! let session = Link::connect("tcp/hostA:7447").open()?;
//! let tx = Sender::open_or_create(&backend, "/logs", &opts)?;
//! Bridge::new(&session, "shm/logs")?.inbound(tx)?;
//! # Ok(()) }
//! ```
//!
//! # What crosses, and how
//!
//! - **One message, one sample.** Each message is one Zenoh sample whose payload is the
//!   message, byte for byte, so boundaries are kept and a plain Zenoh subscriber on the key
//!   reads the messages as they are. A small header rides in the sample's attachment: the
//!   message's number in the stream and the `out` bridge's run (see below). Any message the
//!   local channel holds (up to its maximum message size) crosses; Zenoh fragments and
//!   reassembles what exceeds its batch.
//! - **In order, nothing dropped.** One publisher, Zenoh's reliable channel (TCP) and its
//!   blocking congestion control: a publication waits while the link is busy rather than
//!   being dropped. The `in` half numbers what it receives and refuses a gap or a second
//!   source ([`Error::Gap`], [`Error::Protocol`]) rather than deliver a stream with a hole.
//! - **Back-pressure.** The `in` half takes samples from a bounded queue and blocks while its
//!   local channel is full; the queue then fills, Zenoh stops reading the link, TCP's window
//!   closes, the `out` half's publication blocks, and the local sender on the first host
//!   finds its channel full. A slow consumer slows the producer; nothing is buffered
//!   without bound.
//! - **Event-driven.** Each half sleeps in the kernel until its next message (a futex on
//!   the local channel, Zenoh's queue on the other side); it wakes every 100 ms only when
//!   idle, to look at its stop flag and at the far side's presence.
//! - **The end travels.** When the local sender ends, the `out` half publishes the end of
//!   the stream: complete (the sender called `finish`) or aborted (it was dropped unfinished,
//!   or died). The `in` half ends its local channel the same way (`finish`, or a drop that
//!   aborts), so the receiver on the far host ends as it would locally:
//!   [`shm_channel::Error::Closed`] after the whole stream, [`shm_channel::Error::Aborted`]
//!   after a cut one. When the far side fails (its bridge dies, the link is lost, its
//!   receiver leaves), the `out` half ends its local receiver with `abort`, so the local
//!   sender learns it as [`shm_channel::Error::Aborted`].
//! - **Delivered means taken by the bridge.** The local sender's `finish` returns once the
//!   `out` half has received the whole stream (the local channel knows no further); the `out`
//!   half itself returns `Ok` once the `in` half has ended its channel and left.
//! - **Presence.** The `out` half publishes nothing until a subscriber matches the key
//!   (Zenoh's matching status), so no message is sent to nobody, and it declares a Zenoh
//!   liveliness token that the `in` half watches: when the `out` bridge dies or the link
//!   drops for longer than Zenoh's lease, the `in` half ends its channel as aborted
//!   ([`Error::FarSideGone`]). A bridge process that dies is seen on its own host as a dead
//!   peer of the local channel (shm-channel's peer-death detection, within about 50 ms).
//!
//! # What is not guaranteed across hosts
//!
//! - **No exactly-once across a restart.** Nothing is stored: a message that was on the
//!   wire when a bridge or the link died is lost, and a restarted `out` bridge starts a new
//!   stream (a new run), which the `in` half refuses in the middle of the old one. The far
//!   side learns that the stream ended aborted; it never gets a silently shortened or
//!   spliced stream, but neither side can tell exactly which messages the other got.
//! - **A dropped link ends the stream.** Zenoh reconnects a TCP connection that closed
//!   (its `connect` side retries), but nothing is stored or resent at this level: once
//!   Zenoh has seen the connection close, the `out` half sees its subscriber leave and the
//!   `in` half the `out` half's token go, and both end their local channels as aborted, even
//!   when the link is back a moment later and even between two messages. What the far
//!   receiver got is a byte-exact prefix of the stream, then `Aborted`; the local sender's
//!   next send (or its `finish`) fails; a message lost in a drop too short to be seen shows as
//!   a gap ([`Error::Gap`]) and aborts the same way. A link that goes silent without closing
//!   (a network pause, TCP resending underneath) for less than Zenoh's lease (10 s) loses
//!   nothing and the stream goes on. The `out` half returns success only once the `in` half
//!   has acknowledged the end (it has ended its channel as the end said), so a drop after the
//!   end was published is an error there too. (Tested in `tests/tests/cli/bridge.rs`: a
//!   forwarder between the bridges stalled for 2 s, and cut for 300 ms mid-stream.)
//! - **One source and one destination per key.** Two `out` bridges on one key, or an `in`
//!   that subscribes after the stream started, are refused ([`Error::Protocol`],
//!   [`Error::Gap`]). A second subscriber on the key (a plain Zenoh one) sees the messages
//!   too, but the `out` half waits only for the first one to leave at the end.
//! - **Timing.** Death across hosts is learnt through Zenoh: at once when the process
//!   dies and its TCP connection closes, after Zenoh's lease (10 s by default) when the host
//!   or the network goes silent.
//! - **Trust.** The far side is as trusted as the network: the bridge checks the header it
//!   reads and the size of each message against the local channel, but it neither
//!   authenticates nor encrypts (this build has Zenoh's TCP transport only).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bridge;
mod error;
mod inbound;
mod out;
mod watch;
mod wire;

pub use bridge::{Bridge, Carried, End, IN_QUEUE, Link, default_key};
pub use error::{Error, Result};
pub use zenoh::Session;
