//! The lockstep game: the taller game with waiting instead of sleeping.
//!
//! Layout (the reference program's, plus two words it never touches): the server's `i32` at
//! byte 0, the client's at byte 4; at byte 64 the count of processes sleeping on the server's
//! int, at byte 68 those sleeping on the client's. Each side waits until the other's int exceeds
//! its own, then writes the other's plus one. The server moves first, so the values are
//! deterministic: the server writes 1, 3, 5, ..., the client 2, 4, 6, ...; after `rounds` rounds
//! the pair is `(2 * rounds - 1, 2 * rounds)`.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use shm_core::wait::{Signal, WaitStrategy};
use shm_core::{Mapping, Result};

/// Byte offset of the server's int.
pub const SERVER_AT: usize = 0;
/// Byte offset of the client's int.
pub const CLIENT_AT: usize = 4;
/// Byte offset of the count of sleepers waiting on the server's int.
pub const SERVER_SLEEPERS_AT: usize = 64;
/// Byte offset of the count of sleepers waiting on the client's int.
pub const CLIENT_SLEEPERS_AT: usize = 68;

/// Which side of the game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Creates the segment and moves first.
    Server,
    /// Opens the segment and answers.
    Client,
}

/// One side's view of the board: its own int and the other's, as signals.
pub struct Board<'m> {
    role: Role,
    mine: Signal<'m>,
    other: Signal<'m>,
}

fn signal<'m>(
    map: &'m Mapping,
    at: usize,
    sleepers_at: usize,
    s: WaitStrategy,
    what: &'static str,
) -> Result<Signal<'m>> {
    Ok(Signal::new(
        map.atomic::<AtomicU32>(at)?,
        map.atomic::<AtomicU32>(sleepers_at)?,
        s,
    )
    .named(what))
}

impl<'m> Board<'m> {
    /// The board in `map` as seen by `role`, waiting with `strategy`.
    pub fn new(map: &'m Mapping, role: Role, strategy: WaitStrategy) -> Result<Self> {
        let server = signal(
            map,
            SERVER_AT,
            SERVER_SLEEPERS_AT,
            strategy,
            "the server's move (its int at byte 0)",
        )?;
        let client = signal(
            map,
            CLIENT_AT,
            CLIENT_SLEEPERS_AT,
            strategy,
            "the client's move (its int at byte 4)",
        )?;
        let (mine, other) = match role {
            Role::Server => (server, client),
            Role::Client => (client, server),
        };
        Ok(Self { role, mine, other })
    }

    /// The pair (server's int, client's int) now.
    pub fn pair(&self) -> (i32, i32) {
        let (mine, other) = (self.mine.load() as i32, self.other.load() as i32);
        match self.role {
            Role::Server => (mine, other),
            Role::Client => (other, mine),
        }
    }

    /// Plays `rounds` rounds; `on_move(mine, other)` runs after each of this side's writes.
    /// Fails with [`shm_core::Error::TimedOut`] when the other side does not answer within
    /// `timeout`.
    pub fn play(
        &self,
        rounds: u64,
        timeout: Duration,
        mut on_move: impl FnMut(i32, i32),
    ) -> Result<()> {
        let mut mine = self.mine.load() as i32;
        let mut other = self.other.load() as i32;
        for _ in 0..rounds {
            // A wait returns the value it saw: the other side's move, read once.
            if self.role == Role::Client {
                other = self.other.wait_until(|v| v as i32 > mine, timeout)? as i32;
            }
            mine = other.wrapping_add(1);
            self.mine.store(mine as u32);
            on_move(mine, other);
            if self.role == Role::Server {
                other = self.other.wait_until(|v| v as i32 > mine, timeout)? as i32;
            }
        }
        Ok(())
    }
}
