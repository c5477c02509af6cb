//! Races between processes, on both backends: eight processes creating one name at the same
//! moment (exactly one wins, the others get AlreadyExists), and several processes looping
//! create/open/map/write/read/unlink over a few shared names for about a second per backend
//! (no crash, no error but NotFound and AlreadyExists, nothing left).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_sysv::SysV;
use shm_tests::{Pending, Status, shm, spawn_child, unique_name};

/// A start line for forked children: they sleep in `pass` (futex) until the parent calls
/// `open`. The word lives in an anonymous shared mapping, so nothing of it is inherited by
/// processes of other tests (a pipe's write end would be, and two gates could then hold each
/// other shut).
struct Gate {
    word: NonNull<AtomicU32>,
}

impl Gate {
    fn new() -> Self {
        // SAFETY: a new anonymous shared mapping of one page, placed by the kernel; checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        Self {
            word: NonNull::new(addr.cast()).unwrap(),
        }
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: the page is mapped (zeroed, aligned) until drop, and shared only through
        // atomics.
        unsafe { self.word.as_ref() }
    }

    /// In a child: wait until the gate opens.
    fn pass(&self) {
        while self.word().load(Ordering::Acquire) == 0 {
            shm_core::wait::wait(self.word(), 0, None);
        }
    }

    /// In the parent: let every waiting child go at once.
    fn open(&self) {
        self.word().store(1, Ordering::Release);
        shm_core::wait::wake_all(self.word());
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; a failure leaves a page mapped.
        unsafe { libc::munmap(self.word.as_ptr().cast(), 4096) };
    }
}

/// Eight processes create one name at once; exactly one succeeds.
fn one_of_eight_wins<B: Backend + Sync>(backend: &B) {
    let cleanup = shm_core::conformance::Cleanup::new(backend, "race8");
    let name = cleanup.name.clone();
    let gate = Gate::new();
    let children: Vec<Pending> = (0..8)
        .map(|_| {
            spawn_child(|| {
                gate.pass();
                match backend.create(&name, &CreateOptions::new(4096)) {
                    Ok(mut seg) => {
                        // Keep it: the parent counts and removes it.
                        seg.keep();
                        Ok("created".into())
                    }
                    Err(e) if e.is_already_exists() => Ok("exists".into()),
                    Err(e) => Err(format!("{e:?}")),
                }
            })
        })
        .collect();
    gate.open();
    let mut tally = BTreeMap::new();
    for child in children {
        *tally.entry(child.wait().ok()).or_insert(0) += 1;
    }
    println!("{}: {tally:?}", backend.name());
    assert_eq!(
        tally.get("created"),
        Some(&1),
        "{}: {tally:?}",
        backend.name()
    );
    assert_eq!(
        tally.get("exists"),
        Some(&7),
        "{}: {tally:?}",
        backend.name()
    );
    backend.unlink(&cleanup.name).unwrap();
}

#[test]
fn eight_creators_one_winner_posix() {
    one_of_eight_wins(&Posix::new());
}

#[test]
fn eight_creators_one_winner_sysv() {
    one_of_eight_wins(&SysV::new());
}

/// One process's loop over the shared names until `until`: create (and drop, which removes,
/// or keep), open and check the bytes, remove. Every error that is not NotFound or
/// AlreadyExists ends it with that error, and so do bytes that no writer wrote.
fn churn<B: Backend>(
    backend: &B,
    names: &[SegmentName],
    seed: u64,
    until: Instant,
) -> Result<String, String> {
    let mut counts = BTreeMap::<&str, u64>::new();
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    // A POSIX object exists at size 0 until its creator sizes it; an opener waits 100 ms for the
    // size, and a creator descheduled longer (a busy machine) gets it a typed refusal.
    let in_the_making = |e: &Error| matches!(e, Error::InvalidSize { size: 0, .. });
    let expected = |e: &Error| e.is_not_found() || e.is_already_exists() || in_the_making(e);
    while Instant::now() < until {
        // xorshift: a cheap, seeded sequence of choices
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let name = &names[(x % names.len() as u64) as usize];
        let step: Result<&str, Error> = match (x >> 8) % 3 {
            0 => backend
                .create(name, &CreateOptions::new(8192))
                .and_then(|mut seg| {
                    seg.map()?.write_at(8000, b"mine")?;
                    if (x >> 16) % 2 == 0 {
                        // leave it for the others to open and remove
                        seg.keep();
                        Ok("created, kept")
                    } else {
                        Ok("created, dropped")
                    }
                }),
            1 => backend.open(name, Access::ReadWrite).and_then(|seg| {
                let map = seg.map()?;
                let mut buf = [0u8; 4];
                map.read_at(8000, &mut buf)?;
                // Either its creator has written, or not yet: never anything else.
                if &buf != b"mine" && buf != [0; 4] {
                    return Ok("bad bytes");
                }
                map.write_at(0, b"seen")?;
                Ok("opened")
            }),
            _ => backend.unlink(name).map(|()| "removed"),
        };
        match step {
            Ok("bad bytes") => return Err(format!("{name}: bytes no one wrote")),
            Ok(what) => *counts.entry(what).or_default() += 1,
            Err(e) if expected(&e) => {
                *counts
                    .entry(if e.is_not_found() {
                        "not found"
                    } else if in_the_making(&e) {
                        "in the making"
                    } else {
                        "exists"
                    })
                    .or_default() += 1
            }
            Err(e) => return Err(format!("{e} ({e:?}) after {counts:?}")),
        }
    }
    Ok(format!("{counts:?}"))
}

/// Segments of this backend whose name holds `tag` and `churn`, or (System V) whose creator is one of
/// `pids`: what a churn could have leaked.
fn leftovers<B: Backend>(backend: &B, tag: &str, pids: &[i32]) -> Vec<String> {
    backend
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| {
            i.name
                .as_deref()
                .is_some_and(|n| n.contains(tag) && n.contains("churn"))
                || i.cpid.is_some_and(|p| pids.contains(&p))
        })
        .map(|i| format!("{i:?}"))
        .collect()
}

fn churn_in_processes<B: Backend + Sync>(backend: &B) {
    let names: Vec<SegmentName> = (0..3)
        .map(|i| SegmentName::new(&unique_name(&format!("churn{i}"))).unwrap())
        .collect();
    let until = Instant::now() + Duration::from_millis(1200);
    let children: Vec<Pending> = (0..4)
        .map(|seed| spawn_child(|| churn(backend, &names, seed, until)))
        .collect();
    let pids: Vec<i32> = children.iter().map(Pending::pid).collect();
    let results: Vec<_> = children.into_iter().map(Pending::wait).collect();
    // Kept segments are expected at the end: remove them, then nothing of ours may remain.
    for name in &names {
        let _ = backend.unlink(name);
    }
    for r in &results {
        println!("{}: {r}", backend.name());
        assert_eq!(r.status, Status::Exited(0), "{}: {r}", backend.name());
    }
    let left = leftovers(backend, &format!("shmt-{}-", std::process::id()), &pids);
    assert!(left.is_empty(), "{}: left behind: {left:?}", backend.name());
}

#[test]
fn create_open_unlink_churn_posix() {
    churn_in_processes(&Posix::new());
}

#[test]
fn create_open_unlink_churn_sysv() {
    churn_in_processes(&SysV::new());
}

/// Eight `shm create` processes at once: one exit 0, seven one-line "already exists" errors.
#[test]
fn cli_eight_creators_one_winner() {
    for backend in ["posix", "sysv"] {
        let name = unique_name("cli-race8");
        let _guards = (
            shm_tests::Cleanup::posix(name.clone()),
            shm_tests::Cleanup::sysv_key(
                shm_sysv::key_for(&SegmentName::new(&name).unwrap())
                    .unwrap()
                    .as_raw(),
            ),
        );
        let children: Vec<_> = (0..8)
            .map(|_| {
                shm()
                    .args(["--backend", backend, "create", &name, "--size", "4096"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "{backend}: {outs:?}");
        for o in outs.iter().filter(|o| !o.status.success()) {
            let line = shm_tests::one_error_line("losing shm create", o);
            assert!(line.contains("already exists"), "{line}");
        }
    }
}

/// The creator's descriptor and mapping carry the segment's name (create goes through
/// `shm_open`), so /proc/PID/maps, lsof and fuser find who holds a segment.
#[test]
fn creator_mapping_shows_the_segment_name() {
    let posix = Posix::new();
    let name = SegmentName::new(&unique_name("maps")).unwrap();
    let seg = posix.create(&name, &CreateOptions::new(4096)).unwrap();
    let _map = seg.map().unwrap();
    let path = format!("/dev/shm/{}", name.bare());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps.lines().find(|l| l.ends_with(&path));
    assert!(line.is_some(), "no mapping of {path} in /proc/self/maps");
    assert!(!maps.contains(&format!("{path} (deleted)")));
}
