//! The fallback engine, where io_uring cannot be had: waiter threads that each sleep on up to
//! [`WORDS_PER_THREAD`] words with one `futex_waitv` call (or look at them every millisecond
//! on a kernel without it).

use std::sync::atomic::Ordering::SeqCst;
use std::task::Waker;
use std::time::Instant;

use super::fired::Fired;
use super::futex::{self, WaitV};
use super::table::Table;

/// How many words one fallback waiter thread sleeps on (`futex_waitv` takes 128; one is its
/// own bell).
pub const WORDS_PER_THREAD: usize = 127;

/// A fallback waiter thread: sleeps on its bell and its words, wakes the Wakers of those
/// that changed or whose deadline passed.
pub(super) fn serve(table: &Table) {
    let mut list: Vec<WaitV> = Vec::with_capacity(WORDS_PER_THREAD + 1);
    let mut wake: Vec<Waker> = Vec::new();
    loop {
        let seen = table.bell.load(SeqCst);
        list.clear();
        list.push(WaitV::private(&table.bell, seen));
        let until = {
            let e = table.lock();
            for (_, entry) in e.iter().filter(|(_, e)| e.fired.is_none()) {
                if list.len() > WORDS_PER_THREAD {
                    break; // never: the load is reserved; but the kernel refuses more
                }
                list.push(WaitV::shared(entry.word, entry.expected));
            }
            e.deadlines.first().map(|(d, _)| *d)
        };
        futex::wait_any(&list, until);
        {
            let mut e = table.lock();
            let now = Instant::now();
            let fired: Vec<(u64, Fired)> = e
                .iter()
                .filter(|(_, entry)| entry.fired.is_none())
                .filter_map(|(id, entry)| {
                    // SAFETY: the entry's `keep` keeps the word's memory alive
                    // (Registration::new's contract), and the entry exists (we hold the lock
                    // that removes it).
                    let value = unsafe { (*entry.word).load(SeqCst) };
                    if value != entry.expected {
                        Some((id, Fired::Changed))
                    } else if entry.deadline.is_some_and(|d| now >= d) {
                        Some((id, Fired::Deadline))
                    } else {
                        None
                    }
                })
                .collect();
            wake.extend(fired.into_iter().filter_map(|(id, why)| e.fire(id, why)));
        }
        for w in wake.drain(..) {
            w.wake();
        }
    }
}
