//! `shm compare` end to end: the table parses, every behaviour has both columns, the facts the
//! kernel guarantees on Linux show up, and the run leaves nothing behind.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use serde_json::Value;
use shm_tests::shm;

/// Runs `shm compare ARGS`; its pid and output.
fn compare(args: &[&str]) -> (u32, Output) {
    let args: Vec<&str> = std::iter::once("compare")
        .chain(args.iter().copied())
        .collect();
    shm_tests::shm_ok(&args)
}

/// Nothing of run `pid` is left: no /dev/shm/shm-compare-PID-*, no System V segment that it
/// created or last attached (segments its children made are attached by it before removal).
fn assert_nothing_left(pid: u32) {
    shm_tests::assert_nothing_left(&format!("shm-compare-{pid}-"), pid);
}

fn cell<'a>(rows: &'a [Value], behaviour: &str, column: &str) -> &'a str {
    rows.iter()
        .find(|r| r["behaviour"] == behaviour)
        .unwrap_or_else(|| panic!("no row {behaviour:?}"))[column]
        .as_str()
        .unwrap()
}

#[test]
fn compare_json_has_both_columns_and_leaves_nothing() {
    let (pid, out) = compare(&["--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert!(rows.len() >= 10, "only {} rows", rows.len());
    for row in rows {
        let obj = row.as_object().unwrap();
        assert_eq!(obj.len(), 3, "{row}");
        for key in ["behaviour", "posix", "sysv"] {
            let text = row[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} not a string: {row}"));
            assert!(!text.trim().is_empty(), "{key} empty: {row}");
            assert!(!text.contains("probe failed"), "{row}");
        }
    }
    // What the kernels guarantee on Linux, observed live.
    assert!(cell(rows, "resize", "posix").contains("8192"));
    assert!(cell(rows, "resize", "sysv").contains("impossible"));
    assert!(cell(rows, "size 0", "sysv").contains("EINVAL"));
    assert!(cell(rows, "size 100 (not a page multiple)", "posix").contains("st_size 100"));
    assert!(cell(rows, "size 100 (not a page multiple)", "sysv").contains("shm_segsz 100"));
    assert!(cell(rows, "open after remove", "posix").contains("ENOENT"));
    assert!(cell(rows, "attach after remove", "sysv").contains("-> ok"));
    assert!(cell(rows, "attach count", "sysv").contains("shm_nattch 2"));
    assert!(cell(rows, "attach count", "posix").contains("not kept: 2 mappings"));
    assert!(cell(rows, "umask 022 on mode 0666", "posix").contains("0666 -> 0644"));
    assert!(cell(rows, "umask 022 on mode 0666", "sysv").contains("0666 -> 0666"));
    assert!(cell(rows, "survives creator exit", "posix").starts_with("yes"));
    assert!(cell(rows, "fork", "sysv").contains("nattch 1 -> 2"));
    assert_nothing_left(pid);
}

#[test]
fn compare_markdown_prints_one_table() {
    let (pid, out) = compare(&["--markdown"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("| behaviour") && lines[0].contains("| posix"),
        "{text}"
    );
    assert!(lines[1].starts_with("| ---"), "{text}");
    assert!(lines.len() >= 12, "{text}");
    // Aligned: every line as wide as the header.
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
    assert_nothing_left(pid);
}

/// By default a block per behaviour, every line within the terminal's width (COLUMNS).
#[test]
fn compare_fits_the_terminal() {
    for columns in ["80", "200"] {
        let mut cmd = shm();
        cmd.env("COLUMNS", columns).arg("compare");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let width: usize = columns.parse().unwrap();
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= width,
            "COLUMNS={columns}: a line of {widest}:\n{text}"
        );
        assert!(
            text.contains("\nidentity\n") || text.starts_with("identity\n"),
            "{text}"
        );
        assert!(
            text.contains("  posix  ") && text.contains("  sysv   "),
            "{text}"
        );
    }
}

/// --backend narrows compare to that backend's column.
#[test]
fn compare_with_a_backend_shows_that_backend() {
    let out = shm()
        .args(["--backend", "sysv", "compare", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert!(
            row.get("sysv").is_some() && row.get("posix").is_none(),
            "{row}"
        );
    }
}
