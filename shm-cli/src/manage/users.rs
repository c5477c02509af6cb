//! Who uses a segment. System V counts attaches and records pids; POSIX keeps nothing, so, as
//! `fuser` and `lsof` do, this reads /proc: the files each process maps (`/proc/PID/maps`) and
//! holds open (`/proc/PID/fd`). Another user's processes can be read only with privilege: those
//! that could not be read are counted, so that a count is never presented as complete when it
//! is not.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;

use shm_core::SegmentInfo;

/// What is known of a segment's users, beyond what the kernel's own record says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// POSIX: the processes that map the segment or hold it open (`None` for System V, whose
    /// kernel counts attaches itself).
    pub pids: Option<Vec<i32>>,
    /// POSIX: processes whose maps and descriptors could not be read (another user's, without
    /// privilege): any of them may use the segment too.
    pub hidden: usize,
    /// System V: the command of the creator process, while it lives.
    pub creator: Option<String>,
    /// System V: the command of the last process that attached or detached, while it lives.
    pub last_user: Option<String>,
}

impl Usage {
    /// True when no live process uses the segment, as far as can be seen: no attach (System
    /// V), or no visible process that maps or holds it (POSIX; see [`Usage::unsure`]). A
    /// removed System V segment is not "unused": it goes away by itself at its last detach.
    pub fn unused(&self, info: &SegmentInfo) -> bool {
        if info.semaphore || info.removed {
            return false;
        }
        match &self.pids {
            Some(pids) => pids.is_empty(),
            None => info.nattch == Some(0),
        }
    }

    /// True when the POSIX count may be short: some processes could not be read.
    pub fn unsure(&self) -> bool {
        self.pids.is_some() && self.hidden > 0
    }
}

/// Every process's POSIX shared memory files, by device and inode.
#[derive(Debug, Default)]
pub struct Users {
    by_file: HashMap<(u64, u64), BTreeSet<i32>>,
    hidden: usize,
}

impl Users {
    /// What [`Users::usage`] needs to answer for `infos`: /proc read once where one of them is a
    /// POSIX segment (System V's kernel keeps its own count), nothing read otherwise.
    pub fn for_infos<'a>(infos: impl IntoIterator<Item = &'a SegmentInfo>) -> Self {
        let posix = infos
            .into_iter()
            .any(|i| i.backend != "sysv" && !i.semaphore);
        if posix { Self::scan() } else { Self::default() }
    }

    /// Reads /proc once. This process is left out: it only looks.
    fn scan() -> Self {
        let mut users = Users::default();
        let me = std::process::id().to_string();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return users;
        };
        for entry in dir.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(pid_n) = pid.parse::<i32>() else {
                continue;
            };
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"));
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd"));
            let denied = |e: &std::io::Error| e.kind() == std::io::ErrorKind::PermissionDenied;
            if maps.as_ref().is_err_and(denied) || fds.as_ref().is_err_and(denied) {
                users.hidden += 1;
            }
            if let Ok(maps) = maps {
                for file in maps.lines().filter_map(shm_mapping) {
                    users.by_file.entry(file).or_default().insert(pid_n);
                }
            }
            if let Ok(fds) = fds {
                for fd in fds.flatten() {
                    let held = std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.starts_with("/dev/shm/"));
                    // The link's target, followed: the open file itself (also when removed).
                    if let (true, Ok(md)) = (held, std::fs::metadata(fd.path())) {
                        users
                            .by_file
                            .entry((md.dev(), md.ino()))
                            .or_default()
                            .insert(pid_n);
                    }
                }
            }
        }
        users
    }

    /// What is known of the users of `info`.
    pub fn usage(&self, info: &SegmentInfo) -> Usage {
        if info.backend == "sysv" {
            return Usage {
                creator: info.cpid.and_then(command),
                last_user: info.lpid.filter(|&p| p != 0).and_then(command),
                ..Usage::default()
            };
        }
        let file = info.name.as_deref().and_then(|name| {
            let md = std::fs::symlink_metadata(format!("/dev/shm{name}")).ok()?;
            Some((md.dev(), md.ino()))
        });
        let pids = file
            .and_then(|f| self.by_file.get(&f))
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        Usage {
            pids: Some(pids),
            hidden: self.hidden,
            ..Usage::default()
        }
    }
}

/// The device and inode of a /proc/PID/maps line that maps a file of /dev/shm.
fn shm_mapping(line: &str) -> Option<(u64, u64)> {
    // address perms offset dev inode pathname
    let mut fields = line.split_whitespace();
    let (_, _, _, dev, inode) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let path = fields.next()?;
    if !path.starts_with("/dev/shm/") {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some((libc::makedev(major, minor), inode.parse().ok()?))
}

/// The command name of a live process (`/proc/PID/comm`).
fn command(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_maps_line() {
        let line = "7f1c2a000000-7f1c2a001000 rw-s 00000000 00:1a 1234 /dev/shm/test.shmem";
        assert_eq!(shm_mapping(line), Some((libc::makedev(0, 0x1a), 1234)));
        let deleted = "7f1c2a000000-7f1c2a001000 rw-s 00000000 00:1a 99 /dev/shm/x (deleted)";
        assert_eq!(shm_mapping(deleted), Some((libc::makedev(0, 0x1a), 99)));
        assert_eq!(shm_mapping("7f-80 r-xp 0 08:01 5 /usr/lib/libc.so.6"), None);
        assert_eq!(shm_mapping("7f-80 rw-p 0 00:00 0 "), None);
    }
}
