//! The POSIX backend: `shm_open`, `ftruncate`, `posix_fallocate`, `fstat`, `mmap`, `shm_unlink`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_core::kit::{self, Identity, Owned};
use shm_core::{
    Access, Backend, Capabilities, Context, CreateOptions, Error, Mapping, Op, Owner, Result,
    Segment, SegmentInfo, SegmentName, Space,
};

const BACKEND: &str = "posix";

/// Where glibc keeps POSIX shared memory objects on Linux.
#[cfg(target_os = "linux")]
pub(crate) const SHM_DIR: &str = "/dev/shm";

fn ctx(name: &SegmentName, op: Op) -> Context {
    Context::new(BACKEND, name, op)
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn c_name(name: &SegmentName) -> CString {
    // SegmentName has no NUL byte: checked when it was parsed.
    CString::new(name.as_str()).unwrap_or_default()
}

/// The POSIX shared memory backend (`shm_open`).
#[doc(alias = "shm_open")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Posix;

impl Posix {
    /// The backend. It holds no state: every call goes to the kernel.
    pub fn new() -> Self {
        Posix
    }
}

/// A POSIX segment: an open file descriptor of the object. Dropping a created handle unlinks the
/// name (unless kept), then closes the descriptor once no mapping needs it.
#[derive(Debug)]
pub struct PosixSegment {
    size: usize,
    access: Access,
    object: Owned<PosixObject>,
}

/// What a handle knows of its object: the name and an open descriptor, which tell (same device
/// and inode) whether the name still stands for it.
#[derive(Debug)]
struct PosixObject {
    name: SegmentName,
    fd: Arc<OwnedFd>,
}

impl Identity for PosixObject {
    fn check_ours(&self, op: Op) -> Result<()> {
        // If the name now stands for another object (someone removed ours and made a new one,
        // or replaced it), that one is left alone.
        if still_named(&self.name, self.fd.as_raw_fd()) {
            return Ok(());
        }
        Err(Error::Stale {
            ctx: ctx(&self.name, op),
            detail: "this handle's segment was already removed; the name is gone or now \
                     stands for another segment"
                .to_owned(),
        })
    }

    fn remove(&self) -> Result<()> {
        shm_unlink(&self.name).map_err(|e| os_error(&self.name, Op::Unlink, e))
    }
}

/// Calls `shm_open`, retrying on EINTR.
#[allow(clippy::unnecessary_cast)] // mode_t is u32 on Linux, u16 elsewhere
fn shm_open(name: &SegmentName, oflag: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let cname = c_name(name);
    loop {
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
        let rc = unsafe { libc::shm_open(cname.as_ptr(), oflag, mode as libc::c_uint) };
        match cvt(rc) {
            // SAFETY: shm_open returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn shm_unlink(name: &SegmentName) -> io::Result<()> {
    let cname = c_name(name);
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    cvt(unsafe { libc::shm_unlink(cname.as_ptr()) }).map(drop)
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; a bad fd is reported as EBADF.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// How long open waits for a creator to size a new object (see [`sized_stat`]).
const SIZE_WAIT: Duration = Duration::from_millis(100);

/// `fstat`, waiting up to [`SIZE_WAIT`] while the size is 0. Between a creator's `shm_open` and
/// its `ftruncate` (a few microseconds) the object exists with size 0; an opener that comes in
/// then waits for the size instead of failing to map. A size that stays 0 is reported as is.
fn sized_stat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = fstat(fd)?;
    let start = Instant::now();
    let mut nap = Duration::from_micros(5);
    while st.st_size == 0 && start.elapsed() < SIZE_WAIT {
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(1));
        st = fstat(fd)?;
    }
    Ok(st)
}

#[allow(clippy::unnecessary_cast)] // stat field types differ between platforms
fn info_from_stat(name: &SegmentName, st: &libc::stat) -> SegmentInfo {
    let mut info = SegmentInfo::new(BACKEND);
    info.name = Some(name.as_str().to_owned());
    info.size = st.st_size.max(0) as u64;
    info.mode = st.st_mode as u32 & 0o7777;
    info.uid = st.st_uid;
    info.gid = st.st_gid;
    info.mtime = Some(st.st_mtime as i64);
    info.ctime = Some(st.st_ctime as i64);
    info
}

/// Owner and mode, for a permission error's message, where they can be read.
fn owner_and_mode(name: &SegmentName) -> Option<Owner> {
    let st = lstat_name(name).ok()?;
    Some(Owner {
        uid: st.st_uid,
        mode: st.st_mode as u32 & 0o7777,
    })
}

/// `lstat` of the object's file, never following a link.
#[cfg(target_os = "linux")]
fn lstat_name(name: &SegmentName) -> io::Result<libc::stat> {
    let path = CString::new(format!("{SHM_DIR}/{}", name.bare())).unwrap_or_default();
    // SAFETY: an all-zero stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` a valid out-pointer.
    cvt(unsafe { libc::lstat(path.as_ptr(), &mut st) })?;
    Ok(st)
}

/// Elsewhere the objects have no path: open read-only and `fstat`.
#[cfg(not(target_os = "linux"))]
fn lstat_name(name: &SegmentName) -> io::Result<libc::stat> {
    let fd = shm_open(name, libc::O_RDONLY, 0)?;
    fstat(fd.as_raw_fd())
}

/// What a file of mode `mode` is, where it is not a regular file (a shared memory object).
fn not_regular(mode: libc::mode_t) -> Option<&'static str> {
    match mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFLNK => Some("a symbolic link"),
        libc::S_IFCHR | libc::S_IFBLK => Some("a device"),
        _ => Some("not a regular file"),
    }
}

/// glibc keeps named semaphores (`sem_open`) as `/dev/shm/sem.NAME`: such names are not
/// segments, and this backend never opens, removes or reports them as if they were.
fn refuse_semaphore(name: &SegmentName, op: Op) -> Result<()> {
    if name.bare().starts_with("sem.") {
        return Err(Error::NotSegment {
            ctx: ctx(name, op),
            what: "names beginning with sem. are glibc's POSIX named semaphores",
        });
    }
    Ok(())
}

/// Refuses what is not a regular file, with the error that says what it is.
fn check_regular(name: &SegmentName, op: Op, st: &libc::stat) -> Result<()> {
    match not_regular(st.st_mode) {
        Some("a symbolic link") => Err(Error::Symlink {
            ctx: ctx(name, op),
            source: None,
        }),
        Some(what) => Err(Error::NotSegment {
            ctx: ctx(name, op),
            what,
        }),
        None => Ok(()),
    }
}

/// Whether `name` still stands for the object open as `fd`: same device and inode. A name that
/// is gone, or that now names another object (removed and made again, or replaced), is not.
fn still_named(name: &SegmentName, fd: RawFd) -> bool {
    match (lstat_name(name), fstat(fd)) {
        (Ok(by_name), Ok(ours)) => by_name.st_dev == ours.st_dev && by_name.st_ino == ours.st_ino,
        _ => false,
    }
}

fn is_symlink(name: &SegmentName) -> bool {
    lstat_name(name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Turns an OS error into the error that says most: permission errors name owner and mode,
/// `EEXIST` over a planted symlink is a symlink error.
fn os_error(name: &SegmentName, op: Op, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            ctx: ctx(name, op),
            owner: owner_and_mode(name),
            source: Some(e),
        },
        Some(libc::EEXIST) if is_symlink(name) => Error::Symlink {
            ctx: ctx(name, op),
            source: Some(e),
        },
        Some(libc::EISDIR) => Error::NotSegment {
            ctx: ctx(name, op),
            what: "a directory",
        },
        // open(2) of a socket
        Some(libc::ENXIO) => Error::NotSegment {
            ctx: ctx(name, op),
            what: "a socket or a device without a driver",
        },
        Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) if op != Op::Resize => Error::InvalidName {
            name: name.as_str().to_owned(),
            reason: "the C library refused it",
        },
        _ => Error::from_os(ctx(name, op), e),
    }
}

/// What was asked, and the free and total bytes of the file system that holds the objects,
/// for a "no space" error.
fn space(size: usize) -> Space {
    let mut space = Space {
        asked: Some(size as u64),
        free: None,
    };
    #[cfg(target_os = "linux")]
    {
        let path = CString::new(SHM_DIR).unwrap_or_default();
        // SAFETY: an all-zero statvfs is a valid value of a plain C struct.
        let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `vfs` a valid out-pointer.
        if unsafe { libc::statvfs(path.as_ptr(), &mut vfs) } == 0 {
            let free = vfs.f_bavail as u64 * vfs.f_frsize as u64;
            let total = vfs.f_blocks as u64 * vfs.f_frsize as u64;
            space.free = Some((free, total));
        }
    }
    space
}

/// Reserves `len` bytes from `offset` (growing the object to `offset + len` if it is smaller),
/// so that touching them can never raise SIGBUS. `Ok(false)` where the file system cannot
/// reserve: the object is then left as it was.
fn reserve(fd: RawFd, offset: usize, len: usize) -> io::Result<bool> {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "android"))] {
            loop {
                // SAFETY: plain system call on a descriptor we own; it returns the error number.
                let rc = unsafe {
                    libc::posix_fallocate(fd, offset as libc::off_t, len as libc::off_t)
                };
                match rc {
                    0 => return Ok(true),
                    libc::EINTR => continue,
                    libc::EOPNOTSUPP => return Ok(false),
                    e => return Err(io::Error::from_raw_os_error(e)),
                }
            }
        } else {
            let _ = (fd, offset, len);
            Ok(false)
        }
    }
}

/// The error of a failed [`reserve`] to `size` bytes: "no space" when the memory is not there.
fn reserve_error(name: &SegmentName, op: Op, size: usize, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::ENOMEM) => Error::NoSpace {
            ctx: ctx(name, op),
            space: space(size),
            source: Some(e),
        },
        _ => os_error(name, op, e),
    }
}

fn check_size(name: &SegmentName, op: Op, size: usize) -> Result<()> {
    let reason = if size == 0 {
        "a segment needs at least one byte"
    } else if size > isize::MAX as usize || i64::try_from(size).is_err() {
        "larger than this process can address"
    } else {
        return Ok(());
    };
    Err(Error::InvalidSize {
        ctx: ctx(name, op),
        size: size as u64,
        reason: reason.to_owned(),
    })
}

impl PosixSegment {
    /// The object's file descriptor (closed on exec).
    pub fn as_raw_fd(&self) -> RawFd {
        self.object.identity().fd.as_raw_fd()
    }

    fn seg_name(&self) -> &SegmentName {
        &self.object.identity().name
    }

    /// Sizes, sets the mode and reserves a freshly created object.
    fn set_up(fd: RawFd, name: &SegmentName, opts: &CreateOptions) -> Result<()> {
        // The size first, so that the moment in which an opener can see size 0 is short.
        // Reserving sets the size too (posix_fallocate extends the object), in one call.
        let reserved = if opts.reserve {
            reserve(fd, 0, opts.size).map_err(|e| reserve_error(name, Op::Create, opts.size, e))?
        } else {
            false
        };
        if !reserved {
            // SAFETY: plain system call on a descriptor we own; the size fits off_t (checked).
            cvt(unsafe { libc::ftruncate(fd, opts.size as libc::off_t) }).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::EFBIG) | Some(libc::EINVAL) => Error::InvalidSize {
                        ctx: ctx(name, Op::Create),
                        size: opts.size as u64,
                        reason: format!("the kernel refused it ({e})"),
                    },
                    _ => os_error(name, Op::Create, e),
                }
            })?;
        }
        // shm_open applied the umask; the mode is set exactly as asked.
        // SAFETY: plain system call on a descriptor we own.
        // The mode was validated: permission bits only, never setuid, setgid or sticky.
        cvt(unsafe { libc::fchmod(fd, (opts.mode & shm_core::PERMISSION_BITS) as libc::mode_t) })
            .map_err(|e| os_error(name, Op::Create, e))?;
        Ok(())
    }
}

/// Removes the regular file that stands at `name` for a replacing create; nothing there is fine.
fn remove_by_name(name: &SegmentName, op: Op) -> Result<()> {
    match lstat_name(name) {
        Ok(st) => check_regular(name, op, &st)?,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(os_error(name, op, e)),
    }
    match shm_unlink(name) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(os_error(name, op, e)),
        _ => Ok(()),
    }
}

impl Backend for Posix {
    type Segment = PosixSegment;

    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.resizable = true;
        caps.umask_applies = true;
        caps.keeps_names = true;
        caps
    }

    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<PosixSegment> {
        opts.validate(BACKEND, name.as_str())?;
        check_size(name, Op::Create, opts.size)?;
        refuse_semaphore(name, Op::Create)?;
        let fd = kit::create_exclusive(
            opts.replace,
            || remove_by_name(name, Op::Create),
            || shm_open(name, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600),
            |e| os_error(name, Op::Create, e),
        )?;
        let raw = fd.as_raw_fd();
        // Owned from here: a failed set-up drops it, which takes the object back (only if the
        // name is still ours: a replacing racer may have made it its own), so a failed create
        // leaves nothing.
        let segment = PosixSegment {
            size: opts.size,
            access: opts.access,
            object: Owned::created(PosixObject {
                name: name.clone(),
                fd: Arc::new(fd),
            }),
        };
        PosixSegment::set_up(raw, name, opts)?;
        Ok(segment)
    }

    fn open(&self, name: &SegmentName, access: Access) -> Result<PosixSegment> {
        refuse_semaphore(name, Op::Open)?;
        let oflag = if access.is_writable() {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        // O_NONBLOCK: a FIFO planted at the name must not block the open; what is not a
        // regular file is refused right after. (On a regular file the flag changes nothing.)
        let fd =
            shm_open(name, oflag | libc::O_NONBLOCK, 0).map_err(|e| os_error(name, Op::Open, e))?;
        let st = fstat(fd.as_raw_fd()).map_err(|e| os_error(name, Op::Open, e))?;
        check_regular(name, Op::Open, &st)?;
        let st = sized_stat(fd.as_raw_fd()).map_err(|e| os_error(name, Op::Open, e))?;
        Ok(PosixSegment {
            size: usize::try_from(st.st_size).unwrap_or(usize::MAX),
            access,
            object: Owned::opened(PosixObject {
                name: name.clone(),
                fd: Arc::new(fd),
            }),
        })
    }

    fn unlink(&self, name: &SegmentName) -> Result<()> {
        refuse_semaphore(name, Op::Unlink)?;
        let st = lstat_name(name).map_err(|e| os_error(name, Op::Unlink, e))?;
        // A planted symlink is removed (the link, never its target): that is how a user gets
        // rid of one. Anything else that is not a regular file is not ours to remove.
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            check_regular(name, Op::Unlink, &st)?;
        }
        shm_unlink(name).map_err(|e| os_error(name, Op::Unlink, e))
    }

    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        refuse_semaphore(name, Op::Info)?;
        let st = lstat_name(name).map_err(|e| os_error(name, Op::Info, e))?;
        check_regular(name, Op::Info, &st)?;
        Ok(info_from_stat(name, &st))
    }

    fn list(&self) -> Result<Vec<SegmentInfo>> {
        list()
    }
}

/// Every regular file in /dev/shm: the segments, and glibc's named semaphores (`sem.*`) marked
/// as such. A name that is not UTF-8 is shown with U+FFFD for its invalid bytes.
#[cfg(target_os = "linux")]
fn list() -> Result<Vec<SegmentInfo>> {
    use std::os::unix::fs::MetadataExt;
    let fail = |e: io::Error| Error::from_os(Context::new(BACKEND, SHM_DIR, Op::List), e);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_file() {
            continue;
        }
        let file_name = entry.file_name();
        let bare = file_name.to_string_lossy();
        // The object may vanish between readdir and stat: skip it then.
        let Ok(md) = entry.metadata() else { continue };
        let mut info = SegmentInfo::new(BACKEND);
        info.name = Some(format!("/{bare}"));
        info.semaphore = bare.starts_with("sem.");
        info.size = md.size();
        info.mode = md.mode() & 0o7777;
        info.uid = md.uid();
        info.gid = md.gid();
        info.mtime = Some(md.mtime());
        info.ctime = Some(md.ctime());
        out.push(info);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Elsewhere there is no directory to read.
#[cfg(not(target_os = "linux"))]
fn list() -> Result<Vec<SegmentInfo>> {
    Err(Error::Unsupported {
        ctx: Context::new(BACKEND, "*", Op::List),
        what: "listing POSIX segments needs /dev/shm (Linux)",
    })
}

impl Segment for PosixSegment {
    fn name(&self) -> &SegmentName {
        self.seg_name()
    }

    fn size(&self) -> usize {
        self.size
    }

    fn access(&self) -> Access {
        self.access
    }

    fn map(&self) -> Result<Mapping> {
        let name = self.seg_name().clone();
        kit::map_fd(
            &self.object.identity().fd,
            self.access.is_writable(),
            BACKEND,
            self.seg_name(),
            Box::new(move |op, e| os_error(&name, op, e)),
        )
    }

    fn info(&self) -> Result<SegmentInfo> {
        let st = fstat(self.as_raw_fd()).map_err(|e| os_error(self.seg_name(), Op::Info, e))?;
        Ok(info_from_stat(self.seg_name(), &st))
    }

    fn is_owner(&self) -> bool {
        self.object.is_owner()
    }

    fn keep(&mut self) {
        self.object.keep();
    }

    fn unlink(&mut self) -> Result<()> {
        self.object.unlink()
    }

    fn resize(&mut self, size: usize) -> Result<()> {
        let name = self.seg_name();
        check_size(name, Op::Resize, size)?;
        if !self.access.is_writable() {
            return Err(Error::ReadOnly {
                ctx: ctx(name, Op::Resize),
            });
        }
        let fd = self.as_raw_fd();
        if size > self.size {
            // Reserve first (it grows the object too): when the memory is not there, the
            // object is left as it was, not grown sparse (SIGBUS on touch). Where the file
            // system cannot reserve, the ftruncate below grows it alone.
            reserve(fd, self.size, size - self.size)
                .map_err(|e| reserve_error(name, Op::Resize, size, e))?;
        }
        // The exact size: shrinks, and grows where reserving could not.
        // SAFETY: plain system call on a descriptor we own; the size fits off_t (checked).
        cvt(unsafe { libc::ftruncate(fd, size as libc::off_t) })
            .map_err(|e| os_error(name, Op::Resize, e))?;
        self.size = size;
        Ok(())
    }
}
