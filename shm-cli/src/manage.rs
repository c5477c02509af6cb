//! `shm create|info|list|rm|read|write` (stub: see issue 4).

use anyhow::{Result, bail};

use crate::Global;

/// Arguments of `shm create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {}
/// Arguments of `shm info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {}
/// Arguments of `shm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}
/// Arguments of `shm rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {}
/// Arguments of `shm read`.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {}
/// Arguments of `shm write`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {}

/// `shm create`.
pub fn create(_g: &Global, _a: &CreateArgs) -> Result<()> {
    bail!("not implemented yet")
}
/// `shm info`.
pub fn info(_g: &Global, _a: &InfoArgs) -> Result<()> {
    bail!("not implemented yet")
}
/// `shm list`.
pub fn list(_g: &Global, _a: &ListArgs) -> Result<()> {
    bail!("not implemented yet")
}
/// `shm rm`.
pub fn rm(_g: &Global, _a: &RmArgs) -> Result<()> {
    bail!("not implemented yet")
}
/// `shm read`.
pub fn read(_g: &Global, _a: &ReadArgs) -> Result<()> {
    bail!("not implemented yet")
}
/// `shm write`.
pub fn write(_g: &Global, _a: &WriteArgs) -> Result<()> {
    bail!("not implemented yet")
}
