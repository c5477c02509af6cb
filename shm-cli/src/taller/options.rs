//! The flags of `shm taller`'s sides and the segment's fixed shape (the reference program's):
//! what the server, the client and the demo share.

use std::time::Duration;

use shm_core::SegmentName;
use shm_core::wait::WaitStrategy;

use crate::backend::Kind;
use shm_units::parse_duration;

/// The server's flags: the game's, and what to do with a leftover segment.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct ServerArgs {
    #[command(flatten)]
    pub(super) game: Game,
    /// Remove a segment left under the name (by an earlier run) before creating it.
    #[arg(long)]
    pub(super) replace: bool,
}

/// The flags both sides take.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Game {
    /// Segment name: the reference program's by default, so that it can play against us.
    #[arg(long, default_value = "/test.shmem")]
    pub(super) name: SegmentName,
    /// Rounds to play (at most 1073741823: the ints are the reference program's i32, and they
    /// reach twice the rounds).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_ROUNDS))]
    pub(super) rounds: u64,
    /// Time between rounds (`800ms`, `1s`) [default: 800ms for the server, 500ms for the client,
    /// as in the reference program]. Not used with --lockstep.
    #[arg(long, value_parser = parse_duration)]
    pub(super) interval: Option<Duration>,
    /// Wait for the other side instead of sleeping: the server writes 1, 3, 5, ..., the client
    /// 2, 4, 6, ...; only the start line and the final pair are printed (unless --verbose).
    #[arg(long)]
    pub(super) lockstep: bool,
    /// With --lockstep: give up when the other side does not move for this long.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(super) timeout: Duration,
    /// With --lockstep: how to wait: spin, block (futex), or hybrid (spin briefly, then block).
    #[arg(long, default_value_t = WaitStrategy::Hybrid)]
    pub(super) wait: WaitStrategy,
    /// With --lockstep: print every move.
    #[arg(long, short)]
    pub(super) verbose: bool,
}

/// The most rounds a game can have: the ints are the reference program's `i32`, and after `n`
/// rounds they reach `2n`, which must not pass `i32::MAX`.
pub(super) const MAX_ROUNDS: u64 = (i32::MAX as u64) / 2;

/// The size of the segment, fixed as in the reference program.
pub(super) const SIZE: usize = 4096;
/// Its mode, as in the reference program (`S_IRUSR | S_IWUSR`).
pub(super) const MODE: u32 = 0o600;

/// The flags that make `shm taller client` play the same game as `args` (for the demo's
/// second process).
pub(super) fn client_args(kind: Kind, game: &Game) -> Vec<String> {
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
