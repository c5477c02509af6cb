//! Where everything lives in a channel's segment, as `#[repr(C)]` structs of atomics checked at
//! compile time against the wire format, and the checks a header must pass.
//!
//! ```text
//! 0     Header (128 bytes): magic, layout version, kind, slots, max message, stride, creator's
//!       role, connection state (and its sleepers), unlinked flag, total size, then two end
//!       records (creator, opener): process id, start time, pid namespace
//! 128   RingControl (256 bytes): producer line (128 bytes: tail, its sleepers, the sender's
//!       end state), consumer line (128 bytes: head, its sleepers, the receiver's end state)
//! 384   `slots` slots of `stride` bytes: an 8-byte SlotHeader (the length in the low 32
//!       bits; the sequence, the message's count with bit 31 set, in the high 32; written
//!       last, in one store), the payload (8-aligned); the stride is a multiple of 64
//! ```
//!
//! In a channel (kind 1), `tail` counts messages sent, `head` messages released, both modulo
//! 2^31; bit 31 of each says its writer has closed its end, and the end state word beside it
//! (written before) says how: [`TX_COMPLETE`] or [`TX_ABORTED`] for the sender,
//! [`RX_RECEIVED_ALL`], [`RX_LEFT`] or [`RX_FAILED`] for the receiver. Slot `i` of the ring
//! holds message number `i mod slots`.
//!
//! In a request/response pair (kind 2) the ring has one slot, which carries a request and then,
//! in place, its response: `tail` counts the client's calls, `head` the server's answers, and a
//! response's header has bit 31 of its length word set ([`RESPONSE`]).
//!
//! Every field is an atomic: the peer may write any of them at any time, and this process only
//! ever reads them through atomic loads. [`Control::view`] is the one place where the mapping's
//! bytes become these types.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

use shm_core::Mapping;

use crate::{Error, Result};

/// "shmchan" and a zero byte, little-endian: the first 8 bytes of every channel.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmchan\0");
/// The layout this build writes and reads. Any change to this file's offsets bumps it.
/// Version 3: end states beside the counts, and a pid namespace in each end record.
pub(crate) const VERSION: u32 = 3;

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

// Connection states.
/// The creator is there; no peer yet.
pub(crate) const WAITING: u32 = 1;
/// Both ends are there (the opener removes the name).
pub(crate) const CONNECTED: u32 = 2;
/// The creator left before a peer came.
pub(crate) const ABANDONED: u32 = 3;
/// A process is taking over a segment whose ends are all dead and whose name it could not
/// remove (another user's): it writes a new header, and the state becomes [`WAITING`] again.
pub(crate) const RECLAIMING: u32 = 4;

// End states (a channel's): written before the count's CLOSED bit, read after it.
/// The sender finished the stream: everything it sent is the whole stream.
pub(crate) const TX_COMPLETE: u32 = 1;
/// The sender ended without finishing (dropped, an error, a signal): the stream is cut.
pub(crate) const TX_ABORTED: u32 = 2;
/// The receiver received the complete stream, up to its end.
pub(crate) const RX_RECEIVED_ALL: u32 = 1;
/// The receiver left before the end (as a pipe's reader that closes: `EPIPE`).
pub(crate) const RX_LEFT: u32 = 2;
/// The receiver failed (it could not deliver what it received, or was stopped).
pub(crate) const RX_FAILED: u32 = 3;

/// One end's identity, as it announced itself: written once by that end.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct EndRecord {
    /// Its process id, as its own pid namespace numbers it.
    pub pid: AtomicU32,
    /// Reserved (zero).
    pub _reserved: AtomicU32,
    /// Its process's start time, in clock ticks since boot (0: unknown).
    pub start: AtomicU64,
    /// Its pid namespace (the inode of `/proc/self/ns/pid`; 0: unknown).
    pub pidns: AtomicU64,
}

/// The first 128 bytes of every channel's segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub kind: AtomicU32,
    pub slots: AtomicU32,
    pub max: AtomicU32,
    pub stride: AtomicU32,
    pub creator_role: AtomicU32,
    pub state: AtomicU32,
    pub state_sleepers: AtomicU32,
    pub unlinked: AtomicU32,
    pub _reserved: AtomicU32,
    pub total: AtomicU64,
    pub creator: EndRecord,
    pub opener: EndRecord,
    pub _tail: [AtomicU64; 3],
}

/// One cache line of a ring's control: a count, its sleepers and its writer's end state.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct CountLine {
    pub count: AtomicU32,
    pub sleepers: AtomicU32,
    pub end: AtomicU32,
}

/// The two lines of a ring: the producer's (`tail`) and the consumer's (`head`).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingControl {
    pub tail: CountLine,
    pub head: CountLine,
}

/// The header and ring control at the start of every channel's segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    pub header: Header,
    pub ring: RingControl,
}

/// The first 8 bytes of every slot.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotHeader {
    /// The message's length in the low 32 bits, its sequence (`count | SEQ_SET`, once message
    /// `count` is complete in the slot) in the high 32. One store publishes both, so that the
    /// receiver, which may be polling this very cache line, takes it from the sender once per
    /// message rather than once per field.
    pub word: AtomicU64,
}

// The wire format, checked at compile time: these offsets are what version 3 means.
const _: () = {
    assert!(size_of::<EndRecord>() == 24);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, slots) == 16);
    assert!(offset_of!(Header, max) == 20);
    assert!(offset_of!(Header, stride) == 24);
    assert!(offset_of!(Header, creator_role) == 28);
    assert!(offset_of!(Header, state) == 32);
    assert!(offset_of!(Header, state_sleepers) == 36);
    assert!(offset_of!(Header, unlinked) == 40);
    assert!(offset_of!(Header, total) == 48);
    assert!(offset_of!(Header, creator) == 56);
    assert!(offset_of!(Header, opener) == 80);
    assert!(size_of::<Header>() == HEADER);
    assert!(offset_of!(CountLine, count) == 0);
    assert!(offset_of!(CountLine, sleepers) == 4);
    assert!(offset_of!(CountLine, end) == 8);
    assert!(size_of::<CountLine>() == LINE);
    assert!(offset_of!(RingControl, tail) == 0);
    assert!(offset_of!(RingControl, head) == LINE);
    assert!(size_of::<RingControl>() == RING_CTRL);
    assert!(offset_of!(Control, header) == 0);
    assert!(offset_of!(Control, ring) == HEADER);
    assert!(size_of::<Control>() == HEADER + RING_CTRL);
    assert!(size_of::<SlotHeader>() == SLOT_HEADER);
    // A slot's header is 8-aligned at every slot (64-aligned strides after 384 bytes).
    assert!((HEADER + RING_CTRL) % STRIDE_ALIGN == 0);
};

impl Control {
    /// The control block at the start of `map`, or `None` when the mapping is too short or
    /// read-only. The one cast from the mapping's bytes to typed atomics: every field is an
    /// atomic (any bit pattern is a valid value, and shared writes through them are fine), the
    /// mapping is page-aligned (more than `Control`'s alignment) and at least this long, and
    /// the reference borrows the mapping, which keeps the memory mapped.
    pub fn view(map: &Mapping) -> Option<&Control> {
        let ptr = map.as_ptr();
        if map.len() < size_of::<Control>()
            || !map.is_writable()
            || (ptr as usize) % align_of::<Control>() != 0
        {
            return None;
        }
        // SAFETY: `ptr` is the start of a live, writable mapping of at least
        // size_of::<Control>() bytes (checked above), aligned for Control (checked above), and
        // borrowed for the returned lifetime; Control is made only of atomics, for which
        // every bit pattern is valid and concurrent access from other processes is atomic.
        Some(unsafe { &*ptr.cast::<Control>() })
    }
}

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

    /// Offset of the first slot.
    pub fn first_slot(&self) -> usize {
        HEADER + RING_CTRL
    }

    /// Offset of the slot that holds message number `count`.
    pub fn slot(&self, count: u32) -> usize {
        let index = (count & (self.slots - 1)) as usize;
        self.first_slot() + index * self.stride as usize
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
            assert_eq!(l.first_slot() % 64, 0);
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
