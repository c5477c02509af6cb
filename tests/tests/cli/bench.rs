//! `shm bench` end to end: a run prints every result and ratio the issue names, as JSON and as a
//! table, and leaves no segment and no process behind, however it ends. The runs that only
//! check what is printed are `--smoke` runs (every case once, tiny rounds: seconds even in a
//! debug build). Timings are never asserted, except by the test marked `#[ignore]`, which
//! bounds how long a stopped run goes on; it runs in its own command, on the release build:
//! `cargo build --release -p shm-cli && cargo test --release -p shm-tests --test cli --
//! --ignored bench::` (README, Tests).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use shm_tests::{proc_stat, shm, skip};

/// A run that is not a smoke run spins on both CPUs for seconds: two at once would only slow
/// each other down. Smoke runs are short and assert nothing of time: they run side by side.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const LATENCY_CASES: [&str; 14] = [
    "threads",
    "demo_lockstep",
    "posix_spin",
    "posix_hybrid",
    "posix_block",
    "sysv_spin",
    "sysv_hybrid",
    "sysv_block",
    "pipe",
    "socketpair",
    "posix_block_bell",
    "posix_hybrid_one_cpu",
    "cycle_posix",
    "cycle_sysv",
];

const MORE_LATENCY_CASES: [&str; 17] = [
    "small_read_posix",
    "small_write_posix",
    "small_read_fstat_posix",
    "small_read_sysv",
    "small_write_sysv",
    "cycle_raw_posix",
    "cycle_raw_sysv",
    "cycle_posix_4k_reserve",
    "cycle_posix_4k_noreserve",
    "cycle_posix_1m_reserve",
    "cycle_posix_1m_noreserve",
    "cycle_posix_64m_reserve",
    "cycle_posix_64m_noreserve",
    "fanout_1",
    "fanout_4",
    "bridge_rtt",
    "zenoh_rtt",
];

const RATIOS: [&str; 19] = [
    "posix_hybrid_vs_threads",
    "sysv_hybrid_vs_threads",
    "demo_lockstep_vs_threads",
    "pipe_vs_posix_hybrid",
    "posix_block_vs_pipe",
    "posix_hybrid_one_cpu_vs_pipe",
    "cycle_posix_vs_raw",
    "cycle_sysv_vs_raw",
    "copy_vs_memcpy",
    "small_read_posix_vs_before",
    "channel_rtt_vs_threads",
    "async_rtt_vs_channel_rtt",
    "service_rtt_1_vs_channel_rtt",
    "service_rtt_4_vs_1",
    "channel_stream_vs_copy_stream",
    "channel_stream_vs_pipe_stream",
    "fanout_4_vs_1",
    "bridge_stream_vs_zenoh",
    "bridge_rtt_vs_zenoh_rtt",
];

/// The limits (absolute bounds on one case's figures, judged as ratios are): name, case,
/// figure.
const LIMITS: [(&str, &str, &str); 2] = [
    ("async_idle_cpu_ms", "async_idle", "cpu_ns_per_s"),
    ("async_idle_threads", "async_idle", "threads"),
];

/// Runs `shm bench ARGS` to the end; also returns its pid, which its segment names carry.
fn bench(args: &[&str]) -> (Output, u32) {
    let args: Vec<&str> = std::iter::once("bench")
        .chain(args.iter().copied())
        .collect();
    let (pid, out) = shm_tests::shm_ok(&args);
    (out, pid)
}

/// Nothing named after the bench's pid in /dev/shm, no System V segment it made or used, and
/// nothing under the keys of its System V cases.
fn assert_nothing_left(pid: u32) {
    let prefix = format!("shm-bench-{pid}-");
    shm_tests::assert_nothing_left(&prefix, pid);
    for case in [
        "posix_spin",
        "sysv_spin",
        "sysv_hybrid",
        "sysv_block",
        "cycle_sysv",
    ] {
        let name = shm_core::SegmentName::new(&format!("/{prefix}{case}")).unwrap();
        let key = shm_sysv::key_for(&name).unwrap().as_raw();
        // SAFETY: shmget with size 0 and no flags only looks the key up.
        let id = unsafe { libc::shmget(key, 0, 0) };
        assert_eq!(id, -1, "a System V segment with the key of {name} is left");
    }
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

/// Runs `shm bench ARGS` to the end, whatever its exit status; returns its output, pid and how
/// long it took.
fn bench_any(args: &[&str]) -> (Output, u32, Duration) {
    let start = Instant::now();
    let child = shm()
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (out, pid, start.elapsed())
}

/// The JSON has every result (mean, median, p99), every ratio and every target with its
/// verdict; `--check` exits 0 exactly when every target was met, and says which were not.
#[test]
fn smoke_json_has_every_result_ratio_and_target_and_check_follows_them() {
    let (out, pid, _) = bench_any(&["--smoke", "--json", "--check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON on stdout ({e}); stderr: {err}"));
    let results = json["results"].as_object().unwrap();
    for case in LATENCY_CASES.iter().chain(MORE_LATENCY_CASES.iter()) {
        let r = &results
            .get(*case)
            .unwrap_or_else(|| panic!("no result {case}"));
        let median = positive(&r["median_ns"], &format!("{case}.median_ns"));
        let p99 = positive(&r["p99_ns"], &format!("{case}.p99_ns"));
        positive(&r["mean_ns"], &format!("{case}.mean_ns"));
        assert!(median <= p99, "{case}: median {median} > p99 {p99}");
        assert!(r["median_ns"].is_u64(), "{case}: whole nanoseconds");
        assert!(r["mean_ns"].is_u64(), "{case}: whole nanoseconds");
    }
    for case in ["copy", "memcpy", "bridge_stream", "zenoh_stream"] {
        positive(&results[case]["gbps"], &format!("{case}.gbps"));
    }
    let ratios = json["ratios"].as_object().unwrap();
    for ratio in RATIOS {
        positive(&ratios[ratio], ratio);
    }
    assert_eq!(ratios.len(), RATIOS.len(), "ratios: {ratios:?}");
    // The ratios of latencies divide the means.
    let mean = |case: &str| results[case]["mean_ns"].as_f64().unwrap();
    let x = ratios["posix_hybrid_vs_threads"].as_f64().unwrap();
    let want = mean("posix_hybrid") / mean("threads");
    assert!((x - want).abs() <= 1e-9 * want, "{x} != {want}");
    let targets = json["targets"].as_object().unwrap();
    assert_eq!(
        targets.len(),
        RATIOS.len() + LIMITS.len(),
        "targets: {targets:?}"
    );
    let mut missed = Vec::new();
    // The limits: `async_idle`'s CPU time per second idle (ns; the limit is in ms) and the
    // threads its awaits made, each judged against its bound.
    for (limit, case, figure) in LIMITS {
        let r = &results[case];
        let value = r[figure]
            .as_u64()
            .unwrap_or_else(|| panic!("{case}.{figure}: {r}"));
        let value = if figure == "cpu_ns_per_s" {
            value as f64 / 1e6
        } else {
            value as f64
        };
        let t = &targets[limit];
        let target = t["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{limit}: {t}"));
        let (holds, bound) = if let Some(b) = target.strip_prefix("<= ") {
            let b: f64 = b.parse().unwrap();
            (value <= b, b)
        } else {
            let b: f64 = target.strip_prefix("< ").unwrap().parse().unwrap();
            (value < b, b)
        };
        assert!(bound > 0.0, "{limit}: {target}");
        let met = t["met"].as_bool().unwrap_or_else(|| panic!("{limit}: {t}"));
        assert_eq!(met, holds, "{limit}: {value} against {target}");
        if !met {
            missed.push(limit);
        }
    }
    for ratio in RATIOS {
        let t = &targets[ratio];
        let target = t["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{ratio}: {t}"));
        assert!(
            target.starts_with("<= ") || target.starts_with(">= "),
            "{ratio}: {target}"
        );
        let bound: f64 = target[3..].parse().unwrap();
        let value = ratios[ratio].as_f64().unwrap();
        let met = t["met"].as_bool().unwrap_or_else(|| panic!("{ratio}: {t}"));
        let holds = if target.starts_with("<=") {
            value <= bound
        } else {
            value >= bound
        };
        assert_eq!(met, holds, "{ratio}: {value} against {target}");
        if !met {
            missed.push(ratio);
        }
    }
    assert_eq!(
        json.as_object().unwrap().len(),
        3,
        "only results, ratios and targets"
    );
    // --check: exit status 0 exactly when every target was met; otherwise one line naming them.
    if missed.is_empty() {
        assert!(out.status.success(), "every target met, yet: {err}");
    } else {
        assert_eq!(out.status.code(), Some(1), "missed {missed:?}: {err}");
        assert!(err.contains("targets not met"), "{err}");
        for ratio in &missed {
            assert!(err.contains(ratio), "{ratio} not named: {err}");
        }
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    // Progress goes to a terminal only.
    assert!(
        !err.contains("repetition"),
        "progress without a terminal: {err}"
    );
    assert_nothing_left(pid);
}

#[test]
fn smoke_table_shows_cases_ratios_and_targets() {
    let (out, pid) = bench(&["--smoke"]);
    let table = String::from_utf8(out.stdout).unwrap();
    for word in [
        "mean",
        "median",
        "p99",
        "GB/s",
        "ratio (of means)",
        "target",
    ] {
        assert!(table.contains(word), "no {word:?} in:\n{table}");
    }
    for case in LATENCY_CASES.iter().chain(["copy", "memcpy"].iter()) {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{case} "))),
            "no row {case} in:\n{table}"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("async_idle ")),
        "no row async_idle in:\n{table}"
    );
    for ratio in RATIOS.iter().chain(LIMITS.iter().map(|l| &l.0)) {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(ratio))
            .unwrap_or_else(|| panic!("no ratio {ratio} in:\n{table}"));
        assert!(
            line.contains("<=") || line.contains(">=") || line.contains("< "),
            "no target: {line}"
        );
        assert!(line.contains("met"), "no verdict: {line}");
    }
    assert_nothing_left(pid);
}

/// The cases across hosts alone (issue 20): the bridged stream and round trip against Zenoh
/// alone, each with its ratio and target, every byte checked (a wrong byte fails the run),
/// peers and sessions ended, nothing left.
#[test]
fn smoke_bridge_cases_run_alone() {
    let cases = ["bridge_stream", "zenoh_stream", "bridge_rtt", "zenoh_rtt"];
    let args: Vec<&str> = ["--smoke", "--json"].into_iter().chain(cases).collect();
    let (out, pid) = bench(&args);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = json["results"].as_object().unwrap();
    assert_eq!(results.len(), cases.len(), "only those: {results:?}");
    for case in ["bridge_stream", "zenoh_stream"] {
        positive(&results[case]["gbps"], &format!("{case}.gbps"));
    }
    for case in ["bridge_rtt", "zenoh_rtt"] {
        positive(&results[case]["median_ns"], &format!("{case}.median_ns"));
    }
    for ratio in ["bridge_stream_vs_zenoh", "bridge_rtt_vs_zenoh_rtt"] {
        positive(&json["ratios"][ratio], ratio);
        assert!(json["targets"][ratio]["met"].is_boolean(), "{json}");
    }
    assert_nothing_left(pid);
}

/// The peers are a hidden subcommand, not flags of `shm bench`; told nonsense, a peer says so
/// in one line and fails.
#[test]
fn peers_are_hidden_and_refuse_nonsense() {
    let out = shm().args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("--quick") && help.contains("--json") && help.contains("--smoke"),
        "{help}"
    );
    assert!(
        !help.contains("--peer"),
        "internal arguments shown:\n{help}"
    );
    let out = shm().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("bench"), "{help}");
    assert!(
        !help.contains("bench-peer"),
        "the peer command shown:\n{help}"
    );
    let out = shm()
        .args(["bench-peer", "dance", "--wildly"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown peer"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// Starts `shm bench ARGS` in the background; killed on drop if it still runs.
struct Background(Child);

impl Background {
    fn start(args: &[&str], stdout: Stdio) -> Self {
        Background(
            shm()
                .arg("bench")
                .args(args)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    fn signal(&self, sig: libc::c_int) {
        shm_tests::signal(self.0.id(), sig);
    }

    /// Waits for the end, at most `within`; kills it and fails when it overruns.
    fn finish_within(mut self, within: Duration, what: &str) -> (Output, Duration) {
        let start = Instant::now();
        loop {
            if self.0.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > within {
                let _ = self.0.kill();
                panic!("{what}: still running after {within:?} (killed)");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = start.elapsed();
        // Take the child out: this Background's drop then has nothing to kill.
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        (child.wait_with_output().unwrap(), took)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 10: a bench stopped for less than a second (SIGSTOP, SIGCONT) ends about when an
/// unstopped one does, not tens of seconds later. The bound is generous (three times an
/// unstopped run of the same test, plus 20 s): it fails only on the old behaviour, where a
/// case sized while fast went on for tens of seconds. It asserts a time, and two full runs take
/// minutes in a debug build on a busy machine: it runs in its own command, on the release build
/// (see the module docs).
#[test]
#[ignore = "timing: cargo build --release -p shm-cli && cargo test --release -p shm-tests --test cli -- --ignored bench::"]
fn stopped_briefly_still_ends_soon() {
    // The round trips that size their repetitions by what they measured, in a full run (40
    // repetitions: about 15 s, so that the stop falls in the middle), not every case.
    let args = [
        "threads",
        "posix_spin",
        "posix_hybrid",
        "sysv_hybrid",
        "pipe",
    ];
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (first, _, unstopped) = bench_any(&args);
    assert!(first.status.success(), "{first:?}");
    let start = Instant::now();
    let mut run = Background::start(&args, Stdio::piped());
    let pid = run.0.id();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        run.0.try_wait().unwrap().is_none(),
        "the run ended before it could be stopped"
    );
    run.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(700));
    run.signal(libc::SIGCONT);
    let bound = unstopped * 3 + Duration::from_secs(20);
    let (out, _) = run.finish_within(bound, "bench stopped for 0.7 s");
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    // A case may fail for the stop (a peer that gave up waiting), but it must say so cleanly.
    assert!(
        out.status.code().is_some() && !err.contains("panicked"),
        "{}: {err}",
        out.status
    );
    eprintln!("unstopped {unstopped:?}, stopped for 0.7 s: {took:?}");
    assert_nothing_left(pid);
}

/// Issue 10: SIGINT in the middle of a case ends the bench promptly (within a chunk of rounds,
/// not at the end of the case), with exit status 1 and one line, and nothing left behind.
#[test]
fn quick_interrupted_mid_case_ends_promptly_and_cleans_up() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let run = Background::start(&["--quick"], Stdio::piped());
    let pid = run.0.id();
    // Round trips take most of the first second and more: this lands inside a case.
    std::thread::sleep(Duration::from_millis(1200));
    run.signal(libc::SIGINT);
    let (out, took) = run.finish_within(Duration::from_secs(30), "bench after SIGINT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "no results after an interrupt");
    eprintln!("ended {took:?} after SIGINT");
    assert_nothing_left(pid);
}

/// Issue 10: with stdout on /dev/full the bench reports the write error in one line and exits
/// 1, not with a panic (101), and leaves nothing behind.
#[test]
fn smoke_to_dev_full_reports_the_write_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        skip(
            "smoke_to_dev_full_reports_the_write_error",
            "no /dev/full here",
        );
        return;
    };
    let run = Background::start(&["--smoke"], Stdio::from(full));
    let pid = run.0.id();
    let (out, _) = run.finish_within(Duration::from_secs(300), "bench to /dev/full");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("writing the results"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_nothing_left(pid);
}

/// A process as /proc shows it: its pid and start time (a pid reused by another process has
/// another start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    start: u64,
}

/// Alive: the same process still exists and is not a zombie.
fn alive(p: Proc) -> bool {
    proc_stat(p.pid).is_some_and(|f| f[0] != "Z" && f[19].parse::<u64>().ok() == Some(p.start))
}

/// Every living descendant of `pid`.
fn descendants(pid: u32) -> Vec<Proc> {
    let all: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let f = proc_stat(p)?;
            (f[0] != "Z").then(|| (p, f[1].parse().unwrap_or(0), f[19].parse().unwrap_or(0)))
        })
        .collect();
    let mut found = vec![pid];
    let mut out = Vec::new();
    while let Some(parent) = found.pop() {
        for &(p, ppid, start) in &all {
            if ppid == parent {
                found.push(p);
                out.push(Proc { pid: p, start });
            }
        }
    }
    out
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Starts `shm bench --quick` and waits until its demo (`shm taller demo`) and the demo's client
/// run; returns the bench and every process under it then.
fn bench_with_its_demo_running() -> (Background, Vec<Proc>) {
    let run = Background::start(&["--quick"], Stdio::null());
    let pid = run.0.id();
    let start = Instant::now();
    loop {
        let under = descendants(pid);
        let demos = under
            .iter()
            .filter(|p| cmdline(p.pid).contains("taller"))
            .count();
        // The demo and the client it started.
        if demos >= 2 {
            return (run, under);
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no demo under the bench after 2 minutes; under it: {under:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until none of `procs` is alive, at most `within`.
fn assert_all_gone(procs: &[Proc], within: Duration, what: &str) {
    let start = Instant::now();
    while procs.iter().any(|&p| alive(p)) {
        let left: Vec<String> = procs
            .iter()
            .filter(|&&p| alive(p))
            .map(|p| format!("{} ({})", p.pid, cmdline(p.pid)))
            .collect();
        assert!(
            start.elapsed() < within,
            "{what}: still running after {within:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{what}: every child gone after {:?}", start.elapsed());
}

fn assert_nothing_left_by(bench: u32, procs: &[Proc]) {
    assert_nothing_left(bench);
    for p in procs {
        shm_tests::assert_nothing_left(&format!("shm-bench-{bench}-"), p.pid);
    }
}

/// Issue 17 item 13: a bench killed with SIGKILL while its demo runs takes every child with it
/// (the peers, the demo, the demo's client) within seconds, and they leave nothing in /dev/shm
/// or System V behind. The demo alone would play on for its 2 M rounds.
#[test]
fn killed_with_sigkill_mid_run_its_children_die_and_nothing_is_left() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (run, under) = bench_with_its_demo_running();
    let pid = run.0.id();
    assert!(under.len() >= 5, "peers and the demo: {under:?}");
    run.signal(libc::SIGKILL);
    drop(run);
    assert_all_gone(&under, Duration::from_secs(20), "bench killed by SIGKILL");
    assert_nothing_left_by(pid, &under);
}

/// A signal that would end the bench without a word (SIGPWR here: its default is to end the
/// process) stops it as Ctrl-C does: exit status 1, one line, its children gone, nothing left.
#[test]
fn sigpwr_mid_run_stops_the_bench_like_ctrl_c() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (run, under) = bench_with_its_demo_running();
    let pid = run.0.id();
    run.signal(libc::SIGPWR);
    let (out, took) = run.finish_within(Duration::from_secs(60), "bench after SIGPWR");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", out.status);
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    eprintln!("ended {took:?} after SIGPWR");
    assert_all_gone(&under, Duration::from_secs(20), "bench stopped by SIGPWR");
    assert_nothing_left_by(pid, &under);
}
