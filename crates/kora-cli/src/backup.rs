//! `kora backup DEST` and `kora restore SRC`: a consistent backup of a running server's
//! embedded store, and a new data directory made from one (kora-server's `backup`,
//! kora-store's `embedded::backup`).
//!
//! The backup is written to `DEST.partial`, checked end to end, made durable, and only then
//! renamed to `DEST`: a `DEST` that exists is complete. Killed half-way, the command leaves
//! `DEST.partial`, which has no end marker, and `kora restore` refuses it.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use futures_util::StreamExt;
use kora_store::embedded::backup;
use kora_store::{EmbeddedStore, DEFAULT_DATA_DIR};

use crate::client::{checked, Server};

#[derive(Args)]
pub struct BackupArgs {
    /// The file to write (refused if it exists).
    pub dest: PathBuf,
    /// The server, and its administrator (`--token` = its `[auth] admin_secret`).
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A backup written by `kora backup`.
    pub src: PathBuf,
    /// The data directory to create (it must not exist, or be empty).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
}

/// Streams `/v1/backup` into `DEST.partial`, checks it, and renames it to `DEST`.
pub async fn backup(args: BackupArgs) -> Result<()> {
    if args.dest.exists() {
        bail!("{} exists: choose a new file", args.dest.display());
    }
    let partial = partial_path(&args.dest);
    let url = args.server.endpoint(&["v1", "backup"])?;
    let response = args.server.client()?.get(url).send().await?;
    if !response.status().is_success() {
        checked(response).await?;
        bail!("the backup was refused");
    }
    let mut file =
        File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.context("the backup stream broke off (the partial file is incomplete)")?;
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    file.sync_all()?;
    drop(file);
    let (checking, dest) = (partial.clone(), args.dest.clone());
    let info = tokio::task::spawn_blocking(move || {
        backup::verify(File::open(&checking)?).map_err(anyhow::Error::from)
    })
    .await?
    .with_context(|| format!("the backup in {} does not check out", partial.display()))?;
    std::fs::rename(&partial, &dest)?;
    sync_parent(&dest)?;
    eprintln!(
        "backup at sequence {} ({} entries, {} bytes) written to {}",
        info.seq,
        info.entries,
        info.bytes,
        dest.display()
    );
    Ok(())
}

/// Restores `SRC` into a new data directory.
pub async fn restore(args: RestoreArgs) -> Result<()> {
    let (src, data) = (args.src.clone(), args.data.clone());
    let info = tokio::task::spawn_blocking(move || {
        let file = File::open(&src).with_context(|| format!("opening {}", src.display()))?;
        EmbeddedStore::restore(file, &data).map_err(anyhow::Error::from)
    })
    .await??;
    eprintln!(
        "restored {} at sequence {} into {} ({} entries); start it with: kora serve --data {}",
        args.src.display(),
        info.seq,
        args.data.display(),
        info.entries,
        args.data.display()
    );
    Ok(())
}

/// `kora.backup` → `kora.backup.partial`.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(parent)?.sync_all()?;
    Ok(())
}
