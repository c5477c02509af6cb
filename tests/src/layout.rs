//! The test binaries' layout that README (Testing) describes: every test binary of `tests/tests/`
//! is a folder with a `main.rs` and its modules, none a loose file, so that what they share is
//! compiled once, in this library, not into each binary.

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
