//! `kora get | set | merge | delete | watch`: a client of a running server over HTTP.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Where the server is.
#[derive(Args, Clone)]
pub struct Server {
    /// The server's URL.
    #[arg(long, env = "KORA_URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// A token to present (`Authorization: Bearer …`) when the server checks identities.
    #[arg(long, env = "KORA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust the certificate authorities in this PEM file for an https:// server (a private
    /// CA or a self-signed certificate), besides the web's.
    #[arg(long, env = "KORA_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Server {
    /// An HTTP client that presents the token, if one is given.
    pub fn client(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("--token holds characters a header cannot")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder().default_headers(headers);
        if let Some(path) = &self.ca_cert {
            let pem =
                std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-cert {}", path.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(builder.build()?)
    }

    /// The URL of `/v1/data/{path}`, segments percent-encoded. The path is checked here, so
    /// a typo like `todos//t1` is an error rather than quietly meaning `todos/t1`.
    pub fn data_url(&self, path: &str) -> Result<reqwest::Url> {
        self.url_for("data", path)
    }

    /// The URL of `/v1/{kind}/{path}` (`kind`: `data` or `export`), checked as `data_url`.
    pub fn url_for(&self, kind: &str, path: &str) -> Result<reqwest::Url> {
        let path =
            kora_core::Path::parse(path).with_context(|| format!("invalid path {path:?}"))?;
        let mut parts = vec!["v1", kind];
        parts.extend(path.segments().iter().map(String::as_str));
        self.endpoint(&parts)
    }

    /// The server's URL with `parts` appended as percent-encoded segments.
    pub fn endpoint(&self, parts: &[&str]) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(self.url.trim_end_matches('/'))
            .with_context(|| format!("--url {:?}", self.url))?;
        url.path_segments_mut()
            .map_err(|_| anyhow!("--url {:?} cannot hold a path", self.url))?
            .pop_if_empty()
            .extend(parts);
        Ok(url)
    }
}

#[derive(Args)]
pub struct PathArgs {
    /// A path such as todos/t1 (empty or / for the root).
    pub path: String,
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct GetArgs {
    pub path: String,
    /// Smallest child key (inclusive).
    #[arg(long)]
    pub min: Option<String>,
    /// Largest child key (inclusive).
    #[arg(long)]
    pub max: Option<String>,
    /// At most this many children.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Take the last children instead of the first.
    #[arg(long)]
    pub reverse: bool,
    /// Print `{"seq": N, "value": …}`: the value with the last commit it includes (what
    /// `--if-unchanged-since` takes).
    #[arg(long)]
    pub seq: bool,
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct WriteArgs {
    pub path: String,
    /// A JSON value.
    pub json: String,
    #[command(flatten)]
    pub when: When,
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// A path such as todos/t1 (empty or / for the root).
    pub path: String,
    #[command(flatten)]
    pub when: When,
    #[command(flatten)]
    pub server: Server,
}

/// Conditions a write commits under (docs/protocol.md, "Conditional writes"); a failed one
/// refuses it with `conflict` and shows what the path holds now.
#[derive(Args)]
pub struct When {
    /// Only if nothing is at the path.
    #[arg(long, conflicts_with_all = ["if_equals", "if_unchanged_since"])]
    pub if_absent: bool,
    /// Only if the path holds exactly this JSON value.
    #[arg(long, value_name = "JSON", conflicts_with = "if_unchanged_since")]
    pub if_equals: Option<String>,
    /// Only if nothing at, beneath or above the path changed after this sequence (the
    /// `seq` that `kora get --seq` prints).
    #[arg(long, value_name = "SEQ")]
    pub if_unchanged_since: Option<u64>,
}

impl When {
    /// The condition on `path`, if one was asked for.
    fn condition(&self, path: &str) -> Result<Option<Value>> {
        let path = kora_core::Path::parse(path)?.to_string();
        Ok(if self.if_absent {
            Some(json!({"path": path, "equals": null}))
        } else if let Some(text) = &self.if_equals {
            let value: Value =
                serde_json::from_str(text).context("--if-equals is not valid JSON")?;
            Some(json!({"path": path, "equals": value}))
        } else {
            self.if_unchanged_since
                .map(|seq| json!({"path": path, "since": seq}))
        })
    }
}

#[derive(Args)]
pub struct WatchArgs {
    pub path: String,
    #[command(flatten)]
    pub server: Server,
}

pub enum Op {
    Set,
    Merge,
}

/// Turns an error answer into a readable error.
pub async fn checked(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let Some(error) = body.get("error") else {
        bail!("HTTP {status}");
    };
    let mut text = format!(
        "{}: {}",
        error["code"].as_str().unwrap_or("error"),
        error["message"].as_str().unwrap_or_default()
    );
    for current in error["current"].as_array().into_iter().flatten() {
        let path = current["path"].as_str().unwrap_or_default();
        text.push_str(&format!("; {path} now holds {}", current["value"]));
    }
    bail!(text)
}

pub fn print(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn get(args: GetArgs) -> Result<()> {
    let mut url = args.server.data_url(&args.path)?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(min) = &args.min {
            query.append_pair("min", min);
        }
        if let Some(max) = &args.max {
            query.append_pair("max", max);
        }
        if let Some(limit) = args.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if args.reverse {
            query.append_pair("reverse", "true");
        }
    }
    let url = url.as_str().trim_end_matches('?').to_string();
    let response = args.server.client()?.get(url).send().await?;
    let seq = response
        .headers()
        .get("kora-seq")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let value = checked(response).await?;
    match args.seq {
        true => print(&json!({"seq": seq, "value": value})),
        false => print(&value),
    }
}

pub async fn write(args: WriteArgs, op: Op) -> Result<()> {
    let value: Value = serde_json::from_str(&args.json).context("the value is not valid JSON")?;
    if let Some(condition) = args.when.condition(&args.path)? {
        let path = kora_core::Path::parse(&args.path)?;
        let mutation = match op {
            Op::Set => kora_core::Mutation::set(&path, value)?,
            Op::Merge => kora_core::Mutation::merge(&path, value)?,
        };
        return mutate_if(&args.server, mutation, condition).await;
    }
    let url = args.server.data_url(&args.path)?;
    let client = args.server.client()?;
    let request = match op {
        Op::Set => client.put(url),
        Op::Merge => client.patch(url),
    };
    print(&checked(request.json(&value).send().await?).await?)
}

pub async fn delete(args: DeleteArgs) -> Result<()> {
    if let Some(condition) = args.when.condition(&args.path)? {
        let mutation = kora_core::Mutation::delete(&kora_core::Path::parse(&args.path)?);
        return mutate_if(&args.server, mutation, condition).await;
    }
    let url = args.server.data_url(&args.path)?;
    print(&checked(args.server.client()?.delete(url).send().await?).await?)
}

/// A write under one condition, through `POST /v1/mutate`.
async fn mutate_if(server: &Server, mutation: kora_core::Mutation, condition: Value) -> Result<()> {
    let mut body = mutation.to_json();
    body["conditions"] = json!([condition]);
    let url = server.endpoint(&["v1", "mutate"])?;
    print(&checked(server.client()?.post(url).json(&body).send().await?).await?)
}

/// Follows the event stream, reconnecting from the last event it saw.
pub async fn watch(args: WatchArgs) -> Result<()> {
    let url = args.server.data_url(&args.path)?;
    let client = args.server.client()?;
    let mut last_id: Option<String> = None;
    loop {
        let mut request = client
            .get(url.clone())
            .header("accept", "text/event-stream");
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                follow(response, &mut last_id).await;
            }
            Ok(response) => {
                checked(response).await?;
            }
            Err(error) => eprintln!("kora watch: {error}; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Prints each event as one JSON line: `{"event": "value"|"change", …}`.
async fn follow(response: reqwest::Response, last_id: &mut Option<String>) {
    let mut stdout = std::io::stdout();
    if let Err(error) = print_events(response.bytes_stream(), last_id, &mut stdout).await {
        eprintln!("kora watch: {error}; reconnecting");
    }
}

/// Writes each event of an SSE byte stream as one JSON line, remembering the last event id
/// to resume from. The stream is parsed by `eventsource-stream`, which keeps a character
/// split across two chunks whole.
async fn print_events<B, E>(
    bytes: impl futures_util::Stream<Item = Result<B, E>> + Unpin,
    last_id: &mut Option<String>,
    out: &mut impl std::io::Write,
) -> Result<()>
where
    B: AsRef<[u8]>,
    E: std::error::Error + Send + Sync + 'static,
{
    use eventsource_stream::Eventsource;
    let mut events = bytes.eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| anyhow::anyhow!("the event stream broke: {e}"))?;
        if event.data.is_empty() {
            continue;
        }
        let mut payload: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut payload {
            map.insert("event".into(), Value::from(event.event.as_str()));
        }
        writeln!(out, "{payload}")?;
        if !event.id.is_empty() {
            *last_id = Some(event.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_character_split_across_two_chunks_is_printed_whole() {
        let text = "id: 7\nevent: change\ndata: {\"value\":\"caf\u{e9} \u{1F3F4}\"}\n\n";
        let bytes = text.as_bytes();
        // Split inside "é" (two bytes) and inside the flag (four bytes).
        let e = text.find('\u{e9}').unwrap() + 1;
        let flag = text.find('\u{1F3F4}').unwrap() + 2;
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(bytes[..e].to_vec()),
            Ok(bytes[e..flag].to_vec()),
            Ok(bytes[flag..].to_vec()),
        ];
        let mut out = Vec::new();
        let mut last_id = None;
        print_events(futures_util::stream::iter(chunks), &mut last_id, &mut out)
            .await
            .unwrap();
        let line: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"value": "caf\u{e9} \u{1F3F4}", "event": "change"})
        );
        assert_eq!(last_id.as_deref(), Some("7"));
    }
}
