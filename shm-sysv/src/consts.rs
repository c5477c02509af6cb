//! What the backend's modules share: its name and the kernel's mode bits beyond the
//! permissions. Below every other module: it imports none of them.

/// The backend's name, in errors and listings.
pub(crate) const BACKEND: &str = "sysv";

/// `SHM_DEST`: the segment was removed and lives on until its last detach.
pub(crate) const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED`: the segment is locked in memory (`shmctl(SHM_LOCK)`).
pub(crate) const SHM_LOCKED: u32 = 0o2000;
