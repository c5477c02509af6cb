//! Publish/subscribe cases: `fanout_1` and `fanout_4`, one publisher (the bench) and 1 or 4
//! subscriber processes on shm-channel's topic, 64-byte messages published by loan (written
//! once, whatever the number of subscribers), every message checked by every subscriber in
//! place (its 8 words, and so its place in the order); time per published message.
//! `fanout_4_vs_1` says what a subscriber costs the publisher.
//!
//! The subscribers are the program started again as a peer ([`crate::peer`]: `fanout-sub`);
//! when the case finishes, the publisher finishes the stream and each subscriber says how many
//! messages it received and how many were wrong.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shm_channel::Error;
use shm_channel::pubsub::{Publisher, SubscribeOptions, Subscriber, TopicOptions};
use shm_core::Backend;

use super::channel::common::spawn_peer;
use super::channel::{check, fill, words_of, words_of_mut};
use crate::case::{Case, Samples, Section, segment_name};
use crate::child::Child;
use crate::host::Host;
use crate::stop::stopping;

/// Bytes per message.
const MESSAGE: usize = 64;
/// Slots of the topic's ring.
const SLOTS: u32 = 256;
/// Messages between two clock reads.
const BATCH: u64 = 256;
/// Longest wait for anything the peers should do at once.
const TIMEOUT: Duration = Duration::from_secs(10);

fn topic(subscribers: u32) -> TopicOptions {
    TopicOptions::new(SLOTS, MESSAGE).subscribers(subscribers)
}

/// The `fanout-sub` peer: receives every message of the topic `name` until the stream ends,
/// checks each in place, then prints `RECEIVED WRONG` on stdout.
pub(crate) fn sub_peer<B: Backend>(backend: &B, name: &str) -> Result<()> {
    let opts = SubscribeOptions::new().open_timeout(TIMEOUT);
    let mut sub = Subscriber::open(backend, name, &opts)?;
    let (mut got, mut wrong) = (0u64, 0u64);
    loop {
        let sample = match sub.recv() {
            Ok(s) => s,
            Err(Error::Closed) => break,
            // The bench dropped its publisher unfinished: it stopped (or failed) and says why.
            Err(Error::Aborted) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // SAFETY: the publisher is this bench (shm-channel): it never writes a slot before
        // every subscriber has released it.
        let data = unsafe { sample.as_slice() };
        if data.len() != MESSAGE || !words_of(data).is_some_and(|w| check(w, got * MESSAGE as u64))
        {
            wrong += 1;
        }
        got += 1;
    }
    println!("{got} {wrong}");
    Ok(())
}

/// `fanout_N`: one publisher, N subscriber processes.
pub struct Fanout {
    key: &'static str,
    what: &'static str,
    budget: Duration,
    published: u64,
    // Declared before `peers`: the publisher ends first, then the peers are reaped.
    publisher: Option<Publisher>,
    peers: Vec<Child>,
}

impl Fanout {
    /// `fanout_1` and `fanout_4`, each timing `budget` of messages per repetition.
    pub fn both(host: &Host, budget: Duration) -> Result<Vec<Fanout>> {
        Ok(vec![
            Self::new(host, budget, 1, "fanout_1", "64 B to 1 subscriber process")?,
            Self::new(
                host,
                budget,
                4,
                "fanout_4",
                "64 B to 4 subscriber processes",
            )?,
        ])
    }

    fn new(
        host: &Host,
        budget: Duration,
        subs: u32,
        key: &'static str,
        what: &'static str,
    ) -> Result<Fanout> {
        let name = segment_name(key);
        let kind = host.default_kind()?;
        let publisher = Publisher::create(&(host.backend)(kind)?, &name, &topic(subs))?;
        let peers = (0..subs)
            .map(|_| {
                spawn_peer(
                    host,
                    &["fanout-sub", kind.as_str(), &name],
                    Stdio::null(),
                    Stdio::piped(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        publisher
            .wait_for_subscribers(subs as usize, TIMEOUT)
            .context("the subscribers did not join")?;
        // Everyone is there: the name has done its work (nothing left if the bench is killed).
        publisher.remove_name();
        Ok(Fanout {
            key,
            what,
            budget,
            published: 0,
            publisher: Some(publisher),
            peers,
        })
    }

    fn publish(&mut self) -> Result<()> {
        let Some(p) = self.publisher.as_mut() else {
            bail!("the case has finished");
        };
        let mut loan = p.loan_timeout(TIMEOUT)?;
        // SAFETY: the subscribers are this bench's peers (shm-channel): they never write a slot.
        let slot = unsafe { &mut loan.as_mut_slice()[..MESSAGE] };
        let words = words_of_mut(slot).context("a slot's payload is not 8-aligned")?;
        fill(words, self.published * MESSAGE as u64);
        loan.send(MESSAGE)?;
        self.published += 1;
        Ok(())
    }
}

impl Case for Fanout {
    fn key(&self) -> &str {
        self.key
    }
    fn what(&self) -> &str {
        self.what
    }
    fn section(&self) -> Section {
        Section::Fanout
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        // Wake the subscribers and warm the caches.
        for _ in 0..BATCH {
            self.publish()?;
        }
        let start = Instant::now();
        let mut last = start;
        while start.elapsed() < self.budget && !stopping() {
            for _ in 0..BATCH {
                self.publish()?;
            }
            let now = Instant::now();
            out.push_batch(now.duration_since(last).as_nanos(), BATCH);
            last = now;
        }
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        if let Some(mut p) = self.publisher.take() {
            p.finish_timeout(TIMEOUT)
                .context("the subscribers did not receive everything")?;
        }
        for mut peer in std::mem::take(&mut self.peers) {
            let mut said = String::new();
            if let Some(mut out) = peer.process.stdout.take() {
                out.read_to_string(&mut said)?;
            }
            peer.finish(TIMEOUT)?;
            let counts: Vec<u64> = said
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            match counts[..] {
                [got, 0] if got == self.published => {}
                [got, wrong] => bail!(
                    "a subscriber received {got} of {} messages, {wrong} of them wrong",
                    self.published
                ),
                _ => bail!("a subscriber said {said:?}"),
            }
        }
        Ok(())
    }
}
