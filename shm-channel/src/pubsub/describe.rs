//! What discovery says about a topic: read from a copy of its header and seats, never trusted.

use std::mem::{offset_of, size_of};

use shm_core::{Mapping, SegmentInfo};

use super::ends::Topic;
use super::fingerprint::Fingerprint;
use super::layout::{
    ACTIVE, END_ABORTED, END_COMPLETE, EVICTING, Header, JOINING, OFF_TAIL, POLICY_BACK_PRESSURE,
    POLICY_LOSSY, Seat, Shape, VERSION,
};
use crate::about::{ChannelInfo, End, Kind};
use crate::fields::{u32_at, u64_at};
use crate::layout::{CLOSED, COUNT_MASK};
use crate::peer::{Proc, SEAT_CREATOR, Witness};

/// The topic in `map`, or `None` when its header is cut short.
pub(crate) fn describe(map: &Mapping, name: &str, segment: SegmentInfo) -> Option<ChannelInfo> {
    let mut h = [0u8; size_of::<Header>()];
    map.read_at(0, &mut h).ok()?;
    let field = |off: usize| u32_at(&h, off);
    let version = field(offset_of!(Header, version));
    let segment_id = segment.id;
    let mut info = ChannelInfo::bare(name, segment, Kind::PubSub, version);
    let (slots, max, seats) = (
        field(offset_of!(Header, slots)),
        field(offset_of!(Header, max)),
        field(offset_of!(Header, seats)),
    );
    let shape = Shape::new(slots, max as usize, seats)
        .ok()
        .filter(|s| s.total <= map.len());
    let Some(shape) = shape.filter(|_| version == VERSION) else {
        return Some(info.unreadable(VERSION));
    };
    info.slots = shape.slots;
    info.max_message = shape.max as usize;
    info.max_ends = 1 + shape.seats;
    let witness = Witness::of(map, segment_id);
    let publisher = Proc::checked(
        field(offset_of!(Header, publisher_pid)),
        u64_at(&h, offset_of!(Header, publisher_start)),
        u64_at(&h, offset_of!(Header, publisher_pidns)),
    );
    if let Some(p) = publisher {
        info.ends.push(End {
            role: "publisher",
            pid: p.pid,
            alive: witness.judge(map, SEAT_CREATOR, &p).maybe_alive(),
        });
    }
    let mut seat = [0u8; size_of::<Seat>()];
    for i in 0..shape.seats {
        if map.read_at(shape.seat(i), &mut seat).is_err() {
            break;
        }
        let owner = u32_at(&seat, offset_of!(Seat, owner));
        let active = u32_at(&seat, offset_of!(Seat, active));
        if owner == 0 || owner == EVICTING || (active != ACTIVE && active != JOINING) {
            continue;
        }
        let p = Proc::checked(
            owner,
            u64_at(&seat, offset_of!(Seat, start)),
            u64_at(&seat, offset_of!(Seat, pidns)),
        );
        info.ends.push(End {
            role: "subscriber",
            pid: p.map_or(0, |p| p.pid),
            alive: p.is_some_and(|p| witness.judge(map, Topic::lock_of(i), &p).maybe_alive()),
        });
    }
    let policy = match field(offset_of!(Header, policy)) {
        POLICY_BACK_PRESSURE => "back-pressure".to_owned(),
        POLICY_LOSSY => "lossy".to_owned(),
        other => format!("unknown ({other})"),
    };
    info.details.push(("policy", policy));
    info.details
        .push(("history", field(offset_of!(Header, history)).to_string()));
    let mut tail = [0u8; 4];
    if map.read_at(OFF_TAIL, &mut tail).is_ok() {
        let tail = u32::from_le_bytes(tail);
        info.details
            .push(("published", (tail & COUNT_MASK).to_string()));
        let state = match (tail & CLOSED != 0, field(offset_of!(Header, end))) {
            (false, _) => "open",
            (true, END_COMPLETE) => "finished (complete)",
            (true, END_ABORTED) => "cut (aborted)",
            (true, _) => "closed",
        };
        info.details.push(("state", state.to_owned()));
    }
    let fingerprint = Fingerprint {
        size: field(offset_of!(Header, type_size)),
        align: field(offset_of!(Header, type_align)),
        hash: u64_at(&h, offset_of!(Header, type_hash)),
    };
    info.details.push(("messages", fingerprint.to_string()));
    Some(info)
}
