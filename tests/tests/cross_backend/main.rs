//! The same scenario on every backend, chosen at run time through `Box<dyn DynBackend>`; where
//! the backends differ, the test asserts what each one's capabilities say.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use shm_core::{Access, Backend, CreateOptions, DynBackend, Segment, SegmentName};
use shm_tests::file_backend::FileBackend;
use shm_tests::unique_name;

fn backends() -> Vec<Box<dyn DynBackend>> {
    vec![
        Box::new(shm_posix::Posix::new()),
        Box::new(shm_sysv::SysV::new()),
        Box::new(FileBackend::new()),
    ]
}

/// Generic code, written once, run on a backend picked at run time.
fn scenario<B: Backend>(b: &B, name: &SegmentName) {
    let caps = b.capabilities();
    let mut seg = b
        .create(name, &CreateOptions::new(100).mode(0o640))
        .unwrap();
    let map = seg.map().unwrap();
    map.atomic::<AtomicU32>(0)
        .unwrap()
        .store(42, Ordering::SeqCst);

    let other = b.open(name, Access::ReadWrite).unwrap();
    let _second = other.map().unwrap();
    let info = seg.info().unwrap();
    assert_eq!(info.backend, b.name());
    assert_eq!(info.size, 100, "{}: not rounded to a page", b.name());
    assert_eq!(info.mode, 0o640);
    assert_eq!(info.nattch.is_some(), caps.attach_count, "{}", b.name());
    if caps.attach_count {
        assert_eq!(info.nattch, Some(2));
    }
    assert_eq!(info.cpid.is_some(), caps.tracks_pids, "{}", b.name());
    // A handle knows its name on every backend; only System V's kernel does not keep it (so
    // `list` cannot show it).
    assert_eq!(info.name.as_deref(), Some(name.as_str()), "{}", b.name());
    assert_eq!(
        info.key.is_some(),
        !caps.keeps_names,
        "{}: a key where no name",
        b.name()
    );

    let grown = seg.resize(8192);
    assert_eq!(grown.is_ok(), caps.resizable, "{}: resize", b.name());

    seg.unlink().unwrap();
    let after = b.info(name);
    assert!(
        after.unwrap_err().is_not_found(),
        "{}: gone by name after removal",
        b.name()
    );
    assert_eq!(
        map.atomic::<AtomicU32>(0).unwrap().load(Ordering::SeqCst),
        42
    );
}

#[test]
fn one_scenario_every_backend() {
    for b in backends() {
        let cleanup = shm_core::conformance::Cleanup::new(&b, b.name());
        scenario(&b, &cleanup.name);
    }
}

#[test]
fn one_name_two_kernels_two_objects() {
    let posix = shm_posix::Posix::new();
    let sysv = shm_sysv::SysV::new();
    let name = SegmentName::new(&unique_name("same-name")).unwrap();
    let _guards = (
        shm_tests::Cleanup::posix(name.as_str().to_owned()),
        shm_tests::Cleanup::sysv_key(shm_sysv::key_for(&name).unwrap().as_raw()),
    );
    let p = posix.create(&name, &CreateOptions::new(4096)).unwrap();
    let s = sysv.create(&name, &CreateOptions::new(4096)).unwrap();
    let (pm, sm) = (p.map().unwrap(), s.map().unwrap());
    pm.write_at(0, b"posix").unwrap();
    sm.write_at(0, b"sysv!").unwrap();
    let mut buf = [0u8; 5];
    pm.read_at(0, &mut buf).unwrap();
    assert_eq!(
        &buf, b"posix",
        "the kernels keep separate objects under one name"
    );
    let key = shm_sysv::key_for(&name).unwrap().as_raw();
    assert_eq!(sysv.info(&name).unwrap().key, Some(key));
}
