//! The harness: how much to measure, the interleaving of the cases, the stop flag.
//!
//! Every wait of the bench has a deadline and looks at the stop flag ([`stop`]): a round-trip
//! case plays its rounds in chunks of at most a few milliseconds and checks both between
//! chunks; a repetition of a case ends early after [`Plan::rep_limit`]; a blocking read of the
//! pipe cases is interrupted every [`TICK`] to look.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::report::{self, Report};
use crate::{Host, cases};

/// How long a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Length {
    /// Every case, one short repetition with tiny rounds: checks that everything runs (peers,
    /// cleanup, the report) in a few seconds, even in a debug build; the numbers mean nothing.
    Smoke,
    /// Fewer repetitions than the full run, with as many round trips per case and repetition:
    /// about half a minute.
    Quick,
    /// The full run: about 3-4 minutes.
    #[default]
    Full,
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How long.
    pub length: Length,
    /// Only these cases (and those their ratios divide by); empty: all.
    pub cases: Vec<String>,
    /// Print the repetition under way on stderr (for a terminal).
    pub progress: bool,
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Repetitions of the whole list of cases.
    pub reps: usize,
    /// Time for the round trips of one case in one repetition.
    pub budget: Duration,
    /// Create/unlink cycles per repetition, by size: 4 KiB, 1 MiB, 64 MiB.
    pub cycles: [usize; 3],
    /// Rounds of each `shm taller demo --lockstep` that `demo_lockstep` times.
    pub demo_rounds: u64,
    /// Bytes per stream per repetition.
    pub stream_bytes: u64,
    /// Bytes the bulk copies move each way.
    pub copy_bytes: usize,
    /// Ends that `async_idle` keeps awaiting, and for how long.
    pub idle: (usize, Duration),
}

impl Plan {
    /// The longest one repetition of a round-trip case may take: it ends early after this
    /// (its samples are kept), so that a case that became a thousand times slower than its
    /// last repetition (a stop, a busy machine) cannot hold the bench for minutes.
    pub fn rep_limit(&self) -> Duration {
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
    demo_rounds: 2_000_000,
    stream_bytes: 1 << 30,
    copy_bytes: cases::copy::SIZE,
    idle: (1000, Duration::from_secs(1)),
};

const FULL: Plan = Plan {
    reps: 40,
    budget: Duration::from_millis(60),
    cycles: [300, 40, 2],
    demo_rounds: 2_000_000,
    stream_bytes: 1 << 30,
    copy_bytes: cases::copy::SIZE,
    idle: (1000, Duration::from_secs(1)),
};

/// [`Length::Smoke`]: one repetition, a few milliseconds per case, a few cycles.
const SMOKE: Plan = Plan {
    reps: 1,
    budget: Duration::from_millis(4),
    cycles: [3, 1, 1],
    demo_rounds: 20_000,
    stream_bytes: 4 << 20,
    copy_bytes: cases::copy::SMOKE_SIZE,
    idle: (100, Duration::from_millis(100)),
};

impl Length {
    pub(crate) fn plan(self) -> Plan {
        match self {
            Length::Smoke => SMOKE,
            Length::Quick => QUICK,
            Length::Full => FULL,
        }
    }
}

/// Slices per repetition of the cases at the floor (see [`Case::sliced`]); each slice has the
/// plan's budget divided by this.
pub(crate) const SLICES: u32 = 4;

/// How often a blocking read of the pipe cases is interrupted to look at the stop flag and its
/// deadline.
const TICK: Duration = Duration::from_millis(100);

/// What a case measured: samples (nanoseconds each, for the median and p99) and the time and
/// count of all the operations they cover (for the mean).
#[derive(Debug, Default)]
pub(crate) struct Samples {
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
pub(crate) enum Unit {
    /// Nanoseconds per operation.
    Latency,
    /// Each sample moved this many bytes.
    Throughput { bytes: u64 },
    /// CPU time in nanoseconds per second idle, beside the threads the case made.
    Idle { threads: u64 },
}

/// One measured case, run once per repetition. See [`crate::cases`] for how to add one.
pub(crate) trait Case {
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

/// Set by [`stop`]: the bench stops within a chunk of rounds, and cleans up as on any error.
static STOP: AtomicBool = AtomicBool::new(false);

/// True once the bench was asked to stop.
pub(crate) fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks a running bench to stop: it stops within a chunk of rounds, removes its segments,
/// stops its peers, and [`run`] returns an error saying it was interrupted. Async-signal-safe
/// (one store to an atomic): a signal handler may call it.
pub fn stop() {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_signal(_: libc::c_int) {
    stop();
}

extern "C" fn on_tick(_: libc::c_int) {}

/// Installs `handler` for `sig` without `SA_RESTART`: a blocking call the signal interrupts
/// returns EINTR, and its caller looks at the stop flag.
fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask); both handlers only
    // store to an atomic or do nothing, which is async-signal-safe; sigaction reads `action`
    // and writes nothing back (null old action).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

/// Makes each of `signals` call [`stop`] instead of ending the process at once (which would
/// leave a segment of a create cycle behind). SIGALRM in the list is left out: the bench uses
/// it itself, to interrupt a blocking read now and then. Call it before [`run`].
pub fn stop_on(signals: &[libc::c_int]) {
    for &sig in signals.iter().filter(|&&s| s != libc::SIGALRM) {
        catch(sig, on_signal);
    }
}

/// SIGALRM every [`TICK`] while alive, so that a blocking read returns EINTR now and then.
/// Only around the pipe cases: other system calls (a `posix_fallocate` of 64 MiB) must not be
/// interrupted.
pub(crate) struct Ticker;

impl Ticker {
    pub(crate) fn start() -> Self {
        catch(libc::SIGALRM, on_tick);
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
pub(crate) fn segment_name(key: &str) -> String {
    format!("/shm-bench-{}-{key}", std::process::id())
}

/// Measures the cases `opts` asks for on `host`'s backends. Peers are started first, then
/// every case runs once per repetition, interleaved; everything is cleaned up before this
/// returns, also on an error or after [`stop`].
pub fn run(host: &Host, opts: &Options) -> Result<Report> {
    let plan = opts.length.plan();
    let progress = opts.progress;
    if progress {
        eprint!("shm bench: starting the peers...");
    }
    let interrupted =
        || anyhow!("interrupted; the bench removed its segments and stopped its peers");
    // A signal while the peers start may fail a system call (EINTR) before the flag is seen.
    let mut cases = match cases::all(&plan, host) {
        Err(_) if stopping() => return Err(interrupted()),
        started => started?,
    };
    if !opts.cases.is_empty() {
        let known: Vec<String> = cases.iter().map(|c| c.key().to_owned()).collect();
        if let Some(bad) = opts.cases.iter().find(|c| !known.contains(c)) {
            bail!("no bench case {bad:?}; the cases are: {}", known.join(", "));
        }
        let mut wanted = opts.cases.clone();
        wanted.extend(
            opts.cases
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
    Ok(Report::new(plan.reps, plan.describe(), rows))
}
