//! From a segment name to a System V key.

use shm_core::{Error, Result, SegmentName};

/// The System V key of a name: a key literal (`0x1234`, decimal `4660`) is that key, any other
/// name its FNV-1a 32-bit hash (a hash of 0 becomes 1, never `IPC_PRIVATE`).
///
/// ```
/// use shm_core::SegmentName;
/// let key = |s| shm_sysv::key_for(&SegmentName::new(s).unwrap()).unwrap();
/// assert_eq!(key("0x1234"), 0x1234);
/// assert_eq!(key("/4660"), 0x1234);
/// assert_eq!(key("test.shmem"), key("/test.shmem"));
/// assert_ne!(key("/a"), 0);
/// ```
pub fn key_for(name: &SegmentName) -> Result<libc::key_t> {
    if let Some(literal) = parse_literal(name.bare()) {
        if literal == 0 {
            return Err(Error::InvalidName {
                name: name.as_str().to_owned(),
                reason: "key 0 is IPC_PRIVATE, which can never be found again",
            });
        }
        return Ok(literal as libc::key_t);
    }
    let hash = fnv1a(name.as_str().as_bytes());
    Ok(if hash == 0 { 1 } else { hash as libc::key_t })
}

/// `0x` followed by 1 to 8 hex digits, or 1 to 10 decimal digits that fit 32 bits.
fn parse_literal(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if !hex.is_empty() && hex.len() <= 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u32::from_str_radix(hex, 16).ok();
        }
        return None;
    }
    if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
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
        key_for(&SegmentName::new(s).unwrap())
    }

    #[test]
    fn literals_and_hashes() {
        assert_eq!(key("0xdeadbeef").unwrap(), 0xdeadbeefu32 as i32);
        assert_eq!(key("12").unwrap(), 12);
        assert!(key("0x0").is_err());
        // "0x" with no digits, or too long, is a plain name
        assert_eq!(key("0x").unwrap(), fnv1a(b"/0x") as i32);
        assert_eq!(key("99999999999").unwrap(), fnv1a(b"/99999999999") as i32);
        // the documented hash, pinned
        assert_eq!(key("/test.shmem").unwrap(), fnv1a(b"/test.shmem") as i32);
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }
}
