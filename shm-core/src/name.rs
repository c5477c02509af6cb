//! [`SegmentName`]: a segment's name, parsed and validated once.

use std::fmt;
use std::str::FromStr;

use crate::{Error, SegmentRef};

cfg_if::cfg_if! {
    if #[cfg(target_os = "linux")] {
        /// The longest name the C library accepts, in bytes, not counting the leading slash
        /// (`NAME_MAX` on Linux).
        pub const MAX_NAME_LEN: usize = 255;
    } else if #[cfg(target_vendor = "apple")] {
        /// The longest name the C library accepts, in bytes, not counting the leading slash
        /// (`PSHMNAMLEN` on macOS).
        pub const MAX_NAME_LEN: usize = 31;
    } else {
        /// The longest name the C library accepts, in bytes, not counting the leading slash.
        pub const MAX_NAME_LEN: usize = 255;
    }
}

/// A validated segment name, stored normalized as `/name`.
///
/// `name` and `/name` are the same segment, as in glibc's `shm_open` and Python's
/// `multiprocessing.shared_memory`. The rules are the C library's, so a name that works in C
/// works here, and one that C refuses is refused here before any system call:
///
/// * not empty, and not `/` alone;
/// * no slash after the leading one;
/// * not `.` or `..`;
/// * no NUL byte;
/// * at most [`MAX_NAME_LEN`] bytes after the slash.
///
/// ```
/// use shm_core::SegmentName;
/// let a: SegmentName = "test.shmem".parse()?;
/// let b = SegmentName::new("/test.shmem")?;
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "/test.shmem");
/// assert_eq!(a.bare(), "test.shmem");
/// assert!(SegmentName::new("a/b").is_err());
/// # Ok::<(), shm_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName(String);

impl SegmentName {
    /// Parses and validates `name`; leading slashes are folded into one, as glibc does.
    pub fn new(name: &str) -> Result<Self, Error> {
        // glibc strips every leading slash: `x`, `/x` and `//x` are one object.
        let bare = name.trim_start_matches('/');
        let refuse = |reason: &'static str| {
            Err(Error::InvalidName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.is_empty() {
            return refuse("the name is empty");
        }
        if bare.is_empty() {
            return refuse("the name is only a slash");
        }
        if bare.contains('/') {
            return refuse("a name may hold no slash after the leading one");
        }
        if bare == "." || bare == ".." {
            return refuse("`.` and `..` are not names");
        }
        if bare.contains('\0') {
            return refuse("a name may not contain a NUL byte");
        }
        if bare.len() > MAX_NAME_LEN {
            return refuse(if MAX_NAME_LEN == 255 {
                "a name is at most 255 bytes after the slash"
            } else {
                "a name is at most 31 bytes after the slash on this platform"
            });
        }
        Ok(Self(format!("/{bare}")))
    }

    /// The normalized name, with its leading slash: `/test.shmem`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its leading slash, as it appears in `/dev/shm`: `test.shmem`.
    pub fn bare(&self) -> &str {
        &self.0[1..]
    }
}

impl FromStr for SegmentName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SegmentName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

/// A name is the segment it names: `SegmentRef::Name`.
impl From<&SegmentName> for SegmentRef {
    fn from(name: &SegmentName) -> Self {
        SegmentRef::Name(name.as_str().to_owned())
    }
}

impl AsRef<str> for SegmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_is_optional() {
        assert_eq!(
            SegmentName::new("x").unwrap(),
            SegmentName::new("/x").unwrap()
        );
        assert_eq!(SegmentName::new("//x").unwrap().as_str(), "/x");
    }

    #[test]
    fn refuses_what_c_refuses() {
        for bad in ["", "/", "//", "/a/b", "a/b", ".", "/..", "a\0b"] {
            let err = SegmentName::new(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
        }
        assert!(SegmentName::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(SegmentName::new(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
