//! `shm bench`: the project's speed against its floors, measured side by side in one run.
//!
//! Every case runs once per repetition, in turn with the others (A B C ... A B C ...), so that
//! the machine's slow and fast spells fall on all of them alike; the samples of all repetitions
//! give each case's mean, median and p99. On a noisy machine only the ratios between cases
//! measured this way mean something. The ratios divide means, and `--check` fails the run when
//! one misses its target.
//!
//! Every wait of the bench has a deadline and looks at the stop flag (Ctrl-C, SIGTERM, SIGHUP):
//! a round-trip case plays its rounds in chunks of at most a few milliseconds and checks both
//! between chunks; a repetition of a case ends early after [`Plan::rep_limit`]; a blocking read
//! of the pipe cases is interrupted every [`TICK`] to look.
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
mod demo;
mod game;
mod report;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use shm_core::wait::WaitStrategy;

use crate::Global;
use crate::backend::{self, Kind};

/// Arguments of `shm bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints a table of means, medians and p99s and the ratios that matter (ratios of means: a
program pays the mean), each beside its target. The machine is shared and noisy: compare
ratios, run it twice, and run it when the machine is quiet. `--quick` takes about half a minute
(fewer repetitions, the same time per case and repetition), the full run about 3-4 minutes.
With --check the exit status is 1 when a target is missed.")]
pub struct BenchArgs {
    /// Print one JSON object {"results": {...}, "ratios": {...}, "targets": {...}} instead of
    /// the table.
    #[arg(long)]
    pub json: bool,
    /// A short run: fewer repetitions (about half a minute; for CI and a first look).
    #[arg(long)]
    pub quick: bool,
    /// Exit non-zero when a ratio misses its target (after printing the results).
    #[arg(long)]
    pub check: bool,
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

impl Plan {
    /// The longest one repetition of a round-trip case may take: it ends early after this
    /// (its samples are kept), so that a case that became a thousand times slower than its
    /// last repetition (a stop, a busy machine) cannot hold the bench for minutes.
    fn rep_limit(&self) -> Duration {
        self.budget * 10
    }

    fn describe(&self) -> String {
        format!(
            "{} ms of round trips per case, the fastest in {SLICES} slices in turn",
            self.budget.as_millis()
        )
    }
}

/// `--quick`: as many round trips per case and repetition as the full run (a short repetition
/// is what made the ratios flip from run to run), and as many 4 KiB create cycles (their ratios
/// are of means too: one slow cycle in 40 moved them past their target), in fewer repetitions.
const QUICK: Plan = Plan {
    reps: 6,
    budget: Duration::from_millis(60),
    cycles: [300, 10, 1],
};

const FULL: Plan = Plan {
    reps: 40,
    budget: Duration::from_millis(60),
    cycles: [300, 40, 2],
};

/// Slices per repetition of the cases at the floor (see [`Case::sliced`]); each slice has the
/// plan's budget divided by this.
const SLICES: u32 = 4;

/// How often a blocking read of the pipe cases is interrupted to look at the stop flag and its
/// deadline.
const TICK: Duration = Duration::from_millis(100);

/// What a case measured: samples (nanoseconds each, for the median and p99) and the time and
/// count of all the operations they cover (for the mean).
#[derive(Debug, Default)]
pub struct Samples {
    /// One per sample: the mean of the operations it covers, in nanoseconds.
    pub each: Vec<u64>,
    total_ns: u128,
    ops: u64,
}

impl Samples {
    /// One operation that took `ns`.
    pub fn push(&mut self, ns: u64) {
        self.push_batch(u128::from(ns), 1);
    }

    /// `ops` operations that took `total_ns` together: one sample, their mean.
    pub fn push_batch(&mut self, total_ns: u128, ops: u64) {
        let ops = ops.max(1);
        let each = u64::try_from(total_ns / u128::from(ops)).unwrap_or(u64::MAX);
        self.each.push(each.max(1));
        self.total_ns += total_ns;
        self.ops += ops;
    }

    /// Total time over operations, in nanoseconds (0 without any).
    pub fn mean(&self) -> u64 {
        if self.ops == 0 {
            return 0;
        }
        u64::try_from(self.total_ns / u128::from(self.ops)).unwrap_or(u64::MAX)
    }
}

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
    /// Runs one repetition, or one slice of it, pushing its samples.
    fn run(&mut self, out: &mut Samples) -> Result<()>;
    /// True for the round trips at the floor (tens of nanoseconds: two threads, the spinning
    /// and hybrid games, `channel_rtt`). Their ratios compare them with each other, so each
    /// repetition runs them in [`SLICES`] slices, in turn: a change of the machine's state
    /// (where the host runs the vCPUs: 65 or 300 ns for the same round trip here) then falls
    /// on all of them alike instead of on whichever case ran at that moment.
    fn sliced(&self) -> bool {
        false
    }
    /// Stops what the case started (peers) and reports how they ended. Dropping a case without
    /// it kills its peers and removes its segments too.
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Set by Ctrl-C, SIGTERM or SIGHUP: the bench stops within a chunk of rounds, and cleans up
/// as on any error (the peers die with their own Ctrl-C, or with the bench).
static STOP: AtomicBool = AtomicBool::new(false);

/// True once the bench was asked to stop.
fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_tick(_: libc::c_int) {}

/// Turns the signals that would end the bench at once (leaving a segment of a create cycle
/// behind) into [`STOP`]; SIGALRM (see [`Ticker`]) only interrupts.
fn catch_signals() {
    for sig in crate::shutdown::STOP_SIGNALS {
        crate::shutdown::catch(sig, on_signal);
    }
    crate::shutdown::catch(libc::SIGALRM, on_tick);
}

/// SIGALRM every [`TICK`] while alive, so that a blocking read returns EINTR now and then.
/// Only around the pipe cases: other system calls (a `posix_fallocate` of 64 MiB) must not be
/// interrupted.
struct Ticker;

impl Ticker {
    fn start() -> Self {
        set_timer(TICK);
        Ticker
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        set_timer(Duration::ZERO);
    }
}

/// Arms (or, with zero, disarms) a repeating `ITIMER_REAL` of `every`.
fn set_timer(every: Duration) {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(every.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(every.subsec_micros()),
    };
    let timer = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: setitimer reads `timer` and writes nothing back (null old value).
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
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
    let interrupted =
        || anyhow!("interrupted; the bench removed its segments and stopped its peers");
    // A signal while the peers start may fail a system call (EINTR) before the flag is seen.
    let mut cases = match cases(&plan, &kinds) {
        Err(_) if stopping() => return Err(interrupted()),
        started => started?,
    };
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
    let mut samples: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    for rep in 0..plan.reps {
        if progress {
            eprint!("\r\x1b[Kshm bench: repetition {}/{}", rep + 1, plan.reps);
        }
        // The sliced cases in turn, slice by slice, then the others.
        let order = (0..SLICES)
            .flat_map(|_| cases.iter().enumerate().filter(|(_, c)| c.sliced()))
            .chain(cases.iter().enumerate().filter(|(_, c)| !c.sliced()))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        for i in order {
            let ran = cases[i].run(&mut samples[i]);
            if stopping() {
                return Err(interrupted());
            }
            ran.with_context(|| format!("bench case {}", cases[i].key()))?;
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
    let report = report::Report::new(plan.reps, plan.describe(), rows);
    let text = if a.json {
        let mut json = serde_json::to_string_pretty(&report.json())?;
        json.push('\n');
        json
    } else {
        report.table()
    };
    // Everything is cleaned up by now: a failed write (a closed pipe, a full disk) is reported
    // as an error like any other, not a panic.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the results to stdout")?;
    let missed = report.missed();
    if a.check && !missed.is_empty() {
        bail!("--check: targets not met: {}", missed.join(", "));
    }
    Ok(())
}

/// Every case this binary can run, in table order; peers are started here.
fn cases(plan: &Plan, kinds: &[Kind]) -> Result<Vec<Box<dyn Case>>> {
    use WaitStrategy::{Block, Hybrid, Spin};
    let rounds = game::Rounds::new(plan.budget, plan.rep_limit());
    let slice = game::Rounds::new(plan.budget / SLICES, plan.rep_limit());
    let mut cases: Vec<Box<dyn Case>> = vec![Box::new(game::Game::threads(slice)?)];
    for &kind in kinds {
        for strategy in [Spin, Hybrid, Block] {
            let rounds = if strategy == Block { rounds } else { slice };
            cases.push(Box::new(game::Game::processes(
                kind, strategy, None, rounds,
            )?));
        }
    }
    cases.push(Box::new(game::Echo::pipe(rounds)?));
    cases.push(Box::new(game::Echo::socketpair(rounds)?));
    if kinds.contains(&Kind::Posix) {
        cases.push(Box::new(game::BellGame::new(rounds)?));
    }
    cases.push(Box::new(channel::Rtt::new(plan.budget / SLICES)?));
    if kinds.contains(&Kind::Posix) {
        cases.push(Box::new(demo::Demo::new()));
    }
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
    for &kind in kinds {
        for way in [copy::SmallWay::Read, copy::SmallWay::Write] {
            cases.push(Box::new(copy::Small::new(kind, way)?));
        }
        if kind == Kind::Posix {
            cases.push(Box::new(copy::Small::new(
                kind,
                copy::SmallWay::FstatThenCopy,
            )?));
        }
    }
    for stream in channel::Stream::all(channel::stream_bytes(plan.budget))? {
        cases.push(Box::new(stream));
    }
    Ok(cases)
}
