//! `shm bench`: the project's speed against its floors, measured side by side in one run.
//!
//! Every case runs once per repetition, in turn with the others (A B C ... A B C ...), so that
//! the machine's slow and fast spells fall on all of them alike; the samples of all repetitions
//! give each case's median and p99. On a noisy machine only the ratios between cases measured
//! this way mean something.
//!
//! * [`game`]: round trips of the lockstep game (threads, two processes over POSIX and System V
//!   with each wait strategy, both processes on one CPU) and of one byte each way through a pipe
//!   and a socketpair. The second process is this binary, started as `shm bench --peer ...`.
//! * [`cycle`]: create, map, unmap and unlink through a backend, against the same system calls
//!   made directly with libc, and how the cost grows with the size.
//! * [`copy`]: `write_at` then `read_at` of 64 MiB through a mapping, against `memcpy`.

mod channel;
mod copy;
mod cycle;
mod game;
mod report;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shm_core::wait::WaitStrategy;

use crate::Global;
use crate::backend::{self, Kind};

/// Arguments of `shm bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints a table of medians and p99s and the ratios that matter, each beside its target.
The machine is shared and noisy: compare ratios, run it twice, and run it when the machine is
quiet. `--quick` takes a few seconds, the full run well under a minute.")]
pub struct BenchArgs {
    /// Print one JSON object {"results": {...}, "ratios": {...}} instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A short run: fewer repetitions and rounds (a few seconds; for CI and a first look).
    #[arg(long)]
    pub quick: bool,
    /// Internal: run as the second process of a two-process case.
    #[arg(long, hide = true, value_enum)]
    pub peer: Option<game::PeerKind>,
    /// Internal: the segment a `game` peer opens (on the global --backend).
    #[arg(long, hide = true)]
    pub peer_segment: Option<String>,
    /// Internal: how a `game` peer waits.
    #[arg(long, hide = true, default_value_t = WaitStrategy::Hybrid)]
    pub peer_strategy: WaitStrategy,
    /// Internal: the CPU a peer pins itself to.
    #[arg(long, hide = true)]
    pub peer_cpu: Option<usize>,
    /// Run only these cases (and those their ratios divide by), e.g. `channel_rtt`.
    #[arg(value_name = "CASE")]
    pub cases: Vec<String>,
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Repetitions of the whole list of cases.
    reps: usize,
    /// Time for the round trips of one case in one repetition.
    budget: Duration,
    /// Create/unlink cycles per repetition, by size: 4 KiB, 1 MiB, 64 MiB.
    cycles: [usize; 3],
}

const QUICK: Plan = Plan {
    reps: 5,
    budget: Duration::from_millis(15),
    cycles: [40, 10, 1],
};

const FULL: Plan = Plan {
    reps: 40,
    budget: Duration::from_millis(60),
    cycles: [300, 40, 2],
};

/// What a case measures: a duration per sample, or a duration per `bytes` moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Latency,
    Throughput { bytes: u64 },
}

/// One measured case, run once per repetition.
trait Case {
    /// Its key in the results (`posix_hybrid`, `cycle_raw_sysv`, ...).
    fn key(&self) -> &str;
    /// A few words for the table.
    fn what(&self) -> &str;
    /// The table section it belongs to.
    fn section(&self) -> report::Section;
    /// How its samples read.
    fn unit(&self) -> Unit {
        Unit::Latency
    }
    /// Runs one repetition, pushing one sample (nanoseconds) per measured operation.
    fn run(&mut self, out: &mut Vec<u64>) -> Result<()>;
    /// Stops what the case started (peers) and reports how they ended. Dropping a case without
    /// it kills its peers and removes its segments too.
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Set by Ctrl-C, SIGTERM or SIGHUP: the bench stops after the case that runs, and cleans up
/// as on any error (the peers die with their own Ctrl-C, or with the bench).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Turns the signals that would end the bench at once (leaving a segment of a create cycle
/// behind) into [`STOP`].
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; signal()
        // takes a plain function pointer.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// A name for the bench's own segment: `/shm-bench-PID-KEY` (unique per run and case).
fn segment_name(key: &str) -> String {
    format!("/shm-bench-{}-{key}", std::process::id())
}

/// Runs `shm bench`.
pub fn run(g: &Global, a: &BenchArgs) -> Result<()> {
    if let Some(peer) = a.peer {
        return game::peer(peer, g, a);
    }
    if let Some(result) = channel::peer_from_env(g) {
        return result;
    }
    let plan = if a.quick { QUICK } else { FULL };
    catch_signals();
    let kinds = backend::compiled();
    let progress = std::io::stderr().is_terminal();
    if progress {
        eprint!("shm bench: starting the peers...");
    }
    let mut cases = cases(&plan, &kinds)?;
    if !a.cases.is_empty() {
        let known: Vec<String> = cases.iter().map(|c| c.key().to_owned()).collect();
        if let Some(bad) = a.cases.iter().find(|c| !known.contains(c)) {
            bail!("no bench case {bad:?}; the cases are: {}", known.join(", "));
        }
        let mut wanted = a.cases.clone();
        wanted.extend(
            a.cases
                .iter()
                .flat_map(|c| report::denominators(c))
                .map(String::from),
        );
        cases.retain(|c| wanted.iter().any(|w| w == c.key()));
    }
    let mut samples: Vec<Vec<u64>> = cases.iter().map(|_| Vec::new()).collect();
    for rep in 0..plan.reps {
        if progress {
            eprint!("\r\x1b[Kshm bench: repetition {}/{}", rep + 1, plan.reps);
        }
        for (case, out) in cases.iter_mut().zip(samples.iter_mut()) {
            case.run(out)
                .with_context(|| format!("bench case {}", case.key()))?;
            if STOP.load(Ordering::Relaxed) {
                bail!("interrupted; the bench removed its segments and stopped its peers");
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let rows: Vec<report::Row> = cases
        .iter()
        .zip(samples.iter_mut())
        .map(|(case, s)| report::Row::new(case.as_ref(), s))
        .collect();
    for case in cases {
        let key = case.key().to_owned();
        case.finish().with_context(|| format!("bench case {key}"))?;
    }
    let report = report::Report::new(plan.reps, rows);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Every case this binary can run, in table order; peers are started here.
fn cases(plan: &Plan, kinds: &[Kind]) -> Result<Vec<Box<dyn Case>>> {
    use WaitStrategy::{Block, Hybrid, Spin};
    let rounds = game::Rounds::new(plan.budget);
    let mut cases: Vec<Box<dyn Case>> = vec![Box::new(game::Game::threads(rounds)?)];
    for &kind in kinds {
        for strategy in [Spin, Hybrid, Block] {
            cases.push(Box::new(game::Game::processes(
                kind, strategy, None, rounds,
            )?));
        }
    }
    cases.push(Box::new(game::Echo::pipe(rounds)?));
    cases.push(Box::new(game::Echo::socketpair(rounds)?));
    cases.push(Box::new(channel::Rtt::new(plan.budget)?));
    if let Some(cpu) = game::one_cpu() {
        cases.push(Box::new(game::Game::processes(
            backend::DEFAULT,
            Hybrid,
            Some(cpu),
            rounds,
        )?));
    }
    let [small, _, _] = plan.cycles;
    for &kind in kinds {
        cases.push(Box::new(cycle::Cycle::backend(kind, None, true, small)?));
        if let Some(raw) = cycle::Cycle::raw(kind, small)? {
            cases.push(Box::new(raw));
        }
    }
    if kinds.contains(&Kind::Posix) {
        for (size, per_rep) in cycle::SIZES.into_iter().zip(plan.cycles) {
            for reserve in [true, false] {
                cases.push(Box::new(cycle::Cycle::backend(
                    Kind::Posix,
                    Some(size),
                    reserve,
                    per_rep,
                )?));
            }
        }
    }
    cases.push(Box::new(copy::Copy::new()?));
    cases.push(Box::new(copy::Memcpy::new()));
    for stream in channel::Stream::all(channel::stream_bytes(plan.budget))? {
        cases.push(Box::new(stream));
    }
    Ok(cases)
}
