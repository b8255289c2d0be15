//! `kora effects`: the dead letters (effects out of tries) of a running server, for its
//! administrator (`--token` the server's `[auth] admin_secret`). See kora-server's `effects`.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::client::{checked, print, Server};

#[derive(Args)]
pub struct EffectsArgs {
    #[command(subcommand)]
    pub command: EffectsCommand,
}

#[derive(Subcommand)]
pub enum EffectsCommand {
    /// List the dead effects, oldest first, with the outbox's counts.
    Dead {
        /// The most to list (the server allows at most 1,000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        server: Server,
    },
    /// Send a dead effect back to be run, its tries reset.
    Retry {
        id: u64,
        #[command(flatten)]
        server: Server,
    },
    /// Forget a dead effect without running it.
    Drop {
        id: u64,
        #[command(flatten)]
        server: Server,
    },
}

pub async fn run(args: EffectsArgs) -> Result<()> {
    let (EffectsCommand::Dead { server, .. }
    | EffectsCommand::Retry { server, .. }
    | EffectsCommand::Drop { server, .. }) = &args.command;
    let http = server.client()?;
    let answer = match &args.command {
        EffectsCommand::Dead { limit, .. } => {
            let mut url = server.endpoint(&["v1", "effects", "dead"])?;
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
            checked(http.get(url).send().await?).await?
        }
        EffectsCommand::Retry { id, .. } => {
            let url = server.endpoint(&["v1", "effects", "dead", &id.to_string(), "retry"])?;
            checked(http.post(url).send().await?).await?
        }
        EffectsCommand::Drop { id, .. } => {
            let url = server.endpoint(&["v1", "effects", "dead", &id.to_string()])?;
            checked(http.delete(url).send().await?).await?
        }
    };
    print(&answer)
}
