//! The stop flag: [`stop`] (and the signals [`stop_on`] turns into it) ends a run within a
//! chunk of rounds; a [`Ticker`] interrupts blocking reads now and then so that they look.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a blocking read of the pipe cases is interrupted to look at the stop flag and its
/// deadline.
const TICK: Duration = Duration::from_millis(100);

/// Set by [`stop`]: the bench stops within a chunk of rounds, and cleans up as on any error.
static STOP: AtomicBool = AtomicBool::new(false);

/// True once the bench was asked to stop.
pub(crate) fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks a running bench to stop: it stops within a chunk of rounds, removes its segments,
/// stops its peers, and `run` returns an error saying it was interrupted. Async-signal-safe
/// (one store to an atomic): a signal handler may call it.
pub fn stop() {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_signal(_: libc::c_int) {
    stop();
}

extern "C" fn on_tick(_: libc::c_int) {}

/// Installs `handler` for `sig` without `SA_RESTART`: a blocking call the signal interrupts
/// returns EINTR, and its caller looks at the stop flag.
fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask); both handlers only
    // store to an atomic or do nothing, which is async-signal-safe; sigaction reads `action`
    // and writes nothing back (null old action).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

/// Makes each of `signals` call [`stop`] instead of ending the process at once (which would
/// leave a segment of a create cycle behind). SIGALRM in the list is left out: the bench uses
/// it itself, to interrupt a blocking read now and then. Call it before `run`.
pub fn stop_on(signals: &[libc::c_int]) {
    for &sig in signals.iter().filter(|&&s| s != libc::SIGALRM) {
        catch(sig, on_signal);
    }
}

/// SIGALRM every [`TICK`] while alive, so that a blocking read returns EINTR now and then.
/// Only around the pipe cases: other system calls (a `posix_fallocate` of 64 MiB) must not be
/// interrupted.
pub(crate) struct Ticker;

impl Ticker {
    pub(crate) fn start() -> Self {
        catch(libc::SIGALRM, on_tick);
        set_timer(TICK);
        Ticker
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        set_timer(Duration::ZERO);
    }
}

/// Arms (or, with zero, disarms) a repeating `ITIMER_REAL` of `every`.
fn set_timer(every: Duration) {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(every.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(every.subsec_micros()),
    };
    let timer = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: setitimer reads `timer` and writes nothing back (null old value).
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}
