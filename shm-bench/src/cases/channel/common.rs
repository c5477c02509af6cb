//! What the channel cases share: how long to wait for a peer, how to start one, the pair's
//! options and the size of a timed batch.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use shm_channel::Options;

use crate::child::Child;
use crate::host::Host;

/// Longest wait for anything the peer should do at once.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The request/response pair of the round-trip cases.
pub(crate) fn rtt_options() -> Options {
    // A pair has one slot (of 64 bytes here), which carries each request and its response.
    Options::new(1, 64)
}

/// The program started again as the peer `words`, on `stdin` and `stdout`.
pub(crate) fn spawn_peer(
    host: &Host,
    words: &[&str],
    stdin: Stdio,
    stdout: Stdio,
) -> Result<Child> {
    let mut cmd = (host.peer)()?;
    cmd.args(words).stdin(stdin).stdout(stdout);
    Child::peer(&mut cmd)
}

/// Calls per timed batch, when `calls` calls took `took`: about 2 µs' worth, 1 to 1000.
pub(crate) fn batch_for(took: Duration, calls: u128) -> u64 {
    let per = (took.as_nanos() / calls.max(1)).max(1);
    u64::try_from(2_000 / per).unwrap_or(1).clamp(1, 1000)
}
