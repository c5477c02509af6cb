//! Where everything lives in a service's segment, as `#[repr(C)]` types of atomics checked at
//! compile time, and the checks its parameters must pass.
//!
//! ```text
//! 0        Header (128 bytes): magic "shmserv", layout version, seats, maximum message, seat
//!          stride, state (open, closed), name-removed flag, total size, the server's end
//!          record (process id, start time, pid namespace)
//! 128      Bell (128 bytes): bumped by a client after it put a request (the server waits on
//!          it for "any request"), its sleepers, and a word by which a client that found no
//!          free seat asks the server to look for dead and departed clients
//! 256      `seats` seats of `stride` bytes each: a 128-byte control line (the owner's end
//!          record, 0 while free; its "left" flag; the server's answer count and its
//!          sleepers), then one slot: an 8-byte header (length and flags in the low 32 bits,
//!          the call's count with bit 31 set in the high 32, written last in one store) and
//!          the payload
//! ```
//!
//! A seat is a request/response pair's slot: the client writes its request there, the server
//! its answer in place. Counts run modulo 2^31 from 1 for each owner of a seat (the server
//! zeroes a seat when it frees it). Locks (the witness of `peer`): byte 0 the server's, byte
//! `1 + i` the owner of seat `i`.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::layout::{EndRecord, SLOT_HEADER};
use crate::{Error, Result};

/// "shmserv" and a zero byte, little-endian: the first 8 bytes of every service.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmserv\0");
/// The layout this build writes and reads. Any change to this file bumps it.
pub(crate) const VERSION: u32 = 1;

/// At most this many client seats.
pub(crate) const MAX_SEATS: u32 = 1024;
/// At most this many bytes per request or answer (the length has 30 bits).
pub(crate) const MAX_MESSAGE: usize = 1 << 29;
/// At most this many bytes per segment.
pub(crate) const MAX_TOTAL: usize = 1 << 36;

/// In a slot header's low word: the slot holds the answer (else the request).
pub(crate) const ANSWER: u32 = 1 << 31;
/// In a slot header's low word, with [`ANSWER`]: the server failed the call, and the payload
/// says why.
pub(crate) const FAILED: u32 = 1 << 30;
/// The length bits of a slot header's low word.
pub(crate) const LEN_MASK: u32 = FAILED - 1;

/// The header's state: the server serves.
pub(crate) const OPEN: u32 = 1;
/// The header's state: the server left.
pub(crate) const SHUT: u32 = 2;

/// The first 128 bytes.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub seats: AtomicU32,
    pub max: AtomicU32,
    pub stride: AtomicU32,
    pub state: AtomicU32,
    /// 1 once an end removed the segment's name.
    pub unlinked: AtomicU32,
    pub total: AtomicU64,
    pub server: EndRecord,
}

/// What clients ring and the server waits on.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Bell {
    /// Bumped by a client after it put a request or left its seat.
    pub value: AtomicU32,
    pub sleepers: AtomicU32,
    /// Set by a client that found no free seat: the server looks for dead and departed
    /// clients at its next receive.
    pub check: AtomicU32,
}

/// The control line of one client seat.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct SeatControl {
    /// The owner, announced by its process id (0: the seat is free).
    pub owner: EndRecord,
    /// Set by an owner that leaves: the server frees the seat.
    pub left: AtomicU32,
    /// The count of the call the server answered last (bit 31: the server left).
    pub answer: AtomicU32,
    pub answer_sleepers: AtomicU32,
}

pub(crate) const OFF_BELL: usize = size_of::<Header>();
pub(crate) const OFF_SEATS: usize = OFF_BELL + size_of::<Bell>();
/// A seat's slot follows its control line.
pub(crate) const SLOT_AT: usize = size_of::<SeatControl>();

// The wire format, checked at compile time.
const _: () = {
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, seats) == 12);
    assert!(offset_of!(Header, max) == 16);
    assert!(offset_of!(Header, stride) == 20);
    assert!(offset_of!(Header, state) == 24);
    assert!(offset_of!(Header, unlinked) == 28);
    assert!(offset_of!(Header, total) == 32);
    assert!(offset_of!(Header, server) == 40);
    assert!(size_of::<Header>() == 128);
    assert!(offset_of!(Bell, value) == 0);
    assert!(offset_of!(Bell, sleepers) == 4);
    assert!(offset_of!(Bell, check) == 8);
    assert!(size_of::<Bell>() == 128);
    assert!(offset_of!(SeatControl, owner) == 0);
    assert!(offset_of!(SeatControl, left) == 24);
    assert!(offset_of!(SeatControl, answer) == 28);
    assert!(offset_of!(SeatControl, answer_sleepers) == 32);
    assert!(size_of::<SeatControl>() == 128);
};

/// The shape of one service's segment: computed from its parameters, kept in private memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub seats: u32,
    pub max: u32,
    pub stride: u32,
    pub total: usize,
}

impl Shape {
    /// The shape for these parameters, or why there is none.
    pub fn new(seats: u32, max: usize) -> Result<Shape> {
        let bad = |why: String| Err(Error::InvalidOptions(why));
        if seats == 0 || seats > MAX_SEATS {
            return bad(format!(
                "{seats} clients: a service takes from 1 to {MAX_SEATS}"
            ));
        }
        if max == 0 || max > MAX_MESSAGE {
            return bad(format!(
                "a maximum message of {max} bytes: a service's must be from 1 to {MAX_MESSAGE}"
            ));
        }
        let stride = (SLOT_AT + SLOT_HEADER + max).div_ceil(SLOT_AT) * SLOT_AT;
        let total = (seats as usize)
            .checked_mul(stride)
            .and_then(|s| s.checked_add(OFF_SEATS))
            .filter(|&t| t <= MAX_TOTAL && stride <= u32::MAX as usize);
        let Some(total) = total else {
            return bad(format!(
                "{seats} clients with messages of {max} bytes need more than {MAX_TOTAL} bytes"
            ));
        };
        Ok(Shape {
            seats,
            max: max as u32,
            stride: stride as u32,
            total,
        })
    }

    /// Offset of seat `i`'s control line (`i < seats`).
    pub fn seat(&self, i: u32) -> usize {
        OFF_SEATS + i as usize * self.stride as usize
    }

    /// Offset of seat `i`'s slot header.
    pub fn slot(&self, i: u32) -> usize {
        self.seat(i) + SLOT_AT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seat_and_slot_is_inside_and_aligned() {
        for (seats, max) in [(1, 1), (16, 4096), (64, 64), (3, 65536), (1024, 120)] {
            let s = Shape::new(seats, max).unwrap();
            assert_eq!(s.stride % 128, 0);
            for i in [0, seats / 2, seats - 1] {
                assert_eq!(s.seat(i) % 128, 0);
                assert!(s.slot(i) + SLOT_HEADER + max <= s.total);
            }
            assert_eq!(s.seat(seats - 1) + s.stride as usize, s.total);
        }
    }

    #[test]
    fn impossible_parameters_are_refused() {
        assert!(Shape::new(0, 8).is_err());
        assert!(Shape::new(MAX_SEATS + 1, 8).is_err());
        assert!(Shape::new(1, 0).is_err());
        assert!(Shape::new(1, MAX_MESSAGE + 1).is_err());
        assert!(Shape::new(MAX_SEATS, MAX_MESSAGE).is_err());
    }
}
