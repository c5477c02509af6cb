//! `shm taller` end to end: real `shm` processes (and the reference C++ program) playing over
//! real POSIX and System V segments.
//!
//! Run `cargo build -p shm-cli` first when running this file alone (`cargo test --workspace`
//! builds the binary itself).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shm_core::SegmentName;
use shm_tests::{
    Cleanup, clock_ticks, proc_stat, reference_program, shm, signal, skip, unique_name,
};

/// Each backend, and whether the `shm` binary under test has it (a binary built with
/// `--no-default-features --features posix` has one).
fn compiled() -> &'static [(&'static str, bool)] {
    static COMPILED: OnceLock<Vec<(&'static str, bool)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        ["posix", "sysv"]
            .into_iter()
            .map(|b| {
                let probe = shm()
                    .args(["--backend", b, "taller", "client", "--name"])
                    .arg(unique_name("probe"))
                    .env_remove("SHM_BACKEND")
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&probe.stderr);
                (b, !err.contains("is not compiled into"))
            })
            .collect()
    })
}

/// The backends compiled into the `shm` binary under test; each one missing is skipped with
/// the reason printed.
fn backends(test: &str) -> Vec<&'static str> {
    let compiled = compiled();
    let mut out = Vec::new();
    for &(b, there) in compiled {
        if there {
            out.push(b);
        } else {
            skip(
                test,
                &format!("the shm binary was built without feature `{b}`"),
            );
        }
    }
    out
}

/// A process that runs longer than this hangs: it is killed and the test fails. Far above what
/// any run here needs, so that a slow machine never fails a test.
const HANG: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Processes whose output is read line by line while they run.

/// A running process; its stdout and stderr are collected by two threads. Dropping it kills the
/// process if it still runs, so a failing test leaves no process behind.
struct Running {
    what: String,
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a finished process printed.
struct Finished {
    what: String,
    status: ExitStatus,
    out: Vec<String>,
    err: Vec<String>,
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    })
}

fn start(cmd: &mut Command, what: &str) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        collect(child.stdout.take().unwrap(), Arc::clone(&out)),
        collect(child.stderr.take().unwrap(), Arc::clone(&err)),
    ];
    Running {
        what: what.to_owned(),
        child,
        out,
        err,
        readers,
    }
}

impl Running {
    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).unwrap()
    }

    fn dump(&self) -> String {
        format!(
            "{} printed:\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.out.lock().unwrap().join("\n"),
            self.err.lock().unwrap().join("\n")
        )
    }

    /// Waits until the process prints a line on stdout for which `want` holds, and returns it.
    /// Fails if the process exits first or runs into [`HANG`].
    fn wait_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.out.lock().unwrap().iter().find(|l| want(l)) {
                return line.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Give the readers a moment to deliver the last lines, then look once more.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(line) = self.out.lock().unwrap().iter().find(|l| want(l)) {
                    return line.clone();
                }
                panic!(
                    "{} exited ({status}) before printing the line waited for; {}",
                    self.what,
                    self.dump()
                );
            }
            assert!(
                start.elapsed() < HANG,
                "{} hangs (no such line after {HANG:?}); {}",
                self.what,
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit, at most `within`; kills it and fails when it overruns.
    fn finish_within(&mut self, within: Duration) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {within:?} (killed); {}",
                    self.what,
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The readers end at end of file; bound the wait in case a grandchild holds a pipe.
        let start = Instant::now();
        while self.readers.iter().any(|r| !r.is_finished()) && start.elapsed() < HANG {
            std::thread::sleep(Duration::from_millis(5));
        }
        Finished {
            what: self.what.clone(),
            status,
            out: self.out.lock().unwrap().clone(),
            err: self.err.lock().unwrap().clone(),
        }
    }

    fn finish(&mut self) -> Finished {
        self.finish_within(HANG)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Finished {
    fn dump(&self) -> String {
        format!(
            "{} exited with {}:\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.status,
            self.out.join("\n"),
            self.err.join("\n")
        )
    }

    fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "{}", self.dump());
        assert!(
            !self.err.iter().any(|l| l.contains("panicked")),
            "{}",
            self.dump()
        );
        self
    }

    /// A non-zero exit with one clear error line and no panic.
    fn assert_failure(&self) -> String {
        assert!(!self.status.success(), "{}", self.dump());
        assert!(
            self.status.code().is_some(),
            "killed by a signal; {}",
            self.dump()
        );
        let text = self.err.join("\n");
        assert!(
            !text.contains("panicked") && !text.contains("backtrace"),
            "{}",
            self.dump()
        );
        assert!(text.contains("shm: error: "), "{}", self.dump());
        text
    }

    fn has(&self, line: &str) -> bool {
        self.out.iter().any(|l| l == line)
    }

    fn last(&self) -> &str {
        self.out.last().map_or("", String::as_str)
    }

    /// The pairs of the "I am taller. MINE, OTHER" lines (after `prefix`), in order.
    fn taller(&self, prefix: &str) -> Vec<(i32, i32)> {
        self.out
            .iter()
            .filter_map(|l| l.strip_prefix(prefix)?.strip_prefix("I am taller. "))
            .map(|rest| {
                let (a, b) = rest.split_once(", ").unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Segments.

/// `shm --backend BACKEND taller SIDE --name NAME ARGS...`
fn taller(backend: &str, side: &str, name: &str, args: &[&str]) -> Command {
    let mut cmd = shm();
    cmd.args(["--backend", backend, "taller", side, "--name", name])
        .args(args)
        .env_remove("SHM_BACKEND");
    cmd
}

fn sysv_key(name: &str) -> i32 {
    shm_sysv::key_for(&SegmentName::new(name).unwrap())
        .unwrap()
        .as_raw()
}

/// Removes the segment `name` of `backend` when dropped (a test that fails leaves nothing).
fn guard(backend: &str, name: &str) -> Cleanup {
    match backend {
        "posix" => Cleanup::posix(name.to_owned()),
        _ => Cleanup::sysv_key(sysv_key(name)),
    }
}

/// True when the segment `name` of `backend` exists.
fn exists(backend: &str, name: &str) -> bool {
    match backend {
        "posix" => Path::new("/dev/shm").join(&name[1..]).exists(),
        _ => {
            // SAFETY: shmget with size 0 and no flags only looks the key up.
            unsafe { libc::shmget(sysv_key(name), 0, 0) >= 0 }
        }
    }
}

fn assert_gone(backend: &str, name: &str) {
    assert!(!exists(backend, name), "{backend} {name} was left behind");
}

// ---------------------------------------------------------------------------------------------
// The demo.

#[test]
fn demo_plays_both_sides_on_each_backend() {
    for backend in backends("demo_plays_both_sides_on_each_backend") {
        let name = unique_name(&format!("demo-{backend}"));
        let _guard = guard(backend, &name);
        let demo = start(
            &mut taller(backend, "demo", &name, &["--interval", "20ms"]),
            &format!("{backend} demo"),
        )
        .finish();
        demo.assert_success();
        let d = demo.dump();
        let starts = demo.out.first().map_or("", String::as_str);
        assert!(
            starts.starts_with(&format!("server | created {backend} segment {name}")),
            "{d}"
        );
        assert!(starts.contains("4096 bytes, mode 0600"), "{d}");
        if backend == "sysv" {
            assert!(
                starts.contains(&format!("(key 0x{:08x}, id ", sysv_key(&name))),
                "{d}"
            );
        }
        assert!(
            demo.out
                .iter()
                .any(|l| l.starts_with(&format!("client | opened {backend} segment {name}"))),
            "{d}"
        );
        for (side, peer) in [("server", "client"), ("client", "server")] {
            let prefix = format!("{side} | ");
            let moves = demo.taller(&prefix);
            assert!(!moves.is_empty(), "{side} never moved: {d}");
            assert!(moves.iter().all(|&(mine, other)| mine == other + 1), "{d}");
            for i in 0..10 {
                assert!(demo.has(&format!("{prefix}Checking {peer} {i}")), "{d}");
            }
            assert!(
                demo.out
                    .iter()
                    .any(|l| l.starts_with(&format!("{prefix}Quit {side}: "))),
                "{d}"
            );
        }
        assert_gone(backend, &name);
    }
}

#[test]
fn demo_in_lockstep_ends_on_the_exact_pair() {
    for backend in backends("demo_in_lockstep_ends_on_the_exact_pair") {
        let name = unique_name(&format!("demo-lock-{backend}"));
        let _guard = guard(backend, &name);
        let demo = start(
            &mut taller(backend, "demo", &name, &["--lockstep", "--rounds", "500"]),
            &format!("{backend} lockstep demo"),
        )
        .finish();
        demo.assert_success();
        assert!(
            demo.has("server | Quit server: 999, 1000"),
            "{}",
            demo.dump()
        );
        assert!(
            demo.has("client | Quit client: 999, 1000"),
            "{}",
            demo.dump()
        );
        // Only the start lines and the final pairs: no per-move lines without --verbose.
        assert_eq!(demo.out.len(), 4, "{}", demo.dump());
        assert_gone(backend, &name);
    }
}

// ---------------------------------------------------------------------------------------------
// Lockstep: two separate processes, deterministic values.

/// Plays `rounds` lockstep rounds between a server and a client process.
fn lockstep(backend: &str, name: &str, rounds: u64, extra: &[&str]) -> (Finished, Finished) {
    let rounds = rounds.to_string();
    let mut args = vec!["--lockstep", "--rounds", &rounds];
    args.extend_from_slice(extra);
    let mut server = start(
        &mut taller(backend, "server", name, &args),
        &format!("{backend} server {extra:?}"),
    );
    server.wait_line(|l| l.starts_with("created "));
    let mut client = start(
        &mut taller(backend, "client", name, &args),
        &format!("{backend} client {extra:?}"),
    );
    let c = client.finish();
    let s = server.finish();
    (s, c)
}

#[test]
fn lockstep_is_deterministic_on_each_backend_and_wait() {
    for backend in backends("lockstep_is_deterministic_on_each_backend_and_wait") {
        for wait in ["spin", "block", "hybrid"] {
            let name = unique_name(&format!("lock-{backend}-{wait}"));
            let _guard = guard(backend, &name);
            let (s, c) = lockstep(backend, &name, 1000, &["--wait", wait]);
            s.assert_success();
            c.assert_success();
            assert_eq!(s.last(), "Quit server: 1999, 2000", "{}", s.dump());
            assert_eq!(c.last(), "Quit client: 1999, 2000", "{}", c.dump());
            assert_eq!(
                s.out.len(),
                2,
                "start line and final pair only: {}",
                s.dump()
            );
            assert_eq!(
                c.out.len(),
                2,
                "start line and final pair only: {}",
                c.dump()
            );
            assert!(
                s.out[0].contains(&format!("in lockstep (wait {wait}")),
                "{}",
                s.dump()
            );
            assert_gone(backend, &name);
        }
    }
}

#[test]
fn lockstep_verbose_prints_every_move() {
    for backend in backends("lockstep_verbose_prints_every_move") {
        let name = unique_name(&format!("lock-verbose-{backend}"));
        let _guard = guard(backend, &name);
        let (s, c) = lockstep(backend, &name, 5, &["--verbose"]);
        s.assert_success();
        c.assert_success();
        let server: Vec<_> = (0..5).map(|k| (2 * k + 1, 2 * k)).collect();
        let client: Vec<_> = (0..5).map(|k| (2 * k + 2, 2 * k + 1)).collect();
        assert_eq!(s.taller(""), server, "{}", s.dump());
        assert_eq!(c.taller(""), client, "{}", c.dump());
        assert_eq!(s.last(), "Quit server: 9, 10");
        assert_eq!(c.last(), "Quit client: 9, 10");
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: leftover segment, missing server, a peer that dies.

#[test]
fn leftover_segment_is_named_with_the_way_out_and_replace_works() {
    for backend in backends("leftover_segment_is_named_with_the_way_out_and_replace_works") {
        let name = unique_name(&format!("leftover-{backend}"));
        let _guard = guard(backend, &name);
        // A leftover as real as it gets: a server killed before it could clean up.
        let mut dead = start(
            &mut taller(backend, "server", &name, &["--rounds", "1000"]),
            "server to kill",
        );
        dead.wait_line(|l| l.starts_with("created "));
        dead.child.kill().unwrap();
        dead.child.wait().unwrap();
        assert!(exists(backend, &name), "the killed server left nothing");

        let failed = start(
            &mut taller(
                backend,
                "server",
                &name,
                &["--rounds", "1", "--interval", "1ms"],
            ),
            "server over a leftover",
        )
        .finish();
        let text = failed.assert_failure();
        // `shm rm NAME`, with `--backend sysv` where the name is System V's.
        assert!(
            text.contains("`shm ") && text.contains(&format!("rm {name}`")),
            "{}",
            failed.dump()
        );
        assert!(text.contains("--replace"), "{}", failed.dump());
        assert!(failed.out.is_empty(), "{}", failed.dump());
        assert!(
            exists(backend, &name),
            "a failed server removed what it did not make"
        );

        let replaced = start(
            &mut taller(
                backend,
                "server",
                &name,
                &["--rounds", "1", "--interval", "1ms", "--replace"],
            ),
            "server with --replace",
        )
        .finish();
        replaced.assert_success();
        assert_eq!(replaced.last(), "Quit server: 1, 0", "{}", replaced.dump());
        assert_gone(backend, &name);
    }
}

#[test]
fn client_without_server_says_to_start_the_server() {
    for backend in backends("client_without_server_says_to_start_the_server") {
        for mode in [&[][..], &["--lockstep"][..]] {
            let name = unique_name(&format!("noserver-{backend}"));
            let failed =
                start(&mut taller(backend, "client", &name, mode), "client alone").finish();
            let text = failed.assert_failure();
            assert!(text.contains("start the server first"), "{}", failed.dump());
            assert!(text.contains(&name), "{}", failed.dump());
            assert!(failed.out.is_empty(), "{}", failed.dump());
            assert_gone(backend, &name);
        }
    }
}

/// Starts a lockstep game that would last for ages (`more`: its timeout, its wait strategy),
/// and returns both sides once both play.
fn endless_game(backend: &str, name: &str, more: &[&str]) -> (Running, Running) {
    let mut args = vec!["--lockstep", "--rounds", "1000000000"];
    args.extend(more);
    let mut server = start(&mut taller(backend, "server", name, &args), "server");
    server.wait_line(|l| l.starts_with("created "));
    let mut client = start(&mut taller(backend, "client", name, &args), "client");
    client.wait_line(|l| l.starts_with("opened "));
    std::thread::sleep(Duration::from_millis(100));
    (server, client)
}

/// A lockstep game whose server (`kill_server`) or client is killed with -9: the survivor fails
/// within a bound, saying that the peer stopped answering. A surviving server removes its
/// segment; a killed one cannot (the guard does).
fn lockstep_survivor_of_a_killed_peer(test: &str, kill_server: bool) {
    for backend in backends(test) {
        let name = unique_name(&format!("kill-{backend}"));
        let _guard = guard(backend, &name);
        let (server, client) = endless_game(backend, &name, &["--timeout", "1s"]);
        let (mut killed, mut survivor) = if kill_server {
            (server, client)
        } else {
            (client, server)
        };
        killed.child.kill().unwrap();
        killed.child.wait().unwrap();
        // Timeout 1s; anything under the bound is "no hang" (a loaded machine is slow).
        let s = survivor.finish_within(Duration::from_secs(30));
        let text = s.assert_failure();
        assert!(text.contains("the peer stopped answering"), "{}", s.dump());
        if !kill_server {
            assert_gone(backend, &name);
        }
    }
}

#[test]
fn lockstep_survivor_of_a_killed_client_fails_within_the_timeout() {
    lockstep_survivor_of_a_killed_peer(
        "lockstep_survivor_of_a_killed_client_fails_within_the_timeout",
        false,
    );
}

#[test]
fn lockstep_survivor_of_a_killed_server_fails_within_the_timeout() {
    lockstep_survivor_of_a_killed_peer(
        "lockstep_survivor_of_a_killed_server_fails_within_the_timeout",
        true,
    );
}

/// CPU time (user + system) that process `pid` has used so far, from /proc/PID/stat.
fn cpu_time(pid: libc::pid_t) -> Duration {
    let f = proc_stat(pid).unwrap();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / clock_ticks())
}

/// Each wait strategy on each backend, with a client that is stopped (SIGSTOP): the server
/// fails with a timeout naming the client's move, within a bound far above its timeout, and
/// removes its segment. A hybrid or blocking server sleeps meanwhile: it uses no more than a
/// tenth of a CPU (the target is 1%; the bound is loose so that a busy machine never fails it,
/// while a spinning waiter, at 100%, always would).
#[test]
fn lockstep_with_a_stopped_client_times_out_naming_the_move() {
    // Each game waits out its 3 s timeout.
    every_wait_strategy_at_once(
        "lockstep_with_a_stopped_client_times_out_naming_the_move",
        |backend, wait| {
            let name = unique_name(&format!("stopped-{backend}-{wait}"));
            let _guard = guard(backend, &name);
            let (mut server, client) =
                endless_game(backend, &name, &["--timeout", "3s", "--wait", wait]);
            signal(client.child.id(), libc::SIGSTOP);
            // The waiter's first millisecond may spin; then it sleeps until its deadline.
            std::thread::sleep(Duration::from_millis(200));
            let before = cpu_time(server.pid());
            let idle = Duration::from_millis(1500);
            std::thread::sleep(idle);
            let used = cpu_time(server.pid()).saturating_sub(before);
            let s = server.finish_within(Duration::from_secs(60));
            let text = s.assert_failure();
            assert!(text.contains("the peer stopped answering"), "{}", s.dump());
            assert!(
                text.contains("waited 3s for the client's move"),
                "{}",
                s.dump()
            );
            if wait != "spin" {
                assert!(
                    used <= idle / 10,
                    "{backend} {wait}: the server used {used:?} of CPU in {idle:?} while its peer was stopped; {}",
                    s.dump()
                );
            }
            assert_gone(backend, &name);
            drop(client); // killed (SIGKILL ends a stopped process too)
        },
    );
}

/// Runs `game` for each wait strategy on each backend, all at once (each game has its own
/// names), so that their timeouts are waited out together.
fn every_wait_strategy_at_once(test: &str, game: impl Fn(&'static str, &'static str) + Sync) {
    let games = backends(test)
        .into_iter()
        .flat_map(|backend| ["spin", "block", "hybrid"].map(|wait| (backend, wait)));
    std::thread::scope(|s| {
        for (backend, wait) in games {
            let game = &game;
            s.spawn(move || game(backend, wait));
        }
    });
}

/// Each wait strategy on each backend, with a server killed by SIGKILL: the client fails with
/// a timeout naming the server's move, and does not hang.
#[test]
fn lockstep_with_a_killed_server_times_out_naming_the_move() {
    // Each client waits out its 1 s timeout.
    every_wait_strategy_at_once(
        "lockstep_with_a_killed_server_times_out_naming_the_move",
        |backend, wait| {
            let name = unique_name(&format!("killed-{backend}-{wait}"));
            let _guard = guard(backend, &name);
            let (mut server, mut client) =
                endless_game(backend, &name, &["--timeout", "1s", "--wait", wait]);
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            let c = client.finish_within(Duration::from_secs(60));
            let text = c.assert_failure();
            assert!(
                text.contains("waited 1s for the server's move"),
                "{backend} {wait}: {}",
                c.dump()
            );
            // The killed server could not clean up; the guard removes its segment.
        },
    );
}

#[test]
fn lockstep_server_without_client_says_so() {
    for backend in backends("lockstep_server_without_client_says_so") {
        let name = unique_name(&format!("lonely-{backend}"));
        let _guard = guard(backend, &name);
        let s = start(
            &mut taller(
                backend,
                "server",
                &name,
                &["--lockstep", "--timeout", "200ms"],
            ),
            "lonely server",
        )
        .finish_within(Duration::from_secs(30));
        let text = s.assert_failure();
        assert!(
            text.contains("no client joined within 200ms"),
            "{}",
            s.dump()
        );
        assert_gone(backend, &name);
    }
}

// ---------------------------------------------------------------------------------------------
// Signals: the server removes its segment.

fn signal_server(backend: &str, sig: libc::c_int, args: &[&str], ready: &str) {
    let name = unique_name(&format!("signal-{backend}-{sig}"));
    let _guard = guard(backend, &name);
    let mut server = start(
        &mut taller(backend, "server", &name, args),
        &format!("{backend} server {args:?}"),
    );
    server.wait_line(|l| l.starts_with(ready));
    assert!(exists(backend, &name));
    signal(server.child.id(), sig);
    let s = server.finish_within(Duration::from_secs(30));
    assert_eq!(s.status.code(), Some(128 + sig), "{}", s.dump());
    assert!(
        s.err.iter().any(|l| l.contains(&format!("removed {name}"))),
        "{}",
        s.dump()
    );
    assert_gone(backend, &name);
}

#[test]
fn sigterm_and_sigint_on_the_server_leave_nothing_behind() {
    for backend in backends("sigterm_and_sigint_on_the_server_leave_nothing_behind") {
        for sig in [libc::SIGTERM, libc::SIGINT] {
            // Sleeping between rounds.
            signal_server(backend, sig, &["--rounds", "1000"], "I am taller. 1, 0");
            // Waiting in lockstep for a client that does not come.
            signal_server(
                backend,
                sig,
                &["--lockstep", "--timeout", "100s"],
                "created ",
            );
        }
    }
}

/// The processes whose command line holds `needle` (a unique segment name).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[test]
fn sigterm_on_the_demo_stops_the_client_and_removes_the_segment() {
    for backend in backends("sigterm_on_the_demo_stops_the_client_and_removes_the_segment") {
        let name = unique_name(&format!("demo-term-{backend}"));
        let _guard = guard(backend, &name);
        let mut demo = start(
            &mut taller(backend, "demo", &name, &["--rounds", "1000"]),
            &format!("{backend} demo"),
        );
        demo.wait_line(|l| l.starts_with("client | I am taller."));
        signal(demo.child.id(), libc::SIGTERM);
        let d = demo.finish_within(Duration::from_secs(30));
        assert_eq!(d.status.code(), Some(128 + libc::SIGTERM), "{}", d.dump());
        assert!(
            d.err.iter().any(|l| l.contains("stopped the client")),
            "{}",
            d.dump()
        );
        assert_gone(backend, &name);
        // The client was sent SIGTERM; it is gone soon after (bounded).
        let start = Instant::now();
        while !processes_with(&name).is_empty() {
            assert!(
                start.elapsed() < HANG,
                "the demo's client still runs: {:?}",
                processes_with(&name)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interop with the reference program, which hard-codes /test.shmem.

const REFERENCE_NAME: &str = "/test.shmem";

/// The two interop tests share /test.shmem: they never run at once.
static REFERENCE: Mutex<()> = Mutex::new(());

/// The lock and the reference program, or `None` (skipped, with the reason printed).
fn reference(test: &str) -> Option<(MutexGuard<'static, ()>, std::path::PathBuf)> {
    let lock = REFERENCE.lock().unwrap_or_else(|e| e.into_inner());
    if !compiled().contains(&("posix", true)) {
        skip(test, "the shm binary was built without feature `posix`");
        return None;
    }
    let program = match reference_program() {
        Ok(p) => p,
        Err(why) => {
            skip(test, &why);
            return None;
        }
    };
    if exists("posix", REFERENCE_NAME) {
        skip(
            test,
            "/dev/shm/test.shmem exists and this test did not make it (another run of the \
             reference program?); it is left alone",
        );
        return None;
    }
    Some((lock, program))
}

/// Both sides moved more than once, and each one's values rose.
fn assert_rose(f: &Finished, prefix: &str) {
    let moves = f.taller(prefix);
    assert!(moves.len() >= 2, "{}", f.dump());
    let (first, last) = (moves[0].0, moves[moves.len() - 1].0);
    assert!(last > first, "{}", f.dump());
}

/// The values of a "Quit SIDE: A, B" line.
fn quit_pair(f: &Finished, side: &str) -> (i32, i32) {
    let line = f
        .out
        .iter()
        .find_map(|l| l.strip_prefix(&format!("Quit {side}: ")))
        .unwrap_or_else(|| panic!("no Quit line; {}", f.dump()));
    let (a, b) = line.split_once(", ").unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn our_posix_server_plays_the_reference_client() {
    let test = "our_posix_server_plays_the_reference_client";
    let Some((_lock, program)) = reference(test) else {
        return;
    };
    let _guard = Cleanup::posix(REFERENCE_NAME.to_owned());
    let mut cmd = shm();
    cmd.args(["--backend", "posix", "taller", "server"]);
    let mut server = start(&mut cmd, "our server");
    server.wait_line(|l| l == "I am taller. 1, 0");
    let mut client = start(Command::new(&program).arg("client"), "reference client");
    let c = client.finish();
    let s = server.finish();
    c.assert_success();
    s.assert_success();
    assert!(s.out[0].starts_with("created posix segment /test.shmem, 4096 bytes, mode 0600"));
    assert!(s.has("Checking client 9"), "{}", s.dump());
    assert!(c.has("Checking server 9"), "{}", c.dump());
    assert_rose(&s, "");
    assert_rose(&c, "");
    let (a, b) = quit_pair(&s, "server");
    assert!(a > 0 && b > 0, "{}", s.dump());
    assert_gone("posix", REFERENCE_NAME);
}

#[test]
fn reference_server_plays_our_posix_client() {
    let test = "reference_server_plays_our_posix_client";
    let Some((_lock, program)) = reference(test) else {
        return;
    };
    let _guard = Cleanup::posix(REFERENCE_NAME.to_owned());
    let mut server = start(Command::new(&program).arg("server"), "reference server");
    // After this line the reference server has sized, mapped and initialized the segment.
    server.wait_line(|l| l == "I am taller. 1, 0");
    let mut cmd = shm();
    cmd.args(["--backend", "posix", "taller", "client"]);
    let mut client = start(&mut cmd, "our client");
    let c = client.finish();
    let s = server.finish();
    c.assert_success();
    s.assert_success();
    assert!(c.out[0].starts_with("opened posix segment /test.shmem, 4096 bytes"));
    assert!(s.has("Checking client 9"), "{}", s.dump());
    assert!(c.has("Checking server 9"), "{}", c.dump());
    // Our client never zeroes: its first move builds on the server's 1.
    assert_eq!(c.taller("")[0], (2, 1), "{}", c.dump());
    assert_rose(&s, "");
    assert_rose(&c, "");
    let (a, b) = quit_pair(&c, "client");
    assert!(a > 0 && b > 0, "{}", c.dump());
    assert_gone("posix", REFERENCE_NAME);
}
