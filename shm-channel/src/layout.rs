//! Where everything lives in a channel's segment, and the checks a header must pass.
//!
//! ```text
//! 0     header (128 bytes): magic, layout version, kind, slots, max message, stride, creator's
//!       role, connection state, the two ends' process ids and start times, total size
//! 128   the ring: producer line (128 bytes: tail, its sleepers), consumer line (128 bytes:
//!       head, its sleepers), then `slots` slots of `stride` bytes: an 8-byte header (the
//!       length in the low 32 bits, the sequence, the message's count with bit 31 set, in the
//!       high 32; written last, in one store), the payload (8-aligned); the stride is a
//!       multiple of 64 (one cache line)
//! ```
//!
//! In a channel (kind 1), `tail` counts messages sent, `head` messages released, both modulo
//! 2^31; bit 31 of each says its writer has closed its end. Slot `i` of the ring holds message
//! number `i mod slots`.
//!
//! In a request/response pair (kind 2) the ring has one slot, which carries a request and then,
//! in place, its response: `tail` counts the client's calls, `head` the server's answers, and a
//! response's header has bit 31 of its length word set ([`RESPONSE`]).

use crate::{Error, Result};

/// "shmchan" and a zero byte, little-endian: the first 8 bytes of every channel.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmchan\0");
/// The layout this build writes and reads. Any change to this file's offsets bumps it.
pub(crate) const VERSION: u32 = 2;

pub(crate) const HEADER: usize = 128;
pub(crate) const LINE: usize = 128;
pub(crate) const RING_CTRL: usize = 2 * LINE;
pub(crate) const SLOT_HEADER: usize = 8;
pub(crate) const STRIDE_ALIGN: usize = 64;

pub(crate) const COUNT_MASK: u32 = 0x7fff_ffff;
pub(crate) const CLOSED: u32 = 0x8000_0000;
/// Set in every slot's sequence word that holds a message, so that a zero-filled slot never
/// matches count 0.
pub(crate) const SEQ_SET: u32 = 0x8000_0000;
/// Set in the length word of a pair's slot header when the slot holds a response.
pub(crate) const RESPONSE: u32 = 0x8000_0000;

/// The kind of a channel: one way, with `slots` slots.
pub(crate) const KIND_CHANNEL: u32 = 1;
/// The kind of a request/response pair: one slot, requests and responses in turn.
pub(crate) const KIND_PAIR: u32 = 2;

/// At most this many slots per ring (a power of two, so that counts modulo 2^31 map to slots
/// without a jump at the wrap).
pub(crate) const MAX_SLOTS: u32 = 1 << 20;
/// At most this many bytes per message.
pub(crate) const MAX_MESSAGE: usize = 1 << 30;
/// At most this many bytes per segment.
pub(crate) const MAX_TOTAL: usize = 1 << 36;

// Header offsets.
pub(crate) const OFF_MAGIC: usize = 0;
pub(crate) const OFF_VERSION: usize = 8;
pub(crate) const OFF_KIND: usize = 12;
pub(crate) const OFF_SLOTS: usize = 16;
pub(crate) const OFF_MAX: usize = 20;
pub(crate) const OFF_STRIDE: usize = 24;
pub(crate) const OFF_CREATOR_ROLE: usize = 28;
pub(crate) const OFF_STATE: usize = 32;
pub(crate) const OFF_STATE_SLEEPERS: usize = 36;
pub(crate) const OFF_UNLINKED: usize = 40;
pub(crate) const OFF_OPENER_PID: usize = 44;
pub(crate) const OFF_CREATOR_PID: usize = 48;
pub(crate) const OFF_CREATOR_START: usize = 56;
pub(crate) const OFF_OPENER_START: usize = 64;
pub(crate) const OFF_TOTAL: usize = 72;

// Ring offsets, from the ring's start.
pub(crate) const OFF_TAIL: usize = 0;
pub(crate) const OFF_TAIL_SLEEPERS: usize = 4;
pub(crate) const OFF_HEAD: usize = LINE;
pub(crate) const OFF_HEAD_SLEEPERS: usize = LINE + 4;

// Connection states.
/// The creator is there; no peer yet.
pub(crate) const WAITING: u32 = 1;
/// Both ends are there (the opener removes the name).
pub(crate) const CONNECTED: u32 = 2;
/// The creator left before a peer came.
pub(crate) const ABANDONED: u32 = 3;

/// The shape of one channel's segment: checked once, then kept in private memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub kind: u32,
    pub slots: u32,
    pub max: u32,
    pub stride: u32,
    pub total: usize,
}

impl Layout {
    /// The layout for these parameters, or why there is none.
    pub fn new(kind: u32, slots: u32, max: usize) -> Result<Layout> {
        let bad = |why: String| Err(Error::InvalidOptions(why));
        if kind != KIND_CHANNEL && kind != KIND_PAIR {
            return bad(format!("kind {kind} (a channel is 1, a pair 2)"));
        }
        if slots == 0 || !slots.is_power_of_two() || slots > MAX_SLOTS {
            return bad(format!(
                "{slots} slots: the count must be a power of two from 1 to {MAX_SLOTS}"
            ));
        }
        if max == 0 || max > MAX_MESSAGE {
            return bad(format!(
                "a maximum message of {max} bytes: it must be from 1 to {MAX_MESSAGE}"
            ));
        }
        let stride = (SLOT_HEADER + max).div_ceil(STRIDE_ALIGN) * STRIDE_ALIGN;
        let total = (slots as usize)
            .checked_mul(stride)
            .and_then(|s| s.checked_add(RING_CTRL))
            .and_then(|r| r.checked_add(HEADER))
            .filter(|&t| t <= MAX_TOTAL);
        let Some(total) = total else {
            return bad(format!(
                "{slots} slots of {max} bytes need more than {MAX_TOTAL} bytes"
            ));
        };
        Ok(Layout {
            kind,
            slots,
            max: max as u32,
            stride: stride as u32,
            total,
        })
    }

    /// Offset of the ring (its control lines).
    pub fn ring(&self) -> usize {
        HEADER
    }

    /// Offset of the slot that holds message number `count`.
    pub fn slot(&self, count: u32) -> usize {
        let index = (count & (self.slots - 1)) as usize;
        self.ring() + RING_CTRL + index * self.stride as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_is_inside_and_aligned() {
        for (kind, slots, max) in [(1, 1, 1), (1, 8, 8), (2, 1, 65536), (1, 4, 100)] {
            let l = Layout::new(kind, slots, max).unwrap();
            assert_eq!(l.stride % 64, 0);
            assert_eq!(l.ring() % 64, 0);
            for c in [0, 1, slots - 1, slots, COUNT_MASK] {
                let s = l.slot(c);
                assert_eq!(s % 64, 0);
                assert!(s + SLOT_HEADER + max <= l.total);
            }
        }
    }

    #[test]
    fn impossible_parameters_are_refused() {
        assert!(Layout::new(1, 0, 8).is_err());
        assert!(Layout::new(1, 3, 8).is_err());
        assert!(Layout::new(1, 8, 0).is_err());
        assert!(Layout::new(3, 8, 8).is_err());
        assert!(Layout::new(1, MAX_SLOTS, MAX_MESSAGE).is_err());
        assert!(Layout::new(2, u32::MAX, usize::MAX).is_err());
    }
}
