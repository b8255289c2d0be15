//! The server's configuration: one TOML file, every key overridable by a `KORA_*` variable
//! and by a command-line flag (later sources win: defaults, file, environment, flags).
//!
//! Environment names are the key in capitals with `KORA_` in front; nested keys join with
//! a double underscore: `bind` ← `KORA_BIND`, `limits.max_body_bytes` ←
//! `KORA_LIMITS__MAX_BODY_BYTES`. Other `KORA_*` variables (`KORA_URL`, `KORA_TOKEN` of the
//! client commands, …) are not settings and are ignored, so a misspelt setting in the
//! environment is ignored too; in `kora.toml` it is an error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use kora_engine::Conflicts;
use serde::{Deserialize, Serialize};

/// Default listening address: loopback only, so a fresh server is reachable from this
/// machine alone until someone decides otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";

/// Limits on what one client may send or hold. Each is named and configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest HTTP body or WebSocket message (16 MiB: Firebase's write limit is 16 MB, so
    /// any Firebase-sized write fits).
    pub max_body_bytes: usize,
    /// Deepest path (64; see `kora_core::path::MAX_PATH_DEPTH`).
    pub max_path_depth: usize,
    /// Most leaves and deleted paths in one mutation: bounds the work of one request.
    pub max_leaves_per_mutation: usize,
    /// Open WebSocket and event-stream connections.
    pub max_connections: usize,
    /// Open connections from one IP address: one client cannot take every slot.
    pub max_connections_per_ip: usize,
    /// WebSocket messages one connection may send per second (a burst of as many is
    /// allowed); faster clients get `unavailable` replies until they slow down.
    pub max_messages_per_second: u32,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Pushes queued for one connection before it is told to resynchronise.
    pub send_queue: usize,
    /// WebSocket read buffer per connection. Small, because it is allocated for every idle
    /// connection (tungstenite's 128 KiB default costs 1.3 GB at 10,000 connections).
    pub ws_read_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_path_depth: kora_core::path::MAX_PATH_DEPTH,
            max_leaves_per_mutation: 100_000,
            max_connections: 100_000,
            max_connections_per_ip: 20_000,
            max_messages_per_second: 5_000,
            // The engine's defaults, defined there once.
            max_subscriptions: kora_engine::Config::default().max_subscriptions_per_session,
            send_queue: kora_engine::Config::default().session_queue,
            ws_read_buffer_bytes: 4_096,
        }
    }
}

/// How effects (webhooks) run (`[effects]`): each default is the engine's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EffectSettings {
    /// Tries before an effect moves to the dead letters (`/v1/effects/dead`).
    pub max_attempts: u32,
    /// Pause after the first failed try, doubled after each further one…
    pub first_retry_ms: u64,
    /// …up to this.
    pub max_retry_ms: u64,
    /// One try may take this long before it counts as failed.
    pub timeout_ms: u64,
    /// `false`: this node runs no effects (they wait in the outbox for a node that does).
    pub run: bool,
}

impl Default for EffectSettings {
    fn default() -> Self {
        let engine = kora_engine::EffectsConfig::default();
        EffectSettings {
            max_attempts: engine.max_attempts,
            first_retry_ms: engine.base_backoff.as_millis() as u64,
            max_retry_ms: engine.max_backoff.as_millis() as u64,
            timeout_ms: engine.timeout.as_millis() as u64,
            run: engine.enabled,
        }
    }
}

impl EffectSettings {
    /// The engine's effect settings these imply.
    pub fn engine(&self) -> kora_engine::EffectsConfig {
        kora_engine::EffectsConfig {
            max_attempts: self.max_attempts.max(1),
            base_backoff: Duration::from_millis(self.first_retry_ms),
            max_backoff: Duration::from_millis(self.max_retry_ms.max(self.first_retry_ms)),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            enabled: self.run,
            ..kora_engine::EffectsConfig::default()
        }
    }
}

/// Everything `kora serve` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Data directory of the embedded store (used when `store` is not set).
    pub data: PathBuf,
    /// Store URL (`memory:`, `embedded:PATH`, `postgres://…`, `mysql://…`).
    pub store: Option<String>,
    /// Serve without rules on a non-loopback address (allows every client everything).
    pub insecure: bool,
    /// The rules file (`kora.rules.yaml`, docs/rules.md). Without one every client may do
    /// everything, which is allowed only on loopback or with `insecure`.
    pub rules: Option<PathBuf>,
    /// Seconds between WebSocket pings (a peer silent for twice as long is dropped), and
    /// between a silent Firebase event stream's `keep-alive` events.
    pub heartbeat_secs: u64,
    /// How conflicting writes are ordered: `stamps` (default) or `arrival`.
    pub conflicts: Conflicts,
    /// Days tombstones and change-log entries are kept (clients offline longer resync).
    pub retention_days: u64,
    /// Origin id of this node in stamps (random when 0).
    pub origin: u64,
    pub limits: Limits,
    /// How tokens are verified (`[auth]`).
    pub auth: crate::auth::AuthConfig,
    /// The cluster bus: `cluster = "nats://host:4222"` (or `KORA_CLUSTER`, `--cluster`), or a
    /// table `[cluster] nats = "…"`, `subject = "…"`.
    pub cluster: Option<Cluster>,
    /// Ordered child indexes for queries ordered by a child value (`[indexes]`,
    /// docs/protocol.md "Ordering by a child value"): collection pattern → child paths,
    /// `"scores" = ["score"]`, `"users/$uid/posts" = ["meta/date"]`.
    pub indexes: kora_engine::index::Declared,
    /// Origins whose pages may call the HTTP endpoints (CORS): `["*"]` (the default) for any,
    /// as Firebase does; `[]` for none. Credentials travel as bearer tokens, never cookies,
    /// so allowing an origin lets its pages act only with tokens they hold.
    pub cors_origins: Vec<String>,
    /// How effects run (`[effects]`).
    pub effects: EffectSettings,
    /// TLS: a PEM certificate chain and its PEM key; both or neither (docs/operations.md).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The tables of kora.toml read by what is mounted beside the core (`[firebase]`, see
    /// [`crate::mount`]), by name, as configured: each is checked by [`ServerConfig::table`].
    #[serde(skip)]
    pub tables: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The `cluster` setting: a NATS URL, or a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cluster {
    Url(String),
    Table {
        nats: String,
        #[serde(default = "default_subject")]
        subject: String,
    },
}

fn default_subject() -> String {
    kora_engine::cluster::DEFAULT_SUBJECT.to_string()
}

impl Cluster {
    /// The engine's cluster settings.
    pub fn engine(&self) -> kora_engine::ClusterConfig {
        match self {
            Cluster::Url(nats) => kora_engine::ClusterConfig::new(nats.clone()),
            Cluster::Table { nats, subject } => kora_engine::ClusterConfig {
                nats: nats.clone(),
                subject: subject.clone(),
            },
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: DEFAULT_BIND.to_string(),
            data: PathBuf::from(kora_store::DEFAULT_DATA_DIR),
            store: None,
            insecure: false,
            rules: None,
            heartbeat_secs: 30,
            conflicts: Conflicts::Stamps,
            retention_days: kora_engine::Config::default().retention.as_secs() / (24 * 3600),
            origin: 0,
            limits: Limits::default(),
            auth: crate::auth::AuthConfig::default(),
            cluster: None,
            tables: Default::default(),
            indexes: Default::default(),
            cors_origins: vec!["*".to_string()],
            effects: EffectSettings::default(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// A figment without some top-level keys: the tables kept aside from [`ServerConfig`].
struct Without<'a> {
    figment: Figment,
    keys: &'a [&'a str],
}

impl figment::Provider for Without<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("kora.toml and KORA_* settings")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut data = self.figment.data()?;
        for dict in data.values_mut() {
            for key in self.keys {
                dict.remove(*key);
            }
        }
        Ok(data)
    }
}

/// The configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// Whether a `KORA_*` variable (without the prefix) names a setting: a top-level key of
/// [`ServerConfig`] as it serialises, so a new setting is readable from the environment
/// without being listed again.
fn is_setting(key: &str, tables: &[String]) -> bool {
    let key = key.to_ascii_lowercase();
    let top = key.split("__").next().unwrap_or_default();
    if tables.iter().any(|t| t == top) {
        return true;
    }
    match serde_json::to_value(ServerConfig::default()) {
        Ok(serde_json::Value::Object(settings)) => settings.contains_key(top),
        _ => false,
    }
}

impl ServerConfig {
    /// The TLS certificate and key files, when TLS is configured.
    pub fn tls_files(&self) -> Result<Option<(&std::path::Path, &std::path::Path)>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            _ => Err(ConfigError(
                "tls_cert and tls_key go together: set both, or neither".into(),
            )),
        }
    }

    /// Defaults, then `file` (if given), then `KORA_*` variables, then `overrides` (flags,
    /// as a partial config: only the keys given).
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: impl Serialize,
    ) -> Result<ServerConfig, ConfigError> {
        Self::load_with(file, overrides, &[])
    }

    /// [`ServerConfig::load`], keeping the named `tables` (`[firebase]`, with their `KORA_FIREBASE__…`
    /// variables) aside in [`ServerConfig::tables`] for what is mounted beside the core.
    pub fn load_with(
        file: Option<&std::path::Path>,
        overrides: impl Serialize,
        tables: &[&str],
    ) -> Result<ServerConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(ServerConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("{} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        let owned: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        let figment = figment
            .merge(
                // Only the settings' own names: other KORA_* variables belong to other
                // tools (KORA_URL and KORA_TOKEN to the client commands, KORA_TEST_* to
                // tests, KORA_LOG to logging) and must not stop a server from starting.
                Env::prefixed("KORA_")
                    .filter(move |key| is_setting(key.as_str(), &owned))
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides));
        let mut kept = std::collections::BTreeMap::new();
        for &table in tables {
            if let Ok(value) = figment.extract_inner::<serde_json::Value>(table) {
                kept.insert(table.to_string(), value);
            }
        }
        let mut config = Figment::from(Without {
            figment,
            keys: tables,
        })
        .extract::<ServerConfig>()
        .map_err(|e| ConfigError(e.to_string()))
        .and_then(ServerConfig::checked)?;
        config.tables = kept;
        Ok(config)
    }

    /// The settings of table `name` (defaults when it is absent), or why they are wrong.
    pub fn table<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ConfigError> {
        match self.tables.get(name) {
            None => Ok(T::default()),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| ConfigError(format!("[{name}]: {e}"))),
        }
    }

    /// The configuration, if what serde cannot check holds.
    fn checked(self) -> Result<ServerConfig, ConfigError> {
        for origin in &self.cors_origins {
            let scheme = origin.starts_with("http://") || origin.starts_with("https://");
            let valid = origin.bytes().all(|b| b.is_ascii_graphic()) && !origin.ends_with('/');
            if origin != "*" && !(scheme && valid) {
                return Err(ConfigError(format!(
                    "cors_origins: {origin:?} is not an origin (\"https://app.example\", or \"*\" for any)"
                )));
            }
        }
        Ok(self)
    }

    /// The store URL in effect.
    pub fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| format!("embedded:{}", self.data.display()))
    }

    /// The listening address, parsed.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind
            .parse()
            .map_err(|e| ConfigError(format!("bind {:?}: {e}", self.bind)))
    }

    /// The heartbeat interval (at least a second): WebSocket pings, and the keep-alive of a
    /// Firebase event stream.
    pub fn heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// The core limits these settings imply.
    pub fn path_limits(&self) -> kora_core::Limits {
        kora_core::Limits {
            max_depth: self.limits.max_path_depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Extra {
        on: bool,
    }

    /// A mounted part's table is kept aside for it, read with its own checks; without it
    /// being named, the table is an unknown setting.
    #[test]
    fn named_tables_are_kept_for_what_is_mounted() {
        let dir = tempfile_dir("tables");
        let file = dir.join("kora.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:5001\"\n[extra]\non = true\n").unwrap();
        let config =
            ServerConfig::load_with(Some(&file), serde_json::json!({}), &["extra"]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:5001");
        assert_eq!(config.table::<Extra>("extra").unwrap(), Extra { on: true });
        assert_eq!(config.table::<Extra>("absent").unwrap(), Extra::default());
        assert!(ServerConfig::load(Some(&file), serde_json::json!({})).is_err());
        std::fs::write(&file, "[extra]\nno = true\n").unwrap();
        let config =
            ServerConfig::load_with(Some(&file), serde_json::json!({}), &["extra"]).unwrap();
        let error = config.table::<Extra>("extra").unwrap_err().to_string();
        assert!(error.contains("[extra]") && error.contains("no"), "{error}");
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kora-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn later_sources_win() {
        let dir = std::env::temp_dir().join(format!("kora-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kora.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:5000\"\n[limits]\nmax_subscriptions = 7\n",
        )
        .unwrap();
        let config =
            ServerConfig::load(Some(&file), serde_json::json!({"store": "memory:"})).unwrap();
        assert_eq!(config.bind, "127.0.0.1:5000");
        assert_eq!(config.limits.max_subscriptions, 7);
        assert_eq!(config.store_url(), "memory:");
        assert_eq!(config.limits.max_body_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn only_settings_are_read_from_the_environment() {
        for key in ["BIND", "LIMITS__MAX_CONNECTIONS", "cluster", "AUTH__JWKS"] {
            assert!(is_setting(key, &[]), "{key}");
        }
        for key in [
            "URL",
            "TOKEN",
            "LOG",
            "TEST_POSTGRES_URL",
            "FUZZ_TARGET_DIR",
            "CLUSTER_SOAK_SECS",
        ] {
            assert!(!is_setting(key, &[]), "{key}");
        }
    }

    #[test]
    fn cors_origins_must_be_origins() {
        let bad = ServerConfig::load(None, serde_json::json!({"cors_origins": ["app.example"]}));
        assert!(bad.unwrap_err().to_string().contains("not an origin"));
        let good = ServerConfig::load(
            None,
            serde_json::json!({"cors_origins": ["https://a.example:8443"]}),
        );
        assert_eq!(good.unwrap().cors_origins, ["https://a.example:8443"]);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("kora-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kora.toml");
        std::fs::write(&file, "bnd = \"x\"\n").unwrap();
        assert!(ServerConfig::load(Some(&file), serde_json::json!({})).is_err());
        assert!(ServerConfig::load(Some(&dir.join("none.toml")), serde_json::json!({})).is_err());
    }
}
