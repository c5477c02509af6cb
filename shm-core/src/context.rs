//! Where an error happened: [`Op`] (what was being done), [`SegmentRef`] (to which segment, as
//! people name it) and [`Context`] (both, and the backend).

use std::fmt;

/// What was being done when an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a new segment.
    Create,
    /// Opening an existing segment.
    Open,
    /// Mapping (attaching) a segment into this process.
    Map,
    /// Removing a segment's name (`shm_unlink`, `IPC_RMID`).
    Unlink,
    /// Reading a segment's metadata.
    Info,
    /// Listing the segments of a backend.
    List,
    /// Changing a segment's size.
    Resize,
    /// Reading or writing a mapping.
    Access,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Open => "open",
            Op::Map => "map",
            Op::Unlink => "remove",
            Op::Info => "inspect",
            Op::List => "list",
            Op::Resize => "resize",
            Op::Access => "access",
        })
    }
}

/// A segment as people name it: by name, or (System V) by key or by identifier.
///
/// Its [`Display`](fmt::Display) is the one way a segment is written for people, in errors and
/// in the `shm` command's output alike: a name as it is (`/test.shmem`), a key as `ipcs` shows
/// it (`key 0x0bad1dea`), never as a name (`/0x0bad1dea`), an identifier as `id 32769`.
///
/// ```
/// use shm_core::SegmentRef;
/// assert_eq!(SegmentRef::Key(0x0bad_1dea).to_string(), "key 0x0bad1dea");
/// assert_eq!(SegmentRef::Key(-15).to_string(), "key 0xfffffff1");
/// assert_eq!(SegmentRef::Id(32769).to_string(), "id 32769");
/// assert_eq!(SegmentRef::from("/test.shmem").to_string(), "/test.shmem");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentRef {
    /// A name as given (`/test.shmem`), or a place that holds segments (`/dev/shm`).
    Name(String),
    /// A System V key (`key_t`), as `shmget` takes it.
    Key(i32),
    /// A System V identifier (shmid), as `shmctl` takes it.
    Id(i32),
}

impl SegmentRef {
    /// The System V key, for a [`SegmentRef::Key`].
    pub fn key(&self) -> Option<i32> {
        match self {
            SegmentRef::Key(key) => Some(*key),
            _ => None,
        }
    }

    /// The System V identifier, for a [`SegmentRef::Id`].
    pub fn id(&self) -> Option<i32> {
        match self {
            SegmentRef::Id(id) => Some(*id),
            _ => None,
        }
    }

    /// The name, for a [`SegmentRef::Name`].
    pub fn name(&self) -> Option<&str> {
        match self {
            SegmentRef::Name(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentRef::Name(name) => f.write_str(name),
            SegmentRef::Key(key) => write!(f, "key 0x{:08x}", *key as u32),
            SegmentRef::Id(id) => write!(f, "id {id}"),
        }
    }
}

impl From<&str> for SegmentRef {
    fn from(name: &str) -> Self {
        SegmentRef::Name(name.to_owned())
    }
}

impl From<String> for SegmentRef {
    fn from(name: String) -> Self {
        SegmentRef::Name(name)
    }
}

/// Where an error happened: which backend, which segment, which operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The backend's name (`"posix"`, `"sysv"`, ...).
    pub backend: &'static str,
    /// The segment: its name as the user gave it (`/test.shmem`), or its key or id where it was
    /// reached by one.
    pub segment: SegmentRef,
    /// The operation that failed.
    pub op: Op,
}

impl Context {
    /// Builds a context; `segment` is a [`SegmentRef`], or a name (`&str`, `String`,
    /// `&SegmentName`).
    pub fn new(backend: &'static str, segment: impl Into<SegmentRef>, op: Op) -> Self {
        Self {
            backend,
            segment: segment.into(),
            op,
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {} ({})", self.op, self.segment, self.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_written_as_people_name_it() {
        let key = Context::new("sysv", SegmentRef::Key(0x0bad_1dea), Op::Open);
        assert_eq!(key.to_string(), "cannot open key 0x0bad1dea (sysv)");
        let id = Context::new("sysv", SegmentRef::Id(7), Op::Unlink);
        assert_eq!(id.to_string(), "cannot remove id 7 (sysv)");
        let named = Context::new("posix", "/x", Op::Create);
        assert_eq!(named.to_string(), "cannot create /x (posix)");
        assert_eq!(named.segment.name(), Some("/x"));
        assert_eq!(key.segment.key(), Some(0x0bad_1dea));
        assert_eq!(id.segment.id(), Some(7));
        assert_eq!(named.segment.key(), None);
    }
}
