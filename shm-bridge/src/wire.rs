//! What travels on the key besides the messages themselves: a small header in each sample's
//! attachment (the payload is the message, byte for byte).
//!
//! ```text
//! magic "shmB" | version (1 byte) | kind (1 byte) | run (u64 LE) | number (u64 LE)
//! ```
//!
//! `kind` is 0 for a message (`number`: its index in the stream, from 0), 1 for the end of a
//! complete stream and 2 for the end of an aborted one (`number`: how many messages the
//! stream held). `run` is drawn at random by each `out` bridge when it starts, so that the
//! `in` half notices a restarted `out` bridge instead of splicing two streams.

use crate::bridge::End;
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"shmB";
/// The protocol version this build speaks.
/// Version 2: the `in` half acknowledges the end of the stream (a liveliness token).
pub(crate) const VERSION: u8 = 2;
/// Bytes of a header.
pub(crate) const LEN: usize = 22;

/// What a sample carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Message number `n` of the stream.
    Message,
    /// The end of the stream, which held `n` messages.
    End(End),
}

/// One sample's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) run: u64,
    pub(crate) n: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let kind = match self.kind {
            Kind::Message => 0,
            Kind::End(End::Complete) => 1,
            Kind::End(End::Aborted) => 2,
        };
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&self.run.to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
        out
    }

    /// Reads a header from untrusted bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header> {
        let bad =
            |why: &str| Error::Protocol(format!("an attachment of {} bytes: {why}", bytes.len()));
        if bytes.len() != LEN || &bytes[..4] != MAGIC {
            return Err(bad("not a bridge header"));
        }
        if bytes[4] != VERSION {
            return Err(Error::Protocol(format!(
                "the far side speaks bridge protocol version {}, this side {VERSION}: run the same version on both",
                bytes[4]
            )));
        }
        let kind = match bytes[5] {
            0 => Kind::Message,
            1 => Kind::End(End::Complete),
            2 => Kind::End(End::Aborted),
            _ => return Err(bad("an unknown kind")),
        };
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Header {
            kind,
            run: word(6),
            n: word(14),
        })
    }
}

/// A number that differs between two `out` bridges with overwhelming likelihood: the standard
/// library's random hash keys, mixed with the process id and the time.
pub(crate) fn new_run() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for kind in [
            Kind::Message,
            Kind::End(End::Complete),
            Kind::End(End::Aborted),
        ] {
            let h = Header {
                kind,
                run: 0x0102_0304_0506_0708,
                n: u64::MAX - 3,
            };
            assert_eq!(Header::decode(&h.encode()).expect("decode"), h);
        }
    }

    #[test]
    fn strangers_are_refused() {
        let good = Header {
            kind: Kind::Message,
            run: 1,
            n: 2,
        }
        .encode();
        assert!(Header::decode(&good[..LEN - 1]).is_err());
        assert!(Header::decode(b"").is_err());
        let mut other = good.clone();
        other[0] = b'x';
        assert!(matches!(Header::decode(&other), Err(Error::Protocol(_))));
        let mut version = good.clone();
        version[4] = 9;
        let e = Header::decode(&version).expect_err("another version");
        assert!(e.to_string().contains("version 9"), "{e}");
        let mut kind = good;
        kind[5] = 3;
        assert!(Header::decode(&kind).is_err());
    }

    #[test]
    fn runs_differ() {
        assert_ne!(new_run(), new_run());
    }
}
