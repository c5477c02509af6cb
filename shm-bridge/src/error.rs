//! [`Error`]: what carrying a channel across hosts can fail with, by meaning.

/// The errors of `shm-bridge`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Zenoh refused or failed an operation (a session that cannot open, an endpoint that
    /// cannot listen, a declaration or a publication that failed).
    #[error("zenoh: cannot {what}: {source}")]
    Zenoh {
        /// What the bridge asked Zenoh to do.
        what: String,
        /// Zenoh's error.
        source: zenoh::Error,
    },
    /// The local channel failed (its error says what, and what to do next).
    #[error(transparent)]
    Channel(#[from] shm_channel::Error),
    /// A key expression the bridge cannot use: not a valid Zenoh key, or one with wildcards
    /// (a bridge publishes and subscribes on one exact key).
    #[error("{key:?} is not a key a bridge can use: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why not.
        reason: String,
    },
    /// A message on the key that does not follow the bridge's protocol (a header of another
    /// version, a stranger's attachment, a message out of order). The stream cannot continue
    /// byte-exact: the local channel is ended as aborted.
    #[error("the far side broke the bridge protocol: {0}")]
    Protocol(String),
    /// Messages were lost between the two bridges (the link dropped, or another `out` bridge
    /// took the key over): message `expected` was due, `found` came. The local channel is ended
    /// as aborted.
    #[error(
        "messages were lost between the bridges: message {expected} was due, {found} came; the local end is aborted"
    )]
    Gap {
        /// The message number that was due.
        expected: u64,
        /// The message number that came.
        found: u64,
    },
    /// The bridge on the far side went away (killed, or the link dropped for longer than
    /// Zenoh's lease) before the stream ended.
    #[error(
        "the bridge on the far side is gone (killed, or the link dropped) after {messages} messages; the local end is {}",
        if *.aborted { "aborted" } else { "closed" }
    )]
    FarSideGone {
        /// Messages carried before it went.
        messages: u64,
        /// True when the local end was ended as aborted (the `in` half); false when it was
        /// closed (the `out` half: the local sender learns that its receiver is gone).
        aborted: bool,
    },
    /// The local peer left before the stream ended: on the `in` half, the local receiver
    /// dropped its end (the far side's sender learns it as a receiver gone).
    #[error("the local receiver left after {messages} messages; the far side is told")]
    LocalGone {
        /// Messages delivered before it left.
        messages: u64,
    },
    /// The stop flag was raised (a signal, in the CLI); the stream is ended as aborted.
    #[error("interrupted after {messages} messages; the stream is ended as aborted on both sides")]
    Interrupted {
        /// Messages carried before the stop.
        messages: u64,
    },
}

impl Error {
    pub(crate) fn zenoh(what: impl Into<String>) -> impl FnOnce(zenoh::Error) -> Error {
        let what = what.into();
        move |source| Error::Zenoh { what, source }
    }
}

/// The result type of `shm-bridge`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
