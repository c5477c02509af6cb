//! Running the `shm` binary in a test, and the rules every run keeps: one clear error line,
//! JSON that parses, nothing left behind.

use std::process::{Output, Stdio};

use crate::cleanup::{Cleanup, unique_name};
use crate::host::shm;

/// Asserts that a run of `shm` with process id `pid` left nothing: no `/dev/shm` name starting
/// with `prefix`, and no System V segment that it created or last attached (the cpid and lpid
/// columns of /proc/sysvipc/shm).
pub fn assert_nothing_left(prefix: &str, pid: u32) {
    let posix: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(posix.is_empty(), "left in /dev/shm: {posix:?}");
    let pid = pid.to_string();
    let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let sysv: Vec<&str> = table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&pid.as_str()) || f.get(5) == Some(&pid.as_str())
        })
        .collect();
    assert!(
        sysv.is_empty(),
        "System V segments left:\n{}",
        sysv.join("\n")
    );
}

/// Runs `shm ARGS` to the end with no stdin, asserts that it succeeded, and returns its process
/// id (which the names of the segments it makes carry) and its output.
pub fn shm_ok(args: &[&str]) -> (u32, std::process::Output) {
    let child = shm()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "shm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, out)
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

/// Runs `cmd` with no stdin and its output captured, killing it after `bound` (a hang is then a
/// failure with what it said, not a stuck test run).
pub fn run_bounded(cmd: &mut std::process::Command, bound: std::time::Duration) -> Output {
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

/// `shm ARGS`, which must succeed and print JSON; the value.
pub fn shm_json(args: &[&str]) -> serde_json::Value {
    let out = shm().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Does `shm --backend BACKEND info NAME` find the segment?
pub fn shm_exists(backend: &str, name: &str) -> bool {
    shm()
        .args(["--backend", backend, "info", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// A fresh POSIX segment of 4096 bytes made by `shm create` for `test`: its name, and the guard
/// that removes it.
pub fn made_posix(test: &str) -> (String, Cleanup) {
    let name = unique_name(test);
    let guard = Cleanup::posix(name.clone());
    let made = shm()
        .args(["create", &name, "-s", "4096"])
        .output()
        .unwrap();
    assert!(made.status.success(), "shm create {name}: {made:?}");
    (name, guard)
}
