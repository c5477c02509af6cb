//! System V limits: in a private IPC namespace with lowered `kernel.shmmax`, `kernel.shmall`
//! and `kernel.shmmni`, each create that hits one is [`Error::LimitExceeded`] naming the limit
//! and its value. The namespace (and every segment in it) vanishes with the child process, so
//! the real limits and segments of the machine are never touched (needs root).
#![allow(clippy::unwrap_used)]

use shm_core::{Backend, CreateOptions, Error, Segment, SegmentName};
use shm_sysv::SysV;
use shm_tests::{ChildResult, Status, check, in_child, is_root, shm, skip, unique_name};

/// In the calling (child) process: a private IPC namespace with these limits.
fn private_ipc(limits: &[(&str, u64)]) -> Result<(), String> {
    // SAFETY: unshare takes a flag; this forked child is single-threaded.
    check("unshare(CLONE_NEWIPC)", unsafe {
        libc::unshare(libc::CLONE_NEWIPC)
    })?;
    for (name, value) in limits {
        std::fs::write(format!("/proc/sys/kernel/{name}"), value.to_string())
            .map_err(|e| format!("write kernel.{name}: {e}"))?;
    }
    Ok(())
}

fn usable(test: &str) -> bool {
    if !is_root() {
        skip(
            test,
            "needs root for a private IPC namespace with lowered limits",
        );
        return false;
    }
    let probe = in_child(|| private_ipc(&[("shmmax", 1 << 20)]).map(|()| String::new()));
    if probe.status != Status::Exited(0) {
        skip(
            test,
            &format!(
                "cannot lower limits in a private IPC namespace: {}",
                probe.said
            ),
        );
        return false;
    }
    true
}

/// Creates `size` bytes under `name` in the child, expecting LimitExceeded; returns its text.
fn expect_limit(result: shm_core::Result<shm_sysv::SysVSegment>) -> Result<String, String> {
    match result {
        Ok(seg) => Err(format!("create of {} bytes succeeded", seg.size())),
        Err(e @ Error::LimitExceeded { .. }) => Ok(e.to_string()),
        Err(e) => Err(format!("expected LimitExceeded, got {e:?}")),
    }
}

fn said(r: ChildResult) -> String {
    let s = r.ok();
    println!("{s}");
    s
}

#[test]
fn shmmax_names_the_limit_and_its_value() {
    if !usable("shmmax_names_the_limit_and_its_value") {
        return;
    }
    let name = SegmentName::new(&unique_name("shmmax")).unwrap();
    let msg = said(in_child(|| {
        private_ipc(&[("shmmax", 1 << 20)])?;
        let sysv = SysV::new();
        // At the limit: fine; one byte over: refused.
        drop(
            sysv.create(&name, &CreateOptions::new(1 << 20))
                .map_err(|e| e.to_string())?,
        );
        expect_limit(sysv.create(&name, &CreateOptions::new((1 << 20) + 1)))
    }));
    assert!(msg.contains("kernel.shmmax = 1048576"), "{msg}");
    assert!(msg.contains("1048577 bytes"), "says what was asked: {msg}");
    assert!(msg.contains(name.as_str()) && msg.contains("sysv"), "{msg}");
}

#[test]
fn shmall_names_the_limit_and_its_value() {
    if !usable("shmall_names_the_limit_and_its_value") {
        return;
    }
    let name = SegmentName::new(&unique_name("shmall")).unwrap();
    let msg = said(in_child(|| {
        // 256 pages of 4 KiB: 1 MiB for all segments together, and a large shmmax.
        private_ipc(&[("shmmax", 1 << 30), ("shmall", 256)])?;
        expect_limit(SysV::new().create(&name, &CreateOptions::new(2 << 20)))
    }));
    assert!(msg.contains("kernel.shmall = 256 pages"), "{msg}");
    assert!(msg.contains("2097152 bytes asked"), "{msg}");
}

#[test]
fn shmmni_names_the_limit_and_its_value() {
    if !usable("shmmni_names_the_limit_and_its_value") {
        return;
    }
    let names: Vec<SegmentName> = (0..3)
        .map(|i| SegmentName::new(&unique_name(&format!("shmmni{i}"))).unwrap())
        .collect();
    let msg = said(in_child(|| {
        private_ipc(&[("shmmni", 2)])?;
        let sysv = SysV::new();
        let _a = sysv
            .create(&names[0], &CreateOptions::new(4096))
            .map_err(|e| e.to_string())?;
        let _b = sysv
            .create(&names[1], &CreateOptions::new(4096))
            .map_err(|e| e.to_string())?;
        expect_limit(sysv.create(&names[2], &CreateOptions::new(4096)))
    }));
    assert!(msg.contains("kernel.shmmni = 2 segments"), "{msg}");
    assert!(msg.contains("2 exist"), "{msg}");
}

/// The same through the binary, under `unshare -i`: the line the user sees.
#[test]
fn cli_create_over_shmmax() {
    let test = "cli_create_over_shmmax";
    if !usable(test) {
        return;
    }
    let bin = shm().get_program().to_owned();
    let name = unique_name("clishmmax");
    let script = format!(
        "echo 1048576 > /proc/sys/kernel/shmmax || exit 99; \
         exec \"$0\" --backend sysv create {name} --size 2MiB"
    );
    let out = match std::process::Command::new("unshare")
        .args(["-i", "sh", "-c", &script])
        .arg(&bin)
        .output()
    {
        Ok(out) => out,
        Err(e) => return skip(test, &format!("unshare (util-linux) cannot run: {e}")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("unexpected argument") {
        skip(
            test,
            &format!("`shm create` lacks a name or --size: {stderr}"),
        );
        return;
    }
    let line = shm_tests::one_error_line("shm create over shmmax", &out);
    println!("{line}");
    assert!(line.contains("kernel.shmmax = 1048576"), "{line}");
}
