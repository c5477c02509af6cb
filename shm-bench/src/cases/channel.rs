//! Channel cases: `channel_rtt` (8 bytes there and back through a shm-channel request/response
//! pair, two processes, default waiting) and four streams of the same bytes in 64 KiB messages,
//! every byte checked by the receiving process: `channel_stream` (zero-copy on both sides),
//! `copy_stream` (a ring of `write_at`/`read_at` copies over shm-core, as a user would write it
//! without shm-channel), `pipe_stream` and `socket_stream`.
//!
//! The peer is the program started again as a peer ([`crate::peer`]: `channel-echo`,
//! `channel-stream`, `copy-ring`, `fd`); it dies with the bench ([`crate::child`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shm_channel::{Client, Error, Options, Receiver, Sender, Server};
use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Access, Backend, CreateOptions, Mapping, Segment, SegmentName};

use crate::case::Section;
use crate::case::{Case, Samples, Unit, segment_name};
use crate::child::Child;
use crate::host::Host;
use crate::stop::stopping;
use common::{TIMEOUT, batch_for, rtt_options, spawn_peer};

pub(crate) mod asynch;
pub(crate) mod common;
pub(crate) mod service;

/// Messages of the streams.
pub(crate) const MESSAGE: usize = 64 * 1024;
/// Slots of the stream rings (2 MiB: stays in a large L2 or L3).
const SLOTS: u32 = 32;

pub(crate) fn stream_options() -> Options {
    Options::new(SLOTS, MESSAGE)
}

/// The stream's content: 64-bit word `k` of the stream is `k` (every message is a whole
/// number of words). A producer writes it where it goes; a consumer checks it where it is. In
/// place for the channel; through a private buffer for the others, as their APIs require.
pub(crate) fn fill(words: &mut [u64], at_byte: u64) {
    let first = at_byte / 8;
    for (k, w) in words.iter_mut().enumerate() {
        *w = first + k as u64;
    }
}

pub(crate) fn check(words: &[u64], at_byte: u64) -> bool {
    let first = at_byte / 8;
    // No early exit: the loop vectorizes, and a wrong stream is the exception.
    let wrong = words
        .iter()
        .enumerate()
        .fold(0, |acc, (k, &w)| acc | (w ^ (first + k as u64)));
    wrong == 0
}

/// A private buffer of words as bytes.
fn bytes_of(words: &[u64]) -> &[u8] {
    // SAFETY: u8 has no alignment and every u64 is 8 initialized bytes.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), words.len() * 8) }
}

fn bytes_of_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above; any byte pattern is a valid u64, so writes through it are fine.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

/// Bytes as words, where they are 8-aligned and a whole number of words.
pub(crate) fn words_of(bytes: &[u8]) -> Option<&[u64]> {
    // SAFETY: every bit pattern is a valid u64; align_to puts only aligned whole words in
    // the middle part.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    (head.is_empty() && tail.is_empty()).then_some(words)
}

pub(crate) fn words_of_mut(bytes: &mut [u8]) -> Option<&mut [u64]> {
    // SAFETY: as in words_of.
    let (head, words, tail) = unsafe { bytes.align_to_mut::<u64>() };
    (head.is_empty() && tail.is_empty()).then_some(words)
}

/// The `channel-echo` peer: answers each 8-byte request of the pair `name` with the same bytes,
/// until the client closes it.
pub(crate) fn echo_peer<B: Backend>(backend: &B, name: &str) -> Result<()> {
    let mut server = Server::open(backend, name, &rtt_options())?;
    let mut buf = [0u8; 8];
    loop {
        match server.recv() {
            Ok(s) => s.copy_to(&mut buf)?,
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        server.reply(&buf)?;
    }
}

/// The `channel-stream` peer: receives the stream `name` (opened, or created), checks every message where it lies,
/// and says on stdout how many were wrong after each `bytes`.
pub(crate) fn stream_peer<B: Backend>(backend: &B, name: &str, bytes: u64) -> Result<()> {
    use std::os::fd::AsFd;
    let mut verdicts = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    // Or create: behind a bridge, the `in` half may not have made it yet.
    let mut rx = Receiver::open_or_create(backend, name, &stream_options())?;
    let (mut got, mut wrong) = (0u64, 0u64);
    loop {
        let sample = match rx.recv() {
            Ok(s) => s,
            // The bench drops its sender when the case ends (an aborted stream).
            Err(Error::Closed | Error::Aborted) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // SAFETY: the sender is this bench (shm-channel): it never writes a slot it has sent
        // until this sample releases it.
        let data = unsafe { sample.as_slice() };
        if !words_of(data).is_some_and(|w| check(w, got)) {
            wrong += 1;
        }
        got += data.len() as u64;
        drop(sample);
        if got == bytes {
            verdicts.write_all(&wrong.to_ne_bytes())?;
            (got, wrong) = (0, 0);
        }
    }
}

/// `channel_rtt`: 8 bytes there and back through a request/response pair.
pub struct Rtt {
    // Declared before `peer`: the client closes the pair first, then the peer is reaped.
    client: Option<Client>,
    peer: Option<Child>,
    budget: Duration,
    batch: u64,
    seq: u64,
}

impl Rtt {
    pub fn new(host: &Host, budget: Duration) -> Result<Rtt> {
        let name = segment_name("channel_rtt");
        let kind = host.default_kind()?;
        let client = Client::create(&(host.backend)(kind)?, &name, &rtt_options())?;
        let peer = spawn_peer(
            host,
            &["channel-echo", kind.as_str(), &name],
            Stdio::null(),
            Stdio::null(),
        )?;
        client.wait_for_peer(Some(TIMEOUT))?;
        Ok(Rtt {
            client: Some(client),
            peer: Some(peer),
            budget,
            batch: 1,
            seq: 0,
        })
    }

    fn call(&mut self) -> Result<()> {
        let Some(client) = self.client.as_mut() else {
            bail!("the case has finished");
        };
        self.seq += 1;
        // Default waiting, no deadline (a dead peer is PeerDead within ~40 ms anyway).
        let back: u64 = client.call(&self.seq)?.read_value()?;
        if back != self.seq {
            bail!("the echo sent {back} back for {}", self.seq);
        }
        Ok(())
    }
}

impl Case for Rtt {
    fn key(&self) -> &str {
        "channel_rtt"
    }
    fn what(&self) -> &str {
        "shm-channel, 8 bytes each way"
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn sliced(&self) -> bool {
        true
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        // Wake the peer and warm the caches, then time batches of at least ~2 us (the clock
        // ticks too coarsely for one round trip alone). The first time, 1000 untimed calls
        // size the batch: timed one by one, a call would carry a clock read.
        let warm = if self.batch == 1 { 1000 } else { 100 };
        let t0 = Instant::now();
        for _ in 0..warm {
            self.call()?;
        }
        if self.batch == 1 {
            self.batch = batch_for(t0.elapsed(), warm);
        }
        let start = Instant::now();
        let (mut calls, mut last) = (0u64, Instant::now());
        while start.elapsed() < self.budget && !stopping() {
            for _ in 0..self.batch {
                self.call()?;
            }
            calls += self.batch;
            let now = Instant::now();
            out.push_batch(now.duration_since(last).as_nanos(), self.batch);
            last = now;
        }
        self.batch = batch_for(start.elapsed(), u128::from(calls));
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        drop(self.client.take()); // closes the pair: the echo ends
        match self.peer.take() {
            Some(p) => p.finish(TIMEOUT),
            None => Ok(()),
        }
    }
}

/// How a stream moves its bytes.
enum Transport {
    /// The channel, and the pipe on which the peer says how many messages were wrong.
    Channel {
        tx: Sender,
        verdicts: File,
    },
    Copy(CopyRing),
    Fd {
        data: File,
        ack: File,
    },
}

/// One of the four streams: `bytes` per repetition, one sample each.
pub struct Stream {
    key: &'static str,
    what: &'static str,
    bytes: u64,
    /// A private message buffer, for the transports that copy.
    buf: Vec<u64>,
    // Declared before `peer`: the sending side closes first, then the peer is reaped.
    transport: Option<Transport>,
    peer: Option<Child>,
}

impl Stream {
    /// The four streams of `bytes` each.
    pub fn all(host: &Host, bytes: u64) -> Result<Vec<Stream>> {
        Ok(vec![
            Self::channel(host, bytes)?,
            Self::copy(host, bytes)?,
            Self::fd(host, bytes, false)?,
            Self::fd(host, bytes, true)?,
        ])
    }

    fn channel(host: &Host, bytes: u64) -> Result<Stream> {
        let name = segment_name("channel_stream");
        let kind = host.default_kind()?;
        let tx = Sender::create(&(host.backend)(kind)?, &name, &stream_options())?;
        let (verdicts, theirs) = pipe()?;
        let peer = spawn_peer(
            host,
            &["channel-stream", kind.as_str(), &name, &bytes.to_string()],
            Stdio::null(),
            Stdio::from(theirs),
        )?;
        tx.wait_for_peer(Some(TIMEOUT))?;
        Ok(Stream {
            key: "channel_stream",
            what: "shm-channel, zero-copy",
            bytes,
            buf: vec![0; MESSAGE / 8],
            transport: Some(Transport::Channel {
                tx,
                verdicts: File::from(verdicts),
            }),
            peer: Some(peer),
        })
    }

    fn copy(host: &Host, bytes: u64) -> Result<Stream> {
        let name = segment_name("copy_stream");
        let kind = host.default_kind()?;
        let (ring, segment) = CopyRing::create(&(host.backend)(kind)?, &name)?;
        let peer = spawn_peer(
            host,
            &["copy-ring", kind.as_str(), &name, &bytes.to_string()],
            Stdio::null(),
            Stdio::null(),
        )?;
        ring.signal(CR_READY)?
            .wait_until(|v| v != 0, TIMEOUT)
            .context("the copy peer did not start")?;
        // The peer has mapped it: the name has done its work (nothing left if killed).
        drop(segment);
        Ok(Stream {
            key: "copy_stream",
            what: "write_at/read_at ring",
            bytes,
            buf: vec![0; MESSAGE / 8],
            transport: Some(Transport::Copy(ring)),
            peer: Some(peer),
        })
    }

    fn fd(host: &Host, bytes: u64, socket: bool) -> Result<Stream> {
        let bytes_word = bytes.to_string();
        let words = ["fd", &bytes_word];
        let (data, ack, peer) = if socket {
            let (mine, theirs) = UnixStream::pair()?;
            let theirs = OwnedFd::from(theirs);
            let peer = spawn_peer(
                host,
                &words,
                Stdio::from(theirs.try_clone()?),
                Stdio::from(theirs),
            )?;
            let ack = File::from(OwnedFd::from(mine.try_clone()?));
            (File::from(OwnedFd::from(mine)), ack, peer)
        } else {
            let (data_r, data_w) = pipe()?;
            let (ack_r, ack_w) = pipe()?;
            let peer = spawn_peer(host, &words, Stdio::from(data_r), Stdio::from(ack_w))?;
            (File::from(data_w), File::from(ack_r), peer)
        };
        Ok(Stream {
            key: if socket {
                "socket_stream"
            } else {
                "pipe_stream"
            },
            what: if socket { "Unix socketpair" } else { "pipe" },
            bytes,
            buf: vec![0; MESSAGE / 8],
            transport: Some(Transport::Fd { data, ack }),
            peer: Some(peer),
        })
    }

    /// Moves `bytes` to the peer and waits until it has checked them all.
    fn send_all(&mut self) -> Result<()> {
        let (bytes, buf) = (self.bytes, &mut self.buf);
        let Some(transport) = self.transport.as_mut() else {
            bail!("the case has finished");
        };
        let mut sent = 0u64;
        match transport {
            Transport::Channel { tx, verdicts } => {
                while sent < bytes {
                    let len = MESSAGE.min((bytes - sent) as usize);
                    let mut loan = tx.loan_timeout(TIMEOUT)?;
                    // SAFETY: the receiver is this bench's peer (shm-channel): it never reads
                    // a slot before it is sent.
                    let slot = unsafe { loan.as_mut_slice() };
                    let words = words_of_mut(&mut slot[..len]).context("a slot is 8-aligned")?;
                    fill(words, sent);
                    loan.send(len)?;
                    sent += len as u64;
                }
                let mut wrong = [0u8; 8];
                verdicts.read_exact(&mut wrong)?;
                let wrong = u64::from_ne_bytes(wrong);
                if wrong != 0 {
                    bail!("the receiver found {wrong} wrong messages");
                }
            }
            Transport::Copy(ring) => ring.send_all(bytes, buf)?,
            Transport::Fd { data, ack } => {
                while sent < bytes {
                    let len = MESSAGE.min((bytes - sent) as usize);
                    fill(&mut buf[..len / 8], sent);
                    data.write_all(bytes_of(&buf[..len / 8]))?;
                    sent += len as u64;
                }
                let mut verdict = [0u8; 1];
                ack.read_exact(&mut verdict)?;
                if verdict[0] != 0 {
                    bail!("the receiver found wrong bytes");
                }
            }
        }
        Ok(())
    }
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
        let t0 = Instant::now();
        self.send_all()?;
        out.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        if let Some(Transport::Copy(ring)) = &self.transport {
            ring.signal(CR_TAIL)?.store(ring_quit());
        }
        drop(self.transport.take()); // closes: the peer ends
        match self.peer.take() {
            Some(p) => p.finish(TIMEOUT),
            None => Ok(()),
        }
    }
}

/// A pipe (read end, write end), both close-on-exec (the child gets its end as stdin/stdout).
pub(crate) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds` and touches nothing else.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The tail value that tells a copy peer to leave.
fn ring_quit() -> u32 {
    u32::MAX
}

/// A ring of 64 KiB slots moved with `write_at`/`read_at`, as a user of shm-core alone would
/// write it: counts and an acknowledgement in atomics, lengths and bytes copied.
struct CopyRing {
    map: Mapping,
}

const CR_TAIL: usize = 0;
const CR_HEAD: usize = 64;
const CR_READY: usize = 128;
const CR_ACK: usize = 192;
const CR_SLOTS: usize = 256;
const CR_STRIDE: usize = 8 + MESSAGE;

impl CopyRing {
    fn size() -> usize {
        CR_SLOTS + SLOTS as usize * CR_STRIDE
    }

    fn create<B: Backend>(backend: &B, name: &str) -> Result<(CopyRing, B::Segment)> {
        let segment =
            backend.create(&SegmentName::new(name)?, &CreateOptions::new(Self::size()))?;
        let ring = Self::on(segment.map()?)?;
        Ok((ring, segment))
    }

    fn open<B: Backend>(backend: &B, name: &str) -> Result<CopyRing> {
        let segment = backend.open(&SegmentName::new(name)?, Access::ReadWrite)?;
        let map = segment.map()?;
        if map.len() != Self::size() {
            bail!("{name} is not the bench's copy ring");
        }
        Self::on(map)
    }

    fn on(map: Mapping) -> Result<CopyRing> {
        let ring = CopyRing { map };
        // Every signal's words are there (checked once, so that `signal` cannot fail later).
        for at in [CR_TAIL, CR_HEAD, CR_READY, CR_ACK] {
            ring.signal(at)?;
        }
        Ok(ring)
    }

    /// The signal whose value is at `at` (its sleepers follow), for as long as the ring is
    /// borrowed.
    fn signal(&self, at: usize) -> Result<Signal<'_>> {
        let value = self.map.atomic::<AtomicU32>(at)?;
        let sleepers = self.map.atomic::<AtomicU32>(at + 4)?;
        Ok(Signal::new(value, sleepers, WaitStrategy::Hybrid))
    }

    fn slot(count: u32) -> usize {
        CR_SLOTS + (count % SLOTS) as usize * CR_STRIDE
    }

    /// The sender: `bytes` in messages, then waits for the acknowledgement.
    fn send_all(&mut self, bytes: u64, buf: &mut [u64]) -> Result<()> {
        let (tail_signal, head, ack) = (
            self.signal(CR_TAIL)?,
            self.signal(CR_HEAD)?,
            self.signal(CR_ACK)?,
        );
        // Read before sending: the peer may acknowledge before this side looks again.
        let want = ack.load().wrapping_add(1);
        let mut tail = tail_signal.load();
        let mut sent = 0u64;
        while sent < bytes {
            let len = MESSAGE.min((bytes - sent) as usize);
            let t = tail;
            head.wait_until(|h| t.wrapping_sub(h) < SLOTS, TIMEOUT)
                .context("the copy peer stopped reading")?;
            let at = Self::slot(tail);
            self.map.write_at(at, &(len as u64).to_ne_bytes())?;
            fill(&mut buf[..len / 8], sent);
            self.map.write_at(at + 8, bytes_of(&buf[..len / 8]))?;
            tail = tail.wrapping_add(1);
            tail_signal.store(tail);
            sent += len as u64;
        }
        let verdict = ack
            .wait_until(|a| a == want || a == u32::MAX, TIMEOUT)
            .context("the copy peer did not finish")?;
        if verdict == u32::MAX {
            bail!("the copy peer found wrong bytes");
        }
        Ok(())
    }
}

/// The `copy-ring` peer: copies each message out and checks it.
pub(crate) fn copy_peer<B: Backend>(backend: &B, name: &str, bytes: u64) -> Result<()> {
    let ring = CopyRing::open(backend, name)?;
    let (tail_signal, head_signal, ack) = (
        ring.signal(CR_TAIL)?,
        ring.signal(CR_HEAD)?,
        ring.signal(CR_ACK)?,
    );
    ring.signal(CR_READY)?.store(1);
    let mut buf = vec![0u64; MESSAGE / 8];
    let (mut head, mut got, mut ok) = (head_signal.load(), 0u64, true);
    // It dies with the bench: no reason to give up while the bench runs (see game::IDLE).
    let idle = Duration::from_secs(24 * 60 * 60);
    loop {
        let h = head;
        let tail = tail_signal.wait_until(|t| t != h, idle)?;
        if tail == ring_quit() {
            return Ok(());
        }
        let at = CopyRing::slot(head);
        let mut len = [0u8; 8];
        ring.map.read_at(at, &mut len)?;
        let len = (u64::from_ne_bytes(len) as usize).min(MESSAGE) / 8 * 8;
        ring.map
            .read_at(at + 8, bytes_of_mut(&mut buf[..len / 8]))?;
        ok &= check(&buf[..len / 8], got);
        got += len as u64;
        head = head.wrapping_add(1);
        head_signal.store(head);
        if got == bytes {
            let acked = ack.load();
            ack.store(if ok { acked.wrapping_add(1) } else { u32::MAX });
            (got, ok) = (0, true);
        }
    }
}

/// The `fd` peer, a pipe's or socket's receiver: reads stdin, checks it, acknowledges each `bytes` on
/// stdout with one byte (0: all right).
pub(crate) fn fd_peer(bytes: u64) -> Result<()> {
    use std::os::fd::AsFd;
    let mut input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut output = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut buf = vec![0u64; MESSAGE / 8];
    let (mut got, mut ok) = (0u64, true);
    loop {
        // A message at a time, whatever pieces the kernel hands it out in.
        let want = MESSAGE.min((bytes - got) as usize);
        match input.read_exact(bytes_of_mut(&mut buf[..want / 8])) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        ok &= check(&buf[..want / 8], got);
        got += want as u64;
        if got == bytes {
            output.write_all(&[u8::from(!ok)])?;
            (got, ok) = (0, true);
        }
    }
}
