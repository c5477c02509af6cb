//! What a channel segment is, as [discovery](crate::discover) reads it from the segment's
//! header: its kind and its ends.

use std::fmt;

use shm_core::SegmentInfo;

/// The kind of a channel segment, read from its header (its magic, and the kind word of a
/// stream's or a pair's header). New kinds of channel add a variant: match with a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A one-way stream of messages ([`Sender`](crate::Sender), [`Receiver`](crate::Receiver)).
    Stream,
    /// A request/response pair ([`Client`](crate::Client), [`Server`](crate::Server)).
    Pair,
    /// A publish/subscribe topic ([`Publisher`](crate::Publisher),
    /// [`Subscriber`](crate::Subscriber)).
    PubSub,
    /// A service for many clients ([`service`](crate::service)).
    Service,
}

impl Kind {
    /// The kind's name, as `shm list` shows it: `stream`, `pair`, `pubsub`, `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Pair => "pair",
            Kind::PubSub => "pubsub",
            Kind::Service => "service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One end of a channel, as its header announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// What it does: `sender`, `receiver`, `client`, `server`, `publisher`, `subscriber`.
    pub role: &'static str,
    /// Its process id, as its own pid namespace numbers it.
    pub pid: i32,
    /// False once it is known dead; an end that nothing can judge (another pid namespace on
    /// System V) counts as alive, as the channel itself counts it.
    pub alive: bool,
}

/// A channel segment as discovery sees it: what the kernel says, and what its header says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// The name it opens by: its name, or on System V (where the kernel keeps no name) its key
    /// as a key literal (`0x1c2b3a4d`).
    pub name: String,
    /// What the kernel says about the segment.
    pub segment: SegmentInfo,
    /// Its kind.
    pub kind: Kind,
    /// The layout version of its header. When it is not the one this build reads, only the
    /// kind and the version are known: no ends, no slots.
    pub version: u32,
    /// Slots in its ring, or a service's client seats (each one slot); 0 when unknown.
    pub slots: u32,
    /// The largest message (0 when unknown).
    pub max_message: usize,
    /// How many ends it takes at most (2 for a stream or a pair, 1 + its seats for a topic or a
    /// service).
    pub max_ends: u32,
    /// The ends its header announces, alive or dead.
    pub ends: Vec<End>,
    /// Facts of its kind, for people, labels of at most 9 characters: `("policy", "lossy")`,
    /// `("state", "connected")`, `("messages", "untyped bytes")`, ...
    pub details: Vec<(&'static str, String)>,
}

impl ChannelInfo {
    /// What a header of `kind` and `version` says before anything else is read: no slots, no
    /// ends, no facts yet.
    pub(crate) fn bare(name: &str, segment: SegmentInfo, kind: Kind, version: u32) -> Self {
        ChannelInfo {
            name: name.to_owned(),
            segment,
            kind,
            version,
            slots: 0,
            max_message: 0,
            max_ends: 0,
            ends: Vec::new(),
            details: Vec::new(),
        }
    }

    /// Says that its header is of another layout version than `reads`, or impossible: only
    /// its kind and version are known.
    pub(crate) fn unreadable(mut self, reads: u32) -> Self {
        let why = if self.version == reads {
            "an impossible header".to_owned()
        } else {
            format!("version {}; this build reads version {reads}", self.version)
        };
        self.details.push(("layout", why));
        self
    }

    /// How many of its ends live.
    pub fn alive(&self) -> usize {
        self.ends.iter().filter(|e| e.alive).count()
    }

    /// How many of its ends are known dead.
    pub fn dead(&self) -> usize {
        self.ends.len() - self.alive()
    }
}
