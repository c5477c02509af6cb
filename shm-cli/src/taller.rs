//! `shm taller`: the game of the original C++ program (stub: see issue 3).

use anyhow::{Result, bail};

use crate::Global;

/// Arguments of `shm taller`.
#[derive(Debug, clap::Args)]
pub struct TallerArgs {}

/// Runs `shm taller`.
pub fn run(_g: &Global, _a: &TallerArgs) -> Result<()> {
    bail!("not implemented yet")
}
