//! `shm compare`: POSIX and System V side by side, observed live.
//!
//! Each behaviour where the two kernels' models differ is probed on both, in segments of its own
//! (`/shm-compare-PID-N-LABEL`), and the observed result goes into a table. Some probes make
//! raw system calls (`shm_open`, `shmget`) to show what the kernel does where the backends
//! smooth it over (the umask, size 0). Nothing ever touches memory past the end of a segment:
//! what would fault there is told from the sizes the kernel reports. Everything a probe makes is
//! removed by [`Lab`] after its row, also when the probe fails.

#[cfg(feature = "posix")]
mod posix;
#[cfg(feature = "sysv")]
mod sysv;

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use shm_core::SegmentName;

use crate::Global;
use crate::manage::show::{Style, render_table};
use crate::units::format_size;

/// Arguments of `shm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Print a JSON array of {"behaviour", "posix", "sysv"} objects.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print one wide Markdown table (a row per behaviour) instead of a block per behaviour
    /// that fits the terminal.
    #[arg(long)]
    markdown: bool,
}

/// A behaviour where POSIX and System V differ; each backend module probes every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Identity,
    WhereItShows,
    OddSize,
    SizeZero,
    OpenLarger,
    Resize,
    Limits,
    OverTheLimit,
    PastTheEnd,
    OpenAfterRemove,
    AttachAfterRemove,
    AttachCount,
    Fork,
    SurvivesCreator,
    Umask,
    OtherUserOpens,
    OtherUserRemoves,
    Namespaces,
    HugePages,
}

/// Every behaviour, in table order, with its label.
const BEHAVIOURS: [(Probe, &str); 19] = [
    (Probe::Identity, "identity"),
    (Probe::WhereItShows, "where it shows"),
    (Probe::OddSize, "size 100 (not a page multiple)"),
    (Probe::SizeZero, "size 0"),
    (Probe::OpenLarger, "open asking for more than the size"),
    (Probe::Resize, "resize"),
    (Probe::Limits, "limits"),
    (Probe::OverTheLimit, "more than /dev/shm holds"),
    (Probe::PastTheEnd, "past the end of the size"),
    (Probe::OpenAfterRemove, "open after remove"),
    (Probe::AttachAfterRemove, "attach after remove"),
    (Probe::AttachCount, "attach count"),
    (Probe::Fork, "fork"),
    (Probe::SurvivesCreator, "survives creator exit"),
    (Probe::Umask, "umask 022 on mode 0666"),
    (Probe::OtherUserOpens, "another user opens a 0600 one"),
    (Probe::OtherUserRemoves, "another user removes it"),
    (Probe::Namespaces, "namespaces"),
    (Probe::HugePages, "huge pages"),
];

/// Where probes make their segments: unique names, and everything made undone on
/// [`Lab::clean`] and on drop (also after an error or a panic in a probe).
pub(crate) struct Lab {
    count: usize,
    undo: Vec<Box<dyn FnOnce()>>,
}

impl Lab {
    fn new() -> Self {
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
    fn clean(&mut self) {
        while let Some(undo) = self.undo.pop() {
            undo();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.clean();
    }
}

/// How a backend's cell is read from a row.
type Column = fn(&Row) -> Option<&String>;

/// One row of the table.
struct Row {
    behaviour: &'static str,
    posix: Option<String>,
    sysv: Option<String>,
}

/// A probe's result as a cell: the observation, or the error that stopped it.
fn cell(result: Result<String>) -> String {
    match result {
        Ok(s) => s,
        Err(e) => format!("probe failed: {}", crate::one_line(&e)),
    }
}

#[cfg(feature = "posix")]
fn probe_posix(p: Probe, lab: &mut Lab) -> Result<String> {
    posix::probe(p, lab)
}
#[cfg(not(feature = "posix"))]
fn probe_posix(_p: Probe, _lab: &mut Lab) -> Result<String> {
    Ok("posix backend not compiled in".to_owned())
}

#[cfg(feature = "sysv")]
fn probe_sysv(p: Probe, lab: &mut Lab) -> Result<String> {
    sysv::probe(p, lab)
}
#[cfg(not(feature = "sysv"))]
fn probe_sysv(_p: Probe, _lab: &mut Lab) -> Result<String> {
    Ok("sysv backend not compiled in".to_owned())
}

/// Runs `shm compare`. With `--backend`, only that backend is probed and shown.
pub fn run(g: &Global, a: &CompareArgs) -> Result<()> {
    let (posix_on, sysv_on) = match g.backend.map(|k| k.as_str()) {
        Some("posix") => (true, false),
        Some(_) => (false, true),
        None => (true, true),
    };
    let mut lab = Lab::new();
    let mut rows = Vec::new();
    for (probe, behaviour) in BEHAVIOURS {
        // Each probe and its cleanup under the lock: a signal waits until the row's segments
        // (also those a probe's child made) are gone, then ends the command.
        let armed = crate::shutdown::lock();
        if crate::shutdown::pending() {
            bail!("interrupted");
        }
        let posix = posix_on.then(|| cell(probe_posix(probe, &mut lab)));
        lab.clean();
        let sysv = sysv_on.then(|| cell(probe_sysv(probe, &mut lab)));
        lab.clean();
        drop(armed);
        rows.push(Row {
            behaviour,
            posix,
            sysv,
        });
    }
    drop(lab);
    let columns: Vec<(&str, Column)> = [
        ("posix", (|r: &Row| r.posix.as_ref()) as Column),
        ("sysv", |r: &Row| r.sysv.as_ref()),
    ]
    .into_iter()
    .filter(|(name, _)| if *name == "posix" { posix_on } else { sysv_on })
    .collect();
    if a.json {
        let array: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                o.insert("behaviour".into(), json!(r.behaviour));
                for (name, get) in &columns {
                    o.insert((*name).into(), json!(get(r)));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        crate::out::line(format_args!("{}", serde_json::to_string_pretty(&array)?))?;
    } else if a.markdown {
        let mut headers = vec!["behaviour"];
        headers.extend(columns.iter().map(|(name, _)| *name));
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut row = vec![r.behaviour.to_owned()];
                row.extend(
                    columns
                        .iter()
                        .map(|(_, get)| get(r).cloned().unwrap_or_default()),
                );
                row
            })
            .collect();
        crate::out::text(&render_table(&headers, &cells, Style::Markdown))?;
    } else {
        let width = terminal_width();
        let mut text = String::new();
        for r in &rows {
            text.push_str(r.behaviour);
            text.push('\n');
            for (name, get) in &columns {
                let value = get(r).map(String::as_str).unwrap_or_default();
                for (i, line) in wrap(value, width.saturating_sub(9).max(20))
                    .iter()
                    .enumerate()
                {
                    let label = if i == 0 { *name } else { "" };
                    text.push_str(&format!("  {label:<6} {line}\n"));
                }
            }
            text.push('\n');
        }
        crate::out::text(&text)?;
    }
    Ok(())
}

/// The terminal's width: `COLUMNS` when set, else the width of the terminal on stdout, else 80.
fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
    {
        return n;
    }
    // SAFETY: an all-zero winsize is a valid value of a plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to a valid out-pointer; a non-terminal fails.
    if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0
    {
        return usize::from(ws.ws_col);
    }
    80
}

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than the
/// width is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let cut: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(cut);
        }
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
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
