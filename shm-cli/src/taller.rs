//! `shm taller`: the game of the original C++ program (`shmem_test.cpp`), over either backend.
//!
//! The layout is the reference program's: a segment of 4096 bytes, mode 0600, the server's `i32`
//! at byte 0 and the client's at byte 4. Each round a side reads both ints and, where its own is
//! not greater, writes the other's plus one and says "I am taller.". The server creates the
//! segment, zeroes both ints and removes the segment at the end (also on Ctrl-C and SIGTERM);
//! the client opens it and never zeroes it (the reference client does, which clobbers a running
//! server). With `--lockstep` the sides wait for each other instead of sleeping (see
//! [`crate::lockstep`]).

mod demo;
mod game;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use shm_core::wait::WaitStrategy;
use shm_core::{DynBackend, SegmentName};

use crate::Global;
use crate::backend::{self, Kind};
use crate::units::parse_duration;

/// Arguments of `shm taller`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct TallerArgs {
    #[command(subcommand)]
    side: Side,
}

const EXAMPLES: &str = "\
Examples:
  shm taller demo                          server and client, two processes, one terminal
  shm taller server & shm taller client    the same by hand (or in two terminals)
  shm taller demo --lockstep --rounds 1000000
                                           wait instead of sleep: the values are deterministic
  shm --backend sysv taller demo           the same game over System V";

#[derive(Debug, clap::Subcommand)]
enum Side {
    /// Create the segment, zero both ints, play, and remove it at the end (any signal that can
    /// be caught removes it too).
    #[command(after_help = SERVER_HELP)]
    Server(ServerArgs),
    /// Open the server's segment and play against it (never zeroes it, never removes it).
    #[command(after_help = CLIENT_HELP)]
    Client(Game),
    /// Both at once: the server in this process, the client as a second process (this same
    /// program), their lines in the order the moves happened.
    #[command(after_help = DEMO_HELP)]
    Demo(ServerArgs),
}

/// What the lines of a game mean, for every side's help (a macro: `concat!` takes literals).
macro_rules! lines_help {
    () => {
        "\
The lines:
  I am taller. X, Y      this side just wrote X, one more than Y, the other side's int it read
                         (its own int first: the server's for the server, the client's for the
                         client)
  Quit server: S, C      the game is over; S is the server's int and C the client's, always in
                         that order, whichever side prints it
  Checking server|client N
                         round N (from 0) of the reference game: a side looked and slept"
    };
}

const SERVER_HELP: &str = concat!(
    lines_help!(),
    "\n\nExamples:
  shm taller server                        the reference program's server: /test.shmem, 10 rounds
  shm taller server --replace              take over a name left by a crashed server
  shm taller server --lockstep --rounds 1000000 --timeout 10s
                                           wait for the client instead of sleeping"
);

const CLIENT_HELP: &str = concat!(
    lines_help!(),
    "\n\nExamples:
  shm taller client                        play against a running server (ours or the C++ one)
  shm taller client --lockstep --rounds 1000000
                                           against `shm taller server --lockstep` with the same
                                           rounds (a lockstep game takes one client)"
);

const DEMO_HELP: &str = concat!(
    lines_help!(),
    "

--interval sets both sides' pause (without it, the reference program's: server 800ms, client
500ms).",
    "\n\nExamples:
  shm taller demo                          server and client, two processes, one terminal
  shm taller demo --rounds 3 --interval 100ms
                                           a short game, both sides 100ms apart
  shm taller demo --lockstep --rounds 1000000
                                           a million round trips, deterministic values"
);

/// The server's flags: the game's, and what to do with a leftover segment.
#[derive(Debug, Clone, clap::Args)]
struct ServerArgs {
    #[command(flatten)]
    game: Game,
    /// Remove a segment left under the name (by an earlier run) before creating it.
    #[arg(long)]
    replace: bool,
}

/// The flags both sides take.
#[derive(Debug, Clone, clap::Args)]
struct Game {
    /// Segment name: the reference program's by default, so that it can play against us.
    #[arg(long, default_value = "/test.shmem")]
    name: SegmentName,
    /// Rounds to play (at most 1073741823: the ints are the reference program's i32, and they
    /// reach twice the rounds).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_ROUNDS))]
    rounds: u64,
    /// Time between rounds (`800ms`, `1s`) [default: 800ms for the server, 500ms for the client,
    /// as in the reference program]. Not used with --lockstep.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// Wait for the other side instead of sleeping: the server writes 1, 3, 5, ..., the client
    /// 2, 4, 6, ...; only the start line and the final pair are printed (unless --verbose).
    #[arg(long)]
    lockstep: bool,
    /// With --lockstep: give up when the other side does not move for this long.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// With --lockstep: how to wait: spin, block (futex), or hybrid (spin briefly, then block).
    #[arg(long, default_value_t = WaitStrategy::Hybrid)]
    wait: WaitStrategy,
    /// With --lockstep: print every move.
    #[arg(long, short)]
    verbose: bool,
}

/// The most rounds a game can have: the ints are the reference program's `i32`, and after `n`
/// rounds they reach `2n`, which must not pass `i32::MAX`.
const MAX_ROUNDS: u64 = (i32::MAX as u64) / 2;

/// The size of the segment, fixed as in the reference program.
const SIZE: usize = 4096;
/// Its mode, as in the reference program (`S_IRUSR | S_IWUSR`).
const MODE: u32 = 0o600;

/// Runs `shm taller`.
pub fn run(g: &Global, a: &TallerArgs) -> Result<()> {
    let kind = g.backend.unwrap_or(backend::DEFAULT);
    let backend: Arc<dyn DynBackend> = Arc::from(backend::get(Some(kind))?);
    match &a.side {
        Side::Server(args) => game::server(backend, args),
        Side::Client(args) => game::client(kind, backend.as_ref(), args),
        Side::Demo(args) => demo::run(kind, backend, args),
    }
}

/// The flags that make `shm taller client` play the same game as `args` (for the demo's
/// second process).
fn client_args(kind: Kind, game: &Game) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--backend".into(),
        kind.as_str().into(),
        "taller".into(),
        "client".into(),
        "--name".into(),
        game.name.as_str().into(),
        "--rounds".into(),
        game.rounds.to_string(),
    ];
    if let Some(interval) = game.interval {
        v.extend(["--interval".into(), format!("{}ns", interval.as_nanos())]);
    }
    if game.lockstep {
        v.extend([
            "--lockstep".into(),
            "--timeout".into(),
            format!("{}ns", game.timeout.as_nanos()),
            "--wait".into(),
            game.wait.to_string(),
        ]);
    }
    if game.verbose {
        v.push("--verbose".into());
    }
    v
}
