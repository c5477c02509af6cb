//! `shm bench CASE...` with the channel cases: only the named cases run (plus those their
//! ratios divide by), the JSON names every channel result and ratio, nothing is left behind.
//! Timings are never asserted: the machine is shared and noisy.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use shm_tests::{assert_nothing_left, shm, shm_ok};

#[test]
fn channel_cases_alone_as_json() {
    let (pid, out) = shm_ok(&[
        "bench",
        "--smoke",
        "--json",
        "channel_rtt",
        "channel_stream",
        "copy_stream",
        "pipe_stream",
        "socket_stream",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_object().unwrap();
    let mut keys: Vec<&str> = results.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "channel_rtt",
            "channel_stream",
            "copy_stream",
            "pipe_stream",
            "socket_stream",
            "threads"
        ],
        "only the named cases and the floor their ratio needs"
    );
    for key in ["median_ns", "p99_ns"] {
        assert!(results["channel_rtt"][key].as_u64().unwrap() > 0, "{key}");
    }
    for stream in [
        "channel_stream",
        "copy_stream",
        "pipe_stream",
        "socket_stream",
    ] {
        assert!(results[stream]["gbps"].as_f64().unwrap() > 0.0, "{stream}");
    }
    for ratio in [
        "channel_rtt_vs_threads",
        "channel_stream_vs_copy_stream",
        "channel_stream_vs_pipe_stream",
    ] {
        assert!(v["ratios"][ratio].as_f64().unwrap() > 0.0, "{ratio}");
    }
    assert_nothing_left(&format!("shm-bench-{pid}-"), pid);
}

#[test]
fn an_unknown_case_is_refused_with_the_list() {
    let out = shm()
        .args(["bench", "--smoke", "no_such_case"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no bench case \"no_such_case\""), "{err}");
    assert!(err.contains("channel_rtt"), "{err}");
}
