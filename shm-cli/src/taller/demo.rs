//! `shm taller demo`: the server in this process, the client as a second process (this same
//! program, `shm taller client`), both outputs merged line by line behind a prefix, in the
//! order the moves happened.
//!
//! Both sides stamp their lines (the system-wide monotonic clock, and for a move the value it
//! wrote); a merger thread holds each side's lines briefly and prints the earliest first: moves
//! by their values (which order the moves of both sides exactly), other lines by time. A line
//! waits for the other side's next line at most [`HOLD`], so a quiet side never stalls the
//! other.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use shm_core::DynBackend;

use super::game;
use super::lines::{Out, STAMP_MARK, STAMPS_ENV, Sink, Who};
use super::options::{ServerArgs, client_args};
use crate::backend::Kind;
use crate::shutdown;
use shm_bench::lockstep::Role;

const SERVER: &str = "server | ";
const CLIENT: &str = "client | ";

/// Runs the demo: creates the segment, starts the client once it exists, plays the server's
/// side, waits for the client, removes the segment. Fails when either side fails.
pub(super) fn run(kind: Kind, backend: Arc<dyn DynBackend>, args: &ServerArgs) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let sink: Sink = tx.clone();
    let merger = std::thread::Builder::new()
        .name("merge".into())
        .spawn(move || merge(&rx))
        .context("cannot start the thread that merges both sides' lines")?;
    let out = Out {
        prefix: SERVER,
        sink: Some(&sink),
        stamped: true,
    };
    let finished = play_both(kind, backend, args, out, tx);
    // The server's lines end here; the merger prints what it holds and stops.
    let _ = sink.send((Who::Server, None));
    let _ = merger.join();
    finished
}

/// The demo's two sides, once the merger runs.
fn play_both(
    kind: Kind,
    backend: Arc<dyn DynBackend>,
    args: &ServerArgs,
    out: Out<'_>,
    tx: Sender<(Who, Option<String>)>,
) -> Result<()> {
    let map = game::create(&backend, args, out)?;
    let (mut child, relays) = match start_client(kind, args, tx) {
        Ok(started) => started,
        Err(e) => {
            let _ = game::remove(out);
            return Err(e);
        }
    };
    let played = game::play(&map, Role::Server, &args.game, out);
    if played.is_err() {
        // The client cannot finish without the server: stop it rather than wait for its timeout.
        let _ = child.kill();
    }
    let status = wait_client(&mut child);
    for relay in relays {
        let _ = relay.join();
    }
    let removed = game::remove(out);
    played.context("the server failed")?;
    let status = status?;
    if !status.success() {
        bail!("the client failed ({status}); its messages are above, after `{CLIENT}`");
    }
    removed
}

/// Starts `shm taller client` with the same game, its output relayed behind [`CLIENT`].
fn start_client(
    kind: Kind,
    args: &ServerArgs,
    tx: Sender<(Who, Option<String>)>,
) -> Result<(Child, Vec<JoinHandle<()>>)> {
    let exe = std::env::current_exe().context("cannot find this program to start the client")?;
    // Under the lock, so that a signal that comes meanwhile also stops the new child.
    let mut armed = shutdown::lock();
    let mut cmd = Command::new(&exe);
    cmd.args(client_args(kind, &args.game))
        .env(STAMPS_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Ctrl-C and SIGTERM must end the client as usual (this process has them blocked), and
    // the client dies with this process, also when it is killed with SIGKILL.
    shutdown::unblock_in_child(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the client ({})", exe.display()))?;
    armed.child = libc::pid_t::try_from(child.id()).ok();
    drop(armed);
    let mut relays = Vec::new();
    let streams: [(Option<Box<dyn Read + Send>>, bool); 2] = [
        (child.stdout.take().map(|s| Box::new(s) as _), false),
        (child.stderr.take().map(|s| Box::new(s) as _), true),
    ];
    for (stream, to_stderr) in streams {
        if let Some(stream) = stream {
            let to = (!to_stderr).then(|| tx.clone());
            match relay(stream, to) {
                Ok(handle) => relays.push(handle),
                Err(e) => {
                    let _ = child.kill();
                    let _ = wait_client(&mut child);
                    return Err(e);
                }
            }
        }
    }
    Ok((child, relays))
}

/// Copies `stream` line by line to the merger (`to`), or to stderr after [`CLIENT`].
fn relay(
    stream: Box<dyn Read + Send>,
    to: Option<Sender<(Who, Option<String>)>>,
) -> Result<JoinHandle<()>> {
    let handle = std::thread::Builder::new()
        .name("client-output".into())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                match &to {
                    Some(tx) => {
                        let _ = tx.send((Who::Client, Some(line.to_owned())));
                    }
                    // A closed terminal must not stop the game: ignore write errors.
                    None => {
                        let _ = writeln!(std::io::stderr(), "{CLIENT}{line}");
                    }
                }
            }
            if let Some(tx) = to {
                let _ = tx.send((Who::Client, None));
            }
        })
        .context("cannot start a thread to relay the client's output")?;
    Ok(handle)
}

/// How long a line waits for the other side's next one before it is printed anyway.
const HOLD: Duration = Duration::from_millis(150);

/// How long a move waits for the move it answered (see [`Held::hold`]).
const MOVE_HOLD: Duration = Duration::from_secs(2);

/// One line waiting to be printed.
struct Held {
    /// The stamp's time, in nanoseconds of the monotonic clock (0 for a line without one).
    at: u128,
    /// For a move, the value it wrote.
    wrote: Option<i64>,
    text: String,
    came: Instant,
}

impl Held {
    fn parse(line: String) -> Self {
        let came = Instant::now();
        let mark = STAMP_MARK;
        let stamped = line
            .strip_prefix(mark)
            .and_then(|rest| rest.split_once(mark))
            .and_then(|(ns, text)| Some((ns.parse::<u128>().ok()?, text.to_owned())));
        let (at, text) = stamped.unwrap_or((0, line));
        let wrote = text
            .strip_prefix("I am taller. ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|x| x.trim().parse().ok());
        Held {
            at,
            wrote,
            text,
            came,
        }
    }

    /// How long this line waits for the other side's next line. A move that wrote X answered
    /// the other side's move X - 1 (every write is printed): until that one is printed, it waits
    /// up to [`MOVE_HOLD`], so that a loaded machine's slow pipe never puts it first.
    fn hold(&self, last_move: i64) -> Duration {
        match self.wrote {
            Some(x) if x >= 2 && x - 1 > last_move => MOVE_HOLD,
            _ => HOLD,
        }
    }

    /// Whether this line happened before `other`: moves by the values they wrote, anything
    /// else by time.
    fn before(&self, other: &Held) -> bool {
        match (self.wrote, other.wrote) {
            (Some(a), Some(b)) if a != b => a < b,
            _ => self.at <= other.at,
        }
    }
}

/// The merger: prints both sides' lines, earliest first, until both sides are done.
fn merge(rx: &std::sync::mpsc::Receiver<(Who, Option<String>)>) {
    let mut queues: [VecDeque<Held>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut open = [true, true];
    let index = |w: Who| usize::from(w == Who::Client);
    let prefix = [SERVER, CLIENT];
    let mut stdout = std::io::stdout();
    // The highest value a printed move wrote.
    let mut last_move = 0;
    while open.iter().any(|&o| o) || queues.iter().any(|q| !q.is_empty()) {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((who, Some(line))) => queues[index(who)].push_back(Held::parse(line)),
            Ok((who, None)) => open[index(who)] = false,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = [false, false],
        }
        loop {
            let ripe = |h: &Held| h.came.elapsed() >= h.hold(last_move);
            let pick = match (queues[0].front(), queues[1].front()) {
                (Some(a), Some(b)) => Some(usize::from(!a.before(b))),
                (Some(a), None) if !open[1] || ripe(a) => Some(0),
                (None, Some(b)) if !open[0] || ripe(b) => Some(1),
                _ => None,
            };
            let Some(side) = pick else { break };
            if let Some(line) = queues[side].pop_front() {
                last_move = line.wrote.map_or(last_move, |x| x.max(last_move));
                // A closed terminal must not stop the game: ignore write errors.
                let _ = writeln!(stdout, "{}{}", prefix[side], line.text);
            }
        }
    }
}

/// Waits for the client to exit, then reaps it with the signal cleanup disarmed, so that a
/// signal never reaches a process that has taken over the pid.
fn wait_client(child: &mut Child) -> Result<std::process::ExitStatus> {
    let pid: libc::id_t = child.id();
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of a plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child waitable (a zombie
        // keeps its pid) so that `Child::wait` below reaps it.
        let rc =
            unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    let mut armed = shutdown::lock();
    armed.child = None;
    child.wait().context("cannot wait for the client")
}
