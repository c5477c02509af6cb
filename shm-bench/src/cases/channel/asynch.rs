//! `async_idle`: many ends awaiting in one process cost no CPU and two threads (see
//! [`AsyncIdle`]).
//!
//! `async_rtt`: `channel_rtt` awaited. A tokio current-thread client awaits each call
//! (`Client::call_async`) answered by a tokio current-thread server in another process
//! (`Server::recv_async`): what an async program pays over the blocking pair (ratio
//! `async_rtt_vs_channel_rtt`, target <= 1.5).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use shm_channel::{Client, Error, Server};
use shm_core::Backend;

use super::common::{TIMEOUT, batch_for, rtt_options, spawn_peer};
use crate::case::Section;
use crate::case::{Case, Samples, Unit, segment_name};
use crate::child::Child;
use crate::host::Host;
use crate::stop::stopping;

/// A tokio runtime on this thread only.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().build()?)
}

/// The `channel-echo-async` peer: a tokio server task answering each 8-byte request of the
/// pair `name` with the same bytes, until the client closes it.
pub(crate) fn echo_peer<B: Backend>(backend: &B, name: &str) -> Result<()> {
    let mut server = Server::open(backend, name, &rtt_options())?;
    runtime()?.block_on(async move {
        let mut buf = [0u8; 8];
        loop {
            match server.recv_async().await {
                Ok(s) => s.copy_to(&mut buf)?,
                Err(Error::Closed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            server.reply(&buf)?;
        }
    })
}

/// `async_rtt`: 8 bytes there and back, awaited on both sides.
pub struct AsyncRtt {
    // Declared before `peer`: the client closes the pair first, then the peer is reaped.
    client: Option<Client>,
    peer: Option<Child>,
    rt: tokio::runtime::Runtime,
    budget: Duration,
    batch: u64,
    seq: u64,
}

impl AsyncRtt {
    pub fn new(host: &Host, budget: Duration) -> Result<AsyncRtt> {
        let name = segment_name("async_rtt");
        let kind = host.default_kind()?;
        let client = Client::create(&(host.backend)(kind)?, &name, &rtt_options())?;
        let peer = spawn_peer(
            host,
            &["channel-echo-async", kind.as_str(), &name],
            Stdio::null(),
            Stdio::null(),
        )?;
        client.wait_for_peer(Some(TIMEOUT))?;
        Ok(AsyncRtt {
            client: Some(client),
            peer: Some(peer),
            rt: runtime()?,
            budget,
            batch: 1,
            seq: 0,
        })
    }
}

/// `count` calls awaited, each checked; returns the last sequence number.
async fn calls(client: &mut Client, mut seq: u64, count: u64) -> Result<u64> {
    for _ in 0..count {
        seq += 1;
        let back: u64 = client.call_async(&seq).await?.read_value()?;
        if back != seq {
            bail!("the echo sent {back} back for {seq}");
        }
    }
    Ok(seq)
}

impl Case for AsyncRtt {
    fn key(&self) -> &str {
        "async_rtt"
    }
    fn what(&self) -> &str {
        "shm-channel awaited in tokio, both sides"
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn sliced(&self) -> bool {
        true
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        let Some(client) = self.client.as_mut() else {
            bail!("the case has finished");
        };
        let (budget, mut batch, mut seq) = (self.budget, self.batch, self.seq);
        // As channel_rtt: warm up, size the batch the first time, time batches of ~2 us.
        let result = self.rt.block_on(async {
            let warm = if batch == 1 { 1000 } else { 100 };
            let t0 = Instant::now();
            seq = calls(client, seq, warm).await?;
            if batch == 1 {
                batch = batch_for(t0.elapsed(), u128::from(warm));
            }
            let start = Instant::now();
            let (mut done, mut last) = (0u64, Instant::now());
            while start.elapsed() < budget && !stopping() {
                seq = calls(client, seq, batch).await?;
                done += batch;
                let now = Instant::now();
                out.push_batch(now.duration_since(last).as_nanos(), batch);
                last = now;
            }
            batch = batch_for(start.elapsed(), u128::from(done));
            anyhow::Ok(())
        });
        (self.batch, self.seq) = (batch, seq);
        result
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        drop(self.client.take()); // closes the pair: the echo ends
        match self.peer.take() {
            Some(p) => p.finish(TIMEOUT),
            None => Ok(()),
        }
    }
}

/// What the `async-idle` peer prints: CPU time used while idle (scaled to one second), and
/// threads created by the awaits.
fn parse_idle(line: &str) -> Option<(u64, u64)> {
    let mut words = line.split_whitespace().map(str::parse::<u64>);
    match (words.next(), words.next(), words.next()) {
        (Some(Ok(cpu)), Some(Ok(threads)), None) => Some((cpu, threads)),
        _ => None,
    }
}

/// The process's CPU time (user and system, all threads).
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage, ours; zeroed is a valid rusage if it fails.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let t = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// The threads of this process, as the kernel counts them.
fn os_threads() -> Result<u64> {
    Ok(std::fs::read_dir("/proc/self/task")?.count() as u64)
}

/// Lets this process hold `fds` more descriptors (a POSIX channel end keeps one): raises the
/// soft limit up to the hard one if needed.
fn allow_descriptors(fds: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit, ours.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0
            && lim.rlim_cur < fds + 64
            && lim.rlim_cur < lim.rlim_max
        {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The `async-idle` peer: `ends` receivers (their senders in this process too, `prefix-I`)
/// awaiting in tokio current-thread tasks; once every one is registered, `idle` passes with
/// the runtime parked. Prints the CPU time the process used meanwhile (scaled to a second, in
/// ns) and the threads made since it started, then closes every stream and checks that each
/// task ends with `Closed`.
pub(crate) fn idle_peer<B: Backend>(
    backend: &B,
    prefix: &str,
    ends: usize,
    idle: Duration,
) -> Result<()> {
    let threads_before = os_threads()?;
    allow_descriptors(2 * ends as u64);
    let opts = shm_channel::Options::new(1, 16);
    let mut rxs = Vec::with_capacity(ends);
    let mut txs = Vec::with_capacity(ends);
    for i in 0..ends {
        let name = format!("{prefix}-{i}");
        rxs.push(shm_channel::Receiver::create(backend, &name, &opts)?);
        txs.push(shm_channel::Sender::open(backend, &name, &opts)?);
    }
    let rt = runtime()?;
    let tasks: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| rt.spawn(async move { rx.recv_async().await.map(|_| ()) }))
        .collect();
    // Every task polled once and registered (none has a message).
    let t0 = Instant::now();
    rt.block_on(async {
        while shm_core::reactor::registered() < ends {
            if t0.elapsed() > TIMEOUT {
                bail!(
                    "only {} of {ends} awaits registered",
                    shm_core::reactor::registered()
                );
            }
            tokio::task::yield_now().await;
        }
        anyhow::Ok(())
    })?;
    // Idle: the tasks wait in the reactor, the runtime's thread sleeps.
    let before = cpu_time();
    let start = Instant::now();
    std::thread::sleep(idle);
    let used = cpu_time().saturating_sub(before);
    let took = start.elapsed();
    let threads = os_threads()?.saturating_sub(threads_before);
    let per_second = used.as_nanos() * 1_000_000_000 / took.as_nanos().max(1);
    for mut tx in txs {
        tx.finish_timeout(Duration::ZERO).ok();
    }
    rt.block_on(async {
        for t in tasks {
            match t.await? {
                Err(Error::Closed) => {}
                other => bail!("an idle await ended with {other:?}, not Closed"),
            }
        }
        anyhow::Ok(())
    })?;
    println!("{per_second} {threads}");
    Ok(())
}

/// `async_idle`: `ends` channel ends awaiting in one process (a peer of its own, so that its
/// threads are theirs) for `idle`: the CPU time the process uses meanwhile (per second idle,
/// target < 10 ms) and the threads the awaits made (target <= 2). Measured once per run (the
/// first repetition), not once per repetition: it is a second of doing nothing.
pub struct AsyncIdle {
    what: String,
    peer: Option<Command>,
    prefix: String,
    ends: usize,
    idle: Duration,
    threads: Option<u64>,
}

impl AsyncIdle {
    pub fn new(host: &Host, ends: usize, idle: Duration) -> Result<AsyncIdle> {
        let kind = host.default_kind()?;
        let prefix = segment_name("async_idle");
        let mut cmd = (host.peer)()?;
        cmd.args([
            "async-idle",
            kind.as_str(),
            &prefix,
            &ends.to_string(),
            &idle.as_millis().to_string(),
        ]);
        Ok(AsyncIdle {
            what: format!("{ends} ends awaiting in one process, idle"),
            peer: Some(cmd),
            prefix,
            ends,
            idle,
            threads: None,
        })
    }
}

impl Case for AsyncIdle {
    fn key(&self) -> &str {
        "async_idle"
    }
    fn what(&self) -> &str {
        &self.what
    }
    fn section(&self) -> Section {
        Section::Idle
    }
    fn unit(&self) -> Unit {
        Unit::Idle {
            threads: self.threads.unwrap_or(0),
        }
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        let Some(mut cmd) = self.peer.take() else {
            return Ok(()); // measured in the first repetition
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut peer = Child::peer(&mut cmd)?;
        let limit = TIMEOUT * 6 + self.idle;
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = peer.try_wait()? {
                break status;
            }
            if stopping() {
                return Ok(()); // the peer is killed with the guard
            }
            if t0.elapsed() > limit {
                bail!(
                    "{} ends awaiting for {:?} did not finish in {limit:?} ({}*)",
                    self.ends,
                    self.idle,
                    self.prefix
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut text = String::new();
        if let Some(mut stdout) = peer.process.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut text)?;
        }
        if !status.success() {
            bail!("the async-idle peer failed ({status})");
        }
        let Some((cpu, threads)) = text.lines().last().and_then(parse_idle) else {
            bail!("the async-idle peer said {text:?}");
        };
        out.push(cpu.max(1));
        self.threads = Some(threads);
        Ok(())
    }
}
