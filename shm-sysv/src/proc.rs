//! What Linux says about System V shared memory in /proc: segments and limits.

use shm_core::{Context, Error, Op, Result, SegmentInfo};

use crate::consts::{BACKEND, SHM_DEST, SHM_LOCKED};

const SEGMENTS: &str = "/proc/sysvipc/shm";

/// The kernel's limits on System V shared memory (`/proc/sys/kernel/shm*`).
///
/// ```
/// if let Some(limits) = shm_sysv::Limits::read() {
///     // A segment larger than shmmax is refused at create, as `Error::LimitExceeded`.
///     println!("largest segment: {} bytes", limits.shmmax);
///     assert!(limits.shmmni > 0);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest segment, bytes (`kernel.shmmax`).
    pub shmmax: u64,
    /// All segments together, pages (`kernel.shmall`).
    pub shmall: u64,
    /// Number of segments (`kernel.shmmni`).
    pub shmmni: u64,
}

impl Limits {
    /// Reads the limits in force in this IPC namespace; `None` where /proc does not tell.
    pub fn read() -> Option<Self> {
        let read = |n: &str| -> Option<u64> {
            std::fs::read_to_string(format!("/proc/sys/kernel/{n}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some(Self {
            shmmax: read("shmmax")?,
            shmall: read("shmall")?,
            shmmni: read("shmmni")?,
        })
    }
}

/// Every segment in /proc/sysvipc/shm.
pub(crate) fn list() -> Result<Vec<SegmentInfo>> {
    let text = std::fs::read_to_string(SEGMENTS)
        .map_err(|e| Error::from_os(Context::new(BACKEND, SEGMENTS, Op::List), e))?;
    Ok(parse(&text))
}

/// Parses the table: key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime
/// (perms in octal, with the `dest` bit 01000 when removed).
fn parse(text: &str) -> Vec<SegmentInfo> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 14 {
                return None;
            }
            let num = |i: usize| f[i].parse::<i64>().ok();
            let perms = u32::from_str_radix(f[2], 8).ok()?;
            let time = |i: usize| num(i).filter(|&t| t != 0);
            let mut info = SegmentInfo::new(BACKEND);
            info.key = Some(num(0)? as i32);
            info.id = Some(num(1)? as i32);
            info.mode = perms & 0o777;
            info.removed = perms & SHM_DEST != 0;
            info.locked = perms & SHM_LOCKED != 0;
            info.size = f[3].parse().ok()?;
            info.cpid = Some(num(4)? as i32);
            info.lpid = Some(num(5)? as i32);
            info.nattch = Some(f[6].parse().ok()?);
            info.uid = num(7)? as u32;
            info.gid = num(8)? as u32;
            info.atime = time(11);
            info.dtime = time(12);
            info.ctime = time(13);
            Some(info)
        })
        .collect()
}

/// Number of segments now, for telling which limit an ENOSPC hit.
pub(crate) fn count() -> Option<u64> {
    std::fs::read_to_string(SEGMENTS)
        .ok()
        .map(|t| t.lines().skip(1).count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_table() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
         847488914          0   640                   100  3565     0      0     0     0     0     0          0          0 1795788366                     0                     0\n\
                 0         32  1600                  4096  10     11      2  1000  1000  1000  1000          5          6 7 4096 0\n";
        let l = parse(text);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].key, Some(847488914));
        assert_eq!(l[0].mode, 0o640);
        assert_eq!(l[0].size, 100);
        assert_eq!(l[0].atime, None);
        assert_eq!(l[0].ctime, Some(1795788366));
        assert!(!l[0].removed);
        assert!(l[1].removed);
        assert_eq!(l[1].mode, 0o600);
        assert_eq!(l[1].nattch, Some(2));
        assert_eq!(l[1].uid, 1000);
    }
}
