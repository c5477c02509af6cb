//! What every case is and gives: the [`Case`] trait, its [`Samples`] and [`Unit`], the table
//! [`Section`] it belongs to, and the [`Plan`] it measures by. Below the cases, the harness
//! that runs them and the report that reads them.

use std::time::Duration;

use anyhow::Result;

/// The table's sections, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    RoundTrip,
    Cycle,
    /// Bulk copies of this many bytes each way.
    Copy(usize),
    Small,
    Stream,
    /// Ends awaiting, idle: CPU time and threads.
    Idle,
    /// Publish/subscribe: time per message published.
    Fanout,
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

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} ms of round trips per case, the fastest in {SLICES} slices in turn",
            self.budget.as_millis()
        )
    }
}

/// Slices per repetition of the cases at the floor (see [`Case::sliced`]); each slice has the
/// plan's budget divided by this.
pub(crate) const SLICES: u32 = 4;

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

/// One measured case, run once per repetition. See the `cases` module for how to add one.
pub(crate) trait Case {
    /// Its key in the results (`posix_hybrid`, `cycle_raw_sysv`, ...).
    fn key(&self) -> &str;
    /// A few words for the table.
    fn what(&self) -> &str;
    /// The table section it belongs to.
    fn section(&self) -> Section;
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

/// A name for the bench's own segment: `/shm-bench-PID-KEY` (unique per run and case).
pub(crate) fn segment_name(key: &str) -> String {
    format!("/shm-bench-{}-{key}", std::process::id())
}
