//! A channel carried across hosts over [Zenoh](https://zenoh.io): the `out` half receives
//! from a local channel and publishes each message on a Zenoh key; the `in` half, on another
//! host, subscribes to the key and sends each message into a local channel there. Each side's
//! local programs see an ordinary `shm-channel` stream.
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
//! - **No retransmission after a link drop.** Zenoh reconnects a dropped link, but what was
//!   in flight is gone; the `in` half sees the gap (or the `out` half's token go) and aborts.
//!   A link that drops and comes back between two messages, within Zenoh's lease, loses
//!   nothing.
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

mod error;
mod inbound;
mod out;
mod watch;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use error::{Error, Result};
pub use zenoh::Session;
use zenoh::Wait;
use zenoh::key_expr::KeyExpr;

/// How often an idle half looks at its stop flag and the far side's presence.
const TICK: Duration = Duration::from_millis(100);

/// The samples the `in` half lets Zenoh queue for it (a bound on what one bridge buffers).
pub const IN_QUEUE: usize = 16;

/// The liveliness token of the `out` half, under the key.
const OUT_TOKEN: &str = "shm-bridge-out";

/// How a stream ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum End {
    /// The sender finished: every message it sent was carried.
    #[default]
    Complete,
    /// The sender was aborted or died: the messages it completed were carried, and the far
    /// side's receiver learns that the stream did not complete.
    Aborted,
}

/// What a half carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// Messages carried.
    pub messages: u64,
    /// Their bytes, in total.
    pub bytes: u64,
    /// How the stream ended.
    pub end: End,
}

/// How a bridge's Zenoh session reaches the other side: endpoints in Zenoh's form
/// (`tcp/127.0.0.1:7447`, `tcp/[::1]:7447`, `tcp/host.example:7447`).
///
/// The session is a Zenoh peer that listens on the `listen` endpoints only (none by default,
/// where Zenoh would listen on every interface) and connects to the `connect` ones (retrying
/// until the other side is there); multicast scouting is off unless `scout` is set, so that
/// bridges on one network do not find strangers, nor strangers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Endpoints to listen on.
    pub listen: Vec<String>,
    /// Endpoints to connect to.
    pub connect: Vec<String>,
    /// Find peers by multicast scouting too.
    pub scout: bool,
}

impl Link {
    /// A link that listens on `endpoint`.
    pub fn listen(endpoint: impl Into<String>) -> Link {
        Link {
            listen: vec![endpoint.into()],
            ..Link::default()
        }
    }

    /// A link that connects to `endpoint`.
    pub fn connect(endpoint: impl Into<String>) -> Link {
        Link {
            connect: vec![endpoint.into()],
            ..Link::default()
        }
    }

    /// Sets multicast scouting.
    pub fn scout(mut self, scout: bool) -> Link {
        self.scout = scout;
        self
    }

    /// The Zenoh configuration of this link.
    pub fn config(&self) -> Result<zenoh::Config> {
        let mut config = zenoh::Config::default();
        let json = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|e| format!("{e:?}")).collect();
            format!("[{}]", quoted.join(","))
        };
        let settings = [
            ("mode", "\"peer\"".to_owned()),
            ("listen/endpoints", json(&self.listen)),
            ("connect/endpoints", json(&self.connect)),
            ("scouting/multicast/enabled", self.scout.to_string()),
        ];
        for (key, value) in settings {
            config
                .insert_json5(key, &value)
                .map_err(Error::zenoh(format!("set {key} to {value}")))?;
        }
        Ok(config)
    }

    /// Opens a Zenoh session on this link (blocking; it returns once the listeners are up,
    /// while connections are retried in the background).
    pub fn open(&self) -> Result<Session> {
        zenoh::open(self.config()?)
            .wait()
            .map_err(Error::zenoh("open a session"))
    }
}

/// The key a channel travels on when none is given: `shm/NAME` (a leading `/` of the name
/// dropped).
///
/// ```
/// assert_eq!(shm_bridge::default_key("/logs"), "shm/logs");
/// ```
pub fn default_key(name: &str) -> String {
    format!("shm/{}", name.trim_start_matches('/'))
}

/// One key on one session: [`out`](Bridge::out) and [`inbound`](Bridge::inbound) carry a
/// local channel over it.
#[derive(Debug)]
pub struct Bridge<'a> {
    session: &'a Session,
    key: KeyExpr<'static>,
    stop: Option<&'a AtomicBool>,
}

impl<'a> Bridge<'a> {
    /// A bridge on `key`, an exact Zenoh key (no wildcards), or [`Error::InvalidKey`].
    pub fn new(session: &'a Session, key: &str) -> Result<Bridge<'a>> {
        let invalid = |reason: String| Error::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        let key_expr = KeyExpr::try_from(key.to_owned()).map_err(|e| invalid(e.to_string()))?;
        if key.contains('*') || key.contains('$') {
            return Err(invalid(
                "it has wildcards; a bridge publishes and subscribes on one exact key".to_owned(),
            ));
        }
        Ok(Bridge {
            session,
            key: key_expr,
            stop: None,
        })
    }

    /// Stops the half that runs (within 100 ms) when `flag` becomes true: the stream is ended
    /// as aborted on both sides and the half returns [`Error::Interrupted`].
    pub fn stop_on(mut self, flag: &'a AtomicBool) -> Bridge<'a> {
        self.stop = Some(flag);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// A liveliness token's key under the bridge's key.
    fn token(&self, what: &str) -> String {
        format!("{}/{what}", self.key)
    }
}
