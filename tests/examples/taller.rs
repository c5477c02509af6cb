//! The taller game in a few dozen lines, on the library alone: a server and a client in two
//! processes, taking turns in lockstep over [`shm_core::wait::Signal`].
//!
//! ```sh
//! cargo run -p shm-tests --example taller            # over POSIX shared memory
//! cargo run -p shm-tests --example taller -- sysv    # over System V
//! ```
//!
//! The server creates a segment with the layout of `shm taller` (the server's int at byte 0, the
//! client's at byte 4, and at bytes 64 and 68 the words in which a side announces that it
//! sleeps), then starts this same program again as the client. Each side waits until the
//! other's int exceeds its own, then writes the other's plus one; the server moves first, so
//! after `ROUNDS` rounds the pair is `(2 * ROUNDS - 1, 2 * ROUNDS)`. The server's handle removes
//! the segment when it is dropped, also when something fails.

use std::error::Error;
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Access, Backend, CreateOptions, Mapping, Segment, SegmentName};

const ROUNDS: u32 = 1000;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The board in a mapping: (the server's int, the client's int), each a signal.
fn board(map: &Mapping) -> shm_core::Result<(Signal<'_>, Signal<'_>)> {
    let word = |at| map.atomic::<AtomicU32>(at);
    let server = Signal::new(word(0)?, word(64)?, WaitStrategy::Hybrid);
    let client = Signal::new(word(4)?, word(68)?, WaitStrategy::Hybrid);
    Ok((server, client))
}

/// Plays every round: wait until the other's int exceeds mine, then write the other's plus one.
fn play(mine: &Signal<'_>, theirs: &Signal<'_>, moves_first: bool) -> shm_core::Result<()> {
    let mut me = mine.load();
    for round in 0..ROUNDS {
        if round > 0 || !moves_first {
            theirs.wait_until(|v| v > me, TIMEOUT)?;
        }
        me = theirs.load() + 1;
        mine.store(me);
    }
    Ok(())
}

fn server<B: Backend>(backend: &B, kind: &str) -> Result<(), Box<dyn Error>> {
    let name = SegmentName::new(&format!("/taller-example-{}", std::process::id()))?;
    let segment = backend.create(&name, &CreateOptions::new(4096))?; // zero-filled, mode 0600
    let map = segment.map()?;
    let (server, client) = board(&map)?;
    let mut peer = Command::new(std::env::current_exe()?)
        .args([kind, "client", name.as_str()])
        .spawn()?;
    play(&server, &client, true)?;
    let last = client.wait_until(|v| v == 2 * ROUNDS, TIMEOUT)?;
    if !peer.wait()?.success() {
        return Err("the client failed".into());
    }
    println!(
        "{kind}: {ROUNDS} rounds, final pair: server {}, client {last}",
        server.load()
    );
    Ok(()) // the mapping unmaps, then the segment is removed (this handle created it)
}

fn client<B: Backend>(backend: &B, name: &str) -> Result<(), Box<dyn Error>> {
    let segment = backend.open(&SegmentName::new(name)?, Access::ReadWrite)?;
    let map = segment.map()?;
    let (server, client) = board(&map)?;
    Ok(play(&client, &server, false)?) // this handle opened the segment: it never removes it
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        [] | ["posix"] => server(&shm_posix::Posix::new(), "posix"),
        ["sysv"] => server(&shm_sysv::SysV::new(), "sysv"),
        ["posix", "client", name] => client(&shm_posix::Posix::new(), name),
        ["sysv", "client", name] => client(&shm_sysv::SysV::new(), name),
        _ => Err("usage: taller [posix|sysv]".into()),
    }
}
