//! The registrations one waiter thread serves: a slab of entries under one lock, the
//! deadlines in order, the requests for the thread (io_uring), and the bell that wakes it.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use super::fired::Fired;

/// One registered word.
pub(super) struct Entry {
    pub word: *const AtomicU32,
    pub expected: u32,
    pub waker: Waker,
    pub deadline: Option<Instant>,
    /// The peer watched, by [`Watch::key`](super::Watch::key).
    pub watch_key: Option<u128>,
    pub fired: Option<Fired>,
    /// io_uring: a futex wait of this entry is in the kernel (submitted, not yet completed).
    pub in_kernel: bool,
    /// Keeps the memory of `word` alive while the entry exists.
    pub _keep: Arc<dyn Any + Send + Sync>,
}

// SAFETY: `word` points into memory that `keep` keeps alive, and is only used for atomic
// loads and as a futex address; the rest is Send.
unsafe impl Send for Entry {}

/// What the io_uring thread must submit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    /// A futex wait for the entry of this id.
    Wait(u64),
    /// The cancel of the futex wait of this id.
    Cancel(u64),
}

/// An entry's id: its slot in the high half, a sequence number in the low half (so that a
/// completion for an entry gone since never fires the slot's next entry).
pub(super) fn index_of(id: u64) -> usize {
    (id >> 32) as usize
}

#[derive(Default)]
pub(super) struct Entries {
    slots: Vec<Option<(u64, Entry)>>,
    free: Vec<usize>,
    seq: u32,
    /// The deadlines of the entries that have one, soonest first.
    pub deadlines: BTreeSet<(Instant, u64)>,
    /// Requests for the io_uring thread, in order.
    pub ops: Vec<Op>,
}

impl Entries {
    /// The entry of `id`, if it is still there.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        match self.slots.get_mut(index_of(id)) {
            Some(Some((i, e))) if *i == id => Some(e),
            _ => None,
        }
    }

    /// Every entry, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.slots.iter().flatten().map(|(id, e)| (*id, e))
    }

    /// Fires the entry of `id` for `why`, unless it fired already or is gone; returns its
    /// waker to wake (outside the lock).
    pub fn fire(&mut self, id: u64, why: Fired) -> Option<Waker> {
        let entry = self.get_mut(id)?;
        if entry.fired.is_some() {
            return None;
        }
        entry.fired = Some(why);
        let waker = entry.waker.clone();
        if let Some(d) = entry.deadline {
            self.deadlines.remove(&(d, id));
        }
        Some(waker)
    }
}

/// The registrations of one waiter thread.
pub(super) struct Table {
    /// Bumped and futex-woken (a private word) to make the thread look again.
    pub bell: AtomicU32,
    /// Registrations held (reserved before they are inserted).
    pub load: AtomicUsize,
    /// How many the thread can serve.
    pub capacity: usize,
    /// Served by io_uring: an entry's wait in the kernel is cancelled when it goes.
    pub uring: bool,
    entries: Mutex<Entries>,
}

impl Table {
    pub fn new(capacity: usize, uring: bool) -> Table {
        Table {
            bell: AtomicU32::new(0),
            load: AtomicUsize::new(0),
            capacity,
            uring,
            entries: Mutex::new(Entries::default()),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the entries consistent (each change is one
        // assignment or one insert): go on with them.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts `entry` (its load reserved already); returns its id.
    pub fn insert(&self, entry: Entry) -> u64 {
        let mut e = self.lock();
        e.seq = e.seq.wrapping_add(1);
        let index = match e.free.pop() {
            Some(i) => i,
            None => {
                e.slots.push(None);
                e.slots.len() - 1
            }
        };
        let id = ((index as u64) << 32) | u64::from(e.seq);
        if let Some(d) = entry.deadline {
            e.deadlines.insert((d, id));
        }
        if self.uring {
            e.ops.push(Op::Wait(id));
        }
        e.slots[index] = Some((id, entry));
        id
    }

    /// Removes the entry of `id`; true when the thread must be rung (a cancel to submit).
    pub fn remove(&self, id: u64) -> (Option<Entry>, bool) {
        let mut e = self.lock();
        let index = index_of(id);
        let entry = match e.slots.get_mut(index) {
            Some(slot) if slot.as_ref().is_some_and(|(i, _)| *i == id) => {
                slot.take().map(|(_, entry)| entry)
            }
            _ => None,
        };
        let mut ring = false;
        if let Some(entry) = entry.as_ref() {
            e.free.push(index);
            if let Some(d) = entry.deadline {
                e.deadlines.remove(&(d, id));
            }
            if entry.in_kernel {
                e.ops.push(Op::Cancel(id));
                ring = true;
            }
            self.load.fetch_sub(1, SeqCst);
        }
        (entry, ring)
    }

    /// Makes the thread look again.
    pub fn ring(&self) {
        self.bell.fetch_add(1, SeqCst);
        super::futex::wake_private(&self.bell);
    }

    /// Fires the entries watching a peer of `dead`; returns their wakers.
    pub fn fire_dead(&self, dead: &[u128], wake: &mut Vec<Waker>) {
        let mut e = self.lock();
        let ids: Vec<u64> = e
            .iter()
            .filter(|(_, entry)| entry.watch_key.is_some_and(|k| dead.contains(&k)))
            .map(|(id, _)| id)
            .collect();
        wake.extend(ids.into_iter().filter_map(|id| e.fire(id, Fired::PeerDead)));
    }
}
