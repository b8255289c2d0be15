//! `kora bench`: a load generator over real WebSockets.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("bench is not available yet")
}
