//! The System V column of `shm compare`: the backend, and raw `shmget`/`shmat` where the
//! kernel's own behaviour is the point.

use std::io;

use anyhow::{Context as _, Result, bail};
use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};
use shm_sysv::{Limits, ShmId, SysV, SysVSegment, key_for};

use crate::lab::{
    Lab, Probe, Umask, as_nobody, beyond_dev_shm, cvt, errno, errno_name, in_child,
    made_by_a_child, mapped_len, new_ipc_namespace, page_size, probes, size_or_unlimited,
};
use shm_units::format_size;

probes! {
    /// Probes one behaviour on System V shared memory.
}

/// A fresh name and its key; the segment under the key is removed when the row is done.
fn name(lab: &mut Lab, label: &str) -> Result<(SegmentName, libc::key_t)> {
    let name = lab.name(label)?;
    let key = key_for(&name)?.as_raw();
    let undo = name.clone();
    lab.on_clean(move || {
        let _ = SysV.unlink(&undo);
    });
    Ok((name, key))
}

/// A new segment of `size` bytes through the backend.
fn make(lab: &mut Lab, label: &str, size: usize) -> Result<(SegmentName, SysVSegment)> {
    let (name, _) = name(lab, label)?;
    let seg = SysV.create(&name, &CreateOptions::new(size))?;
    Ok((name, seg))
}

/// Removes segment `id` when the row is done, if it is still the one this process made (a
/// removed id may in time be given to another segment).
fn remove_id_later(lab: &mut Lab, id: libc::c_int) {
    let me = std::process::id() as i32;
    lab.on_clean(move || {
        if SysV
            .info_id(ShmId::from_raw(id))
            .is_ok_and(|i| i.cpid == Some(me))
        {
            let _ = SysV.unlink_id(ShmId::from_raw(id));
        }
    });
}

/// `shmget` as any C program calls it.
fn shmget(key: libc::key_t, size: usize, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: shmget takes plain values and touches no memory of ours.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// `shmget` that reports an errno name, or "ok".
fn shmget_says(key: libc::key_t, size: usize, flags: libc::c_int) -> String {
    match shmget(key, size, flags) {
        Ok(_) => "ok".to_owned(),
        Err(e) => errno(&e),
    }
}

fn stat(id: libc::c_int) -> io::Result<libc::shmid_ds> {
    // SAFETY: an all-zero shmid_ds is a valid value of a plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds to a valid out-pointer.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(ds)
}

/// Attaches `id` and detaches again; the error of the attach, if any.
fn attach_once(id: libc::c_int, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: shmat picks the address; the result is checked and detached once, untouched.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if addr as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `addr` came from shmat above.
    unsafe { libc::shmdt(addr) };
    Ok(())
}

fn nattch(id: libc::c_int) -> Result<u64> {
    SysV.info_id(ShmId::from_raw(id))?
        .nattch
        .context("no nattch reported")
}

/// The resident memory of segment `id` from /proc/sysvipc/shm (the `rss` column).
fn rss(id: libc::c_int) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").ok()?;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1)?.parse::<i32>().ok()? == id).then(|| f.get(14)?.parse().ok())?
    })
}

fn identity(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "identity", 4096)?;
    let key = seg.key().as_raw();
    let again = shmget(key, 4096, libc::IPC_CREAT | 0o600)?;
    let excl = shmget_says(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
    let same = if again == seg.id().as_raw() {
        "the same"
    } else {
        "another"
    };
    let _ = name;
    Ok(format!(
        "a 32-bit key ({} here): IPC_CREAT on it returns {same} id; with IPC_EXCL -> {excl}",
        shm_sysv::Key::from_raw(key)
    ))
}

fn where_it_shows(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "where", 4096)?;
    let listed = SysV.list()?.iter().any(|i| i.id == Some(seg.id().as_raw()));
    Ok(if listed {
        "in /proc/sysvipc/shm (`ipcs -m`, `lsipc -m`) as key and id; not in /dev/shm".to_owned()
    } else {
        "not in /proc/sysvipc/shm".to_owned()
    })
}

fn odd_size(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "size100", 100)?;
    seg.map()?.write_at(0, b"x")?;
    let size = seg.info()?.size;
    let memory = rss(seg.id().as_raw()).map_or("?".to_owned(), |r| r.to_string());
    Ok(format!(
        "shm_segsz {size} (kept); {memory} bytes of memory (rss: rounded to a page)"
    ))
}

fn size_zero(lab: &mut Lab) -> Result<String> {
    let (_name, key) = name(lab, "size0")?;
    Ok(
        match shmget(key, 0, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) {
            Ok(_) => "shmget(size 0) -> ok".to_owned(),
            Err(e) => format!("shmget(size 0) -> {}", errno(&e)),
        },
    )
}

fn open_larger(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "open", 100)?;
    let key = seg.key().as_raw();
    Ok(format!(
        "shmget(key, 101) -> {}; 100 -> {}; 0 -> {}",
        shmget_says(key, 101, 0),
        shmget_says(key, 100, 0),
        shmget_says(key, 0, 0)
    ))
}

fn resize(lab: &mut Lab) -> Result<String> {
    let (_name, mut seg) = make(lab, "resize", 100)?;
    let grow = shmget_says(seg.key().as_raw(), 8192, 0);
    let backend = if seg.resize(8192).is_err() {
        "refused"
    } else {
        "ok?"
    };
    Ok(format!(
        "impossible: no call changes shm_segsz (shmget(key, 8192) -> {grow}; shm {backend})"
    ))
}

fn limits() -> Result<String> {
    let Some(l) = Limits::read() else {
        bail!("/proc/sys/kernel/shm* cannot be read");
    };
    let used = SysV.list().map(|l| l.len()).unwrap_or(0);
    let pages = if l.shmall >= 1 << 50 {
        "no limit".to_owned()
    } else {
        format!("{} pages", l.shmall)
    };
    Ok(format!(
        "shmmax {}, shmall {pages}, shmmni {} ({used} in use)",
        size_or_unlimited(l.shmmax),
        l.shmmni
    ))
}

fn over_the_limit(lab: &mut Lab) -> Result<String> {
    let (_name, key) = name(lab, "over")?;
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
    let beyond = match beyond_dev_shm() {
        Some(size) => {
            let said = match shmget(key, usize::try_from(size)?, flags) {
                // Never touched; removed by the lab at once after this row.
                Ok(_) => "ok (not bounded by /dev/shm)".to_owned(),
                Err(e) => errno(&e),
            };
            format!("{}: shmget {said}", format_size(size))
        }
        None => "/dev/shm has no size limit to compare".to_owned(),
    };
    // A key of its own: the probe above may have made a segment under `key` (then EEXIST).
    let (_name, above_key) = name(lab, "overmax")?;
    let above_max = match Limits::read().and_then(|l| l.shmmax.checked_add(1)) {
        Some(size) => match usize::try_from(size) {
            Ok(size) => shmget_says(above_key, size, flags),
            Err(_) => "not expressible".to_owned(),
        },
        None => "no shmmax".to_owned(),
    };
    Ok(format!("{beyond}; shmmax + 1 -> {above_max}"))
}

fn past_the_end(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "end", 100)?;
    let map = seg.map()?;
    let vma = mapped_len(map.as_ptr()).unwrap_or(page_size());
    let size = seg.info()?.size;
    let refused = map.read_at(100, &mut [0u8; 1]).is_err();
    Ok(format!(
        "shm_segsz {size}, shmat maps {vma} bytes: 100..{} usable, beyond: SIGSEGV (not touched); shm {} offset 100",
        vma - 1,
        if refused { "refuses" } else { "allows" }
    ))
}

fn open_after_remove(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "reopen", 4096)?;
    let id = seg.id().as_raw();
    let map = seg.map()?;
    map.write_at(0, b"kept")?;
    SysV.unlink(&name)?;
    let open = match SysV.open(&name, Access::ReadOnly) {
        Ok(_) => "open by key -> still found".to_owned(),
        Err(e) => format!("open by key -> {}", errno_name(e.raw_os_error())),
    };
    let after = SysV.info_id(ShmId::from_raw(id))?;
    let mut buf = [0u8; 4];
    map.read_at(0, &mut buf)?;
    let kept = if &buf == b"kept" { "keeps" } else { "lost" };
    Ok(format!(
        "{open}; id {id} lives on as key {}{}; the mapping {kept} its bytes",
        shm_sysv::Key::from_raw(after.key.unwrap_or(-1)),
        if after.removed { ", status dest" } else { "" }
    ))
}

fn attach_after_remove(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "attach", 4096)?;
    let id = seg.id().as_raw();
    let _map = seg.map()?;
    SysV.unlink(&name)?;
    let before = nattch(id)?;
    // SAFETY: shmat picks the address; the result is checked and detached once, untouched.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
    if addr as isize == -1 {
        let e = io::Error::last_os_error();
        return Ok(format!("shmat(id) after IPC_RMID -> {}", errno(&e)));
    }
    let during = nattch(id);
    // SAFETY: `addr` came from shmat above.
    unsafe { libc::shmdt(addr) };
    Ok(format!(
        "shmat(id) after IPC_RMID -> ok on Linux (nattch {before} -> {})",
        during?
    ))
}

fn attach_count(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "nattch", 4096)?;
    let (_a, _b) = (seg.map()?, seg.map()?);
    let info = seg.info()?;
    let me = std::process::id() as i32;
    let pids = if info.cpid == Some(me) && info.lpid == Some(me) {
        "cpid and lpid: this process"
    } else {
        "cpid and lpid kept"
    };
    Ok(format!(
        "shm_nattch {} after two shmat in one process; {pids}",
        info.nattch.unwrap_or(0)
    ))
}

fn fork(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "fork", 4096)?;
    let id = seg.id().as_raw();
    let _map = seg.map()?;
    let before = nattch(id)?;
    let child = in_child(|| match nattch(id) {
        Ok(n) => n.to_string(),
        Err(e) => e.to_string(),
    })?;
    let after = nattch(id)?;
    Ok(format!(
        "attachment inherited: nattch {before} -> {child} in the child, {after} after it exits"
    ))
}

fn survives_creator(lab: &mut Lab) -> Result<String> {
    let (name, _) = name(lab, "survives")?;
    made_by_a_child(&SysV, &name)?;
    let forced = sysctl("kernel/shm_rmid_forced");
    match SysV.open(&name, Access::ReadOnly) {
        Ok(seg) => {
            let info = seg.info()?;
            // Attaching marks this process as the last user (lpid): a leftover is ours to see.
            drop(seg.map()?);
            Ok(format!(
                "yes: opened after its creator (pid {}) exited, nattch {}; until IPC_RMID or reboot (kernel.shm_rmid_forced = {forced})",
                info.cpid.unwrap_or(0),
                info.nattch.unwrap_or(0)
            ))
        }
        Err(e) => Ok(format!(
            "no: {} (kernel.shm_rmid_forced = {forced})",
            errno_name(e.raw_os_error())
        )),
    }
}

fn umask(lab: &mut Lab) -> Result<String> {
    let (_name, key) = name(lab, "umask")?;
    let _mask = Umask::set(0o022);
    let id = shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666)?;
    let mode = u32::from(stat(id)?.shm_perm.mode) & 0o777;
    Ok(format!("0666 -> {mode:04o} (raw shmget: umask ignored)"))
}

/// Runs `probe` as user nobody in a child, on a fresh mode-0600 segment of root's.
fn as_other_user(
    lab: &mut Lab,
    label: &str,
    probe: impl FnOnce(libc::key_t, libc::c_int) -> String,
) -> Result<String> {
    as_nobody(
        || make(lab, label, 4096),
        |(_name, seg)| probe(seg.key().as_raw(), seg.id().as_raw()),
    )
}

fn other_user_opens(lab: &mut Lab) -> Result<String> {
    as_other_user(lab, "perm", |key, id| {
        let get = shmget_says(key, 0, 0);
        let attach = match attach_once(id, libc::SHM_RDONLY) {
            Ok(()) => "shmat -> allowed".to_owned(),
            Err(e) => format!("refused only at shmat ({})", errno(&e)),
        };
        format!("shmget(key, 0, 0) -> {get}; {attach}")
    })
}

fn other_user_removes(lab: &mut Lab) -> Result<String> {
    as_other_user(lab, "rmperm", |_key, id| {
        // SAFETY: IPC_RMID ignores the buffer argument.
        match cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }) {
            Ok(_) => "IPC_RMID -> allowed".to_owned(),
            Err(e) => format!("IPC_RMID -> {}", errno(&e)),
        }
    })
}

fn namespaces(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "ns", 4096)?;
    let key = seg.key().as_raw();
    in_child(|| {
        if let Err(e) = new_ipc_namespace() {
            return format!("needs root or a user namespace (unshare: {})", errno(&e));
        }
        match shmget(key, 0, 0) {
            Ok(_) => "new IPC namespace: still seen".to_owned(),
            Err(e) => format!(
                "new IPC namespace (unshare -i): hidden (shmget -> {})",
                errno(&e)
            ),
        }
    })
}

fn huge_pages(lab: &mut Lab) -> Result<String> {
    const HUGE: usize = 2 << 20;
    let pages = sysctl("vm/nr_hugepages");
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | libc::SHM_HUGETLB | 0o600;
    let said = match shmget(libc::IPC_PRIVATE, HUGE, flags) {
        Ok(id) => {
            remove_id_later(lab, id);
            "ok".to_owned()
        }
        Err(e) => errno(&e),
    };
    Ok(format!(
        "shmget(SHM_HUGETLB) -> {said} (vm.nr_hugepages = {pages})"
    ))
}

/// One line of a kernel setting under /proc/sys, trimmed.
fn sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}
