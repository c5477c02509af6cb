//! A third backend, written only against shm-core's public API: segments are files in a
//! directory, mapped with memmap2. It passes the same conformance suite as POSIX and System V,
//! which shows that the contract can be implemented, and embedded, outside this workspace.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};
use shm_core::{
    Access, Backend, Capabilities, Context, CreateOptions, Error, MapBacking, Mapping, Op, Result,
    Segment, SegmentInfo, SegmentName,
};

const BACKEND: &str = "file";

/// Segments as files in one directory, which the backend makes and removes (with everything in
/// it) when dropped.
#[derive(Debug)]
pub struct FileBackend {
    dir: PathBuf,
    owns_dir: bool,
}

impl FileBackend {
    /// A backend over a new private temporary directory.
    pub fn new() -> Self {
        let dir = crate::temp_path("file-backend");
        fs::create_dir_all(&dir).expect("create the backend's directory");
        Self {
            dir,
            owns_dir: true,
        }
    }

    /// A backend over the directory of another one (another process's, for a peer); dropping
    /// it leaves the directory to its owner.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            owns_dir: false,
        }
    }

    /// The directory that holds the segments.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, name: &SegmentName) -> PathBuf {
        self.dir.join(name.bare())
    }
}

impl Default for FileBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FileBackend {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn err(name: &SegmentName, op: Op, e: io::Error) -> Error {
    Error::from_os(Context::new(BACKEND, name.as_str(), op), e)
}

fn info_from(name: &SegmentName, md: &fs::Metadata) -> SegmentInfo {
    let mut info = SegmentInfo::new(BACKEND);
    info.name = Some(name.as_str().to_owned());
    info.size = md.size();
    info.mode = md.mode() & 0o7777;
    info.uid = md.uid();
    info.gid = md.gid();
    info.mtime = Some(md.mtime());
    info.ctime = Some(md.ctime());
    info
}

/// One file-backed segment.
#[derive(Debug)]
pub struct FileSegment {
    name: SegmentName,
    path: PathBuf,
    file: Arc<File>,
    size: usize,
    access: Access,
    owner: bool,
}

impl Backend for FileBackend {
    type Segment = FileSegment;

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

    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<FileSegment> {
        let invalid = |reason: &str| Error::InvalidSize {
            ctx: Context::new(BACKEND, name.as_str(), Op::Create),
            size: opts.size as u64,
            reason: reason.to_owned(),
        };
        // Size 0 and modes beyond the permission bits, as every backend refuses them.
        opts.validate(BACKEND, name.as_str())?;
        if opts.size > isize::MAX as usize {
            return Err(invalid("larger than this process can address"));
        }
        let path = self.path(name);
        if opts.replace {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(err(name, Op::Create, e));
                }
                _ => {}
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| err(name, Op::Create, e))?;
        let set_up = || -> io::Result<()> {
            file.set_permissions(Permissions::from_mode(opts.mode & 0o7777))?;
            file.set_len(opts.size as u64)?;
            if opts.reserve {
                // SAFETY: plain system call on a descriptor we own; it returns the error number.
                let rc =
                    unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, opts.size as libc::off_t) };
                if rc != 0 {
                    return Err(io::Error::from_raw_os_error(rc));
                }
            }
            Ok(())
        };
        if let Err(e) = set_up() {
            let _ = fs::remove_file(&path);
            return Err(match e.raw_os_error() {
                Some(libc::EFBIG) | Some(libc::EINVAL) => invalid("the file system refused it"),
                _ => err(name, Op::Create, e),
            });
        }
        Ok(FileSegment {
            name: name.clone(),
            path,
            file: Arc::new(file),
            size: opts.size,
            access: opts.access,
            owner: true,
        })
    }

    fn open(&self, name: &SegmentName, access: Access) -> Result<FileSegment> {
        let path = self.path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(access.is_writable())
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| err(name, Op::Open, e))?;
        let size = file.metadata().map_err(|e| err(name, Op::Open, e))?.len();
        Ok(FileSegment {
            name: name.clone(),
            path,
            file: Arc::new(file),
            size: usize::try_from(size).unwrap_or(usize::MAX),
            access,
            owner: false,
        })
    }

    fn unlink(&self, name: &SegmentName) -> Result<()> {
        fs::remove_file(self.path(name)).map_err(|e| err(name, Op::Unlink, e))
    }

    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        let md = fs::symlink_metadata(self.path(name)).map_err(|e| err(name, Op::Info, e))?;
        Ok(info_from(name, &md))
    }

    fn list(&self) -> Result<Vec<SegmentInfo>> {
        let ctx = || Context::new(BACKEND, self.dir.display().to_string(), Op::List);
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::from_os(ctx(), e))? {
            let entry = entry.map_err(|e| Error::from_os(ctx(), e))?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| SegmentName::new(n).ok())
            else {
                continue;
            };
            if let Ok(md) = entry.metadata() {
                out.push(info_from(&name, &md));
            }
        }
        Ok(out)
    }
}

/// A mapping of a file segment: memmap2 unmaps on drop; the file answers size checks.
struct FileMap {
    _map: MmapRaw,
    file: Arc<File>,
    name: SegmentName,
}

impl MapBacking for FileMap {
    fn backend(&self) -> &'static str {
        BACKEND
    }
    fn segment(&self) -> &str {
        self.name.as_str()
    }
    fn current_size(&self) -> Result<Option<u64>> {
        let md = self
            .file
            .metadata()
            .map_err(|e| err(&self.name, Op::Access, e))?;
        Ok(Some(md.len()))
    }
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        // A file can be truncated under the mapping: copies go through the descriptor.
        Some(std::os::fd::AsFd::as_fd(&*self.file))
    }
}

impl Segment for FileSegment {
    fn name(&self) -> &SegmentName {
        &self.name
    }

    fn size(&self) -> usize {
        self.size
    }

    fn access(&self) -> Access {
        self.access
    }

    fn map(&self) -> Result<Mapping> {
        // The file's size now: another handle may have truncated it since.
        let size = self
            .file
            .metadata()
            .map_err(|e| err(&self.name, Op::Map, e))?
            .len();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size == 0 {
            return Err(Error::InvalidSize {
                ctx: Context::new(BACKEND, self.name.as_str(), Op::Map),
                size: 0,
                reason: "the segment is empty".to_owned(),
            });
        }
        let mut options = MmapOptions::new();
        options.len(size);
        let map = if self.access.is_writable() {
            options.map_raw(&*self.file)
        } else {
            options.map_raw_read_only(&*self.file)
        }
        .map_err(|e| err(&self.name, Op::Map, e))?;
        let ptr = NonNull::new(map.as_mut_ptr()).expect("mmap never returns null");
        let backing = FileMap {
            _map: map,
            file: Arc::clone(&self.file),
            name: self.name.clone(),
        };
        // SAFETY: memmap2 mapped `size` bytes of the file from offset 0, page-aligned, with this
        // handle's protection, and they stay mapped until `backing` (owner of the MmapRaw) is
        // dropped.
        Ok(unsafe {
            Mapping::from_raw_parts(ptr, size, self.access.is_writable(), Box::new(backing))
        })
    }

    fn info(&self) -> Result<SegmentInfo> {
        let md = self
            .file
            .metadata()
            .map_err(|e| err(&self.name, Op::Info, e))?;
        Ok(info_from(&self.name, &md))
    }

    fn is_owner(&self) -> bool {
        self.owner
    }

    fn keep(&mut self) {
        self.owner = false;
    }

    fn unlink(&mut self) -> Result<()> {
        self.owner = false;
        if !self.still_named() {
            return Err(Error::Stale {
                ctx: Context::new(BACKEND, self.name.as_str(), Op::Unlink),
                detail: "this handle's file was already removed".to_owned(),
            });
        }
        fs::remove_file(&self.path).map_err(|e| err(&self.name, Op::Unlink, e))
    }

    fn resize(&mut self, size: usize) -> Result<()> {
        self.file
            .set_len(size as u64)
            .map_err(|e| err(&self.name, Op::Resize, e))?;
        self.size = size;
        Ok(())
    }
}

impl FileSegment {
    /// Whether the path still names this handle's file (same device and inode): the contract
    /// says a handle removes only its own segment, never one made later under the same name.
    fn still_named(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(by_path), Ok(ours)) => by_path.dev() == ours.dev() && by_path.ino() == ours.ino(),
            _ => false,
        }
    }
}

impl Drop for FileSegment {
    fn drop(&mut self) {
        if self.owner && self.still_named() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
