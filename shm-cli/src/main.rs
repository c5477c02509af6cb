//! The `shm` command.
fn main() {}
