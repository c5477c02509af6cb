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
