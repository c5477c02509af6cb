//! Means, medians, p99s, ratios and their targets: as a table, or as one JSON object.
//!
//! A program pays the mean, not the median: a round trip that falls asleep once in a hundred
//! can triple the mean and leave the median where it was. So the ratios of latencies are ratios
//! of means (total time over operations), and the targets are judged on them.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::case::{Case, Samples, Section, Unit};

impl Section {
    fn title(self) -> String {
        match self {
            Section::Copy(bytes) => format!("copy {} MiB in, then out", bytes >> 20),
            Section::RoundTrip => {
                "round trip: lockstep game (pipe, socketpair: one byte each way)".into()
            }
            Section::Cycle => "create, map, unmap, unlink".into(),
            Section::Small => "copy 64 bytes (read_at, write_at)".into(),
            Section::Stream => {
                "stream in 64 KiB messages, every byte checked by the receiver".into()
            }
            Section::Idle => "idle: ends awaiting in one process".into(),
            Section::Fanout => {
                "publish/subscribe: time per message published, each checked by every subscriber"
                    .into()
            }
        }
    }
}

/// What one case measured.
#[derive(Debug, Clone, Copy)]
enum Measure {
    Latency {
        mean: u64,
        median: u64,
        p99: u64,
    },
    Throughput {
        gbps: f64,
    },
    /// CPU time per second idle (ns), threads made.
    Idle {
        cpu: u64,
        threads: u64,
    },
}

impl Measure {
    /// The number ratios divide: a mean in ns, or GB/s (CPU ns per second for idle cases).
    fn value(self) -> f64 {
        match self {
            Measure::Latency { mean, .. } => mean as f64,
            Measure::Throughput { gbps } => gbps,
            Measure::Idle { cpu, .. } => cpu as f64,
        }
    }

    /// The figure a limit bounds.
    fn figure(self, figure: Figure) -> Option<f64> {
        match (self, figure) {
            (Measure::Idle { cpu, .. }, Figure::CpuMs) => Some(cpu as f64 / 1e6),
            (Measure::Idle { threads, .. }, Figure::Threads) => Some(threads as f64),
            _ => None,
        }
    }
}

/// What a limit bounds in its case's result.
#[derive(Debug, Clone, Copy)]
enum Figure {
    /// CPU milliseconds per second idle.
    CpuMs,
    /// Threads made.
    Threads,
}

/// One case's result.
pub struct Row {
    key: String,
    what: String,
    section: Section,
    measure: Measure,
}

/// The sample at quantile `q` (nearest rank) of sorted samples; 1 when there are none.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 1;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Row {
    /// Summarizes `samples` (sorted here).
    pub(crate) fn new(case: &dyn Case, samples: &mut Samples) -> Self {
        let mean = samples.mean().max(1);
        let samples = &mut samples.each;
        samples.sort_unstable();
        let median = quantile(samples, 0.5).max(1);
        let measure = match case.unit() {
            Unit::Latency => Measure::Latency {
                mean,
                median,
                p99: quantile(samples, 0.99).max(1),
            },
            Unit::Throughput { bytes } => Measure::Throughput {
                gbps: bytes as f64 / median as f64,
            },
            Unit::Idle { threads } => Measure::Idle { cpu: mean, threads },
        };
        Self {
            key: case.key().to_owned(),
            what: case.what().to_owned(),
            section: case.section(),
            measure,
        }
    }
}

/// A target for a ratio.
#[derive(Debug, Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// Strictly below (the limits: shown as `< 10`).
    Below(f64),
}

impl Target {
    fn met(self, x: f64) -> bool {
        match self {
            Target::AtMost(t) => x <= t,
            Target::AtLeast(t) => x >= t,
            Target::Below(t) => x < t,
        }
    }
    /// As a limit's target shows: the bound as it is written (`< 10`, `<= 2`).
    fn show_plain(self) -> String {
        let (op, t) = self.parts();
        format!("{op} {t}")
    }

    fn parts(self) -> (&'static str, f64) {
        match self {
            Target::AtMost(t) => ("<=", t),
            Target::AtLeast(t) => (">=", t),
            Target::Below(t) => ("<", t),
        }
    }

    fn show(self) -> String {
        let (op, t) = match self {
            Target::AtMost(t) => ("<=", t),
            Target::AtLeast(t) => (">=", t),
            Target::Below(t) => ("<", t),
        };
        if t >= 10.0 {
            format!("{op} {t:.0}")
        } else {
            format!("{op} {t:.2}")
        }
    }
}

/// A ratio as measured: its name, its value, its target.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    name: &'static str,
    value: f64,
    target: Target,
    /// A limit (an absolute bound): its target shows as written.
    limit: bool,
}

impl Ratio {
    fn target_shown(&self) -> String {
        if self.limit {
            self.target.show_plain()
        } else {
            self.target.show()
        }
    }
}

/// The ratios reported: name, numerator, denominator, target. Latencies divide means.
const RATIOS: [(&str, &str, &str, Target); 19] = [
    (
        "posix_hybrid_vs_threads",
        "posix_hybrid",
        "threads",
        Target::AtMost(1.15),
    ),
    (
        "sysv_hybrid_vs_threads",
        "sysv_hybrid",
        "threads",
        Target::AtMost(1.15),
    ),
    (
        "demo_lockstep_vs_threads",
        "demo_lockstep",
        "threads",
        Target::AtMost(1.15),
    ),
    (
        "pipe_vs_posix_hybrid",
        "pipe",
        "posix_hybrid",
        Target::AtLeast(50.0),
    ),
    (
        "posix_block_vs_pipe",
        "posix_block",
        "pipe",
        Target::AtMost(1.2),
    ),
    (
        "posix_hybrid_one_cpu_vs_pipe",
        "posix_hybrid_one_cpu",
        "pipe",
        Target::AtMost(1.0),
    ),
    (
        "cycle_posix_vs_raw",
        "cycle_posix",
        "cycle_raw_posix",
        Target::AtMost(1.10),
    ),
    (
        "cycle_sysv_vs_raw",
        "cycle_sysv",
        "cycle_raw_sysv",
        Target::AtMost(1.10),
    ),
    ("copy_vs_memcpy", "copy", "memcpy", Target::AtLeast(0.8)),
    (
        "small_read_posix_vs_before",
        "small_read_posix",
        "small_read_fstat_posix",
        Target::AtMost(1.0),
    ),
    (
        "channel_rtt_vs_threads",
        "channel_rtt",
        "threads",
        Target::AtMost(1.25),
    ),
    (
        "async_rtt_vs_channel_rtt",
        "async_rtt",
        "channel_rtt",
        Target::AtMost(1.5),
    ),
    (
        "service_rtt_1_vs_channel_rtt",
        "service_rtt_1",
        "channel_rtt",
        Target::AtMost(1.25),
    ),
    (
        "service_rtt_4_vs_1",
        "service_rtt_4",
        "service_rtt_1",
        Target::AtMost(2.5),
    ),
    (
        "channel_stream_vs_copy_stream",
        "channel_stream",
        "copy_stream",
        Target::AtLeast(2.0),
    ),
    (
        "channel_stream_vs_pipe_stream",
        "channel_stream",
        "pipe_stream",
        Target::AtLeast(3.0),
    ),
    ("fanout_4_vs_1", "fanout_4", "fanout_1", Target::AtMost(1.5)),
    (
        "bridge_stream_vs_zenoh",
        "bridge_stream",
        "zenoh_stream",
        Target::AtLeast(0.8),
    ),
    (
        "bridge_rtt_vs_zenoh_rtt",
        "bridge_rtt",
        "zenoh_rtt",
        Target::AtMost(1.3),
    ),
];

/// The limits reported: name, case, figure, target (absolute bounds, not ratios).
const LIMITS: [(&str, &str, Figure, Target); 2] = [
    (
        "async_idle_cpu_ms",
        "async_idle",
        Figure::CpuMs,
        Target::Below(10.0),
    ),
    (
        "async_idle_threads",
        "async_idle",
        Figure::Threads,
        Target::AtMost(2.0),
    ),
];

/// The cases a ratio of `key` divides by (`threads` for `channel_rtt`): `shm bench CASE...`
/// runs them too.
pub fn denominators(key: &str) -> impl Iterator<Item = &'static str> + '_ {
    RATIOS.iter().filter(move |r| r.1 == key).map(|r| r.2)
}

/// Everything one run measured.
pub struct Report {
    reps: usize,
    plan: String,
    rows: Vec<Row>,
    ratios: Vec<Ratio>,
    /// The limits, as ratios are: a name, a value and a target.
    limits: Vec<Ratio>,
}

impl Report {
    /// The report of `rows`, with every ratio whose two cases ran; `plan` says in a few words
    /// how much was measured.
    pub fn new(reps: usize, plan: String, rows: Vec<Row>) -> Self {
        let find = |key: &str| {
            rows.iter()
                .find(|r| r.key == key)
                .map(|r| r.measure.value())
        };
        let ratios = RATIOS
            .iter()
            .filter_map(|&(name, num, den, target)| {
                Some(Ratio {
                    name,
                    value: find(num)? / find(den)?,
                    target,
                    limit: false,
                })
            })
            .collect();
        let limits = LIMITS
            .iter()
            .filter_map(|&(name, case, figure, target)| {
                let row = rows.iter().find(|r| r.key == case)?;
                Some(Ratio {
                    name,
                    value: row.measure.figure(figure)?,
                    target,
                    limit: true,
                })
            })
            .collect();
        Self {
            reps,
            plan,
            rows,
            ratios,
            limits,
        }
    }

    /// The names of the ratios whose targets were missed.
    pub fn missed(&self) -> Vec<&'static str> {
        self.ratios
            .iter()
            .chain(&self.limits)
            .filter(|r| !r.target.met(r.value))
            .map(|r| r.name)
            .collect()
    }

    /// `{"results": {case: {"mean_ns", "median_ns", "p99_ns"} or {"gbps"}},
    /// "ratios": {name: x}, "targets": {name: {"target": "<= 1.15", "met": true}}}`.
    pub fn json(&self) -> Value {
        let mut results = Map::new();
        for row in &self.rows {
            let value = match row.measure {
                Measure::Latency { mean, median, p99 } => {
                    json!({"mean_ns": mean, "median_ns": median, "p99_ns": p99})
                }
                Measure::Throughput { gbps } => json!({ "gbps": gbps }),
                Measure::Idle { cpu, threads } => {
                    json!({"cpu_ns_per_s": cpu, "threads": threads})
                }
            };
            results.insert(row.key.clone(), value);
        }
        let ratios: Map<String, Value> = self
            .ratios
            .iter()
            .map(|r| (r.name.to_owned(), json!(r.value)))
            .collect();
        let targets: Map<String, Value> = self
            .ratios
            .iter()
            .chain(&self.limits)
            .map(|r| {
                let verdict = json!({"target": r.target_shown(), "met": r.target.met(r.value)});
                (r.name.to_owned(), verdict)
            })
            .collect();
        json!({"results": results, "ratios": ratios, "targets": targets})
    }

    /// The human table: a section per kind of case, then the ratios beside their targets.
    pub fn table(&self) -> String {
        let kw = self.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
        let ww = self.rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "shm bench: {} repetitions ({}), cases interleaved; {}",
            self.reps,
            self.plan,
            machine()
        );
        let mut section = None;
        for row in &self.rows {
            if section != Some(row.section) {
                section = Some(row.section);
                let (a, b, c) = match row.measure {
                    Measure::Latency { .. } => ("mean", "median", "p99"),
                    Measure::Throughput { .. } => ("", "GB/s", ""),
                    Measure::Idle { .. } => ("CPU/s", "threads", ""),
                };
                let _ = writeln!(
                    t,
                    "\n{:<w$}  {a:>9}  {b:>9}  {c:>9}",
                    row.section.title(),
                    w = kw + ww + 4
                );
            }
            let (a, b, c) = match row.measure {
                Measure::Latency { mean, median, p99 } => {
                    (duration(mean), duration(median), duration(p99))
                }
                Measure::Throughput { gbps } => {
                    (String::new(), format!("{gbps:.1}"), String::new())
                }
                Measure::Idle { cpu, threads } => {
                    (duration(cpu), threads.to_string(), String::new())
                }
            };
            let _ = writeln!(
                t,
                "  {:<kw$}  {:<ww$}  {a:>9}  {b:>9}  {c:>9}",
                row.key, row.what
            );
        }
        let rw = self.ratios.iter().map(|r| r.name.len()).max().unwrap_or(0);
        let _ = writeln!(
            t,
            "\n{:<w$}  {:>7}  {:<8}",
            "ratio (of means)",
            "value",
            "target",
            w = rw + 2
        );
        for r in &self.ratios {
            let x = r.value;
            let value = if x >= 10.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.2}")
            };
            let verdict = if r.target.met(x) { "met" } else { "not met" };
            let _ = writeln!(
                t,
                "  {:<rw$}  {value:>7}  {:<8}  {verdict}",
                r.name,
                r.target.show()
            );
        }
        if !self.limits.is_empty() {
            let lw = self.limits.iter().map(|r| r.name.len()).max().unwrap_or(0);
            let _ = writeln!(
                t,
                "\n{:<w$}  {:>7}  {:<8}",
                "limit",
                "value",
                "target",
                w = lw + 2
            );
            for r in &self.limits {
                let verdict = if r.target.met(r.value) {
                    "met"
                } else {
                    "not met"
                };
                let _ = writeln!(
                    t,
                    "  {:<lw$}  {:>7}  {:<8}  {verdict}",
                    r.name,
                    if r.value.fract() == 0.0 {
                        format!("{:.0}", r.value)
                    } else {
                        format!("{:.2}", r.value)
                    },
                    r.target_shown()
                );
            }
        }
        let missed = self.missed();
        let _ = if missed.is_empty() {
            writeln!(t, "\nevery target met")
        } else {
            writeln!(
                t,
                "\ntargets not met: {} (a busy machine misses them: run again when it is quiet)",
                missed.join(", ")
            )
        };
        // No trailing blanks where a column is empty.
        t.lines().map(|l| format!("{}\n", l.trim_end())).collect()
    }
}

/// `142 ns`, `17.3 us`, `12.0 ms`, `1.20 s`.
fn duration(ns: u64) -> String {
    let x = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} us", x / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", x / 1e6)
    } else {
        format!("{:.2} s", x / 1e9)
    }
}

/// CPUs available, CPU model and kernel, as far as this system tells.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("{} {}", std::env::consts::OS, s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    format!("{cpus} CPUs ({model}), {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&s, 0.5), 50);
        assert_eq!(quantile(&s, 0.99), 99);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 1);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(142), "142 ns");
        assert_eq!(duration(17_345), "17.3 us");
        assert_eq!(duration(12_000_000), "12.0 ms");
    }
}
