//! 1 GiB from one process to another in 64 KiB messages, zero-copy on both sides (written in
//! place, read in place), every byte checked by the consumer.
//!
//! `cargo run --release -p shm-channel --example stream [sysv]`
use std::time::Instant;

use shm_channel::{Error, Options, Receiver, Sender};
use shm_core::DynBackend;

const TOTAL: u64 = 1 << 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sysv = args.iter().any(|a| a == "sysv");
    let backend: Box<dyn DynBackend> = if sysv {
        Box::new(shm_sysv::SysV::new())
    } else {
        Box::new(shm_posix::Posix::new())
    };
    let opts = Options::new(32, 64 * 1024);
    // Byte k of the stream is k mod 256: any 64 KiB of it is a slice of this.
    let pattern: Vec<u8> = (0..64 * 1024 + 256).map(|k| k as u8).collect();
    if let Some(name) = args
        .iter()
        .position(|a| a == "consumer")
        .map(|i| &args[i + 1])
    {
        let mut rx = Receiver::open(&backend, name, &opts)?;
        let (mut got, t0) = (0u64, Instant::now());
        loop {
            let sample = match rx.recv() {
                Err(Error::Closed) => break,
                other => other?,
            };
            // SAFETY: the producer is this program: it never writes a slot it has sent.
            let bytes = unsafe { sample.as_slice() };
            if bytes != &pattern[(got % 256) as usize..][..bytes.len()] {
                return Err(format!("wrong byte in the message at {got}").into());
            }
            got += bytes.len() as u64;
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "consumer: {got} bytes checked in {secs:.2} s, {:.1} GB/s",
            got as f64 / secs / 1e9
        );
        return if got == TOTAL {
            Ok(())
        } else {
            Err("bytes missing".into())
        };
    }
    let name = format!("/stream-example-{}", std::process::id());
    let mut tx = Sender::create(&backend, &name, &opts)?;
    let mut consumer = std::process::Command::new(std::env::current_exe()?)
        .args(["consumer", &name])
        .args(sysv.then_some("sysv"))
        .spawn()?;
    let mut sent = 0u64;
    while sent < TOTAL {
        let mut loan = tx.loan()?;
        // SAFETY: the consumer is this program: it never touches a slot before it is sent.
        let slot = unsafe { loan.as_mut_slice() };
        let len = slot.len().min((TOTAL - sent) as usize);
        slot[..len].copy_from_slice(&pattern[(sent % 256) as usize..][..len]);
        loan.send(len)?;
        sent += len as u64;
    }
    // Ends the stream as complete: the consumer drains, then sees Closed, and finish returns
    // once it has (dropping the sender unfinished would say Aborted instead).
    tx.finish()?;
    let status = consumer.wait()?;
    println!("producer: {sent} bytes sent; consumer {status}");
    if status.success() {
        Ok(())
    } else {
        Err("the consumer failed".into())
    }
}
