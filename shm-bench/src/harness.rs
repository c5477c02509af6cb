//! The harness: how much to measure, the interleaving of the cases, the stop flag.
//!
//! Every wait of the bench has a deadline and looks at the stop flag (`stop`): a round-trip
//! case plays its rounds in chunks of at most a few milliseconds and checks both between
//! chunks; a repetition of a case ends early after `Plan::rep_limit`; a blocking read of the
//! pipe cases is interrupted every `TICK` to look.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::case::{Plan, SLICES, Samples};
use crate::cases;
use crate::host::Host;
use crate::report::{self, Report};
use crate::stop::stopping;

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

/// Measures the cases `opts` asks for on `host`'s backends. Peers are started first, then
/// every case runs once per repetition, interleaved; everything is cleaned up before this
/// returns, also on an error or after [`stop`](crate::stop::stop).
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
