//! Across hosts (feature `bridge`): a channel carried over Zenoh by shm-bridge, against Zenoh
//! alone, both over TCP on 127.0.0.1 with the same session settings (`shm_bridge::Link`: a
//! peer listening on one endpoint, the other connecting, no scouting) and the same
//! publication settings (reliable, congestion control `Block`, subscribers with a queue of
//! [`shm_bridge::IN_QUEUE`] samples).
//!
//! * `bridge_stream`: 64 KiB messages written in place by the bench into a local channel, an
//!   `out` bridge process publishing them, an `in` bridge process sending them into a second
//!   local channel, and a receiver process checking every byte there (the `channel-stream`
//!   peer): what `shm send | shm bridge out` ~ `shm bridge in | shm recv` does.
//! * `zenoh_stream`: the same bytes in the same messages, filled by a Zenoh publisher process
//!   and checked by a Zenoh subscriber process: no shared memory.
//! * `bridge_rtt`: 8 bytes from the bench through a bridged channel to an echo process and
//!   back through another (two bridge processes, each carrying one channel each way).
//! * `zenoh_rtt`: 8 bytes published by one process, published back by another that subscribes.
//!
//! Zenoh runs in peers only, never in the bench's own process: its threads would take the
//! bench's SIGALRM ticks (see `crate::stop`) and share its CPU time. Every peer and session
//! starts at a case's first repetition, not when the cases are listed, so that a run without
//! these cases opens no session. The peers ([`crate::peer`]): `bridge`, `channel-relay`,
//! `zenoh-sub`, `zenoh-pub`, `zenoh-echo`, `zenoh-ping`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use shm_bridge::{Bridge, IN_QUEUE, Link};
use shm_channel::{Error as ChannelError, Options, Receiver, Sender};
use shm_core::Backend;
use zenoh::Wait;
use zenoh::handlers::FifoChannel;
use zenoh::qos::CongestionControl;

use super::channel::common::{TIMEOUT, spawn_peer};
use super::channel::{MESSAGE, fill, pipe, stream_options, words_of_mut};
use crate::case::{Case, Samples, Section, Unit, segment_name};
use crate::child::Child;
use crate::host::Host;
use crate::stop::stopping;

/// The round trips' channels: 8-byte messages, a few slots.
fn rtt_options() -> Options {
    Options::new(4, 64)
}

/// A TCP endpoint on 127.0.0.1 whose port was free a moment ago.
fn endpoint() -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("tcp/127.0.0.1:{port}"))
}

/// The Zenoh key of one case's traffic: unique per run.
fn key(case: &str, what: &str) -> String {
    format!("shm-bench/{}/{case}/{what}", std::process::id())
}

/// The longest a repetition of a stream may take before the bench gives up on it.
const STREAM_LIMIT: Duration = Duration::from_secs(120);

/// Reads exactly `buf.len()` bytes from `f` (a peer's pipe), at most `limit`, looking at the
/// stop flag every 100 ms.
fn read_within(f: &mut File, buf: &mut [u8], limit: Duration) -> Result<()> {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + limit;
    let mut at = 0;
    while at < buf.len() {
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes the one pollfd it is given.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if stopping() {
            bail!("stopped");
        }
        if Instant::now() > deadline {
            bail!("a peer did not answer within {limit:?}");
        }
        if ready <= 0 {
            continue;
        }
        match f.read(&mut buf[at..]) {
            Ok(0) => bail!("a peer closed its pipe (it failed: see above)"),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A peer's stdout, as a file.
fn stdout_of(peer: &mut Child) -> Result<File> {
    let out = peer.process.stdout.take().context("the peer's stdout")?;
    Ok(File::from(std::os::fd::OwnedFd::from(out)))
}

/// Waits for the byte a peer writes once it is ready.
fn ready(out: &mut File) -> Result<()> {
    let mut b = [0u8; 1];
    read_within(out, &mut b, TIMEOUT * 3).context("a peer did not start")
}

/// Says on `out` that this peer is ready.
fn say_ready(out: &mut File) -> Result<()> {
    out.write_all(b"r")?;
    Ok(())
}

/// This process's stdin and stdout, as files.
fn stdio() -> Result<(File, File)> {
    Ok((
        File::from(std::io::stdin().as_fd().try_clone_to_owned()?),
        File::from(std::io::stdout().as_fd().try_clone_to_owned()?),
    ))
}

fn zerr(what: &'static str) -> impl FnOnce(zenoh::Error) -> anyhow::Error {
    move |e| anyhow!("zenoh: {what}: {e}")
}

/// The `bridge listen|connect ENDPOINT KIND (out|in NAME KEY)...` peer: one Zenoh session,
/// each half in its own thread (`out`: the receiver of the local channel NAME, published on
/// KEY; `in`: KEY sent into the local channel NAME). Writes a byte on stdout once the session
/// is open (its listener up). Returns when every half has carried its stream to its end.
pub(crate) fn bridge_peer<B: Backend>(
    backend: &B,
    link: &str,
    endpoint: &str,
    halves: &[&str],
) -> Result<()> {
    let link = match link {
        "listen" => Link::listen(endpoint),
        "connect" => Link::connect(endpoint),
        _ => bail!("bad link {link:?}"),
    };
    let session = link.open()?;
    let (_, mut out) = stdio()?;
    say_ready(&mut out)?;
    let (mut outs, mut ins) = (Vec::new(), Vec::new());
    for half in halves.chunks(3) {
        match half {
            ["out", name, key] => outs.push((
                Bridge::new(&session, key)?,
                Receiver::open_or_create(backend, name, &options_for(name))?,
            )),
            ["in", name, key] => ins.push((
                Bridge::new(&session, key)?,
                Sender::open_or_create(backend, name, &options_for(name))?,
            )),
            _ => bail!("bad half {half:?}"),
        }
    }
    std::thread::scope(|s| {
        let mut running = Vec::new();
        for (bridge, rx) in outs {
            running.push(s.spawn(move || bridge.out(rx).map(drop)));
        }
        for (bridge, tx) in ins {
            running.push(s.spawn(move || bridge.inbound(tx).map(drop)));
        }
        for r in running {
            r.join()
                .map_err(|_| anyhow!("a bridge half panicked"))?
                .context("a bridge half")?;
        }
        Ok(())
    })
}

/// The options of a bench channel, by its name: the round trips' end in `-ping` or `-pong`.
fn options_for(name: &str) -> Options {
    if name.ends_with("-ping") || name.ends_with("-pong") {
        rtt_options()
    } else {
        stream_options()
    }
}

/// The `channel-relay KIND FROM TO` peer: every message of the channel FROM sent on into the
/// channel TO, until FROM ends (TO then ends the same way).
pub(crate) fn relay_peer<B: Backend>(backend: &B, from: &str, to: &str) -> Result<()> {
    let mut rx = Receiver::open_or_create(backend, from, &rtt_options())?;
    let mut tx = Sender::open_or_create(backend, to, &rtt_options())?;
    let mut buf = [0u8; 64];
    loop {
        let len = match rx.recv_into(&mut buf) {
            Ok(n) => n,
            Err(ChannelError::Closed) => {
                tx.finish()?;
                return Ok(());
            }
            // Dropped unfinished: the end travels as it came.
            Err(ChannelError::Aborted) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        tx.send(&buf[..len])?;
    }
}

/// The `zenoh-sub ENDPOINT KEY BYTES` peer: listens on ENDPOINT, subscribes to KEY, checks
/// every sample as the next message of the stream, and writes on stdout how many were wrong
/// after each BYTES (a byte first, once subscribed). An empty sample ends it.
pub(crate) fn zenoh_sub_peer(endpoint: &str, key: &str, bytes: u64) -> Result<()> {
    let session = Link::listen(endpoint).open()?;
    let sub = session
        .declare_subscriber(key)
        .with(FifoChannel::new(IN_QUEUE))
        .wait()
        .map_err(zerr("subscribe"))?;
    let (_, mut out) = stdio()?;
    say_ready(&mut out)?;
    let (mut got, mut wrong) = (0u64, 0u64);
    loop {
        let sample = sub.recv().map_err(zerr("receive"))?;
        let payload = sample.payload().to_bytes();
        if payload.is_empty() {
            return Ok(());
        }
        if !check_bytes(&payload, got) {
            wrong += 1;
        }
        got += payload.len() as u64;
        if got == bytes {
            out.write_all(&wrong.to_ne_bytes())?;
            (got, wrong) = (0, 0);
        }
    }
}

/// `channel::check` on bytes at any alignment (a Zenoh payload lies where Zenoh put it).
fn check_bytes(bytes: &[u8], at_byte: u64) -> bool {
    let first = at_byte / 8;
    let words = bytes.chunks_exact(8);
    if !words.remainder().is_empty() {
        return false;
    }
    let wrong = words.enumerate().fold(0, |acc, (k, w)| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        acc | (u64::from_ne_bytes(b) ^ (first + k as u64))
    });
    wrong == 0
}

/// Waits until a subscriber matches `publisher`.
fn wait_matching(publisher: &zenoh::pubsub::Publisher<'_>) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT * 3;
    while !publisher
        .matching_status()
        .wait()
        .map_err(zerr("ask for subscribers"))?
        .matching()
    {
        if Instant::now() > deadline {
            bail!("no subscriber came within {:?}", TIMEOUT * 3);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// The `zenoh-pub ENDPOINT KEY BYTES` peer: connects to ENDPOINT, writes a byte on stdout
/// once a subscriber matches KEY, then publishes BYTES in 64 KiB messages (each filled in a
/// new buffer, handed to Zenoh without a copy) for each byte read on stdin; at the end of
/// stdin, an empty sample (the end, for `zenoh-sub`).
pub(crate) fn zenoh_pub_peer(endpoint: &str, key: &str, bytes: u64) -> Result<()> {
    let session = Link::connect(endpoint).open()?;
    let publisher = session
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(zerr("declare a publisher"))?;
    wait_matching(&publisher)?;
    let (mut input, mut out) = stdio()?;
    say_ready(&mut out)?;
    let mut go = [0u8; 1];
    while input.read(&mut go)? == 1 {
        let mut sent = 0u64;
        while sent < bytes {
            let len = MESSAGE.min((bytes - sent) as usize);
            let mut message = vec![0u8; len];
            fill(
                words_of_mut(&mut message).context("a buffer is 8-aligned")?,
                sent,
            );
            publisher.put(message).wait().map_err(zerr("publish"))?;
            sent += len as u64;
        }
    }
    publisher
        .put(Vec::<u8>::new())
        .wait()
        .map_err(zerr("publish"))?;
    Ok(())
}

/// The `zenoh-echo ENDPOINT PING PONG` peer: listens on ENDPOINT, publishes each sample of
/// PING back on PONG. An empty sample ends it (after it is echoed).
pub(crate) fn zenoh_echo_peer(endpoint: &str, ping: &str, pong: &str) -> Result<()> {
    let session = Link::listen(endpoint).open()?;
    let sub = session
        .declare_subscriber(ping)
        .with(FifoChannel::new(IN_QUEUE))
        .wait()
        .map_err(zerr("subscribe"))?;
    let publisher = session
        .declare_publisher(pong)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(zerr("declare a publisher"))?;
    let (_, mut out) = stdio()?;
    say_ready(&mut out)?;
    loop {
        let sample = sub.recv().map_err(zerr("receive"))?;
        let payload = sample.payload().clone();
        let end = payload.is_empty();
        publisher.put(payload).wait().map_err(zerr("publish"))?;
        if end {
            return Ok(());
        }
    }
}

/// The `zenoh-ping ENDPOINT PING PONG` peer: connects to ENDPOINT; once a ping comes back,
/// writes a byte on stdout; then for each budget in ns (a u64) read on stdin, plays round
/// trips (8 bytes, a number each) for that long and writes how many it played, then each one's
/// ns (u64s). At the end of stdin, an empty ping (the end, for `zenoh-echo`).
pub(crate) fn zenoh_ping_peer(endpoint: &str, ping: &str, pong: &str) -> Result<()> {
    let session = Link::connect(endpoint).open()?;
    let sub = session
        .declare_subscriber(pong)
        .with(FifoChannel::new(IN_QUEUE))
        .wait()
        .map_err(zerr("subscribe"))?;
    let publisher = session
        .declare_publisher(ping)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(zerr("declare a publisher"))?;
    wait_matching(&publisher)?;
    let mut seq = 0u64;
    // Until the echo's publisher has seen this subscriber, a pong may go nowhere: ping again.
    let start = Instant::now();
    loop {
        seq += 1;
        publisher
            .put(seq.to_le_bytes().to_vec())
            .wait()
            .map_err(zerr("publish"))?;
        if sub
            .recv_timeout(Duration::from_millis(100))
            .map_err(zerr("receive"))?
            .is_some()
        {
            break;
        }
        if start.elapsed() > TIMEOUT * 3 {
            bail!("no pong within {:?}", TIMEOUT * 3);
        }
    }
    let round_trip = |seq: u64| -> Result<()> {
        publisher
            .put(seq.to_le_bytes().to_vec())
            .wait()
            .map_err(zerr("publish"))?;
        loop {
            let sample = sub
                .recv_timeout(TIMEOUT)
                .map_err(zerr("receive"))?
                .context("no pong within the timeout")?;
            let bytes = sample.payload().to_bytes();
            let got = <[u8; 8]>::try_from(&bytes[..]).map(u64::from_le_bytes);
            match got {
                Ok(n) if n == seq => return Ok(()),
                Ok(n) if n < seq => {} // a pong of the first pings, late
                _ => bail!("a wrong pong for ping {seq}"),
            }
        }
    };
    let (mut input, mut out) = stdio()?;
    say_ready(&mut out)?;
    let mut budget = [0u8; 8];
    while input.read_exact(&mut budget).is_ok() {
        let budget = Duration::from_nanos(u64::from_ne_bytes(budget));
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed() < budget {
            seq += 1;
            let t0 = Instant::now();
            round_trip(seq)?;
            times.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        let mut msg = (times.len() as u64).to_ne_bytes().to_vec();
        msg.extend(times.iter().flat_map(|t| t.to_ne_bytes()));
        out.write_all(&msg)?;
    }
    publisher
        .put(Vec::<u8>::new())
        .wait()
        .map_err(zerr("publish"))?;
    Ok(())
}

/// What a case started at its first repetition: its peers, in the order they end.
struct Started<T> {
    state: T,
    peers: Vec<Child>,
}

impl<T> Started<T> {
    /// Ends the case's own ends first (`state`), then waits for each peer to end by itself.
    fn finish(self) -> Result<()> {
        drop(self.state);
        for peer in self.peers {
            peer.finish(TIMEOUT * 3)?;
        }
        Ok(())
    }
}

/// `bridge_stream` and `zenoh_stream`.
pub struct Stream {
    key: &'static str,
    what: &'static str,
    bridged: bool,
    host: Host,
    bytes: u64,
    started: Option<Started<StreamEnds>>,
}

enum StreamEnds {
    /// The bench's sender, and the receiver's verdicts.
    Bridged { tx: Sender, verdicts: File },
    /// The publisher's stdin (a byte: publish a stream) and the subscriber's verdicts.
    Zenoh { go: File, verdicts: File },
}

impl Stream {
    /// `bridge_stream` and `zenoh_stream`, of `bytes` each per repetition.
    pub fn both(host: &Host, bytes: u64) -> [Stream; 2] {
        [true, false].map(|bridged| Stream {
            key: if bridged {
                "bridge_stream"
            } else {
                "zenoh_stream"
            },
            what: if bridged {
                "shm-bridge out, in (TCP)"
            } else {
                "Zenoh alone (TCP)"
            },
            bridged,
            host: host.clone(),
            bytes,
            started: None,
        })
    }

    fn start(&self) -> Result<Started<StreamEnds>> {
        let host = &self.host;
        let ep = endpoint()?;
        let zkey = key(self.key, "data");
        let bytes = self.bytes.to_string();
        if self.bridged {
            let kind = host.default_kind()?;
            let (a, b) = (
                segment_name("bridge_stream_a"),
                segment_name("bridge_stream_b"),
            );
            let tx = Sender::create(&(host.backend)(kind)?, &a, &stream_options())?;
            let (verdicts, theirs) = pipe()?;
            let receiver = spawn_peer(
                host,
                &["channel-stream", kind.as_str(), &b, &bytes],
                Stdio::null(),
                Stdio::from(theirs),
            )?;
            let out = bridge(host, "listen", &ep, &["out", &a, &zkey])?;
            let inb = bridge(host, "connect", &ep, &["in", &b, &zkey])?;
            tx.wait_for_peer(Some(TIMEOUT))?;
            Ok(Started {
                state: StreamEnds::Bridged {
                    tx,
                    verdicts: File::from(verdicts),
                },
                peers: vec![out, inb, receiver],
            })
        } else {
            let mut sub = spawn_peer(
                host,
                &["zenoh-sub", &ep, &zkey, &bytes],
                Stdio::null(),
                Stdio::piped(),
            )?;
            let mut verdicts = stdout_of(&mut sub)?;
            ready(&mut verdicts)?;
            let mut publisher = spawn_peer(
                host,
                &["zenoh-pub", &ep, &zkey, &bytes],
                Stdio::piped(),
                Stdio::piped(),
            )?;
            ready(&mut stdout_of(&mut publisher)?)?;
            let go = publisher.process.stdin.take().context("the peer's stdin")?;
            Ok(Started {
                state: StreamEnds::Zenoh {
                    go: File::from(std::os::fd::OwnedFd::from(go)),
                    verdicts,
                },
                peers: vec![publisher, sub],
            })
        }
    }

    /// Moves `bytes` and waits until the receiver has checked them all.
    fn send_all(&mut self) -> Result<()> {
        let bytes = self.bytes;
        let Some(started) = self.started.as_mut() else {
            bail!("the case has not started");
        };
        let verdicts = match &mut started.state {
            StreamEnds::Bridged { tx, verdicts } => {
                let mut sent = 0u64;
                while sent < bytes {
                    let len = MESSAGE.min((bytes - sent) as usize);
                    let mut loan = tx.loan_timeout(STREAM_LIMIT)?;
                    // SAFETY: the receiver is this bench's bridge peer (shm-bridge over
                    // shm-channel): it never reads a slot before it is sent.
                    let slot = unsafe { loan.as_mut_slice() };
                    let words = words_of_mut(&mut slot[..len]).context("a slot is 8-aligned")?;
                    fill(words, sent);
                    loan.send(len)?;
                    sent += len as u64;
                }
                verdicts
            }
            StreamEnds::Zenoh { go, verdicts } => {
                go.write_all(b"g")?;
                verdicts
            }
        };
        let mut wrong = [0u8; 8];
        read_within(verdicts, &mut wrong, STREAM_LIMIT)?;
        let wrong = u64::from_ne_bytes(wrong);
        if wrong != 0 {
            bail!("the receiver found {wrong} wrong messages");
        }
        Ok(())
    }
}

/// Starts the `bridge` peer and waits until its session is open.
fn bridge(host: &Host, link: &str, ep: &str, halves: &[&str]) -> Result<Child> {
    let kind = host.default_kind()?;
    let mut words = vec!["bridge", link, ep, kind.as_str()];
    words.extend_from_slice(halves);
    let mut peer = spawn_peer(host, &words, Stdio::null(), Stdio::piped())?;
    ready(&mut stdout_of(&mut peer)?)?;
    Ok(peer)
}

impl Case for Stream {
    fn key(&self) -> &str {
        self.key
    }
    fn what(&self) -> &str {
        self.what
    }
    fn section(&self) -> Section {
        Section::Stream
    }
    fn unit(&self) -> Unit {
        Unit::Throughput { bytes: self.bytes }
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        if self.started.is_none() {
            self.started = Some(self.start()?);
        }
        let t0 = Instant::now();
        self.send_all()?;
        out.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        // The bridged sender is dropped unfinished (the stream aborts and every peer ends); the
        // publisher's stdin closes (it publishes the end).
        self.started.map_or(Ok(()), Started::finish)
    }
}

/// `bridge_rtt` and `zenoh_rtt`.
pub struct Rtt {
    key: &'static str,
    what: &'static str,
    bridged: bool,
    host: Host,
    budget: Duration,
    seq: u64,
    started: Option<Started<RttEnds>>,
}

enum RttEnds {
    /// The bench's ends: pings out, pongs back (boxed: the enum stays small).
    Bridged(Box<(Sender, Receiver)>),
    /// The pinger's stdin (budgets) and stdout (round trips).
    Zenoh { ask: File, answers: File },
}

impl Rtt {
    /// `bridge_rtt` and `zenoh_rtt`, `budget` of round trips each per repetition.
    pub fn both(host: &Host, budget: Duration) -> [Rtt; 2] {
        [true, false].map(|bridged| Rtt {
            key: if bridged { "bridge_rtt" } else { "zenoh_rtt" },
            what: if bridged {
                "8 bytes, shm-bridge each way (TCP)"
            } else {
                "8 bytes, Zenoh alone (TCP)"
            },
            bridged,
            host: host.clone(),
            budget,
            seq: 0,
            started: None,
        })
    }

    fn start(&mut self) -> Result<Started<RttEnds>> {
        let host = &self.host;
        let ep = endpoint()?;
        let (kping, kpong) = (key(self.key, "ping"), key(self.key, "pong"));
        if self.bridged {
            let kind = host.default_kind()?;
            let backend = (host.backend)(kind)?;
            let name = |s: &str| segment_name(&format!("bridge_rtt_{s}"));
            let (ping_a, pong_a) = (name("a-ping"), name("a-pong"));
            let (ping_b, pong_b) = (name("b-ping"), name("b-pong"));
            let tx = Sender::create(&backend, &ping_a, &rtt_options())?;
            let rx = Receiver::create(&backend, &pong_a, &rtt_options())?;
            let echo = spawn_peer(
                host,
                &["channel-relay", kind.as_str(), &ping_b, &pong_b],
                Stdio::null(),
                Stdio::null(),
            )?;
            let a = bridge(
                host,
                "listen",
                &ep,
                &["out", &ping_a, &kping, "in", &pong_a, &kpong],
            )?;
            let b = bridge(
                host,
                "connect",
                &ep,
                &["in", &ping_b, &kping, "out", &pong_b, &kpong],
            )?;
            tx.wait_for_peer(Some(TIMEOUT))?;
            rx.wait_for_peer(Some(TIMEOUT))?;
            let mut started = Started {
                state: RttEnds::Bridged(Box::new((tx, rx))),
                peers: vec![a, b, echo],
            };
            // The first message waits for the far bridge to subscribe.
            for _ in 0..10 {
                self.seq += 1;
                bridged_round_trip(&mut started.state, self.seq, STREAM_LIMIT)?;
            }
            Ok(started)
        } else {
            let mut echo = spawn_peer(
                host,
                &["zenoh-echo", &ep, &kping, &kpong],
                Stdio::null(),
                Stdio::piped(),
            )?;
            ready(&mut stdout_of(&mut echo)?)?;
            let mut pinger = spawn_peer(
                host,
                &["zenoh-ping", &ep, &kping, &kpong],
                Stdio::piped(),
                Stdio::piped(),
            )?;
            let mut answers = stdout_of(&mut pinger)?;
            ready(&mut answers)?;
            let ask = pinger.process.stdin.take().context("the peer's stdin")?;
            Ok(Started {
                state: RttEnds::Zenoh {
                    ask: File::from(std::os::fd::OwnedFd::from(ask)),
                    answers,
                },
                peers: vec![pinger, echo],
            })
        }
    }
}

/// One round trip through the bridged channels: `seq` out, back the same.
fn bridged_round_trip(ends: &mut RttEnds, seq: u64, timeout: Duration) -> Result<()> {
    let RttEnds::Bridged(ends) = ends else {
        bail!("not the bridged case");
    };
    let (tx, rx) = &mut **ends;
    tx.send_timeout(&seq.to_le_bytes(), timeout)?;
    let back: u64 = {
        let sample = rx.recv_timeout(timeout)?;
        sample.read_value()?
    };
    if back != seq {
        bail!("the echo sent {back} back for {seq}");
    }
    Ok(())
}

impl Case for Rtt {
    fn key(&self) -> &str {
        self.key
    }
    fn what(&self) -> &str {
        self.what
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        if self.started.is_none() {
            self.started = Some(self.start()?);
        }
        let Some(started) = self.started.as_mut() else {
            bail!("the case has not started");
        };
        match &mut started.state {
            ends @ RttEnds::Bridged(_) => {
                let start = Instant::now();
                while start.elapsed() < self.budget && !stopping() {
                    self.seq += 1;
                    let t0 = Instant::now();
                    bridged_round_trip(ends, self.seq, TIMEOUT)?;
                    out.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
            }
            RttEnds::Zenoh { ask, answers } => {
                let budget = u64::try_from(self.budget.as_nanos()).unwrap_or(u64::MAX);
                ask.write_all(&budget.to_ne_bytes())?;
                let mut word = [0u8; 8];
                let limit = self.budget + TIMEOUT;
                read_within(answers, &mut word, limit)?;
                let n = u64::from_ne_bytes(word);
                for _ in 0..n {
                    read_within(answers, &mut word, limit)?;
                    out.push(u64::from_ne_bytes(word));
                }
            }
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        // The bench's sender is dropped unfinished: the relay, then both bridges end; the
        // pinger's stdin closes: it sends the end to the echo.
        self.started.map_or(Ok(()), Started::finish)
    }
}
