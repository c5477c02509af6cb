//! What the machine offers a test: the `shm` binary that cargo built, root, the C++ reference
//! program; and the one way a test says why it skips.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// The fields of `/proc/PID/stat` after the command name (which is in parentheses and may hold
/// blanks), so that index `i` is the field `i + 3` of proc(5): state, ppid, ... utime (11), stime
/// (12), starttime (19, clock ticks after boot). `pid` may be `"self"`. `None` once the process
/// is gone.
pub fn proc_stat(pid: impl std::fmt::Display) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks a second, the unit of `/proc/PID/stat`'s times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes a plain constant.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).expect("_SC_CLK_TCK")
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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
