//! The shm workspace's benchmark: the project's speed against its floors, measured side by side
//! in one run. `shm bench` is a thin adapter over this crate.
//!
//! Start here: [`run`] measures and returns a [`Report`] (a table, or JSON); the program that
//! runs it says through a [`Host`] which backends it has and how to start itself again as a
//! peer ([`peer`] is what such a peer runs). Data flows one way: the CLI gives the bench its
//! backends, the bench measures them and shm-channel over shm-core.
//!
//! Every case runs once per repetition, in turn with the others (A B C ... A B C ...), so that
//! the machine's slow and fast spells fall on all of them alike; the samples of all repetitions
//! give each case's mean, median and p99. On a noisy machine only the ratios between cases
//! measured this way mean something. The ratios divide means, and [`Report::missed`] names those
//! that miss their targets.
//!
//! * round trips of the lockstep game ([`lockstep`]: threads, two processes over POSIX and
//!   System V with each wait strategy, both processes on one CPU), of one byte each way through a
//!   pipe and a socketpair, of shm-channel's request/response pair (blocking, and awaited in
//!   tokio on both sides: `async_rtt`), and the real `shm taller demo --lockstep`;
//! * create, map, unmap and unlink through a backend, against the same system calls made
//!   directly with libc, and how the cost grows with the size;
//! * `write_at` then `read_at` of 64 MiB through a mapping, against `memcpy`, and 64-byte copies;
//! * streams of 64 KiB messages: shm-channel against a ring of copies, a pipe and a socketpair;
//! * what 1000 shm-channel ends awaiting in one process cost while idle (`async_idle`: CPU
//!   time and threads made, judged against absolute limits rather than ratios).
//!
//! Every child process of the bench (peers, the demo) dies with it, also when it is killed with
//! SIGKILL (`PR_SET_PDEATHSIG`, set before the child runs and checked against a parent that died
//! first), and every segment name is removed as soon as both sides have it mapped.

pub mod lockstep;

mod cases;
mod child;
mod harness;
mod peer;
mod report;

use std::process::Command;

use anyhow::Result;
use shm_core::{DynBackend, SegmentName};

pub use harness::{Length, Options, run, stop, stop_on};
pub use peer::peer;
pub use report::Report;

/// A kernel interface the bench measures: the case keys carry its name (`posix_hybrid`,
/// `cycle_raw_sysv`), and its raw floors make its system calls directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// POSIX shared memory: shm_open.
    Posix,
    /// System V shared memory: shmget.
    Sysv,
}

impl Kind {
    /// `posix` or `sysv`, as in case keys and on a peer's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Posix => "posix",
            Kind::Sysv => "sysv",
        }
    }

    /// The kind named `s` (`posix`, `sysv`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "posix" => Some(Kind::Posix),
            "sysv" => Some(Kind::Sysv),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the bench needs from the program that runs it (the `shm` command): its backends, and
/// how to start it again as a peer or as the demo.
#[derive(Debug, Clone)]
pub struct Host {
    /// The backends the program has, its default first. The cases that need POSIX (the pipe
    /// doorbell, the size growth, the demo) are left out without it.
    pub kinds: Vec<Kind>,
    /// The backend of a kind (one of `kinds`).
    pub backend: fn(Kind) -> Result<Box<dyn DynBackend>>,
    /// The System V key the System V backend gives a name, for the raw cycle that makes its
    /// calls directly (None: that case is left out).
    pub sysv_key: fn(&SegmentName) -> Option<i32>,
    /// The program started again as a bench peer: a command to which the bench appends the
    /// peer's words; the program then calls [`peer`] with them. Hidden from its users.
    pub peer: fn() -> Result<Command>,
    /// `shm taller demo --lockstep` on the default backend, given a segment name and a number of
    /// rounds: the `demo_lockstep` case times it. None leaves the case out.
    pub demo: Option<fn(&str, u64) -> Result<Command>>,
}

impl Host {
    /// The default backend's kind (the first of `kinds`).
    fn default_kind(&self) -> Result<Kind> {
        self.kinds
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the bench was given no backend"))
    }

    /// The default backend.
    fn default_backend(&self) -> Result<Box<dyn DynBackend>> {
        (self.backend)(self.default_kind()?)
    }
}
