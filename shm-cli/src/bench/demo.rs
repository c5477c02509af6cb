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

/// The demo, reaped by a thread of its own (a blocking `waitpid`: the bench does not wake
/// every few hundred microseconds to look, which would take a CPU from the players), and
/// stopped (SIGINT, then SIGKILL) if it has not ended when this is dropped.
struct Running {
    pid: libc::pid_t,
    reaper: Option<std::thread::JoinHandle<(std::io::Result<std::process::ExitStatus>, Instant)>>,
}

impl Running {
    fn start(mut child: Child) -> Running {
        let pid = child.id() as libc::pid_t;
        let reaper = std::thread::spawn(move || {
            let status = child.wait();
            (status, Instant::now())
        });
        Running {
            pid,
            reaper: Some(reaper),
        }
    }

    /// The exit status and when the demo ended, once it has.
    fn ended(&mut self) -> Option<(std::io::Result<std::process::ExitStatus>, Instant)> {
        if !self.reaper.as_ref()?.is_finished() {
            return None;
        }
        self.reaper.take()?.join().ok()
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill takes a pid and a signal number and touches no memory; the pid is
        // the demo's, not reaped yet (the reaper thread has not returned).
        unsafe { libc::kill(self.pid, signal) };
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(reaper) = self.reaper.take() else {
            return;
        };
        // SIGINT: the demo removes its segment and its client on the way out.
        self.signal(libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reaper.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !reaper.is_finished() {
            self.signal(libc::SIGKILL);
        }
        let _ = reaper.join();
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
