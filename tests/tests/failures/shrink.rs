//! A POSIX segment shrunk (`ftruncate`) by another process after we mapped it: `read_at` and
//! `write_at` absorb the SIGBUS of pages past the end and return [`Error::OutOfBounds`] (after
//! the first fault, every copy of that mapping is checked against the new size). Atomic views cannot check on every
//! access: a child process proves that their risk is real (it dies by SIGBUS), as the
//! `Mapping` docs say.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_posix::Posix;
use shm_tests::{Status, in_child, unique_name};

const PAGE: usize = 4096;

/// Another process opens the segment by name and shrinks it to `size`.
fn shrink_from_another_process(name: &SegmentName, size: usize) {
    in_child(|| {
        let mut seg = Posix::new()
            .open(name, Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        seg.resize(size).map_err(|e| e.to_string())?;
        Ok(String::new())
    })
    .ok();
}

#[test]
fn read_and_write_after_a_shrink_are_errors_not_sigbus() {
    let posix = Posix::new();
    let name = SegmentName::new(&unique_name("shrink")).unwrap();
    let seg = posix.create(&name, &CreateOptions::new(4 * PAGE)).unwrap();
    let map = seg.map().unwrap();
    map.write_at(3 * PAGE, b"last page").unwrap();
    map.write_at(10, b"first page").unwrap();

    shrink_from_another_process(&name, PAGE + 100);

    // Past the new end, in pages that no longer exist: errors that give the new size.
    let mut buf = [0u8; 9];
    let err = map.read_at(3 * PAGE, &mut buf).unwrap_err();
    println!("{err}");
    assert!(
        matches!(err, Error::OutOfBounds { size, .. } if size == PAGE + 100),
        "{err:?}"
    );
    let err = map.write_at(2 * PAGE, b"x").unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err:?}");
    // Straddling the new end: refused too, even though its first byte exists.
    let err = map.write_at(PAGE + 90, &[1u8; 20]).unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err:?}");
    // Inside the new size: the bytes are still there.
    let mut buf = [0u8; 10];
    map.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"first page");
    map.write_at(PAGE + 90, b"0123456789").unwrap();

    // The same in another process that mapped the segment before the shrink and checks after
    // it: it ends normally (no SIGBUS), with the errors above.
    let name2 = SegmentName::new(&unique_name("shrink-child")).unwrap();
    let seg2 = posix.create(&name2, &CreateOptions::new(4 * PAGE)).unwrap();
    let map2 = seg2.map().unwrap();
    let gate = map2.atomic::<AtomicU32>(0).unwrap();
    let child = shm_tests::spawn_child(|| {
        let seg = Posix::new()
            .open(&name2, Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        let map = seg.map().map_err(|e| e.to_string())?;
        let gate = map.atomic::<AtomicU32>(0).map_err(|e| e.to_string())?;
        gate.store(1, Ordering::SeqCst);
        while gate.load(Ordering::SeqCst) != 2 {
            std::thread::yield_now();
        }
        let mut buf = [0u8; 16];
        match map.read_at(3 * PAGE, &mut buf) {
            Err(Error::OutOfBounds { .. }) => Ok("refused".into()),
            other => Err(format!("{other:?}")),
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while gate.load(Ordering::SeqCst) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never mapped"
        );
        std::thread::yield_now();
    }
    let mut seg2_handle = posix.open(&name2, Access::ReadWrite).unwrap();
    seg2_handle.resize(PAGE).unwrap();
    gate.store(2, Ordering::SeqCst);
    assert_eq!(child.wait().ok(), "refused");
}

#[test]
fn an_atomic_past_a_shrunk_end_is_sigbus_as_documented() {
    let posix = Posix::new();
    let name = SegmentName::new(&unique_name("shrink-atomic")).unwrap();
    let seg = posix.create(&name, &CreateOptions::new(4 * PAGE)).unwrap();
    let map = seg.map().unwrap();
    // Taken while the segment was large: the view stays, the pages under it go.
    let word = map.atomic::<AtomicU32>(3 * PAGE).unwrap();
    shrink_from_another_process(&name, PAGE);
    let touched = in_child(|| Ok(word.load(Ordering::SeqCst).to_string()));
    assert_eq!(
        touched.status,
        Status::Signaled(libc::SIGBUS),
        "a load past the end of a shrunk object raises SIGBUS: {touched}"
    );
    // A view made after the shrink is checked against the object's size now, and refused; it
    // is the view held across the shrink that no check can save, which is why the docs say: do
    // not shrink a segment that others use.
    assert!(matches!(
        map.atomic::<AtomicU32>(3 * PAGE),
        Err(Error::OutOfBounds { .. })
    ));
}
