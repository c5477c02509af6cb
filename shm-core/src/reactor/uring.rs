//! The io_uring engine: one thread holds every registered word as an `IORING_OP_FUTEX_WAIT`
//! request in the kernel (Linux 6.7+), however many, and sleeps in `io_uring_enter` until one
//! completes, a deadline passes, or its bell rings.
//!
//! Only this thread submits to the ring, so the kernel runs the completions' work in it (an
//! executor's thread is never interrupted for them). Other threads hand it their requests
//! through the table's `ops` and ring its bell: a private futex word on which the thread
//! keeps a futex wait of its own in the ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::Waker;
use std::time::Instant;

use io_uring::{IoUring, opcode, squeue, types};

use super::fired::Fired;
use super::futex::{PRIVATE, SIZE_U32};
use super::table::{Op, Table};

/// The completion of the bell's own futex wait.
const BELL: u64 = u64::MAX;
/// The completion of a cancel request.
const CANCEL: u64 = u64::MAX - 1;
/// `FUTEX_BITSET_MATCH_ANY`: a plain `FUTEX_WAKE` wakes the wait.
const ANY: u64 = 0xffff_ffff;

/// A ring whose kernel knows `IORING_OP_FUTEX_WAIT` (and `io_uring_enter` with a timeout),
/// or why not (no io_uring, refused by a seccomp filter or `kernel.io_uring_disabled`, or too
/// old a kernel).
pub(super) fn ring() -> std::io::Result<IoUring> {
    let ring = IoUring::builder().build(256)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    if !probe.is_supported(opcode::FutexWait::CODE) || !ring.params().is_feature_ext_arg() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(ring)
}

/// A futex wait on a process-shared word (no private flag: the kernel keys it on the page).
fn wait_shared(word: *const AtomicU32, expected: u32, id: u64) -> squeue::Entry {
    opcode::FutexWait::new(word.cast(), expected.into(), ANY, SIZE_U32)
        .build()
        .user_data(id)
}

fn cancel(id: u64) -> squeue::Entry {
    opcode::AsyncCancel::new(id).build().user_data(CANCEL)
}

/// The io_uring thread.
pub(super) fn serve(table: Arc<Table>, mut ring: IoUring) {
    let (submitter, mut sq, mut cq) = ring.split();
    let mut bell_armed = false;
    let mut wake: Vec<Waker> = Vec::new();
    let mut submit: Vec<squeue::Entry> = Vec::new();
    let mut ops: Vec<Op> = Vec::new();
    loop {
        let seen = table.bell.load(SeqCst);
        let timeout = {
            let mut e = table.lock();
            let now = Instant::now();
            while let Some(&(d, id)) = e.deadlines.first() {
                if d > now {
                    break;
                }
                e.deadlines.pop_first();
                wake.extend(e.fire(id, Fired::Deadline));
                if e.get_mut(id).is_some_and(|entry| entry.in_kernel) {
                    submit.push(cancel(id));
                }
            }
            std::mem::swap(&mut ops, &mut e.ops);
            for op in ops.drain(..) {
                match op {
                    Op::Wait(id) => {
                        if let Some(entry) = e.get_mut(id) {
                            if entry.fired.is_none() && !entry.in_kernel {
                                entry.in_kernel = true;
                                submit.push(wait_shared(entry.word, entry.expected, id));
                            }
                        }
                    }
                    Op::Cancel(id) => submit.push(cancel(id)),
                }
            }
            e.deadlines
                .first()
                .map(|(d, _)| d.saturating_duration_since(now))
        };
        if !bell_armed {
            // The value seen before the ops were taken: a request queued since has changed it,
            // and the wait completes at once.
            submit.push(
                opcode::FutexWait::new(table.bell.as_ptr(), seen.into(), ANY, SIZE_U32 | PRIVATE)
                    .build()
                    .user_data(BELL),
            );
            bell_armed = true;
        }
        for w in wake.drain(..) {
            w.wake();
        }
        for sqe in submit.drain(..) {
            // SAFETY: every address in a futex wait is a live word: the bell (in the table,
            // which this thread holds) or a registered word whose entry keeps its memory
            // alive until the entry goes, and an entry that goes cancels its wait; one unmapped
            // in between fails with EFAULT, which the completion reports. A cancel holds no
            // address.
            while unsafe { sq.push(&sqe) }.is_err() {
                sq.sync();
                match submitter.submit().map_err(|e| e.raw_os_error()) {
                    Ok(_) => {}
                    // Completions to take first.
                    Err(Some(libc::EBUSY)) => reap(&table, &mut cq, &mut bell_armed, &mut wake),
                    // EAGAIN (no memory for now), EINTR: again.
                    Err(_) => std::thread::yield_now(),
                }
                sq.sync();
            }
        }
        sq.sync();
        let waited = match timeout {
            None => submitter.submit_and_wait(1),
            Some(left) => {
                let ts = types::Timespec::new()
                    .sec(left.as_secs())
                    .nsec(left.subsec_nanos());
                submitter.submit_with_args(1, &types::SubmitArgs::new().timespec(&ts))
            }
        };
        // ETIME (a deadline), EINTR, EBUSY (completions to reap first): the loop looks.
        let _ = waited;
        sq.sync();
        reap(&table, &mut cq, &mut bell_armed, &mut wake);
        for w in wake.drain(..) {
            w.wake();
        }
    }
}

/// Takes the completions: a futex wait that completed (woken, or its word differed when it
/// was submitted) fires its entry, unless cancelled.
fn reap(
    table: &Table,
    cq: &mut io_uring::CompletionQueue<'_>,
    bell_armed: &mut bool,
    wake: &mut Vec<Waker>,
) {
    cq.sync();
    if io_uring::CompletionQueue::is_empty(cq) {
        return;
    }
    let mut e = table.lock();
    for cqe in &mut *cq {
        match cqe.user_data() {
            BELL => *bell_armed = false,
            CANCEL => {}
            id => {
                if let Some(entry) = e.get_mut(id) {
                    entry.in_kernel = false;
                    if cqe.result() != -libc::ECANCELED {
                        wake.extend(e.fire(id, Fired::Changed));
                    }
                }
            }
        }
    }
}
