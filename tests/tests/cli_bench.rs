//! `shm bench` end to end: the quick run works, prints every result and ratio the issue names,
//! as JSON and as a table, and leaves no segment behind. Timings are never asserted: the
//! machine is shared and noisy.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::sync::Mutex;

use serde_json::Value;
use shm_tests::shm;

/// The bench spins on both CPUs: two runs at once would only slow each other down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const LATENCY_CASES: [&str; 12] = [
    "threads",
    "posix_spin",
    "posix_hybrid",
    "posix_block",
    "sysv_spin",
    "sysv_hybrid",
    "sysv_block",
    "pipe",
    "socketpair",
    "posix_hybrid_one_cpu",
    "cycle_posix",
    "cycle_sysv",
];

const MORE_LATENCY_CASES: [&str; 8] = [
    "cycle_raw_posix",
    "cycle_raw_sysv",
    "cycle_posix_4k_reserve",
    "cycle_posix_4k_noreserve",
    "cycle_posix_1m_reserve",
    "cycle_posix_1m_noreserve",
    "cycle_posix_64m_reserve",
    "cycle_posix_64m_noreserve",
];

const RATIOS: [&str; 11] = [
    "posix_hybrid_vs_threads",
    "sysv_hybrid_vs_threads",
    "pipe_vs_posix_hybrid",
    "posix_block_vs_pipe",
    "posix_hybrid_one_cpu_vs_pipe",
    "cycle_posix_vs_raw",
    "cycle_sysv_vs_raw",
    "copy_vs_memcpy",
    "channel_rtt_vs_threads",
    "channel_stream_vs_copy_stream",
    "channel_stream_vs_pipe_stream",
];

/// Runs `shm bench ARGS` to the end; also returns its pid, which its segment names carry.
fn bench(args: &[&str]) -> (Output, u32) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        let key = shm_sysv::key_for(&name).unwrap();
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

#[test]
fn quick_json_has_every_result_and_ratio() {
    let (out, pid) = bench(&["--quick", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = json["results"].as_object().unwrap();
    for case in LATENCY_CASES.iter().chain(MORE_LATENCY_CASES.iter()) {
        let r = &results
            .get(*case)
            .unwrap_or_else(|| panic!("no result {case}"));
        let median = positive(&r["median_ns"], &format!("{case}.median_ns"));
        let p99 = positive(&r["p99_ns"], &format!("{case}.p99_ns"));
        assert!(median <= p99, "{case}: median {median} > p99 {p99}");
        assert!(r["median_ns"].is_u64(), "{case}: whole nanoseconds");
    }
    for case in ["copy", "memcpy"] {
        positive(&results[case]["gbps"], &format!("{case}.gbps"));
    }
    let ratios = json["ratios"].as_object().unwrap();
    for ratio in RATIOS {
        positive(&ratios[ratio], ratio);
    }
    assert_eq!(ratios.len(), RATIOS.len(), "ratios: {ratios:?}");
    assert_eq!(
        json.as_object().unwrap().len(),
        2,
        "only results and ratios"
    );
    // Progress goes to a terminal only.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("repetition"),
        "progress without a terminal: {err}"
    );
    assert_nothing_left(pid);
}

#[test]
fn quick_table_shows_cases_ratios_and_targets() {
    let (out, pid) = bench(&["--quick"]);
    let table = String::from_utf8(out.stdout).unwrap();
    for word in ["median", "p99", "GB/s", "ratio", "target"] {
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
    for ratio in RATIOS {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(ratio))
            .unwrap_or_else(|| panic!("no ratio {ratio} in:\n{table}"));
        assert!(
            line.contains("<=") || line.contains(">="),
            "no target: {line}"
        );
        assert!(line.contains("met"), "no verdict: {line}");
    }
    assert_nothing_left(pid);
}

#[test]
fn peer_arguments_are_hidden() {
    let out = shm().args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("--quick") && help.contains("--json"),
        "{help}"
    );
    assert!(
        !help.contains("--peer"),
        "internal arguments shown:\n{help}"
    );
}
