//! The two ends of one ring: [`Sender`] (with [`Loan`]) and [`Receiver`] (with [`Sample`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shm_core::Backend;
use shm_core::wait::Signal;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::in_place::InPlace;
use crate::layout::*;
use crate::lent::Lent;
use crate::shared::{Deadline, How, Role, Shared};
use crate::{Error, Options, Result};

/// The two signals of one ring and where its slots are, kept in private memory so that
/// finding a message's slot is a mask, a multiply and an add; and the segment they are in.
pub(crate) struct Ring {
    /// Messages sent (bit 31: the sender closed). Written by the sender only.
    tail: Lent,
    /// Messages released (bit 31: the receiver closed). Written by the receiver only.
    head: Lent,
    /// The first slot.
    slots_at: *mut u8,
    /// Slots minus one (the count is a power of two).
    mask: u32,
    slots: u32,
    stride: usize,
    /// The largest message.
    pub(crate) max: usize,
    /// The segment: declared after the signals and the pointer, which point into its mapping,
    /// so that it is dropped after them.
    pub(crate) shared: Arc<Shared>,
}

// SAFETY: the pointer is into the mapping that `shared` keeps; nothing about it is tied to the
// thread that made it.
unsafe impl Send for Ring {}
// SAFETY: through `&Ring` the pointer only yields addresses and atomic accesses of slot
// headers; every write into a slot's payload goes through `&mut Sender`, `&mut Receiver`, or
// a pair's private `End`, reached only through `&mut Server` or `&mut Client`.
unsafe impl Sync for Ring {}

impl Ring {
    /// The ring of `shared`, which it keeps; `Protocol` if the mapping cannot hold the layout
    /// (never, for a segment checked at open or made at create).
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Ring> {
        let layout = shared.layout;
        if shared.mapping().len() < layout.total
            || layout.slot(layout.slots - 1) + layout.stride as usize > layout.total
        {
            return Err(Error::Protocol(format!(
                "the segment maps {} bytes, fewer than its layout's {}",
                shared.mapping().len(),
                layout.total
            )));
        }
        let ctl = shared.control();
        let (tail, head) = (&ctl.ring.tail, &ctl.ring.head);
        // SAFETY: the words are in the mapping that `shared` keeps mapped; the ring holds that
        // Arc and declares its signals before it, so they are dropped first.
        let (tail, head) = unsafe {
            (
                Lent::new(shared.signal(&tail.count, &tail.sleepers)),
                Lent::new(shared.signal(&head.count, &head.sleepers)),
            )
        };
        // SAFETY: the first slot's offset is inside the mapping (checked above).
        let slots_at = unsafe { shared.mapping().as_ptr().add(layout.first_slot()) };
        Ok(Ring {
            tail,
            head,
            slots_at,
            mask: layout.slots - 1,
            slots: layout.slots,
            stride: layout.stride as usize,
            max: layout.max as usize,
            shared,
        })
    }

    /// The sender's count, for as long as the ring is borrowed.
    #[inline]
    pub(crate) fn tail(&self) -> &Signal<'_> {
        self.tail.get()
    }

    /// The receiver's count, lent as [`tail`](Ring::tail) is.
    #[inline]
    pub(crate) fn head(&self) -> &Signal<'_> {
        self.head.get()
    }

    /// Where message number `count`'s slot starts (its header word).
    #[inline]
    pub(crate) fn slot(&self, count: u32) -> *mut u8 {
        // SAFETY: slot `count & mask` starts `stride` times that past the first, and the last
        // slot ends inside the mapping (checked in `new`).
        unsafe {
            self.slots_at
                .add((count & self.mask) as usize * self.stride)
        }
    }

    /// The header of message number `count`'s slot, for as long as the ring is borrowed.
    #[inline]
    pub(crate) fn slot_header(&self, count: u32) -> &SlotHeader {
        // SAFETY: the slot starts inside the mapping (see `slot`), 64-aligned (the mapping is
        // page-aligned, the first slot and the stride multiples of 64), with its 8-byte header;
        // SlotHeader is one atomic, valid for any bits; the mapping lives while `self.shared`
        // does, which outlives the borrow of `self`.
        unsafe { &*self.slot(count).cast::<SlotHeader>() }
    }

    /// True when message `count`'s slot says that message is complete in it.
    #[inline]
    pub(crate) fn complete(&self, count: u32) -> bool {
        (self.slot_header(count).word.load(Ordering::Acquire) >> 32) as u32 == count | SEQ_SET
    }

    /// The sender's end state word.
    fn tx_end(&self) -> &AtomicU32 {
        &self.shared.control().ring.tail.end
    }

    /// The receiver's end state word.
    fn rx_end(&self) -> &AtomicU32 {
        &self.shared.control().ring.head.end
    }
}

fn header(len: usize, count: u32) -> u64 {
    (u64::from(count | SEQ_SET) << 32) | len as u64
}

/// The sending end of a channel.
///
/// Created by one process and opened by another (or either: [`Sender::open_or_create`]).
/// End the stream with [`finish`](Sender::finish): the receiver gets every message sent, then
/// [`Error::Closed`], and `finish` returns once the receiver has seen the end. Dropping a
/// sender without finishing **aborts** the stream: the receiver gets every message sent, then
/// [`Error::Aborted`], so that a stream cut by an error, a panic or a signal is never taken
/// for a whole one.
pub struct Sender {
    pub(crate) ring: Ring,
    /// Messages sent, modulo 2^31: private, never read back from shared memory.
    tail: u32,
    /// The receiver's head as last seen: the slots before it are free.
    pub(crate) head_seen: u32,
    /// Refreshes of the head that found the ring at least half full and the head where it
    /// was: the receiver's life is checked at the 1st, 2nd, 4th, ... and every 1024th.
    stuck: u32,
    /// `finish` was called: the stream is complete; sends fail with `Closed`.
    finished: bool,
    /// When a non-blocking call last checked the peer.
    checked: Option<Instant>,
}

/// The receiving end of a channel. Dropping it closes the channel: the sender's next wait for
/// a free slot returns [`Error::Closed`], and its `finish` too unless this end had received the
/// whole stream. [`abort`](Receiver::abort) says instead that this end failed
/// ([`Error::Aborted`] on the sender's side).
pub struct Receiver {
    pub(crate) ring: Ring,
    /// Messages released, modulo 2^31: private.
    pub(crate) head: u32,
    /// Messages past `head` known to be complete (from the tail or a slot's sequence word).
    pub(crate) avail: u32,
    /// This end has said how it ended (received all, or failed): its drop says nothing more.
    ended: bool,
    /// When a non-blocking call last checked the peer.
    checked: Option<Instant>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.ring.shared)
            .field("sent", &self.tail)
            .field("finished", &self.finished)
            .finish()
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.ring.shared)
            .field("received", &self.head)
            .finish()
    }
}

pub(crate) fn deadline_in(timeout: Duration) -> Deadline {
    // A timeout too far away to represent is no deadline.
    Instant::now().checked_add(timeout)
}

/// How often a non-blocking call that finds nothing to do checks that the peer lives.
const POLL_CHECK: Duration = Duration::from_millis(5);

/// For the non-blocking calls: `PeerDead` when the peer is dead, checked at most every
/// [`POLL_CHECK`] (a clock read per empty or full poll, a system call per check).
#[cold]
fn poll_peer(shared: &Shared, checked: &mut Option<Instant>) -> Result<()> {
    let now = Instant::now();
    if checked.is_some_and(|t| now.saturating_duration_since(t) < POLL_CHECK) {
        return Ok(());
    }
    *checked = Some(now);
    shared.check_peer()
}

macro_rules! end_info {
    () => {
        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.ring.shared.name
        }

        /// The backend's name (`"posix"`, `"sysv"`, ...).
        pub fn backend(&self) -> &'static str {
            self.ring.shared.backend
        }

        /// The largest message, in bytes, fixed at create.
        pub fn max_message(&self) -> usize {
            self.ring.max
        }

        /// The number of slots, fixed at create.
        pub fn slots(&self) -> u32 {
            self.ring.slots
        }

        /// True when this end created the channel.
        pub fn is_creator(&self) -> bool {
            self.ring.shared.creator
        }

        /// What the kernel says about the channel's segment now (its System V id, size, mode,
        /// attach count where the backend keeps one). Once both ends are there its name is
        /// gone: POSIX and file backends may then fail with `NotFound`.
        pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
            self.ring.shared.segment_info()
        }

        /// The peer's process id (in the peer's own pid namespace), once a peer has joined.
        pub fn peer_pid(&self) -> Option<i32> {
            self.ring.shared.peer().ok().flatten().map(|p| p.pid)
        }

        /// Whether the peer lives: `None` before a peer joined, `Some(false)` once it is known
        /// dead (its seat's lock dropped, its process gone; see the crate's docs on death),
        /// `Some(true)` otherwise. A system call or two; no message moves.
        pub fn peer_alive(&self) -> Result<Option<bool>> {
            self.ring.shared.peer_alive()
        }

        /// Waits until the other end has joined (returns at once on the end that opened).
        pub fn wait_for_peer(&self, timeout: Option<Duration>) -> Result<()> {
            self.ring
                .shared
                .wait_for_peer(timeout.and_then(deadline_in))
        }
    };
}

impl Sender {
    /// Creates the channel `name` on `backend`, as its sender. Fails with
    /// `Error::Shm(AlreadyExists)` when the name is taken.
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Sender> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the channel `name` that a receiver created. Its parameters must equal `opts`'s
    /// (`slots`, `max_message`), or [`Error::Mismatch`]; a segment that is not a channel is
    /// [`Error::NotAChannel`]; a channel that already has a live sender is [`Error::Busy`].
    /// A channel whose creator is still writing its header is waited for, up to
    /// [`Options::open_timeout`].
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Sender> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the channel, or creates it when there is none: either end may start first.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Sender> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Sender> {
        let shared = Shared::connect(backend, name, opts, Role::Sender, how)?;
        Ok(Sender {
            ring: Ring::new(shared)?,
            tail: 0,
            head_seen: 0,
            stuck: 0,
            finished: false,
            checked: None,
        })
    }

    end_info!();

    /// Sends a copy of `data`, waiting while the channel is full.
    ///
    /// Fails with [`Error::TooLarge`] (longer than [`max_message`](Self::max_message)),
    /// [`Error::Closed`] (the receiver is gone, or this end finished), [`Error::Aborted`] (the
    /// receiver failed), [`Error::PeerDead`] or [`Error::Protocol`]. A dead receiver is
    /// noticed before the ring fills: once it is half full and the receiver has not moved.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        self.send_until(data, None)
    }

    /// Sends a copy of `data` if a slot is free now, or fails with [`Error::Full`] (or with
    /// what a blocking send would report: a dead or departed receiver).
    pub fn try_send(&mut self, data: &[u8]) -> Result<()> {
        self.check_len(data.len())?;
        self.try_loan()?.send_bytes(data)
    }

    /// Sends a copy of `data`, waiting at most `timeout` for a free slot
    /// ([`Error::TimedOut`]).
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        self.send_until(data, deadline_in(timeout))
    }

    /// Sends a copy of `data`, waiting until `deadline` at most for a free slot.
    pub fn send_deadline(&mut self, data: &[u8], deadline: Instant) -> Result<()> {
        self.send_until(data, Some(deadline))
    }

    #[inline]
    fn send_until(&mut self, data: &[u8], deadline: Deadline) -> Result<()> {
        self.check_len(data.len())?;
        let slot = self.loan_until(deadline)?.slot;
        // SAFETY: the slot is loaned to this end (free, below the receiver's released
        // count plus the slots); its payload holds `max` bytes, and `data` is no longer
        // (checked above) and private memory, so no overlap.
        unsafe { crate::bytes::copy(data.as_ptr(), slot.add(SLOT_HEADER), data.len()) };
        self.publish(data.len());
        Ok(())
    }

    /// Sends one value of plain data (any bit pattern of its bytes is fine to send: zerocopy's
    /// `IntoBytes`), copied; the receiver reads it with [`Receiver::recv_value`].
    pub fn send_value<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<()> {
        self.send(value.as_bytes())
    }

    /// Loans the next free slot, waiting while the channel is full: fill it in place, then
    /// [`Loan::send`] it. A loan dropped unsent sends nothing.
    pub fn loan(&mut self) -> Result<Loan<'_>> {
        self.loan_until(None)
    }

    /// Loans a slot if one is free now, or fails with [`Error::Full`] (or with what a
    /// blocking loan would report: a dead or departed receiver).
    pub fn try_loan(&mut self) -> Result<Loan<'_>> {
        if self.free_now()? {
            Ok(self.make_loan())
        } else {
            poll_peer(&self.ring.shared, &mut self.checked)?;
            Err(Error::Full)
        }
    }

    /// Loans a slot, waiting at most `timeout`.
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_>> {
        self.loan_until(deadline_in(timeout))
    }

    /// Loans a slot, waiting until `deadline` at most.
    pub fn loan_deadline(&mut self, deadline: Instant) -> Result<Loan<'_>> {
        self.loan_until(Some(deadline))
    }

    /// Ends the stream as complete and waits until the receiver has received all of it (up
    /// to the end): `Ok(())` means every message sent was delivered. Fails with
    /// [`Error::Closed`] when the receiver left before the end (what it had not released was
    /// not delivered), [`Error::Aborted`] when it failed, [`Error::PeerDead`] when it died.
    /// A creator whose receiver has not come yet waits for it. Later sends fail with
    /// [`Error::Closed`]; calling `finish` again waits again.
    pub fn finish(&mut self) -> Result<()> {
        self.finish_until(None)
    }

    /// As [`finish`](Self::finish), waiting at most `timeout` ([`Error::TimedOut`]: the
    /// stream is complete all the same; call again to wait more). A zero timeout ends the
    /// stream as complete without waiting (in async code, which must not block).
    pub fn finish_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.finish_until(deadline_in(timeout))
    }

    fn finish_until(&mut self, deadline: Deadline) -> Result<()> {
        if !self.finished {
            self.finished = true;
            // The end state first: a receiver that sees the closed count sees how it ended.
            self.ring.tx_end().store(TX_COMPLETE, Ordering::SeqCst);
            self.ring.tail().store(self.tail | CLOSED);
            // Every later send takes the slow path, which refuses it.
            self.head_seen = self.tail.wrapping_sub(self.ring.slots) & COUNT_MASK;
        }
        self.ring
            .shared
            .wait(self.ring.head(), |h| h & CLOSED != 0, deadline)?;
        match self.ring.rx_end().load(Ordering::SeqCst) {
            RX_RECEIVED_ALL => Ok(()),
            RX_FAILED => Err(Error::Aborted),
            _ => Err(Error::Closed),
        }
    }

    #[inline]
    fn check_len(&self, len: usize) -> Result<()> {
        if len > self.ring.max {
            return Err(too_large(len, self.ring.max));
        }
        Ok(())
    }

    fn used(&self, head: u32) -> u32 {
        self.tail.wrapping_sub(head) & COUNT_MASK
    }

    /// How the receiver ended, from its closed head.
    fn receiver_end(&self) -> Error {
        match self.ring.rx_end().load(Ordering::SeqCst) {
            RX_FAILED => Error::Aborted,
            _ => Error::Closed,
        }
    }

    /// Reads the receiver's head once and checks it: `Ok(true)` when a slot is free.
    fn look(&mut self, head: u32) -> Result<bool> {
        if self.finished {
            return Err(Error::Closed);
        }
        if head & CLOSED != 0 {
            return Err(self.receiver_end());
        }
        let used = self.used(head);
        if used > self.ring.slots {
            return Err(Error::Protocol(format!(
                "the receiver says it released message {head}, but only {} were sent",
                self.tail
            )));
        }
        self.head_seen = head;
        Ok(used < self.ring.slots)
    }

    /// The used slots at which the head is read again: half the ring (so that a dead
    /// receiver is noticed before it fills), at least one.
    #[inline]
    fn refresh_at(&self) -> u32 {
        (self.ring.slots / 2).max(1)
    }

    #[inline]
    pub(crate) fn free_now(&mut self) -> Result<bool> {
        // The head seen last may already leave a slot free: no need to touch its cache line.
        if self.used(self.head_seen) < self.refresh_at() {
            return Ok(true);
        }
        self.refresh()
    }

    /// Reads the head again; when the ring stays half full with the head where it was, checks
    /// now and then that the receiver lives.
    #[inline(never)]
    fn refresh(&mut self) -> Result<bool> {
        let before = self.head_seen;
        let head = self.ring.head().load();
        let free = self.look(head)?;
        if self.used(head) >= self.refresh_at() && head == before {
            self.stuck = self.stuck.wrapping_add(1);
            if self.stuck.is_power_of_two() || self.stuck % 1024 == 0 {
                self.ring.shared.check_peer()?;
            }
        } else {
            self.stuck = 0;
        }
        Ok(free)
    }

    #[inline]
    fn loan_until(&mut self, deadline: Deadline) -> Result<Loan<'_>> {
        if !self.free_now()? {
            self.wait_for_room(deadline)?;
        }
        Ok(self.make_loan())
    }

    /// Waits until a slot is free (the slow path of a loan).
    #[inline(never)]
    fn wait_for_room(&mut self, deadline: Deadline) -> Result<()> {
        let (tail, slots) = (self.tail, self.ring.slots);
        let head = self.ring.shared.wait(
            self.ring.head(),
            // Ready when closed, when a slot is free, or when the value is impossible
            // (look() turns that into an error).
            |h| h & CLOSED != 0 || tail.wrapping_sub(h) & COUNT_MASK != slots,
            deadline,
        )?;
        if !self.look(head)? {
            return Err(Error::Protocol("the receiver's head went back".to_owned()));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn make_loan(&mut self) -> Loan<'_> {
        let slot = self.ring.slot(self.tail);
        Loan { tx: self, slot }
    }

    /// Completes message `tail` in `slot` with `len` bytes and counts it sent.
    #[inline]
    pub(crate) fn publish(&mut self, len: usize) {
        // Release: a receiver that sees the sequence sees the bytes.
        self.ring
            .slot_header(self.tail)
            .word
            .store(header(len, self.tail), Ordering::Release);
        self.tail = self.tail.wrapping_add(1) & COUNT_MASK;
        // SeqCst store: the slot's bytes and length, written before, are seen by a receiver
        // that sees this count (Release and more).
        self.ring.tail().store(self.tail);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if !self.finished {
            // Not finished: the stream is cut. The end state first, then the closed count.
            self.ring.tx_end().store(TX_ABORTED, Ordering::SeqCst);
            self.ring.tail().store(self.tail | CLOSED);
        }
    }
}

/// A slot loaned by [`Sender::loan`]: write the message in place, then [`send`](Loan::send) it.
///
/// Nothing written here is visible as a message until `send`: a sender that dies or drops the
/// loan midway leaves the receiver nothing to take.
pub struct Loan<'a> {
    tx: &'a mut Sender,
    pub(crate) slot: *mut u8,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("message", &self.tx.tail)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<'a> Loan<'a> {
    /// How many bytes the slot holds (the channel's maximum message).
    pub fn capacity(&self) -> usize {
        self.tx.max_message()
    }

    /// The first byte of the slot's payload (8-aligned; `capacity()` bytes).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: the payload follows the 8-byte slot header inside the slot.
        unsafe { self.slot.add(SLOT_HEADER) }
    }

    /// Copies `data` into the slot at `offset` (zero-copy in the sense that counts: the bytes
    /// go straight from `data` to the receiver's memory).
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        let end = offset.checked_add(data.len());
        match end {
            Some(end) if end <= self.capacity() => {}
            _ => {
                return Err(Error::TooLarge {
                    len: end.unwrap_or(usize::MAX),
                    max: self.capacity(),
                });
            }
        }
        // SAFETY: offset..end is inside the payload (checked above); `data` is this
        // process's memory, which never overlaps a shared mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_mut_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// The whole slot as a mutable byte slice, to fill in place.
    ///
    /// # Safety
    ///
    /// The receiver's process must keep the protocol while the slice lives: it never touches
    /// a slot the sender has not yet sent. A receiver built from this crate keeps it (it reads
    /// only slots below the count the sender published, and this slot is above it). Rust
    /// assumes nobody else reads or writes memory behind a `&mut [u8]`; a process that breaks
    /// the protocol (another program, a bug) breaks that assumption, which no check in this
    /// process can detect. Also, no process may shrink the segment (see the crate docs on
    /// SIGBUS).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let cap = self.capacity();
        // SAFETY: the payload is `cap` bytes inside the mapping; exclusivity is the caller's
        // promise above.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), cap) }
    }

    /// Sends the first `len` bytes of the slot as one message.
    pub fn send(self, len: usize) -> Result<()> {
        self.tx.check_len(len)?;
        self.tx.publish(len);
        Ok(())
    }

    /// Copies `data` into the slot and sends it.
    pub fn send_bytes(mut self, data: &[u8]) -> Result<()> {
        self.write_at(0, data)?;
        self.send(data.len())
    }

    /// Copies one value of plain data into the slot and sends it.
    pub fn send_value<T: IntoBytes + Immutable>(self, value: &T) -> Result<()> {
        self.send_bytes(value.as_bytes())
    }

    /// The slot as a `T`, to build the value in place; send it with
    /// `send(size_of::<T>())`. Fails with [`Error::TooLarge`] when `T` does not fit a slot,
    /// and [`Error::InvalidOptions`] when it needs more than 8-byte alignment.
    ///
    /// # Safety
    ///
    /// As for [`Loan::as_mut_slice`].
    pub unsafe fn as_mut_value<T: FromBytes + IntoBytes + KnownLayout>(
        &mut self,
    ) -> Result<&mut T> {
        let size = size_of::<T>();
        if size > self.capacity() {
            return Err(Error::TooLarge {
                len: size,
                max: self.capacity(),
            });
        }
        // SAFETY: the caller's promise, as for as_mut_slice.
        let bytes = unsafe { self.as_mut_slice() };
        T::mut_from_bytes(&mut bytes[..size]).map_err(|_| {
            Error::InvalidOptions(format!(
                "a slot is 8-aligned; this type needs {}-byte alignment",
                align_of::<T>()
            ))
        })
    }
}

impl Receiver {
    /// Creates the channel `name` on `backend`, as its receiver. Fails with
    /// `Error::Shm(AlreadyExists)` when the name is taken.
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Receiver> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the channel `name` that a sender created; see [`Sender::open`] for the checks.
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Receiver> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the channel, or creates it when there is none: either end may start first.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Receiver> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Receiver> {
        let shared = Shared::connect(backend, name, opts, Role::Receiver, how)?;
        Ok(Receiver {
            ring: Ring::new(shared)?,
            head: 0,
            avail: 0,
            ended: false,
            checked: None,
        })
    }

    end_info!();

    /// Receives the next message in place, waiting while the channel is empty. The slot is
    /// released when the [`Sample`] is dropped.
    ///
    /// Once every message sent has been received, fails with how the stream ended:
    /// [`Error::Closed`] when the sender finished it (the stream is whole),
    /// [`Error::Aborted`] when the sender stopped without finishing (the stream is cut),
    /// [`Error::PeerDead`] when the sender's process died; and [`Error::Protocol`].
    #[inline]
    pub fn recv(&mut self) -> Result<Sample<'_>> {
        self.recv_until(None)
    }

    /// Receives a message if one is waiting, or fails with [`Error::Empty`] (or with what a
    /// blocking receive would report: the end of the stream, a dead sender).
    pub fn try_recv(&mut self) -> Result<Sample<'_>> {
        if self.waiting_now()? {
            self.take()
        } else {
            if let Err(e) = poll_peer(&self.ring.shared, &mut self.checked) {
                // The sender may have completed messages just before it died.
                if self.waiting_now()? {
                    return self.take();
                }
                return Err(e);
            }
            Err(Error::Empty)
        }
    }

    /// Receives, waiting at most `timeout` ([`Error::TimedOut`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<'_>> {
        self.recv_until(deadline_in(timeout))
    }

    /// Receives, waiting until `deadline` at most.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Sample<'_>> {
        self.recv_until(Some(deadline))
    }

    /// Receives a copy of the next message into `buf` and returns its length; a message longer
    /// than `buf` is left in the channel (the next receive gets it) and fails with
    /// [`Error::TooLarge`].
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        let sample = self.recv()?;
        let len = sample.len();
        if let Err(e) = sample.copy_to(buf) {
            sample.keep();
            return Err(e);
        }
        Ok(len)
    }

    /// Receives one value of plain data (zerocopy's `FromBytes`: any bytes make a valid
    /// value), copied out. A message of another size than `T` is [`Error::WrongSize`].
    #[inline]
    pub fn recv_value<T: FromBytes + IntoBytes>(&mut self) -> Result<T> {
        self.recv()?.read_value()
    }

    /// Says that this end failed (it could not deliver what it received, or was stopped):
    /// the sender's sends and [`Sender::finish`] fail with [`Error::Aborted`] instead of the
    /// [`Error::Closed`] that dropping a receiver gives (as a pipe's reader that leaves).
    pub fn abort(mut self) {
        self.close(RX_FAILED);
    }

    /// Closes this end, saying how (once).
    fn close(&mut self, how: u32) {
        if self.ended {
            return;
        }
        self.ended = true;
        // The end state first: a sender that sees the closed head sees how it ended.
        self.ring.rx_end().store(how, Ordering::SeqCst);
        self.ring.head().store(self.head | CLOSED);
    }

    fn used(&self, tail: u32) -> u32 {
        tail.wrapping_sub(self.head) & COUNT_MASK
    }

    /// True when `tail` is behind this end's head: messages taken by their sequence words
    /// before the sender's store of the tail became visible here (by one, with a conforming
    /// sender).
    fn lags(head: u32, tail: u32, slots: u32) -> bool {
        let behind = head.wrapping_sub(tail) & COUNT_MASK;
        behind != 0 && behind <= slots
    }

    /// Checks a tail read once: `Ok(true)` when a message is waiting.
    fn look(&mut self, tail: u32) -> Result<bool> {
        let slots = self.ring.slots;
        if Self::lags(self.head, tail & COUNT_MASK, slots) {
            if tail & CLOSED != 0 {
                // The final count is never behind what was received.
                return Err(Error::Protocol(format!(
                    "the sender closed at message {}, behind {}",
                    tail & COUNT_MASK,
                    self.head
                )));
            }
            self.avail = 0;
            return Ok(false);
        }
        let used = self.used(tail);
        if used > slots {
            return Err(Error::Protocol(format!(
                "the sender says it sent message {}, but only {} slots exist past {}",
                tail & COUNT_MASK,
                self.ring.slots,
                self.head
            )));
        }
        self.avail = used;
        if used == 0 && tail & CLOSED != 0 {
            return Err(self.end_of_stream());
        }
        Ok(used > 0)
    }

    /// Every message is received and the sender closed: how it ended.
    #[cold]
    fn end_of_stream(&mut self) -> Error {
        match self.ring.tx_end().load(Ordering::SeqCst) {
            TX_COMPLETE => {
                // Tells a sender waiting in `finish` that the whole stream arrived.
                self.close(RX_RECEIVED_ALL);
                Error::Closed
            }
            TX_ABORTED => Error::Aborted,
            other => Error::Protocol(format!(
                "the sender closed the stream with end state {other}"
            )),
        }
    }

    pub(crate) fn waiting_now(&mut self) -> Result<bool> {
        if self.avail > 0 || self.sequenced() {
            return Ok(true);
        }
        let tail = self.ring.tail().load();
        self.look(tail)
    }

    /// True when the next slot's sequence word says its message is complete: one look at the
    /// slot's own cache line, which the message brings anyway (the tail's line stays with the
    /// sender). A peer that fakes it only gets this end to read a slot it owns, in bounds.
    #[inline]
    fn sequenced(&mut self) -> bool {
        if self.ring.complete(self.head) {
            self.avail = 1;
            return true;
        }
        false
    }

    #[inline]
    fn recv_until(&mut self, deadline: Deadline) -> Result<Sample<'_>> {
        // The slot first, the tail last: reading the tail's line would make the sender's next
        // store of it fetch the line back, a second transfer per message. So the wait spins on
        // the slot's sequence word, and reads the tail only now and then, and when it sleeps.
        if self.avail == 0
            && self
                .ring
                .tail()
                .spin_first(|| self.ring.complete(self.head).then_some(()))
                .is_none()
        {
            self.wait_for_message(deadline)?;
        } else {
            self.avail = self.avail.max(1);
        }
        self.take()
    }

    /// Waits until a message is complete (the slow path of a receive).
    #[inline(never)]
    fn wait_for_message(&mut self, deadline: Deadline) -> Result<()> {
        let (head, slots) = (self.head, self.ring.slots);
        loop {
            // Ready when closed, or when the count moved ahead of this end's (a count that
            // moved anywhere else but behind is ready too: look() refuses it).
            let ring = &self.ring;
            let tail = ring.shared.wait_or(
                ring.tail(),
                || ring.complete(head),
                |t| t & CLOSED != 0 || (t != head && !Self::lags(head, t, slots)),
                deadline,
            );
            let tail = match tail {
                // The sender died: messages it completed first are still received.
                Err(Error::PeerDead { .. }) if self.waiting_now()? => return Ok(()),
                other => other?,
            };
            match tail {
                None => {
                    self.avail = 1;
                    return Ok(());
                }
                Some(tail) if self.look(tail)? => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// The message at `head`, which `look` found complete.
    #[inline]
    pub(crate) fn take(&mut self) -> Result<Sample<'_>> {
        let slot = self.ring.slot(self.head);
        // The length is read once, into private memory, and checked: nothing is read past it.
        let len = (self
            .ring
            .slot_header(self.head)
            .word
            .load(Ordering::Relaxed)
            & 0xffff_ffff) as usize;
        if len > self.ring.max {
            return Err(self.claims(len));
        }
        Ok(Sample {
            rx: Some(self),
            // SAFETY: the payload follows the slot header, inside the mapping.
            data: unsafe { slot.add(SLOT_HEADER) },
            len,
        })
    }
}

impl Receiver {
    #[cold]
    fn claims(&self, len: usize) -> Error {
        Error::Protocol(format!(
            "message {} claims {len} bytes; the channel's maximum is {}",
            self.head, self.ring.max
        ))
    }
}

#[cold]
fn too_large(len: usize, max: usize) -> Error {
    Error::TooLarge { len, max }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Left before (or without saying) the end: as a pipe's reader that closes.
        self.close(RX_LEFT);
    }
}

/// A message received in place; its slot goes back to the sender when the sample is dropped.
///
/// Read it by copy ([`copy_to`](Sample::copy_to), [`to_vec`](Sample::to_vec),
/// [`read_value`](Sample::read_value)), safe whatever the peer does, or in place with
/// [`as_slice`](Sample::as_slice) (`unsafe`: see there why).
pub struct Sample<'a> {
    /// The receiver whose slot this is, released on drop; `None` for a pair's request or
    /// response, whose slot goes back with the next reply or call.
    rx: Option<&'a mut Receiver>,
    data: *const u8,
    len: usize,
}

impl std::fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("message", &self.rx.as_ref().map(|rx| rx.head))
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> Sample<'a> {
    /// A pair's message of `len` bytes at `data`, borrowed for `'a`.
    ///
    /// # Safety
    ///
    /// `data..data + len` lies inside a mapping that outlives `'a` (the length checked against
    /// the slot's maximum by the caller): the sample's safe methods read those bytes.
    pub(crate) unsafe fn in_pair(data: *const u8, len: usize) -> Sample<'a> {
        Sample {
            rx: None,
            data,
            len,
        }
    }

    /// Leaves the message in the channel: the next receive gets it again.
    fn keep(mut self) {
        self.rx = None;
    }

    /// The message's length in bytes (read once from shared memory, and checked against the
    /// channel's maximum).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a message of 0 bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte of the message, in shared memory (`len()` bytes, 8-aligned).
    pub fn as_ptr(&self) -> *const u8 {
        self.data
    }

    /// Copies the message to the front of `buf`; fails with [`Error::TooLarge`] when `buf` is
    /// shorter than the message.
    pub fn copy_to(&self, buf: &mut [u8]) -> Result<()> {
        self.bytes().copy_to(buf)
    }

    /// A copy of the message.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }

    /// A copy of the message as one value of plain data; [`Error::WrongSize`] when the
    /// message's length is not `size_of::<T>()`.
    #[inline]
    pub fn read_value<T: FromBytes + IntoBytes>(&self) -> Result<T> {
        self.bytes().read_value()
    }

    /// The message's bytes, to read by copy.
    #[inline]
    fn bytes(&self) -> InPlace {
        // SAFETY: `len` bytes of payload inside the mapping (len <= max, checked at receive),
        // which the end this sample borrows keeps mapped.
        unsafe { InPlace::new(self.data, self.len) }
    }

    /// The message in place, as a byte slice: zero-copy.
    ///
    /// # Safety
    ///
    /// The sender's process must keep the protocol while the slice lives: a sender never
    /// writes a slot between sending it and the receiver releasing it (when this sample is
    /// dropped), so no byte behind the slice changes. A sender built from this crate keeps it:
    /// it writes only slots whose number is at least the receiver's released count plus
    /// nothing in flight, which this slot is not. Rust assumes the bytes behind a `&[u8]` do
    /// not change; a process that breaks the protocol (another program, a bug, a hostile
    /// peer) can change them anyway, and no check in this process can stop it. Also, no
    /// process may shrink the segment while the slice lives (SIGBUS; see the crate docs).
    /// Where the peer is not trusted, use [`copy_to`](Self::copy_to). In a request/response
    /// pair the same holds of the one slot: a client built from this crate writes it only in
    /// its next call (after the server answered), a server only in its answer (after the
    /// request was dropped), and the sample borrows the end that would write it.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes inside the mapping (checked at receive); immutability is the
        // caller's promise above.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The message in place as a `T`: zero-copy. Fails with [`Error::WrongSize`] when the
    /// length differs from `size_of::<T>()`, [`Error::InvalidOptions`] when `T` needs more
    /// than 8-byte alignment.
    ///
    /// # Safety
    ///
    /// As for [`Sample::as_slice`].
    pub unsafe fn as_value<T: FromBytes + Immutable + KnownLayout>(&self) -> Result<&T> {
        if self.len != size_of::<T>() {
            return Err(Error::WrongSize {
                len: self.len,
                expected: size_of::<T>(),
            });
        }
        // SAFETY: the caller's promise, as for as_slice.
        let bytes = unsafe { self.as_slice() };
        T::ref_from_bytes(bytes).map_err(|_| {
            Error::InvalidOptions(format!(
                "a slot is 8-aligned; this type needs {}-byte alignment",
                align_of::<T>()
            ))
        })
    }
}

impl Drop for Sample<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(rx) = self.rx.as_mut() else {
            return;
        };
        rx.head = rx.head.wrapping_add(1) & COUNT_MASK;
        rx.avail = rx.avail.saturating_sub(1);
        // SeqCst store: every read of the slot happened before the sender can see it free.
        rx.ring.head().store(rx.head);
    }
}
