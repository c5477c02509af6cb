//! The two numbers that name a System V segment: its [`Key`] (chosen by whoever makes it) and
//! its [`ShmId`] (given by the kernel).

use std::fmt;

use shm_core::SegmentRef;

/// A System V key (`key_t`): what `shmget` finds a segment by, and what `ipcs -m` shows in its
/// key column. Written as `ipcs` writes it, `0x` and eight hex digits.
///
/// ```
/// use shm_sysv::Key;
/// let key = Key::from_raw(0x0bad_1dea);
/// assert_eq!(key.to_string(), "0x0bad1dea");
/// assert_eq!(Key::from_raw(-15).to_string(), "0xfffffff1");
/// assert_eq!(key.as_raw(), 0x0bad_1dea);
/// assert_eq!(shm_core::SegmentRef::from(key).to_string(), "key 0x0bad1dea");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(libc::key_t);

impl Key {
    /// The key of this raw `key_t` value.
    pub const fn from_raw(raw: libc::key_t) -> Self {
        Key(raw)
    }

    /// The raw `key_t`, as `shmget` takes it.
    pub const fn as_raw(self) -> libc::key_t {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl From<Key> for SegmentRef {
    fn from(key: Key) -> Self {
        SegmentRef::Key(key.0)
    }
}

/// Why a text is not a [`Key`] (see [`Key`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseKeyError {
    /// Key 0 is `IPC_PRIVATE`: it names no segment.
    Private,
    /// Not a key literal, or one beyond 32 bits.
    Invalid(String),
}

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseKeyError::Private => f.write_str("key 0 is IPC_PRIVATE, which names no segment"),
            ParseKeyError::Invalid(s) => write!(
                f,
                "invalid key {s:?}: expected 0x and up to 8 hex digits, or a decimal number"
            ),
        }
    }
}

impl std::error::Error for ParseKeyError {}

/// A System V segment identifier (shmid): what `shmat` and `shmctl` take, and what `ipcs -m`
/// shows in its shmid column. The kernel reuses identifiers once a segment is gone.
///
/// ```
/// use shm_sysv::ShmId;
/// let id = ShmId::from_raw(32769);
/// assert_eq!(id.to_string(), "32769");
/// assert_eq!(id.as_raw(), 32769);
/// assert_eq!(shm_core::SegmentRef::from(id).to_string(), "id 32769");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmId(libc::c_int);

impl ShmId {
    /// The identifier of this raw value.
    pub const fn from_raw(raw: libc::c_int) -> Self {
        ShmId(raw)
    }

    /// The raw value, as `shmctl` takes it.
    pub const fn as_raw(self) -> libc::c_int {
        self.0
    }
}

impl fmt::Display for ShmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<ShmId> for SegmentRef {
    fn from(id: ShmId) -> Self {
        SegmentRef::Id(id.0)
    }
}
