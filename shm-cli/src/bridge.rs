//! `shm bridge out NAME` and `shm bridge in NAME`: a channel carried to another host over Zenoh
//! (shm-bridge). `out` is the receiver of the local channel NAME and publishes each message;
//! `in` subscribes and is the sender of the local channel NAME on the other host.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use shm_bridge::{Bridge, Carried, End, Link};
use shm_channel::{Receiver, Sender};

use crate::Global;
use crate::backend;

/// Set by Ctrl-C, SIGTERM, SIGHUP (...): the bridge ends its stream as aborted on both sides
/// and exits within 100 ms.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// `shm bridge`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BridgeCommand {
    /// Receive from the local channel NAME and publish each message on Zenoh.
    Out(LinkArgs),
    /// Subscribe on Zenoh and send each message into the local channel NAME.
    In(LinkArgs),
}

/// Arguments of `shm bridge`.
#[derive(Debug, clap::Args)]
pub struct BridgeArgs {
    #[command(subcommand)]
    command: BridgeCommand,
}

/// Arguments of `shm bridge out` and `shm bridge in`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("link").required(true).multiple(true).args(["listen", "connect", "scout"])),
    after_help = "Either side may listen and the other connect, and either may start first \
    (a connecting side retries until the listener is there). The local channel is the one \
    `shm send` and `shm recv` use (32 slots of 64 KiB), made by whichever starts first. The \
    bridge exits 0 once it has carried a complete stream, non-zero when the stream was \
    aborted, the far side vanished, or a signal stopped it (the stream then ends aborted on \
    both sides).\n\n\
    Examples (host A sends app.log to host B):\n  \
    shm send /logs app.log                           on A: the file into the channel /logs\n  \
    shm bridge out /logs --listen tcp/0.0.0.0:7447   on A: /logs out to whoever connects\n  \
    shm bridge in /logs --connect tcp/A:7447         on B: into the channel /logs there\n  \
    shm recv /logs > app.log                         on B: the file, byte for byte"
)]
pub struct LinkArgs {
    /// The local channel's name (`/name` or `name`).
    name: String,
    /// Listen on this Zenoh endpoint (`tcp/0.0.0.0:7447`, `tcp/127.0.0.1:0`); repeatable.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Connect to this Zenoh endpoint (`tcp/hostA:7447`); repeatable.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// The Zenoh key the messages travel on (default: shm/NAME).
    #[arg(long, value_name = "KEYEXPR")]
    key: Option<String>,
    /// Also find peers by Zenoh's multicast scouting (off by default: no strangers).
    #[arg(long)]
    scout: bool,
}

/// `shm bridge`.
pub fn run(g: &Global, a: &BridgeArgs) -> Result<()> {
    for sig in crate::shutdown::signals() {
        crate::shutdown::catch(sig, on_signal);
    }
    match &a.command {
        BridgeCommand::Out(l) => out(g, l),
        BridgeCommand::In(l) => inbound(g, l),
    }
}

/// The session and the key of `l`.
fn open(l: &LinkArgs) -> Result<(shm_bridge::Session, String)> {
    let mut link = Link::default().scout(l.scout);
    link.listen.clone_from(&l.listen);
    link.connect.clone_from(&l.connect);
    let session = link
        .open()
        .context("cannot start the bridge's Zenoh session")?;
    let key = l
        .key
        .clone()
        .unwrap_or_else(|| shm_bridge::default_key(&l.name));
    Ok((session, key))
}

/// One line on stderr: where the bridge is, what it waits for.
fn announce(half: &str, l: &LinkArgs, key: &str) {
    let mut how: Vec<String> = l
        .listen
        .iter()
        .map(|e| format!("listening on {e}"))
        .collect();
    how.extend(l.connect.iter().map(|e| format!("connecting to {e}")));
    if l.scout {
        how.push("scouting".to_owned());
    }
    eprintln!(
        "shm bridge {half} {}: key {key}, {}",
        l.name,
        how.join(", ")
    );
}

/// The closing line, or the error for a stream that did not complete.
fn report(half: &str, l: &LinkArgs, c: Carried) -> Result<()> {
    match c.end {
        End::Complete => {
            eprintln!(
                "shm bridge {half} {}: {} messages, {} bytes, complete",
                l.name, c.messages, c.bytes
            );
            Ok(())
        }
        End::Aborted => bail!(
            "the stream was aborted by its sender after {} messages ({} bytes); the far side was told",
            c.messages,
            c.bytes
        ),
    }
}

/// `shm bridge out`.
fn out(g: &Global, l: &LinkArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    let (session, key) = open(l)?;
    let bridge = Bridge::new(&session, &key)?.stop_on(&STOP);
    let rx = Receiver::open_or_create(&backend, &l.name, &crate::channel::options())?;
    announce("out", l, &key);
    let carried = bridge.out(rx)?;
    report("out", l, carried)
}

/// `shm bridge in`.
fn inbound(g: &Global, l: &LinkArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    let (session, key) = open(l)?;
    let bridge = Bridge::new(&session, &key)?.stop_on(&STOP);
    let tx = Sender::open_or_create(&backend, &l.name, &crate::channel::options())?;
    announce("in", l, &key);
    let carried = bridge.inbound(tx)?;
    report("in", l, carried)
}
