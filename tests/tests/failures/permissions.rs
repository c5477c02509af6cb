//! Permissions, on both backends, as another user: root makes the segments, a child process
//! switched to `nobody` (setresuid) tries them. A 0600 segment is [`Error::PermissionDenied`]
//! for open (read-only and read-write) with owner and mode in the message, and removing it is
//! refused; a 0644 segment opens read-only (and reads the bytes) but not read-write. Modes are
//! applied exactly whatever the umask. Needs root to switch users; the umask test runs anyway.
#![allow(clippy::unwrap_used)]

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_sysv::SysV;
use shm_tests::{check, in_child, is_root, shm, skip, unique_name};

const NOBODY: libc::uid_t = 65534;
const NOGROUP: libc::gid_t = 65534;

/// In the calling (child) process: become nobody/nogroup with no supplementary groups.
fn become_nobody() -> Result<(), String> {
    // SAFETY: plain system calls on this (forked, single-threaded) process's credentials.
    unsafe {
        check("setgroups", libc::setgroups(0, std::ptr::null()))?;
        check("setresgid", libc::setresgid(NOGROUP, NOGROUP, NOGROUP))?;
        check("setresuid", libc::setresuid(NOBODY, NOBODY, NOBODY))?;
    }
    Ok(())
}

fn expect_denied<T>(what: &str, r: shm_core::Result<T>) -> Result<String, String> {
    match r {
        Ok(_) => Err(format!("{what}: allowed")),
        Err(e @ Error::PermissionDenied { .. }) => Ok(e.to_string()),
        Err(e) => Err(format!("{what}: expected PermissionDenied, got {e:?}")),
    }
}

/// Everything `nobody` must be refused on root's 0600 segment, and what it must be allowed on
/// root's 0644 one, for one backend.
fn check_backend<B: Backend + Sync>(backend: &B) {
    let private = SegmentName::new(&unique_name("perm-0600")).unwrap();
    let shared = SegmentName::new(&unique_name("perm-0644")).unwrap();
    let a = backend
        .create(&private, &CreateOptions::new(4096).mode(0o600))
        .unwrap();
    let b = backend
        .create(&shared, &CreateOptions::new(4096).mode(0o644))
        .unwrap();
    b.map().unwrap().write_at(0, b"readable by all").unwrap();

    let cleanup = shm_core::conformance::Cleanup::new(backend, "perm-by-nobody");
    let by_nobody = cleanup.name.clone();
    let report = in_child(|| {
        become_nobody()?;
        let lines = [
            expect_denied("open 0600 rw", backend.open(&private, Access::ReadWrite))?,
            expect_denied("open 0600 ro", backend.open(&private, Access::ReadOnly))?,
            expect_denied("remove 0600", backend.unlink(&private))?,
            expect_denied("remove 0644", backend.unlink(&shared))?,
            expect_denied("open 0644 rw", backend.open(&shared, Access::ReadWrite))?,
        ];
        let ro = backend
            .open(&shared, Access::ReadOnly)
            .map_err(|e| format!("open 0644 ro: {e}"))?;
        let map = ro.map().map_err(|e| format!("map 0644 ro: {e}"))?;
        let mut buf = [0u8; 15];
        map.read_at(0, &mut buf).map_err(|e| e.to_string())?;
        if &buf != b"readable by all" {
            return Err(format!("read {buf:?}"));
        }
        match map.write_at(0, b"x") {
            Err(Error::ReadOnly { .. }) => {}
            other => return Err(format!("write through a read-only map: {other:?}")),
        }
        // An unprivileged user can create too: owned by nobody, with the mode asked.
        let mut own = backend
            .create(&by_nobody, &CreateOptions::new(4096).mode(0o640))
            .map_err(|e| format!("create as nobody: {e}"))?;
        own.keep();
        Ok(lines.join("\n"))
    })
    .ok();
    println!("{report}");
    let lines: Vec<&str> = report.lines().collect();
    for line in &lines[..3] {
        assert!(
            line.contains("permission denied") && line.contains("owner uid 0, mode 0600"),
            "{}: names owner and mode: {line}",
            backend.name()
        );
        assert!(line.contains(private.as_str()), "{line}");
    }
    assert!(lines[4].contains("owner uid 0, mode 0644"), "{}", lines[4]);
    let made = backend.info(&by_nobody).unwrap();
    assert_eq!((made.uid, made.mode), (NOBODY, 0o640), "{made:?}");
    // Both are still there, untouched.
    assert_eq!(backend.info(&private).unwrap().mode, 0o600);
    let mut buf = [0u8; 15];
    a.map().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 15]);
    backend.info(&shared).unwrap();
}

#[test]
fn posix_another_user_is_refused_with_owner_and_mode() {
    if !is_root() {
        skip(
            "posix_another_user_is_refused",
            "needs root to switch to nobody",
        );
        return;
    }
    check_backend(&Posix::new());
}

#[test]
fn sysv_another_user_is_refused_with_owner_and_mode() {
    if !is_root() {
        skip(
            "sysv_another_user_is_refused",
            "needs root to switch to nobody",
        );
        return;
    }
    check_backend(&SysV::new());
}

/// Modes as asked, whatever the umask, on both backends: checked through the library and, for
/// POSIX, on the file in /dev/shm itself.
#[test]
fn modes_are_exact_whatever_the_umask() {
    for (umask, mode) in [
        (0o077, 0o666),
        (0o022, 0o660),
        (0o000, 0o600),
        (0o777, 0o640),
    ] {
        let said = in_child(|| {
            // SAFETY: umask has no preconditions; it changes this child process only.
            unsafe { libc::umask(umask) };
            let mut seen = Vec::new();
            let name = SegmentName::new(&unique_name("umask")).unwrap();
            let opts = CreateOptions::new(4096).mode(mode);
            let posix = Posix::new();
            let p = posix.create(&name, &opts).map_err(|e| e.to_string())?;
            let on_disk = std::fs::metadata(format!("/dev/shm/{}", name.bare()))
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                .map_err(|e| e.to_string())?;
            seen.push(("posix", p.info().map_err(|e| e.to_string())?.mode));
            seen.push(("posix /dev/shm", on_disk));
            let sysv = SysV::new();
            let s = sysv.create(&name, &opts).map_err(|e| e.to_string())?;
            seen.push(("sysv", s.info().map_err(|e| e.to_string())?.mode));
            for (what, got) in seen {
                if got != mode {
                    return Err(format!("{what}: mode {got:04o}, asked {mode:04o}"));
                }
            }
            Ok(String::new())
        });
        assert_eq!(
            said.status,
            shm_tests::Status::Exited(0),
            "umask {umask:04o}: {said}"
        );
    }
}

/// Through the binary, as nobody (setpriv): `shm read` of root's 0600 segment is one clear line
/// naming owner and mode; `shm rm` is refused; a 0644 one reads but does not write.
#[test]
fn cli_as_nobody() {
    let test = "cli_as_nobody";
    if !is_root() {
        skip(test, "needs root to switch to nobody");
        return;
    }
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(test, "setpriv (util-linux) is not installed");
        return;
    }
    for backend in ["posix", "sysv"] {
        let private = unique_name("cli-0600");
        let shared = unique_name("cli-0644");
        let _guards = (
            shm_tests::Cleanup::posix(private.clone()),
            shm_tests::Cleanup::posix(shared.clone()),
            shm_tests::Cleanup::sysv_key(sysv_key(&private)),
            shm_tests::Cleanup::sysv_key(sysv_key(&shared)),
        );
        let made = shm()
            .args(["--backend", backend, "create", &private, "--size", "4096"])
            .args(["--mode", "0600"])
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let made = shm()
            .args(["--backend", backend, "create", &shared, "--size", "4096"])
            .args(["--mode", "0644"])
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let as_nobody = |args: &[&str]| {
            std::process::Command::new("setpriv")
                .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
                .arg(shm().get_program())
                .args(["--backend", backend])
                .args(args)
                .output()
                .unwrap()
        };
        let out = as_nobody(&["read", &private]);
        let line = shm_tests::one_error_line("read 0600 as nobody", &out);
        println!("{line}");
        assert!(line.contains("permission denied"), "{line}");
        assert!(
            line.contains("owner uid 0") && line.contains("0600"),
            "{line}"
        );
        let out = as_nobody(&["rm", &private]);
        let line = shm_tests::one_error_line("rm 0600 as nobody", &out);
        assert!(line.contains("permission denied"), "{line}");
        let out = as_nobody(&["read", &shared]);
        assert!(out.status.success(), "read 0644 as nobody: {out:?}");
        let out = as_nobody(&["write", &shared, "x"]);
        let line = shm_tests::one_error_line("write 0644 as nobody", &out);
        assert!(line.contains("permission denied"), "{line}");
        // Both are still there.
        for name in [&private, &shared] {
            let out = shm()
                .args(["--backend", backend, "info", name])
                .output()
                .unwrap();
            assert!(out.status.success(), "{name} is gone: {out:?}");
        }
    }
}

fn sysv_key(name: &str) -> i32 {
    shm_sysv::key_for(&SegmentName::new(name).unwrap())
        .unwrap()
        .as_raw()
}

/// Through the binary: `shm create --mode` under a umask that would strip bits.
#[test]
fn cli_modes_are_exact_whatever_the_umask() {
    for backend in ["posix", "sysv"] {
        for (umask, mode) in [("077", 0o666), ("777", 0o644), ("000", 0o600)] {
            let name = unique_name("cli-umask");
            let _guards = (
                shm_tests::Cleanup::posix(name.clone()),
                shm_tests::Cleanup::sysv_key(sysv_key(&name)),
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "umask {umask}; exec \"$0\" --backend {backend} create {name} --size 4096 --mode {mode:o}"
                ))
                .arg(shm().get_program())
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let seg = SegmentName::new(&name).unwrap();
            let got = match backend {
                "posix" => Posix::new().info(&seg).unwrap().mode,
                _ => SysV::new().info(&seg).unwrap().mode,
            };
            assert_eq!(got, mode, "{backend} under umask {umask}");
        }
    }
}
