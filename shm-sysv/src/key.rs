//! From a segment name to a System V key.

use shm_core::{Error, Result, SegmentName, SegmentRef};

use crate::ids::{Key, ParseKeyError};

/// The System V key of a name: a key literal is that key, any other name its FNV-1a 32-bit
/// hash (a hash of 0 becomes 1, never `IPC_PRIVATE`).
///
/// Key literals: `0x` and 1 to 8 hex digits (`0x1234`), a decimal number that fits 32 bits
/// (`4660`), or a negative decimal as some tools print keys (`-15` is `0xfffffff1`, as
/// Python's `sysv_ipc` shows it). A name that looks like a number but does not fit 32 bits
/// (`0x100000000`) is refused rather than hashed, and so is key 0 (`IPC_PRIVATE`).
///
/// ```
/// use shm_core::SegmentName;
/// let key = |s| shm_sysv::key_for(&SegmentName::new(s).unwrap()).unwrap().as_raw();
/// assert_eq!(key("0x1234"), 0x1234);
/// assert_eq!(key("/4660"), 0x1234);
/// assert_eq!(key("-15") as u32, 0xffff_fff1);
/// assert_eq!(key("test.shmem"), key("/test.shmem"));
/// assert_ne!(key("/a"), 0);
/// assert!(shm_sysv::key_for(&SegmentName::new("0x100000000").unwrap()).is_err());
/// ```
pub fn key_for(name: &SegmentName) -> Result<Key> {
    let invalid = |reason| Error::InvalidName {
        name: name.as_str().to_owned(),
        reason,
    };
    match parse_literal(name.bare()) {
        Literal::Key(0) => Err(invalid(
            "key 0 is IPC_PRIVATE, which can never be found again",
        )),
        Literal::Key(key) => Ok(Key::from_raw(key as libc::key_t)),
        Literal::TooLarge => Err(invalid(
            "it reads as a System V key, but does not fit in 32 bits",
        )),
        Literal::Name => {
            let hash = fnv1a(name.as_str().as_bytes());
            Ok(Key::from_raw(if hash == 0 {
                1
            } else {
                hash as libc::key_t
            }))
        }
    }
}

/// How people name the segment of `name` on System V: a key literal as the key it is
/// (`key 0x0bad1dea`, as `ipcs` shows it), never as a name (`/0x0bad1dea`); any other name as
/// the name. Errors and the `shm` command write a segment through it.
///
/// ```
/// use shm_core::{SegmentName, SegmentRef};
/// let of = |s| shm_sysv::segment_ref(&SegmentName::new(s).unwrap());
/// assert_eq!(of("0x0bad1dea"), SegmentRef::Key(0x0bad1dea));
/// assert_eq!(of("0x0bad1dea").to_string(), "key 0x0bad1dea");
/// assert_eq!(of("/scratch").to_string(), "/scratch");
/// ```
pub fn segment_ref(name: &SegmentName) -> SegmentRef {
    match parse_literal(name.bare()) {
        Literal::Key(key) if key != 0 => SegmentRef::Key(key as libc::key_t),
        _ => SegmentRef::from(name),
    }
}

/// A key literal, as [`key_for`] reads one (`0x0bad1dea`, `4660`, `-15`), and nothing else:
/// a name is not hashed, key 0 (`IPC_PRIVATE`) and numbers beyond 32 bits are refused.
///
/// ```
/// use shm_sysv::Key;
/// assert_eq!("0x0bad1dea".parse::<Key>().unwrap().as_raw(), 0x0bad1dea);
/// assert_eq!("-15".parse::<Key>().unwrap().to_string(), "0xfffffff1");
/// assert!("0".parse::<Key>().unwrap_err().to_string().contains("IPC_PRIVATE"));
/// assert!("scratch".parse::<Key>().is_err());
/// assert!("0x123456789".parse::<Key>().is_err());
/// ```
impl std::str::FromStr for Key {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, ParseKeyError> {
        match parse_literal(s) {
            Literal::Key(0) => Err(ParseKeyError::Private),
            Literal::Key(key) => Ok(Key::from_raw(key as libc::key_t)),
            Literal::TooLarge | Literal::Name => Err(ParseKeyError::Invalid(s.to_owned())),
        }
    }
}

/// What a bare name is, read as a key.
#[derive(Debug, PartialEq, Eq)]
enum Literal {
    /// A key literal and its value.
    Key(u32),
    /// A number that does not fit a key.
    TooLarge,
    /// Not a number: a name.
    Name,
}

/// Whether `s` is a key literal: `0x` hex, decimal, or negative decimal (see [`key_for`]).
pub fn is_key_literal(s: &str) -> bool {
    parse_literal(s.strip_prefix('/').unwrap_or(s)) != Literal::Name
}

fn parse_literal(s: &str) -> Literal {
    let number = |digits: &str, radix: u32| -> Literal {
        match u32::from_str_radix(digits, radix) {
            Ok(k) => Literal::Key(k),
            Err(_) => Literal::TooLarge,
        }
    };
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return number(hex, 16);
        }
        return Literal::Name;
    }
    if let Some(neg) = s.strip_prefix('-') {
        if !neg.is_empty() && neg.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<i32>() {
                Ok(k) => Literal::Key(k as u32),
                Err(_) => Literal::TooLarge,
            };
        }
        return Literal::Name;
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return number(s, 10);
    }
    Literal::Name
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Result<libc::key_t> {
        key_for(&SegmentName::new(s).unwrap()).map(Key::as_raw)
    }

    #[test]
    fn literals_and_hashes() {
        assert_eq!(key("0xdeadbeef").unwrap(), 0xdeadbeefu32 as i32);
        assert_eq!(key("12").unwrap(), 12);
        assert!(key("0x0").is_err());
        assert!(key("-0").is_err());
        assert_eq!(key("-15").unwrap(), -15);
        assert_eq!(key("-2147483648").unwrap(), i32::MIN);
        // numbers that do not fit a key are refused, not hashed
        assert!(key("0x100000000").is_err());
        assert!(key("99999999999").is_err());
        assert!(key("-2147483649").is_err());
        // "0x" with no digits, or with other characters, is a plain name
        assert_eq!(key("0x").unwrap(), fnv1a(b"/0x") as i32);
        assert_eq!(key("0xzz").unwrap(), fnv1a(b"/0xzz") as i32);
        assert_eq!(key("-a").unwrap(), fnv1a(b"/-a") as i32);
        assert!(is_key_literal("/5432001") && is_key_literal("0xff") && !is_key_literal("x1"));
        // as a key alone: the same literals, no name
        let parse = |s: &str| s.parse::<Key>().map(Key::as_raw);
        assert_eq!(parse("0xffffffff"), Ok(-1));
        assert_eq!(parse("-1"), Ok(-1));
        assert_eq!(parse("4660"), Ok(0x1234));
        assert_eq!(parse("0"), Err(ParseKeyError::Private));
        for bad in ["0x", "0x+1", "+1", "abc", "0x123456789", "/0x1"] {
            assert_eq!(parse(bad), Err(ParseKeyError::Invalid(bad.into())), "{bad}");
        }
        // the documented hash, pinned
        assert_eq!(key("/test.shmem").unwrap(), fnv1a(b"/test.shmem") as i32);
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }
}
