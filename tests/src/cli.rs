//! Running the `shm` binary in a test, and the rules every run keeps: one clear error line,
//! JSON that parses, nothing left behind.

use std::process::{Output, Stdio};

use shm_core::{Backend, SegmentInfo, SegmentName};

use crate::cleanup::{Cleanup, unique_name};
use crate::host::{clock_ticks, proc_stat, shm};

/// Asserts that a run of `shm` with process id `pid` left nothing: no `/dev/shm` name starting
/// with `prefix`, and no System V segment of it ([`sysv_left_by`]).
pub fn assert_nothing_left(prefix: &str, pid: u32) {
    let posix: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(posix.is_empty(), "left in /dev/shm: {posix:?}");
    let sysv = sysv_left_by(prefix, pid, test_process_start());
    assert!(sysv.is_empty(), "System V segments left: {sysv:#?}");
}

/// The System V segments that a run of `shm` with process id `pid` left,
/// among `shm_sysv`'s list of the machine's segments: the one whose key is that of the name
/// `prefix` (when `prefix` is a whole name, as a test's unique name is), and those that `pid`
/// created, or attached or detached last, at or after `since` (seconds since the epoch: the
/// table's times have that resolution). A pid is reused once the machine has made `pid_max`
/// (often 32768) processes: the times keep a segment that another program made or used under
/// the same pid before the run began from being blamed on it; other programs' segments are
/// never counted otherwise.
pub fn sysv_left_by(prefix: &str, pid: u32, since: i64) -> Vec<SegmentInfo> {
    let name_key = SegmentName::new(&format!("/{}", prefix.trim_start_matches('/')))
        .ok()
        .and_then(|n| shm_sysv::key_for(&n).ok())
        .map(|k| k.as_raw());
    let pid = i32::try_from(pid).ok();
    let at_or_after = |t: Option<i64>| t.is_some_and(|t| t >= since);
    shm_sysv::SysV::new()
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| {
            (name_key.is_some() && s.key == name_key)
                || (pid.is_some() && s.cpid == pid && at_or_after(s.ctime))
                || (pid.is_some()
                    && s.lpid == pid
                    && (at_or_after(s.atime) || at_or_after(s.dtime)))
        })
        .collect()
}

/// When this test process started, in whole seconds since the epoch (rounded down): every
/// process a test of it ran started at or after it.
pub fn test_process_start() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let ticks: i64 = proc_stat("self").unwrap()[19].parse().unwrap();
        let hz = i64::try_from(clock_ticks()).unwrap();
        let btime: i64 = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // btime is itself rounded: one second less keeps the bound a lower one.
        btime + ticks / hz - 1
    })
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

#[cfg(test)]
mod tests {
    use shm_core::{Backend, CreateOptions, SegmentName};

    use super::{sysv_left_by, test_process_start};
    use crate::cleanup::unique_name;

    /// A System V segment is blamed on a pid only when that pid made or used it at or after the
    /// run began (a reused pid's older segment is another program's), and a segment under the
    /// run's own name is found whoever made it.
    #[test]
    fn a_sysv_leak_is_told_by_name_or_by_pid_and_time() {
        let name = unique_name("left-by");
        let sysv = shm_sysv::SysV::new();
        let seg = sysv
            .create(&SegmentName::new(&name).unwrap(), &CreateOptions::new(4096))
            .unwrap();
        let key = shm_sysv::key_for(&SegmentName::new(&name).unwrap())
            .unwrap()
            .as_raw();
        let me = std::process::id();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let found = |prefix: &str, pid: u32, since: i64| {
            sysv_left_by(prefix, pid, since)
                .iter()
                .any(|s| s.key == Some(key))
        };
        let other = unique_name("left-by-other");
        let other = other.trim_start_matches('/');
        // Made by this pid during the run: blamed.
        assert!(found(other, me, test_process_start()));
        // Made by this pid before the run began (the run starts a minute from now): another
        // program's under a reused pid, never blamed.
        assert!(!found(other, me, now + 60));
        // Another pid's run: not blamed.
        assert!(!found(other, u32::MAX / 2, 0));
        // The run's own name: found whatever the pid and the time.
        assert!(found(name.trim_start_matches('/'), u32::MAX / 2, now + 60));
        assert!(found(&name, u32::MAX / 2, now + 60));
        drop(seg);
        assert!(!found(&name, me, 0), "the segment is still there");
    }
}
