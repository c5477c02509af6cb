//! Round trips: the lockstep game between two threads or two processes, and one byte each way
//! through a pipe or a socketpair.
//!
//! The game is [`crate::lockstep::Board`], the same code `shm taller --lockstep` plays. The
//! peer (a thread, or the program started again as a `game` peer, see [`crate::peer`]) plays
//! the client;
//! between repetitions it sleeps on a command word of its own, so that an idle peer never takes
//! a CPU from the case being measured. The server times each of its moves: the time between two
//! of them is one round trip.
//!
//! The segment's name exists only until the peer has mapped it: then it is removed, and both
//! sides keep the memory through their mappings. Nothing can be left behind, even when the run
//! is killed. Peers die with the bench ([`crate::child`]), and are killed and waited for when a
//! case is dropped on an error.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Access, Backend, CreateOptions, Mapping, Segment, SegmentName};

use crate::case::Section;
use crate::case::{Case, Samples, segment_name};
use crate::child::Child;
use crate::host::{Host, Kind};
use crate::lockstep::{Board, Role};
use crate::stop::{Ticker, stopping};

/// The bench's own words, on cache lines the game does not use (it uses bytes 0..72): the
/// command the peer waits on (a sequence number, or [`QUIT`]) and the peer's "ready", each
/// followed by its sleeper count, and the number of rounds the next command plays.
const COMMAND_AT: usize = 128;
const ROUNDS_AT: usize = 136;
const READY_AT: usize = 192;
/// The command that ends a peer.
const QUIT: u32 = u32::MAX;
/// A peer waits this long for the bench's next command: as long as the bench runs, since it
/// dies with the bench ([`crate::child`]). A shorter wait (a minute) failed runs on a busy
/// machine, where the other cases of a repetition took longer than that.
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest wait for one move of the game before the case fails.
const MOVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a peer to start, or to end when told.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A word of the bench's protocol, `what` in errors: waiting on it always sleeps in the kernel.
fn control<'m>(map: &'m Mapping, at: usize, what: &'static str) -> shm_core::Result<Signal<'m>> {
    Ok(Signal::new(
        map.atomic::<AtomicU32>(at)?,
        map.atomic::<AtomicU32>(at + 4)?,
        WaitStrategy::Block,
    )
    .named(what))
}

/// The peer's command word.
fn command(map: &Mapping) -> shm_core::Result<Signal<'_>> {
    control(map, COMMAND_AT, "the bench's next command")
}

/// The peer's ready word.
fn ready(map: &Mapping) -> shm_core::Result<Signal<'_>> {
    control(map, READY_AT, "the peer to map the board")
}

/// Rounds per repetition, adapted so that each repetition takes about `budget`, whatever a
/// round costs on this machine now (a spinning case on a busy machine can be a thousand times
/// slower than on a quiet one); and rounds per sample, so that a sample lasts at least
/// [`Rounds::SAMPLE`] (the clock counts in steps of up to tens of nanoseconds, and reading it
/// costs about as much: a round trip of 50 ns cannot be timed alone). The rounds are played in
/// chunks of about a tenth of the budget, at most [`Rounds::CHUNK`]: between two the bench looks
/// at its stop flag and at `limit`, after which the repetition ends early.
#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    next: u64,
    batch: u64,
    budget: Duration,
    limit: Duration,
}

impl Rounds {
    const FIRST: u64 = 100;
    const MIN: u64 = 50;
    const MAX: u64 = 1_000_000;
    const CHUNK: u64 = 20_000;
    const SAMPLE: Duration = Duration::from_micros(2);

    /// About `budget` per repetition, never much more than `limit`.
    pub fn new(budget: Duration, limit: Duration) -> Self {
        Self {
            next: Self::FIRST,
            batch: 1,
            budget,
            limit,
        }
    }

    /// Learns from `rounds` rounds that took `took`.
    fn update(&mut self, rounds: u64, took: Duration) {
        let per_round = (took.as_nanos() / u128::from(rounds.max(1))).max(1);
        let fit = u64::try_from(self.budget.as_nanos() / per_round).unwrap_or(Self::MAX);
        self.next = fit.clamp(Self::MIN, Self::MAX);
        let batch = u64::try_from(Self::SAMPLE.as_nanos() / per_round).unwrap_or(1);
        self.batch = batch.clamp(1, self.next / Self::MIN);
    }

    /// Rounds per chunk.
    fn chunk(&self) -> u64 {
        (self.next / 10).clamp(Self::MIN, Self::CHUNK)
    }

    /// A clock for the next repetition.
    fn clock(&self) -> Clock {
        Clock {
            last: Instant::now(),
            count: 0,
            batch: self.batch,
            // The first moves wake the peer and warm the caches.
            skip: (self.next / 20).max(2),
        }
    }
}

/// Times a sequence of moves: one sample per `batch` moves (their mean), after `skip` moves.
struct Clock {
    last: Instant,
    count: u64,
    batch: u64,
    skip: u64,
}

impl Clock {
    #[inline]
    fn tick(&mut self, out: &mut Samples) {
        if self.skip > 0 {
            self.skip -= 1;
            if self.skip == 0 {
                self.last = Instant::now();
            }
            return;
        }
        self.count += 1;
        if self.count == self.batch {
            let now = Instant::now();
            out.push_batch(now.duration_since(self.last).as_nanos(), self.batch);
            self.last = now;
            self.count = 0;
        }
    }

    /// A new chunk starts: its first two moves include the peer's waking up on the command
    /// word, so they are not timed (nor the moves of a batch left unfinished).
    fn restart(&mut self) {
        self.skip = self.skip.max(2);
        self.count = 0;
    }
}

/// The client's side, in a peer thread or process: waits for a command, plays the rounds it
/// asks for, and again, until told to quit.
fn serve(map: &Mapping, strategy: WaitStrategy) -> Result<()> {
    let board = Board::new(map, Role::Client, strategy)?;
    let command = command(map)?;
    let rounds = map.atomic::<AtomicU32>(ROUNDS_AT)?;
    ready(map)?.store(1);
    let mut seen = 0;
    loop {
        let now = command
            .wait_until(|v| v != seen, IDLE)
            .context("no command from the bench")?;
        if now == QUIT {
            return Ok(());
        }
        seen = now;
        board.play(u64::from(rounds.load(SeqCst)), MOVE_TIMEOUT, |_, _| {})?;
    }
}

/// The `game` peer: plays the client on the board `name` of `kind`, waiting with `strategy`,
/// pinned to `cpu` if given.
pub(crate) fn game_peer(
    host: &Host,
    kind: Kind,
    name: &str,
    strategy: WaitStrategy,
    cpu: Option<usize>,
) -> Result<()> {
    if let Some(cpu) = cpu {
        affinity::set(&affinity::only(cpu)).context("pinning the peer")?;
    }
    let segment = (host.backend)(kind)?.open(&SegmentName::new(name)?, Access::ReadWrite)?;
    let map = segment.map()?;
    serve(&map, strategy)
}

/// The `bell` peer: plays the client on the POSIX board `name`, blocking on a pipe doorbell
/// (stdin rings it, stdout rings the bench) instead of a futex, until end of file.
pub(crate) fn bell_peer(host: &Host, name: &str) -> Result<()> {
    let segment = (host.backend)(Kind::Posix)?.open(&SegmentName::new(name)?, Access::ReadWrite)?;
    let map = segment.map()?;
    let rx = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let tx = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let bell = Bell::new(&map, Role::Client, rx, tx)?;
    ready(&map)?.store(1);
    bell.serve()
}

/// The `echo` peer: echoes each byte from stdin to stdout, until end of file.
pub(crate) fn echo_peer() -> Result<()> {
    let mut input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut output = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => output.write_all(&byte)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The program started again as a peer, its stdin and stdout closed.
fn peer_command(host: &Host) -> Result<Command> {
    let mut cmd = (host.peer)()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    Ok(cmd)
}

/// Who plays the client.
enum Client {
    Thread(Option<JoinHandle<Result<()>>>),
    Process(Child),
}

impl Client {
    fn check_alive(&mut self) -> Result<()> {
        match self {
            Client::Thread(handle) => {
                if handle.as_ref().is_some_and(|h| h.is_finished()) {
                    let result = handle.take().map(|h| h.join());
                    return match result {
                        Some(Ok(Err(e))) => Err(e.context("the peer thread failed")),
                        _ => Err(anyhow!("the peer thread ended early")),
                    };
                }
                Ok(())
            }
            Client::Process(p) => p.check_alive(),
        }
    }
}

/// The lockstep game between this process (server) and a peer thread or process (client).
pub struct Game {
    key: String,
    what: String,
    strategy: WaitStrategy,
    cpu: Option<usize>,
    rounds: Rounds,
    // Declared before `client`: on drop the mapping goes first, the peer is reaped after.
    map: Arc<Mapping>,
    client: Client,
    sequence: u32,
}

impl Game {
    /// Two threads of this process, spinning: the floor.
    pub fn threads(host: &Host, rounds: Rounds) -> Result<Self> {
        let (map, name, segment) = board_segment(host, host.default_kind()?, "threads")?;
        let peer_map = Arc::clone(&map);
        let handle = std::thread::Builder::new()
            .name("bench-peer".into())
            .spawn(move || serve(&peer_map, WaitStrategy::Spin))?;
        let client = Client::Thread(Some(handle));
        Self::started(
            "threads".into(),
            "two threads, spin".into(),
            WaitStrategy::Spin,
            None,
            rounds,
            (map, name, segment),
            client,
        )
    }

    /// Two processes over `kind`, waiting with `strategy`, both pinned to `cpu` if given.
    pub fn processes(
        host: &Host,
        kind: Kind,
        strategy: WaitStrategy,
        cpu: Option<usize>,
        rounds: Rounds,
    ) -> Result<Self> {
        let key = match cpu {
            Some(_) => format!("{kind}_{strategy}_one_cpu"),
            None => format!("{kind}_{strategy}"),
        };
        let what = match cpu {
            Some(_) => format!("two processes, {strategy}, one CPU"),
            None => format!("two processes, {strategy}"),
        };
        let (map, name, segment) = board_segment(host, kind, &key)?;
        let mut cmd = peer_command(host)?;
        cmd.args(["game", kind.as_str(), &name, &strategy.to_string()]);
        if let Some(cpu) = cpu {
            cmd.arg(cpu.to_string());
        }
        let client = Client::Process(Child::peer(&mut cmd)?);
        Self::started(
            key,
            what,
            strategy,
            cpu,
            rounds,
            (map, name, segment),
            client,
        )
    }

    /// Waits until the client has mapped the board, then removes the segment's name.
    fn started(
        key: String,
        what: String,
        strategy: WaitStrategy,
        cpu: Option<usize>,
        rounds: Rounds,
        (map, name, mut segment): (Arc<Mapping>, String, Box<dyn shm_core::Segment>),
        mut client: Client,
    ) -> Result<Self> {
        mapped_by_peer(&map, &key, &name, &mut segment, || client.check_alive())?;
        Ok(Self {
            key,
            what,
            strategy,
            cpu,
            rounds,
            map,
            client,
            sequence: 0,
        })
    }
}

/// Waits until the peer of case `key` has mapped the board (its ready word), then removes the
/// board's name `name`: both sides keep the memory through their mappings. Fails when the bench
/// is stopping, when `peer_alive` fails, or after [`START_TIMEOUT`].
fn mapped_by_peer(
    map: &Mapping,
    key: &str,
    name: &str,
    segment: &mut Box<dyn shm_core::Segment>,
    mut peer_alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let ready = ready(map)?;
    let start = Instant::now();
    while ready
        .wait_until(|v| v == 1, Duration::from_millis(20))
        .is_err()
    {
        if stopping() {
            bail!("interrupted while starting the peer of {key}");
        }
        peer_alive().with_context(|| format!("bench case {key}: starting the peer"))?;
        if start.elapsed() > START_TIMEOUT {
            bail!("bench case {key}: the peer did not start within {START_TIMEOUT:?}");
        }
    }
    segment
        .unlink()
        .with_context(|| format!("removing {name} (both sides have it mapped)"))
}

/// A fresh 4 KiB board on `kind`, mapped; the handle still owns the name (removed on drop).
fn board_segment(
    host: &Host,
    kind: Kind,
    key: &str,
) -> Result<(Arc<Mapping>, String, Box<dyn shm_core::Segment>)> {
    let name = segment_name(key);
    let segment =
        (host.backend)(kind)?.create(&SegmentName::new(&name)?, &CreateOptions::new(4096))?;
    let map = Arc::new(segment.map()?);
    Ok((map, name, segment))
}

impl Case for Game {
    fn key(&self) -> &str {
        &self.key
    }
    fn what(&self) -> &str {
        &self.what
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn sliced(&self) -> bool {
        self.cpu.is_none() && self.strategy != WaitStrategy::Block
    }

    fn run(&mut self, out: &mut Samples) -> Result<()> {
        let _pinned = self.cpu.map(affinity::Pinned::to).transpose()?;
        // Made after pinning: a hybrid signal does not spin when only one CPU is available.
        let board = Board::new(&self.map, Role::Server, self.strategy)?;
        let command = command(&self.map)?;
        let chunk_rounds = self.map.atomic::<AtomicU32>(ROUNDS_AT)?;
        let rounds = self.rounds.next;
        let mut clock = self.rounds.clock();
        let start = Instant::now();
        let mut played = 0;
        while played < rounds {
            let chunk = self.rounds.chunk().min(rounds - played);
            chunk_rounds.store(u32::try_from(chunk)?, SeqCst);
            self.sequence += 1;
            command.store(self.sequence);
            clock.restart();
            if let Err(e) = board.play(chunk, MOVE_TIMEOUT, |_, _| clock.tick(out)) {
                self.client.check_alive()?;
                return Err(e.into());
            }
            played += chunk;
            if stopping() || start.elapsed() > self.rounds.limit {
                break;
            }
        }
        self.rounds.update(played, start.elapsed());
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        command(&self.map)?.store(QUIT);
        match std::mem::replace(&mut self.client, Client::Thread(None)) {
            Client::Thread(handle) => match handle.map(|h| h.join()) {
                Some(Ok(result)) => result,
                Some(Err(_)) => Err(anyhow!("the peer thread panicked")),
                None => Ok(()),
            },
            Client::Process(peer) => peer.finish(START_TIMEOUT),
        }
    }
}

impl Drop for Game {
    fn drop(&mut self) {
        // A thread peer sleeps on the command word: tell it to go, so that it does not outlive
        // the case by its idle timeout. A process peer is killed by its own drop.
        if let Ok(command) = command(&self.map) {
            command.store(QUIT);
        }
    }
}

/// One byte each way through a pipe or a socketpair, with a peer process echoing it.
pub struct Echo {
    key: &'static str,
    what: &'static str,
    rounds: Rounds,
    tx: Box<dyn Write>,
    rx: Box<dyn Read>,
    peer: Child,
}

impl Echo {
    fn echo_command(host: &Host) -> Result<Command> {
        let mut cmd = peer_command(host)?;
        cmd.arg("echo");
        Ok(cmd)
    }

    /// Through the peer's stdin and stdout pipes.
    pub fn pipe(host: &Host, rounds: Rounds) -> Result<Self> {
        let mut cmd = Self::echo_command(host)?;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut peer = Child::peer(&mut cmd)?;
        let tx = peer.process.stdin.take().context("the peer's stdin")?;
        let rx = peer.process.stdout.take().context("the peer's stdout")?;
        Ok(Self {
            key: "pipe",
            what: "two processes, pipes",
            rounds,
            tx: Box::new(tx),
            rx: Box::new(rx),
            peer,
        })
    }

    /// Through a Unix socketpair, whose other end is the peer's stdin and stdout.
    pub fn socketpair(host: &Host, rounds: Rounds) -> Result<Self> {
        let (mine, theirs) = UnixStream::pair()?;
        let mut cmd = Self::echo_command(host)?;
        cmd.stdin(Stdio::from(OwnedFd::from(theirs.try_clone()?)))
            .stdout(Stdio::from(OwnedFd::from(theirs)));
        let peer = Child::peer(&mut cmd)?;
        Ok(Self {
            key: "socketpair",
            what: "two processes, socketpair",
            rounds,
            tx: Box::new(mine.try_clone()?),
            rx: Box::new(mine),
            peer,
        })
    }
}

impl Echo {
    /// Reads the echoed byte; gives up when the bench is stopping, or when the peer has not
    /// answered for [`MOVE_TIMEOUT`] (it was stopped, or is stuck).
    fn read_echo(&mut self) -> Result<()> {
        let mut byte = [0u8; 1];
        let mut waiting_since = None;
        loop {
            match self.rx.read(&mut byte) {
                Ok(1) => return Ok(()),
                Ok(_) => bail!("{}: the echo peer closed its end", self.key),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    if stopping() {
                        bail!("{}: interrupted", self.key);
                    }
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > MOVE_TIMEOUT {
                        self.peer.check_alive()?;
                        bail!(
                            "{}: waited {MOVE_TIMEOUT:?} for the echo of a byte (the peer is stopped or stuck)",
                            self.key
                        );
                    }
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("{}: reading the echo", self.key))
                    );
                }
            }
        }
    }
}

impl Case for Echo {
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
        // A read that blocks is interrupted now and then, to look at the flag and the time.
        let _ticker = Ticker::start();
        let rounds = self.rounds.next;
        let chunk = self.rounds.chunk();
        let mut clock = self.rounds.clock();
        let start = Instant::now();
        let mut played = 0;
        while played < rounds {
            self.tx.write_all(&[1])?;
            self.read_echo()?;
            clock.tick(out);
            played += 1;
            if played % chunk == 0 && (stopping() || start.elapsed() > self.rounds.limit) {
                break;
            }
        }
        self.rounds.update(played, start.elapsed());
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let Echo { tx, rx, peer, .. } = *self;
        // Closing every end we hold is the peer's end of file.
        drop(tx);
        drop(rx);
        peer.finish(START_TIMEOUT)
    }
}

/// The CPU that both processes of the one-CPU case are pinned to: the last one this process
/// may use (the first is more often busy with interrupts). None where pinning is unsupported.
pub fn one_cpu() -> Option<usize> {
    affinity::allowed().ok()?.last().copied()
}

#[cfg(target_os = "linux")]
mod affinity {
    //! The CPUs a thread may run on (`sched_getaffinity`, `sched_setaffinity`).

    use std::io;

    /// The calling thread's CPU set.
    fn get() -> io::Result<libc::cpu_set_t> {
        // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid out-pointer of the size passed.
        let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }

    /// Restricts the calling thread to `set`.
    pub fn set(set: &libc::cpu_set_t) -> io::Result<()> {
        // SAFETY: `set` is a valid cpu_set_t of the size passed; the call only reads it.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The set holding `cpu` alone.
    pub fn only(cpu: usize) -> libc::cpu_set_t {
        // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes one bit of `set`, a valid cpu_set_t, when `cpu` is inside it
        // (libc checks the bound).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        set
    }

    /// The CPUs the calling thread may run on.
    pub fn allowed() -> io::Result<Vec<usize>> {
        let set = get()?;
        let max = 8 * size_of::<libc::cpu_set_t>();
        // SAFETY: CPU_ISSET reads one bit of `set`, a valid cpu_set_t, within its size.
        Ok((0..max)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }

    /// The calling thread pinned to one CPU until dropped, when its former set comes back.
    pub struct Pinned(libc::cpu_set_t);

    impl Pinned {
        pub fn to(cpu: usize) -> io::Result<Self> {
            let before = get()?;
            set(&only(cpu))?;
            Ok(Pinned(before))
        }
    }

    impl Drop for Pinned {
        fn drop(&mut self) {
            // Nothing better to do if this fails: the bench goes on pinned.
            let _ = set(&self.0);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    //! No thread affinity here: the one-CPU case is left out.

    use std::io;

    pub struct CpuSet;
    pub struct Pinned;

    fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "CPU affinity needs Linux")
    }
    pub fn only(_cpu: usize) -> CpuSet {
        CpuSet
    }
    pub fn set(_set: &CpuSet) -> io::Result<()> {
        Err(unsupported())
    }
    pub fn allowed() -> io::Result<Vec<usize>> {
        Err(unsupported())
    }
    impl Pinned {
        pub fn to(_cpu: usize) -> io::Result<Self> {
            Err(unsupported())
        }
    }
}

/// The lockstep game with `block` waits on a doorbell instead of a futex: the experiment behind
/// the choice of the futex (see the README's Performance section). A waiter announces that it
/// sleeps (the sleepers word, as [`Signal`] does), checks the value, and reads one byte from its
/// pipe; a writer stores the value and, only when the peer announced it sleeps, writes one byte
/// (non-blocking: a full pipe rings already). A pipe wakes its reader with the scheduler's
/// "sync" hint, which a futex wake does not carry.
struct Bell<'m> {
    mine: &'m AtomicU32,
    other: &'m AtomicU32,
    other_sleepers: &'m AtomicU32,
    my_sleepers: &'m AtomicU32,
    rx: File,
    tx: File,
}

impl<'m> Bell<'m> {
    fn new(map: &'m Mapping, role: Role, rx: File, tx: File) -> Result<Self> {
        use crate::lockstep::{CLIENT_AT, CLIENT_SLEEPERS_AT, SERVER_AT, SERVER_SLEEPERS_AT};
        let (mine, mine_sl, other, other_sl) = match role {
            Role::Server => (SERVER_AT, SERVER_SLEEPERS_AT, CLIENT_AT, CLIENT_SLEEPERS_AT),
            Role::Client => (CLIENT_AT, CLIENT_SLEEPERS_AT, SERVER_AT, SERVER_SLEEPERS_AT),
        };
        set_nonblocking(&tx)?;
        Ok(Self {
            mine: map.atomic(mine)?,
            my_sleepers: map.atomic(mine_sl)?,
            other: map.atomic(other)?,
            other_sleepers: map.atomic(other_sl)?,
            rx,
            tx,
        })
    }

    /// Stores `v` and rings when the peer sleeps.
    fn store(&mut self, v: u32) -> Result<()> {
        self.mine.store(v, SeqCst);
        if self.other_sleepers.load(SeqCst) != 0 {
            match self.tx.write(&[1]) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(anyhow::Error::from(e).context("ringing the doorbell")),
            }
        }
        Ok(())
    }

    /// Sleeps on the doorbell until the peer's value exceeds `mine`; `Ok(None)` at end of
    /// file. Gives up when the bench is stopping or after [`MOVE_TIMEOUT`] (a pipe read is
    /// interrupted by the bench's tick; a peer's read ends when the bench closes the pipe).
    fn wait_above(&mut self, mine: u32) -> Result<Option<u32>> {
        self.my_sleepers.fetch_add(1, SeqCst);
        let result = self.sleep_above(mine);
        self.my_sleepers.fetch_sub(1, SeqCst);
        result
    }

    fn sleep_above(&mut self, mine: u32) -> Result<Option<u32>> {
        let mut byte = [0u8; 1];
        let mut waiting_since = None;
        loop {
            let v = self.other.load(SeqCst);
            if v as i32 > mine as i32 {
                return Ok(Some(v));
            }
            match self.rx.read(&mut byte) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    if stopping() {
                        bail!("interrupted");
                    }
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > MOVE_TIMEOUT {
                        bail!("waited {MOVE_TIMEOUT:?} for the peer's move (doorbell)");
                    }
                }
                Err(e) => return Err(anyhow::Error::from(e).context("waiting on the doorbell")),
            }
        }
    }

    /// The client's side: answers every move until the bench closes the doorbell.
    fn serve(mut self) -> Result<()> {
        let mut mine = self.mine.load(SeqCst);
        while let Some(other) = self.wait_above(mine)? {
            mine = other.wrapping_add(1);
            self.store(mine)?;
        }
        Ok(())
    }
}

/// Sets `O_NONBLOCK` on `file`'s open file description.
fn set_nonblocking(file: &File) -> Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor this process owns; no memory is passed.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags != -1 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != -1
    };
    if !ok {
        return Err(anyhow::Error::from(std::io::Error::last_os_error())
            .context("making the doorbell non-blocking"));
    }
    Ok(())
}

/// `posix_block_bell`: the lockstep game with blocking waits on a pipe doorbell.
pub struct BellGame {
    rounds: Rounds,
    // Declared before `peer`: the mapping and pipes go first, the peer is reaped after.
    map: Arc<Mapping>,
    rx: Option<File>,
    tx: Option<File>,
    peer: Child,
}

impl BellGame {
    /// Starts the peer on a fresh POSIX board.
    pub fn new(host: &Host, rounds: Rounds) -> Result<Self> {
        let key = "posix_block_bell";
        let (map, name, mut segment) = board_segment(host, Kind::Posix, key)?;
        let mut cmd = peer_command(host)?;
        cmd.args(["bell", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut peer = Child::peer(&mut cmd)?;
        let tx = File::from(OwnedFd::from(
            peer.process.stdin.take().context("the peer's stdin")?,
        ));
        let rx = File::from(OwnedFd::from(
            peer.process.stdout.take().context("the peer's stdout")?,
        ));
        mapped_by_peer(&map, key, &name, &mut segment, || peer.check_alive())?;
        Ok(Self {
            rounds,
            map,
            rx: Some(rx),
            tx: Some(tx),
            peer,
        })
    }
}

impl Case for BellGame {
    fn key(&self) -> &str {
        "posix_block_bell"
    }
    fn what(&self) -> &str {
        "two processes, block, pipe doorbell"
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }

    fn run(&mut self, out: &mut Samples) -> Result<()> {
        let _ticker = Ticker::start();
        let (Some(rx), Some(tx)) = (&self.rx, &self.tx) else {
            bail!("the doorbell is closed");
        };
        let mut bell = Bell::new(&self.map, Role::Server, rx.try_clone()?, tx.try_clone()?)?;
        let rounds = self.rounds.next;
        let chunk = self.rounds.chunk();
        let mut clock = self.rounds.clock();
        let start = Instant::now();
        let mut played = 0;
        while played < rounds {
            let mine = bell.other.load(SeqCst).wrapping_add(1);
            bell.store(mine)?;
            clock.tick(out);
            match bell.wait_above(mine) {
                Ok(Some(_)) => {}
                Ok(None) => bail!("the doorbell peer closed its end"),
                Err(e) => {
                    self.peer.check_alive()?;
                    return Err(e);
                }
            }
            played += 1;
            if played % chunk == 0 && (stopping() || start.elapsed() > self.rounds.limit) {
                break;
            }
        }
        self.rounds.update(played, start.elapsed());
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        // Closing the doorbell is the peer's end of file.
        self.tx = None;
        self.rx = None;
        let BellGame { peer, .. } = *self;
        peer.finish(START_TIMEOUT)
    }
}
