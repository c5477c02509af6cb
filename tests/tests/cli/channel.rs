//! `shm send` and `shm recv` end to end: 1 GiB byte-exact between two processes on both
//! backends, either side first, a file argument, and a pipe-like end (`shm recv x | head`).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shm_tests::{Cleanup, Reaped, assert_nothing_left, shm, temp_path, unique_name, wait_until};

/// 1 MiB blocks: block `i` is a fixed pseudo-random MiB with `i` in its first 8 bytes, so that
/// a lost, repeated or reordered block shows.
const BLOCK: usize = 1 << 20;

fn base_block() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn block(base: &mut [u8], i: u64) -> &[u8] {
    base[..8].copy_from_slice(&i.to_le_bytes());
    base
}

pub(super) fn spawn(args: &[&str], stdin: Stdio, stdout: Stdio) -> Reaped {
    Reaped(
        shm()
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// A unique channel name for `test`, and the guard that removes it from `backend`.
pub(super) fn named(backend: &str, test: &str) -> (String, Cleanup) {
    let name = unique_name(test);
    let guard = Cleanup::on(backend_of(backend), name.clone());
    (name, guard)
}

/// `shm recv NAME` (its stdout piped), then `shm send NAME` (its stdin piped): the receiver,
/// the sender and the sender's input.
fn recv_and_send(backend: &str, name: &str) -> (Reaped, Reaped, ChildStdin) {
    let rx = spawn(
        &["--backend", backend, "recv", name],
        Stdio::null(),
        Stdio::piped(),
    );
    let mut tx = spawn(
        &["--backend", backend, "send", name],
        Stdio::piped(),
        Stdio::null(),
    );
    let input = tx.0.stdin.take().unwrap();
    (rx, tx, input)
}

/// Writes `chunk` to `input` again and again, in a thread, until a write fails (the command
/// stopped reading: EPIPE ends the thread).
fn feed_endlessly(mut input: ChildStdin, chunk: Vec<u8>) -> JoinHandle<()> {
    std::thread::spawn(move || while input.write_all(&chunk).is_ok() {})
}

/// Reads `out` to its end in a thread: the count of bytes read so far, and the thread.
pub(super) fn count_output(mut out: ChildStdout) -> (Arc<AtomicU64>, JoinHandle<()>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            seen.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    (count, reader)
}

/// Waits for a child and asserts it succeeded without a word on stderr.
fn finish(mut c: Reaped, what: &str) -> u32 {
    let pid = c.0.id();
    let status = c.0.wait().unwrap();
    let mut err = String::new();
    c.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{what} failed ({status}): {err}");
    assert!(err.is_empty(), "{what} said: {err}");
    pid
}

/// Streams `blocks` MiB through `shm send` (stdin) to `shm recv` (stdout), starting one of
/// them first, and checks every byte.
fn stream(backend: &str, blocks: u64, receiver_first: bool) {
    let (name, _guard) = named(backend, "cli-send");
    let recv_args = ["--backend", backend, "recv", &name];
    let send_args = ["--backend", backend, "send", &name];
    let start = |args: &[&str], stdin, stdout| spawn(args, stdin, stdout);
    let (mut rx, mut tx);
    if receiver_first {
        rx = start(&recv_args, Stdio::null(), Stdio::piped());
        std::thread::sleep(Duration::from_millis(100));
        tx = start(&send_args, Stdio::piped(), Stdio::null());
    } else {
        tx = start(&send_args, Stdio::piped(), Stdio::null());
        std::thread::sleep(Duration::from_millis(100));
        rx = start(&recv_args, Stdio::null(), Stdio::piped());
    }
    let t0 = Instant::now();
    let mut input = tx.0.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut base = base_block();
        for i in 0..blocks {
            input.write_all(block(&mut base, i)).unwrap();
        }
        // Dropping stdin ends the input.
    });
    let mut output = rx.0.stdout.take().unwrap();
    let mut base = base_block();
    let mut got = vec![0u8; BLOCK];
    for i in 0..blocks {
        output.read_exact(&mut got).unwrap();
        assert!(got == block(&mut base, i), "block {i} differs");
    }
    assert_eq!(output.read(&mut got).unwrap(), 0, "bytes after the end");
    writer.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{backend}: {blocks} MiB through shm send | shm recv ({} first) in {secs:.2} s: {:.2} GB/s",
        if receiver_first { "recv" } else { "send" },
        (blocks as f64 * BLOCK as f64) / secs / 1e9
    );
    let tx_pid = finish(tx, "shm send");
    let rx_pid = finish(rx, "shm recv");
    let prefix = name.trim_start_matches('/');
    assert_nothing_left(prefix, tx_pid);
    assert_nothing_left(prefix, rx_pid);
}

/// A file argument, sender first, received into a file: compared byte for byte.
fn file_argument(backend: &str) {
    let (name, _guard) = named(backend, "cli-file");
    let dir = temp_path("cli-channel");
    std::fs::create_dir_all(&dir).unwrap();
    let _rm = Cleanup::path(dir.clone());
    let src = dir.join("in.bin");
    let dst = dir.join("out.bin");
    {
        let mut f = std::fs::File::create(&src).unwrap();
        let mut base = base_block();
        for i in 0..64 {
            f.write_all(block(&mut base, i)).unwrap();
        }
        f.write_all(b"and an odd tail").unwrap();
    }
    let tx = spawn(
        &["--backend", backend, "send", &name, src.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let rx = spawn(
        &["--backend", backend, "recv", &name],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&dst).unwrap()),
    );
    let tx_pid = finish(tx, "shm send FILE");
    let rx_pid = finish(rx, "shm recv > FILE");
    assert!(
        std::fs::read(&src).unwrap() == std::fs::read(&dst).unwrap(),
        "the copy differs"
    );
    let prefix = name.trim_start_matches('/');
    assert_nothing_left(prefix, tx_pid);
    assert_nothing_left(prefix, rx_pid);
}

/// `yes | shm send x` and `shm recv x | head -c 10`: both end cleanly, status 0, no message.
fn ends_like_a_pipe(backend: &str) {
    let (name, _guard) = named(backend, "cli-head");
    let (mut rx, tx, input) = recv_and_send(backend, &name);
    let writer = feed_endlessly(input, b"y\n".repeat(4096));
    let mut out = rx.0.stdout.take().unwrap();
    let mut ten = [0u8; 10];
    out.read_exact(&mut ten).unwrap();
    assert_eq!(&ten, b"y\ny\ny\ny\ny\n");
    drop(out); // as head does after 10 bytes
    let rx_pid = finish(rx, "shm recv | head");
    let tx_pid = finish(tx, "shm send (receiver gone)");
    writer.join().unwrap();
    let prefix = name.trim_start_matches('/');
    assert_nothing_left(prefix, tx_pid);
    assert_nothing_left(prefix, rx_pid);
}

#[test]
fn posix_one_gib_receiver_first() {
    stream("posix", 1024, true);
}

#[test]
fn posix_sender_first() {
    stream("posix", 256, false);
}

#[test]
fn sysv_one_gib_sender_first() {
    stream("sysv", 1024, false);
}

#[test]
fn sysv_receiver_first() {
    stream("sysv", 256, true);
}

#[test]
fn posix_file_argument() {
    file_argument("posix");
}

#[test]
fn sysv_file_argument() {
    file_argument("sysv");
}

#[test]
fn posix_ends_like_a_pipe() {
    ends_like_a_pipe("posix");
}

#[test]
fn sysv_ends_like_a_pipe() {
    ends_like_a_pipe("sysv");
}

/// A stranger's segment under the name: refused with a clear error, and left alone.
#[test]
fn a_stranger_segment_is_refused() {
    let (name, _guard) = named("posix", "cli-stranger");
    let (_, _) = shm_tests::shm_ok(&["create", &name, "--size", "4096"]);
    let out = shm()
        .args(["recv", &name])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a channel"), "{err}");
    shm_tests::shm_ok(&["rm", &name]);
}

pub(super) fn backend_of(backend: &str) -> Box<dyn shm_core::DynBackend> {
    match backend {
        "posix" => Box::new(shm_posix::Posix::new()),
        _ => Box::new(shm_sysv::SysV::new()),
    }
}

/// Ctrl-C on a `shm recv` that made the channel and still waits for a sender: it stops, says
/// so, and removes the channel (nobody else would).
fn ctrl_c_removes_an_unjoined_channel(backend: &str) {
    signal_removes_an_unjoined_channel(backend, libc::SIGINT);
}

/// As Ctrl-C, for every other catchable signal that would end the process: send and recv
/// caught 7 only, and SIGPWR, SIGIO, SIGVTALRM or a real-time signal left the channel behind
/// (issue 17 item 12).
fn every_terminating_signal_removes_an_unjoined_channel(backend: &str) {
    for sig in [
        libc::SIGPWR,
        libc::SIGIO,
        libc::SIGVTALRM,
        libc::SIGXCPU,
        libc::SIGRTMIN() + 3,
        libc::SIGRTMAX(),
    ] {
        signal_removes_an_unjoined_channel(backend, sig);
    }
}

fn signal_removes_an_unjoined_channel(backend: &str, sig: libc::c_int) {
    use shm_core::{Backend, SegmentName};
    let (name, _guard) = named(backend, "cli-ctrl-c");
    let b = backend_of(backend);
    let sname = SegmentName::new(&name).unwrap();
    let mut rx = spawn(
        &["--backend", backend, "recv", &name],
        Stdio::null(),
        Stdio::null(),
    );
    let size = shm_channel::Options::new(32, 64 * 1024)
        .segment_size()
        .unwrap() as u64;
    // A POSIX segment exists at size 0 a moment before it is sized: wait for the size.
    wait_until(
        Duration::from_secs(10),
        &format!("recv made no channel of {size} bytes"),
        || b.info(&sname).is_ok_and(|i| i.size == size),
    );
    // While it waits, `shm list` shows what the channel is made of: one segment of its name,
    // sized for its header and slots (System V lists it by key).
    let (_, out) = shm_tests::shm_ok(&["--backend", backend, "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = format!(
        "{:#010x}",
        shm_sysv::key_for(&sname).unwrap().as_raw() as u32
    );
    let shown = list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| (s["name"] == name.as_str() || s["key"] == key.as_str()) && s["size"] == size);
    assert!(shown, "{name} ({size} bytes) not in shm list: {list}");
    rx.signal(sig);
    let status = rx.0.wait().unwrap();
    let mut err = String::new();
    rx.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "signal {sig}: {status}");
    assert!(err.contains("interrupted"), "signal {sig}: {status}: {err}");
    assert!(
        b.info(&sname).is_err(),
        "signal {sig}: the channel is still there"
    );
}

#[test]
fn posix_every_terminating_signal_removes_an_unjoined_channel() {
    every_terminating_signal_removes_an_unjoined_channel("posix");
}

#[test]
fn sysv_every_terminating_signal_removes_an_unjoined_channel() {
    every_terminating_signal_removes_an_unjoined_channel("sysv");
}

/// Waits (at most `within`) for a child to end: its status, how long it took, its stderr.
pub(super) fn ends_within(
    c: &mut Reaped,
    within: Duration,
) -> (std::process::ExitStatus, Duration, String) {
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = c.0.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < within, "still running {within:?} later");
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t0.elapsed();
    let mut err = String::new();
    if let Some(mut e) = c.0.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (status, took, err)
}

/// `shm send` killed by SIGTERM in the middle of a stream: `shm recv` says that the stream was
/// cut and exits non-zero (it exited 0 holding part of it) (issue 17 item 3). Killed by SIGKILL,
/// recv says it died.
fn a_cut_stream_is_reported(backend: &str) {
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        cut_by(backend, sig);
    }
}

fn cut_by(backend: &str, sig: libc::c_int) {
    let (name, _guard) = named(backend, "cli-cut");
    let (mut rx, mut tx, mut input) = recv_and_send(backend, &name);
    let mut base = base_block();
    for i in 0..2 {
        input.write_all(block(&mut base, i)).unwrap();
    }
    // Both MiB went through; the input stays open: the stream is not over.
    let mut out = rx.0.stdout.take().unwrap();
    let mut got = vec![0u8; 2 * BLOCK];
    out.read_exact(&mut got).unwrap();
    tx.signal(sig);
    let (st, _, _) = ends_within(&mut tx, Duration::from_secs(20));
    assert!(!st.success(), "send killed mid-stream exited {st}");
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    let (st, _, err) = ends_within(&mut rx, Duration::from_secs(20));
    assert!(!st.success(), "recv of a cut stream exited {st}: {err}");
    assert!(err.contains("incomplete"), "{err}");
    if sig == libc::SIGKILL {
        assert!(err.contains("died"), "{err}");
    }
    drop(input);
}

/// The other ways a stream ends badly, each said by an exit status and a line: `shm send`
/// that cannot read its input (here a directory) ends the stream as cut, and recv says it is
/// incomplete; `shm recv` killed with -9 while data flows makes send exit non-zero, saying the
/// receiver died (issue 17 item 3).
fn the_other_bad_endings_are_reported(backend: &str) {
    use shm_core::{Backend, SegmentName};
    // The input fails.
    let (name, _guard) = named(backend, "cli-eisdir");
    let mut rx = spawn(
        &["--backend", backend, "recv", &name],
        Stdio::null(),
        Stdio::null(),
    );
    // The receiver makes the channel first (a sender that made it and failed at once would
    // remove it, and recv would wait for another).
    let sname = SegmentName::new(&name).unwrap();
    let b = backend_of(backend);
    wait_until(Duration::from_secs(10), "recv made no channel", || {
        b.info(&sname).is_ok()
    });
    let dir = temp_path("cli-eisdir");
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = Cleanup::path(dir.clone());
    let mut tx = spawn(
        &["--backend", backend, "send", &name, dir.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    let (st, _, err) = ends_within(&mut tx, Duration::from_secs(20));
    assert!(
        !st.success(),
        "send of an unreadable input exited {st}: {err}"
    );
    assert!(err.contains("cannot read the input"), "{err}");
    let (st, _, err) = ends_within(&mut rx, Duration::from_secs(20));
    assert!(
        !st.success(),
        "recv of a stream whose input failed exited {st}: {err}"
    );
    assert!(err.contains("incomplete"), "{err}");
    // The receiver dies.
    let (name, _guard) = named(backend, "cli-recv-killed");
    let (mut rx, mut tx, input) = recv_and_send(backend, &name);
    let writer = feed_endlessly(input, base_block());
    let mut out = rx.0.stdout.take().unwrap();
    let mut got = vec![0u8; 2 * BLOCK];
    out.read_exact(&mut got).unwrap();
    rx.signal(libc::SIGKILL);
    let (st, _, err) = ends_within(&mut tx, Duration::from_secs(20));
    assert!(!st.success(), "send to a killed recv exited {st}: {err}");
    assert!(err.contains("receiver") && err.contains("died"), "{err}");
    drop(out);
    writer.join().unwrap();
}

#[test]
fn posix_the_other_bad_endings_are_reported() {
    the_other_bad_endings_are_reported("posix");
}

#[test]
fn sysv_the_other_bad_endings_are_reported() {
    the_other_bad_endings_are_reported("sysv");
}

#[test]
fn posix_a_cut_stream_is_reported() {
    a_cut_stream_is_reported("posix");
}

#[test]
fn sysv_a_cut_stream_is_reported() {
    a_cut_stream_is_reported("sysv");
}

/// `shm recv` that cannot write (a full disk, a closed stdout) fails, and `shm send` learns it
/// and exits non-zero (it exited 0) (issue 17 item 3).
fn a_failing_recv_fails_send(backend: &str) {
    for closed in [false, true] {
        let (name, _guard) = named(backend, "cli-full");
        let mut rx = if closed {
            // A stdout closed for writing (open for reading only). (`>&-` cannot fail: Rust's
            // runtime opens /dev/null on a closed standard descriptor at start.)
            let mut c = std::process::Command::new("sh");
            c.args(["-c", "exec \"$0\" --backend \"$1\" recv \"$2\" 1</dev/null"])
                .arg(shm_tests::shm_bin())
                .args([backend, &name])
                .stdin(Stdio::null())
                .stderr(Stdio::piped());
            Reaped(c.spawn().unwrap())
        } else {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            spawn(
                &["--backend", backend, "recv", &name],
                Stdio::null(),
                Stdio::from(full),
            )
        };
        let mut tx = spawn(
            &["--backend", backend, "send", &name],
            Stdio::piped(),
            Stdio::null(),
        );
        let mut input = tx.0.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let mut base = base_block();
            for i in 0..4 {
                if input.write_all(block(&mut base, i)).is_err() {
                    break;
                }
            }
        });
        let (st, _, err) = ends_within(&mut rx, Duration::from_secs(30));
        assert!(!st.success(), "recv (closed: {closed}) exited {st}: {err}");
        assert!(err.contains("cannot write to stdout"), "{err}");
        let (st, _, err) = ends_within(&mut tx, Duration::from_secs(30));
        assert!(
            !st.success(),
            "send to a failed recv (closed: {closed}) exited {st}: {err}"
        );
        assert!(err.contains("receiver failed"), "{err}");
        writer.join().unwrap();
    }
}

#[test]
fn posix_a_failing_recv_fails_send() {
    a_failing_recv_fails_send("posix");
}

#[test]
fn sysv_a_failing_recv_fails_send() {
    a_failing_recv_fails_send("sysv");
}

/// SIGTERM, SIGINT or SIGHUP to a `shm recv` while data keeps flowing: it stops within a
/// bounded time (it looked at the stop only when no message came), and the sender learns that
/// the receiver failed (issue 17 item 8).
fn recv_stops_while_data_flows(backend: &str) {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let (name, _guard) = named(backend, "cli-flowing");
        let (mut rx, mut tx, input) = recv_and_send(backend, &name);
        let writer = feed_endlessly(input, b"y\n".repeat(32768));
        let (drained, drain) = count_output(rx.0.stdout.take().unwrap());
        wait_until(Duration::from_secs(30), "no data flows", || {
            drained.load(Ordering::Relaxed) >= 8 << 20
        });
        rx.signal(sig);
        let (st, took, err) = ends_within(&mut rx, Duration::from_secs(10));
        println!("{backend}: recv stopped {took:?} after signal {sig} while data flowed");
        assert!(!st.success(), "{st}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        let (st, _, err) = ends_within(&mut tx, Duration::from_secs(10));
        assert!(
            !st.success(),
            "send to an interrupted recv exited {st}: {err}"
        );
        writer.join().unwrap();
        drain.join().unwrap();
    }
}

#[test]
fn posix_recv_stops_while_data_flows() {
    recv_stops_while_data_flows("posix");
}

#[test]
fn sysv_recv_stops_while_data_flows() {
    recv_stops_while_data_flows("sysv");
}

#[test]
fn posix_ctrl_c_removes_an_unjoined_channel() {
    ctrl_c_removes_an_unjoined_channel("posix");
}

#[test]
fn sysv_ctrl_c_removes_an_unjoined_channel() {
    ctrl_c_removes_an_unjoined_channel("sysv");
}

/// `shm serve NAME -- CMD` until its first line (it serves from then on).
fn serve(backend: &str, name: &str, cmd: &[&str]) -> Reaped {
    let mut args = vec!["--backend", backend, "serve", name, "--"];
    args.extend(cmd);
    let mut s = spawn(&args, Stdio::null(), Stdio::piped());
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(s.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.starts_with(&format!("serving {name} ({backend})")),
        "{line}"
    );
    s
}

/// Ctrl-C on `shm serve`: it ends with status 0 (and removes its service); its pid.
fn stop_serving(mut server: Reaped) -> u32 {
    let pid = server.0.id();
    server.signal(libc::SIGINT);
    let (status, _, err) = ends_within(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}: {err}");
    pid
}

/// `shm call` with `args` after the name: its status, stdout and stderr.
fn call(backend: &str, name: &str, args: &[&str]) -> std::process::Output {
    shm()
        .args(["--backend", backend, "call", name])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `shm serve` answers `shm call`s from 4 processes at once, each its own answer (three rounds
/// of four, stdin or an argument as the request); Ctrl-C stops it, status 0, nothing left.
fn serve_answers_four_callers_at_once(backend: &str) {
    let (name, _guard) = named(backend, "cli-serve");
    let server = serve(backend, &name, &["tr", "a-z", "A-Z"]);
    for round in 0..3 {
        let calls: Vec<_> = (0..4)
            .map(|k| {
                let data = format!("caller {k} round {round} $(id) {}", "x".repeat(k * 300));
                // Even calls take the request from stdin, odd ones as the argument.
                let mut cmd = shm();
                cmd.args(["--backend", backend, "call", &name])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                if k % 2 == 1 {
                    cmd.arg(&data).stdin(Stdio::null());
                }
                let mut c = cmd.spawn().unwrap();
                if let Some(mut stdin) = c.stdin.take() {
                    stdin.write_all(data.as_bytes()).unwrap();
                }
                (data, c)
            })
            .collect();
        for (data, c) in calls {
            let out = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{data}: {err}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), data.to_uppercase());
        }
    }
    let pid = stop_serving(server);
    assert_nothing_left(name.trim_start_matches('/'), pid);
    let out = call(backend, &name, &["late"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no service {name} is running")),
        "{err}"
    );
}

/// A CMD that fails fails the call: `shm call` exits non-zero with CMD's status and the last
/// line of its stderr, and serve goes on. CMD runs directly: one word with a space in it is a
/// program of that name, never a shell command line.
fn a_failing_command_fails_the_call(backend: &str) {
    let (name, _guard) = named(backend, "cli-serve-fail");
    let server = serve(backend, &name, &["sh", "-c", "cat; echo oops >&2; exit 3"]);
    for _ in 0..2 {
        let out = call(backend, &name, &["hi"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        assert!(
            err.contains("the server failed the call: \"sh\" exited with status 3: oops"),
            "{err}"
        );
    }
    stop_serving(server);
    let (name, _guard) = named(backend, "cli-serve-noshell");
    let server = serve(backend, &name, &["echo hi"]);
    let out = call(backend, &name, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot run \"echo hi\""), "{err}");
    stop_serving(server);
}

#[test]
fn posix_serve_answers_four_callers_at_once() {
    serve_answers_four_callers_at_once("posix");
}

#[test]
fn sysv_serve_answers_four_callers_at_once() {
    serve_answers_four_callers_at_once("sysv");
}

#[test]
fn posix_a_failing_command_fails_the_call() {
    a_failing_command_fails_the_call("posix");
}

#[test]
fn sysv_a_failing_command_fails_the_call() {
    a_failing_command_fails_the_call("sysv");
}
