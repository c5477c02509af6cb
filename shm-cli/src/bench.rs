//! `shm bench`: speed against the floor (stub: see issue 5).

use anyhow::{Result, bail};

use crate::Global;

/// Arguments of `shm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `shm bench`.
pub fn run(_g: &Global, _a: &BenchArgs) -> Result<()> {
    bail!("not implemented yet")
}
