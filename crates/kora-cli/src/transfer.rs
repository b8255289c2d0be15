//! `kora export` and `kora import`: leaves as JSON lines, `{"path": "a/b", "value": …}`.

use anyhow::Result;
use clap::Args;

use crate::client::Server;

#[derive(Args)]
pub struct ExportArgs {
    /// The subtree to export (default: everything).
    #[arg(default_value = "")]
    pub path: String,
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: Server,
}

pub async fn export(_args: ExportArgs) -> Result<()> {
    anyhow::bail!("export is not available yet")
}

pub async fn import(_args: ImportArgs) -> Result<()> {
    anyhow::bail!("import is not available yet")
}
