//! A producer process and a consumer process, each a tokio program awaiting the channel
//! (feature `async`): 100 000 numbered messages of varying length, every byte checked; the
//! consumer's runtime stays free for other tasks while it waits (a ticker task runs beside).
//!
//! `cargo run --release -p shm-channel --features async --example async_stream`
//! (it starts its producer itself: `async_stream producer NAME`).
use std::time::{Duration, Instant};

use shm_channel::{Error, Options, Receiver, Sender};

const COUNT: u64 = 100_000;

/// Message `i`: its number, then `i % 57` bytes of `i as u8`.
fn message(i: u64, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    buf.resize(8 + (i % 57) as usize, i as u8);
}

fn options() -> Options {
    Options::new(16, 64)
}

async fn produce(name: &str) -> Result<(), Error> {
    let mut tx = Sender::open(&shm_posix::Posix::new(), name, &options())?;
    let mut buf = Vec::new();
    for i in 0..COUNT {
        message(i, &mut buf);
        tx.send_async(&buf).await?;
        if i % 10_000 == 0 {
            // A pause: the consumer's future sleeps in the reactor, not in a thread.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The stream is complete: `finish` (a blocking call, so on a blocking thread) returns once
    // the consumer has received all of it. Dropping the sender unfinished would abort it.
    tokio::task::spawn_blocking(move || tx.finish())
        .await
        .unwrap_or(Err(Error::Aborted))
}

async fn consume() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("/async-stream-{}", std::process::id());
    let mut rx = Receiver::create(&shm_posix::Posix::new(), &name, &options())?;
    let mut producer = tokio::process::Command::new(std::env::current_exe()?)
        .args(["producer", &name])
        .kill_on_drop(true)
        .spawn()?;
    let ticker = tokio::spawn(async {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            ticks += 1;
            if ticks == u64::MAX {
                break ticks;
            }
        }
    });
    let (mut want, mut buf, t0) = (Vec::new(), vec![0u8; 64], Instant::now());
    let mut got = 0u64;
    loop {
        let sample = match rx.recv_async().await {
            Err(Error::Closed) => break,
            other => other?,
        };
        let len = sample.len();
        sample.copy_to(&mut buf)?;
        drop(sample);
        message(got, &mut want);
        if buf[..len] != want[..] {
            return Err(format!("message {got} is wrong: {:?}", &buf[..len]).into());
        }
        got += 1;
    }
    ticker.abort();
    let status = producer.wait().await?;
    if !status.success() || got != COUNT {
        return Err(format!("producer {status}, {got} of {COUNT} messages").into());
    }
    println!(
        "received {got} messages from another process, every byte checked, in {:?}",
        t0.elapsed()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("producer") => {
            let name = args.get(2).ok_or("producer NAME")?;
            Ok(rt.block_on(produce(name))?)
        }
        _ => rt.block_on(consume()),
    }
}
