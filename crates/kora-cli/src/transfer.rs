//! `kora export` and `kora import`: the stored leaves as JSON lines,
//! `{"path": "a/b", "value": …}`, ending with `{"end": {"leaves": N}}` (see
//! kora-server's `export`). Both stream: memory stays flat for millions of leaves. On a
//! terminal they show progress on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use kora_core::query::place;
use kora_core::Path;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::client::{checked, Server};

/// Leaves per mutation when importing.
pub const IMPORT_BATCH_LEAVES: usize = 1_000;

/// Bytes of JSON lines per mutation when importing: well under the server's default body
/// limit (16 MiB), so one large value does not need a second try.
pub const IMPORT_BATCH_BYTES: usize = 1 << 20;

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

/// One line of a dump.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    path: Option<String>,
    /// `null` when missing: either way there is nothing to store.
    #[serde(default)]
    value: Value,
    end: Option<End>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct End {
    leaves: u64,
}

fn progress(what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}} leaves ({{per_sec}}, {{elapsed}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Streams `/v1/export/{path}` to stdout, and fails unless the server said it was complete.
pub async fn export(args: ExportArgs) -> Result<()> {
    let url = args.server.url_for("export", &args.path)?;
    let response = args.server.client()?.get(url).send().await?;
    if !response.status().is_success() {
        checked(response).await?;
        bail!("the export was refused");
    }
    let bar = progress("exported");
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let mut body = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut ended: Option<u64> = None;
    let mut leaves = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the export stream broke off")?;
        pending.extend_from_slice(&chunk);
        let Some(last_newline) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let complete: Vec<u8> = pending.drain(..=last_newline).collect();
        for text in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let line: Line = serde_json::from_slice(text).context("the server sent a bad line")?;
            if let Some(error) = line.error {
                bail!("the export failed after {leaves} leaves: {error}");
            }
            if let Some(end) = line.end {
                ended = Some(end.leaves);
            } else {
                leaves += 1;
                bar.inc(1);
            }
            out.write_all(text).await?;
            out.write_all(b"\n").await?;
        }
    }
    out.flush().await?;
    bar.finish_and_clear();
    match ended {
        Some(n) if n == leaves => {
            eprintln!("exported {leaves} leaves");
            Ok(())
        }
        Some(n) => bail!("the server counted {n} leaves but sent {leaves}"),
        None => bail!("the export stream ended early, after {leaves} leaves"),
    }
}

/// Reads a dump from stdin and merges it in batches through `/v1/mutate`.
pub async fn import(args: ImportArgs) -> Result<()> {
    let client = args.server.client()?;
    let mutate = args.server.endpoint(&["v1", "mutate"])?;
    let bar = progress("imported");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut batch = Batch::default();
    let mut imported = 0u64;
    let mut end: Option<u64> = None;
    let mut number = 0u64;
    while let Some(text) = lines.next_line().await? {
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            bail!("line {number}: data after the end line");
        }
        let line: Line = serde_json::from_str(&text)
            .with_context(|| format!("line {number} is not a dump line"))?;
        match parse(line).with_context(|| format!("line {number}"))? {
            Entry::End(n) => end = Some(n),
            Entry::Leaf(path, value) => {
                batch.add(&path, value, text.len());
                if batch.leaves >= IMPORT_BATCH_LEAVES || batch.bytes >= IMPORT_BATCH_BYTES {
                    imported += batch.send(&client, &mutate).await?;
                    bar.set_position(imported);
                }
            }
        }
    }
    imported += batch.send(&client, &mutate).await?;
    bar.finish_and_clear();
    match end {
        Some(n) if n != imported => {
            bail!("the dump's end line counts {n} leaves, but it held {imported}")
        }
        Some(_) => eprintln!("imported {imported} leaves"),
        None => {
            eprintln!("imported {imported} leaves (the dump has no end line: it may be incomplete)")
        }
    }
    Ok(())
}

enum Entry {
    Leaf(Path, Value),
    End(u64),
}

fn parse(line: Line) -> Result<Entry> {
    if let Some(error) = line.error {
        bail!("the dump records a failed export: {error}");
    }
    match (line.path, line.value, line.end) {
        (Some(path), value, None) => {
            let path = Path::parse(&path).with_context(|| format!("invalid path {path:?}"))?;
            if value.is_null() {
                bail!("{path}: the value is missing or null (nothing is stored as null)");
            }
            if path.is_root() && !value.is_object() {
                bail!("the root holds an object, not {value}");
            }
            Ok(Entry::Leaf(path, value))
        }
        (None, Value::Null, Some(end)) => Ok(Entry::End(end.leaves)),
        _ => bail!(r#"expected {{"path", "value"}} or {{"end"}}"#),
    }
}

/// Leaves gathered into one merge.
#[derive(Default)]
struct Batch {
    merge: Map<String, Value>,
    leaves: usize,
    bytes: usize,
}

impl Batch {
    fn add(&mut self, path: &Path, value: Value, bytes: usize) {
        if path.is_root() {
            if let Value::Object(children) = value {
                self.merge.extend(children);
            }
        } else {
            place(&mut self.merge, path.segments(), value);
        }
        self.leaves += 1;
        self.bytes += bytes;
    }

    /// Commits the batch (one atomic mutation) and returns how many leaves it held.
    async fn send(&mut self, client: &reqwest::Client, url: &reqwest::Url) -> Result<u64> {
        if self.leaves == 0 {
            return Ok(0);
        }
        let merge = std::mem::take(&mut self.merge);
        let body = json!({"merge": merge, "delete": {}});
        checked(client.post(url.clone()).json(&body).send().await?).await?;
        let sent = self.leaves as u64;
        self.leaves = 0;
        self.bytes = 0;
        Ok(sent)
    }
}
