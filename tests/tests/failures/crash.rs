//! Crashes and the way back, on both backends, with real `shm` processes:
//!
//! * kill -9 of the server in the middle of a lockstep game: the client exits non-zero (not by
//!   a signal) within its timeout, with one line saying the peer stopped answering; `shm list`
//!   shows the leftover; `shm taller server --replace` takes over and a new client plays with
//!   it; after a second kill -9, `shm rm` removes the leftover.
//! * SIGTERM and SIGINT on the server in the middle of a game with a client attached: the
//!   server removes its segment, the client fails cleanly, nothing is left.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use shm_core::SegmentName;
use shm_tests::{Cleanup, shm, unique_name};

/// Far above what any step needs: a bound against hangs, never a timing to meet.
const BOUND: Duration = Duration::from_secs(60);

/// A running `shm` whose stdout lines arrive on a channel; killed on drop if still running.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) {
        let until = Instant::now() + BOUND;
        while Instant::now() < until {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let hit = line.starts_with(prefix);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
        }
        panic!("no line starting {prefix:?}; saw {:?}", self.seen);
    }

    fn kill(&mut self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: a signal to our own child, not yet waited for.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// Waits (bounded) for the exit; returns the status and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err)
                    .unwrap();
                return (status, err, start.elapsed());
            }
            assert!(start.elapsed() < BOUND, "still running after {BOUND:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn taller(backend: &str, side: &str, name: &str, args: &[&str]) -> Command {
    let mut cmd = shm();
    cmd.env_remove("SHM_BACKEND")
        .args(["--backend", backend, "taller", side, "--name", name])
        .args(args);
    cmd
}

const ENDLESS: [&str; 5] = ["--lockstep", "--rounds", "1000000000", "--timeout", "1s"];

/// A lockstep game that would last for ages, with both sides playing.
fn endless_game(backend: &str, name: &str, server_args: &[&str]) -> (Proc, Proc) {
    let mut args = ENDLESS.to_vec();
    args.extend_from_slice(server_args);
    let mut server = Proc::start(&mut taller(backend, "server", name, &args));
    server.wait_for("created ");
    let mut client = Proc::start(&mut taller(backend, "client", name, &ENDLESS));
    client.wait_for("opened ");
    (server, client)
}

fn sysv_key(name: &str) -> i32 {
    shm_sysv::key_for(&SegmentName::new(name).unwrap())
        .unwrap()
        .as_raw()
}

/// Does `shm list --json` show `name` on `backend` (System V by its key)?
fn listed(backend: &str, name: &str) -> bool {
    let out = shm().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = format!("{:#010x}", sysv_key(name) as u32);
    all.as_array().unwrap().iter().any(|s| {
        s["backend"] == backend
            && (s["name"] == name || (backend == "sysv" && s["key"] == key.as_str()))
    })
}

fn exists(backend: &str, name: &str) -> bool {
    shm()
        .args(["--backend", backend, "info", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// The client's exit after its server died: non-zero, by exit not by signal, within its
/// timeout (1 s; the bound only guards against a hang), one line saying why.
fn assert_client_gave_up(client: Proc) {
    let (status, err, took) = client.finish();
    assert!(
        status.code().is_some(),
        "client killed by a signal: {status:?}"
    );
    assert!(!status.success(), "client succeeded without its server");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("shm: error:"), "{err}");
    assert!(lines[0].contains("the peer stopped answering"), "{err}");
    println!("client, {took:?} after the kill: {}", lines[0]);
}

#[test]
fn kill_9_server_mid_game_then_list_replace_and_rm() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("crash-{backend}"));
        let _guards = (
            Cleanup::posix(name.clone()),
            Cleanup::sysv_key(sysv_key(&name)),
        );

        // 1. kill -9 of the server in the middle of the game.
        let (mut server, client) = endless_game(backend, &name, &[]);
        server.kill(libc::SIGKILL);
        drop(server);
        assert_client_gave_up(client);

        // 2. The leftover shows in `shm list`, and blocks a plain new server with a way out.
        assert!(
            listed(backend, &name),
            "{backend}: `shm list` misses the leftover"
        );
        let blocked = taller(backend, "server", &name, &["--lockstep", "--rounds", "1"])
            .output()
            .unwrap();
        let line = shm_tests::one_error_line("server over a leftover", &blocked);
        assert!(
            line.contains("--replace") && line.contains(&format!("rm {name}`")),
            "{line}"
        );

        // 3. `--replace` takes over: a new game is played to its end.
        let mut server = Proc::start(&mut taller(
            backend,
            "server",
            &name,
            &[
                "--lockstep",
                "--rounds",
                "3",
                "--timeout",
                "30s",
                "--replace",
            ],
        ));
        server.wait_for("created ");
        let client = Proc::start(&mut taller(
            backend,
            "client",
            &name,
            &["--lockstep", "--rounds", "3", "--timeout", "30s"],
        ));
        let (s, serr, _) = server.finish();
        let (c, cerr, _) = client.finish();
        assert!(s.success() && c.success(), "{backend}: {serr} / {cerr}");
        assert!(
            !exists(backend, &name),
            "{backend}: the replacing server left it"
        );

        // 4. Another kill -9 (server and client): `shm rm` is the way out.
        let (mut server, mut client) = endless_game(backend, &name, &[]);
        server.kill(libc::SIGKILL);
        client.kill(libc::SIGKILL);
        drop((server, client));
        assert!(exists(backend, &name));
        let rm = shm()
            .args(["--backend", backend, "rm", &name])
            .output()
            .unwrap();
        assert!(rm.status.success(), "{rm:?}");
        assert!(!exists(backend, &name) && !listed(backend, &name));
    }
}

#[test]
fn sigterm_and_sigint_on_the_server_mid_game_leave_nothing() {
    for backend in ["posix", "sysv"] {
        for sig in [libc::SIGTERM, libc::SIGINT] {
            let name = unique_name(&format!("midgame-{backend}-{sig}"));
            let _guards = (
                Cleanup::posix(name.clone()),
                Cleanup::sysv_key(sysv_key(&name)),
            );
            let (mut server, client) = endless_game(backend, &name, &[]);
            server.kill(sig);
            let (status, err, _) = server.finish();
            assert_eq!(status.code(), Some(128 + sig), "{backend} {sig}: {err}");
            assert!(err.contains(&format!("removed {name}")), "{err}");
            // The client loses its peer: a clean failure, not a crash.
            assert_client_gave_up(client);
            assert!(!exists(backend, &name), "{backend} {sig}: left behind");
            assert!(!listed(backend, &name), "{backend} {sig}: still listed");
        }
    }
}
