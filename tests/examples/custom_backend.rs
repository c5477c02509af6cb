//! A backend of your own, proven with the conformance suite at run time.
//!
//! ```sh
//! cargo run -p shm-tests --example custom_backend
//! ```
//!
//! The backend is `shm_tests::file_backend::FileBackend` (in `tests/src/file_backend.rs`): segments
//! as files in a private directory, mapped with the backend kit (`shm_core::kit`), written only
//! against `shm-core`'s public API, as a crate outside this workspace would write it. It implements [`shm_core::Backend`]
//! and [`shm_core::Segment`], wraps its mappings with [`shm_core::Mapping::from_raw_parts`],
//! and reports its differences in [`shm_core::Capabilities`].
//!
//! [`shm_core::conformance::all`] (feature `conformance`) lists every test of the suite; this
//! runs them one by one, printing `ok NAME` or `FAILED NAME`, and exits non-zero when one fails.
//! In a test suite, `shm_core::conformance_tests!(MyBackend::new());` makes the same list into
//! `#[test]`s.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use shm_tests::file_backend::FileBackend;

fn main() -> ExitCode {
    let tests = shm_core::conformance::all::<FileBackend>();
    let mut failed = 0;
    for (name, test) in &tests {
        // Each test gets a fresh backend, as the `#[test]` form does.
        let backend = FileBackend::new();
        if catch_unwind(AssertUnwindSafe(|| test(&backend))).is_ok() {
            println!("ok {name}");
        } else {
            println!("FAILED {name}");
            failed += 1;
        }
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
