//! A tokio server process answering client processes (feature `async`): one request/response
//! pair per client, one server task per pair, all on one thread; each client (a tokio program
//! too) makes 10 000 calls and checks every answer.
//!
//! `cargo run --release -p shm-channel --features async --example async_service`
//! (it starts its clients itself: `async_service client NAME`).
use std::time::Instant;

use shm_channel::{Client, Error, Options, Server};

const CLIENTS: usize = 4;
const CALLS: u64 = 10_000;

fn options() -> Options {
    Options::new(1, 64)
}

/// A client: `CALLS` calls of `[a, b]`, each answered with `a + b`.
async fn client(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::open(&shm_posix::Posix::new(), name, &options())?;
    for a in 0..CALLS {
        let b = a * 3 + 1;
        let sum: u64 = client.call_async(&[a, b]).await?.read_value()?;
        if sum != a + b {
            return Err(format!("{a} + {b} answered {sum}").into());
        }
    }
    Ok(())
}

/// One server task: answers its pair until the client leaves; returns the calls answered.
async fn serve(mut server: Server) -> Result<u64, Error> {
    let mut answered = 0;
    loop {
        let [a, b]: [u64; 2] = match server.recv_async().await {
            Ok(request) => request.read_value()?,
            Err(Error::Closed) => return Ok(answered),
            Err(e) => return Err(e),
        };
        server.reply_value(&(a + b))?;
        answered += 1;
    }
}

async fn run_server() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let mut children = Vec::new();
    for k in 0..CLIENTS {
        let name = format!("/async-service-{}-{k}", std::process::id());
        let server = Server::create(&shm_posix::Posix::new(), &name, &options())?;
        children.push(
            tokio::process::Command::new(std::env::current_exe()?)
                .args(["client", &name])
                .kill_on_drop(true)
                .spawn()?,
        );
        tasks.push(tokio::spawn(async move {
            server.wait_for_peer_async().await?;
            serve(server).await
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    for mut c in children {
        let status = c.wait().await?;
        if !status.success() {
            return Err(format!("a client failed: {status}").into());
        }
    }
    if total != CLIENTS as u64 * CALLS {
        return Err(format!("answered {total} calls").into());
    }
    println!(
        "answered {total} calls from {CLIENTS} client processes on one thread in {:?}",
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
        Some("client") => {
            let name = args.get(2).ok_or("client NAME")?;
            rt.block_on(client(name))
        }
        _ => rt.block_on(run_server()),
    }
}
