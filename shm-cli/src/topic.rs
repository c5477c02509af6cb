//! `shm pub NAME [FILE]` and `shm sub NAME`: a byte stream from one publisher to any number of
//! subscribers (shm-channel's publish/subscribe), each subscriber getting the stream from when
//! it joined.
//!
//! As for `shm send`/`shm recv`, bytes go from the input straight into a loaned slot and from
//! a slot straight to stdout through `read(2)` and `write(2)`: no Rust reference into shared
//! memory is ever formed.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use shm_channel::Error;
use shm_channel::pubsub::{Policy, Publisher, SubscribeOptions, Subscriber, TopicOptions};

use crate::backend;
use crate::backend::Global;
use crate::channel::{TICK, catch_signals, check_stop, open_input, read_into, write_all};

/// Arguments of `shm pub`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "pub creates the topic (32 slots of 64 KiB) and publishes its input to every \
    subscriber (`shm sub`); each subscriber gets the stream from when it joined (--wait-for N \
    waits for N of them before the first byte). The topic's name is removed when pub ends, \
    however it ends. pub ends when its input ends and every subscriber there has it all: exit \
    status 0. A subscriber that leaves (`shm sub x | head`) or dies frees its seat; the others \
    go on. When pub is interrupted or cannot read its input, the stream ends as cut: each sub \
    says so and exits non-zero.\n\n\
    By default a slow subscriber slows pub down (back-pressure: nobody misses a byte); with \
    --lossy pub never waits, and a subscriber that falls more than 32 messages behind misses \
    some: it says how many and exits non-zero.\n\n\
    Examples:\n  \
    shm pub /logs < app.log                  stdin to every subscriber of /logs\n  \
    shm pub /logs app.log --wait-for 3       the same from a file, once 3 subscribers are there\n  \
    camera | shm pub /frames --lossy         a live feed: slow subscribers skip, never stall it"
)]
pub struct PubArgs {
    /// The topic's name (`/name` or `name`).
    name: String,
    /// The file to publish (default: stdin).
    file: Option<PathBuf>,
    /// Never wait for a slow subscriber: it misses messages instead (and says so).
    #[arg(long)]
    lossy: bool,
    /// Wait until this many subscribers have joined before publishing the first byte.
    #[arg(long, value_name = "N", default_value_t = 0)]
    wait_for: usize,
    /// The most subscribers at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    subscribers: u32,
}

/// Arguments of `shm sub`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "sub joins the topic of `shm pub` (waiting for it to appear) and writes every \
    byte published from then on to stdout. Exit status 0 only when the stream is whole from \
    where it joined: a stream cut short (pub interrupted, its input failed, pub died) or with \
    gaps (a --lossy publisher overtook this subscriber) makes sub exit non-zero with a message. \
    When its reader goes away (`| head -c 10`) it leaves quietly; the publisher and the other \
    subscribers go on.\n\n\
    Examples:\n  \
    shm sub /logs > copy.log                 what /logs publishes from now on, into a file\n  \
    shm sub /logs | grep ERROR               as many subscribers as the topic takes"
)]
pub struct SubArgs {
    /// The topic's name (`/name` or `name`).
    name: String,
}

/// `shm pub`.
pub fn publish(g: &Global, a: &PubArgs) -> Result<()> {
    let (_file, fd) = open_input(a.file.as_ref())?;
    let backend = backend::get(g.backend)?;
    catch_signals();
    let policy = if a.lossy {
        Policy::Lossy
    } else {
        Policy::BackPressure
    };
    let opts = TopicOptions::new(32, 64 * 1024)
        .subscribers(a.subscribers)
        .policy(policy);
    // Any return before `finish` drops the publisher unfinished: the stream ends as cut.
    let mut p = Publisher::create(&backend, &a.name, &opts)?;
    loop {
        check_stop()?;
        match p.wait_for_subscribers(a.wait_for, TICK) {
            Ok(()) => break,
            Err(Error::TimedOut { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    loop {
        check_stop()?;
        let mut loan = match p.loan_timeout(TICK) {
            Ok(loan) => loan,
            Err(Error::TimedOut { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        // SAFETY: the loan's payload and capacity, the loan alive; no reference into it.
        let n = unsafe { read_into(fd, loan.as_mut_ptr(), loan.capacity())? };
        if n == 0 {
            break; // the loan goes unsent
        }
        loan.send(n)?;
    }
    // The input ended: the stream is complete. Wait until the subscribers have all of it.
    loop {
        match p.finish_timeout(TICK) {
            Ok(()) => return Ok(()),
            Err(Error::TimedOut { .. }) => check_stop()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `shm sub`.
pub fn subscribe(g: &Global, a: &SubArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    catch_signals();
    let mut sub = loop {
        check_stop()?;
        let opts = SubscribeOptions::new().open_timeout(TICK);
        match Subscriber::open(&backend, &a.name, &opts) {
            Ok(s) => break s,
            Err(Error::Shm(e)) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    };
    let out = io::stdout().as_raw_fd();
    // A lossy publisher waits for a subscriber that holds the very slot it must write: under
    // that policy each message is copied out and its slot released before the (maybe slow)
    // write, so that a stalled reader of stdout never stalls the publisher.
    let mut copy = match sub.policy() {
        Policy::Lossy => vec![0u8; sub.max_message()],
        Policy::BackPressure => Vec::new(),
    };
    loop {
        // Between two messages, whatever the rate: a stop is honoured within one message.
        check_stop()?;
        let sample = match sub.recv_timeout(TICK) {
            Ok(s) => s,
            Err(Error::TimedOut { .. }) => continue,
            Err(Error::Closed) => break,
            Err(Error::Aborted) => bail!(
                "the publisher stopped before the end of the stream: the output is incomplete"
            ),
            Err(Error::PeerDead { pid }) => bail!(
                "the publisher (pid {pid}) died before the end of the stream: the output is incomplete"
            ),
            Err(e) => return Err(e.into()),
        };
        let written = if copy.is_empty() {
            write_all(out, sample.as_ptr(), sample.len())
        } else {
            let len = sample.len();
            sample.copy_to(&mut copy)?;
            drop(sample);
            write_all(out, copy.as_ptr(), len)
        };
        match written {
            Ok(()) => {}
            // The reader went away (`shm sub x | head`): leave quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => {
                check_stop()?;
                return Err(e).context("cannot write to stdout");
            }
        }
    }
    match sub.missed() {
        0 => Ok(()),
        n => bail!(
            "missed {n} messages: the publisher is lossy and this subscriber fell behind; the output has gaps"
        ),
    }
}
