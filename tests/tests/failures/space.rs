//! A full /dev/shm: creating more than the free space is a clear "no space" error naming
//! /dev/shm and its free space, never a SIGBUS, and leaves nothing; `--no-reserve` (reserve
//! off) succeeds and carries the SIGBUS risk, which a child process proves real.
//!
//! Each test runs in a forked child with its own mount namespace and a 1 MiB tmpfs on
//! /dev/shm, so the real /dev/shm is never filled (needs root).
#![allow(clippy::unwrap_used)]

use std::ffi::CString;

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_tests::{Status, check, in_child, is_root, shm, skip, unique_name};

const MIB: usize = 1 << 20;

/// In the calling (child) process: a private mount namespace with a fresh 1 MiB tmpfs on
/// /dev/shm. It vanishes, with everything in it, when the process exits.
fn private_small_dev_shm() -> Result<(), String> {
    // SAFETY: unshare takes a flag; this forked child is single-threaded.
    check("unshare(CLONE_NEWNS)", unsafe {
        libc::unshare(libc::CLONE_NEWNS)
    })?;
    let root = CString::new("/").unwrap();
    // SAFETY: valid NUL-terminated strings (or null where mount allows it).
    check("mount --make-rprivate /", unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    let (src, dir, fs, data) = (
        CString::new("tmpfs").unwrap(),
        CString::new("/dev/shm").unwrap(),
        CString::new("tmpfs").unwrap(),
        CString::new("size=1M,mode=1777").unwrap(),
    );
    // SAFETY: valid NUL-terminated strings that outlive the call.
    check("mount tmpfs on /dev/shm", unsafe {
        libc::mount(
            src.as_ptr(),
            dir.as_ptr(),
            fs.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    })
}

fn namespaces_usable(test: &str) -> bool {
    if !is_root() {
        skip(
            test,
            "needs root for a private mount namespace with a small /dev/shm",
        );
        return false;
    }
    let probe = in_child(|| private_small_dev_shm().map(|()| String::new()));
    if probe.status != Status::Exited(0) {
        skip(
            test,
            &format!("cannot mount a private /dev/shm here: {}", probe.said),
        );
        return false;
    }
    true
}

#[test]
fn full_dev_shm_is_a_clear_no_space_error_and_leaves_nothing() {
    if !namespaces_usable("full_dev_shm_is_a_clear_no_space_error_and_leaves_nothing") {
        return;
    }
    let name = SegmentName::new(&unique_name("full")).unwrap();
    let said = in_child(|| {
        private_small_dev_shm()?;
        let posix = Posix::new();
        let err = match posix.create(&name, &CreateOptions::new(4 * MIB)) {
            Ok(_) => return Err("a 4 MiB create on a 1 MiB /dev/shm succeeded".into()),
            Err(e) => e,
        };
        if !matches!(err, Error::NoSpace { .. }) {
            return Err(format!("expected NoSpace, got {err:?}"));
        }
        if posix.open(&name, Access::ReadOnly).is_ok()
            || std::fs::read_dir("/dev/shm")
                .map_err(|e| e.to_string())?
                .next()
                .is_some()
        {
            return Err(format!(
                "the failed create left something in /dev/shm: {err}"
            ));
        }
        Ok(err.to_string())
    })
    .ok();
    println!("{said}");
    // The child was not killed (ok() checks exit 0) and its message says what and how much.
    assert!(said.contains("no space"), "{said}");
    assert!(said.contains("/dev/shm"), "names /dev/shm: {said}");
    assert!(
        said.contains("4194304 bytes asked"),
        "says how much was asked: {said}"
    );
    assert!(
        said.contains("1048576 bytes free"),
        "says how much is free: {said}"
    );
    assert!(said.contains(name.as_str()), "names the segment: {said}");
}

#[test]
fn no_reserve_succeeds_and_writing_past_the_free_space_is_no_space_not_sigbus() {
    if !namespaces_usable(
        "no_reserve_succeeds_and_writing_past_the_free_space_is_no_space_not_sigbus",
    ) {
        return;
    }
    let name = SegmentName::new(&unique_name("noreserve")).unwrap();
    let said = in_child(|| {
        private_small_dev_shm()?;
        let posix = Posix::new();
        let seg = posix
            .create(&name, &CreateOptions::new(4 * MIB).reserve(false))
            .map_err(|e| format!("create without reserve: {e}"))?;
        let map = seg.map().map_err(|e| e.to_string())?;
        // Inside the free space: fine.
        map.write_at(0, b"fits").map_err(|e| e.to_string())?;
        // Past it: the object is 4 MiB, but the kernel has no page to give, and a plain touch
        // would raise SIGBUS. write_at absorbs the fault and says "no space". In a grandchild,
        // so that a SIGBUS would show as its death.
        let touch = in_child(|| {
            let fill = vec![0xa5u8; 2 * MIB];
            match map.write_at(MIB, &fill) {
                Err(shm_core::Error::NoSpace { .. }) => Ok("no space".into()),
                other => Err(format!("{other:?}")),
            }
        });
        drop(map);
        drop(seg);
        if posix.open(&name, Access::ReadOnly).is_ok() {
            return Err("the segment outlived its owner".into());
        }
        Ok(format!("{touch}"))
    })
    .ok();
    assert_eq!(
        said,
        format!("{:?}: no space", Status::Exited(0)),
        "writing past the free space of a sparse segment is NoSpace, never SIGBUS"
    );
}

/// The same through the binary, under `unshare -m`: the failure the user sees.
#[test]
fn cli_create_on_full_dev_shm() {
    let test = "cli_create_on_full_dev_shm";
    if !namespaces_usable(test) {
        return;
    }
    let bin = shm().get_program().to_owned();
    let name = unique_name("clifull");
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs -o size=1M tmpfs /dev/shm || exit 99; \
         \"$0\" create {name} --size 4MiB; echo \"rc=$?\" >&2; \
         \"$0\" create {name} --size 4MiB --no-reserve >/dev/null || echo no-reserve-failed >&2; \
         ls -A /dev/shm >&2"
    );
    let out = match std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(&bin)
        .output()
    {
        Ok(out) => out,
        Err(e) => return skip(test, &format!("unshare (util-linux) cannot run: {e}")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("unrecognized") || stderr.contains("unexpected argument") {
        skip(
            test,
            &format!("`shm create` lacks --size or --no-reserve: {stderr}"),
        );
        return;
    }
    let mut lines = stderr.lines();
    let error = lines.next().unwrap_or_default();
    assert!(
        error.starts_with("shm: error:") && error.contains("no space"),
        "{stderr}"
    );
    assert!(
        error.contains("/dev/shm") && error.contains("free"),
        "{stderr}"
    );
    assert_eq!(lines.next(), Some("rc=1"), "exit 1, not a signal: {stderr}");
    // With --no-reserve the create succeeds, and the listing then holds only that segment.
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest, [name.trim_start_matches('/')], "{stderr}");
}

/// Create needs no /proc (it is `shm_open`, `posix_fallocate` and `fchmod` on the descriptor):
/// with /proc hidden it works, as root and as nobody, size and mode exact.
#[test]
fn create_works_without_proc() {
    let test = "create_works_without_proc";
    if !namespaces_usable(test) {
        return;
    }
    let as_root = SegmentName::new(&unique_name("noproc-root")).unwrap();
    let as_nobody = SegmentName::new(&unique_name("noproc-nobody")).unwrap();
    let said = in_child(|| {
        // SAFETY: unshare takes a flag; this forked child is single-threaded.
        check("unshare(CLONE_NEWNS)", unsafe {
            libc::unshare(libc::CLONE_NEWNS)
        })?;
        let (root, proc_dir, tmpfs) = (
            CString::new("/").unwrap(),
            CString::new("/proc").unwrap(),
            CString::new("tmpfs").unwrap(),
        );
        // SAFETY: valid NUL-terminated strings (or null where mount allows it).
        check("mount --make-rprivate /", unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        })?;
        // SAFETY: as above; an empty tmpfs hides /proc in this namespace only.
        check("hide /proc", unsafe {
            libc::mount(
                tmpfs.as_ptr(),
                proc_dir.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            )
        })?;
        if std::path::Path::new("/proc/self/fd").exists() {
            return Err("/proc is still there".into());
        }
        let make = |name: &SegmentName| -> Result<(), String> {
            let posix = Posix::new();
            let seg = posix
                .create(name, &CreateOptions::new(8192).mode(0o640))
                .map_err(|e| format!("create {name}: {e}"))?;
            seg.map()
                .and_then(|m| m.write_at(8000, b"ok"))
                .map_err(|e| e.to_string())?;
            let info = posix.info(name).map_err(|e| e.to_string())?;
            if (info.size, info.mode) != (8192, 0o640) {
                return Err(format!("{name}: {info:?}"));
            }
            Ok(())
        };
        make(&as_root)?;
        let nobody = in_child(|| {
            // SAFETY: plain system calls on this forked child's credentials.
            unsafe {
                check("setgroups", libc::setgroups(0, std::ptr::null()))?;
                check("setresgid", libc::setresgid(65534, 65534, 65534))?;
                check("setresuid", libc::setresuid(65534, 65534, 65534))?;
            }
            make(&as_nobody).map(|()| String::new())
        });
        if nobody.status != Status::Exited(0) {
            return Err(format!("as nobody: {nobody}"));
        }
        Ok(String::new())
    });
    assert_eq!(said.status, Status::Exited(0), "{said}");
    for name in [&as_root, &as_nobody] {
        assert!(
            Posix::new().open(name, Access::ReadOnly).is_err(),
            "{name} left behind"
        );
    }
}
