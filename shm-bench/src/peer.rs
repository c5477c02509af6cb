//! The bench's second processes: what the program that runs the bench does when the bench
//! starts it again as a peer (the `shm` command: its hidden `bench-peer` subcommand).
//!
//! A peer is told what to do in words, after the command [`crate::Host::peer`] gives:
//!
//! | words | what the peer does |
//! |---|---|
//! | `game KIND NAME STRATEGY [CPU]` | plays the lockstep game's client on the board NAME |
//! | `bell NAME` | the same on POSIX, waiting on a pipe doorbell (stdin, stdout) |
//! | `echo` | echoes each byte of stdin to stdout |
//! | `channel-echo KIND NAME` | answers each request of the shm-channel pair NAME |
//! | `channel-echo-async KIND NAME` | the same, awaiting each request in a tokio task |
//! | `service-client KIND NAME` | calls the shm-channel service NAME until it closes |
//! | `async-idle KIND PREFIX ENDS MILLIS` | ENDS channels awaiting in tokio tasks for MILLIS ms; prints the CPU ns used per second idle and the threads made |
//! | `channel-stream KIND NAME BYTES` | receives and checks the shm-channel stream NAME |
//! | `copy-ring KIND NAME BYTES` | receives and checks the ring of copies NAME |
//! | `fd BYTES` | receives and checks a stream on stdin, acknowledges on stdout |
//! | `fanout-sub KIND NAME` | subscribes to the topic NAME, checks every message, prints counts |
//! | `bridge listen\|connect ENDPOINT KIND (out\|in NAME KEY)...` | carries local channels over one Zenoh session (feature `bridge`) |
//! | `channel-relay KIND FROM TO` | sends every message of the channel FROM on into TO |
//! | `zenoh-sub ENDPOINT KEY BYTES` | subscribes with Zenoh alone, checks every message |
//! | `zenoh-pub ENDPOINT KEY BYTES` | publishes BYTES with Zenoh alone for each byte on stdin |
//! | `zenoh-echo ENDPOINT PING PONG` | publishes each sample of PING back on PONG |
//! | `zenoh-ping ENDPOINT PING PONG` | times round trips through `zenoh-echo` |

use anyhow::{Context, Result, bail};
use shm_core::wait::WaitStrategy;

#[cfg(feature = "bridge")]
use crate::cases::bridge;
use crate::cases::{channel, fanout, game};
use crate::host::{Host, Kind};

/// Runs as the peer `words` say (see the module docs); returns when the bench tells it to
/// stop, or closes its end. Not for users: the bench starts its peers itself.
pub fn peer(host: &Host, words: &[String]) -> Result<()> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    run(host, &words).with_context(|| format!("bench peer {}", words.join(" ")))
}

fn run(host: &Host, words: &[&str]) -> Result<()> {
    let kind = |w: &str| Kind::from_name(w).with_context(|| format!("no backend {w:?}"));
    let bytes = |w: &str| {
        w.parse::<u64>()
            .with_context(|| format!("bad byte count {w:?}"))
    };
    match words {
        ["game", k, name, strategy, cpu @ ..] => {
            let strategy: WaitStrategy = strategy
                .parse()
                .map_err(|e| anyhow::anyhow!("bad wait strategy {strategy:?}: {e}"))?;
            let cpu = match cpu {
                [] => None,
                [c] => Some(c.parse().with_context(|| format!("bad CPU {c:?}"))?),
                _ => bail!("too many words"),
            };
            game::game_peer(host, kind(k)?, name, strategy, cpu)
        }
        ["bell", name] => game::bell_peer(host, name),
        ["echo"] => game::echo_peer(),
        ["channel-echo", k, name] => channel::echo_peer(&(host.backend)(kind(k)?)?, name),
        ["channel-echo-async", k, name] => {
            channel::asynch::echo_peer(&(host.backend)(kind(k)?)?, name)
        }
        ["service-client", k, name] => {
            channel::service::client_peer(&(host.backend)(kind(k)?)?, name)
        }
        ["async-idle", k, prefix, ends, millis] => channel::asynch::idle_peer(
            &(host.backend)(kind(k)?)?,
            prefix,
            ends.parse()
                .with_context(|| format!("bad count {ends:?}"))?,
            std::time::Duration::from_millis(bytes(millis)?),
        ),
        ["channel-stream", k, name, n] => {
            channel::stream_peer(&(host.backend)(kind(k)?)?, name, bytes(n)?)
        }
        ["copy-ring", k, name, n] => {
            channel::copy_peer(&(host.backend)(kind(k)?)?, name, bytes(n)?)
        }
        ["fd", n] => channel::fd_peer(bytes(n)?),
        ["fanout-sub", k, name] => fanout::sub_peer(&(host.backend)(kind(k)?)?, name),
        #[cfg(feature = "bridge")]
        ["bridge", link, ep, k, halves @ ..] => {
            bridge::bridge_peer(&(host.backend)(kind(k)?)?, link, ep, halves)
        }
        #[cfg(feature = "bridge")]
        ["channel-relay", k, from, to] => bridge::relay_peer(&(host.backend)(kind(k)?)?, from, to),
        #[cfg(feature = "bridge")]
        ["zenoh-sub", ep, key, n] => bridge::zenoh_sub_peer(ep, key, bytes(n)?),
        #[cfg(feature = "bridge")]
        ["zenoh-pub", ep, key, n] => bridge::zenoh_pub_peer(ep, key, bytes(n)?),
        #[cfg(feature = "bridge")]
        ["zenoh-echo", ep, ping, pong] => bridge::zenoh_echo_peer(ep, ping, pong),
        #[cfg(feature = "bridge")]
        ["zenoh-ping", ep, ping, pong] => bridge::zenoh_ping_peer(ep, ping, pong),
        _ => bail!("unknown peer"),
    }
}
