//! [`Presence`]: whether the bridge on the far side is there, as Zenoh's callbacks report it
//! (a publisher's matching subscribers, a liveliness token), for the bridge's own thread to
//! wait on.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
struct Seen {
    /// There now.
    present: bool,
    /// There at some time (so that absent now means it left).
    ever: bool,
    /// A callback reported something (a first look of our own must not overwrite it).
    reported: bool,
}

/// The far side's presence, set from Zenoh's threads, waited on by the bridge's.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Presence {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        // A panic elsewhere while holding this lock leaves plain booleans: still good.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A callback's report.
    pub(crate) fn set(&self, present: bool) {
        let mut s = self.lock();
        s.present = present;
        s.ever |= present;
        s.reported = true;
        self.changed.notify_all();
    }

    /// The bridge's own first look, taken only when no callback has reported yet.
    pub(crate) fn seed(&self, present: bool) {
        let mut s = self.lock();
        if !s.reported {
            s.present = present;
            s.ever |= present;
            self.changed.notify_all();
        }
    }

    /// There now.
    pub(crate) fn present(&self) -> bool {
        self.lock().present
    }

    /// Was there at some time (and may still be).
    pub(crate) fn seen(&self) -> bool {
        self.lock().ever
    }

    /// Was there, and is not now.
    pub(crate) fn left(&self) -> bool {
        let s = self.lock();
        s.ever && !s.present
    }

    /// Waits at most `tick` until it has been there at some time; true when it has.
    pub(crate) fn wait_seen(&self, tick: Duration) -> bool {
        let s = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(s, tick, |s| !s.ever)
            .unwrap_or_else(|p| p.into_inner());
        s.ever
    }

    /// Waits at most `tick` until presence is `want`; true when it is.
    pub(crate) fn wait_for(&self, want: bool, tick: Duration) -> bool {
        let s = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(s, tick, |s| s.present != want)
            .unwrap_or_else(|p| p.into_inner());
        s.present == want
    }
}
