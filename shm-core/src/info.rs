//! [`SegmentInfo`]: what the kernel says about a segment.

/// What the kernel reports about a segment. Fields a backend cannot know are `None`.
///
/// A backend starts from [`SegmentInfo::new`] and fills in what it knows (the struct is
/// `#[non_exhaustive]`, so that fields can be added):
///
/// ```
/// let mut info = shm_core::SegmentInfo::new("file");
/// info.name = Some("/scratch".to_owned());
/// info.size = 4096;
/// info.mode = 0o600;
/// assert_eq!(info.nattch, None); // this backend cannot count attaches
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The backend's name (`"posix"`, `"sysv"`).
    pub backend: &'static str,
    /// The name with its leading slash, where the kernel keeps one (POSIX).
    pub name: Option<String>,
    /// The System V key.
    pub key: Option<i32>,
    /// The System V identifier (shmid).
    pub id: Option<i32>,
    /// Size in bytes, as the kernel reports it.
    pub size: u64,
    /// Permission bits (`0o600`).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// How many attaches there are (System V).
    pub nattch: Option<u64>,
    /// Process id of the creator (System V).
    pub cpid: Option<i32>,
    /// Process id of the last attach or detach (System V).
    pub lpid: Option<i32>,
    /// Last attach, in seconds since the epoch (System V; `None` when never).
    pub atime: Option<i64>,
    /// Last detach, in seconds since the epoch (System V; `None` when never).
    pub dtime: Option<i64>,
    /// Last change, in seconds since the epoch.
    pub ctime: Option<i64>,
    /// Last modification, in seconds since the epoch (POSIX).
    pub mtime: Option<i64>,
    /// Removed but still attached (System V `dest`).
    pub removed: bool,
    /// Locked in memory, never swapped (System V `SHM_LOCK`, as `ipcs` and `lsipc` show it).
    pub locked: bool,
    /// Not a segment but a glibc named semaphore (`/dev/shm/sem.NAME`): listed so that what
    /// holds `/dev/shm` is complete, never opened or removed as a segment.
    pub semaphore: bool,
}

impl SegmentInfo {
    /// An empty record for `backend`, to be filled in.
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }
}
