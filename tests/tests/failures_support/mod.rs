//! What the `failures_*` tests share: running a closure in a forked child and learning how it
//! ended (exit code or signal) and what it said, and running the `shm` binary with its stderr
//! checked for the one-clear-line rule.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Output;

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

/// Asserts the CLI's failure rules on one run: non-zero exit, not killed by a signal, exactly
/// one line on stderr starting `shm: error:` (ours) or `error:` (clap's), and no panic or
/// backtrace. Returns the line.
pub fn one_error_line(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some(),
        "{what}: killed by a signal ({:?}); stderr: {stderr}",
        out.status
    );
    assert!(
        !out.status.success(),
        "{what}: succeeded but should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: panic on stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: not exactly one line on stderr: {stderr:?}"
    );
    let first = lines[0];
    assert!(
        first.starts_with("shm: error:") || first.starts_with("error:"),
        "{what}: the line starts neither with `shm: error:` nor clap's `error:`: {stderr}"
    );
    first.to_owned()
}

/// Does `/dev/shm/NAME` exist (as anything, a link included)?
pub fn in_dev_shm(name: &str) -> bool {
    std::fs::symlink_metadata(format!("/dev/shm/{}", name.trim_start_matches('/'))).is_ok()
}

/// Runs `cmd` with no stdin and its output captured, killing it after `bound` (a hang is then a
/// failure with what it said, not a stuck test run).
pub fn run_bounded(cmd: &mut std::process::Command, bound: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > bound {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {bound:?} (hung): {out:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Removes a System V segment by name on drop (`shm --backend sysv rm -f NAME`), also when the
/// test fails.
pub struct SysvNameGuard(pub String);

impl Drop for SysvNameGuard {
    fn drop(&mut self) {
        let _ = shm_tests::shm()
            .args(["--backend", "sysv", "rm", "-f", &self.0])
            .output();
    }
}

/// `shm ARGS`, which must succeed and print JSON; the value.
pub fn shm_json(args: &[&str]) -> serde_json::Value {
    let out = shm_tests::shm().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Does `shm --backend BACKEND info NAME` find the segment?
pub fn shm_exists(backend: &str, name: &str) -> bool {
    shm_tests::shm()
        .args(["--backend", backend, "info", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// A fresh POSIX segment of 4096 bytes made by `shm create` for `test`: its name, and the guard
/// that removes it.
pub fn made_posix(test: &str) -> (String, shm_tests::PosixGuard) {
    let name = shm_tests::unique_name(test);
    let guard = shm_tests::PosixGuard(name.clone());
    let made = shm_tests::shm()
        .args(["create", &name, "-s", "4096"])
        .output()
        .unwrap();
    assert!(made.status.success(), "shm create {name}: {made:?}");
    (name, guard)
}
