//! SIGBUS is another process's decision: a neighbour shrinks a POSIX segment while we copy, or
//! a sparse segment meets a full /dev/shm. No safe function and no command may die of it.
//! (The one case that cannot be made safe, an atomic view held across a shrink, is shown in
//! `failures_shrink.rs`.)
#![allow(clippy::unwrap_used)]

mod failures_support;

use std::time::{Duration, Instant};

use failures_support::{Status, check, in_child, spawn_child};
use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_tests::{PosixGuard, is_root, shm, skip, unique_name};

const BIG: usize = 16 << 20;

/// A child that shrinks `name` to one page and grows it back, over and over, until `until`;
/// reports how many cycles it made.
fn shrinker(name: &SegmentName, until: Instant) -> failures_support::Pending {
    let name = name.clone();
    spawn_child(move || {
        let mut seg = Posix::new()
            .open(&name, Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        let mut cycles = 0;
        while Instant::now() < until {
            seg.resize(4096).map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_micros(200));
            seg.resize(BIG).map_err(|e| e.to_string())?;
            cycles += 1;
        }
        Ok(format!("{cycles}"))
    })
}

#[test]
fn read_at_and_write_at_survive_a_neighbour_that_shrinks() {
    let name = SegmentName::new(&unique_name("sigbus-lib")).unwrap();
    let _g = PosixGuard(name.as_str().to_owned());
    let mut seg = Posix::new()
        .create(&name, &CreateOptions::new(BIG))
        .unwrap();
    seg.keep();
    let until = Instant::now() + Duration::from_millis(1500);
    let shrink = shrinker(&name, until);
    let copier = spawn_child(|| {
        let seg = Posix::new()
            .open(&name, Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        let map = seg.map().map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; BIG];
        let data = vec![0x5au8; 4 << 20];
        let (mut ok, mut refused) = (0, 0);
        while Instant::now() < until {
            for r in [
                map.read_at(0, &mut buf),
                map.write_at(BIG - data.len(), &data),
            ] {
                match r {
                    Ok(()) => ok += 1,
                    Err(Error::OutOfBounds { .. }) => refused += 1,
                    Err(e) => return Err(format!("unexpected error: {e}")),
                }
            }
        }
        Ok(format!("{ok} copies done, {refused} refused"))
    });
    let copied = copier.wait();
    let shrunk = shrink.wait();
    println!("copier: {copied}; shrinker: {shrunk}");
    assert_eq!(shrunk.status, Status::Exited(0), "{shrunk}");
    // Killed by SIGBUS is Signaled(7): the copies must only ever succeed or be refused.
    assert_eq!(copied.status, Status::Exited(0), "{copied}");
}

#[test]
fn shm_read_and_write_survive_a_neighbour_that_shrinks() {
    let name = SegmentName::new(&unique_name("sigbus-cli")).unwrap();
    let _g = PosixGuard(name.as_str().to_owned());
    let mut seg = Posix::new()
        .create(&name, &CreateOptions::new(BIG))
        .unwrap();
    seg.keep();
    let input = shm_tests::temp_path("sigbus-cli-input");
    std::fs::write(&input, vec![7u8; 4 << 20]).unwrap();
    let until = Instant::now() + Duration::from_millis(2500);
    let shrink = shrinker(&name, until);
    let (mut runs, mut failed) = (0, 0);
    while Instant::now() < until {
        for write in [false, true] {
            let mut cmd = shm();
            cmd.stdout(std::process::Stdio::null());
            if write {
                cmd.args(["--backend", "posix", "write", name.as_str()])
                    .stdin(std::fs::File::open(&input).unwrap());
            } else {
                cmd.args(["--backend", "posix", "read", name.as_str()]);
            }
            let out = cmd.output().unwrap();
            runs += 1;
            assert!(
                out.status.code().is_some(),
                "shm {} was killed by a signal: {:?}; stderr: {}",
                if write { "write" } else { "read" },
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            if !out.status.success() {
                failed += 1;
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.starts_with("shm: error:"), "{err}");
            }
        }
    }
    let _ = std::fs::remove_file(&input);
    println!("{runs} runs, {failed} refused the shrunk segment cleanly");
    assert_eq!(shrink.wait().status, Status::Exited(0));
}

/// In the calling (child) process: a private mount namespace whose /dev/shm is a tmpfs of
/// `size` bytes, so that filling it touches none of the machine's memory beyond that.
fn small_dev_shm(size: &str) -> Result<(), String> {
    // SAFETY: unshare takes a flag; this forked child is single-threaded.
    check("unshare(CLONE_NEWNS)", unsafe {
        libc::unshare(libc::CLONE_NEWNS)
    })?;
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let (none, root, dev_shm, tmpfs) = (c("none"), c("/"), c("/dev/shm"), c("tmpfs"));
    let opts = c(&format!("size={size}"));
    // SAFETY: valid NUL-terminated strings; MS_PRIVATE|MS_REC keeps our mounts to ourselves.
    check("make / private", unsafe {
        libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    // SAFETY: as above; a new tmpfs over /dev/shm in this namespace only.
    check("mount tmpfs on /dev/shm", unsafe {
        libc::mount(
            tmpfs.as_ptr(),
            dev_shm.as_ptr(),
            tmpfs.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    })?;
    Ok(())
}

#[test]
fn a_sparse_segment_on_a_full_dev_shm_reads_zeros_and_refuses_writes() {
    let test = "a_sparse_segment_on_a_full_dev_shm_reads_zeros_and_refuses_writes";
    if !is_root() {
        return skip(
            test,
            "needs root for a private mount namespace with a small /dev/shm",
        );
    }
    if in_child(|| small_dev_shm("1m").map(|()| String::new())).status != Status::Exited(0) {
        return skip(test, "cannot mount a private tmpfs on /dev/shm here");
    }
    let shm_bin = shm_tests::shm_bin();
    let r = in_child(move || {
        small_dev_shm("1m")?;
        let posix = Posix::new();
        let sparse = SegmentName::new("/sparse").unwrap();
        let seg = posix
            .create(&sparse, &CreateOptions::new(4 << 20).reserve(false))
            .map_err(|e| e.to_string())?;
        // Fill the file system: a reserved segment of what is left fails, then take it all.
        let fill = SegmentName::new("/fill").unwrap();
        let mut size = 1 << 20;
        let _filler = loop {
            match posix.create(&fill, &CreateOptions::new(size)) {
                Ok(s) => break s,
                Err(Error::NoSpace { .. }) if size > 4096 => size -= 4096,
                Err(e) => return Err(format!("fill: {e}")),
            }
        };
        let map = seg.map().map_err(|e| e.to_string())?;
        let mut buf = [1u8; 4096];
        map.read_at(2 << 20, &mut buf)
            .map_err(|e| format!("read of a hole: {e}"))?;
        if buf != [0u8; 4096] {
            return Err("a hole did not read as zeros".into());
        }
        match map.write_at(2 << 20, &[9u8; 4096]) {
            Err(Error::NoSpace { .. }) => {}
            other => return Err(format!("write into a hole of a full fs: {other:?}")),
        }
        // The command too: reads holes as zeros, never SIGBUS.
        let out = std::process::Command::new(&shm_bin)
            .args(["--backend", "posix", "read", "/sparse", "--len", "1MiB"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success()
            || out.stdout.len() != 1 << 20
            || out.stdout.iter().any(|&b| b != 0)
        {
            return Err(format!(
                "shm read: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok("holes read as zeros; the write was NoSpace".into())
    });
    println!("{r}");
    assert_eq!(r.status, Status::Exited(0), "{r}");
}
