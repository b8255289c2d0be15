//! `kora serve`: flags override `kora.toml` and `KORA_*` variables.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use kora_engine::Kora;
use kora_server::ServerConfig;
use serde_json::{json, Map, Value};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4000].
    #[arg(long)]
    bind: Option<String>,
    /// Data directory of the embedded store [default: ./kora-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Store URL (overrides --data): memory: | embedded:PATH |
    /// postgres://user:pass@host:port/db (or postgresql://) |
    /// mysql://user:pass@host:port/db (or mariadb://) |
    /// cassandra://user:pass@host:port,host:port/keyspace?replication=N&ca=PATH
    /// (docs/operations.md).
    #[arg(long)]
    store: Option<String>,
    /// Configuration file (TOML) [default: ./kora.toml when it exists].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve without rules on a non-loopback address.
    #[arg(long)]
    insecure: bool,
    /// Rules file [default: ./kora.rules.yaml when it exists].
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Join a cluster: the NATS URL its nodes share (with a shared store).
    #[arg(long)]
    cluster: Option<String>,
    /// Serve over TLS with this PEM certificate chain (with --tls-key); reloaded on change.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Origin id of this node in stamps (random by default).
    #[arg(long)]
    origin: Option<u64>,
    /// Largest request body or WebSocket message, in bytes.
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Most open connections.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most subscriptions per connection.
    #[arg(long)]
    max_subscriptions: Option<usize>,
    /// Log filter (e.g. info, debug, kora_engine=debug).
    #[arg(long, env = "KORA_LOG", default_value = "info")]
    log: String,
}

impl ServeArgs {
    /// The flags that were given, as a partial configuration.
    fn overrides(&self) -> Value {
        let mut top = Map::new();
        let mut limits = Map::new();
        let put = |map: &mut Map<String, Value>, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.into(), value);
            }
        };
        put(&mut top, "bind", self.bind.clone().map(Value::from));
        put(&mut top, "data", self.data.as_ref().map(|d| json!(d)));
        put(&mut top, "store", self.store.clone().map(Value::from));
        put(&mut top, "insecure", self.insecure.then_some(json!(true)));
        let rules = self.rules.clone().or_else(|| {
            let default = PathBuf::from("kora.rules.yaml");
            default.exists().then_some(default)
        });
        put(&mut top, "rules", rules.as_ref().map(|r| json!(r)));
        put(&mut top, "cluster", self.cluster.clone().map(Value::from));
        put(&mut top, "origin", self.origin.map(Value::from));
        put(
            &mut top,
            "tls_cert",
            self.tls_cert.as_ref().map(|p| json!(p)),
        );
        put(&mut top, "tls_key", self.tls_key.as_ref().map(|p| json!(p)));
        put(
            &mut limits,
            "max_body_bytes",
            self.max_body_bytes.map(Value::from),
        );
        put(
            &mut limits,
            "max_connections",
            self.max_connections.map(Value::from),
        );
        put(
            &mut limits,
            "max_subscriptions",
            self.max_subscriptions.map(Value::from),
        );
        if !limits.is_empty() {
            top.insert("limits".into(), Value::Object(limits));
        }
        Value::Object(top)
    }
}

pub async fn run(args: ServeArgs) -> Result<()> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let file = args.config.clone().or_else(|| {
        let default = PathBuf::from("kora.toml");
        default.exists().then_some(default)
    });
    let config = ServerConfig::load_with(
        file.as_deref(),
        args.overrides(),
        &[
            kora_firebase::serve::TABLE,
            kora_hooks::TABLE,
            kora_mirror::TABLE,
        ],
    )?;
    let firebase = kora_firebase::Firebase::new(config.table(kora_firebase::serve::TABLE)?)?;
    let hooks: Vec<kora_hooks::HookConfig> = config.table(kora_hooks::TABLE)?;
    let builder = kora_hooks::register(Kora::builder(), &hooks)?;
    let mirrors: Vec<kora_mirror::MirrorConfig> = config.table(kora_mirror::TABLE)?;
    for mirror in &mirrors {
        mirror.checked()?; // refused before the server starts, not after
    }
    let running = kora_server::start_with(config, builder, vec![Box::new(firebase)]).await?;
    kora_mirror::start(&running.kora, &mirrors)?;
    running.until_signalled().await?;
    Ok(())
}
