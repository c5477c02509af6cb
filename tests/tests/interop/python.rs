//! Python's `multiprocessing.shared_memory` and our segments: the same names, the same bytes,
//! and the resource tracker that removes, at exit, a segment Python only attached to (up to
//! Python 3.12), with the workaround the README and `shm create --help` give.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use shm_tests::{Cleanup, shm, skip, unique_name};

/// Runs `script` with python3; `None` when there is no python3.
fn python(script: &str) -> Option<std::process::Output> {
    Command::new("python3").args(["-c", script]).output().ok()
}

fn python_minor() -> Option<u32> {
    let out = python("import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)")?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn exists(name: &str) -> bool {
    std::fs::metadata(format!("/dev/shm/{}", name.trim_start_matches('/'))).is_ok()
}

/// python3's minor version and a fresh segment made by `shm create`, or `None` (the test says it
/// skipped) where there is no python3.
fn set_up(test: &str, tag: &str) -> Option<(u32, String, Cleanup)> {
    let Some(minor) = python_minor() else {
        skip(test, "python3 is not installed");
        return None;
    };
    let name = unique_name(tag);
    let guard = Cleanup::posix(name.clone());
    let made = shm()
        .args(["create", &name, "--size", "4096"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    Some((minor, name, guard))
}

#[test]
fn python_reads_our_bytes_and_the_workaround_keeps_the_segment() {
    let test = "python_reads_our_bytes_and_the_workaround_keeps_the_segment";
    let Some((minor, name, _g)) = set_up(test, "python") else {
        return;
    };
    let bare = name.trim_start_matches('/');
    assert!(
        shm()
            .args(["write", &name, "from shm"])
            .status()
            .unwrap()
            .success()
    );
    let keep = if minor >= 13 {
        format!("s = shared_memory.SharedMemory(name='{bare}', track=False)")
    } else {
        format!(
            "s = shared_memory.SharedMemory(name='{bare}')\n\
             from multiprocessing import resource_tracker\n\
             resource_tracker.unregister(s._name, 'shared_memory')"
        )
    };
    let script = format!(
        "from multiprocessing import shared_memory\n{keep}\n\
         print(bytes(s.buf[:8]).decode())\ns.buf[8:12] = b'+py!'\ns.close()"
    );
    let out = python(&script).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from shm");
    assert!(exists(&name), "the workaround did not keep the segment");
    let read = shm().args(["read", &name, "--len", "12"]).output().unwrap();
    assert_eq!(read.stdout, b"from shm+py!");
}

#[test]
fn python_up_to_3_12_removes_a_segment_it_only_attached_to() {
    let test = "python_up_to_3_12_removes_a_segment_it_only_attached_to";
    let Some((minor, name, _g)) = set_up(test, "pytracker") else {
        return;
    };
    let bare = name.trim_start_matches('/');
    let script = format!(
        "from multiprocessing import shared_memory\n\
         s = shared_memory.SharedMemory(name='{bare}')\ns.close()"
    );
    let out = python(&script).unwrap();
    assert!(out.status.success(), "{out:?}");
    // What the README warns of, on this machine's Python: gone up to 3.12, kept from 3.13.
    assert_eq!(exists(&name), minor >= 13, "python3.{minor}");
}
