//! Interop with the `shared_memory` crate: one kernel object, two libraries, the same bytes.
#![allow(clippy::unwrap_used)]

use shared_memory::ShmemConf;
use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};
use shm_posix::Posix;
use shm_tests::{Cleanup, unique_name};

#[test]
fn segment_made_by_shared_memory_opens_through_posix() {
    let name = unique_name("from-shared-memory");
    let _guard = Cleanup::posix(name.clone());
    let theirs = ShmemConf::new().size(8192).os_id(&name).create().unwrap();
    // SAFETY: the segment is 8192 bytes and nobody else writes it during the test.
    unsafe {
        std::ptr::copy_nonoverlapping(
            b"written by shared_memory".as_ptr(),
            theirs.as_ptr().add(100),
            24,
        )
    };

    let ours = Posix
        .open(&SegmentName::new(&name).unwrap(), Access::ReadWrite)
        .unwrap();
    assert_eq!(ours.size(), 8192, "size learnt from the kernel");
    let map = ours.map().unwrap();
    let mut buf = [0u8; 24];
    map.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"written by shared_memory");

    map.write_at(4000, b"and back").unwrap();
    let mut back = [0u8; 8];
    // SAFETY: in bounds; no concurrent writer.
    unsafe { std::ptr::copy_nonoverlapping(theirs.as_ptr().add(4000), back.as_mut_ptr(), 8) };
    assert_eq!(&back, b"and back");
    assert!(!ours.is_owner(), "an opener never removes");
}

#[test]
fn segment_made_through_posix_opens_in_shared_memory() {
    let name = unique_name("to-shared-memory");
    let _guard = Cleanup::posix(name.clone());
    let seg = Posix
        .create(&SegmentName::new(&name).unwrap(), &CreateOptions::new(5000))
        .unwrap();
    let map = seg.map().unwrap();
    map.write_at(4990, b"tail bytes").unwrap();

    let mut theirs = ShmemConf::new().os_id(&name).open().unwrap();
    theirs.set_owner(false); // ours removes it, not theirs
    assert_eq!(theirs.len(), 5000);
    let mut buf = [0u8; 10];
    // SAFETY: in bounds of the 5000-byte segment; no concurrent writer.
    unsafe { std::ptr::copy_nonoverlapping(theirs.as_ptr().add(4990), buf.as_mut_ptr(), 10) };
    assert_eq!(&buf, b"tail bytes");
    drop(theirs);
    drop(map);
    drop(seg);
    assert!(
        !std::path::Path::new(&format!("/dev/shm{name}")).exists(),
        "the creator removed it"
    );
}
