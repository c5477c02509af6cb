//! The POSIX column of `shm compare`: the backend, and raw `shm_open` where the kernel's own
//! behaviour is the point.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Result, bail};
use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};
use shm_posix::{Posix, PosixSegment};

use crate::lab::{
    Lab, Probe, Umask, as_nobody, beyond_dev_shm, cvt, dev_shm_space, errno, errno_name, in_child,
    made_by_a_child, mapped_len, new_ipc_namespace, page_size, probes, size_or_unlimited,
};
use shm_units::format_size;

probes! {
    /// Probes one behaviour on POSIX shared memory.
}

/// A fresh name whose object is unlinked when the row is done.
fn name(lab: &mut Lab, label: &str) -> Result<SegmentName> {
    let name = lab.name(label)?;
    let undo = name.clone();
    lab.on_clean(move || {
        let _ = Posix.unlink(&undo);
    });
    Ok(name)
}

/// A new segment of `size` bytes through the backend.
fn make(lab: &mut Lab, label: &str, size: usize) -> Result<(SegmentName, PosixSegment)> {
    let name = name(lab, label)?;
    let seg = Posix.create(&name, &CreateOptions::new(size))?;
    Ok((name, seg))
}

/// The C library's `shm_open`, as any C program calls it.
fn raw_open(name: &str, oflag: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let fd = cvt(unsafe { libc::shm_open(c.as_ptr(), oflag, mode) })?;
    // SAFETY: shm_open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new object made with a raw `O_CREAT | O_EXCL` (size 0, mode minus the umask).
fn raw_create(name: &SegmentName, mode: libc::mode_t) -> io::Result<OwnedFd> {
    raw_open(
        name.as_str(),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
        mode,
    )
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; a bad fd is reported as EBADF.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn ftruncate(fd: RawFd, size: u64) -> io::Result<()> {
    let size = libc::off_t::try_from(size).map_err(io::Error::other)?;
    // SAFETY: plain system call on a descriptor we own.
    cvt(unsafe { libc::ftruncate(fd, size) }).map(drop)
}

fn identity(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "identity", 4096)?;
    let own = fstat(seg.as_raw_fd())?.st_ino;
    let bare = name.bare();
    let spellings = [bare.to_owned(), format!("/{bare}"), format!("//{bare}")];
    let mut same = true;
    for s in &spellings {
        let fd = raw_open(s, libc::O_RDONLY, 0)?;
        same &= fstat(fd.as_raw_fd())?.st_ino == own;
    }
    Ok(if same {
        "a name: `x`, `/x` and `//x` open one object (one inode)".to_owned()
    } else {
        "a name: `x`, `/x` and `//x` open different objects".to_owned()
    })
}

fn where_it_shows(lab: &mut Lab) -> Result<String> {
    let (name, _seg) = make(lab, "where", 4096)?;
    let path = std::path::Path::new("/dev/shm").join(name.bare());
    Ok(if path.is_file() {
        "a file in /dev/shm (`ls -l /dev/shm`); not in `ipcs -m`".to_owned()
    } else {
        format!("not found at {}", path.display())
    })
}

fn odd_size(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "size100", 100)?;
    seg.map()?.write_at(0, b"x")?;
    let st = fstat(seg.as_raw_fd())?;
    Ok(format!(
        "st_size {} (not rounded); {} bytes of memory (st_blocks)",
        st.st_size,
        st.st_blocks * 512
    ))
}

fn size_zero(lab: &mut Lab) -> Result<String> {
    let name = name(lab, "size0")?;
    let fd = raw_create(&name, 0o600)?;
    let size = fstat(fd.as_raw_fd())?.st_size;
    Ok(format!(
        "allowed: shm_open makes st_size {size} until ftruncate (shm refuses 0)"
    ))
}

fn open_larger(lab: &mut Lab) -> Result<String> {
    let (name, _seg) = make(lab, "open", 100)?;
    let opened = Posix.open(&name, Access::ReadOnly)?;
    Ok(format!(
        "shm_open takes no size: fstat says {}; mapping more: SIGBUS on touch",
        opened.size()
    ))
}

fn resize(lab: &mut Lab) -> Result<String> {
    let (_name, mut seg) = make(lab, "resize", 100)?;
    let _map = seg.map()?;
    let mut sizes = vec![fstat(seg.as_raw_fd())?.st_size.to_string()];
    for to in [8192, 50] {
        seg.resize(to)?;
        sizes.push(fstat(seg.as_raw_fd())?.st_size.to_string());
    }
    Ok(format!(
        "ftruncate: {}, while mapped (shrinking drops data)",
        sizes.join(" -> ")
    ))
}

fn limits() -> Result<String> {
    match dev_shm_space() {
        Some((_, 0)) => Ok("/dev/shm: no size limit (tmpfs size=0)".to_owned()),
        Some((free, total)) => Ok(format!(
            "tmpfs /dev/shm: {} free of {} (default: half of RAM)",
            size_or_unlimited(free),
            size_or_unlimited(total)
        )),
        None => bail!("statvfs /dev/shm failed"),
    }
}

fn over_the_limit(lab: &mut Lab) -> Result<String> {
    let Some(size) = beyond_dev_shm() else {
        return Ok("/dev/shm has no size limit to exceed".to_owned());
    };
    let name = name(lab, "over")?;
    let fd = raw_create(&name, 0o600)?;
    let truncated = match ftruncate(fd.as_raw_fd(), size) {
        Ok(()) => "ok (sparse; a touch past the free space: SIGBUS)".to_owned(),
        Err(e) => errno(&e),
    };
    let len = libc::off_t::try_from(size)?;
    // SAFETY: plain system call on a descriptor we own. The size is beyond the file system's
    // total, which tmpfs refuses before allocating anything.
    let rc = unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) };
    let reserved = if rc == 0 {
        "ok".to_owned()
    } else {
        errno_name(Some(rc))
    };
    Ok(format!(
        "{}: ftruncate {truncated}; posix_fallocate {reserved}",
        format_size(size)
    ))
}

fn past_the_end(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "end", 100)?;
    let map = seg.map()?;
    let vma = mapped_len(map.as_ptr()).unwrap_or(page_size());
    let refused = map.read_at(100, &mut [0u8; 1]).is_err();
    Ok(format!(
        "st_size 100, mapping {vma} bytes: 100..{} read 0, beyond: SIGBUS (not touched); shm {} offset 100",
        vma - 1,
        if refused { "refuses" } else { "allows" }
    ))
}

fn open_after_remove(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "reopen", 4096)?;
    let map = seg.map()?;
    map.write_at(0, b"kept")?;
    Posix.unlink(&name)?;
    let open = match Posix.open(&name, Access::ReadOnly) {
        Ok(_) => "open -> still found".to_owned(),
        Err(e) => format!("open -> {}", errno_name(e.raw_os_error())),
    };
    let mut buf = [0u8; 4];
    map.read_at(0, &mut buf)?;
    let kept = if &buf == b"kept" { "keeps" } else { "lost" };
    Ok(format!(
        "{open}, name gone at once; the mapping {kept} its bytes"
    ))
}

fn attach_after_remove(lab: &mut Lab) -> Result<String> {
    let (name, mut seg) = make(lab, "attach", 4096)?;
    seg.unlink()?;
    let by_name = match raw_open(name.as_str(), libc::O_RDONLY, 0) {
        Ok(_) => "open by name: found".to_owned(),
        Err(e) => format!("open by name -> {}", errno(&e)),
    };
    let by_fd = if seg.map().is_ok() { "ok" } else { "fails" };
    Ok(format!(
        "no id: {by_name}; only a holder of the fd can map it (mmap: {by_fd})"
    ))
}

fn attach_count(lab: &mut Lab) -> Result<String> {
    let (name, seg) = make(lab, "nattch", 4096)?;
    let (_a, _b) = (seg.map()?, seg.map()?);
    let counted = Posix.info(&name)?.nattch;
    // By inode: the path a mapping shows is the one the object was made under.
    let inode = fstat(seg.as_raw_fd())?.st_ino.to_string();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let seen = maps
        .lines()
        .filter(|l| l.contains("/dev/shm/") && l.split_whitespace().nth(4) == Some(&inode))
        .count();
    Ok(match counted {
        None => format!("not kept: {seen} mappings found only in /proc/self/maps"),
        Some(n) => format!("{n}"),
    })
}

fn fork(lab: &mut Lab) -> Result<String> {
    let (_name, seg) = make(lab, "fork", 4096)?;
    let map = seg.map()?;
    map.write_at(0, b"parent")?;
    let child = in_child(|| {
        let mut buf = [0u8; 6];
        match map.read_at(0, &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => e.to_string(),
        }
    })?;
    // SAFETY: F_GETFD reads the descriptor's flags; a bad fd is reported as EBADF.
    let flags = cvt(unsafe { libc::fcntl(seg.as_raw_fd(), libc::F_GETFD) })?;
    let cloexec = if flags & libc::FD_CLOEXEC != 0 {
        "FD_CLOEXEC: exec drops it"
    } else {
        "no FD_CLOEXEC"
    };
    Ok(format!(
        "mapping inherited (child reads \"{child}\"); the fd has {cloexec}"
    ))
}

fn survives_creator(lab: &mut Lab) -> Result<String> {
    let name = name(lab, "survives")?;
    made_by_a_child(&Posix, &name)?;
    Ok(match Posix.open(&name, Access::ReadOnly) {
        Ok(_) => {
            "yes: opened after its creator exited; lives until shm_unlink or reboot".to_owned()
        }
        Err(e) => format!("no: {}", errno_name(e.raw_os_error())),
    })
}

fn umask(lab: &mut Lab) -> Result<String> {
    let (raw_name, shm_name) = (name(lab, "umask-raw")?, name(lab, "umask-shm")?);
    let _mask = Umask::set(0o022);
    let fd = raw_create(&raw_name, 0o666)?;
    let raw = fstat(fd.as_raw_fd())?.st_mode & 0o777;
    let seg = Posix.create(&shm_name, &CreateOptions::new(4096).mode(0o666))?;
    let ours = seg.info()?.mode;
    Ok(format!(
        "0666 -> {raw:04o} (raw shm_open); shm create -> {ours:04o} (fchmod after)"
    ))
}

/// Runs `probe` as user nobody in a child, on a fresh mode-0600 segment of root's.
fn as_other_user(
    lab: &mut Lab,
    label: &str,
    probe: impl FnOnce(&SegmentName) -> String,
) -> Result<String> {
    as_nobody(|| make(lab, label, 4096), |(name, _seg)| probe(name))
}

fn other_user_opens(lab: &mut Lab) -> Result<String> {
    as_other_user(lab, "perm", |name| {
        match raw_open(name.as_str(), libc::O_RDONLY, 0) {
            Ok(_) => "shm_open -> allowed".to_owned(),
            Err(e) => format!("refused at shm_open ({})", errno(&e)),
        }
    })
}

fn other_user_removes(lab: &mut Lab) -> Result<String> {
    as_other_user(lab, "rmperm", |name| {
        let c = CString::new(name.as_str()).unwrap_or_default();
        // SAFETY: `c` is NUL-terminated and outlives the call.
        match cvt(unsafe { libc::shm_unlink(c.as_ptr()) }) {
            Ok(_) => "shm_unlink -> allowed".to_owned(),
            Err(e) => format!("shm_unlink -> {}", errno(&e)),
        }
    })
}

fn namespaces(lab: &mut Lab) -> Result<String> {
    let (name, _seg) = make(lab, "ns", 4096)?;
    in_child(|| {
        let seen = || raw_open(name.as_str(), libc::O_RDONLY, 0).is_ok();
        let word = |b: bool| if b { "still seen" } else { "hidden" };
        if let Err(e) = new_ipc_namespace() {
            return format!("needs root or a user namespace (unshare: {})", errno(&e));
        }
        let in_ipc = seen();
        match own_dev_shm() {
            Ok(()) => format!(
                "new IPC namespace: {}; new mount namespace with its own /dev/shm: {}",
                word(in_ipc),
                word(seen())
            ),
            Err(e) => format!(
                "new IPC namespace: {} (/dev/shm is a mount; own tmpfs: {})",
                word(in_ipc),
                errno(&e)
            ),
        }
    })
}

/// In a child: a private mount namespace with a fresh tmpfs on /dev/shm (nothing propagates
/// back: the whole tree is made private first).
fn own_dev_shm() -> io::Result<()> {
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let (root, shm, tmpfs, opts) = (c("/"), c("/dev/shm"), c("tmpfs"), c("size=1m"));
    // SAFETY: unshare changes only this (child) process's namespaces; the mount calls take
    // NUL-terminated strings that outlive them, and act in that new namespace only (after the
    // recursive MS_PRIVATE, which must succeed before anything is mounted).
    unsafe {
        cvt(libc::unshare(libc::CLONE_NEWNS))?;
        cvt(libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        cvt(libc::mount(
            tmpfs.as_ptr(),
            shm.as_ptr(),
            tmpfs.as_ptr(),
            0,
            opts.as_ptr().cast(),
        ))?;
    }
    Ok(())
}

fn huge_pages(lab: &mut Lab) -> Result<String> {
    const HUGE: usize = 2 << 20;
    let name = name(lab, "huge")?;
    let seg = Posix.create(&name, &CreateOptions::new(HUGE).reserve(false))?;
    // SAFETY: a new shared mapping at an address the kernel picks; unmapped right below when
    // it succeeds. Nothing is touched.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            HUGE,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_HUGETLB,
            seg.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Ok(format!(
            "mmap(MAP_HUGETLB) of a shm_open fd -> {}",
            errno(&e)
        ));
    }
    // SAFETY: `addr` is the mapping of HUGE bytes made above, unmapped once.
    unsafe { libc::munmap(addr, HUGE) };
    Ok("mmap(MAP_HUGETLB) of a shm_open fd -> ok".to_owned())
}
