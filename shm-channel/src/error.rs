//! [`Error`]: everything a channel operation can fail with, by meaning.

use std::time::Duration;

/// The errors of `shm-channel`.
///
/// The ones that end a conversation are [`Error::Closed`] (the peer ended it on purpose),
/// [`Error::Aborted`] (the peer ended a stream before its end), [`Error::PeerDead`] (the peer's process is gone) and [`Error::Protocol`] (the peer wrote
/// something this end refuses to trust). [`Error::Full`], [`Error::Empty`] and
/// [`Error::TimedOut`] only say "not now".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed (create, open, map, remove); its error says where and what next.
    #[error(transparent)]
    Shm(#[from] shm_core::Error),
    /// The segment exists but does not hold a channel (a stranger's segment, or a segment
    /// whose creator never finished writing the header).
    #[error("{name} ({backend}) is not a channel: {reason}")]
    NotAChannel {
        /// The segment's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// What gave it away.
        reason: String,
    },
    /// The segment holds a channel of another layout version (another version of this crate).
    #[error(
        "{name} ({backend}) holds a channel of layout version {found}; this program speaks version {expected}: run both ends from the same version"
    )]
    Version {
        /// The segment's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// The version found in the header.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
    /// The channel was made with other parameters than this end asked for.
    #[error("{name} ({backend}) was made with {what} {found}, this end asks for {expected}")]
    Mismatch {
        /// The segment's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// Which parameter: `"slots"`, `"max message size"`, `"kind"`, `"size"`.
        what: &'static str,
        /// What this end asked for.
        expected: u64,
        /// What the header (or the kernel) says.
        found: u64,
    },
    /// The topic (or service) carries messages of another type than this end's
    /// (their [`Fingerprint`](crate::pubsub::Fingerprint)s differ).
    #[error(
        "{name} ({backend}) carries {found}, this end expects {expected}: both programs must use the same message type"
    )]
    WrongType {
        /// The segment's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// What this end expects.
        expected: String,
        /// What the header says.
        found: String,
    },
    /// The channel already has the end this side wants, or both ends.
    #[error("{name} ({backend}): {detail}")]
    Busy {
        /// The segment's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// Which end is taken, by whom.
        detail: String,
    },
    /// A service's every client seat is held by a live client: this one is beyond the limit
    /// its server set.
    #[error(
        "{name} ({backend}): the service is full: its {clients} client seats are all held by live clients; try again later, or start the server with more"
    )]
    ServiceFull {
        /// The service's name.
        name: String,
        /// The backend's name.
        backend: &'static str,
        /// How many clients it takes at once.
        clients: u32,
    },
    /// A service's server failed this call ([`Request::fail`](crate::service::Request::fail),
    /// or a request it dropped unanswered); the call is over, the client may call again.
    #[error("the server failed the call: {message}")]
    CallFailed {
        /// What the server said.
        message: String,
    },
    /// The peer closed its end on purpose: for a receiver, the sender finished the stream
    /// ([`Sender::finish`](crate::Sender::finish)) and every message it sent has been
    /// received: the stream is whole; for a sender, the receiver was dropped before the end
    /// (as `EPIPE` on a pipe), or this end finished already. In a pair: the peer left.
    #[error("the channel is closed: the peer ended it")]
    Closed,
    /// The peer ended the stream abnormally: for a receiver, the sender stopped without
    /// finishing (dropped on an error, a panic or a signal; every message it sent has been
    /// received, but the stream is cut); for a sender, the receiver said it failed
    /// ([`Receiver::abort`](crate::Receiver::abort)).
    #[error(
        "the stream was aborted: the peer stopped before its end (what came so far is incomplete)"
    )]
    Aborted,
    /// The peer's process died (or the process id it announced now belongs to another
    /// process). Messages it had completely sent were delivered first.
    #[error(
        "the peer (pid {pid}) died; nothing of the channel is left behind once this end is dropped"
    )]
    PeerDead {
        /// The peer's process id, as it announced itself.
        pid: i32,
    },
    /// A blocking call with a deadline reached it.
    #[error("timed out after {after:?}: the peer is alive but did not answer")]
    TimedOut {
        /// How long the call waited.
        after: Duration,
    },
    /// `try_send`/`try_loan`: every slot holds a message the receiver has not released.
    #[error("the channel is full")]
    Full,
    /// `try_recv`: no message is waiting.
    #[error("the channel is empty")]
    Empty,
    /// A message longer than the channel's maximum, or than a buffer, or than a loan.
    #[error("{len} bytes do not fit: the limit here is {max} bytes")]
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A typed receive found a message of another size than the type.
    #[error("the message holds {len} bytes, the type {expected} bytes")]
    WrongSize {
        /// The message's length.
        len: usize,
        /// The type's size.
        expected: usize,
    },
    /// The peer broke the protocol: an index or length read from shared memory is impossible.
    /// Nothing was read or written out of bounds; the channel should be dropped.
    #[error("the peer broke the channel protocol: {0}")]
    Protocol(String),
    /// [`Server::reply`](crate::Server::reply) with no request to answer (none received, or
    /// the last one answered already).
    #[error("there is no request to answer: receive one first")]
    NoRequest,
    /// Options that cannot make a channel (0 slots, not a power of two, too large).
    #[error("invalid channel options: {0}")]
    InvalidOptions(String),
}

impl Error {
    /// True for the errors that end the channel for good: [`Error::Closed`],
    /// [`Error::Aborted`], [`Error::PeerDead`] and [`Error::Protocol`].
    pub fn is_disconnected(&self) -> bool {
        matches!(
            self,
            Error::Closed | Error::Aborted | Error::PeerDead { .. } | Error::Protocol(_)
        )
    }
}

/// The result type of `shm-channel`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
