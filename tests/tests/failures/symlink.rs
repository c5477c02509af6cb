//! Symlinks planted in /dev/shm: create (with and without replace), open (read-only and
//! read-write) and info refuse them with [`Error::Symlink`], a clear message, and nothing is
//! written through the link: the target file keeps its bytes, size and mode, and a dangling
//! link's target never comes into existence. Removing the name removes the link only.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use shm_core::{Access, Backend, CreateOptions, Error, SegmentName};
use shm_posix::Posix;
use shm_tests::{shm, skip, temp_path, unique_name};

/// A symlink at /dev/shm/NAME, removed on drop (never its target).
struct Planted {
    name: SegmentName,
    link: PathBuf,
}

impl Planted {
    fn new(test: &str, target: &Path) -> Self {
        let name = SegmentName::new(&unique_name(test)).unwrap();
        let link = Path::new("/dev/shm").join(name.bare());
        std::os::unix::fs::symlink(target, &link).unwrap();
        Self { name, link }
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.link);
    }
}

fn assert_symlink_error(what: &str, name: &SegmentName, r: shm_core::Result<impl Sized>) {
    let err = match r {
        Ok(_) => panic!("{what}: succeeded through a planted symlink"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::Symlink { .. }), "{what}: {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(name.as_str()) && msg.contains("symbolic link"),
        "{what}: {msg}"
    );
}

#[test]
fn symlink_to_a_file_is_refused_and_the_file_is_untouched() {
    if !Path::new("/dev/shm").is_dir() {
        skip("symlink_to_a_file_is_refused", "no /dev/shm");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, b"precious bytes").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let planted = Planted::new("symlink-file", &target);
    let posix = Posix::new();
    let name = &planted.name;

    assert_symlink_error(
        "create",
        name,
        posix.create(name, &CreateOptions::new(4096)),
    );
    assert_symlink_error(
        "create --replace",
        name,
        posix.create(name, &CreateOptions::new(4096).replace(true)),
    );
    assert_symlink_error("open rw", name, posix.open(name, Access::ReadWrite));
    assert_symlink_error("open ro", name, posix.open(name, Access::ReadOnly));
    assert_symlink_error("info", name, posix.info(name));
    println!(
        "{}",
        posix.create(name, &CreateOptions::new(4096)).err().unwrap()
    );

    // Nothing went through the link: same bytes, same size, same mode.
    assert_eq!(std::fs::read(&target).unwrap(), b"precious bytes");
    let md = std::fs::metadata(&target).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o640);
    // The link is still the link (not replaced by a segment).
    assert!(
        std::fs::symlink_metadata(&planted.link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Removing the name is the recovery: it removes the link, never the target.
    posix.unlink(name).unwrap();
    assert!(std::fs::symlink_metadata(&planted.link).is_err());
    assert_eq!(std::fs::read(&target).unwrap(), b"precious bytes");
}

#[test]
fn dangling_symlink_is_refused_and_its_target_never_appears() {
    if !Path::new("/dev/shm").is_dir() {
        skip("dangling_symlink_is_refused", "no /dev/shm");
        return;
    }
    let target = temp_path("dangling-target");
    let planted = Planted::new("symlink-dangling", &target);
    let posix = Posix::new();
    let name = &planted.name;
    assert_symlink_error(
        "create",
        name,
        posix.create(name, &CreateOptions::new(4096)),
    );
    assert_symlink_error(
        "create --replace",
        name,
        posix.create(name, &CreateOptions::new(4096).replace(true)),
    );
    assert_symlink_error("open rw", name, posix.open(name, Access::ReadWrite));
    assert!(!target.exists(), "create made the link's target");
}

/// Through the binary: one clear line for create and read, the target unchanged.
#[test]
fn cli_refuses_a_planted_symlink() {
    let test = "cli_refuses_a_planted_symlink";
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, b"precious bytes").unwrap();
    let planted = Planted::new("cli-symlink", &target);
    let name = planted.name.as_str();
    let create = shm()
        .args(["create", name, "--size", "4096"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&create.stderr).contains("unexpected argument") {
        skip(test, "`shm create NAME --size` is not there yet");
        return;
    }
    let line = shm_tests::one_error_line("shm create over a symlink", &create);
    println!("{line}");
    assert!(line.contains("symbolic link"), "{line}");
    let write = shm().args(["write", name, "overwritten"]).output().unwrap();
    let line = shm_tests::one_error_line("shm write over a symlink", &write);
    assert!(line.contains("symbolic link"), "{line}");
    let read = shm().args(["read", name]).output().unwrap();
    let line = shm_tests::one_error_line("shm read over a symlink", &read);
    assert!(line.contains("symbolic link"), "{line}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious bytes");
}
