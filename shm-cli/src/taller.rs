//! `shm taller`: the game of the original C++ program (`shmem_test.cpp`), over either backend.
//!
//! The layout is the reference program's: a segment of 4096 bytes, mode 0600, the server's `i32`
//! at byte 0 and the client's at byte 4. Each round a side reads both ints and, where its own is
//! not greater, writes the other's plus one and says "I am taller.". The server creates the
//! segment, zeroes both ints and removes the segment at the end (also on Ctrl-C and SIGTERM);
//! the client opens it and never zeroes it (the reference client does, which clobbers a running
//! server). With `--lockstep` the sides wait for each other instead of sleeping (see
//! [`shm_bench::lockstep`]).

mod demo;
mod game;
mod lines;
mod options;

use std::sync::Arc;

use anyhow::Result;
use shm_core::DynBackend;

use crate::backend::{self, Global};
use options::{Game, ServerArgs};

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
