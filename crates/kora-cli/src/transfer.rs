//! `kora export` and `kora import`: the stored leaves as JSON lines,
//! `{"path": "a/b", "value": …}`, ending with `{"end": {"leaves": N}}` (see
//! kora-server's `export`). Both stream: memory stays flat for millions of leaves. On a
//! terminal they show progress on stderr.
//!
//! `kora export --full` (the administrator's) adds each leaf's `stamp` and the tombstones,
//! `{"path": …, "deleted": STAMP}`; `kora import` writes those with their stamps — the
//! writes of one stamp together, several in flight — so a dump merged into a live server
//! keeps last-writer-wins: a newer write there is not overwritten by an older one from the
//! dump, and a newer delete in the dump removes what it deleted.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use kora_core::{Mutation, Path, Stamp};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::client::{checked, Server};

/// Leaves per mutation when importing.
pub const IMPORT_BATCH_LEAVES: usize = 1_000;

/// Bytes of JSON lines per mutation when importing: well under the server's default body
/// limit (16 MiB), so one large value does not need a second try.
pub const IMPORT_BATCH_BYTES: usize = 1 << 20;

/// Stamped writes sent at once while importing a full dump.
pub const IMPORT_IN_FLIGHT: usize = 8;

#[derive(Args)]
pub struct ExportArgs {
    /// The subtree to export (default: everything).
    #[arg(default_value = "")]
    pub path: String,
    /// Every leaf with its stamp, and the tombstones (needs the admin secret as --token).
    #[arg(long)]
    pub full: bool,
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
    /// The leaf's stamp (a full export).
    stamp: Option<Stamp>,
    /// A tombstone's stamp (a full export).
    deleted: Option<Stamp>,
    end: Option<End>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    leaves: u64,
    /// Present in a full export.
    tombstones: Option<u64>,
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
    let mut url = args.server.url_for("export", &args.path)?;
    if args.full {
        url.query_pairs_mut().append_pair("full", "true");
    }
    let response = args.server.client()?.get(url).send().await?;
    if !response.status().is_success() {
        checked(response).await?;
        bail!("the export was refused");
    }
    let bar = progress("exported");
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let mut body = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut ended: Option<End> = None;
    let (mut leaves, mut tombstones) = (0u64, 0u64);
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
                ended = Some(end);
            } else if line.deleted.is_some() {
                tombstones += 1;
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
        Some(end) if end.leaves == leaves && end.tombstones.unwrap_or(0) == tombstones => {
            match end.tombstones {
                Some(_) => eprintln!("exported {leaves} leaves and {tombstones} tombstones"),
                None => eprintln!("exported {leaves} leaves"),
            }
            Ok(())
        }
        Some(end) => bail!(
            "the server counted {} leaves and {} tombstones but sent {leaves} and {tombstones}",
            end.leaves,
            end.tombstones.unwrap_or(0)
        ),
        None => bail!("the export stream ended early, after {leaves} leaves"),
    }
}

/// Reads a dump from stdin and writes it in batches through `/v1/mutate`: plain leaves
/// merged with the server's stamps, a full dump's leaves and tombstones with their own.
pub async fn import(args: ImportArgs) -> Result<()> {
    let client = args.server.client()?;
    let mutate = args.server.endpoint(&["v1", "mutate"])?;
    let bar = progress("imported");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut batch = Batch::default();
    let mut sending = Sending::new(client, mutate);
    let mut end: Option<End> = None;
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
        let entry = parse(line).with_context(|| format!("line {number}"))?;
        let stamp = match entry {
            Entry::End(done) => {
                end = Some(done);
                continue;
            }
            Entry::Leaf(_, _, stamp) | Entry::Deleted(_, stamp) => stamp,
        };
        // A batch holds writes of one stamp (or none).
        if batch.stamp != stamp || batch.full() {
            sending.send(batch.take()).await?;
            bar.set_position(sending.leaves);
        }
        batch.stamp = stamp;
        batch.add(entry, text.len())?;
    }
    sending.send(batch.take()).await?;
    let (leaves, tombstones) = sending.finish().await?;
    bar.finish_and_clear();
    let counted = end.as_ref().map(|e| (e.leaves, e.tombstones.unwrap_or(0)));
    match counted {
        Some(counted) if counted != (leaves, tombstones) => bail!(
            "the dump's end line counts {} leaves and {} tombstones, but it held {leaves} and {tombstones}",
            counted.0,
            counted.1
        ),
        Some(_) if tombstones > 0 => eprintln!("imported {leaves} leaves and {tombstones} tombstones"),
        Some(_) => eprintln!("imported {leaves} leaves"),
        None => {
            eprintln!("imported {leaves} leaves (the dump has no end line: it may be incomplete)")
        }
    }
    Ok(())
}

enum Entry {
    /// A leaf, with its stamp in a full dump.
    Leaf(Path, Value, Option<Stamp>),
    /// A tombstone (full dumps only).
    Deleted(Path, Option<Stamp>),
    End(End),
}

fn parse(line: Line) -> Result<Entry> {
    if let Some(error) = line.error {
        bail!("the dump records a failed export: {error}");
    }
    match (line.path, line.value, line.deleted, line.end) {
        (Some(path), Value::Null, Some(stamp), None) if line.stamp.is_none() => {
            let path = Path::parse(&path).with_context(|| format!("invalid path {path:?}"))?;
            Ok(Entry::Deleted(path, Some(stamp)))
        }
        (Some(path), value, None, None) => {
            let path = Path::parse(&path).with_context(|| format!("invalid path {path:?}"))?;
            if value.is_null() {
                bail!("{path}: the value is missing or null (nothing is stored as null)");
            }
            if path.is_root() && !value.is_object() {
                bail!("the root holds an object, not {value}");
            }
            Ok(Entry::Leaf(path, value, line.stamp))
        }
        (None, Value::Null, None, Some(end)) => Ok(Entry::End(end)),
        _ => bail!(
            r#"expected {{"path", "value"}}, {{"path", "value", "stamp"}}, {{"path", "deleted"}} or {{"end"}}"#
        ),
    }
}

/// One batch's request: resolves to the leaves and tombstones it wrote.
type Request = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(u64, u64)>> + Send>>;

/// Batches on their way to `/v1/mutate`: unstamped ones one at a time, in order (a later
/// plain merge may overwrite an earlier one); stamped ones up to [`IMPORT_IN_FLIGHT`] at
/// once (their order does not matter: the stamps decide).
struct Sending {
    client: reqwest::Client,
    url: reqwest::Url,
    in_flight: futures_util::stream::FuturesUnordered<Request>,
    leaves: u64,
    tombstones: u64,
}

impl Sending {
    fn new(client: reqwest::Client, url: reqwest::Url) -> Self {
        Sending {
            client,
            url,
            in_flight: Default::default(),
            leaves: 0,
            tombstones: 0,
        }
    }

    async fn send(&mut self, batch: Option<Ready>) -> Result<()> {
        let Some(ready) = batch else {
            return Ok(());
        };
        let (client, url) = (self.client.clone(), self.url.clone());
        let stamped = ready.body.get("stamp").is_some();
        self.in_flight.push(Box::pin(async move {
            checked(client.post(url).json(&ready.body).send().await?).await?;
            Ok((ready.leaves, ready.tombstones))
        }));
        let limit = if stamped { IMPORT_IN_FLIGHT } else { 1 };
        while self.in_flight.len() >= limit {
            self.collect_one().await?;
        }
        Ok(())
    }

    async fn collect_one(&mut self) -> Result<()> {
        if let Some(done) = self.in_flight.next().await {
            let (leaves, tombstones) = done?;
            self.leaves += leaves;
            self.tombstones += tombstones;
        }
        Ok(())
    }

    /// Waits for every batch still in flight; returns the leaves and tombstones written.
    async fn finish(mut self) -> Result<(u64, u64)> {
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        Ok((self.leaves, self.tombstones))
    }
}

/// A batch's request body and what it holds.
struct Ready {
    body: Value,
    leaves: u64,
    tombstones: u64,
}

/// Writes gathered into one mutation, all of one stamp (or none).
#[derive(Default)]
struct Batch {
    stamp: Option<Stamp>,
    mutation: Mutation,
    leaves: u64,
    tombstones: u64,
    bytes: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.leaves + self.tombstones >= IMPORT_BATCH_LEAVES as u64
            || self.bytes >= IMPORT_BATCH_BYTES
    }

    /// Adds a line's write. Lines come in key order, so a tombstone comes before the
    /// leaves beneath it that its mutation wrote after deleting.
    fn add(&mut self, entry: Entry, bytes: usize) -> Result<()> {
        let next = match entry {
            Entry::Leaf(path, value, _) => {
                self.leaves += 1;
                Mutation::merge(&path, value)?
            }
            Entry::Deleted(path, _) => {
                self.tombstones += 1;
                Mutation::delete(&path)
            }
            Entry::End(_) => return Ok(()),
        };
        self.mutation = std::mem::take(&mut self.mutation).combine(next);
        self.bytes += bytes;
        Ok(())
    }

    /// The request body of the batch so far (`None`: empty), and a fresh batch.
    fn take(&mut self) -> Option<Ready> {
        let batch = std::mem::take(self);
        if batch.leaves + batch.tombstones == 0 {
            return None;
        }
        let mut body = batch.mutation.to_json();
        if let (Some(stamp), Some(fields)) = (batch.stamp, body.as_object_mut()) {
            fields.insert("stamp".into(), json!(stamp));
        }
        Some(Ready {
            body,
            leaves: batch.leaves,
            tombstones: batch.tombstones,
        })
    }
}
