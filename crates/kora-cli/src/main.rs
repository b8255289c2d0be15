//! `kora`: start a server, or talk to one.
//!
//! ```sh
//! kora serve                       # embedded store in ./kora-data, http://127.0.0.1:4000
//! kora set todos/t1 '{"text": "hi"}'
//! kora get todos --limit 10
//! kora set counters/a 1 --if-equals 0   # only if it still holds 0 (else `conflict`)
//! kora watch todos                 # prints each change as it happens
//! kora backup kora.backup --token $ADMIN   # a consistent backup, while writes go on
//! kora restore kora.backup --data ./restored
//! ```

mod backup;
mod bench;
mod client;
mod effects;
mod serve;
mod transfer;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Kora: a programmable real-time JSON database.
#[derive(Parser)]
#[command(name = "kora", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a server (embedded store in ./kora-data unless told otherwise).
    Serve(serve::ServeArgs),
    /// Print the value at a path.
    Get(client::GetArgs),
    /// Replace the value at a path.
    Set(client::WriteArgs),
    /// Merge a value into a path (`null` members delete).
    Merge(client::WriteArgs),
    /// Delete a path and everything under it.
    Delete(client::DeleteArgs),
    /// Print each change under a path as it happens.
    Watch(client::WatchArgs),
    /// Write every leaf under a path as JSON lines to standard output.
    Export(transfer::ExportArgs),
    /// Read JSON lines (as written by export) from standard input and write them.
    Import(transfer::ImportArgs),
    /// Write a consistent backup of a running server's embedded store to a file.
    Backup(backup::BackupArgs),
    /// Make a new data directory from a backup.
    Restore(backup::RestoreArgs),
    /// The dead letters of a running server: list, retry or drop effects out of tries.
    Effects(effects::EffectsArgs),
    /// Load-test a server over real WebSockets.
    Bench(bench::BenchArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Get(args) => client::get(args).await,
            Command::Set(args) => client::write(args, client::Op::Set).await,
            Command::Merge(args) => client::write(args, client::Op::Merge).await,
            Command::Delete(args) => client::delete(args).await,
            Command::Watch(args) => client::watch(args).await,
            Command::Export(args) => transfer::export(args).await,
            Command::Import(args) => transfer::import(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Effects(args) => effects::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    })
}
