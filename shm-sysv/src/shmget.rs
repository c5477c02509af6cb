//! The System V backend: `shmget`, `shmat`, `shmdt`, `shmctl(IPC_STAT, IPC_RMID)`.

use std::io;
use std::ptr::NonNull;

use shm_core::kit::{self, Identity, Owned};
use shm_core::{
    Access, Backend, Capabilities, Context, CreateOptions, Error, Limit, MapBacking, Mapping, Op,
    Owner, Result, Segment, SegmentInfo, SegmentName, SegmentRef, Space,
};

use crate::consts::{BACKEND, SHM_DEST, SHM_LOCKED};
use crate::ids::{Key, ShmId};
use crate::key::{key_for, segment_ref};
use crate::proc::{self, Limits};

/// Where an error happened: a name as given, or a key literal as a key (`key 0x4936af99`), the
/// way `ipcs` shows it, never as a name (`/0x4936af99`): see [`segment_ref`].
fn ctx(name: &SegmentName, op: Op) -> Context {
    Context::new(BACKEND, segment_ref(name), op)
}

/// The System V shared memory backend (`shmget`).
#[doc(alias = "shmget")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SysV;

impl SysV {
    /// The backend. It holds no state: every call goes to the kernel.
    pub fn new() -> Self {
        SysV
    }

    /// Removes the segment with identifier `id` (`IPC_RMID`), as `ipcrm -m ID` does; the memory
    /// lives until its last detach. A missing id is [`Error::NotFound`].
    #[doc(alias = "IPC_RMID")]
    pub fn unlink_id(&self, id: ShmId) -> Result<()> {
        let id = id.as_raw();
        remove(id).map_err(|e| id_error(id, Op::Unlink, e))
    }

    /// Opens the segment with identifier `id`, also a removed one that is still attached and one
    /// made with `IPC_PRIVATE`, which no name or key reaches. The handle never removes it on
    /// drop; its name reads `/shmid.ID`.
    pub fn open_id(&self, id: ShmId, access: Access) -> Result<SysVSegment> {
        let id = id.as_raw();
        let name = SegmentName::new(&format!("/shmid.{id}"))?;
        let ds = stat(id).map_err(|e| id_error(id, Op::Open, e))?;
        let ctx = || Context::new(BACKEND, SegmentRef::Id(id), Op::Open);
        opened(name, ds.shm_perm.__key, id, &ds, access, ctx)
    }

    /// What the kernel says about the segment with identifier `id` (also a removed one that is
    /// still attached, whose key is 0). A missing id is [`Error::NotFound`].
    pub fn info_id(&self, id: ShmId) -> Result<SegmentInfo> {
        let id = id.as_raw();
        match stat(id) {
            Ok(ds) => Ok(info_from_ds(id, &ds)),
            // No read permission: /proc still tells, as it does for ipcs.
            Err(e) => proc::list()
                .ok()
                .and_then(|l| l.into_iter().find(|i| i.id == Some(id)))
                .ok_or_else(|| id_error(id, Op::Info, e)),
        }
    }
}

/// The error of an operation on segment `id`, named by its id.
fn id_error(id: libc::c_int, op: Op, e: io::Error) -> Error {
    let ctx = Context::new(BACKEND, SegmentRef::Id(id), op);
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EIDRM) => Error::NotFound {
            ctx,
            source: Some(e),
        },
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            ctx,
            owner: owner_of(id),
            source: Some(e),
        },
        _ => Error::from_os(ctx, e),
    }
}

/// A System V segment: its key and identifier. Dropping a created handle removes the segment
/// (`IPC_RMID`) unless kept; the memory lives until its last detach.
#[derive(Debug)]
pub struct SysVSegment {
    size: usize,
    access: Access,
    object: Owned<SysVObject>,
}

/// What a handle knows of its segment: the name it was asked by, the key, the id, and the
/// fingerprint that tells it from a later segment that gets the same id.
#[derive(Debug)]
struct SysVObject {
    name: SegmentName,
    key: libc::key_t,
    id: libc::c_int,
    made: Fingerprint,
}

impl Identity for SysVObject {
    fn check_ours(&self, op: Op) -> Result<()> {
        // Only this handle's own segment, still live: an id the kernel gave to another segment
        // since, or a segment someone already removed, is left alone.
        self.check_same(op, true).map(drop)
    }

    fn remove(&self) -> Result<()> {
        remove(self.id).map_err(|e| os_error(&self.name, Op::Unlink, Some(self.id), 0, e))
    }
}

fn shmget(key: libc::key_t, size: usize, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: shmget takes plain values and touches no memory of ours.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(id)
    }
}

fn stat(id: libc::c_int) -> io::Result<libc::shmid_ds> {
    // SAFETY: an all-zero shmid_ds is a valid value of a plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds to a valid out-pointer.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(ds)
}

fn remove(id: libc::c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[allow(clippy::unnecessary_cast)] // time_t and shmatt_t differ between platforms
fn info_from_ds(id: libc::c_int, ds: &libc::shmid_ds) -> SegmentInfo {
    let mode = u32::from(ds.shm_perm.mode);
    let time = |t: libc::time_t| (t != 0).then_some(t as i64);
    let mut info = SegmentInfo::new(BACKEND);
    info.key = Some(ds.shm_perm.__key);
    info.id = Some(id);
    info.size = ds.shm_segsz as u64;
    info.mode = mode & 0o777;
    info.removed = mode & SHM_DEST != 0;
    info.locked = mode & SHM_LOCKED != 0;
    info.uid = ds.shm_perm.uid;
    info.gid = ds.shm_perm.gid;
    info.nattch = Some(ds.shm_nattch as u64);
    info.cpid = Some(ds.shm_cpid);
    info.lpid = Some(ds.shm_lpid);
    info.atime = time(ds.shm_atime);
    info.dtime = time(ds.shm_dtime);
    info.ctime = time(ds.shm_ctime);
    info
}

/// What tells one segment from another that later gets the same id: the kernel reuses ids
/// (quickly, in a small IPC namespace), and a removed segment loses its key. None of these
/// fields changes over a segment's life except by `IPC_SET` (which this project never calls);
/// a segment made later under the same id differs in at least one of them unless the same
/// process made it of the same size, by the same user, in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    cpid: libc::pid_t,
    cuid: libc::uid_t,
    size: usize,
    ctime: libc::time_t,
}

impl Fingerprint {
    /// Matches no segment (no creator has pid -1).
    const GONE: Self = Self {
        cpid: -1,
        cuid: 0,
        size: 0,
        ctime: 0,
    };

    fn of(ds: &libc::shmid_ds) -> Self {
        Self {
            cpid: ds.shm_cpid,
            cuid: ds.shm_perm.cuid,
            size: ds.shm_segsz,
            ctime: ds.shm_ctime,
        }
    }
}

/// `info` with the name it was asked by, where that is a name (the kernel keeps only the key:
/// the name is known to whoever asks by it, never to `list`). A key literal stays a key.
pub(crate) fn with_name(mut info: SegmentInfo, name: &SegmentName) -> SegmentInfo {
    if !crate::key::is_key_literal(name.as_str()) {
        info.name = Some(name.as_str().to_owned());
    }
    info
}

/// Owner and mode of segment `id` from /proc (readable without permission on the segment).
fn owner_of(id: libc::c_int) -> Option<Owner> {
    let info = proc::list().ok()?.into_iter().find(|i| i.id == Some(id))?;
    Some(Owner {
        uid: info.uid,
        mode: info.mode,
    })
}

/// Turns an OS error into the error that says most, naming the limit that was hit.
fn os_error(
    name: &SegmentName,
    op: Op,
    id: Option<libc::c_int>,
    size: usize,
    e: io::Error,
) -> Error {
    // The limits are read only for the errors that name them.
    match (e.raw_os_error(), op) {
        (Some(libc::EACCES) | Some(libc::EPERM), _) => Error::PermissionDenied {
            ctx: ctx(name, op),
            owner: id.and_then(owner_of),
            source: Some(e),
        },
        (Some(libc::EINVAL), Op::Create) => Error::LimitExceeded {
            ctx: ctx(name, op),
            limit: Limit::SegmentSize {
                max: Limits::read().map(|l| l.shmmax),
                asked: size as u64,
            },
            source: Some(e),
        },
        (Some(libc::ENOSPC), Op::Create) => Error::LimitExceeded {
            ctx: ctx(name, op),
            limit: match (Limits::read(), proc::count()) {
                (Some(l), Some(n)) if n >= l.shmmni => Limit::SegmentCount {
                    max: l.shmmni,
                    existing: n,
                },
                (Some(l), _) => Limit::TotalPages {
                    max: l.shmall,
                    asked: size as u64,
                },
                _ => Limit::CountOrTotal { asked: size as u64 },
            },
            source: Some(e),
        },
        (Some(libc::ENOMEM), Op::Create | Op::Map) => Error::NoSpace {
            ctx: ctx(name, op),
            space: Space {
                asked: Some(size as u64),
                free: None,
            },
            source: Some(e),
        },
        (Some(libc::EINVAL) | Some(libc::EIDRM), _) => Error::NotFound {
            ctx: ctx(name, op),
            source: Some(e),
        },
        _ => Error::from_os(ctx(name, op), e),
    }
}

/// Finds the identifier of the segment with the key of `name`.
fn lookup(name: &SegmentName, op: Op) -> Result<(libc::key_t, libc::c_int)> {
    let key = key_for(name)?.as_raw();
    let id = shmget(key, 0, 0).map_err(|e| os_error(name, op, None, 0, e))?;
    Ok((key, id))
}

/// Whether the caller is in group `gid`: its effective group or one of its supplementary
/// groups, as the kernel's `in_group_p` decides.
fn in_group(gid: libc::gid_t) -> bool {
    // SAFETY: getegid has no preconditions.
    if unsafe { libc::getegid() } == gid {
        return true;
    }
    // SAFETY: with size 0, getgroups only returns the number of supplementary groups.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(len) = usize::try_from(n) else {
        return false;
    };
    let mut groups: Vec<libc::gid_t> = vec![0; len];
    // SAFETY: `groups` holds `n` writable gid_t; getgroups writes at most that many.
    let got = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(got).unwrap_or(0));
    groups.contains(&gid)
}

/// The handle of an opened segment (never its owner), once the caller is known to be allowed
/// to attach it with `access` ([`permitted`]).
fn opened(
    name: SegmentName,
    key: libc::key_t,
    id: libc::c_int,
    ds: &libc::shmid_ds,
    access: Access,
    ctx: impl FnOnce() -> Context,
) -> Result<SysVSegment> {
    if !permitted(ds, access) {
        return Err(Error::PermissionDenied {
            ctx: ctx(),
            owner: Some(Owner {
                uid: ds.shm_perm.uid,
                mode: u32::from(ds.shm_perm.mode) & 0o777,
            }),
            source: None,
        });
    }
    Ok(SysVSegment {
        size: ds.shm_segsz,
        access,
        object: Owned::opened(SysVObject {
            name,
            key,
            id,
            made: Fingerprint::of(ds),
        }),
    })
}

/// Whether the caller may attach a segment with this access: the kernel checks only at `shmat`,
/// so open checks the mode bits as the kernel will (root passes every check).
fn permitted(ds: &libc::shmid_ds, access: Access) -> bool {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return true;
    }
    let perm = &ds.shm_perm;
    let mode = u32::from(perm.mode);
    let bits = if uid == perm.uid || uid == perm.cuid {
        mode >> 6
    } else if in_group(perm.gid) || in_group(perm.cgid) {
        mode >> 3
    } else {
        mode
    };
    let need = if access.is_writable() { 0o6 } else { 0o4 };
    bits & need == need
}

impl Backend for SysV {
    type Segment = SysVSegment;

    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.attach_count = true;
        caps.attach_removed_by_id = cfg!(target_os = "linux");
        caps.tracks_pids = true;
        caps
    }

    fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<SysVSegment> {
        let key = key_for(name)?.as_raw();
        opts.validate(BACKEND, segment_ref(name))?;
        let mut flags = libc::IPC_CREAT
            | libc::IPC_EXCL
            | (opts.mode & shm_core::PERMISSION_BITS) as libc::c_int;
        if !opts.reserve {
            flags |= libc::SHM_NORESERVE;
        }
        let remove_old = || match shmget(key, 0, 0) {
            Ok(old) => match remove(old) {
                // Gone already: a racer removed it first.
                Err(e) if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                    Err(os_error(name, Op::Unlink, Some(old), 0, e))
                }
                _ => Ok(()),
            },
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(os_error(name, Op::Open, None, 0, e)),
        };
        let id = kit::create_exclusive(
            opts.replace,
            remove_old,
            || shmget(key, opts.size, flags),
            |e| os_error(name, Op::Create, None, opts.size, e),
        )?;
        let made = match stat(id) {
            Ok(ds) => Fingerprint::of(&ds),
            // A racer removed it between our shmget and this stat: the handle stands for a
            // segment that is gone, and a fingerprint that matches no segment says so.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                Fingerprint::GONE
            }
            Err(e) => {
                let _ = remove(id);
                return Err(os_error(name, Op::Create, Some(id), opts.size, e));
            }
        };
        Ok(SysVSegment {
            size: opts.size,
            access: opts.access,
            object: Owned::created(SysVObject {
                name: name.clone(),
                key,
                id,
                made,
            }),
        })
    }

    fn open(&self, name: &SegmentName, access: Access) -> Result<SysVSegment> {
        let (key, id) = lookup(name, Op::Open)?;
        let ds = stat(id).map_err(|e| os_error(name, Op::Open, Some(id), 0, e))?;
        opened(name.clone(), key, id, &ds, access, || ctx(name, Op::Open))
    }

    fn unlink(&self, name: &SegmentName) -> Result<()> {
        let (_, id) = lookup(name, Op::Unlink)?;
        remove(id).map_err(|e| os_error(name, Op::Unlink, Some(id), 0, e))
    }

    fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
        let (_, id) = lookup(name, Op::Info)?;
        let info = match stat(id) {
            Ok(ds) => info_from_ds(id, &ds),
            // No read permission: /proc still tells, as it does for ipcs.
            Err(e) => proc::list()
                .ok()
                .and_then(|l| l.into_iter().find(|i| i.id == Some(id)))
                .ok_or_else(|| os_error(name, Op::Info, Some(id), 0, e))?,
        };
        Ok(with_name(info, name))
    }

    fn list(&self) -> Result<Vec<SegmentInfo>> {
        proc::list()
    }
}

impl SysVObject {
    /// Checks, just before acting on `self.id`, that the id still names this handle's segment:
    /// same fingerprint, and the key unless the segment was removed (a removed segment's key
    /// reads 0). `live` asks for a segment that was not removed yet (for `IPC_RMID`). Returns
    /// what the kernel said, so that a caller that needs it asks only once.
    fn check_same(&self, op: Op, live: bool) -> Result<libc::shmid_ds> {
        let stale = |detail: &str| Error::Stale {
            ctx: ctx(&self.name, op),
            detail: format!("id {} {detail}", self.id),
        };
        let ds = match stat(self.id) {
            Ok(ds) => ds,
            // Removed and detached everywhere: that is "not found", as before any check.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                return Err(Error::NotFound {
                    ctx: ctx(&self.name, op),
                    source: Some(e),
                });
            }
            Err(e) => return Err(os_error(&self.name, op, Some(self.id), 0, e)),
        };
        let removed = u32::from(ds.shm_perm.mode) & SHM_DEST != 0;
        if Fingerprint::of(&ds) != self.made || (!removed && ds.shm_perm.__key != self.key) {
            return Err(stale(
                "now names another segment: this handle's segment was removed and the kernel \
                 gave its id to a new one",
            ));
        }
        if live && removed {
            return Err(stale(
                "was already removed (it lives on until its last detach)",
            ));
        }
        Ok(ds)
    }
}

impl SysVSegment {
    /// The System V key.
    pub fn key(&self) -> Key {
        Key::from_raw(self.object.identity().key)
    }

    /// The System V identifier (shmid).
    pub fn id(&self) -> ShmId {
        ShmId::from_raw(self.object.identity().id)
    }

    fn seg_name(&self) -> &SegmentName {
        &self.object.identity().name
    }
}

/// Keeps a System V attachment: dropping it detaches (`shmdt`).
struct Attachment {
    addr: NonNull<u8>,
    name: SegmentName,
}

// SAFETY: the attachment is an address in this process, valid from any thread; shmdt may be
// called from any thread.
unsafe impl Send for Attachment {}
// SAFETY: no method touches the memory; see Send.
unsafe impl Sync for Attachment {}

impl MapBacking for Attachment {
    fn backend(&self) -> &'static str {
        BACKEND
    }
    fn segment(&self) -> SegmentRef {
        segment_ref(&self.name)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `addr` came from shmat and is detached exactly once, here. A failure (EINVAL)
        // could only mean it is not attached, and there is nothing to do about it in Drop.
        unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
    }
}

impl Segment for SysVSegment {
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
        // The id may have been given to another segment since: attach only our own.
        let object = self.object.identity();
        object.check_same(Op::Map, false)?;
        let flags = if self.access.is_writable() {
            0
        } else {
            libc::SHM_RDONLY
        };
        // SAFETY: shmat picks the address (null hint) and maps the whole segment; the result is
        // checked below.
        let addr = unsafe { libc::shmat(object.id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            let e = io::Error::last_os_error();
            return Err(os_error(
                &object.name,
                Op::Map,
                Some(object.id),
                self.size,
                e,
            ));
        }
        let Some(ptr) = NonNull::new(addr.cast::<u8>()) else {
            return Err(Error::Os {
                ctx: ctx(&object.name, Op::Map),
                source: io::Error::other("shmat returned a null address"),
            });
        };
        let backing = Attachment {
            addr: ptr,
            name: object.name.clone(),
        };
        // SAFETY: shmat attached the whole segment (`size` bytes, page-aligned) with the
        // handle's protection; it stays attached until `backing` is dropped (shmdt).
        Ok(unsafe {
            Mapping::from_raw_parts(ptr, self.size, self.access.is_writable(), Box::new(backing))
        })
    }

    fn info(&self) -> Result<SegmentInfo> {
        let object = self.object.identity();
        let ds = object.check_same(Op::Info, false)?;
        let info = info_from_ds(object.id, &ds);
        // A handle opened by id (`open_id`) has no name of the segment's: keep the key alone.
        Ok(match key_for(&object.name) {
            Ok(key) if key.as_raw() == object.key => with_name(info, &object.name),
            _ => info,
        })
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

    fn resize(&mut self, _size: usize) -> Result<()> {
        Err(Error::Unsupported {
            ctx: ctx(self.seg_name(), Op::Resize),
            what: "System V segments keep the size they were created with",
        })
    }
}
