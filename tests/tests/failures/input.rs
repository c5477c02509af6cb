//! Bad input, through the library and through the `shm` binary.
//!
//! * Names: every name [`SegmentName::new`] accepts is normalized (`x`, `/x`, `//x` are one
//!   name) and reaches one kernel object whichever form is used; every name it refuses is
//!   refused there, before any system call (the backends take only a `SegmentName`), and the C
//!   library refuses it too.
//! * Mappings: any offset and length either fit or are `OutOfBounds`, never a panic or a fault.
//! * The CLI: bad names (NUL aside, which argv cannot carry), sizes, modes, offsets and lengths
//!   past the end, durations, backends and flags each give a non-zero exit and exactly one line
//!   on stderr, no panic, and create nothing.
#![allow(clippy::unwrap_used)]

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use proptest::prelude::*;
use shm_core::{Access, Backend, CreateOptions, Error, MAX_NAME_LEN, Segment, SegmentName};
use shm_posix::Posix;
use shm_sysv::SysV;
use shm_tests::{Cleanup, in_dev_shm, one_error_line, shm, unique_name};

// ---------------------------------------------------------------------------------------------
// Names, through the library

/// Text that is often a name and often not: slashes, dots, NUL, non-ASCII, long runs.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[/]{0,3}[a-zA-Z0-9._-]{0,12}",
        "[/]{0,3}[a-z./\\x00é日]{0,8}",
        "[/]{0,2}(\\.|\\.\\.)",
        (0usize..3, 250usize..260).prop_map(|(s, n)| format!("{}{}", "/".repeat(s), "x".repeat(n))),
        "\\PC{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Accepted names are normalized to one `/name`, and every spelling of it gives the same
    /// name; refused ones are InvalidName carrying the name as given.
    #[test]
    fn names_normalize_or_are_refused(s in name_like()) {
        match SegmentName::new(&s) {
            Ok(n) => {
                let bare = n.bare();
                prop_assert_eq!(n.as_str(), format!("/{bare}"));
                prop_assert!(!bare.is_empty() && bare.len() <= MAX_NAME_LEN);
                prop_assert!(!bare.contains('/') && !bare.contains('\0'));
                prop_assert!(bare != "." && bare != "..");
                prop_assert_eq!(&s.trim_start_matches('/'), &bare);
                for spelling in [bare.to_owned(), n.as_str().to_owned(), format!("//{bare}")] {
                    prop_assert_eq!(SegmentName::new(&spelling).unwrap(), n.clone());
                }
            }
            Err(Error::InvalidName { name, reason }) => {
                prop_assert_eq!(name, s.clone());
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "{:?}: {:?}", s, other),
        }
    }
}

/// The C library's verdict on a name: `Ok` if `shm_open(O_CREAT|O_EXCL)` made an object (it is
/// removed at once), or the errno.
fn c_verdict(name: &str) -> Result<(), i32> {
    let c = CString::new(name).unwrap();
    // SAFETY: `c` is NUL-terminated and outlives the calls.
    let fd = unsafe {
        libc::shm_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: as above; `fd` is ours to close.
    unsafe {
        libc::close(fd);
        libc::shm_unlink(c.as_ptr());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// An accepted name reaches one object whichever way it is spelled, on both backends:
    /// created as `/NAME`, opened as `NAME` and `//NAME`, the same bytes.
    #[test]
    fn every_spelling_reaches_the_same_segment(
        suffix in "[a-zA-Z0-9._-]{1,40}|[a-zé日本]{1,10}",
        create_slashes in 0usize..3,
        open_slashes in 0usize..3,
    ) {
        let base = unique_name("spell");
        let bare = format!("{}-{suffix}", base.trim_start_matches('/'));
        let spelled = |k: usize| SegmentName::new(&format!("{}{bare}", "/".repeat(k))).unwrap();
        let (made, opened) = (spelled(create_slashes), spelled(open_slashes));
        prop_assert_eq!(&made, &opened);
        fn same<B: Backend>(b: &B, made: &SegmentName, opened: &SegmentName) -> Result<(), TestCaseError> {
            let seg = b.create(made, &CreateOptions::new(4096)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            seg.map().unwrap().write_at(7, b"same").unwrap();
            let other = b.open(opened, Access::ReadOnly).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut buf = [0u8; 4];
            other.map().unwrap().read_at(7, &mut buf).unwrap();
            prop_assert_eq!(&buf, b"same");
            Ok(())
        }
        same(&Posix::new(), &made, &opened)?;
        same(&SysV::new(), &made, &opened)?;
        prop_assert!(!in_dev_shm(made.as_str()), "the owner's drop removed it");
    }

    /// Every name refused here is refused by the C library too: `shm_open(O_CREAT|O_EXCL)`
    /// makes no object of it (any object it made would be removed at once).
    #[test]
    fn refused_names_are_refused_by_c_too(s in name_like()) {
        prop_assume!(SegmentName::new(&s).is_err() && !s.contains('\0'));
        // EINVAL and ENAMETOOLONG for most; `.` and `..` are /dev/shm and /dev to C: EEXIST.
        let verdict = c_verdict(&s);
        prop_assert!(verdict.is_err(), "{:?}: C made an object", s);
    }
}

#[test]
fn nul_byte_names_are_refused_before_any_call() {
    for s in ["a\0b", "/a\0", "\0", "/\0/x"] {
        let err = SegmentName::new(s).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{s:?}: {err:?}");
        println!("{err}");
    }
    let long = "y".repeat(MAX_NAME_LEN + 1);
    let err = SegmentName::new(&long).unwrap_err();
    assert!(err.to_string().contains("at most 255 bytes"), "{err}");
    SegmentName::new(&"y".repeat(MAX_NAME_LEN)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Offsets and lengths, through the library

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Any offset and length on a 4096-byte mapping: in range it works, out of range (including
    /// sums that overflow) it is OutOfBounds; never a panic, never a fault.
    #[test]
    fn any_range_fits_or_is_out_of_bounds(
        offset in prop_oneof![0usize..5000, Just(usize::MAX), Just(usize::MAX - 1)],
        len in prop_oneof![0usize..5000, Just(usize::MAX)],
    ) {
        let posix = Posix::new();
        let name = SegmentName::new(&unique_name("range")).unwrap();
        let seg = posix.create(&name, &CreateOptions::new(4096)).unwrap();
        let map = seg.map().unwrap();
        let fits = offset.checked_add(len).is_some_and(|end| end <= 4096);
        // Large lengths only as far as a buffer can be made: the check comes first.
        let mut buf = vec![0u8; len.min(8192)];
        let r = map.read_at(offset, &mut buf);
        prop_assert_eq!(r.is_ok(), offset.checked_add(buf.len()).is_some_and(|e| e <= 4096));
        if let Err(e) = r {
            prop_assert!(matches!(e, Error::OutOfBounds { .. }), "{:?}", e);
        }
        let w = map.write_at(offset, &buf);
        prop_assert_eq!(w.is_ok(), offset.checked_add(buf.len()).is_some_and(|e| e <= 4096));
        let atoms = map.atomics::<std::sync::atomic::AtomicU32>(offset, len);
        match atoms {
            Ok(_) => prop_assert!(fits && offset % 4 == 0 && offset.checked_add(len * 4).is_some_and(|e| e <= 4096)),
            Err(Error::OutOfBounds { .. } | Error::Misaligned { .. }) => {}
            Err(e) => prop_assert!(false, "{:?}", e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI

/// Runs `shm ARGS` (with `env`), asserts the one-line failure rules, and that the process
/// created no System V segment (none has it as creator). Returns the line.
fn bad(args: &[&OsStr], env: &[(&str, &str)]) -> String {
    let mut cmd = shm();
    cmd.env_remove("SHM_BACKEND")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Segments that exist before: one whose creator had this pid long ago (pids are reused,
    // pid_max may be 32768) was not made by this run.
    let before: Vec<Option<i32>> = SysV::new().list().unwrap().iter().map(|i| i.id).collect();
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    let what = format!("shm {args:?}");
    let line = one_error_line(&what, &out);
    let made_by_it: Vec<_> = SysV::new()
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| i.cpid == Some(pid) && !before.contains(&i.id))
        .collect();
    assert!(made_by_it.is_empty(), "{what} created {made_by_it:?}");
    line
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn bad_str(args: &[&str]) -> String {
    let args: Vec<&OsStr> = args.iter().map(|a| os(a)).collect();
    bad(&args, &[])
}

#[test]
fn cli_bad_names() {
    let tag = unique_name("badname");
    let tag = tag.trim_start_matches('/');
    let long = format!("/{tag}{}", "x".repeat(256 - tag.len()));
    let inner = format!("/{tag}/inner");
    let trailing = format!("{tag}/");
    let mut invalid_utf8 = OsString::from(format!("/{tag}"));
    invalid_utf8.push(OsStr::from_bytes(b"\xff\xfe"));
    let names: Vec<&OsStr> = vec![
        os(""),
        os("/"),
        os("//"),
        os(&inner),
        os(&trailing),
        os("."),
        os(".."),
        os("/."),
        os("/.."),
        os(&long),
        &invalid_utf8,
    ];
    for backend in ["posix", "sysv"] {
        for name in &names {
            for cmd in [
                vec![os("create"), name, os("--size"), os("4096")],
                vec![os("info"), name],
                vec![os("read"), name],
                vec![os("write"), name, os("data")],
                vec![os("rm"), name],
            ] {
                let mut args = vec![os("--backend"), os(backend)];
                args.extend(cmd);
                let line = bad(&args, &[]);
                assert!(
                    line.contains("name") || line.contains("UTF-8"),
                    "{args:?}: says what is wrong with the name: {line}"
                );
            }
        }
    }
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(tag))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "created: {left:?}");
    println!("{}", bad_str(&["create", &long, "--size", "1"]));
    println!(
        "{}",
        bad(&[os("create"), &invalid_utf8, os("--size"), os("1")], &[])
    );
}

/// A name and guards that remove it from both backends whatever happens.
fn guarded(test: &str) -> (String, Cleanup, Cleanup) {
    let name = unique_name(test);
    let key = shm_sysv::key_for(&SegmentName::new(&name).unwrap())
        .unwrap()
        .as_raw();
    (name.clone(), Cleanup::posix(name), Cleanup::sysv_key(key))
}

fn exists(backend: &str, name: &str) -> bool {
    let name = SegmentName::new(name).unwrap();
    match backend {
        "posix" => Posix::new().info(&name).is_ok(),
        _ => SysV::new().info(&name).is_ok(),
    }
}

#[test]
fn cli_bad_sizes_and_modes() {
    for backend in ["posix", "sysv"] {
        let (name, _p, _s) = guarded("badsize");
        for size in [
            "0",
            "-1",
            "-0",
            "abc",
            "",
            " ",
            "4XB",
            "1.",
            ".5",
            "1e3",
            "0x10",
            "1..2",
            "½",
            "99999999999999999999999999999",
            "18446744073709551616",
            "16EiB",
            "17179869184GiB",
            "0.0001",
        ] {
            // `--size=VALUE`, so that values starting with `-` reach the parser too
            let arg = format!("--size={size}");
            let line = bad_str(&["--backend", backend, "create", &name, &arg]);
            assert!(line.contains("size"), "{size:?}: {line}");
        }
        for mode in [
            "999", "0o1777", "01777", "rwx", "", "-1", "0x644", "8", "0o",
        ] {
            let arg = format!("--mode={mode}");
            let line = bad_str(&[
                "--backend",
                backend,
                "create",
                &name,
                "--size",
                "4096",
                &arg,
            ]);
            assert!(line.contains("mode"), "{mode:?}: {line}");
        }
        assert!(
            !exists(backend, &name),
            "{backend}: a refused create made {name}"
        );
    }
    println!("{}", bad_str(&["create", "/x", "--size", "-1"]));
    println!("{}", bad_str(&["create", "/x", "--size", "16EiB"]));
    println!(
        "{}",
        bad_str(&["create", "/x", "--size", "4096", "--mode", "999"])
    );
}

/// More than the whole of /dev/shm: refused at once (no memory is touched: tmpfs refuses an
/// allocation larger than its size before trying), nothing left.
#[test]
fn cli_size_beyond_dev_shm() {
    let test = "cli_size_beyond_dev_shm";
    let path = CString::new("/dev/shm").unwrap();
    // SAFETY: an all-zero statvfs is a valid value of a plain C struct.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `vfs` a valid out-pointer.
    let total = if unsafe { libc::statvfs(path.as_ptr(), &mut vfs) } == 0 {
        vfs.f_blocks as u64 * vfs.f_frsize as u64
    } else {
        0
    };
    if total == 0 {
        shm_tests::skip(test, "/dev/shm has no size limit to exceed safely");
        return;
    }
    let (name, _p, _s) = guarded("beyond");
    let size = (total + (1 << 30)).to_string();
    let line = bad_str(&["--backend", "posix", "create", &name, "--size", &size]);
    println!("{line}");
    assert!(
        line.contains("no space") && line.contains("/dev/shm"),
        "{line}"
    );
    assert!(!exists("posix", &name));
}

#[test]
fn cli_offsets_and_lengths_past_the_end() {
    for backend in ["posix", "sysv"] {
        let (name, _p, _s) = guarded("pastend");
        let made = shm()
            .args(["--backend", backend, "create", &name, "--size", "4096"])
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let cases: [&[&str]; 9] = [
            &["read", &name, "--offset", "4097"],
            &["read", &name, "--offset", "4096", "--len", "1"],
            &["read", &name, "--len", "4097"],
            &[
                "read",
                &name,
                "--offset",
                "1",
                "--len",
                "18446744073709551615",
            ],
            &["read", &name, "--offset", "abc"],
            &["read", &name, "--len=-1"],
            &["write", &name, "xy", "--offset", "4095"],
            &["write", &name, "x", "--offset", "4096"],
            &["write", &name, "x", "--offset", "99999999999999999999999"],
        ];
        for case in cases {
            let mut args = vec!["--backend", backend];
            args.extend_from_slice(case);
            let line = bad_str(&args);
            assert!(
                line.contains("past the end") || line.contains("offset"),
                "{case:?}: {line}"
            );
        }
        // Nothing was written by the refused writes.
        let out = shm()
            .args(["--backend", backend, "read", &name])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            out.stdout,
            vec![0u8; 4096],
            "{backend}: refused writes wrote"
        );
        assert!(
            shm()
                .args(["--backend", backend, "rm", &name])
                .status()
                .unwrap()
                .success()
        );
    }
    println!(
        "{}",
        bad_str(&[
            "--backend",
            "posix",
            "read",
            "/nonexistent-x",
            "--offset",
            "abc"
        ])
    );
}

#[test]
fn cli_bad_durations_backends_and_flags() {
    let name = unique_name("badflags");
    for timeout in [
        "fast",
        "-1s",
        "1e3s",
        "99999999999h",
        "",
        "1 fortnight",
        "NaN",
    ] {
        let arg = format!("--timeout={timeout}");
        let line = bad_str(&["taller", "client", "--name", &name, "--lockstep", &arg]);
        assert!(
            line.contains("duration") || line.contains("timeout"),
            "{timeout:?}: {line}"
        );
    }
    for args in [
        &["--backend", "nope", "list"][..],
        &["--backend", "", "list"],
        &["-b", "POSIX2", "info", &name],
        &["--frobnicate", "list"],
        &["create", &name, "--size", "1", "--frobnicate"],
        &["frob"],
        &["create", &name],
        &["read"],
        &["taller"],
        &["taller", "server", "--rounds", "many"],
        &["create", &name, "--size", "-1"],
        &["taller", "client", "--timeout", "-1s"],
        &["rm", "--key", "0"],
        &["rm", "--key", "zz"],
    ] {
        bad_str(args);
    }
    let line = bad(&[os("list")], &[("SHM_BACKEND", "nope")]);
    assert!(line.contains("nope"), "{line}");
    assert!(!exists("posix", &name) && !exists("sysv", &name));
    for args in [
        &["--backend", "nope", "list"][..],
        &["create", &name, "--size", "1", "--frobnicate"],
        &["taller"],
    ] {
        println!("{}", bad_str(args));
    }
}
