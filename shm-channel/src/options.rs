//! The parameters of a channel ([`Options`]): fixed at create, checked at open, and how an end
//! waits.

use shm_core::wait::WaitStrategy;

use crate::error::Result;
use crate::layout;

use std::time::Duration;

/// Builder methods of an options struct, one a field, each setting that public field:
/// `setters! { /// Its doc. field: Type, ... }` in the struct's `impl`.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}
pub(crate) use setters;

/// How long an open waits for a channel in the making, unless [`Options::open_timeout`] says.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// The parameters of a channel, fixed at create and checked at open, and how this end waits.
///
/// ```
/// let opts = shm_channel::Options::new(32, 64 * 1024).mode(0o640);
/// assert_eq!((opts.slots, opts.max_message, opts.mode), (32, 65536, 0o640));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Slots in the ring: a power of two from 1 to 2^20. The sender can be this many
    /// messages ahead of the receiver. A request/response pair has one slot whatever this
    /// says (one call at a time).
    pub slots: u32,
    /// The largest message in bytes, 1 to 2^30.
    pub max_message: usize,
    /// Permission bits of the segment (default `0o600`: only this user).
    pub mode: u32,
    /// How this end waits (default hybrid: spin briefly, then sleep on a futex). Not part of
    /// the channel: each end chooses its own.
    pub wait: WaitStrategy,
    /// How long an open waits for a channel whose creator is still making it (sizing the
    /// segment, writing its header) or taking it over, before it fails (default 5 s). Not
    /// part of the channel.
    pub open_timeout: Duration,
}

impl Options {
    /// `slots` slots of at most `max_message` bytes, mode 0600, hybrid waiting.
    pub fn new(slots: u32, max_message: usize) -> Self {
        Self {
            slots,
            max_message,
            mode: 0o600,
            wait: WaitStrategy::Hybrid,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
        }
    }

    setters! {
        /// Sets how long an open waits for a channel in the making.
        open_timeout: Duration,
        /// Sets the permission bits.
        mode: u32,
        /// Sets how this end waits.
        wait: WaitStrategy,
    }

    /// Bytes of the segment a channel of these options takes, or [`Error::InvalidOptions`](crate::Error::InvalidOptions).
    /// A request/response pair takes what a channel of one slot takes (its `slots` is 1
    /// whatever these options say).
    pub fn segment_size(&self) -> Result<usize> {
        Ok(layout::Layout::new(1, self.slots, self.max_message)?.total)
    }
}

impl Default for Options {
    /// 16 slots of 64 KiB.
    fn default() -> Self {
        Self::new(16, 64 * 1024)
    }
}
