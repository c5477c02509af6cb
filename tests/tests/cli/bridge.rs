//! `shm bridge` between two simulated hosts: each side runs in its own IPC and mount
//! namespaces with a private /dev/shm (so no segment is shared), and the two bridges talk over
//! 127.0.0.1 only. 256 MiB cross byte-exact on POSIX and System V; the end of a stream travels
//! (complete, aborted); a killed bridge is a dead peer on its own side, and the far side fails
//! as aborted; nothing is left in either namespace. Needs root (unshare, mount): skips with the
//! reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shm_tests::{Reaped, is_root, shm_bin, skip, unique_name};

/// How long any one process of these tests may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(180);

/// Why namespaces cannot be made here, if they cannot.
fn namespaces_unavailable() -> Option<String> {
    if !is_root() {
        return Some("needs root (unshare -i -m and a tmpfs mount)".to_owned());
    }
    let out = Command::new("unshare")
        .args([
            "-i",
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs /dev/shm",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "unshare -i -m with a tmpfs on /dev/shm is not allowed here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare cannot run: {e}")),
    }
}

/// One simulated host: a process that holds a new IPC and mount namespace with its own tmpfs
/// on /dev/shm; commands enter it with nsenter (which execs them: the child is the program).
struct Host {
    holder: Reaped,
}

impl Host {
    fn new() -> Host {
        let mut holder = Command::new("unshare")
            .args([
                "-i",
                "-m",
                "sh",
                "-c",
                "mount -t tmpfs -o size=512m tmpfs /dev/shm && echo ready && exec sleep 100000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = [0u8; 6];
        holder.stdout.take().unwrap().read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ready\n");
        Host {
            holder: Reaped(holder),
        }
    }

    /// A command run inside this host's namespaces.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.holder.0.id().to_string(),
            "-i",
            "-m",
            "--",
            program,
        ]);
        c
    }

    /// `shm ARGS` inside this host, stderr piped.
    fn shm(&self, args: &[&str], stdin: Stdio, stdout: Stdio) -> Proc {
        let child = self
            .command(shm_bin().to_str().unwrap())
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Proc(Reaped(child))
    }

    /// What this host's /dev/shm and System V table hold.
    fn leftovers(&self) -> String {
        let out = self
            .command("sh")
            .args(["-c", "ls -A /dev/shm; tail -n +2 /proc/sysvipc/shm"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    fn assert_nothing_left(&self, which: &str) {
        let left = self.leftovers();
        assert!(left.trim().is_empty(), "left on host {which}:\n{left}");
    }
}

/// A process of a test; killed and reaped when dropped.
struct Proc(Reaped);

impl Proc {
    /// Waits (at most [`PATIENCE`]) for the exit; its success and stderr.
    fn wait(&mut self, what: &str) -> (bool, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.0.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < PATIENCE,
                "{what} did not end within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        if let Some(mut e) = self.0.0.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.success(), err)
    }

    fn ok(&mut self, what: &str) -> String {
        let (ok, err) = self.wait(what);
        assert!(ok, "{what} failed: {err}");
        err
    }

    fn fails(&mut self, what: &str) -> String {
        let (ok, err) = self.wait(what);
        assert!(!ok, "{what} succeeded, but should have failed: {err}");
        err
    }

    /// As [`wait`](Self::wait), with the exit code too.
    fn wait_code(&mut self, what: &str) -> (bool, String, Option<i32>) {
        let (ok, err) = self.wait(what);
        let code = self.0.0.try_wait().unwrap().and_then(|s| s.code());
        (ok, err, code)
    }

    fn term(&mut self) {
        // SAFETY: kill takes plain values; the pid is this test's unreaped child.
        unsafe { libc::kill(self.0.0.id() as i32, libc::SIGTERM) };
    }

    fn kill9(&mut self) {
        // SAFETY: kill takes plain values; the pid is this test's unreaped child.
        unsafe { libc::kill(self.0.0.id() as i32, libc::SIGKILL) };
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bytes the streaming tests send: pseudo-random 1 MiB blocks (a lost, repeated or
/// reordered message shows), then an odd tail (so the last message is not a whole slot).
struct Pattern(u64);

const BLOCK: usize = 1 << 20;
const TAIL: &[u8] = b"and an odd tail";

impl Pattern {
    fn new() -> Pattern {
        Pattern(0x9e37_79b9_7f4a_7c15)
    }

    /// The next block.
    fn fill(&mut self, block: &mut [u8]) {
        for b in block.chunks_exact_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            b.copy_from_slice(&self.0.to_le_bytes());
        }
    }
}

/// Writes `mib` blocks of the pattern and the tail to `w`, then closes it (the end of the input).
fn feed_pattern(mut w: impl Write, mib: usize) -> std::io::Result<()> {
    let mut p = Pattern::new();
    let mut block = vec![0u8; BLOCK];
    for _ in 0..mib {
        p.fill(&mut block);
        w.write_all(&block)?;
    }
    w.write_all(TAIL)
}

/// Reads `r` to its end and checks that it is exactly `mib` blocks of the pattern and the tail,
/// in constant memory; an error says where it first differs.
fn check_pattern(mut r: impl Read, mib: usize) -> Result<(), String> {
    let mut p = Pattern::new();
    let mut want = vec![0u8; BLOCK];
    let mut got = vec![0u8; BLOCK];
    for i in 0..mib {
        p.fill(&mut want);
        r.read_exact(&mut got)
            .map_err(|e| format!("block {i} of {mib}: {e}"))?;
        if got != want {
            return Err(format!("block {i} of {mib} differs"));
        }
    }
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).map_err(|e| e.to_string())?;
    if rest != TAIL {
        return Err(format!("the tail differs: {} bytes", rest.len()));
    }
    Ok(())
}

/// Two hosts, a bridge pair between them on a free port, and a channel name.
struct Pair {
    a: Host,
    b: Host,
    name: String,
    backend: &'static str,
    port: u16,
}

impl Pair {
    fn new(test: &str, backend: &'static str) -> Pair {
        Pair {
            a: Host::new(),
            b: Host::new(),
            name: unique_name(test),
            backend,
            port: free_port(),
        }
    }

    fn args<'s>(&'s self, rest: &[&'s str]) -> Vec<&'s str> {
        let mut v = vec!["--backend", self.backend];
        v.extend_from_slice(rest);
        v
    }

    fn bridge_out(&self) -> Proc {
        let listen = format!("tcp/127.0.0.1:{}", self.port);
        let args = self.args(&["bridge", "out", &self.name, "--listen", &listen]);
        self.a.shm(&args, Stdio::null(), Stdio::null())
    }

    fn bridge_in(&self) -> Proc {
        self.bridge_in_to(self.port)
    }

    /// `bridge in` connecting to `port` (a [`Proxy`]'s, or the `out` bridge's).
    fn bridge_in_to(&self, port: u16) -> Proc {
        let connect = format!("tcp/127.0.0.1:{port}");
        let args = self.args(&["bridge", "in", &self.name, "--connect", &connect]);
        self.b.shm(&args, Stdio::null(), Stdio::null())
    }

    fn recv(&self, stdout: Stdio) -> Proc {
        self.b
            .shm(&self.args(&["recv", &self.name]), Stdio::null(), stdout)
    }

    fn assert_nothing_left(&self) {
        self.a.assert_nothing_left("A");
        self.b.assert_nothing_left("B");
    }
}

/// What the byte-exact tests move: the 256 MiB (about 2 s a backend on the debug
/// build), `SHM_BRIDGE_TEST_MIB` to change it.
fn stream_mib() -> usize {
    std::env::var("SHM_BRIDGE_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// send on A (its stdin fed by the test), bridge out on A, bridge in on B, recv on B (its
/// stdout read by the test): the bytes cross exactly, and every process ends with status 0.
fn stream_crosses(test: &str, backend: &'static str) {
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let mib = stream_mib();
    let p = Pair::new(test, backend);
    let t0 = Instant::now();
    let mut send =
        p.a.shm(&p.args(&["send", &p.name]), Stdio::piped(), Stdio::null());
    let mut out = p.bridge_out();
    let mut inb = p.bridge_in();
    let mut recv = p.recv(Stdio::piped());
    let feed = send.0.0.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || feed_pattern(feed, mib));
    let checked = check_pattern(recv.0.0.stdout.take().unwrap(), mib);
    recv.ok("shm recv on B");
    let secs = t0.elapsed().as_secs_f64();
    feeder.join().unwrap().unwrap();
    send.ok("shm send on A");
    let out_said = out.ok("shm bridge out on A");
    let in_said = inb.ok("shm bridge in on B");
    checked.unwrap();
    assert!(out_said.contains("complete"), "{out_said}");
    assert!(in_said.contains("complete"), "{in_said}");
    println!(
        "{backend}: {mib} MiB across the bridge in {secs:.2} s ({:.0} MB/s)",
        mib as f64 * 1.048_576 / secs
    );
    p.assert_nothing_left();
}

#[test]
fn a_256_mib_stream_crosses_byte_exact_posix() {
    stream_crosses("bridge-stream-posix", "posix");
}

#[test]
fn a_256_mib_stream_crosses_byte_exact_sysv() {
    stream_crosses("bridge-stream-sysv", "sysv");
}

/// A stream under way: send on A reads a pipe the test feeds (1 MiB, then nothing more), and
/// the MiB has reached recv on B.
struct Flowing {
    p: Pair,
    feed: std::process::ChildStdin,
    send: Proc,
    out: Proc,
    inb: Proc,
    recv: Proc,
}

fn flowing(test: &str, backend: &'static str) -> Flowing {
    let p = Pair::new(test, backend);
    let mut send =
        p.a.shm(&p.args(&["send", &p.name]), Stdio::piped(), Stdio::null());
    let out = p.bridge_out();
    let inb = p.bridge_in();
    let mut recv = p.recv(Stdio::piped());
    let mut feed = send.0.0.stdin.take().unwrap();
    feed.write_all(&vec![7u8; 1 << 20]).unwrap();
    let mut got = vec![0u8; 1 << 20];
    recv.0
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut got)
        .unwrap();
    assert!(got.iter().all(|&b| b == 7));
    Flowing {
        p,
        feed,
        send,
        out,
        inb,
        recv,
    }
}

/// Kill -9 of `bridge in` on B: recv on B learns it as a dead peer within 1 s; the bridge on A
/// sees its subscriber gone, stops and aborts its receiver, so send on A fails (the receiver
/// failed) instead of taking the stream for delivered.
#[test]
fn a_killed_bridge_in_is_a_dead_peer_on_its_host() {
    let test = "bridge-kill-in";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let mut f = flowing(test, "posix");
    let t0 = Instant::now();
    f.inb.kill9();
    let said = f.recv.fails("shm recv on B after its bridge was killed");
    let took = t0.elapsed();
    println!("recv on B learnt its bridge's death in {took:?}");
    assert!(said.contains("died"), "recv on B said: {said}");
    assert!(took < Duration::from_secs(2), "took {took:?} (bound: 1 s)");
    let out_said = f.out.fails("shm bridge out on A (the far side is gone)");
    assert!(out_said.contains("far side"), "{out_said}");
    drop(f.feed); // send on A reaches the end of its input, and finds its receiver failed
    let send_said = f.send.fails("shm send on A (its stream did not cross)");
    assert!(
        send_said.contains("receiver failed"),
        "send on A said: {send_said}"
    );
    f.p.assert_nothing_left();
}

/// Kill -9 of `bridge out` on A: send on A learns it as a dead peer within 1 s; the bridge on B
/// sees the out bridge's token go and aborts its channel: recv on B says the stream was cut.
#[test]
fn a_killed_bridge_out_is_a_dead_peer_on_its_host() {
    let test = "bridge-kill-out";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let mut f = flowing(test, "posix");
    let t0 = Instant::now();
    f.out.kill9();
    // send on A is blocked reading its input: more than its channel holds (2 MiB) makes it
    // wait for room, and so look at its peer. The write ends with EPIPE once send is gone.
    let mut feed = f.feed;
    let feeder = std::thread::spawn(move || {
        let _ = feed.write_all(&vec![8u8; 4 << 20]);
    });
    let said = f.send.fails("shm send on A after its bridge was killed");
    let took = t0.elapsed();
    println!("send on A learnt its bridge's death in {took:?}");
    assert!(said.contains("died"), "send on A said: {said}");
    assert!(took < Duration::from_secs(2), "took {took:?} (bound: 1 s)");
    let in_said = f.inb.fails("shm bridge in on B (the far side is gone)");
    assert!(in_said.contains("far side"), "{in_said}");
    let recv_said = f.recv.fails("shm recv on B (its stream was cut)");
    assert!(recv_said.contains(CUT_SAID), "recv on B said: {recv_said}");
    feeder.join().unwrap();
    f.p.assert_nothing_left();
}

/// What `shm recv` says of a stream its sender ended unfinished.
const CUT_SAID: &str = "the sender stopped before the end of the stream";

/// `shm send` stopped by SIGTERM on A (it drops its sender unfinished: the stream is aborted),
/// or killed (`kill9`): recv on B ends as a local recv does when its sender is stopped: the
/// same exit status, the same message, after every byte sent before.
fn sender_ends_early(test: &str, kill9: bool) {
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    // The local reference: send and recv on host A alone, send stopped by SIGTERM.
    let local_name = unique_name(&format!("{test}-local"));
    let f = flowing(test, "posix");
    let mut lsend =
        f.p.a
            .shm(&["send", &local_name], Stdio::piped(), Stdio::null());
    let mut lrecv =
        f.p.a
            .shm(&["recv", &local_name], Stdio::null(), Stdio::piped());
    lsend
        .0
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"some bytes")
        .unwrap();
    let mut got = [0u8; 10];
    lrecv
        .0
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut got)
        .unwrap();
    lsend.term();
    let (_, local_said, local_code) = lrecv.wait_code("shm recv on A (local reference)");
    lsend.wait("shm send on A (local reference)");
    assert_ne!(local_code, Some(0), "local recv: {local_said}");
    assert!(
        local_said.contains(CUT_SAID),
        "local recv said: {local_said}"
    );

    let Flowing {
        p,
        feed,
        mut send,
        mut out,
        mut inb,
        mut recv,
    } = f;
    if kill9 {
        send.kill9();
    } else {
        send.term();
    }
    send.wait("shm send on A");
    let (_, said, code) = recv.wait_code("shm recv on B after the sender on A ended early");
    assert_eq!(code, local_code, "recv on B said: {said}");
    assert!(said.contains(CUT_SAID), "recv on B said: {said}");
    let out_said = out.fails("shm bridge out on A (its sender ended early)");
    assert!(out_said.contains("aborted"), "{out_said}");
    let in_said = inb.fails("shm bridge in on B (the stream was aborted)");
    assert!(in_said.contains("aborted"), "{in_said}");
    drop(feed);
    p.assert_nothing_left();
}

#[test]
fn an_aborted_sender_is_reported_aborted_on_the_far_side() {
    sender_ends_early("bridge-abort", false);
}

#[test]
fn a_killed_sender_is_reported_aborted_on_the_far_side() {
    sender_ends_early("bridge-kill-send", true);
}

/// A writer that counts what it wrote.
struct Counted<W>(W, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// recv on B not read for 6 s while send on A has 64 MiB to send: the back-pressure reaches
/// send on A (its input stops being read, far below 64 MiB: what the two channels, the bridges
/// and the TCP buffers hold), and once B reads, every byte arrives, nothing dropped.
#[test]
fn a_slow_far_side_slows_the_local_sender_and_nothing_is_dropped() {
    let test = "bridge-slow";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    const MIB: usize = 64;
    let p = Pair::new(test, "posix");
    let mut send =
        p.a.shm(&p.args(&["send", &p.name]), Stdio::piped(), Stdio::null());
    let mut out = p.bridge_out();
    let mut inb = p.bridge_in();
    let mut recv = p.recv(Stdio::piped());
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let feed = Counted(send.0.0.stdin.take().unwrap(), written.clone());
    let feeder = std::thread::spawn(move || feed_pattern(feed, MIB));
    // Longer than Zenoh's default wait before it closes a session whose publisher is blocked
    // (5 s): the bridge sets it to a day, so back-pressure only slows the stream down.
    std::thread::sleep(Duration::from_secs(6));
    let stuck = written.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "with B not reading, send on A took {} MiB of {MIB}",
        stuck >> 20
    );
    assert!(stuck > 0, "nothing was sent");
    assert!(
        stuck < (MIB << 20) / 2,
        "send on A took {stuck} bytes: no back-pressure"
    );
    let checked = check_pattern(recv.0.0.stdout.take().unwrap(), MIB);
    recv.ok("shm recv on B");
    feeder.join().unwrap().unwrap();
    send.ok("shm send on A");
    out.ok("shm bridge out on A");
    inb.ok("shm bridge in on B");
    checked.unwrap();
    p.assert_nothing_left();
}

/// A TCP forwarder between the two bridges that the test controls: `bridge in` connects to
/// it, it connects on to `bridge out`'s listener. It can stall (stop moving bytes, the
/// connections held open: a network that goes silent) and cut (every connection closed, new
/// ones refused: a link that drops), then pass again (the link comes back).
struct Proxy {
    port: u16,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

const PASS: u8 = 0;
const STALL: u8 = 1;
const CUT: u8 = 2;
const QUIT: u8 = 3;

impl Proxy {
    fn new(upstream: u16) -> Proxy {
        use std::sync::atomic::{AtomicU8, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (m, c) = (mode.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            loop {
                let now = m.load(Ordering::SeqCst);
                if now == QUIT {
                    return;
                }
                let down = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if now == CUT {
                    continue; // refused: dropped at once
                }
                let Ok(up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                down.set_nonblocking(false).unwrap();
                let mut held = c.lock().unwrap();
                held.push(down.try_clone().unwrap());
                held.push(up.try_clone().unwrap());
                drop(held);
                for (from, to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, down),
                ] {
                    let m = m.clone();
                    std::thread::spawn(move || pump(from, to, &m));
                }
            }
        });
        Proxy {
            port,
            mode,
            conns,
            accept: Some(accept),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::SeqCst);
        if mode == CUT || mode == QUIT {
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(QUIT);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

/// Moves bytes from `from` to `to` while the mode is PASS, holds them while STALL, and closes
/// both on CUT, QUIT, an end or an error.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    mode: &std::sync::atomic::AtomicU8,
) {
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match mode.load(Ordering::SeqCst) {
            PASS => {}
            STALL => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            _ => break,
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Read as the link went silent: held until it passes again (or drops).
                while mode.load(Ordering::SeqCst) == STALL {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if mode.load(Ordering::SeqCst) != PASS || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// A pair whose `bridge in` reaches `bridge out` through a [`Proxy`], with a 64 MiB stream
/// under way: send on A fed by a thread (counting what send took), recv on B read by a thread
/// (counting what it got, and returning it).
struct Proxied {
    p: Pair,
    proxy: Proxy,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    send: Proc,
    out: Proc,
    inb: Proc,
    recv: Proc,
    feeder: std::thread::JoinHandle<std::io::Result<()>>,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

const PROXIED_MIB: usize = 64;

fn proxied(test: &str) -> Proxied {
    let p = Pair::new(test, "posix");
    let proxy = Proxy::new(p.port);
    let mut send =
        p.a.shm(&p.args(&["send", &p.name]), Stdio::piped(), Stdio::null());
    let out = p.bridge_out();
    let inb = p.bridge_in_to(proxy.port);
    let mut recv = p.recv(Stdio::piped());
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let feed = Counted(send.0.0.stdin.take().unwrap(), written.clone());
    let feeder = std::thread::spawn(move || feed_pattern(feed, PROXIED_MIB));
    let mut from_b = recv.0.0.stdout.take().unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = received.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = from_b.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            count.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    Proxied {
        p,
        proxy,
        written,
        received,
        send,
        out,
        inb,
        recv,
        feeder,
        reader,
    }
}

impl Proxied {
    /// Waits until recv on B has written `bytes` of the stream: the link carries it.
    fn wait_received(&self, bytes: usize) {
        let t0 = Instant::now();
        while self.received.load(std::sync::atomic::Ordering::Relaxed) < bytes {
            assert!(t0.elapsed() < PATIENCE, "the stream did not cross");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn written(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The whole stream `feed_pattern` writes for `mib`.
fn pattern_bytes(mib: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(mib * BLOCK + TAIL.len());
    feed_pattern(&mut v, mib).unwrap();
    v
}

/// The link goes silent for 2 s mid-stream (the proxy holds every byte, the connection stays
/// open: within Zenoh's lease of 10 s), then passes again: nothing is lost, the stream ends
/// complete on both sides, byte-exact.
#[test]
fn a_link_silent_within_the_lease_loses_nothing() {
    let test = "bridge-link-stall";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let mut f = proxied(test);
    f.wait_received(1 << 20);
    f.proxy.set(STALL);
    std::thread::sleep(Duration::from_secs(2));
    let during = f.written();
    f.proxy.set(PASS);
    println!(
        "send on A had taken {} MiB of {PROXIED_MIB} when the link passed again",
        during >> 20
    );
    assert!(
        during < PROXIED_MIB << 20,
        "the stream was over before the link went silent"
    );
    f.recv.ok("shm recv on B");
    let got = f.reader.join().unwrap();
    f.feeder.join().unwrap().unwrap();
    f.send.ok("shm send on A");
    let out_said = f.out.ok("shm bridge out on A");
    let in_said = f.inb.ok("shm bridge in on B");
    assert!(out_said.contains("complete") && in_said.contains("complete"));
    assert!(got == pattern_bytes(PROXIED_MIB), "the stream differs");
    f.p.assert_nothing_left();
}

/// The link drops mid-stream (the proxy closes both connections) and comes back 300 ms later
/// (Zenoh reconnects): what was in flight is lost, so neither side may report a whole stream.
/// recv on B fails (the stream was cut) after a byte-exact prefix of the stream, shorter than
/// the whole; both bridges fail; send on A fails instead of taking the stream for delivered.
#[test]
fn a_link_dropped_mid_stream_is_reported_never_a_whole_stream() {
    let test = "bridge-link-cut";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let mut f = proxied(test);
    f.wait_received(1 << 20);
    f.proxy.set(CUT);
    std::thread::sleep(Duration::from_millis(300));
    f.proxy.set(PASS);
    let recv_said = f.recv.fails("shm recv on B (its stream lost bytes)");
    assert!(
        recv_said.contains(CUT_SAID) || recv_said.contains("died"),
        "recv on B said: {recv_said}"
    );
    let got = f.reader.join().unwrap();
    let whole = pattern_bytes(PROXIED_MIB);
    println!(
        "recv on B got {} of {} bytes, then: {}",
        got.len(),
        whole.len(),
        recv_said.trim()
    );
    assert!(got.len() < whole.len(), "recv on B got the whole stream");
    assert!(
        whole.starts_with(&got),
        "what recv on B got is not a prefix"
    );
    let in_said = f.inb.fails("shm bridge in on B (the link dropped)");
    let out_said = f.out.fails("shm bridge out on A (the link dropped)");
    println!("bridge in on B: {}", in_said.trim());
    println!("bridge out on A: {}", out_said.trim());
    let send_said = f.send.fails("shm send on A (its stream did not cross)");
    assert!(
        send_said.contains("receiver failed"),
        "send on A said: {send_said}"
    );
    let _ = f.feeder.join().unwrap(); // EPIPE once send on A has failed
    f.p.assert_nothing_left();
}

/// The link goes silent, the sender on A finishes (so `bridge out` publishes the end into the
/// silent link), then the link drops: the end never reaches B. `bridge out` must not report
/// the stream as carried (it waits for B's acknowledgement of the end, which never comes), and
/// recv on B reports the stream cut.
#[test]
fn a_link_dropped_after_the_end_was_sent_is_no_delivery() {
    let test = "bridge-link-end";
    if let Some(why) = namespaces_unavailable() {
        return skip(test, &why);
    }
    let p = Pair::new(test, "posix");
    let proxy = Proxy::new(p.port);
    let mut send =
        p.a.shm(&p.args(&["send", &p.name]), Stdio::piped(), Stdio::null());
    let mut out = p.bridge_out();
    let mut inb = p.bridge_in_to(proxy.port);
    let mut recv = p.recv(Stdio::piped());
    let mut feed = send.0.0.stdin.take().unwrap();
    feed.write_all(b"first").unwrap();
    let mut got = [0u8; 5];
    recv.0
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut got)
        .unwrap();
    assert_eq!(&got, b"first");
    proxy.set(STALL);
    feed.write_all(b" and the rest").unwrap();
    drop(feed);
    send.ok("shm send on A (the out bridge took the whole stream)");
    std::thread::sleep(Duration::from_millis(300)); // the end is published, held by the proxy
    proxy.set(CUT);
    let out_said = out.fails("shm bridge out on A (its end was not acknowledged)");
    assert!(out_said.contains("far side"), "{out_said}");
    let in_said = inb.fails("shm bridge in on B (the link dropped)");
    assert!(in_said.contains("far side"), "{in_said}");
    let recv_said = recv.fails("shm recv on B (the end never came)");
    assert!(recv_said.contains(CUT_SAID), "recv on B said: {recv_said}");
    drop(proxy);
    p.assert_nothing_left();
}
