//! Where a side of the game prints its lines: stdout, or the demo's merger, stamped so that
//! the demo can print both sides in the order their moves happened.

use std::fmt::Display;
use std::io::Write;
use std::sync::mpsc::Sender;

/// Which side a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    /// The server (this process).
    Server,
    /// The client (the child process).
    Client,
}

/// Where a side's lines go: stdout, after a prefix ("server | " in the demo, none otherwise),
/// or, in the demo, to the merger that prints both sides in the order their moves happened.
#[derive(Debug, Clone, Copy)]
pub(super) struct Out<'a> {
    pub prefix: &'static str,
    /// Where the lines go instead of stdout (the demo's merger), stamped.
    pub sink: Option<&'a Sink>,
    /// Each line goes out with a stamp (see [`stamp`]) for the demo to order: set in the demo
    /// itself (its server's lines) and in the client it starts (by [`STAMPS_ENV`]).
    pub stamped: bool,
}

/// The demo's merger input: every line of both sides, stamped, by side (`None`: that side is
/// done).
pub(super) type Sink = Sender<(Who, Option<String>)>;

/// Set by the demo for the client it starts: the client stamps its lines.
pub(super) const STAMPS_ENV: &str = "SHM_TALLER_STAMPED";

/// The byte that opens and closes a line's stamp (ASCII record separator: never in a line).
pub(super) const STAMP_MARK: char = '\u{1e}';

/// A line's stamp: the system-wide monotonic clock in nanoseconds (one clock for every
/// process), and for a move ("I am taller. X, Y") the value X it wrote, which orders the moves
/// of both sides exactly.
pub(super) fn stamp(line: &str) -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let ns = ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128;
    format!("{STAMP_MARK}{ns}{STAMP_MARK}{line}")
}

impl Out<'_> {
    /// The output of a side started as a process of its own: stamped when the demo asked.
    pub fn plain() -> Out<'static> {
        Out {
            prefix: "",
            sink: None,
            stamped: std::env::var_os(STAMPS_ENV).is_some(),
        }
    }

    /// Prints one line. Write errors are ignored (`shm taller server | head` must not stop the
    /// game before the server removes its segment, nor panic as `println!` would).
    pub fn say(self, line: impl Display) {
        let line = line.to_string();
        if let Some(sink) = self.sink {
            let _ = sink.send((Who::Server, Some(stamp(&line))));
            return;
        }
        let _ = if self.stamped {
            writeln!(std::io::stdout(), "{}{}", self.prefix, stamp(&line))
        } else {
            writeln!(std::io::stdout(), "{}{line}", self.prefix)
        };
    }
}
