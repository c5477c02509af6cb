//! What the bench needs from the program that runs it: its backends ([`Kind`]s) and how to
//! start it again ([`Host`]).

use std::process::Command;

use anyhow::Result;
use shm_core::{DynBackend, SegmentName};

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
    /// peer's words; the program then calls `shm_bench::peer` with them. Hidden from its users.
    pub peer: fn() -> Result<Command>,
    /// `shm taller demo --lockstep` on the default backend, given a segment name and a number of
    /// rounds: the `demo_lockstep` case times it. None leaves the case out.
    pub demo: Option<fn(&str, u64) -> Result<Command>>,
}

impl Host {
    /// The default backend's kind (the first of `kinds`).
    pub(crate) fn default_kind(&self) -> Result<Kind> {
        self.kinds
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the bench was given no backend"))
    }

    /// The default backend.
    pub(crate) fn default_backend(&self) -> Result<Box<dyn DynBackend>> {
        (self.backend)(self.default_kind()?)
    }
}
