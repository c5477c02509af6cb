//! What discovery says about a service: read from a copy of its header and seats, never
//! trusted.

use std::mem::{offset_of, size_of};

use shm_core::{Mapping, SegmentInfo};

use super::layout::{Header, OPEN, SHUT, SeatControl, Shape, VERSION};
use crate::about::{ChannelInfo, End, Kind};
use crate::fields::{end_at, u32_at};
use crate::layout::EndRecord;
use crate::peer::{SEAT_CREATOR, Witness};

/// The service in `map`, or `None` when its header is cut short.
pub(crate) fn describe(map: &Mapping, name: &str, segment: SegmentInfo) -> Option<ChannelInfo> {
    let mut h = [0u8; size_of::<Header>()];
    map.read_at(0, &mut h).ok()?;
    let field = |off: usize| u32_at(&h, off);
    let version = field(offset_of!(Header, version));
    let witness = Witness::of(map, segment.id);
    let mut info = ChannelInfo::bare(name, segment, Kind::Service, version);
    let shape = Shape::new(
        field(offset_of!(Header, seats)),
        field(offset_of!(Header, max)) as usize,
    )
    .ok()
    .filter(|s| s.total <= map.len() && version == VERSION);
    let Some(shape) = shape else {
        return Some(info.unreadable(VERSION));
    };
    info.slots = shape.seats;
    info.max_message = shape.max as usize;
    info.max_ends = 1 + shape.seats;
    if let Some(p) = end_at(&h, offset_of!(Header, server)) {
        info.ends.push(End {
            role: "server",
            pid: p.pid,
            alive: witness.judge(map, SEAT_CREATOR, &p).maybe_alive(),
        });
    }
    let mut seat = [0u8; size_of::<SeatControl>()];
    for i in 0..shape.seats {
        if map.read_at(shape.seat(i), &mut seat).is_err() {
            break;
        }
        let owner = offset_of!(SeatControl, owner);
        if u32_at(&seat, owner + offset_of!(EndRecord, pid)) == 0 {
            continue;
        }
        let p = end_at(&seat, owner);
        info.ends.push(End {
            role: "client",
            pid: p.map_or(0, |p| p.pid),
            alive: p.is_some_and(|p| {
                witness
                    .judge(map, SEAT_CREATOR + 1 + u64::from(i), &p)
                    .maybe_alive()
            }),
        });
    }
    let state = match field(offset_of!(Header, state)) {
        OPEN => "serving".to_owned(),
        SHUT => "shut (the server left)".to_owned(),
        other => format!("unknown ({other})"),
    };
    info.details.push(("state", state));
    Some(info)
}
