//! A topic's [`Fingerprint`]: what its header says about the message type, checked at open.

/// What a topic says about its message type: size, alignment and a 64-bit hash of a name.
/// A subscriber whose type has another fingerprint than the publisher's is refused at open
/// ([`Error::WrongType`](crate::Error::WrongType)), so that two programs that disagree about the type never read each
/// other's bytes as their own.
///
/// ```
/// use shm_channel::pubsub::Fingerprint;
/// #[derive(zerocopy::IntoBytes, zerocopy::FromBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
/// #[repr(C)]
/// struct Frame { seq: u64, pixels: [u8; 56] }
/// let f = Fingerprint::of::<Frame>();
/// assert_eq!((f.size(), f.align()), (64, 8));
/// assert_ne!(f, Fingerprint::named::<Frame>("camera.Frame/2"));
/// assert_ne!(f, Fingerprint::BYTES);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) hash: u64,
}

impl Fingerprint {
    /// The fingerprint of untyped topics (messages of any length up to the maximum).
    pub const BYTES: Fingerprint = Fingerprint {
        size: 0,
        align: 0,
        hash: 0,
    };

    /// `T`'s size, alignment and the hash of its Rust type name (`std::any::type_name`, which
    /// names the crate and module: two programs share a type when they share the crate that
    /// defines it, built by the same compiler). Use [`named`](Self::named) to name it yourself.
    pub fn of<T>() -> Fingerprint {
        Self::named::<T>(std::any::type_name::<T>())
    }

    /// `T`'s size and alignment and the hash of `name` (give the type a stable name and a
    /// version: `"camera.Frame/2"`).
    pub fn named<T>(name: &str) -> Fingerprint {
        Fingerprint {
            size: size_of::<T>() as u32,
            align: align_of::<T>() as u32,
            hash: fnv1a(name.as_bytes()),
        }
    }

    /// The type's size in bytes (0 for untyped topics).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The type's alignment (0 for untyped topics).
    pub fn align(&self) -> u32 {
        self.align
    }

    /// The hash of the type's name (0 for untyped topics).
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Self::BYTES {
            return f.write_str("untyped bytes");
        }
        write!(
            f,
            "a type of {} bytes, alignment {}, name hash {:#018x}",
            self.size, self.align, self.hash
        )
    }
}

/// FNV-1a, 64 bits: a stable hash (the standard library's is not stable across builds).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
