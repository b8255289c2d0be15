//! `kora get | set | merge | delete | watch`: a client of a running server over HTTP.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use futures_util::StreamExt;
use serde_json::Value;

/// Where the server is.
#[derive(Args, Clone)]
pub struct Server {
    /// The server's URL.
    #[arg(long, env = "KORA_URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// A token to present (`Authorization: Bearer …`) when the server checks identities.
    #[arg(long, env = "KORA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
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
    #[command(flatten)]
    pub server: Server,
}

#[derive(Args)]
pub struct WriteArgs {
    pub path: String,
    /// A JSON value.
    pub json: String,
    #[command(flatten)]
    pub server: Server,
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
    match body.get("error") {
        Some(error) => bail!(
            "{}: {}",
            error["code"].as_str().unwrap_or("error"),
            error["message"].as_str().unwrap_or_default()
        ),
        None => bail!("HTTP {status}"),
    }
}

fn print(value: &Value) -> Result<()> {
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
    print(&checked(args.server.client()?.get(url).send().await?).await?)
}

pub async fn write(args: WriteArgs, op: Op) -> Result<()> {
    let value: Value = serde_json::from_str(&args.json).context("the value is not valid JSON")?;
    let url = args.server.data_url(&args.path)?;
    let client = args.server.client()?;
    let request = match op {
        Op::Set => client.put(url),
        Op::Merge => client.patch(url),
    };
    print(&checked(request.json(&value).send().await?).await?)
}

pub async fn delete(args: PathArgs) -> Result<()> {
    let url = args.server.data_url(&args.path)?;
    print(&checked(args.server.client()?.delete(url).send().await?).await?)
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
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let (mut event, mut data, mut id) = (String::new(), String::new(), None::<String>);
    while let Some(Ok(chunk)) = bytes.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() {
                    let mut payload: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if let Value::Object(map) = &mut payload {
                        map.insert("event".into(), Value::from(event.as_str()));
                    }
                    println!("{payload}");
                    if id.is_some() {
                        last_id.clone_from(&id);
                    }
                }
                event.clear();
                data.clear();
                id = None;
            } else if let Some(value) = line.strip_prefix("event:") {
                event = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().to_string());
            }
        }
    }
}
