//! Hangs, signals and output: a FIFO planted at a name, a killed parent, stdout on a full disk
//! or a closed pipe, and every catchable signal at a random moment. No command may hang, panic
//! or leave anything half made.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shm_tests::{
    Cleanup, assert_nothing_left, one_error_line, run_bounded, shm, shm_exists, unique_name,
};

const BOUND: Duration = Duration::from_secs(30);

#[test]
fn a_fifo_at_the_name_never_blocks_read_or_open() {
    let name = unique_name("fifo");
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    let c = std::ffi::CString::new(path.as_str()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let _rm = Cleanup::path(path.clone());
    for args in [
        &["read", name.as_str()][..],
        &["write", name.as_str(), "x"],
        &["info", name.as_str()],
    ] {
        let out = run_bounded(shm().args(["--backend", "posix"]).args(args), BOUND);
        let line = one_error_line(&format!("{args:?}"), &out);
        assert!(
            line.contains("not a shared memory object (a FIFO)"),
            "{line}"
        );
    }
    assert!(
        std::fs::symlink_metadata(&path).is_ok(),
        "the FIFO is not ours to remove"
    );
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead: it only waits to be reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn the_demos_client_dies_with_a_demo_killed_by_sigkill() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("pdeath-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let mut demo = shm()
            .args(["--backend", backend, "taller", "demo", "--name", &name])
            .args(["--lockstep", "--rounds", "1000000000", "--timeout", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
        // The client's start line: it is running.
        loop {
            let l = lines.next().unwrap().unwrap();
            if l.starts_with("client | opened") {
                break;
            }
        }
        let client = children(demo.id());
        assert_eq!(client.len(), 1, "{client:?}");
        demo.kill().unwrap();
        demo.wait().unwrap();
        let start = Instant::now();
        while alive(client[0]) {
            assert!(
                start.elapsed() < BOUND,
                "the client plays on after its demo was killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGKILL leaves the segment (nothing can catch it): remove it as a user would.
        let _ = shm()
            .args(["--backend", backend, "rm", "-f", &name])
            .output();
    }
}

/// A descriptor for stdout that fails every write: /dev/full (ENOSPC), or a pipe whose
/// reading end is closed (EPIPE).
fn broken_stdout(kind: &str) -> Stdio {
    match kind {
        "full" => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ),
        _ => {
            let mut fds = [0; 2];
            // SAFETY: valid out-pointer for two descriptors.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: both are new descriptors we own; the reading end is closed at once.
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            drop(r);
            Stdio::from(w)
        }
    }
}

#[test]
fn a_broken_stdout_is_one_error_line_and_work_is_finished_or_undone() {
    for kind in ["full", "closed pipe"] {
        for backend in ["posix", "sysv"] {
            let b = ["--backend", backend];
            let names: Vec<String> = (0..3)
                .map(|i| unique_name(&format!("out{i}-{backend}")))
                .collect();
            let _g: Vec<Cleanup> = names.iter().map(|n| Cleanup::posix(n.clone())).collect();
            let _s: Vec<_> = names
                .iter()
                .map(|n| Cleanup::sysv_name(n.clone()))
                .collect();
            let run = |args: &[&str]| {
                let mut c = shm();
                c.args(b)
                    .args(args)
                    .stdout(broken_stdout(kind))
                    .stderr(Stdio::piped());
                c.output().unwrap()
            };
            // create: not reported, so not kept.
            let out = run(&["create", &names[0], "--size", "4096"]);
            let line = one_error_line(&format!("create >{kind}"), &out);
            assert!(line.contains("cannot write to stdout"), "{line}");
            assert!(
                !shm_exists(backend, &names[0]),
                "{backend}: create >{kind} kept the segment"
            );
            for n in &names {
                assert!(
                    shm()
                        .args(b)
                        .args(["create", n, "-s", "4096"])
                        .output()
                        .unwrap()
                        .status
                        .success()
                );
            }
            for args in [
                &["list"][..],
                &["info", &names[0]],
                &["info", &names[0], "--json"],
                &["write", &names[0], "data"],
            ] {
                let line = one_error_line(&format!("{args:?} >{kind}"), &run(args));
                assert!(line.contains("cannot write to stdout"), "{args:?}: {line}");
            }
            // rm of three: every one removed, then the write error reported.
            let out = run(&["rm", &names[0], &names[1], &names[2]]);
            assert_eq!(out.status.code(), Some(1), "{out:?}");
            assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
            for n in &names {
                assert!(!shm_exists(backend, n), "{backend}: rm >{kind} left {n}");
            }
        }
    }
    // compare too: its probes are gone after the error.
    let mut c = shm();
    c.args(["compare"])
        .stdout(broken_stdout("full"))
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let line = one_error_line("compare >/dev/full", &out);
    assert!(line.contains("cannot write to stdout"), "{line}");
    assert_nothing_left(&format!("shm-compare-{pid}-"), pid);
}

/// Sends `sig` to `child` after `delay`, and returns its exit code.
fn signal_after(
    cmd: &mut Command,
    delay: Duration,
    sig: libc::c_int,
) -> (Option<i32>, String, u32) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(delay);
    // SAFETY: a signal to our own child, not yet waited for.
    unsafe { libc::kill(pid as i32, sig) };
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    )
}

/// A pseudo-random delay from 0 to `max_us` microseconds (no crate needed for a test's jitter).
fn jitter(i: u64, max_us: u64) -> Duration {
    let x = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
    Duration::from_micros((x >> 11) % max_us)
}

#[test]
fn a_signal_during_create_leaves_a_whole_segment_or_none() {
    for backend in ["posix", "sysv"] {
        for i in 0..12u64 {
            let name = unique_name(&format!("sigcreate-{backend}"));
            let _g = Cleanup::posix(name.clone());
            let _s = Cleanup::sysv_name(name.clone());
            let sig = [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGUSR1][i as usize % 4];
            let (code, err, _) = signal_after(
                shm().args(["--backend", backend, "create", &name, "--size", "128MiB"]),
                jitter(i, 40_000),
                sig,
            );
            let info = shm()
                .args(["--backend", backend, "info", &name, "--json"])
                .output()
                .unwrap();
            match code {
                Some(0) => {
                    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
                    assert_eq!(v["size"], 128 << 20, "{backend}: a half-made segment: {v}");
                }
                // Ended by the signal after it was caught (128 + sig): before the segment was
                // whole nothing stays; a signal that comes once create has kept it (and said
                // so) leaves it whole.
                Some(c) if c == 128 + sig => {
                    if info.status.success() {
                        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
                        assert_eq!(
                            v["size"],
                            128 << 20,
                            "{backend}: interrupted create left a half-made {name}: {v}"
                        );
                    }
                }
                // Killed by it before the command took the signals over (at start-up): nothing
                // was made.
                None => {
                    assert!(
                        !info.status.success(),
                        "{backend}: killed create left {name}"
                    );
                }
                other => panic!("{backend}: create ended with {other:?}: {err}"),
            }
        }
    }
}

#[test]
fn any_catchable_signal_on_a_server_removes_its_segment() {
    for backend in ["posix", "sysv"] {
        for sig in [
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGHUP,
            libc::SIGVTALRM,
            libc::SIGRTMIN() + 3,
        ] {
            let name = unique_name(&format!("sigserver-{backend}"));
            let _g = Cleanup::posix(name.clone());
            let _s = Cleanup::sysv_name(name.clone());
            let mut server = shm()
                .args(["--backend", backend, "taller", "server", "--name", &name])
                .args(["--rounds", "100000", "--interval", "50ms"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
            assert!(lines.next().unwrap().unwrap().starts_with("created "));
            // SAFETY: a signal to our own child, not yet waited for.
            unsafe { libc::kill(server.id() as i32, sig) };
            let out = server.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(128 + sig),
                "{backend} signal {sig}: {out:?}"
            );
            assert!(
                !shm_exists(backend, &name),
                "{backend}: signal {sig} left the segment"
            );
        }
    }
}

#[test]
fn compare_stopped_by_a_signal_at_any_moment_leaves_nothing() {
    for i in 0..6u64 {
        let sig = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP][i as usize % 3];
        let (code, err, pid) = signal_after(shm().args(["compare"]), jitter(i, 1_500_000), sig);
        assert!(
            // Ended by the signal, finished first, or killed by it before it took the signals
            // over (None): in every case nothing of it may be left.
            code == Some(128 + sig) || code == Some(0) || code.is_none(),
            "compare: {code:?} {err}"
        );
        assert_nothing_left(&format!("shm-compare-{pid}-"), pid);
    }
}
