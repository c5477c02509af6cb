//! The shm workspace's benchmark: the project's speed against its floors, measured side by side
//! in one run. `shm bench` is a thin adapter over this crate.
//!
//! Start here: [`run`] measures and returns a [`Report`] (a table, or JSON); the program that
//! runs it says through a [`Host`] which backends it has and how to start itself again as a
//! peer ([`peer`] is what such a peer runs). Data flows one way: the CLI gives the bench its
//! backends, the bench measures them and shm-channel over shm-core.
//!
//! Every case runs once per repetition, in turn with the others (A B C ... A B C ...), so that
//! the machine's slow and fast spells fall on all of them alike; the samples of all repetitions
//! give each case's mean, median and p99. On a noisy machine only the ratios between cases
//! measured this way mean something. The ratios divide means, and [`Report::missed`] names those
//! that miss their targets.
//!
//! * round trips of the lockstep game ([`lockstep`]: threads, two processes over POSIX and
//!   System V with each wait strategy, both processes on one CPU), of one byte each way through a
//!   pipe and a socketpair, of shm-channel's request/response pair (blocking, and awaited in
//!   tokio on both sides: `async_rtt`), and the real `shm taller demo --lockstep`;
//! * create, map, unmap and unlink through a backend, against the same system calls made
//!   directly with libc, and how the cost grows with the size;
//! * `write_at` then `read_at` of 64 MiB through a mapping, against `memcpy`, and 64-byte copies;
//! * streams of 64 KiB messages: shm-channel against a ring of copies, a pipe and a socketpair;
//! * what 1000 shm-channel ends awaiting in one process cost while idle (`async_idle`: CPU
//!   time and threads made, judged against absolute limits rather than ratios);
//! * publish/subscribe: 64-byte messages from one publisher to 1 and to 4 subscriber processes,
//!   each checking every message (`fanout_1`, `fanout_4`).
//!
//! Every child process of the bench (peers, the demo) dies with it, also when it is killed with
//! SIGKILL (`PR_SET_PDEATHSIG`, set before the child runs and checked against a parent that died
//! first), and every segment name is removed as soon as both sides have it mapped.

pub mod lockstep;

mod case;
mod cases;
mod child;
mod harness;
mod host;
mod peer;
mod report;
mod stop;

pub use harness::{Length, Options, run};
pub use host::{Host, Kind};
pub use peer::peer;
pub use report::Report;
pub use stop::{stop, stop_on};
