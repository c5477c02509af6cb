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

/// `shm bench fanout_4`: the publish/subscribe cases (fanout_1 is the ratio's denominator),
/// time per published message with every message checked by every subscriber (a wrong or
/// missing message fails the run), and their ratio; nothing is left behind.
#[test]
fn fanout_cases_alone_as_json() {
    let (pid, out) = shm_ok(&["bench", "--smoke", "--json", "fanout_4"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_object().unwrap();
    let mut keys: Vec<&str> = results.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["fanout_1", "fanout_4"]);
    for case in keys {
        for key in ["mean_ns", "median_ns", "p99_ns"] {
            assert!(results[case][key].as_u64().unwrap() > 0, "{case}.{key}");
        }
    }
    let ratio = v["ratios"]["fanout_4_vs_1"].as_f64().unwrap();
    let want = results["fanout_4"]["mean_ns"].as_f64().unwrap()
        / results["fanout_1"]["mean_ns"].as_f64().unwrap();
    assert!((ratio - want).abs() <= 1e-9 * want, "{ratio} != {want}");
    assert_eq!(v["targets"]["fanout_4_vs_1"]["target"], "<= 1.50");
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
