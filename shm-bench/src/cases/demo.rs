//! `demo_lockstep`: the real `shm taller demo --lockstep` (the host's program, default waiting),
//! timed by its wall time over 2 M rounds (the plan's), start and end included, as a user would
//! time it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::case::Section;
use crate::case::{Case, Samples, segment_name};
use crate::child::Child;
use crate::stop::stopping;
/// How often the bench looks at the stop flag while the demo runs (the end itself is timed
/// by the thread that reaps it).
const POLL: Duration = Duration::from_millis(20);
/// A pause after each demo, for the kernel to finish with its processes.
const SETTLE: Duration = Duration::from_millis(30);
/// The longest one demo may take (a thousand times the floor, on a busy machine).
const LIMIT: Duration = Duration::from_secs(120);

/// How long a demo has to remove its segment and its client after SIGINT, before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The demo as a case: one run per repetition.
pub struct Demo {
    name: String,
    rounds: u64,
    command: fn(&str, u64) -> Result<std::process::Command>,
}

impl Demo {
    /// The demo that `command` starts, `rounds` rounds per run.
    pub fn new(command: fn(&str, u64) -> Result<std::process::Command>, rounds: u64) -> Demo {
        Demo {
            name: segment_name("demo"),
            rounds,
            command,
        }
    }

    /// Starts a demo: it dies with the bench, and is stopped with SIGINT (it then removes its
    /// segment and its client) when its guard is dropped.
    fn spawn(&self) -> Result<Child> {
        let mut cmd = (self.command)(&self.name, self.rounds)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Child::cleaning_up(&mut cmd, libc::SIGINT, GRACE).context("starting shm taller demo")
    }
}

/// The demo and a thread that waits for its end without reaping it (`waitid` with
/// `WNOWAIT`): the end is timed exactly and the bench never wakes to look (polling every few
/// hundred microseconds took a CPU from the players), while the process stays this one's to
/// signal until it is reaped here, so no signal can reach a process that reused its pid.
struct Running {
    child: Option<Child>,
    waiter: Option<std::thread::JoinHandle<Instant>>,
}

impl Running {
    fn start(child: Child) -> Running {
        let pid = child.id();
        let waiter = std::thread::spawn(move || {
            loop {
                // SAFETY: siginfo_t is plain data that waitid fills; an all-zero value is
                // valid. WNOWAIT leaves the child unreaped, so its pid stays the demo's.
                let rc = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                let interrupted = rc == -1
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
                if !interrupted {
                    // Exited, or reaped already by the Drop below (ECHILD).
                    return Instant::now();
                }
            }
        });
        Running {
            child: Some(child),
            waiter: Some(waiter),
        }
    }

    /// The exit status and when the demo ended, once it has.
    fn ended(&mut self) -> Option<(Result<std::process::ExitStatus>, Instant)> {
        if !self.waiter.as_ref()?.is_finished() {
            return None;
        }
        let end = self.waiter.take()?.join().ok()?;
        let status = match self.child.as_mut()?.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(anyhow::anyhow!("the demo ended, yet runs")),
            Err(e) => Err(e),
        };
        Some((status, end))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The child's guard stops it (SIGINT, then SIGKILL) and reaps it; the waiter then sees
        // ECHILD and returns.
        drop(self.child.take());
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
    }
}

impl Case for Demo {
    fn key(&self) -> &str {
        "demo_lockstep"
    }
    fn what(&self) -> &str {
        "shm taller demo --lockstep, wall time"
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn sliced(&self) -> bool {
        // One demo per slice: its ratio is to two threads, measured beside it.
        true
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        let start = Instant::now();
        let mut demo = Running::start(self.spawn()?);
        loop {
            if let Some((status, end)) = demo.ended() {
                let status = status.context("waiting for shm taller demo")?;
                if !status.success() {
                    bail!("shm taller demo failed ({status})");
                }
                out.push_batch(end.duration_since(start).as_nanos(), self.rounds);
                // Untimed: the kernel tears down the demo's two processes for a few
                // milliseconds; the next case should not pay for that.
                std::thread::sleep(SETTLE);
                return Ok(());
            }
            if stopping() {
                return Ok(());
            }
            if start.elapsed() > LIMIT {
                bail!(
                    "shm taller demo took more than {LIMIT:?} for {} rounds",
                    self.rounds
                );
            }
            std::thread::sleep(POLL);
        }
    }
}
