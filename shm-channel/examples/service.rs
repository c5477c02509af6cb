//! A request/response service between two processes: the server adds two numbers; the client
//! calls it 100 000 times and reports the round trip.
//!
//! `cargo run --release -p shm-channel --example service`
use std::time::Instant;

use shm_channel::{Client, Error, Options, Server};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A request: plain data, sent as its bytes (zerocopy's derives say that is sound).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Add {
    a: u64,
    b: u64,
}

const CALLS: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = shm_posix::Posix::new();
    let opts = Options::new(1, 64); // a pair has one slot: one call at a time
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = args.get(2).filter(|_| args[1] == "client") {
        let mut client = Client::open(&backend, name, &opts)?;
        let t0 = Instant::now();
        for i in 0..CALLS {
            let sum: u64 = client.call(&Add { a: i, b: 1 })?.read_value()?;
            assert_eq!(sum, i + 1);
        }
        let ns = t0.elapsed().as_nanos() as f64 / CALLS as f64;
        println!("client: {CALLS} calls, {ns:.0} ns per round trip");
        return Ok(()); // dropping the client closes the pair: the server stops
    }
    let name = format!("/service-example-{}", std::process::id());
    let mut server = Server::create(&backend, &name, &opts)?;
    let mut client = std::process::Command::new(std::env::current_exe()?)
        .args(["client", &name])
        .spawn()?;
    let mut served = 0u64;
    loop {
        let request = match server.recv() {
            Err(Error::Closed) => break,
            other => other?,
        };
        let add: Add = request.read_value()?; // a copy: safe whatever the client does
        drop(request); // done with it: the answer goes into its slot
        server.reply_value(&(add.a + add.b))?; // in the request's slot
        served += 1;
    }
    println!(
        "server: {served} requests served; client {}",
        client.wait()?
    );
    Ok(())
}
