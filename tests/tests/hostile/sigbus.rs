//! SIGBUS is another process's decision: a neighbour shrinks a POSIX segment while we copy, or
//! a sparse segment meets a full /dev/shm. No safe function and no command may die of it.
//! (The one case that cannot be made safe, an atomic view held across a shrink, is shown in
//! `failures/shrink.rs`.)
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_tests::{Cleanup, Status, check, in_child, is_root, shm, skip, spawn_child, unique_name};

const BIG: usize = 16 << 20;

/// A child that shrinks `name` to one page and grows it back, over and over, until `until`;
/// reports how many cycles it made.
fn shrinker(name: &SegmentName, until: Instant) -> shm_tests::Pending {
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
    let _g = Cleanup::posix(name.as_str().to_owned());
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
    let _g = Cleanup::posix(name.as_str().to_owned());
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

/// Whether `/proc/self/maps` shows a mapping starting at `addr` with no file behind it: the
/// SIGBUS guard's private zero page.
fn substitute_at(addr: usize) -> bool {
    let start = format!("{addr:x}-");
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&start) && l.split_whitespace().nth(5).is_none())
}

#[test]
fn a_copy_on_another_thread_never_returns_the_zeros_of_a_substitute_page() {
    // One thread's guarded copy faults over a shrink, and the guard puts a private zero page in
    // for the whole process. Another thread copying the same pages of the same mapping must not
    // be handed those zeros (or have its writes vanish into them) as a success.
    const SIZE: usize = 8 << 20;
    const PAGE: usize = 4096;
    let name = SegmentName::new(&unique_name("sigbus-threads")).unwrap();
    let _g = Cleanup::posix(name.as_str().to_owned());
    let mut seg = Posix::new()
        .create(&name, &CreateOptions::new(SIZE))
        .unwrap();
    seg.keep();
    let r = in_child(move || {
        let posix = Posix::new();
        let mut sizer = posix
            .open(&name, Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        let (mut seen, mut fabricated, mut lost, mut refused) = (0, 0, 0, 0);
        for _trial in 0..20 {
            sizer.resize(SIZE).map_err(|e| e.to_string())?;
            let seg = posix
                .open(&name, Access::ReadWrite)
                .map_err(|e| e.to_string())?;
            let map = seg.map().map_err(|e| e.to_string())?;
            map.write_at(0, &vec![0xa5; SIZE])
                .map_err(|e| e.to_string())?;
            // From here on, every byte past the first page is past the object's end: no copy
            // of it may succeed.
            sizer.resize(PAGE).map_err(|e| e.to_string())?;
            let started = std::sync::atomic::AtomicBool::new(false);
            let done = std::sync::atomic::AtomicBool::new(false);
            let target = map.as_ptr() as usize + PAGE;
            std::thread::scope(|s| {
                let faulting = s.spawn(|| {
                    let mut big = vec![0u8; SIZE - PAGE];
                    started.store(true, std::sync::atomic::Ordering::SeqCst);
                    let r = map.read_at(PAGE, &mut big);
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    r
                });
                while !started.load(std::sync::atomic::Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                // Wait (without touching it) until the other thread's fault replaced the page.
                while !done.load(std::sync::atomic::Ordering::SeqCst) && !substitute_at(target) {
                    std::hint::spin_loop();
                }
                let mut page = [0x11u8; PAGE];
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    seen += 1;
                    match map.read_at(PAGE, &mut page) {
                        Ok(()) => fabricated += 1,
                        Err(Error::OutOfBounds { .. }) => refused += 1,
                        Err(e) => return Err(format!("read: unexpected error: {e}")),
                    }
                    match map.write_at(PAGE, &[0x22u8; 64]) {
                        Ok(()) => lost += 1,
                        Err(Error::OutOfBounds { .. }) => refused += 1,
                        Err(e) => return Err(format!("write: unexpected error: {e}")),
                    }
                }
                match faulting.join().unwrap() {
                    Err(Error::OutOfBounds { .. }) => Ok(()),
                    other => Err(format!("the faulting copy: {other:?}")),
                }
            })?;
        }
        let report = format!(
            "{seen} copies while another thread's copy faulted: {fabricated} reads returned \
             substitute bytes, {lost} writes vanished, {refused} refused"
        );
        if fabricated + lost > 0 {
            return Err(report);
        }
        // A run in which no copy overlapped the fault would prove nothing.
        if seen == 0 {
            return Err(format!(
                "no copy ran while the other thread's faulted: {report}"
            ));
        }
        Ok(report)
    });
    println!("{r}");
    assert_eq!(r.status, Status::Exited(0), "{r}");
}

/// The environment variable that makes the test below run one scenario in a fresh process.
const FOREIGN_SIGBUS: &str = "SHM_TEST_FOREIGN_SIGBUS";

/// How many times the program's own SIGBUS handler ran (the "handler" scenario).
static OWN_HANDLER_RAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The program's own SIGBUS handler: counts, and mends a fault by mapping a page over it.
extern "C" fn own_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    OWN_HANDLER_RAN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code > 0 {
        // SAFETY: the faulting page belongs to the scenario's own throwaway mapping; a private
        // page over it lets the faulting load run again.
        unsafe {
            libc::mmap(
                (addr & !4095) as *mut libc::c_void,
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }
}

/// How many times the handler installed after the guard ran (the "later" scenario).
static LATER_RAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// What that handler replaced (the guard), to chain to.
static LATER_PREVIOUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// A handler a program installs after the guard, chaining to the one it replaced.
extern "C" fn later_handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    LATER_RAN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if let Some(&f) = LATER_PREVIOUS.get() {
        // SAFETY: the replaced handler is the guard's, an SA_SIGINFO handler of this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(f) };
        f(sig, info, ctx);
    }
}

/// One scenario, in a fresh process whose SIGBUS disposition nobody touched yet.
fn foreign_sigbus_scenario(which: &str, name: &str) {
    use std::sync::atomic::Ordering::SeqCst;
    match which {
        "ignore" => {
            // SAFETY: setting a disposition to SIG_IGN has no preconditions.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_IGN) };
        }
        "handler" => {
            // SAFETY: an all-zero sigaction is a valid value; the handler has the SA_SIGINFO
            // signature and stays valid for the process's life.
            unsafe {
                let mut a: libc::sigaction = std::mem::zeroed();
                a.sa_sigaction = own_handler as *const () as libc::sighandler_t;
                a.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut a.sa_mask);
                assert_eq!(libc::sigaction(libc::SIGBUS, &a, std::ptr::null_mut()), 0);
            }
        }
        "default" => {
            // SAFETY: restoring the default disposition has no preconditions.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
        // "std": the standard library's handler, which answers a SIGBUS that is not a stack
        // overflow by restoring the default and returning.
        _ => {}
    }
    let name = SegmentName::new(name).unwrap();
    let seg = Posix::new().open(&name, Access::ReadWrite).unwrap();
    let map = seg.map().unwrap();
    let mut buf = [0u8; 4];
    map.read_at(3 * 4096, &mut buf).unwrap(); // arms the guard
    if which == "later" {
        // A handler installed after the guard, which chains to it.
        // SAFETY: an all-zero sigaction is a valid value; the handler has the SA_SIGINFO
        // signature and stays valid for the process's life; `old` is a valid out-pointer.
        unsafe {
            let mut a: libc::sigaction = std::mem::zeroed();
            let mut old: libc::sigaction = std::mem::zeroed();
            a.sa_sigaction = later_handler as *const () as libc::sighandler_t;
            a.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut a.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGBUS, &a, &mut old), 0);
            LATER_PREVIOUS.set(old.sa_sigaction).unwrap();
        }
        // Two signals sent by a process: each reaches the later handler, and through it the
        // guard and the standard library's handler, which resets SIGBUS to the default for a
        // signal that is not a fault. What is put back is the later handler, not the guard
        // in its place (the program's handler was uninstalled by the first).
        for n in 1..=2 {
            // SAFETY: a signal to ourselves; what it does is the point of the test.
            unsafe { libc::raise(libc::SIGBUS) };
            assert_eq!(
                LATER_RAN.load(SeqCst),
                n,
                "kill -BUS number {n} reached the later handler"
            );
        }
    }
    // A SIGBUS sent by a process, as `kill -BUS` sends it (but to this thread, so that it is
    // delivered before the call returns).
    // SAFETY: a signal to ourselves; what it does is the point of the test.
    unsafe { libc::raise(libc::SIGBUS) };
    if which == "later" {
        assert_eq!(LATER_RAN.load(SeqCst), 3);
    }
    if which == "default" {
        // The signal was delivered before raise returned; allow a moment anyway.
        std::thread::sleep(Duration::from_secs(2));
        panic!("survived kill -BUS under the default disposition");
    }
    if which == "handler" {
        assert_eq!(
            OWN_HANDLER_RAN.load(SeqCst),
            1,
            "kill -BUS reached the handler"
        );
        // A fault in another mapping: an object of our own, shrunk under its mapping.
        let mut other = Posix::new()
            .create(
                &SegmentName::new(&format!("{}-other", name.as_str())).unwrap(),
                &CreateOptions::new(2 * 4096),
            )
            .unwrap();
        let other_map = other.map().unwrap();
        other.resize(4096).unwrap();
        // SAFETY: the second page is mapped; reading it past the object's end faults, and
        // the program's handler maps a page over it.
        let v = unsafe { std::ptr::read_volatile(other_map.as_ptr().add(4096)) };
        assert_eq!(v, 0);
        assert_eq!(
            OWN_HANDLER_RAN.load(SeqCst),
            2,
            "the fault reached the handler"
        );
    }
    // The guard is still armed: a copy over a shrink is an error, not a death.
    let mut shrinker = Posix::new().open(&name, Access::ReadWrite).unwrap();
    shrinker.resize(4096).unwrap();
    let r = map.read_at(3 * 4096, &mut buf);
    assert!(matches!(r, Err(Error::OutOfBounds { .. })), "{r:?}");
    if which == "later" {
        assert_eq!(
            LATER_RAN.load(SeqCst),
            4,
            "the fault went through the later handler"
        );
    }
    if which == "handler" {
        assert_eq!(
            OWN_HANDLER_RAN.load(SeqCst),
            2,
            "a guarded fault is not passed on"
        );
    }
    println!("scenario {which}: the guard held");
}

#[test]
fn a_foreign_sigbus_goes_to_the_previous_disposition_and_the_guard_stays_armed() {
    let test = "a_foreign_sigbus_goes_to_the_previous_disposition_and_the_guard_stays_armed";
    if let Ok(which) = std::env::var(FOREIGN_SIGBUS) {
        let name = std::env::var(format!("{FOREIGN_SIGBUS}_NAME")).unwrap();
        return foreign_sigbus_scenario(&which, &name);
    }
    // Each scenario in a fresh process (this test binary again, running this test only), so
    // that its own disposition is in place before anything installs the guard.
    for (which, expect) in [
        ("ignore", Some(0)),
        ("handler", Some(0)),
        ("std", Some(0)),
        ("later", Some(0)),
        ("default", None),
    ] {
        let name = unique_name("foreign-sigbus");
        let _g = Cleanup::posix(name.clone());
        let _g2 = Cleanup::posix(format!("{name}-other"));
        let mut seg = Posix::new()
            .create(
                &SegmentName::new(&name).unwrap(),
                &CreateOptions::new(4 * 4096),
            )
            .unwrap();
        seg.keep();
        let out = shm_tests::this_test_again(&[], module_path!(), test)
            .env(FOREIGN_SIGBUS, which)
            .env(format!("{FOREIGN_SIGBUS}_NAME"), &name)
            .output()
            .unwrap();
        let said = format!(
            "{which}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        use std::os::unix::process::ExitStatusExt;
        match expect {
            Some(code) => assert_eq!(out.status.code(), Some(code), "{said}"),
            // The default disposition: killed by the SIGBUS that was sent, as without a guard.
            None => assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{said}"),
        }
        println!("{which}: {:?}", out.status);
    }
}
