//! The facts an [`Error`](crate::Error) carries as fields: which kernel [`Limit`] was hit, who
//! [`Owner`]s a segment, how much [`Space`] there was.

use std::fmt;

/// A kernel limit that a create hit, with its value where it could be read.
///
/// Its [`Display`](fmt::Display) says what the limit is and what was asked;
/// [`Limit::hint`] what to do about it.
///
/// ```
/// use shm_core::Limit;
/// let limit = Limit::SegmentSize { max: Some(1 << 20), asked: (1 << 20) + 1 };
/// assert_eq!(limit.setting(), "kernel.shmmax");
/// assert_eq!(limit.to_string(), "1048577 bytes is above kernel.shmmax = 1048576 bytes");
/// assert!(limit.hint().contains("sysctl -w kernel.shmmax="));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The largest segment (`kernel.shmmax`).
    SegmentSize {
        /// The limit in bytes, where it could be read.
        max: Option<u64>,
        /// The bytes asked for.
        asked: u64,
    },
    /// All segments together (`kernel.shmall`).
    TotalPages {
        /// The limit in pages.
        max: u64,
        /// The bytes asked for.
        asked: u64,
    },
    /// The number of segments (`kernel.shmmni`).
    SegmentCount {
        /// The limit.
        max: u64,
        /// How many segments exist.
        existing: u64,
    },
    /// The number of segments or all segments together: which one, the limits could not be
    /// read to tell.
    CountOrTotal {
        /// The bytes asked for.
        asked: u64,
    },
}

impl Limit {
    /// The setting that holds the limit (`kernel.shmmax`), or both that may (`CountOrTotal`).
    pub fn setting(&self) -> &'static str {
        match self {
            Limit::SegmentSize { .. } => "kernel.shmmax",
            Limit::TotalPages { .. } => "kernel.shmall",
            Limit::SegmentCount { .. } => "kernel.shmmni",
            Limit::CountOrTotal { .. } => "kernel.shmmni or kernel.shmall",
        }
    }

    /// What to do about it: ask for less or remove unused segments, or raise the limit.
    pub fn hint(&self) -> String {
        match self {
            Limit::SegmentSize { .. } => {
                "ask for less, or raise it (sysctl -w kernel.shmmax=BYTES)".to_owned()
            }
            Limit::TotalPages { .. } => {
                "remove unused ones or raise it (sysctl -w kernel.shmall=PAGES)".to_owned()
            }
            Limit::SegmentCount { .. } => {
                "remove unused ones or raise it (sysctl -w kernel.shmmni=COUNT)".to_owned()
            }
            Limit::CountOrTotal { .. } => "remove unused ones, or raise kernel.shmmni (sysctl -w \
                 kernel.shmmni=COUNT) or kernel.shmall (sysctl -w kernel.shmall=PAGES)"
                .to_owned(),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::SegmentSize {
                max: Some(max),
                asked,
            } => write!(f, "{asked} bytes is above kernel.shmmax = {max} bytes"),
            Limit::SegmentSize { max: None, asked } => write!(
                f,
                "{asked} bytes is above the largest segment the kernel allows (kernel.shmmax)"
            ),
            Limit::TotalPages { max, asked } => write!(
                f,
                "kernel.shmall = {max} pages for all segments together ({asked} bytes asked)"
            ),
            Limit::SegmentCount { max, existing } => {
                write!(f, "kernel.shmmni = {max} segments, and {existing} exist")
            }
            Limit::CountOrTotal { asked } => write!(
                f,
                "the kernel's segment count or total size limit ({asked} bytes asked)"
            ),
        }
    }
}

/// Who owns a segment, and its permission bits, for a permission error.
///
/// ```
/// let owner = shm_core::Owner { uid: 0, mode: 0o600 };
/// assert_eq!(owner.to_string(), "owner uid 0, mode 0600");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The owner's user id.
    pub uid: u32,
    /// The mode bits (permission bits, and on POSIX setuid, setgid and sticky if set).
    pub mode: u32,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "owner uid {}, mode {:04o}", self.uid, self.mode)
    }
}

/// How much memory was asked for and how much there was, for a "no space" error.
///
/// ```
/// let space = shm_core::Space { asked: Some(8192), free: Some((4096, 65536)) };
/// assert_eq!(space.to_string(), "8192 bytes asked, /dev/shm has 4096 bytes free of 65536");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Space {
    /// The bytes asked for, where known.
    pub asked: Option<u64>,
    /// Free and total bytes of `/dev/shm`, where the segment lives there and they could be
    /// read.
    pub free: Option<(u64, u64)>,
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.asked, self.free) {
            (Some(asked), Some((free, total))) => write!(
                f,
                "{asked} bytes asked, /dev/shm has {free} bytes free of {total}"
            ),
            (None, Some((free, total))) => {
                write!(f, "/dev/shm has {free} bytes free of {total}")
            }
            (Some(asked), None) => {
                write!(f, "the kernel has not enough memory for {asked} bytes")
            }
            (None, None) => f.write_str("the kernel has no room for it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_say_what_and_how_much() {
        let all = Limit::TotalPages {
            max: 256,
            asked: 2 << 20,
        };
        assert_eq!(
            all.to_string(),
            "kernel.shmall = 256 pages for all segments together (2097152 bytes asked)"
        );
        assert!(all.hint().contains("sysctl -w kernel.shmall=PAGES"));
        let count = Limit::SegmentCount {
            max: 2,
            existing: 2,
        };
        assert_eq!(count.to_string(), "kernel.shmmni = 2 segments, and 2 exist");
        assert_eq!(count.setting(), "kernel.shmmni");
        let size = Limit::SegmentSize {
            max: None,
            asked: 5,
        };
        assert!(size.to_string().starts_with("5 bytes is above"));
        let either = Limit::CountOrTotal { asked: 7 };
        assert!(either.to_string().contains("7 bytes asked"));
        assert!(either.hint().contains("kernel.shmmni") && either.hint().contains("kernel.shmall"));
    }

    #[test]
    fn space_says_what_is_known() {
        let none = Space::default();
        assert_eq!(none.to_string(), "the kernel has no room for it");
        let asked = Space {
            asked: Some(9),
            free: None,
        };
        assert_eq!(
            asked.to_string(),
            "the kernel has not enough memory for 9 bytes"
        );
    }
}
