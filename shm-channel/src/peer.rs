//! Who an end is, and whether it still lives, judged only by what the kernel vouches for.
//!
//! Each end writes an [`EndRecord`] into the header once: its process id, the process's start
//! time (field 22 of `/proc/PID/stat`) and its pid namespace (the inode of
//! `/proc/self/ns/pid`). Each end also holds a **seat**: on backends whose mapping keeps a
//! descriptor (POSIX, files), a write lock (an open-file-description lock, `F_OFD_SETLK`) on
//! one byte of the segment's object, which the kernel drops when the descriptor closes, at the
//! process's death included, whatever pid namespace the process is in. The verdict on an end:
//!
//! - **dead** when its seat's lock is not held; or, on System V (no descriptor), when this
//!   process is the segment's only attachment (`shm_nattch`); or, when it is in this
//!   process's pid namespace, when `kill(pid, 0)` says no such process, `/proc/PID` is gone or
//!   shows a zombie, or the process at that id started at another time (the id was reused);
//!   `/proc` is asked only when it shows this pid namespace (a namespace made without a `/proc`
//!   of its own sees another namespace's there, where our ids name other processes), and a
//!   process that `kill` sees but `/proc` does not show (another user's, under `hidepid=`) is
//!   judged by `kill` alone;
//! - **alive** otherwise, including when nothing can judge it (a process in another pid
//!   namespace on System V while others are attached): a pid that cannot be judged is never
//!   taken for dead.
//!
//! A process id is an identity only inside its pid namespace: in another one the same number
//! names another process, or none. That is why the pid is consulted only between ends of one
//! namespace, and the lock (or the attach count) everywhere.
//!
//! Limits: a child forked without `exec` inherits the descriptor (and its lock) and the
//! attachment, so while it lives its parent's end counts as alive by those witnesses (the pid
//! check still sees the parent die, in one namespace). Descriptors and attachments are dropped
//! at `exec` (the backends open with `O_CLOEXEC`).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use shm_core::Mapping;

use crate::layout::EndRecord;

/// The largest process id Linux hands out (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX: i32 = 1 << 22;

/// The seat (the locked byte) of a channel's creator.
pub(crate) const SEAT_CREATOR: u64 = 0;
/// The seat of the end that opened a channel.
pub(crate) const SEAT_OPENER: u64 = 1;

/// What can be said about an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A witness the kernel keeps says it lives.
    Alive,
    /// A witness says it is gone.
    Dead,
    /// Nothing can judge it: treated as alive.
    Unknown,
}

impl Verdict {
    /// True unless it is known dead.
    pub fn maybe_alive(self) -> bool {
        self != Verdict::Dead
    }
}

/// One process, as identified in a channel's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proc {
    /// Process id, `1..=PID_MAX`, in the process's own pid namespace.
    pub pid: i32,
    /// Start time in clock ticks since boot; 0 when unknown (no `/proc`).
    pub start: u64,
    /// Its pid namespace's inode; 0 when unknown.
    pub pidns: u64,
}

impl Proc {
    /// This process.
    pub fn me() -> Proc {
        static ME: OnceLock<Proc> = OnceLock::new();
        let pid = std::process::id() as i32;
        let fresh = || Proc {
            pid,
            start: stat(pid).map_or(0, |s| s.start),
            pidns: my_pidns(),
        };
        let cached = *ME.get_or_init(fresh);
        // A fork has a new id: compute again when the cached one is not ours.
        if cached.pid == pid { cached } else { fresh() }
    }

    /// Checks values read from the header; `None` when no process could have them.
    pub fn checked(pid: u32, start: u64, pidns: u64) -> Option<Proc> {
        let pid = i32::try_from(pid).ok()?;
        (1..=PID_MAX)
            .contains(&pid)
            .then_some(Proc { pid, start, pidns })
    }

    /// The process a record announces, read once (`None`: no process could have that id).
    pub fn read(rec: &EndRecord) -> Option<Proc> {
        Proc::checked(
            rec.pid.load(Ordering::SeqCst),
            rec.start.load(Ordering::SeqCst),
            rec.pidns.load(Ordering::SeqCst),
        )
    }

    /// Writes this process into `rec`; the pid last (an end is announced by its pid).
    pub fn write(&self, rec: &EndRecord) {
        rec.start.store(self.start, Ordering::SeqCst);
        rec.pidns.store(self.pidns, Ordering::SeqCst);
        rec.pid.store(self.pid as u32, Ordering::SeqCst);
    }

    /// The verdict of the process id: `Unknown` in another pid namespace.
    pub fn judge_pid(&self) -> Verdict {
        let me = Proc::me();
        if self.pidns != me.pidns {
            return Verdict::Unknown;
        }
        if self.pid == me.pid {
            return Verdict::Alive;
        }
        if !exists(self.pid) {
            return Verdict::Dead;
        }
        match stat(self.pid) {
            Some(s) if s.zombie || (self.start != 0 && s.start != self.start) => Verdict::Dead,
            Some(_) => Verdict::Alive,
            // kill saw it and /proc does not show it: /proc hides it (another user's process
            // under `hidepid=`), is not this namespace's, or the process ended in between.
            // Only kill can tell: ask it again.
            None if exists(self.pid) => Verdict::Alive,
            None => Verdict::Dead,
        }
    }
}

/// What the kernel keeps for a segment that says which ends still hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Witness {
    /// Seats are locks on the mapping's descriptor (POSIX, files).
    Locks,
    /// System V: the segment's attach count, by its id.
    Attaches(i32),
    /// Neither: only the pid can judge.
    Nothing,
}

impl Witness {
    /// The witness of a segment mapped as `map`, whose System V id (if any) is `sysv_id`.
    pub fn of(map: &Mapping, sysv_id: Option<i32>) -> Witness {
        if map.fd().is_some() {
            Witness::Locks
        } else if let Some(id) = sysv_id {
            Witness::Attaches(id)
        } else {
            Witness::Nothing
        }
    }

    /// Takes `seat` for this end: an exclusive lock, held until the mapping's descriptor
    /// closes (fails while another live end holds it). Does nothing without descriptor.
    pub fn hold(&self, map: &Mapping, seat: u64) -> std::io::Result<()> {
        match (self, map.fd()) {
            (Witness::Locks, Some(fd)) => {
                ofd_lock(fd, seat, libc::F_OFD_SETLK, libc::F_WRLCK).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Gives `seat` back (a seat taken but not used); nothing without descriptor.
    pub fn release(&self, map: &Mapping, seat: u64) {
        if let (Witness::Locks, Some(fd)) = (self, map.fd()) {
            // An unlock of a byte this description locked cannot fail but for a closed
            // descriptor, and then the lock is gone anyway.
            let _ = ofd_lock(fd, seat, libc::F_OFD_SETLK, libc::F_UNLCK);
        }
    }

    /// Whether the end in `seat` holds it, from another end's mapping.
    pub fn seat(&self, map: &Mapping, seat: u64) -> Verdict {
        match (self, map.fd()) {
            (Witness::Locks, Some(fd)) => {
                match ofd_lock(fd, seat, libc::F_OFD_GETLK, libc::F_WRLCK) {
                    Ok(held) if held => Verdict::Alive,
                    Ok(_) => Verdict::Dead,
                    Err(_) => Verdict::Unknown,
                }
            }
            (Witness::Attaches(id), _) => match attaches(*id) {
                // Only this end's attachment is left: every other end is gone.
                Some(n) if n <= 1 => Verdict::Dead,
                // Someone else is attached: perhaps that end, perhaps another.
                Some(_) | None => Verdict::Unknown,
            },
            _ => Verdict::Unknown,
        }
    }

    /// The verdict on the end `p` in `seat`: dead when any witness says so, alive when one
    /// says so, unknown (alive) otherwise.
    pub fn judge(&self, map: &Mapping, seat: u64, p: &Proc) -> Verdict {
        let by_seat = self.seat(map, seat);
        let by_pid = p.judge_pid();
        match (by_seat, by_pid) {
            (Verdict::Dead, _) | (_, Verdict::Dead) => Verdict::Dead,
            (Verdict::Alive, _) | (_, Verdict::Alive) => Verdict::Alive,
            _ => Verdict::Unknown,
        }
    }
}

/// Sets (`F_OFD_SETLK`) or tests (`F_OFD_GETLK`: `Ok(true)` when another description holds a
/// lock that conflicts with `kind`) a lock on byte `seat` of `fd`'s object.
fn ofd_lock(
    fd: BorrowedFd<'_>,
    seat: u64,
    cmd: libc::c_int,
    kind: libc::c_int,
) -> std::io::Result<bool> {
    // SAFETY: an all-zero flock is a valid value of a plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = seat as libc::off_t;
    fl.l_len = 1;
    fl.l_pid = 0; // required by OFD locks
    // SAFETY: `fd` is a live descriptor (borrowed from the mapping), `fl` a valid, writable
    // flock that outlives the call; F_OFD_SETLK/GETLK read it and GETLK writes it back.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cmd == libc::F_OFD_GETLK && fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// The attach count of System V segment `id` (`None` when the kernel will not say).
fn attaches(id: i32) -> Option<u64> {
    // SAFETY: an all-zero shmid_ds is a valid value of a plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into `ds`, which is valid and writable. The id is
    // one this process is attached to, so it names this segment still (an id is reused only
    // once its segment is destroyed, which needs every attachment gone).
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    (rc == 0).then_some(ds.shm_nattch as u64)
}

struct Stat {
    start: u64,
    zombie: bool,
}

/// Whether process `pid` exists, as `kill(pid, 0)` says (a process of another user exists too:
/// `EPERM`).
fn exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists. The
    // pid is in 1..=PID_MAX (checked where a Proc is made), never 0 or negative, so the call
    // cannot address a process group.
    let rc = unsafe { libc::kill(pid, 0) };
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
}

/// Whether `/proc` is a view of this process's pid namespace: `/proc/self` names this process
/// by the id it has here. In a pid namespace without a `/proc` of its own (`unshare --pid
/// --fork` without `--mount-proc`), `/proc` shows another namespace, where an id of ours names
/// another process or none: what it says of our ids is no evidence, neither of life nor death.
fn proc_is_ours() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<u32>().ok())
        == Some(std::process::id())
}

/// This process's pid namespace: the inode of `/proc/self/ns/pid` (0 when unknown).
fn my_pidns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// State and start time of process `pid`, from `/proc/PID/stat`; `None` when there is no
/// such entry, or no `/proc` of this pid namespace to ask.
fn stat(pid: i32) -> Option<Stat> {
    if !proc_is_ours() {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the last ')' ends it.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After COMM: field 3 (state) is fields[0], field 22 (starttime) is fields[19].
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(Stat {
        start,
        zombie: matches!(*state, "Z" | "X" | "x"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_of(pid: i32, start: u64) -> Proc {
        Proc {
            pid,
            start,
            pidns: Proc::me().pidns,
        }
    }

    #[test]
    fn i_am_alive_and_have_a_start_time() {
        let me = Proc::me();
        assert_eq!(me.judge_pid(), Verdict::Alive);
        if cfg!(target_os = "linux") {
            assert_ne!(me.start, 0);
            assert_ne!(me.pidns, 0);
        }
    }

    #[test]
    fn garbage_ids_are_refused() {
        assert_eq!(Proc::checked(0, 1, 0), None);
        assert_eq!(Proc::checked(u32::MAX, 1, 0), None);
        assert_eq!(Proc::checked(PID_MAX as u32 + 1, 1, 0), None);
        assert!(Proc::checked(1, 0, 0).is_some());
    }

    #[test]
    fn a_reaped_child_is_dead_and_a_reused_id_too() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = proc_of(
            child.id() as i32,
            stat(child.id() as i32).map_or(0, |s| s.start),
        );
        child.wait().unwrap();
        assert_eq!(p.judge_pid(), Verdict::Dead);
        // init lives, but not with this start time.
        if proc_is_ours() {
            assert_eq!(proc_of(1, u64::MAX).judge_pid(), Verdict::Dead);
        }
    }

    #[test]
    fn a_pid_of_another_namespace_is_unknown_never_dead() {
        // A pid that names no process here, announced from another namespace.
        let p = Proc {
            pid: PID_MAX,
            start: 1,
            pidns: Proc::me().pidns.wrapping_add(1),
        };
        assert_eq!(p.judge_pid(), Verdict::Unknown);
        assert!(p.judge_pid().maybe_alive());
    }

    /// The variable that makes the test below play its inner part: the pid it expects.
    const FOREIGN_PROC: &str = "SHM_CHANNEL_TEST_FOREIGN_PROC";

    /// In a pid namespace whose `/proc` is the host's (no `--mount-proc`), a live process is
    /// not taken for dead because the host has no process of its id (it was: `/proc/PID`
    /// was missing, so the pid was judged dead), and its death is still known (by `kill`).
    #[test]
    fn a_pid_is_never_judged_through_another_namespace_s_proc() {
        let test = "peer::tests::a_pid_is_never_judged_through_another_namespace_s_proc";
        if let Ok(want) = std::env::var(FOREIGN_PROC) {
            return foreign_proc_inside(want.parse().unwrap());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED {test}: needs root for unshare --pid");
            return;
        }
        // An id that names no process outside (on the host) now, to be a live process's
        // id inside. (Should the host hand it out meanwhile, the test passes without proving
        // anything; it cannot fail for it.)
        let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(32768);
        let Some(free) = (1000..max)
            .rev()
            .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        else {
            println!("SKIPPED {test}: no free process id on this host");
            return;
        };
        let out = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child"])
            .arg(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(FOREIGN_PROC, free.to_string())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                println!("SKIPPED {test}: no unshare: {e}");
                return;
            }
        };
        let said = format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{said}");
        assert!(out.status.success(), "{said}");
        assert!(said.contains("JUDGED"), "{said}");
    }

    /// The inner part: pid 1 of a new pid namespace, with the host's `/proc`.
    fn foreign_proc_inside(want: i32) {
        assert_eq!(std::process::id(), 1, "not in a new pid namespace");
        assert!(
            !proc_is_ours(),
            "/proc is this namespace's: the test sees nothing"
        );
        // The next process here gets id `want`, which names nothing on the host.
        std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        assert_eq!(child.id() as i32, want);
        // The record the child would write of itself.
        let rec = Proc {
            pid: want,
            start: stat(want).map_or(0, |s| s.start),
            pidns: Proc::me().pidns,
        };
        assert_eq!(
            rec.judge_pid(),
            Verdict::Alive,
            "a live process taken for dead"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            rec.judge_pid(),
            Verdict::Dead,
            "a dead process taken for alive"
        );
        println!("JUDGED");
    }

    /// The variable that makes the test below play its inner part: the outer process's record.
    const HIDDEN_PROC: &str = "SHM_CHANNEL_TEST_HIDDEN_PROC";

    /// Under a `/proc` mounted with `hidepid=invisible`, another user's live process has no
    /// entry there: it is not taken for dead (it was: kill said it exists, and the missing
    /// entry was taken for a process gone in between).
    #[test]
    fn another_user_s_process_hidden_by_proc_is_alive() {
        let test = "peer::tests::another_user_s_process_hidden_by_proc_is_alive";
        if let Ok(rec) = std::env::var(HIDDEN_PROC) {
            return hidden_proc_inside(&rec);
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED {test}: needs root for a private /proc and a second user");
            return;
        }
        let me = Proc::me();
        // A /proc of its own (hidepid=invisible) in a private mount namespace, and the test
        // run there as uid 65534, to judge this (root's) process.
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t proc -o hidepid=invisible proc /proc || exit 77; \
                 exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$0\" \"$@\"",
            )
            .arg(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(HIDDEN_PROC, format!("{} {} {}", me.pid, me.start, me.pidns))
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                println!("SKIPPED {test}: no unshare: {e}");
                return;
            }
        };
        let said = format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{said}");
        if out.status.code() == Some(77) {
            println!("SKIPPED {test}: cannot mount a proc with hidepid=invisible");
            return;
        }
        assert!(out.status.success(), "{said}");
        assert!(said.contains("JUDGED"), "{said}");
    }

    /// The inner part: uid 65534, under a /proc that hides other users' processes.
    fn hidden_proc_inside(rec: &str) {
        let v: Vec<u64> = rec.split(' ').map(|w| w.parse().unwrap()).collect();
        let root = Proc {
            pid: v[0] as i32,
            start: v[1],
            pidns: v[2],
        };
        assert!(proc_is_ours());
        assert!(
            !std::path::Path::new(&format!("/proc/{}", root.pid)).exists(),
            "/proc shows the other user's process: the test sees nothing"
        );
        assert_eq!(
            root.judge_pid(),
            Verdict::Alive,
            "a live process taken for dead"
        );
        println!("JUDGED");
    }

    #[test]
    fn a_zombie_is_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let p = proc_of(child.id() as i32, 0);
        // Not waited for: once it exits it is a zombie until reaped.
        let t0 = std::time::Instant::now();
        while p.judge_pid() != Verdict::Dead && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(p.judge_pid(), Verdict::Dead);
        drop(child);
    }
}
