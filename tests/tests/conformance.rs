//! The conformance suite of shm-core, run once per backend. Test names say which:
//! `posix::ownership_on_drop`, `sysv::ownership_on_drop`, `file::ownership_on_drop`.

mod posix {
    shm_core::conformance_tests!(shm_posix::Posix::new());
}

mod sysv {
    shm_core::conformance_tests!(shm_sysv::SysV::new());
}
