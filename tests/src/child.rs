//! Other processes for a test: a closure run in a forked child (learning how it ended, exit
//! code or signal, and what it said), and this very test run again in a fresh process (as a
//! peer, or to start from a pristine process state).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

/// What a forked child did: how it ended and what it wrote back (its report or its panic).
#[derive(Debug)]
pub struct ChildResult {
    /// How it ended.
    pub status: Status,
    /// What the closure returned, or the panic message.
    pub said: String,
}

impl ChildResult {
    /// The child's report; panics (with what it said) unless it exited 0.
    pub fn ok(self) -> String {
        assert_eq!(
            self.status,
            Status::Exited(0),
            "the child failed: {}",
            self.said
        );
        self.said
    }
}

impl fmt::Display for ChildResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.status, self.said)
    }
}

/// A forked child that has not been waited for yet.
pub struct Pending {
    pid: libc::pid_t,
    report: File,
}

/// Forks; the child runs `f` and exits 0 with `f`'s `Ok` text as its report, or 1 with the
/// `Err` text or the panic message. The child ends itself after 60 s (SIGALRM), so that a test
/// never hangs on a stuck child.
pub fn spawn_child(f: impl FnOnce() -> Result<String, String>) -> Pending {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-pointer for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe returned two fresh descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fork has no memory-safety preconditions; the child runs `f` (system calls and
    // allocation, which glibc makes fork-safe) and leaves with _exit, never unwinding into the
    // test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(read);
        // SAFETY: alarm has no preconditions; it only bounds the child's life.
        unsafe { libc::alarm(60) };
        let mut out = File::from(write);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, text) = match result {
            Ok(Ok(text)) => (0, text),
            Ok(Err(text)) => (1, text),
            Err(panic) => (
                2,
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned()),
            ),
        };
        let _ = out.write_all(text.as_bytes());
        drop(out);
        // SAFETY: _exit ends the child at once, running no destructors of the parent's state.
        unsafe { libc::_exit(code) };
    }
    drop(write);
    Pending {
        pid,
        report: File::from(read),
    }
}

impl Pending {
    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Waits for the child and collects its report.
    pub fn wait(mut self) -> ChildResult {
        let mut said = String::new();
        let _ = self.report.read_to_string(&mut said);
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child; `status` is a valid out-pointer.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "waitpid: {e}");
        }
        let status = if libc::WIFSIGNALED(status) {
            Status::Signaled(libc::WTERMSIG(status))
        } else {
            Status::Exited(libc::WEXITSTATUS(status))
        };
        ChildResult { status, said }
    }
}

/// Runs `f` in a forked child and waits for it.
pub fn in_child(f: impl FnOnce() -> Result<String, String>) -> ChildResult {
    spawn_child(f).wait()
}

/// Turns a failed libc call into an `Err` naming it.
pub fn check(what: &str, rc: libc::c_int) -> Result<(), String> {
    if rc == -1 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

/// This test binary run again as a fresh process that runs only the test `test` of module
/// `module` (pass `module_path!()`): `exe --exact MODULE::TEST --nocapture --test-threads 1`.
/// The caller adds what tells the test that it is the re-run (an environment variable), and its
/// stdio. `wrap` runs it under another command (`unshare ...`, `setpriv ...`); empty for none.
pub fn this_test_again(wrap: &[&str], module: &str, test: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args([
        "--exact",
        &test_path(module, test),
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    cmd
}

/// The name libtest knows a test by: its module path without the crate (the test binary's
/// name), then the test: `test_path("hostile::sigbus", "t")` is `sigbus::t`.
pub fn test_path(module: &str, test: &str) -> String {
    match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{test}"),
        None => test.to_owned(),
    }
}

/// Sends `sig` to process `pid`: a child of this test that has not been waited for yet (so
/// that the pid is still that child's, never a stranger's that took it since). Panics when the
/// kernel refuses.
pub fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill takes plain values; the caller's child, not reaped, holds the pid.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Waits until `cond` holds, looking every 2 ms; panics with `what` once `within` has passed
/// (a test fails, never hangs, on what does not come).
pub fn wait_until(within: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < within, "{what} (waited {within:?})");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Kills and reaps a child process when dropped, so that a failing test leaves no process behind.
pub struct Reaped(pub std::process::Child);

impl Reaped {
    /// Sends `sig` to the child (not reaped yet: see [`signal`]).
    pub fn signal(&self, sig: libc::c_int) {
        signal(self.0.id(), sig);
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_path_drops_the_crate() {
        assert_eq!(super::test_path("hostile::sigbus", "t"), "sigbus::t");
        assert_eq!(
            super::test_path("channel::process::sysv", "t"),
            "process::sysv::t"
        );
        assert_eq!(super::test_path("cli", "t"), "t");
    }
}
