//! The binary's own smoke tests. (Its presence also makes `cargo test` build `target/*/shm`,
//! which the end-to-end tests in the `shm-tests` crate run.)

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn help_lists_the_commands() {
    Command::cargo_bin("shm")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(
            contains("taller")
                .and(contains("compare"))
                .and(contains("list")),
        );
}

#[test]
fn unknown_backend_is_one_clear_line() {
    Command::cargo_bin("shm")
        .unwrap()
        .args(["--backend", "nope", "list"])
        .assert()
        .failure()
        .stderr(contains("nope"));
}
