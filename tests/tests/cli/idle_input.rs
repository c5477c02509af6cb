//! `shm send` and `shm pub` on an input that stays open and idle: a signal at any moment of
//! their life ends them within a bound (exit status 1 and "interrupted"; or, before their
//! handler is set, the signal's own death), and they leave nothing behind.
//!
//! The race of commit 203f512: a signal that came after the command's last look at the stop and
//! before its `read(2)` of the input began left that read blocked for as long as the input
//! stayed open (CI hung in `sysv_a_cut_stream_is_reported`). The widest such window is a wait
//! for a free slot: a signal during it is absorbed by the wait, a slot frees, and the read
//! follows. [`signal_while_waiting_for_a_slot`] opens that window on purpose (the reader
//! stopped, the ring full), so that the bug shows every time; [`signal_at_any_moment`] sweeps
//! the signal over the start, the open and the idle read.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{ChildStdin, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_core::{Backend, SegmentName};
use shm_tests::{Reaped, assert_nothing_left, wait_until};

use super::channel::{backend_of, count_output, named, spawn};

/// How long an interrupted command may take to end: generous for a busy machine (it honours a
/// stop within 100 ms); a hang shows as this bound passed, and the command is killed with -9.
const BOUND: Duration = Duration::from_secs(3);

/// Sweep iterations per command and backend.
const SWEEP: u64 = 32;

/// The sending command under test and its receiving peer.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    /// `shm send NAME` with `shm recv NAME`.
    Send,
    /// `shm pub NAME --wait-for 1` with `shm sub NAME`.
    Pub,
}

impl Cmd {
    fn sender<'a>(self, backend: &'a str, name: &'a str) -> Vec<&'a str> {
        match self {
            Cmd::Send => vec!["--backend", backend, "send", name],
            Cmd::Pub => vec!["--backend", backend, "pub", name, "--wait-for", "1"],
        }
    }

    fn receiver<'a>(self, backend: &'a str, name: &'a str) -> Vec<&'a str> {
        match self {
            Cmd::Send => vec!["--backend", backend, "recv", name],
            Cmd::Pub => vec!["--backend", backend, "sub", name],
        }
    }
}

/// A small xorshift, seeded from the clock (printed, so that a failing run can be told apart).
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("{what}: seed {seed:#x}");
        Self(seed)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How a signalled sender ended.
enum Ended {
    /// It saw the signal: exit status 1, "interrupted" on stderr.
    Caught,
    /// The signal came before its handler was set: the signal's own death (nothing was made
    /// yet: the handler is set before the channel is opened).
    Killed,
    /// Still running [`BOUND`] after the signal: killed with -9.
    Hung,
}

/// Waits at most [`BOUND`] for the signalled sender; checks how it ended (a hang is killed
/// with -9 and reported, never waited for).
fn judge(tx: &mut Reaped, what: &str) -> Ended {
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = tx.0.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > BOUND {
            let _ = tx.0.kill();
            let _ = tx.0.wait();
            println!("{what}: still running {BOUND:?} after SIGTERM: killed with -9");
            return Ended::Hung;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut err = String::new();
    tx.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    if status.signal() == Some(libc::SIGTERM) {
        assert!(err.is_empty(), "{what}: killed by SIGTERM, yet said: {err}");
        return Ended::Killed;
    }
    assert_eq!(status.code(), Some(1), "{what}: {status}: {err}");
    assert!(err.contains("interrupted"), "{what}: {status}: {err}");
    Ended::Caught
}

/// Ends the receiver (SIGTERM if it still waits: it removes a channel nobody joined), and
/// asserts that the name is gone and neither process left a segment.
fn settle(backend: &str, name: &str, mut rx: Reaped, tx_pid: u32, what: &str) {
    if rx.0.try_wait().unwrap().is_none() {
        rx.signal(libc::SIGTERM);
    }
    wait_until(BOUND, &format!("{what}: the receiver does not end"), || {
        rx.0.try_wait().unwrap().is_some()
    });
    let sname = SegmentName::new(name).unwrap();
    assert!(
        backend_of(backend).info(&sname).is_err(),
        "{what}: {name} is still there"
    );
    let prefix = name.trim_start_matches('/');
    assert_nothing_left(prefix, tx_pid);
    assert_nothing_left(prefix, rx.0.id());
}

/// SIGTERM to `shm send`/`shm pub` at delays spread over 0..50 ms after its start (a receiver
/// there, its input open and idle): each ends within [`BOUND`] with status 1 (or dies of the
/// signal before its handler is set), and nothing is left.
fn signal_at_any_moment(cmd: Cmd, backend: &str) {
    let what = format!("{cmd:?} on {backend}, signal at any moment");
    let mut rng = Rng::new(&what);
    let (mut caught, mut killed, mut hung) = (0, 0, 0);
    for i in 0..SWEEP {
        let (name, _guard) = named(backend, "cli-idle");
        let rx = spawn(&cmd.receiver(backend, &name), Stdio::null(), Stdio::null());
        let mut tx = spawn(&cmd.sender(backend, &name), Stdio::piped(), Stdio::null());
        let _input = tx.0.stdin.take().unwrap(); // open and idle until the end
        // Spread over 0..50 ms: one step of 50/SWEEP ms per iteration, plus a jitter.
        let us = i * 50_000 / SWEEP + rng.below(50_000 / SWEEP);
        std::thread::sleep(Duration::from_micros(us));
        tx.signal(libc::SIGTERM);
        let at = format!("{what}: SIGTERM {us} µs after start");
        match judge(&mut tx, &at) {
            Ended::Caught => caught += 1,
            Ended::Killed => killed += 1,
            Ended::Hung => hung += 1,
        }
        settle(backend, &name, rx, tx.0.id(), &at);
    }
    println!(
        "{what}: {SWEEP} runs: {caught} caught the signal, {killed} died of it before their handler, {hung} hung"
    );
    assert_eq!(hung, 0, "{what}: {hung} of {SWEEP} runs hung");
}

/// Bytes waiting in a pipe (`FIONREAD`), seen from its write end.
fn unread(input: &ChildStdin) -> libc::c_int {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int at the pointer, which is valid for it.
    let rc = unsafe { libc::ioctl(input.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n
}

/// What a process is blocked in, from `/proc/PID/syscall`: `None` while it runs.
fn blocked_in(pid: u32) -> Option<libc::c_long> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Is this system call a wait for the input (before the fix `read`, after it `poll`)?
fn waits_for_input(nr: libc::c_long) -> bool {
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_poll {
        return true;
    }
    nr == libc::SYS_read || nr == libc::SYS_ppoll
}

/// Feeds the sender one byte at a time until it has read them all and waits for a free slot
/// (the receiver is stopped, so the ring fills): its input is then empty and idle.
fn fill_the_ring(tx: &Reaped, input: &mut ChildStdin, what: &str) {
    let pid = tx.0.id();
    for _ in 0..1000 {
        input.write_all(b"x").unwrap();
        let t0 = Instant::now();
        // Read by the sender, then blocked twice in a row in the same wait (not running).
        let mut last = None;
        loop {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{what}: the sender neither reads nor waits"
            );
            std::thread::sleep(Duration::from_millis(2));
            let now = if unread(input) == 0 {
                blocked_in(pid)
            } else {
                None
            };
            if now.is_some() && now == last {
                break;
            }
            last = now;
        }
        if !waits_for_input(last.unwrap()) {
            return; // the ring is full: the sender waits for a slot
        }
    }
    panic!("{what}: 1000 messages and the sender never waited for a slot");
}

/// The widest window of the race: the receiver stopped (SIGSTOP) and the ring full, the
/// sender waits for a free slot with its input drained and idle; SIGTERM comes, then the
/// receiver goes on (SIGCONT) and frees a slot before the sender's next look at the stop. The
/// sender must not go on to block reading its idle input: it ends within [`BOUND`], status 1.
fn signal_while_waiting_for_a_slot(cmd: Cmd, backend: &str, runs: u32) {
    let what = format!("{cmd:?} on {backend}, signal while waiting for a slot");
    let mut rng = Rng::new(&what);
    let mut hung = 0;
    for _ in 0..runs {
        let (name, _guard) = named(backend, "cli-idle-full");
        let mut rx = spawn(&cmd.receiver(backend, &name), Stdio::null(), Stdio::piped());
        let (got, drain) = count_output(rx.0.stdout.take().unwrap());
        let mut tx = spawn(&cmd.sender(backend, &name), Stdio::piped(), Stdio::null());
        let mut input = tx.0.stdin.take().unwrap();
        // The first byte through: both ends are in the channel.
        input.write_all(b"x").unwrap();
        wait_until(
            Duration::from_secs(10),
            &format!("{what}: no byte came through"),
            || got.load(Ordering::Relaxed) > 0,
        );
        rx.signal(libc::SIGSTOP);
        fill_the_ring(&tx, &mut input, &what);
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        tx.signal(libc::SIGTERM);
        rx.signal(libc::SIGCONT);
        if let Ended::Hung = judge(&mut tx, &what) {
            hung += 1;
        }
        drop(input);
        settle(backend, &name, rx, tx.0.id(), &what);
        drain.join().unwrap();
    }
    println!("{what}: {runs} runs, {hung} hung");
    assert_eq!(
        hung, 0,
        "{what}: {hung} of {runs} runs hung on their idle input"
    );
}

/// Both: the sweep, then the widened window.
fn never_hangs(cmd: Cmd, backend: &str) {
    signal_at_any_moment(cmd, backend);
    signal_while_waiting_for_a_slot(cmd, backend, 3);
}

#[test]
fn posix_send_on_an_idle_input_stops_on_a_signal() {
    never_hangs(Cmd::Send, "posix");
}

#[test]
fn sysv_send_on_an_idle_input_stops_on_a_signal() {
    never_hangs(Cmd::Send, "sysv");
}

#[test]
fn posix_pub_on_an_idle_input_stops_on_a_signal() {
    never_hangs(Cmd::Pub, "posix");
}

#[test]
fn sysv_pub_on_an_idle_input_stops_on_a_signal() {
    never_hangs(Cmd::Pub, "sysv");
}
