//! `demo_lockstep`: the real `shm taller demo --lockstep` (this binary, default waiting), timed
//! by its wall time over 2 M rounds, start and end included, as a user would time it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::report::Section;
use super::{Case, Samples, segment_name, stopping};
use crate::backend;

/// Rounds per repetition, as in the measurement that asked for this case.
const ROUNDS: u64 = 2_000_000;
/// How often the bench looks at the stop flag while the demo runs (the end itself is timed
/// by the thread that reaps it).
const POLL: Duration = Duration::from_millis(20);
/// A pause after each demo, for the kernel to finish with its processes.
const SETTLE: Duration = Duration::from_millis(30);
/// The longest one demo may take (a thousand times the floor, on a busy machine).
const LIMIT: Duration = Duration::from_secs(120);

/// The demo as a case: one run per repetition.
pub struct Demo {
    name: String,
}

impl Demo {
    pub fn new() -> Demo {
        Demo {
            name: segment_name("demo"),
        }
    }

    fn spawn(&self) -> Result<Child> {
        let exe = std::env::current_exe().context("finding this binary to run the demo")?;
        Command::new(exe)
            .args(["--backend", backend::DEFAULT.as_str(), "taller", "demo"])
            .args(["--lockstep", "--rounds", &ROUNDS.to_string()])
            .args(["--name", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting shm taller demo")
    }
}

/// The demo and a thread that waits for its end without reaping it (`waitid` with
/// `WNOWAIT`): the end is timed exactly and the bench never wakes to look (polling every few
/// hundred microseconds took a CPU from the players), while the process stays this one's to
/// signal until it is reaped here, so no signal can reach a process that reused its pid.
struct Running {
    child: Child,
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
            child,
            waiter: Some(waiter),
        }
    }

    /// The exit status and when the demo ended, once it has.
    fn ended(&mut self) -> Option<(std::io::Result<std::process::ExitStatus>, Instant)> {
        if !self.waiter.as_ref()?.is_finished() {
            return None;
        }
        let end = self.waiter.take()?.join().ok()?;
        Some((self.child.wait(), end))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SIGINT: the demo removes its segment and its client on the way out.
            // SAFETY: kill takes a pid and a signal number and touches no memory; the child
            // is not reaped (try_wait just said it runs), so the pid is still the demo's.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
                out.push_batch(end.duration_since(start).as_nanos(), ROUNDS);
                // Untimed: the kernel tears down the demo's two processes for a few
                // milliseconds; the next case should not pay for that.
                std::thread::sleep(SETTLE);
                return Ok(());
            }
            if stopping() {
                return Ok(());
            }
            if start.elapsed() > LIMIT {
                bail!("shm taller demo took more than {LIMIT:?} for {ROUNDS} rounds");
            }
            std::thread::sleep(POLL);
        }
    }
}
