//! Where everything lives in a publish/subscribe segment, as `#[repr(C)]` types, and the checks
//! a header must pass.
//!
//! ```text
//! 0            Header (128 bytes): magic "shmpubs", layout version, slots, maximum message,
//!              stride, seats, history, policy, the message type's fingerprint, total size, the
//!              publisher's process id and start time, the name-removed flag, the seats' generation,
//!              the publisher's pid namespace, how the stream ended (written before the count's
//!              closed bit: complete or aborted)
//! 128          Line: the publisher's count of messages published (bit 31: closed) and its
//!              sleepers (subscribers waiting for a message)
//! 256          Line: releases (bumped by a subscriber that released a slot while the publisher
//!              sleeps) and its sleepers (the publisher waiting for room)
//! 384          `seats` Seats of 128 bytes: owner's process id (0: free), active, owner's start
//!              time, head (the next message it reads: every one before is released), pin (the
//!              message it holds in place under the lossy policy, with bit 31 set; 0: none)
//! 384+128*seats `slots` slots of `stride` bytes: a 64-bit header (length in the low half, the
//!              message's count with bit 31 set in the high half, written last) and the payload
//! ```
//!
//! Counts run modulo 2^31. Message `c` lives in slot `c mod slots`.
//!
//! Locks (the witness of `peer`, on backends with a descriptor): byte 0 is the publisher's,
//! byte `1 + i` the owner's of seat `i`, held while the end lives (an end of version 2 held
//! none, and would be taken for dead).

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::layout::{SLOT_HEADER, STRIDE_ALIGN};
use crate::{Error, Result};

/// "shmpubs" and a zero byte, little-endian: the first 8 bytes of every topic.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmpubs\0");
/// The layout this build writes and reads. Any change to this file bumps it.
/// Version 2: how the stream ended, in the header. Version 4: both lines are asymmetric
/// signals (`shm_core::fence`): an end that sleeps on one makes the writers run the barrier.
pub(crate) const VERSION: u32 = 4;

/// At most this many subscriber seats.
pub(crate) const MAX_SEATS: u32 = 1024;
/// At most this many slots (a power of two).
pub(crate) const MAX_SLOTS: u32 = 1 << 20;
/// At most this many bytes per message.
pub(crate) const MAX_MESSAGE: usize = 1 << 30;
/// At most this many bytes per segment.
pub(crate) const MAX_TOTAL: usize = 1 << 36;

/// Policy words.
pub(crate) const POLICY_BACK_PRESSURE: u32 = 1;
pub(crate) const POLICY_LOSSY: u32 = 2;

/// How the stream ended (the header's `end`, written before the count's closed bit): the
/// publisher finished it (every message it meant to publish is there).
pub(crate) const END_COMPLETE: u32 = 1;
/// The publisher was dropped without finishing (an error, a panic, a signal): the stream is cut.
pub(crate) const END_ABORTED: u32 = 2;

/// A seat owner that says "being removed": no process has it (above PID_MAX).
pub(crate) const EVICTING: u32 = u32::MAX;
/// A seat's `active`: joined.
pub(crate) const ACTIVE: u32 = 1;
/// A seat's `active`: joining (its head may still be far behind; the publisher waits).
pub(crate) const JOINING: u32 = 2;

/// Set in a pin: the subscriber holds the message of the low 31 bits.
pub(crate) const HOLD: u32 = 0x8000_0000;

/// The first 128 bytes.
#[repr(C, align(128))]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub slots: AtomicU32,
    pub max: AtomicU32,
    pub stride: AtomicU32,
    pub seats: AtomicU32,
    pub history: AtomicU32,
    pub policy: AtomicU32,
    pub type_size: AtomicU32,
    pub type_align: AtomicU32,
    pub publisher_pid: AtomicU32,
    pub type_hash: AtomicU64,
    pub total: AtomicU64,
    pub publisher_start: AtomicU64,
    /// 1 once an end removed the segment's name.
    pub unlinked: AtomicU32,
    /// Bumped by every subscriber that joins, so that the publisher looks at the seats again.
    pub generation: AtomicU32,
    /// The publisher's pid namespace (see `peer::Proc`).
    pub publisher_pidns: AtomicU64,
    /// How the stream ended: 0 while open, [`END_COMPLETE`] or [`END_ABORTED`].
    pub end: AtomicU32,
}

/// A word one side writes and others wait on, with its sleepers, alone on its line.
#[repr(C, align(128))]
pub(crate) struct Line {
    pub value: AtomicU32,
    pub sleepers: AtomicU32,
}

/// One subscriber's place.
#[repr(C, align(128))]
pub(crate) struct Seat {
    /// The owner's process id; 0 when free.
    pub owner: AtomicU32,
    /// 1 while the publisher must count this seat's head (and pin).
    pub active: AtomicU32,
    /// The owner's start time (see `peer::Proc`).
    pub start: AtomicU64,
    /// The next message the owner reads: it released every one before.
    pub head: AtomicU32,
    /// `count | HOLD` while the owner holds message `count` in place (lossy policy); else 0.
    pub pin: AtomicU32,
    /// The owner's pid namespace (see `peer::Proc`).
    pub pidns: AtomicU64,
}

const _: () = {
    assert!(size_of::<Header>() == 128);
    assert!(size_of::<Line>() == 128);
    assert!(size_of::<Seat>() == 128);
};

pub(crate) const OFF_TAIL: usize = size_of::<Header>();
pub(crate) const OFF_RELEASE: usize = OFF_TAIL + size_of::<Line>();
pub(crate) const OFF_SEATS: usize = OFF_RELEASE + size_of::<Line>();

/// The shape of one topic's segment: computed from its parameters, kept in private memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub slots: u32,
    pub max: u32,
    pub stride: u32,
    pub seats: u32,
    pub total: usize,
}

impl Shape {
    /// The shape for these parameters, or why there is none.
    pub fn new(slots: u32, max: usize, seats: u32) -> Result<Shape> {
        let bad = |why: String| Err(Error::InvalidOptions(why));
        if slots < 2 || !slots.is_power_of_two() || slots > MAX_SLOTS {
            return bad(format!(
                "{slots} slots: a topic needs a power of two from 2 to {MAX_SLOTS}"
            ));
        }
        if max == 0 || max > MAX_MESSAGE {
            return bad(format!(
                "a maximum message of {max} bytes: it must be from 1 to {MAX_MESSAGE}"
            ));
        }
        if seats == 0 || seats > MAX_SEATS {
            return bad(format!(
                "{seats} subscribers: a topic takes from 1 to {MAX_SEATS}"
            ));
        }
        let stride = (SLOT_HEADER + max).div_ceil(STRIDE_ALIGN) * STRIDE_ALIGN;
        let total = (slots as usize)
            .checked_mul(stride)
            .and_then(|s| s.checked_add(OFF_SEATS + seats as usize * size_of::<Seat>()))
            .filter(|&t| t <= MAX_TOTAL);
        let Some(total) = total else {
            return bad(format!(
                "{slots} slots of {max} bytes need more than {MAX_TOTAL} bytes"
            ));
        };
        Ok(Shape {
            slots,
            max: max as u32,
            stride: stride as u32,
            seats,
            total,
        })
    }

    /// Offset of seat `i` (`i < seats`).
    pub fn seat(&self, i: u32) -> usize {
        OFF_SEATS + i as usize * size_of::<Seat>()
    }

    /// Offset of the first slot.
    pub fn slots_at(&self) -> usize {
        OFF_SEATS + self.seats as usize * size_of::<Seat>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_and_seat_is_inside_and_aligned() {
        for (slots, max, seats) in [(2, 1, 1), (16, 512, 16), (1024, 64, 64), (4, 65536, 3)] {
            let s = Shape::new(slots, max, seats).unwrap();
            assert_eq!(s.seat(seats - 1) + 128, s.slots_at());
            assert_eq!(s.slots_at() % 128, 0);
            assert_eq!(s.stride as usize % 64, 0);
            let last = s.slots_at() + (slots as usize - 1) * s.stride as usize;
            assert!(last + SLOT_HEADER + max <= s.total);
        }
    }

    #[test]
    fn impossible_parameters_are_refused() {
        assert!(Shape::new(1, 8, 1).is_err());
        assert!(Shape::new(3, 8, 1).is_err());
        assert!(Shape::new(8, 0, 1).is_err());
        assert!(Shape::new(8, 8, 0).is_err());
        assert!(Shape::new(8, 8, MAX_SEATS + 1).is_err());
        assert!(Shape::new(MAX_SLOTS, MAX_MESSAGE, 1).is_err());
    }
}
