//! What a registration waits for besides its word: why it fired, and the peer it watches.

/// Who is on the other side of a word: asked every [`WATCH_INTERVAL`](super::WATCH_INTERVAL) while a registration
/// waits, so that a pending wait learns of a peer's death without waking its task for nothing.
pub trait Watch: Send + Sync {
    /// Equal for watches of the same peer: each distinct key is checked once per interval.
    fn key(&self) -> u128;
    /// False once the peer is gone for good.
    fn alive(&self) -> bool;
}

/// Why a registration fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fired {
    /// The word no longer held the value registered (or a spurious wake: look again).
    Changed,
    /// The deadline passed.
    Deadline,
    /// The [`Watch`] said the peer died.
    PeerDead,
}
