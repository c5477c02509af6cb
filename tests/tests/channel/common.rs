//! What the channel tests of every kind share: the bound on learning of a death, a test's
//! start (backend and unique name) and the segment id that says what to check is gone.

use std::time::Duration;

use shm_core::DynBackend;
use shm_tests::peer_process::Under;
use shm_tests::unique_name;

/// Death must be known within 100 ms of a blocking call (the issues' bound; the tests print
/// what they measured); asserted loosely, so that a busy machine that preempts the waiting
/// end does not fail the run.
pub(super) const DEATH_BOUND: Duration = Duration::from_millis(1000);

/// A test's start on backend `kind`: the backend, and a unique name from `label`.
pub(super) fn begin(kind: &'static str, label: &str) -> (Under, Box<dyn DynBackend>, String) {
    let u = Under::new(kind);
    let b = u.backend();
    (u, b, unique_name(label))
}

/// The System V id of a channel's segment (`None` on the other backends), for
/// [`Under::assert_gone`].
pub(super) fn sysv_id(info: shm_channel::Result<shm_core::SegmentInfo>) -> Option<i32> {
    info.ok().and_then(|i| i.id)
}

/// An environment variable of a peer process ("" when unset).
pub(super) fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}
