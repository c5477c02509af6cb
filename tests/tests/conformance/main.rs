//! The conformance suite of shm-core, run once per backend. Test names say which:
//! `posix::ownership_on_drop`, `sysv::ownership_on_drop`, `file::ownership_on_drop`.

mod posix {
    shm_core::conformance_tests!(shm_posix::Posix::new());
}

mod sysv {
    shm_core::conformance_tests!(shm_sysv::SysV::new());
}

/// The third backend, written in this test crate against shm-core's public API only.
mod file {
    shm_core::conformance_tests!(shm_tests::file_backend::FileBackend::new());
}

/// A backend that the suite must refuse: the file backend with its SIGBUS protection taken
/// away (its mappings hand over no descriptor, so copies are plain `memcpy`s), declaring that
/// it cannot be resized. Its files can still be shrunk by anyone who opens them.
mod unguarded {
    use shm_core::{
        Access, Backend, Capabilities, Context, CreateOptions, Error, MapBacking, Mapping, Op,
        Result, Segment, SegmentInfo, SegmentName,
    };
    use shm_tests::file_backend::{FileBackend, FileSegment};

    pub struct Unguarded(pub FileBackend);
    pub struct UnguardedSegment(FileSegment);
    /// Keeps the file backend's mapping alive (dropping it unmaps), and tells nothing of
    /// its descriptor.
    struct Hidden {
        _mapping: Mapping,
    }

    impl MapBacking for Hidden {
        fn backend(&self) -> &'static str {
            "unguarded"
        }
        fn segment(&self) -> shm_core::SegmentRef {
            "unguarded".into()
        }
    }

    impl Backend for Unguarded {
        type Segment = UnguardedSegment;
        fn name(&self) -> &'static str {
            "unguarded"
        }
        fn capabilities(&self) -> Capabilities {
            let mut caps = self.0.capabilities();
            caps.resizable = false;
            caps
        }
        fn create(&self, name: &SegmentName, opts: &CreateOptions) -> Result<UnguardedSegment> {
            self.0.create(name, opts).map(UnguardedSegment)
        }
        fn open(&self, name: &SegmentName, access: Access) -> Result<UnguardedSegment> {
            self.0.open(name, access).map(UnguardedSegment)
        }
        fn unlink(&self, name: &SegmentName) -> Result<()> {
            self.0.unlink(name)
        }
        fn info(&self, name: &SegmentName) -> Result<SegmentInfo> {
            self.0.info(name)
        }
        fn list(&self) -> Result<Vec<SegmentInfo>> {
            self.0.list()
        }
    }

    impl Segment for UnguardedSegment {
        fn name(&self) -> &SegmentName {
            self.0.name()
        }
        fn size(&self) -> usize {
            self.0.size()
        }
        fn access(&self) -> Access {
            self.0.access()
        }
        fn map(&self) -> Result<Mapping> {
            let inner = self.0.map()?;
            let (ptr, len, writable) = (inner.as_ptr(), inner.len(), inner.is_writable());
            let ptr = std::ptr::NonNull::new(ptr).expect("a mapping is never null");
            // SAFETY: the same pages as `inner`, which `Hidden` keeps mapped until it is
            // dropped; nothing else unmaps them.
            Ok(unsafe {
                Mapping::from_raw_parts(ptr, len, writable, Box::new(Hidden { _mapping: inner }))
            })
        }
        fn info(&self) -> Result<SegmentInfo> {
            self.0.info()
        }
        fn is_owner(&self) -> bool {
            self.0.is_owner()
        }
        fn keep(&mut self) {
            self.0.keep()
        }
        fn unlink(&mut self) -> Result<()> {
            self.0.unlink()
        }
        fn resize(&mut self, _size: usize) -> Result<()> {
            Err(Error::Unsupported {
                ctx: Context::new("unguarded", self.0.name().as_str(), Op::Resize),
                what: "resizing",
            })
        }
    }
}

/// The suite catches a backend that declares it cannot be resized while other programs can
/// still shrink its objects, and has no SIGBUS protection: exactly the rule that shrinks the
/// object behind the backend's back fails, every other rule passes.
#[test]
fn the_suite_refuses_a_backend_without_sigbus_protection() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let failed: Vec<&str> = shm_core::conformance::all::<unguarded::Unguarded>()
        .into_iter()
        .filter(|(_, test)| {
            let sut = unguarded::Unguarded(shm_tests::file_backend::FileBackend::new());
            catch_unwind(AssertUnwindSafe(|| test(&sut))).is_err()
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        failed,
        ["shrink_behind_the_backends_back_is_an_error_not_sigbus"],
        "the rules that refused the unguarded backend"
    );
}
