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
/// How often the bench looks whether the demo has ended (and at the stop flag).
const POLL: Duration = Duration::from_micros(200);
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

/// Kills and reaps the demo unless it ended.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SIGINT: the demo removes its segment and its client on the way out.
            // SAFETY: kill takes a pid and a signal number and touches no memory.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
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
        let mut demo = Running(self.spawn()?);
        loop {
            if let Some(status) = demo.0.try_wait()? {
                let took = start.elapsed();
                if !status.success() {
                    bail!("shm taller demo failed ({status})");
                }
                out.push_batch(took.as_nanos(), ROUNDS);
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
