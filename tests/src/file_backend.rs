//! A third backend, written only against shm-core's public API: segments are files in a
//! directory, mapped with the backend kit's `map_fd` (as POSIX objects are). It passes the same
//! conformance suite as POSIX and System V, which shows that the contract can be implemented,
//! and embedded, outside this workspace.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use shm_core::kit::{self, Identity, Owned};
use shm_core::{
    Access, Backend, Capabilities, Context, CreateOptions, Error, Mapping, Op, Result, Segment,
    SegmentInfo, SegmentName,
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
        let dir = crate::cleanup::temp_path("file-backend");
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
    size: usize,
    access: Access,
    object: Owned<FileObject>,
}

/// What a handle knows of its file: the name, the path and the open file, which tell (same
/// device and inode) whether the path still names it.
#[derive(Debug)]
struct FileObject {
    name: SegmentName,
    path: PathBuf,
    file: Arc<File>,
}

impl Identity for FileObject {
    fn check_ours(&self, op: Op) -> Result<()> {
        // The contract says a handle removes only its own segment, never one made later under
        // the same name.
        let ours = match (fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(by_path), Ok(ours)) => by_path.dev() == ours.dev() && by_path.ino() == ours.ino(),
            _ => false,
        };
        if ours {
            return Ok(());
        }
        Err(Error::Stale {
            ctx: Context::new(BACKEND, self.name.as_str(), op),
            detail: "this handle's file was already removed".to_owned(),
        })
    }

    fn remove(&self) -> Result<()> {
        fs::remove_file(&self.path).map_err(|e| err(&self.name, Op::Unlink, e))
    }
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
        let remove_old = || match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(name, Op::Create, e)),
            _ => Ok(()),
        };
        let create = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
        };
        let file = kit::create_exclusive(opts.replace, remove_old, create, |e| {
            err(name, Op::Create, e)
        })?;
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
        let set_up = set_up();
        // Owned from here: a failed set-up drops it, which removes the file (if still ours).
        let segment = FileSegment {
            size: opts.size,
            access: opts.access,
            object: Owned::created(FileObject {
                name: name.clone(),
                path,
                file: Arc::new(file),
            }),
        };
        if let Err(e) = set_up {
            return Err(match e.raw_os_error() {
                Some(libc::EFBIG) | Some(libc::EINVAL) => invalid("the file system refused it"),
                _ => err(name, Op::Create, e),
            });
        }
        Ok(segment)
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
            size: usize::try_from(size).unwrap_or(usize::MAX),
            access,
            object: Owned::opened(FileObject {
                name: name.clone(),
                path,
                file: Arc::new(file),
            }),
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

impl FileSegment {
    fn object(&self) -> &FileObject {
        self.object.identity()
    }
}

impl Segment for FileSegment {
    fn name(&self) -> &SegmentName {
        &self.object().name
    }

    fn size(&self) -> usize {
        self.size
    }

    fn access(&self) -> Access {
        self.access
    }

    fn map(&self) -> Result<Mapping> {
        // A file can be truncated under the mapping: the kit maps it with its size now and
        // hands the descriptor to the mapping, so that copies survive a shrink.
        let name = self.object().name.clone();
        kit::map_fd(
            &self.object().file,
            self.access.is_writable(),
            BACKEND,
            &self.object().name,
            Box::new(move |op, e| err(&name, op, e)),
        )
    }

    fn info(&self) -> Result<SegmentInfo> {
        let object = self.object();
        let md = object
            .file
            .metadata()
            .map_err(|e| err(&object.name, Op::Info, e))?;
        Ok(info_from(&object.name, &md))
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
        let object = self.object();
        object
            .file
            .set_len(size as u64)
            .map_err(|e| err(&object.name, Op::Resize, e))?;
        self.size = size;
        Ok(())
    }
}
