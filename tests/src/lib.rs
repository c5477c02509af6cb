//! Test support for the shm workspace, shared by every test binary of `tests/tests/` (one folder
//! each: `cli/main.rs` and its modules, ...): unique names and the one cleanup guard, the `shm`
//! binary and the rules its runs keep, forked and re-run children, the C++ reference program,
//! and a third backend written against shm-core's public API only.
//!
//! Start here: [`unique_name`] and [`Cleanup`], which every test that makes a segment uses.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod child;
pub mod cleanup;
pub mod cli;
pub mod file_backend;
pub mod host;
#[cfg(test)]
mod layering;
#[cfg(test)]
mod layout;
pub mod peer_process;
#[cfg(test)]
mod raw_pointers;
#[cfg(target_os = "linux")]
pub mod seccomp;

pub use child::{
    ChildResult, Pending, Reaped, Status, check, in_child, signal, spawn_child, test_path,
    this_test_again, wait_until,
};
pub use cleanup::{Cleanup, in_dev_shm, temp_path, unique_name};
pub use cli::{
    assert_nothing_left, made_posix, one_error_line, run_bounded, shm_exists, shm_json, shm_ok,
    sysv_left_by, test_process_start,
};
pub use host::{clock_ticks, is_root, proc_stat, reference_program, shm, shm_bin, skip};
