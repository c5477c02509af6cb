//! Discovery: which segments of a backend are channels, of which kind, with which ends.
//!
//! [`channels`] looks at every segment the backend lists; [`inspect`] at one, by name. Each is
//! opened read-only and its header copied out (never trusted: any value is checked before it
//! decides anything, and a segment that is not a channel is skipped by `channels` and
//! [`Error::NotAChannel`] for `inspect`). Nothing is written. On System V, reading a header
//! attaches for a moment, so the segment's last-attach process and time become this one's.
//!
//! ```
//! use shm_channel::{Kind, Options, Receiver, discover};
//! # fn main() -> shm_channel::Result<()> {
//! let backend = shm_posix::Posix::new();
//! # let name: &'static str = Box::leak(format!("/doc-discover-{}", std::process::id()).into());
//! let rx = Receiver::create(&backend, name, &Options::new(8, 64))?;
//! let found = discover::inspect(&backend, name)?;
//! assert_eq!(found.kind, Kind::Stream);
//! assert_eq!(found.ends[0].role, "receiver");
//! assert_eq!(found.ends[0].pid, std::process::id() as i32);
//! assert!(discover::channels(&backend)?.iter().any(|c| c.name == name));
//! # drop(rx); Ok(()) }
//! ```

use std::mem::offset_of;

use shm_core::{Access, Backend, Mapping, Segment, SegmentInfo, SegmentName};

use crate::about::{ChannelInfo, End, Kind};
use crate::fields::{end_at, u32_at};
use crate::layout::{
    ABANDONED, CONNECTED, HEADER, Header, KIND_CHANNEL, KIND_PAIR, MAGIC, RECLAIMING, VERSION,
    WAITING,
};
use crate::peer::{SEAT_CREATOR, SEAT_OPENER, Witness};
use crate::{Error, Result, pubsub, service};

/// Every channel of `backend`: each segment it lists (POSIX by name, System V by key) whose
/// header is a channel's. Segments that are not channels, or that this process may not read,
/// or that vanish meanwhile, are left out.
pub fn channels<B: Backend>(backend: &B) -> Result<Vec<ChannelInfo>> {
    Ok(backend
        .list()?
        .iter()
        .filter_map(|seg| inspect_segment(backend, seg))
        .collect())
}

/// The channel in the segment `seg` (as [`Backend::list`] or [`Backend::info`] gave it), by its
/// name or, where the kernel keeps none (System V), its key; `None` when it is not a channel
/// (a semaphore, a removed segment, another program's, unreadable).
pub fn inspect_segment<B: Backend>(backend: &B, seg: &SegmentInfo) -> Option<ChannelInfo> {
    if seg.semaphore || seg.removed {
        return None;
    }
    let name = match (&seg.name, seg.key) {
        (Some(name), _) => name.clone(),
        (None, Some(key)) if key != 0 => format!("{:#010x}", key as u32),
        _ => return None,
    };
    inspect(backend, &name).ok()
}

/// The channel `name` of `backend`: its kind, ends and parameters; [`Error::NotAChannel`] when
/// its header is not a channel's, the backend's error when it cannot be opened.
pub fn inspect<B: Backend>(backend: &B, name: &str) -> Result<ChannelInfo> {
    let sname = SegmentName::new(name)?;
    let seg = backend.open(&sname, Access::ReadOnly)?;
    let segment = seg.info()?;
    let map = seg.map()?;
    let not = |reason: String| Error::NotAChannel {
        name: name.to_owned(),
        backend: backend.name(),
        reason,
    };
    let mut magic = [0u8; 8];
    if map.len() < magic.len() {
        return Err(not(format!("{} bytes, fewer than a header", map.len())));
    }
    map.read_at(0, &mut magic)?;
    match u64::from_le_bytes(magic) {
        MAGIC => stream(&map, name, segment).ok_or_else(|| not(UNREADABLE.into())),
        pubsub::MAGIC => {
            pubsub::describe(&map, name, segment).ok_or_else(|| not(UNREADABLE.into()))
        }
        service::MAGIC => {
            service::describe(&map, name, segment).ok_or_else(|| not(UNREADABLE.into()))
        }
        0 => Err(not("its first 8 bytes are zero (no header)".into())),
        other => Err(not(format!(
            "its first 8 bytes are {other:#018x}, no channel's magic"
        ))),
    }
}

const UNREADABLE: &str = "its header has a channel's magic, but is cut short or of an unknown kind";

/// A stream's or a pair's segment (magic "shmchan"); `None` when it is too short or of no
/// known kind.
fn stream(map: &Mapping, name: &str, segment: SegmentInfo) -> Option<ChannelInfo> {
    let mut h = [0u8; HEADER];
    map.read_at(0, &mut h).ok()?;
    let field = |off: usize| u32_at(&h, off);
    let kind = match field(offset_of!(Header, kind)) {
        KIND_CHANNEL => Kind::Stream,
        KIND_PAIR => Kind::Pair,
        _ => return None,
    };
    let version = field(offset_of!(Header, version));
    let mut info = ChannelInfo::bare(name, segment, kind, version);
    info.max_ends = 2;
    if version != VERSION {
        return Some(info.unreadable(VERSION));
    }
    info.slots = field(offset_of!(Header, slots));
    info.max_message = field(offset_of!(Header, max)) as usize;
    let creator_role = match field(offset_of!(Header, creator_role)) {
        1 => ("sender", "receiver"),
        2 => ("receiver", "sender"),
        3 => ("server", "client"),
        4 => ("client", "server"),
        _ => ("?", "?"),
    };
    let witness = Witness::of(map, info.segment.id);
    for (off, seat, role) in [
        (offset_of!(Header, creator), SEAT_CREATOR, creator_role.0),
        (offset_of!(Header, opener), SEAT_OPENER, creator_role.1),
    ] {
        let p = end_at(&h, off);
        if let Some(p) = p {
            info.ends.push(End {
                role,
                pid: p.pid,
                alive: witness.judge(map, seat, &p).maybe_alive(),
            });
        }
    }
    let state = match field(offset_of!(Header, state)) {
        WAITING => "waiting for its peer".to_owned(),
        CONNECTED => "connected".to_owned(),
        ABANDONED => "abandoned before a peer came".to_owned(),
        RECLAIMING => "being reclaimed".to_owned(),
        other => format!("unknown ({other})"),
    };
    info.details.push(("state", state));
    Some(info)
}
