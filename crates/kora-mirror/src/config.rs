//! `[[mirrors]]` in kora.toml.

use std::time::Duration;

use kora_engine::Pattern;
use serde::Deserialize;
use thiserror::Error;

/// The kora.toml table (an array of tables) mirrors are declared in.
pub const TABLE: &str = "mirrors";

/// Commits read from the change log at a time.
pub const DEFAULT_BATCH: usize = 256;

/// The longest pause between tries while NATS is unreachable.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 5_000;

/// The JetStream key-value bucket the mirrors' cursors are kept in, when `cursor_bucket` is
/// not set (made with one replica when missing; make it yourself for more).
pub const DEFAULT_CURSOR_BUCKET: &str = "kora_mirrors";

/// How long a published message waits for JetStream's acknowledgement before the commit is
/// tried again.
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 5_000;

/// One `[[mirrors]]` entry.
///
/// ```toml
/// [[mirrors]]
/// name = "orders"                     # names its cursor (a key in the cursor bucket)
/// nats = "nats://127.0.0.1:4222"
/// paths = ["orders/$id"]              # patterns whose changes are published
/// subject = "kora.orders.$id"         # default: "kora." + the path's segments joined by "."
/// cursor_bucket = "kora_mirrors"      # the JetStream key-value bucket holding the cursor
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    pub name: String,
    pub nats: String,
    pub paths: Vec<String>,
    pub subject: Option<String>,
    pub cursor_bucket: String,
    pub batch: usize,
    pub max_backoff_ms: u64,
    pub ack_timeout_ms: u64,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            name: String::new(),
            nats: String::new(),
            paths: Vec::new(),
            subject: None,
            cursor_bucket: DEFAULT_CURSOR_BUCKET.into(),
            batch: DEFAULT_BATCH,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
        }
    }
}

#[derive(Debug, Error)]
pub enum MirrorError {
    #[error("[[mirrors]] {name}: {why}")]
    Config { name: String, why: String },
}

impl MirrorConfig {
    /// The patterns, if the entry can be served as written.
    pub fn checked(&self) -> Result<Vec<Pattern>, MirrorError> {
        let invalid = |why: String| MirrorError::Config {
            name: self.name.clone(),
            why,
        };
        if !is_name(&self.name) {
            return Err(invalid("name must be letters, digits, - or _".into()));
        }
        if !is_name(&self.cursor_bucket) {
            return Err(invalid(
                "cursor_bucket must be letters, digits, - or _".into(),
            ));
        }
        if !self.nats.starts_with("nats://") && !self.nats.starts_with("tls://") {
            return Err(invalid("nats must be a nats:// or tls:// URL".into()));
        }
        if self.paths.is_empty() {
            return Err(invalid("paths: give at least one pattern".into()));
        }
        if self.batch == 0 || self.ack_timeout_ms == 0 {
            return Err(invalid(
                "batch and ack_timeout_ms must be at least 1".into(),
            ));
        }
        self.paths
            .iter()
            .map(|p| Pattern::parse(p).map_err(|e| invalid(format!("paths: {p:?}: {e}"))))
            .collect()
    }

    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(1))
    }
}

/// A mirror's name or a bucket's: what both NATS and a cursor key accept.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
