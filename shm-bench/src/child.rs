//! The bench's child processes (peers, the demo): each dies with the bench, however the bench
//! ends, and is stopped and reaped when its guard is dropped.
//!
//! The kernel sends a child its death signal when the thread that started it ends
//! (`PR_SET_PDEATHSIG`, Linux): the bench starts every child from its main thread, so that is
//! when the bench ends, also by SIGKILL. The signal is asked for between fork and exec, before
//! the child runs any of its own code, and the parent's pid is checked after asking: a bench that
//! died before the request would otherwise leave the child with no signal to come.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process of the bench: stopped (its `stop` signal, then SIGKILL after a grace time)
/// and reaped when dropped.
pub(crate) struct Child {
    /// The process; taken by nothing else, reaped only here.
    pub(crate) process: std::process::Child,
    stop: libc::c_int,
    grace: Duration,
}

impl Child {
    /// Starts `cmd` as a peer: it gets SIGKILL when the bench ends, and when dropped.
    pub(crate) fn peer(cmd: &mut Command) -> Result<Self> {
        Self::spawn(cmd, libc::SIGKILL, libc::SIGKILL, Duration::ZERO)
            .context("starting a peer process")
    }

    /// Starts `cmd`, a program that cleans up on `signal` (the demo removes its segment and its
    /// client on SIGTERM and SIGINT): it gets SIGTERM when the bench ends, and `signal` when
    /// dropped, then SIGKILL after `grace`.
    pub(crate) fn cleaning_up(
        cmd: &mut Command,
        signal: libc::c_int,
        grace: Duration,
    ) -> Result<Self> {
        Self::spawn(cmd, libc::SIGTERM, signal, grace)
    }

    fn spawn(
        cmd: &mut Command,
        on_death: libc::c_int,
        stop: libc::c_int,
        grace: Duration,
    ) -> Result<Self> {
        die_with_this_process(cmd, on_death);
        let process = cmd.spawn()?;
        Ok(Self {
            process,
            stop,
            grace,
        })
    }

    /// The child's pid; it stays the child's until this guard reaps it.
    pub(crate) fn id(&self) -> u32 {
        self.process.id()
    }

    /// The exit status, if the child has ended (it is reaped then).
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.process.try_wait()?)
    }

    /// An error if the child has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        match self.process.try_wait()? {
            Some(status) => bail!("the peer process exited early ({status})"),
            None => Ok(()),
        }
    }

    /// Waits for the child to end by itself (it was told to), at most `timeout`; an error if it
    /// failed or did not end (it is killed then, on drop).
    pub(crate) fn finish(mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait()? {
                if !status.success() {
                    bail!("the peer process failed ({status})");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the peer process did not end when told (killed)");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Ended and reaped already (finish, try_wait): nothing to do. Errors mean it is gone.
        if !matches!(self.process.try_wait(), Ok(None)) {
            return;
        }
        if self.stop != libc::SIGKILL {
            if let Ok(pid) = libc::pid_t::try_from(self.process.id()) {
                // SAFETY: kill takes a pid and a signal number and touches no memory; the child
                // is not reaped (try_wait just said it runs), so the pid is still the child's.
                unsafe { libc::kill(pid, self.stop) };
            }
            let deadline = Instant::now() + self.grace;
            while matches!(self.process.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Makes `cmd`'s process receive `signal` when the calling thread ends (see the module docs).
fn die_with_this_process(cmd: &mut Command, signal: libc::c_int) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // functions may be called: prctl and getppid are system calls, on values copied into the
    // closure before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                let signal = signal as libc::c_ulong;
                if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The bench may have died before the prctl: then no signal will come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the bench exited"));
                }
            }
            let _ = (parent, signal);
            Ok(())
        });
    }
}
