//! The test binaries' layout that README (Testing) describes: every test binary of `tests/tests/`
//! is a folder with a `main.rs` and its modules, none a loose file, so that what they share is
//! compiled once, in this library, not into each binary; and every crate's front page says where
//! a newcomer starts.

use std::path::Path;

#[test]
fn every_test_binary_is_a_folder_with_a_main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut binaries = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/tests") {
        let path = entry.expect("entry").path();
        assert!(
            path.is_dir(),
            "{} is a loose file: put it into the folder of its binary as a module (`mod x;`)",
            path.display()
        );
        assert!(
            path.join("main.rs").is_file(),
            "{} has no main.rs",
            path.display()
        );
        binaries.push(
            path.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    for named in [
        "conformance",
        "cross_backend",
        "channel",
        "cli",
        "failures",
        "hostile",
        "interop",
    ] {
        assert!(
            binaries.iter().any(|b| b == named),
            "README names {named}: {binaries:?}"
        );
    }
}

/// Every crate's front page (its root's `//!` docs) points a newcomer to where to begin.
#[test]
fn every_crate_front_page_says_where_to_start() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).expect("Cargo.toml");
    let list = &manifest[manifest.find("members").expect("members")..];
    let list = &list[list.find('[').expect("[") + 1..list.find(']').expect("]")];
    let mut missing = Vec::new();
    for member in list.split(',').map(|m| m.trim().trim_matches('"')) {
        if member.is_empty() {
            continue;
        }
        let root = ["src/lib.rs", "src/main.rs"]
            .iter()
            .find_map(|f| std::fs::read_to_string(workspace.join(member).join(f)).ok())
            .unwrap_or_default();
        let front: Vec<&str> = root.lines().take_while(|l| l.starts_with("//!")).collect();
        if !front.iter().any(|l| l.starts_with("//! Start here:")) {
            missing.push(member.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "no `//! Start here:` line on the front page of {missing:?}"
    );
}
