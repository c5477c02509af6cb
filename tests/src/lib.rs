//! Test support for the shm workspace: unique names, the `shm` binary, the reference program.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod file_backend;
#[cfg(test)]
mod imports;
#[cfg(test)]
mod layering;
pub mod peer_process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique segment name for `test`: `/shmt-PID-N-TEST` (the conformance suite's prefix, so a
/// leak check finds every name a test made).
pub fn unique_name(test: &str) -> String {
    shm_core::conformance::unique_name(test).as_str().to_owned()
}

/// The `shm` binary that `cargo test` built beside this test (target/PROFILE/shm).
pub fn shm_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/PROFILE");
    let bin = dir.join("shm");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (it builds shm-cli's binary) or `cargo build -p shm-cli`",
        bin.display()
    );
    bin
}

/// A `Command` for the `shm` binary.
pub fn shm() -> Command {
    Command::new(shm_bin())
}

/// Prints why a test is skipped, in a form that shows in `cargo test` output: straight to the
/// process's stderr, which the test harness does not capture (it captures `print!`/`eprint!`,
/// and shows them only for failing tests), and through `println!` for `--nocapture` runs.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    println!("SKIPPED {test}: {why}");
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Removes a POSIX name on drop, ignoring errors (the test may have removed it already).
pub struct PosixGuard(pub String);

impl Drop for PosixGuard {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.0.as_str()) {
            // SAFETY: `c` is NUL-terminated and outlives the call.
            unsafe { libc::shm_unlink(c.as_ptr()) };
        }
    }
}

/// Removes the System V segment with `key` on drop, ignoring errors.
pub struct SysvKeyGuard(pub i32);

impl Drop for SysvKeyGuard {
    fn drop(&mut self) {
        // SAFETY: shmget/shmctl take plain values; IPC_RMID ignores the buffer.
        unsafe {
            let id = libc::shmget(self.0, 0, 0);
            if id >= 0 {
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        }
    }
}

/// Builds the C++ reference program into a temporary directory, once per test process: the file
/// `SHM_REFERENCE_CPP` names, or else `shared/reference/shmem_test.cpp` beside the checkout.
/// `Err` says why it cannot (no such file, no g++, compile error): the test prints it and skips.
pub fn reference_program() -> Result<PathBuf, String> {
    use std::sync::OnceLock;
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = match std::env::var_os("SHM_REFERENCE_CPP") {
                Some(path) => PathBuf::from(path),
                None => Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/reference/shmem_test.cpp"),
            };
            if !root.exists() {
                return Err(format!(
                    "{} is missing (set SHM_REFERENCE_CPP to shmem_test.cpp, or put the \
                     `shared` directory beside the checkout)",
                    root.display()
                ));
            }
            let out = std::env::temp_dir().join(format!("shm-reference-{}", std::process::id()));
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let bin = out.join("shmem_test");
            let status = Command::new("g++")
                .arg(&root)
                .arg("-o")
                .arg(&bin)
                .arg("-lrt")
                .status()
                .map_err(|e| format!("g++ is not available: {e}"))?;
            if !status.success() {
                return Err(format!("g++ failed to build {}", root.display()));
            }
            Ok(bin)
        })
        .clone()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory path for one test (not created).
pub fn temp_path(test: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("shm-tests-{}-{n}-{test}", std::process::id()))
}

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
    use std::process::Stdio;
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
