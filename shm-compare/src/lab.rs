//! What every probe works with: the behaviours ([`Probe`]), the [`Lab`] that
//! names and removes what a probe makes, and the system-call helpers both backends' probes use
//! (errno names, a forked child, another user, a new IPC namespace, the umask).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Context as _, Result, bail};
use shm_core::{Backend, CreateOptions, Segment, SegmentName};

use shm_units::format_size;

/// A behaviour where POSIX and System V differ; each backend module probes every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// What names a segment: a path in /dev/shm, or a key and an id.
    Identity,
    /// Where the system shows it: /dev/shm, or /proc/sysvipc/shm and `ipcs -m`.
    WhereItShows,
    /// A size that is not a page multiple (100 bytes): what is reported, what is mapped.
    OddSize,
    /// A segment of size 0.
    SizeZero,
    /// Opening asks for more than the segment's size.
    OpenLarger,
    /// Growing and shrinking a segment that exists.
    Resize,
    /// The system's limits on size and count.
    Limits,
    /// Asking for more than /dev/shm (or the System V limits) holds.
    OverTheLimit,
    /// Memory past the end of the size, within the last mapped page.
    PastTheEnd,
    /// Opening a name after it was removed while still mapped.
    OpenAfterRemove,
    /// Attaching a removed segment that is still mapped somewhere.
    AttachAfterRemove,
    /// Whether the system counts attachments.
    AttachCount,
    /// What a forked child inherits.
    Fork,
    /// Whether a segment outlives the process that made it.
    SurvivesCreator,
    /// Whether the umask applies to the mode asked for.
    Umask,
    /// Another user opens a 0600 segment.
    OtherUserOpens,
    /// Another user removes a segment.
    OtherUserRemoves,
    /// Which namespace isolates segments.
    Namespaces,
    /// Huge pages behind a segment.
    HugePages,
}

/// A backend module's `probe`: the dispatch from each [`Probe`] to the function of that name in
/// the module that invokes it (`Probe::OddSize` to `odd_size(lab)`; `limits()` takes no lab),
/// so that both backends probe every behaviour, and a new one builds only once each has its
/// function.
macro_rules! probes {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        pub(crate) fn probe(p: Probe, lab: &mut Lab) -> Result<String> {
            match p {
                Probe::Identity => identity(lab),
                Probe::WhereItShows => where_it_shows(lab),
                Probe::OddSize => odd_size(lab),
                Probe::SizeZero => size_zero(lab),
                Probe::OpenLarger => open_larger(lab),
                Probe::Resize => resize(lab),
                Probe::Limits => limits(),
                Probe::OverTheLimit => over_the_limit(lab),
                Probe::PastTheEnd => past_the_end(lab),
                Probe::OpenAfterRemove => open_after_remove(lab),
                Probe::AttachAfterRemove => attach_after_remove(lab),
                Probe::AttachCount => attach_count(lab),
                Probe::Fork => fork(lab),
                Probe::SurvivesCreator => survives_creator(lab),
                Probe::Umask => umask(lab),
                Probe::OtherUserOpens => other_user_opens(lab),
                Probe::OtherUserRemoves => other_user_removes(lab),
                Probe::Namespaces => namespaces(lab),
                Probe::HugePages => huge_pages(lab),
            }
        }
    };
}
pub(crate) use probes;

/// Where probes make their segments: unique names, and everything made undone on
/// [`Lab::clean`] and on drop (also after an error or a panic in a probe).
pub struct Lab {
    count: usize,
    undo: Vec<Box<dyn FnOnce()>>,
}

impl Lab {
    /// A lab with nothing made yet.
    pub fn new() -> Self {
        Self {
            count: 0,
            undo: Vec::new(),
        }
    }

    /// A fresh name for one probe: `/shm-compare-PID-N-LABEL`. The caller registers its
    /// removal with [`Lab::on_clean`] before making anything under it.
    pub(crate) fn name(&mut self, label: &str) -> Result<SegmentName> {
        self.count += 1;
        let name = format!("/shm-compare-{}-{}-{label}", std::process::id(), self.count);
        Ok(SegmentName::new(&name)?)
    }

    /// Runs `undo` when the row is done (errors are the closure's to ignore).
    pub(crate) fn on_clean(&mut self, undo: impl FnOnce() + 'static) {
        self.undo.push(Box::new(undo));
    }

    /// Undoes everything, newest first.
    pub fn clean(&mut self) {
        while let Some(undo) = self.undo.pop() {
            undo();
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.clean();
    }
}

/// The symbolic name of an OS error (`ENOENT`), or its number.
pub(crate) fn errno(e: &io::Error) -> String {
    errno_name(e.raw_os_error())
}

/// The symbolic name of an errno value.
pub(crate) fn errno_name(code: Option<i32>) -> String {
    let name = match code {
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EIDRM) => "EIDRM",
        Some(libc::EFBIG) => "EFBIG",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(n) => return format!("errno {n}"),
        None => return "an error without errno".to_owned(),
    };
    name.to_owned()
}

/// Result of a system call: -1 is the thread's errno.
pub(crate) fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// True when running as root (who may switch users and make namespaces).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The cell of a probe that needs root when not root.
pub(crate) const NEEDS_ROOT_USER: &str = "needs root (to act as another user): not probed";

/// The memory page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// Free and total bytes of the tmpfs at /dev/shm; `None` where statvfs fails.
pub(crate) fn dev_shm_space() -> Option<(u64, u64)> {
    let path = CString::new("/dev/shm").ok()?;
    // SAFETY: an all-zero statvfs is a valid value of a plain C struct.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `vfs` a valid out-pointer.
    cvt(unsafe { libc::statvfs(path.as_ptr(), &mut vfs) }).ok()?;
    let frsize = vfs.f_frsize as u64;
    Some((vfs.f_bavail as u64 * frsize, vfs.f_blocks as u64 * frsize))
}

/// A size for "more than /dev/shm holds": its total plus 1 GiB (None when it has no limit).
pub(crate) fn beyond_dev_shm() -> Option<u64> {
    match dev_shm_space() {
        Some((_, total)) if total > 0 => Some(total + (1 << 30)),
        _ => None,
    }
}

/// Length of the mapping of this process that contains `addr`, from /proc/self/maps (the kernel
/// rounds every mapping to whole pages).
pub(crate) fn mapped_len(addr: *const u8) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let addr = addr as usize;
    maps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start <= addr && addr < end).then_some(end - start)
    })
}

/// Formats a size for a cell: `4.0 KiB`, or `4096 B` below 1 KiB... and "no limit" for the
/// kernel's "unlimited" defaults (near 2^64).
pub(crate) fn size_or_unlimited(bytes: u64) -> String {
    if bytes >= 1 << 62 {
        "no limit".to_owned()
    } else {
        format_size(bytes)
    }
}

/// Runs `child` in a forked process and returns the text it produced. The child leaves with
/// `_exit`, running no destructor of this process's state (so the [`Lab`] it inherited undoes
/// nothing there).
pub(crate) fn in_child(child: impl FnOnce() -> String) -> Result<String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }).context("pipe2")?;
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    io::stdout().flush().ok();
    // SAFETY: this program is single-threaded when it compares; the child only makes system
    // calls and small allocations, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        drop(read_end);
        let text = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child))
            .unwrap_or_else(|_| "the probe's child panicked".to_owned());
        let mut pipe = File::from(write_end);
        let ok = pipe.write_all(text.as_bytes()).is_ok();
        // SAFETY: _exit ends the child at once, running no destructor of the parent's state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(write_end);
    let mut text = String::new();
    let read = File::from(read_end).read_to_string(&mut text);
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    read.context("reading the probe's child")?;
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("the probe's child (pid {pid}) failed (wait status {status:#x})");
    }
    Ok(text)
}

/// Makes `name` (4 KiB) through `backend` in a child process, which keeps it and exits: a
/// segment that outlives its creator.
pub(crate) fn made_by_a_child<B: Backend>(backend: &B, name: &SegmentName) -> Result<()> {
    let child = in_child(|| match backend.create(name, &CreateOptions::new(4096)) {
        Ok(mut seg) => {
            seg.keep();
            "made".to_owned()
        }
        Err(e) => e.to_string(),
    })?;
    if child != "made" {
        bail!("the child could not create: {child}");
    }
    Ok(())
}

/// Runs `probe` as user nobody in a child, on what `make` made (as root); without root, says
/// so and makes nothing.
pub(crate) fn as_nobody<T>(
    make: impl FnOnce() -> Result<T>,
    probe: impl FnOnce(&T) -> String,
) -> Result<String> {
    if !is_root() {
        return Ok(NEEDS_ROOT_USER.to_owned());
    }
    let made = make()?;
    in_child(|| match become_nobody() {
        Ok(()) => probe(&made),
        Err(e) => format!("could not become nobody: {}", errno(&e)),
    })
}

/// In a child of [`in_child`]: becomes user and group `nobody` (65534), as root can.
pub(crate) fn become_nobody() -> io::Result<()> {
    const NOBODY: u32 = 65534;
    // SAFETY: plain system calls on this (child) process's credentials; setgroups reads zero
    // entries from a null list.
    unsafe {
        cvt(libc::setgroups(0, std::ptr::null()))?;
        cvt(libc::setgid(NOBODY))?;
        cvt(libc::setuid(NOBODY))?;
    }
    Ok(())
}

/// In a child of [`in_child`]: moves into a new IPC namespace (`unshare -i`); without the
/// privilege for that, into a new user namespace with it (`unshare -U -i`), where the kernel
/// allows unprivileged user namespaces.
pub(crate) fn new_ipc_namespace() -> io::Result<()> {
    // SAFETY: unshare changes only this (child) process's namespaces.
    match cvt(unsafe { libc::unshare(libc::CLONE_NEWIPC) }) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // SAFETY: as above.
            cvt(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWIPC) }).map(drop)
        }
        other => other.map(drop),
    }
}

/// Sets the umask for as long as the guard lives.
pub(crate) struct Umask(libc::mode_t);

impl Umask {
    /// Sets `mask`, keeping the old one to restore.
    pub(crate) fn set(mask: libc::mode_t) -> Self {
        // SAFETY: umask cannot fail; this program is single-threaded when it compares.
        Self(unsafe { libc::umask(mask) })
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as in `set`.
        unsafe { libc::umask(self.0) };
    }
}
