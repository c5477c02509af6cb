//! `async_rtt`: `channel_rtt` awaited. A tokio current-thread client awaits each call
//! (`Client::call_async`) answered by a tokio current-thread server in another process
//! (`Server::recv_async`): what an async program pays over the blocking pair (ratio
//! `async_rtt_vs_channel_rtt`, target <= 1.5).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use shm_channel::{Client, Error, Server};
use shm_core::Backend;

use super::{TIMEOUT, batch_for, rtt_options, spawn_peer};
use crate::Host;
use crate::child::Child;
use crate::harness::{Case, Samples, segment_name, stopping};
use crate::report::Section;

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
