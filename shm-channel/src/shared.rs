//! One channel's segment, as one end holds it: the mapping, the checked layout, the peer, and
//! the connection protocol (create, open, who removes the name).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Access, Backend, Context, CreateOptions, Mapping, Op, Segment, SegmentName};

use crate::layout::*;
use crate::peer::Proc;
use crate::{Error, Options, Result};

/// How often a blocking call that has nothing to do checks that its peer lives.
pub(crate) const PEER_CHECK: Duration = Duration::from_millis(40);
/// How long an opener waits for a creator to finish writing the header.
const HEADER_WAIT: Duration = Duration::from_millis(100);

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

/// One end's hold on a channel segment.
pub(crate) struct Shared {
    pub layout: Layout,
    pub name: String,
    pub backend: &'static str,
    pub creator: bool,
    pub wait: WaitStrategy,
    peer: OnceLock<Proc>,
    segment: Mutex<Box<dyn Segment>>,
    /// Declared last: dropped after everything that points into it.
    map: Mapping,
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
    /// A creator died before a peer came; its segment was removed.
    Stale(i32),
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
        let shared = match how {
            How::Create => Self::create(backend, &sname, opts, layout, role)?,
            How::Open => match Self::open(backend, &sname, opts, layout, role)? {
                Ok(s) => s,
                Err(Retry::Gone(e)) => return Err(e),
                Err(Retry::Stale(pid)) => return Err(Error::PeerDead { pid }),
            },
            How::OpenOrCreate => {
                let mut tries = 0;
                loop {
                    tries += 1;
                    match Self::open(backend, &sname, opts, layout, role)? {
                        Ok(s) => break s,
                        Err(_) if tries > 20 => {
                            return Err(Error::Busy {
                                name: sname.as_str().to_owned(),
                                backend: backend.name(),
                                detail: format!(
                                    "the channel was made and removed {tries} times while this end tried to join"
                                ),
                            });
                        }
                        Err(_) => {}
                    }
                    match Self::create(backend, &sname, opts, layout, role) {
                        Ok(s) => break s,
                        // Taken meanwhile, or a name its creator is giving up and removes
                        // in a moment: look again, a little later.
                        Err(Error::Shm(e)) if e.is_already_exists() => {
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
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
        let me = Proc::me();
        let shared = Shared {
            layout,
            name: name.as_str().to_owned(),
            backend: backend.name(),
            creator: true,
            wait: opts.wait,
            peer: OnceLock::new(),
            segment: Mutex::new(Box::new(segment)),
            map,
        };
        // The segment is new and zero-filled: only the non-zero fields are written, then the
        // magic, last, with Release: an opener that sees the magic sees everything before it.
        let h = &shared;
        h.u32_at(OFF_VERSION).store(VERSION, Ordering::Relaxed);
        h.u32_at(OFF_KIND).store(layout.kind, Ordering::Relaxed);
        h.u32_at(OFF_SLOTS).store(layout.slots, Ordering::Relaxed);
        h.u32_at(OFF_MAX).store(layout.max, Ordering::Relaxed);
        h.u32_at(OFF_STRIDE).store(layout.stride, Ordering::Relaxed);
        h.u32_at(OFF_CREATOR_ROLE)
            .store(role as u32, Ordering::Relaxed);
        h.u32_at(OFF_CREATOR_PID)
            .store(me.pid as u32, Ordering::Relaxed);
        h.u64_at(OFF_CREATOR_START)
            .store(me.start, Ordering::Relaxed);
        h.u64_at(OFF_TOTAL)
            .store(layout.total as u64, Ordering::Relaxed);
        h.u32_at(OFF_STATE).store(WAITING, Ordering::Relaxed);
        h.u64_at(OFF_MAGIC).store(MAGIC, Ordering::Release);
        Ok(shared)
    }

    /// Opens and joins a channel. `Ok(Err(..))` when there is none to join now.
    fn open<B: Backend>(
        backend: &B,
        name: &SegmentName,
        opts: &Options,
        want: Layout,
        role: Role,
    ) -> Result<std::result::Result<Shared, Retry>> {
        let not_found = || {
            Error::Shm(shm_core::Error::NotFound {
                ctx: Context::new(backend.name(), name.as_str(), Op::Open),
                source: None,
            })
        };
        let segment = match backend.open(name, Access::ReadWrite) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Err(Retry::Gone(e.into()))),
            Err(e) => return Err(e.into()),
        };
        let map = segment.map()?;
        let not_a_channel = |reason: String| Error::NotAChannel {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            reason,
        };
        if map.len() < HEADER {
            return Err(not_a_channel(format!(
                "{} bytes, fewer than a channel's header ({HEADER})",
                map.len()
            )));
        }
        let shared = Shared {
            layout: want,
            name: name.as_str().to_owned(),
            backend: backend.name(),
            creator: false,
            wait: opts.wait,
            peer: OnceLock::new(),
            segment: Mutex::new(Box::new(segment)),
            map,
        };
        let h = &shared;
        // A creator writes the magic last; a zero one may be a header in the making.
        let t0 = Instant::now();
        let magic = loop {
            let m = h.u64_at(OFF_MAGIC).load(Ordering::Acquire);
            if m != 0 || t0.elapsed() >= HEADER_WAIT {
                break m;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if magic != MAGIC {
            return Err(not_a_channel(if magic == 0 {
                "its first 8 bytes stayed zero (no channel header)".to_owned()
            } else {
                format!("its first 8 bytes are {magic:#018x}, not a channel's magic")
            }));
        }
        // Every field read once, into private memory, and checked there.
        let version = h.u32_at(OFF_VERSION).load(Ordering::Relaxed);
        if version != VERSION {
            return Err(Error::Version {
                name: name.as_str().to_owned(),
                backend: backend.name(),
                found: version,
                expected: VERSION,
            });
        }
        let mismatch = |what, expected: u64, found: u64| Error::Mismatch {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            what,
            expected,
            found,
        };
        let kind = h.u32_at(OFF_KIND).load(Ordering::Relaxed);
        let slots = h.u32_at(OFF_SLOTS).load(Ordering::Relaxed);
        let max = h.u32_at(OFF_MAX).load(Ordering::Relaxed);
        let stride = h.u32_at(OFF_STRIDE).load(Ordering::Relaxed);
        let total = h.u64_at(OFF_TOTAL).load(Ordering::Relaxed);
        let creator_role = h.u32_at(OFF_CREATOR_ROLE).load(Ordering::Relaxed);
        let creator_pid = h.u32_at(OFF_CREATOR_PID).load(Ordering::Relaxed);
        let creator_start = h.u64_at(OFF_CREATOR_START).load(Ordering::Relaxed);
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
        if h.map.len() != want.total {
            return Err(mismatch("size", want.total as u64, h.map.len() as u64));
        }
        match Role::from_u32(creator_role) {
            Some(r) if r == role.counterpart() => {}
            Some(r) => {
                return Err(Error::Busy {
                    name: name.as_str().to_owned(),
                    backend: backend.name(),
                    detail: format!(
                        "its creator is a {}: there is no {} end to take",
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
        let Some(creator) = Proc::checked(creator_pid, creator_start) else {
            return Err(not_a_channel(format!(
                "its creator's process id is {creator_pid}"
            )));
        };
        let state = h.u32_at(OFF_STATE);
        match state.load(Ordering::SeqCst) {
            WAITING => {}
            CONNECTED => {
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
            ABANDONED => return Ok(Err(Retry::Gone(not_found()))),
            other => {
                return Err(not_a_channel(format!("its connection state is {other}")));
            }
        }
        if !creator.alive() {
            // Its creator died before anyone came: nobody else will ever remove it.
            if state
                .compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                h.remove_name();
            }
            return Ok(Err(Retry::Stale(creator.pid)));
        }
        let me = Proc::me();
        // Claim the opener's place first: of two openers, one wins, and the pid there is its.
        if let Err(other) = h.u32_at(OFF_OPENER_PID).compare_exchange(
            0,
            me.pid as u32,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            return Err(Error::Busy {
                name: name.as_str().to_owned(),
                backend: backend.name(),
                detail: format!("another process (pid {other}) is joining it"),
            });
        }
        h.u64_at(OFF_OPENER_START)
            .store(me.start, Ordering::Relaxed);
        if state
            .compare_exchange(WAITING, CONNECTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // The creator left meanwhile.
            return Ok(Err(Retry::Gone(not_found())));
        }
        shm_core::wait::wake_all(state);
        let _ = h.peer.set(creator);
        // Both ends hold the memory now: the name has done its work. Removing it here means
        // that nothing is left behind however the two processes end, kill -9 included.
        h.remove_name();
        h.u32_at(OFF_UNLINKED).store(1, Ordering::SeqCst);
        Ok(Ok(shared))
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

    /// Removes the segment's name (the memory lives while mapped).
    fn remove_name(&self) {
        if let Ok(mut seg) = self.segment.lock() {
            // Already gone is fine; anything else leaves the name, which `shm rm` removes.
            let _ = seg.unlink();
        }
    }

    /// The header word at `off` (one of the `OFF_*` constants, all below `HEADER`).
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= HEADER && off % 4 == 0);
        // SAFETY: `off` is one of this module's header offsets: 4-aligned and below HEADER,
        // and every mapping here is at least HEADER bytes (checked at open; created larger),
        // page-aligned and writable (created or opened read-write). The reference lives as long
        // as &self, which owns the mapping.
        unsafe { &*self.map.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= HEADER && off % 8 == 0);
        // SAFETY: as in `u32_at`, with 8-aligned offsets.
        unsafe { &*self.map.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// A signal over the 32-bit word at `value` with its sleepers at `sleepers`, both offsets
    /// of ring words that the layout places inside the mapping.
    ///
    /// # Safety
    ///
    /// The signal must not outlive this `Shared` (the caller keeps the `Arc` beside it).
    pub unsafe fn signal(&self, value: usize, sleepers: usize) -> Signal<'static> {
        debug_assert!(value + 4 <= self.layout.total && sleepers + 4 <= self.layout.total);
        // SAFETY: both offsets are ring control words (4-aligned, inside the mapping, whose
        // length equals layout.total, checked at open); the mapping is writable. 'static is a
        // lie the caller keeps true: the mapping outlives the signal.
        unsafe {
            let v = &*self.map.as_ptr().add(value).cast::<AtomicU32>();
            let s = &*self.map.as_ptr().add(sleepers).cast::<AtomicU32>();
            Signal::new(v, s, self.wait)
        }
    }

    /// The first byte of the mapping.
    pub fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The peer, once it is known (the opener knows at once; the creator once a peer came).
    pub fn peer(&self) -> Result<Option<Proc>> {
        if let Some(p) = self.peer.get() {
            return Ok(Some(*p));
        }
        match self.u32_at(OFF_STATE).load(Ordering::SeqCst) {
            WAITING => Ok(None),
            CONNECTED => {
                let pid = self.u32_at(OFF_OPENER_PID).load(Ordering::SeqCst);
                let start = self.u64_at(OFF_OPENER_START).load(Ordering::SeqCst);
                let p = Proc::checked(pid, start).ok_or_else(|| {
                    Error::Protocol(format!("the peer announced process id {pid}"))
                })?;
                Ok(Some(*self.peer.get_or_init(|| p)))
            }
            other => Err(Error::Protocol(format!(
                "the connection state became {other}"
            ))),
        }
    }

    /// `PeerDead` when the peer is known and dead.
    pub fn check_peer(&self) -> Result<()> {
        match self.peer()? {
            Some(p) if !p.alive() => Err(Error::PeerDead { pid: p.pid }),
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
        mut wait: impl FnMut(Duration) -> shm_core::Result<T>,
    ) -> Result<T> {
        // A creator learns who its peer is as early as it can: before the peer could have
        // scribbled over the header, if the peer keeps the protocol that long.
        self.peer()?;
        // The clock is read only with a deadline, or after a first slice: a message that
        // comes while the wait spins costs no clock read here.
        let mut start = None;
        loop {
            let slice = match deadline {
                None => PEER_CHECK,
                Some(d) => {
                    let now = Instant::now();
                    start.get_or_insert(now);
                    d.saturating_duration_since(now).min(PEER_CHECK)
                }
            };
            if slice.is_zero() {
                return Err(Error::TimedOut {
                    after: start.map_or(Duration::ZERO, |s| s.elapsed()),
                });
            }
            match wait(slice) {
                Ok(v) => return Ok(v),
                Err(shm_core::Error::TimedOut { .. }) => self.check_peer()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until a peer has joined (returns at once for an opener).
    pub fn wait_for_peer(&self, deadline: Deadline) -> Result<()> {
        let state = self.u32_at(OFF_STATE);
        let sleepers = self.u32_at(OFF_STATE_SLEEPERS);
        let signal = Signal::new(state, sleepers, WaitStrategy::Block);
        self.wait(&signal, |v| v != WAITING, deadline)?;
        self.peer().map(|_| ())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if !self.creator {
            return; // the opener removed the name when it joined
        }
        let state = self.u32_at(OFF_STATE);
        let keep =
            match state.compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst) {
                // No peer came: the segment handle removes the name as it drops (it owns it).
                Ok(_) => false,
                // A peer came: it removes the name, unless it died before it could.
                Err(CONNECTED) => {
                    self.u32_at(OFF_UNLINKED).load(Ordering::SeqCst) == 1
                        || matches!(self.peer(), Ok(Some(p)) if p.alive())
                }
                // Garbage: remove what we made.
                Err(_) => false,
            };
        if keep {
            if let Ok(seg) = self.segment.get_mut() {
                seg.keep();
            }
        }
    }
}
