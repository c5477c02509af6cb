//! `shm compare`: POSIX and System V side by side, observed live (stub: see issue 4).

use anyhow::{Result, bail};

use crate::Global;

/// Arguments of `shm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

/// Runs `shm compare`.
pub fn run(_g: &Global, _a: &CompareArgs) -> Result<()> {
    bail!("not implemented yet")
}
