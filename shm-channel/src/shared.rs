//! One channel's segment, as one end holds it: the mapping, the checked layout, the peer, and
//! the connection protocol (create, open, who removes the name).
//!
//! # Who removes the name
//!
//! - The end that **opens** a channel removes its name as it joins, when the system lets it
//!   (POSIX: the owner of the name, in the sticky `/dev/shm`; System V: the owner or creator of
//!   the segment). When it may not (the creator is another user), the **creator** removes it
//!   as soon as it sees the join (in its next wait), or when it is dropped.
//! - A creator dropped before a peer came removes the name.
//! - A name whose ends are all dead (killed before they could remove it) is removed by the next
//!   open or create of that name that may remove it; one that may not (another user's) takes
//!   the segment over in place when it may write it (`open_or_create`): it writes a new header
//!   and becomes its creator. Only an end whose mode lets everyone read and write takes over
//!   another user's segment (its owner keeps it, and can reach it); others get `Busy`. So a name never refuses forever; `shm rm` by its owner (or root)
//!   removes it at any time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Access, Backend, Context, CreateOptions, Mapping, Op, Segment, SegmentName};

use crate::layout::*;
use crate::peer::{Proc, SEAT_CREATOR, SEAT_OPENER, Verdict, Witness};
use crate::{Error, Options, Result};

/// How often a blocking call that has nothing to do checks that its peer lives.
pub(crate) const PEER_CHECK: Duration = Duration::from_millis(40);

/// Which end a process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Sender = 1,
    Receiver = 2,
    Server = 3,
    Client = 4,
}

impl Role {
    fn from_u32(v: u32) -> Option<Role> {
        Some(match v {
            1 => Role::Sender,
            2 => Role::Receiver,
            3 => Role::Server,
            4 => Role::Client,
            _ => return None,
        })
    }
    fn kind(self) -> u32 {
        match self {
            Role::Sender | Role::Receiver => KIND_CHANNEL,
            Role::Server | Role::Client => KIND_PAIR,
        }
    }
    fn counterpart(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// Create, open, or whichever works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Create,
    Open,
    OpenOrCreate,
}

/// A deadline for a blocking call: none (wait while the peer lives), or an instant.
pub(crate) type Deadline = Option<Instant>;

/// A mapping checked to hold a channel's control block ([`Control::view`] said yes once).
pub(crate) struct ChannelMap {
    map: Mapping,
}

impl ChannelMap {
    /// `map`, if it can hold a channel's control block; else `map` back.
    fn new(map: Mapping) -> std::result::Result<ChannelMap, Mapping> {
        if Control::view(&map).is_some() {
            Ok(ChannelMap { map })
        } else {
            Err(map)
        }
    }

    /// The header and ring control, typed.
    #[inline]
    pub fn control(&self) -> &Control {
        match Control::view(&self.map) {
            Some(c) => c,
            // `new` checked that the view exists, and nothing about the mapping changes.
            None => unreachable!("a ChannelMap is made only of a mapping that holds a Control"),
        }
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }
}

/// One end's hold on a channel segment.
pub(crate) struct Shared {
    pub layout: Layout,
    pub name: String,
    pub backend: &'static str,
    pub creator: bool,
    pub wait: WaitStrategy,
    /// What tells whether an end still holds the segment.
    witness: Witness,
    peer: OnceLock<Proc>,
    segment: Mutex<Box<dyn Segment>>,
    /// Declared last: dropped after everything that points into it.
    map: ChannelMap,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("creator", &self.creator)
            .field("slots", &self.layout.slots)
            .field("max_message", &self.layout.max)
            .field("peer", &self.peer.get().map(|p| p.pid))
            .finish()
    }
}

/// What an open found instead of a channel to join, where another try may do better.
enum Retry {
    /// No segment, or one its creator gave up: create it (or wait).
    Gone(Error),
    /// Every end of it died; its segment was removed.
    Stale(i32),
    /// A creator is still making it (its header is not complete): look again soon.
    Making(Error),
}

/// What one look at an opened segment decided.
enum Found {
    Joined(Shared),
    Retry(Retry),
}

impl Shared {
    /// Creates, opens, or either, the channel `name` for `role`.
    pub fn connect<B: Backend>(
        backend: &B,
        name: &str,
        opts: &Options,
        role: Role,
        how: How,
    ) -> Result<Arc<Shared>> {
        let sname = SegmentName::new(name)?;
        // A pair has one slot, whatever the options say: one call at a time, in place.
        let slots = if role.kind() == KIND_PAIR {
            1
        } else {
            opts.slots
        };
        let layout = Layout::new(role.kind(), slots, opts.max_message)?;
        let deadline = Instant::now().checked_add(opts.open_timeout);
        let past = |d: Deadline| d.is_some_and(|d| Instant::now() >= d);
        let mut tries = 0;
        let shared = loop {
            tries += 1;
            if how == How::Create {
                break Self::create(backend, &sname, opts, layout, role)?;
            }
            let reclaim = how == How::OpenOrCreate;
            match Self::open(backend, &sname, opts, layout, role, reclaim)? {
                Found::Joined(s) => break s,
                Found::Retry(Retry::Making(e)) => {
                    if past(deadline) {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                Found::Retry(Retry::Gone(e)) if how == How::Open => return Err(e),
                Found::Retry(Retry::Stale(pid)) if how == How::Open => {
                    return Err(Error::PeerDead { pid });
                }
                Found::Retry(_) if tries > 20 && past(deadline) => {
                    return Err(Error::Busy {
                        name: sname.as_str().to_owned(),
                        backend: backend.name(),
                        detail: format!(
                            "the channel was made and removed {tries} times while this end tried to join"
                        ),
                    });
                }
                Found::Retry(_) => {}
            }
            match Self::create(backend, &sname, opts, layout, role) {
                Ok(s) => break s,
                // Taken meanwhile, or a name its creator is giving up and removes in a
                // moment: look again, a little later.
                Err(Error::Shm(e)) if e.is_already_exists() => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Arc::new(shared))
    }

    fn create<B: Backend>(
        backend: &B,
        name: &SegmentName,
        opts: &Options,
        layout: Layout,
        role: Role,
    ) -> Result<Shared> {
        let segment = backend.create(name, &CreateOptions::new(layout.total).mode(opts.mode))?;
        let map = segment.map()?;
        let sysv_id = sysv_id(&map, &segment);
        let map = ChannelMap::new(map).map_err(|m| Error::NotAChannel {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            reason: format!("the new segment maps {} bytes, read-only or short", m.len()),
        })?;
        let witness = Witness::of(map.mapping(), sysv_id);
        let shared = Shared {
            layout,
            name: name.as_str().to_owned(),
            backend: backend.name(),
            creator: true,
            wait: opts.wait,
            witness,
            peer: OnceLock::new(),
            segment: Mutex::new(Box::new(segment)),
            map,
        };
        // The seat first: an opener that sees the header sees a live creator.
        shared.take_seat(SEAT_CREATOR)?;
        // The segment is new and zero-filled: the header is written, then the magic, last,
        // with Release: an opener that sees the magic sees everything before it.
        shared.write_header(role, WAITING);
        Ok(shared)
    }

    /// Writes a creator's header (all but the ring, which is zero): the magic last.
    fn write_header(&self, role: Role, state: u32) {
        let h = &self.control().header;
        let layout = self.layout;
        h.version.store(VERSION, Ordering::Relaxed);
        h.kind.store(layout.kind, Ordering::Relaxed);
        h.slots.store(layout.slots, Ordering::Relaxed);
        h.max.store(layout.max, Ordering::Relaxed);
        h.stride.store(layout.stride, Ordering::Relaxed);
        h.creator_role.store(role as u32, Ordering::Relaxed);
        h.total.store(layout.total as u64, Ordering::Relaxed);
        h.unlinked.store(0, Ordering::Relaxed);
        Proc::me().write(&h.creator);
        h.state.store(state, Ordering::SeqCst);
        h.magic.store(MAGIC, Ordering::Release);
    }

    /// Takes this end's seat, or says who holds it.
    fn take_seat(&self, seat: u64) -> Result<()> {
        self.witness
            .hold(self.map.mapping(), seat)
            .map_err(|e| Error::Busy {
                name: self.name.clone(),
                backend: self.backend,
                detail: format!(
                    "its {} seat is held by a live process ({e})",
                    seat_noun(seat)
                ),
            })
    }

    /// Opens a channel and joins it, or says what to do instead.
    fn open<B: Backend>(
        backend: &B,
        name: &SegmentName,
        opts: &Options,
        want: Layout,
        role: Role,
        reclaim: bool,
    ) -> Result<Found> {
        let not_found = || {
            Error::Shm(shm_core::Error::NotFound {
                ctx: Context::new(backend.name(), name.as_str(), Op::Open),
                source: None,
            })
        };
        let not_a_channel = |reason: String| Error::NotAChannel {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            reason,
        };
        let making = |reason: String| Ok(Found::Retry(Retry::Making(not_a_channel(reason))));
        let segment = match backend.open(name, Access::ReadWrite) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Found::Retry(Retry::Gone(e.into()))),
            Err(e) => return Err(e.into()),
        };
        if segment.size() < HEADER + RING_CTRL {
            // Perhaps a creator that has not sized it yet.
            return making(format!(
                "{} bytes, fewer than a channel's header ({})",
                segment.size(),
                HEADER + RING_CTRL
            ));
        }
        let map = segment.map()?;
        let sysv_id = sysv_id(&map, &segment);
        let map = match ChannelMap::new(map) {
            Ok(m) => m,
            Err(m) => return making(format!("it maps as {} bytes", m.len())),
        };
        let witness = Witness::of(map.mapping(), sysv_id);
        let shared = Shared {
            layout: want,
            name: name.as_str().to_owned(),
            backend: backend.name(),
            creator: false,
            wait: opts.wait,
            witness,
            peer: OnceLock::new(),
            segment: Mutex::new(Box::new(segment)),
            map,
        };
        let h = &shared.control().header;
        // A creator writes the magic last; a zero one may be a header in the making.
        let magic = h.magic.load(Ordering::Acquire);
        if magic == 0 {
            return making("its first 8 bytes stayed zero (no channel header)".to_owned());
        }
        if magic != MAGIC {
            return Err(not_a_channel(format!(
                "its first 8 bytes are {magic:#018x}, not a channel's magic"
            )));
        }
        // Every field read once, into private memory, and checked there.
        let version = h.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(Error::Version {
                name: name.as_str().to_owned(),
                backend: backend.name(),
                found: version,
                expected: VERSION,
            });
        }
        let state = h.state.load(Ordering::SeqCst);
        let creator_pid = h.creator.pid.load(Ordering::SeqCst);
        let Some(creator) = Proc::read(&h.creator) else {
            return Err(not_a_channel(format!(
                "its creator's process id is {creator_pid}"
            )));
        };
        let creator_alive = shared
            .witness
            .judge(shared.map.mapping(), SEAT_CREATOR, &creator);
        // A name whose every end died is removed (or taken over) before anything else is
        // checked: a dead lone end's seat is free, whatever it was.
        let opener = Proc::read(&h.opener);
        let opener_alive =
            opener.map(|p| shared.witness.judge(shared.map.mapping(), SEAT_OPENER, &p));
        let all_dead =
            creator_alive == Verdict::Dead && opener_alive.is_none_or(|v| v == Verdict::Dead);
        match state {
            WAITING | CONNECTED | ABANDONED if all_dead => {
                return shared.stale(state, creator.pid, role, reclaim, opts.mode);
            }
            RECLAIMING
                if all_dead
                    && shared.witness.seat(shared.map.mapping(), SEAT_CREATOR) == Verdict::Dead =>
            {
                // A process that was taking the name over died doing it.
                return shared.stale(state, creator.pid, role, reclaim, opts.mode);
            }
            RECLAIMING => return making("another process is taking it over".to_owned()),
            ABANDONED => return Ok(Found::Retry(Retry::Gone(not_found()))),
            WAITING | CONNECTED => {}
            other => {
                return Err(not_a_channel(format!("its connection state is {other}")));
            }
        }
        let mismatch = |what, expected: u64, found: u64| Error::Mismatch {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            what,
            expected,
            found,
        };
        let kind = h.kind.load(Ordering::Relaxed);
        let slots = h.slots.load(Ordering::Relaxed);
        let max = h.max.load(Ordering::Relaxed);
        let stride = h.stride.load(Ordering::Relaxed);
        let total = h.total.load(Ordering::Relaxed);
        let creator_role = h.creator_role.load(Ordering::Relaxed);
        if kind != want.kind {
            return Err(mismatch(
                "kind (1: channel, 2: request/response pair)",
                want.kind.into(),
                kind.into(),
            ));
        }
        if slots != want.slots {
            return Err(mismatch("slots", want.slots.into(), slots.into()));
        }
        if max != want.max {
            return Err(mismatch("max message size", want.max.into(), max.into()));
        }
        if stride != want.stride || total != want.total as u64 {
            return Err(not_a_channel(format!(
                "its header says stride {stride} and size {total}, which {slots} slots of {max} bytes never have"
            )));
        }
        if shared.map.mapping().len() != want.total {
            return Err(mismatch(
                "size",
                want.total as u64,
                shared.map.mapping().len() as u64,
            ));
        }
        match Role::from_u32(creator_role) {
            Some(r) if r == role.counterpart() => {}
            Some(r) => {
                return Err(Error::Busy {
                    name: name.as_str().to_owned(),
                    backend: backend.name(),
                    detail: format!(
                        "its creator (pid {}) is a {} and lives: there is no {} end to take",
                        creator.pid,
                        r.noun(),
                        role.noun()
                    ),
                });
            }
            None => {
                return Err(not_a_channel(format!(
                    "its creator's role is {creator_role}, not one of 1 to 4"
                )));
            }
        }
        if state == CONNECTED {
            return Err(Error::Busy {
                name: name.as_str().to_owned(),
                backend: backend.name(),
                detail: format!(
                    "both ends are taken (the {} is pid {})",
                    role.counterpart().noun(),
                    creator.pid
                ),
            });
        }
        shared.join(creator)?;
        Ok(Found::Joined(shared))
    }

    /// Takes the opener's seat of a waiting channel and connects.
    fn join(&self, creator: Proc) -> Result<()> {
        let h = &self.control().header;
        let me = Proc::me();
        let busy = |detail: String| Error::Busy {
            name: self.name.clone(),
            backend: self.backend,
            detail,
        };
        // Claim the opener's seat: of two openers, one wins. With locks, the lock is the
        // claim (exclusive: a dead claimer's is gone with it); without, the pid word is, and a
        // claimer that died before it connected is judged and replaced.
        self.take_seat(SEAT_OPENER)?;
        let seen = h.opener.pid.load(Ordering::SeqCst);
        if seen != 0 && self.witness != Witness::Locks {
            let other = Proc::read(&h.opener);
            let dead = other.is_some_and(|p| {
                self.witness.judge(self.map.mapping(), SEAT_OPENER, &p) == Verdict::Dead
            });
            if !dead {
                return Err(busy(format!("another process (pid {seen}) is joining it")));
            }
        }
        if let Err(other) =
            h.opener
                .pid
                .compare_exchange(seen, me.pid as u32, Ordering::SeqCst, Ordering::SeqCst)
        {
            return Err(busy(format!("another process (pid {other}) is joining it")));
        }
        h.opener.start.store(me.start, Ordering::SeqCst);
        h.opener.pidns.store(me.pidns, Ordering::SeqCst);
        if h.state
            .compare_exchange(WAITING, CONNECTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(busy("its creator left while this end joined".to_owned()));
        }
        shm_core::wait::wake_all(&h.state);
        let _ = self.peer.set(creator);
        // Both ends hold the memory now: the name has done its work. Removing it here means
        // that nothing is left behind however the two processes end, kill -9 included. An
        // opener that may not remove it (another user's) leaves that to the creator.
        if self.remove_name() {
            h.unlinked.store(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// A segment whose every end is dead: removed, or taken over in place when it may not be
    /// removed (another user's) and this end may create with `mode`: a segment taken over
    /// stays its owner's, who can always reach it, so only an end that lets everyone read and
    /// write (`mode` has `0o006`) takes over another user's.
    fn stale(self, state: u32, pid: i32, role: Role, reclaim: bool, mode: u32) -> Result<Found> {
        let h = &self.control().header;
        if state != RECLAIMING
            && h.state
                .compare_exchange(state, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            // Someone else is on it: look again.
            return Ok(Found::Retry(Retry::Stale(pid)));
        }
        if self.remove_name() || !reclaim {
            return Ok(Found::Retry(Retry::Stale(pid)));
        }
        // It may not be removed by this process: take it over, if its owner is this user or
        // this end lets everyone in anyway, and if its seat can be taken.
        let owner = self.segment_info()?.uid;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if owner != me && mode & 0o006 != 0o006 {
            return Err(Error::Busy {
                name: self.name.clone(),
                backend: self.backend,
                detail: format!(
                    "its ends died, and it belongs to another user (uid {owner}), who alone \
                     (or root) may remove it; taken over, it would stay theirs, and this end \
                     asked for mode {mode:#o}"
                ),
            });
        }
        let expect = if state == RECLAIMING {
            RECLAIMING
        } else {
            ABANDONED
        };
        if self.take_seat(SEAT_CREATOR).is_err()
            || h.state
                .compare_exchange(expect, RECLAIMING, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            || self.map.mapping().len() != self.layout.total
        {
            return Ok(Found::Retry(Retry::Stale(pid)));
        }
        self.reset_ring();
        let ctl = self.control();
        for rec in [&ctl.header.opener, &ctl.header.creator] {
            rec.pid.store(0, Ordering::SeqCst);
        }
        self.write_header(role, WAITING);
        let mut shared = self;
        shared.creator = true;
        Ok(Found::Joined(shared))
    }

    /// Zeroes the ring's counts, end states and every slot's header (a taken-over segment).
    fn reset_ring(&self) {
        let ring = &self.control().ring;
        for line in [&ring.tail, &ring.head] {
            line.count.store(0, Ordering::SeqCst);
            line.end.store(0, Ordering::SeqCst);
        }
        for i in 0..self.layout.slots {
            if let Some(slot) = self.slot_header(self.layout.slot(i)) {
                slot.word.store(0, Ordering::SeqCst);
            }
        }
    }

    /// The slot header at `offset`, if it lies inside the mapping and is aligned.
    pub fn slot_header(&self, offset: usize) -> Option<&SlotHeader> {
        let map = self.map.mapping();
        if offset % align_of::<SlotHeader>() != 0
            || offset
                .checked_add(SLOT_HEADER)
                .is_none_or(|end| end > map.len())
        {
            return None;
        }
        // SAFETY: `offset..offset+8` is inside the live, writable mapping (checked above) and
        // 8-aligned (the mapping is page-aligned); SlotHeader is one atomic, valid for any
        // bits; the reference borrows `self`, which owns the mapping.
        Some(unsafe { &*map.as_ptr().add(offset).cast::<SlotHeader>() })
    }

    /// The kernel's view of the segment.
    pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
        match self.segment.lock() {
            Ok(seg) => Ok(seg.info()?),
            Err(_) => Err(Error::Protocol(
                "a thread panicked holding the segment".to_owned(),
            )),
        }
    }

    /// Removes the segment's name (the memory lives while mapped): true when it is gone (or
    /// no longer this segment's), false when this process may not remove it.
    fn remove_name(&self) -> bool {
        let Ok(mut seg) = self.segment.lock() else {
            return false;
        };
        match seg.unlink() {
            Ok(()) => true,
            Err(e) if e.is_not_found() => true,
            Err(shm_core::Error::Stale { .. }) => true,
            Err(_) => false,
        }
    }

    /// The header and ring control.
    #[inline]
    pub fn control(&self) -> &Control {
        self.map.control()
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        self.map.mapping()
    }

    /// A signal over `value` with its sleepers in `sleepers`, both words of this channel's
    /// control block, for as long as `self` is borrowed.
    pub fn signal<'a>(&'a self, value: &'a AtomicU32, sleepers: &'a AtomicU32) -> Signal<'a> {
        Signal::new(value, sleepers, self.wait)
    }

    /// The peer, once it is known (the opener knows at once; the creator once a peer came).
    pub fn peer(&self) -> Result<Option<Proc>> {
        if let Some(p) = self.peer.get() {
            return Ok(Some(*p));
        }
        let h = &self.control().header;
        match h.state.load(Ordering::SeqCst) {
            WAITING => Ok(None),
            CONNECTED => {
                let pid = h.opener.pid.load(Ordering::SeqCst);
                let p = Proc::read(&h.opener).ok_or_else(|| {
                    Error::Protocol(format!("the peer announced process id {pid}"))
                })?;
                // An opener that could not remove the name (another user's) left it to us.
                if h.unlinked.load(Ordering::SeqCst) == 0 && self.remove_name() {
                    h.unlinked.store(1, Ordering::SeqCst);
                }
                Ok(Some(*self.peer.get_or_init(|| p)))
            }
            other => Err(Error::Protocol(format!(
                "the connection state became {other}"
            ))),
        }
    }

    /// The seat of this end's peer.
    fn peer_seat(&self) -> u64 {
        if self.creator {
            SEAT_OPENER
        } else {
            SEAT_CREATOR
        }
    }

    /// `Some(false)` when the peer is known and dead, `Some(true)` when known and not dead,
    /// `None` before a peer came.
    pub fn peer_alive(&self) -> Result<Option<bool>> {
        Ok(self.peer()?.map(|p| {
            self.witness
                .judge(self.map.mapping(), self.peer_seat(), &p)
                .maybe_alive()
        }))
    }

    /// `PeerDead` when the peer is known and dead.
    pub fn check_peer(&self) -> Result<()> {
        match self.peer()? {
            Some(p)
                if self.witness.judge(self.map.mapping(), self.peer_seat(), &p)
                    == Verdict::Dead =>
            {
                Err(Error::PeerDead { pid: p.pid })
            }
            _ => Ok(()),
        }
    }

    /// Waits until `ready(value)` holds for `signal`'s value, checking that the peer lives
    /// every [`PEER_CHECK`]; fails with `TimedOut` at `deadline`, `PeerDead` when the peer
    /// died.
    pub fn wait(
        &self,
        signal: &Signal<'_>,
        mut ready: impl FnMut(u32) -> bool,
        deadline: Deadline,
    ) -> Result<u32> {
        let v = signal.load();
        if ready(v) {
            return Ok(v);
        }
        self.wait_slices(deadline, |slice| signal.wait_until(&mut ready, slice))
    }

    /// As [`wait`](Self::wait), spinning on `early()` instead of the value (see
    /// `Signal::wait_until_or`): `Ok(None)` when `early()` held.
    pub fn wait_or(
        &self,
        signal: &Signal<'_>,
        mut early: impl FnMut() -> bool,
        mut ready: impl FnMut(u32) -> bool,
        deadline: Deadline,
    ) -> Result<Option<u32>> {
        self.wait_slices(deadline, |slice| {
            signal.wait_until_or(&mut early, &mut ready, slice)
        })
    }

    /// Runs `wait` in slices of at most [`PEER_CHECK`], checking the peer between them.
    fn wait_slices<T>(
        &self,
        deadline: Deadline,
        wait: impl FnMut(Duration) -> shm_core::Result<T>,
    ) -> Result<T> {
        // A creator learns who its peer is as early as it can: before the peer could have
        // scribbled over the header, if the peer keeps the protocol that long.
        self.peer()?;
        wait_in_slices(deadline, || self.check_peer(), wait)
    }

    /// Waits until a peer has joined (returns at once for an opener).
    pub fn wait_for_peer(&self, deadline: Deadline) -> Result<()> {
        let h = &self.control().header;
        let signal = Signal::new(&h.state, &h.state_sleepers, WaitStrategy::Block);
        self.wait(&signal, |v| v != WAITING, deadline)?;
        self.peer().map(|_| ())
    }
}

/// The next slice of a wait that started at `start`: [`PEER_CHECK`], or less when `deadline`
/// comes sooner; `TimedOut` once it has passed.
pub(crate) fn next_slice(deadline: Deadline, start: Instant) -> Result<Duration> {
    let slice = match deadline {
        None => PEER_CHECK,
        Some(d) => d.saturating_duration_since(Instant::now()).min(PEER_CHECK),
    };
    if slice.is_zero() {
        return Err(Error::TimedOut {
            after: start.elapsed(),
        });
    }
    Ok(slice)
}

/// Runs `wait` in slices of at most [`PEER_CHECK`] until it succeeds, calling `check` (which
/// fails when the peer died) between slices; fails with `TimedOut` at `deadline`.
pub(crate) fn wait_in_slices<T>(
    deadline: Deadline,
    mut check: impl FnMut() -> Result<()>,
    mut wait: impl FnMut(Duration) -> shm_core::Result<T>,
) -> Result<T> {
    // The clock is read only with a deadline, or after a first slice: a message that comes
    // while the wait spins costs no clock read here.
    let mut start = None;
    loop {
        let slice = match deadline {
            None => PEER_CHECK,
            Some(_) => next_slice(deadline, *start.get_or_insert_with(Instant::now))?,
        };
        match wait(slice) {
            Ok(v) => return Ok(v),
            Err(shm_core::Error::TimedOut { .. }) => check()?,
            Err(e) => return Err(e.into()),
        }
    }
}

fn seat_noun(seat: u64) -> &'static str {
    if seat == SEAT_CREATOR {
        "creator's"
    } else {
        "opener's"
    }
}

/// The System V id of a segment mapped without descriptor (asked of the kernel once).
fn sysv_id(map: &Mapping, segment: &dyn Segment) -> Option<i32> {
    if map.fd().is_some() {
        return None;
    }
    segment.info().ok().and_then(|i| i.id)
}

impl Drop for Shared {
    fn drop(&mut self) {
        if !self.creator {
            return; // the opener removed the name when it joined, or left it to the creator
        }
        let h = &self.control().header;
        match h
            .state
            .compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
        {
            // No peer came: remove the name (a creator that made the segment owns it; one
            // that took it over removes it if it may).
            Ok(_) => {
                self.remove_name();
            }
            // A peer came: it removed the name, unless it could not.
            Err(CONNECTED) if h.unlinked.load(Ordering::SeqCst) == 0 => {
                self.remove_name();
            }
            Err(CONNECTED) => {
                if let Ok(seg) = self.segment.get_mut() {
                    seg.keep();
                }
            }
            // Garbage: remove what we made.
            Err(_) => {
                self.remove_name();
            }
        }
    }
}
