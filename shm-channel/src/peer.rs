//! Who the peer is, and whether it still lives: a process id and the process's start time.
//!
//! Each end writes its process id and start time (field 22 of `/proc/PID/stat`, in clock ticks
//! since boot) into the header once; the other end reads them once into private memory. The
//! peer is dead when `kill(pid, 0)` says no such process, when `/proc/PID` is gone or shows a
//! zombie, or when the process at that id started at another time (the id was reused).
//!
//! Why this and not a lock the kernel drops at death (flock, OFD locks): a lock needs a file,
//! and the contract (`shm_core::Backend`) gives a channel none: System V segments have no
//! descriptor at all, POSIX and file-backed segments keep theirs private. A process id in the
//! segment works on every backend that passes the conformance suite, costs nothing while the
//! peer answers, and is checked only when a blocking call has waited for a while. The limit:
//! both ends must see one another's process ids (the same pid namespace).

use std::sync::OnceLock;

/// The largest process id Linux hands out (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX: i32 = 1 << 22;

/// One process, as identified in a channel's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proc {
    /// Process id, `1..=PID_MAX`.
    pub pid: i32,
    /// Start time in clock ticks since boot; 0 when unknown (no `/proc`).
    pub start: u64,
}

impl Proc {
    /// This process.
    pub fn me() -> Proc {
        static ME: OnceLock<(i32, u64)> = OnceLock::new();
        let pid = std::process::id() as i32;
        // A fork has a new id: compute again when the cached one is not ours.
        let (cached_pid, start) = *ME.get_or_init(|| (pid, stat(pid).map_or(0, |s| s.start)));
        if cached_pid == pid {
            Proc { pid, start }
        } else {
            Proc {
                pid,
                start: stat(pid).map_or(0, |s| s.start),
            }
        }
    }

    /// Checks values read from the header; `None` when no process could have them.
    pub fn checked(pid: u32, start: u64) -> Option<Proc> {
        let pid = i32::try_from(pid).ok()?;
        (1..=PID_MAX).contains(&pid).then_some(Proc { pid, start })
    }

    /// True while the process lives (a zombie is dead: it will never answer).
    pub fn alive(&self) -> bool {
        if self.pid == std::process::id() as i32 {
            return true;
        }
        // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
        // The pid is in 1..=PID_MAX (checked at construction), never 0 or negative, so the call
        // cannot address a process group.
        let rc = unsafe { libc::kill(self.pid, 0) };
        if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        match stat(self.pid) {
            Some(s) => !s.zombie && (self.start == 0 || s.start == self.start),
            // Without /proc, trust kill; with it, a missing entry means the process is gone.
            None => !proc_mounted(),
        }
    }
}

struct Stat {
    start: u64,
    zombie: bool,
}

fn proc_mounted() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// State and start time of process `pid`, from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<Stat> {
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

    #[test]
    fn i_am_alive_and_have_a_start_time() {
        let me = Proc::me();
        assert!(me.alive());
        if cfg!(target_os = "linux") {
            assert_ne!(me.start, 0);
        }
    }

    #[test]
    fn garbage_ids_are_refused() {
        assert_eq!(Proc::checked(0, 1), None);
        assert_eq!(Proc::checked(u32::MAX, 1), None);
        assert_eq!(Proc::checked(PID_MAX as u32 + 1, 1), None);
        assert!(Proc::checked(1, 0).is_some());
    }

    #[test]
    fn a_reaped_child_is_dead_and_a_reused_id_too() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = Proc {
            pid: child.id() as i32,
            start: stat(child.id() as i32).map_or(0, |s| s.start),
        };
        child.wait().unwrap();
        assert!(!p.alive());
        // init lives, but not with this start time.
        let init = Proc {
            pid: 1,
            start: u64::MAX,
        };
        if proc_mounted() {
            assert!(!init.alive());
        }
    }

    #[test]
    fn a_zombie_is_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let p = Proc {
            pid: child.id() as i32,
            start: 0,
        };
        // Not waited for: once it exits it is a zombie until reaped.
        let t0 = std::time::Instant::now();
        while p.alive() && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!p.alive());
        drop(child);
    }
}
