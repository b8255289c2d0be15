//! `[[hooks]]` in kora.toml: which paths and calls an endpoint serves, and how it is reached.

use std::time::Duration;

use serde::Deserialize;

use crate::error::HookError;

/// The kora.toml table (an array of tables) the hooks are declared in.
pub const TABLE: &str = "hooks";

/// How long a hook may take to answer when `timeout_ms` is not set.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// The longest `timeout_ms` accepted: a hook holds the write it decides on (and the writes
/// that wait behind it on the same data) for as long as it takes.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The largest answer read from a hook.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One `[[hooks]]` entry.
///
/// ```toml
/// [[hooks]]
/// url = "http://127.0.0.1:8088/kora"
/// path = "orders/$id"
/// on = ["before_mutation"]
/// calls = ["checkout"]
/// timeout_ms = 2000
/// on_failure = "refuse"
/// secret = "…"            # or secret_env = "ORDERS_HOOK_SECRET"
/// reads = ["stock/$id"]   # paths whose values are sent along (and decided on)
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HookConfig {
    /// Where Kora POSTs each request (`http://` or `https://`).
    pub url: String,
    /// The path pattern of the interceptor (`orders/$id`, `**`); needed with `on`.
    pub path: Option<String>,
    /// The hooks it takes at `path`.
    pub on: Vec<HookKind>,
    /// Names of `call` handlers it serves.
    pub calls: Vec<String>,
    pub timeout_ms: u64,
    pub on_failure: OnFailure,
    /// The shared secret every request is signed with (`Kora-Signature`).
    pub secret: Option<Secret>,
    /// The environment variable holding the secret, instead of `secret`.
    pub secret_env: Option<String>,
    /// Paths (with the pattern's `$captures`) whose current values a `before_mutation`
    /// request carries in `reads`: read inside the write's decision, so the write commits
    /// only if they are unchanged when it does.
    pub reads: Vec<String>,
    /// Paths (with the pattern's `$captures`) a `resolve` answer is computed from: a
    /// subscriber of the virtual path is answered again after each commit touching them.
    pub resolves_from: Vec<String>,
}

/// A shared secret: shown as `<redacted>`, so a configuration or an endpoint can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Secret(secret.to_string())
    }
}

impl Default for HookConfig {
    /// No URL and nothing served (not valid alone: [`HookConfig::checked`] says so), and the
    /// defaults of every other setting.
    fn default() -> Self {
        HookConfig {
            url: String::new(),
            path: None,
            on: Vec::new(),
            calls: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            on_failure: OnFailure::default(),
            secret: None,
            secret_env: None,
            reads: Vec::new(),
            resolves_from: Vec::new(),
        }
    }
}

/// What a hook is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Before a write commits, for each layer at a matching path: pass, refuse, replace the
    /// layer's value, or add writes.
    BeforeMutation,
    /// Before a read of a related path: pass or refuse.
    BeforeQuery,
    /// A read of a matching path, answered by the hook instead of the store.
    Resolve,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::BeforeMutation => "before_mutation",
            HookKind::BeforeQuery => "before_query",
            HookKind::Resolve => "resolve",
        }
    }
}

/// What happens when a hook cannot be asked (down, too slow, an answer that is not one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The write or read is refused (`unavailable`): nothing passes unchecked.
    #[default]
    Refuse,
    /// The hook is skipped: the write or read goes on as if it had passed.
    Allow,
}

impl HookConfig {
    /// The secret in effect, and whether the entry is complete.
    pub fn checked(&self) -> Result<Option<Secret>, HookError> {
        let invalid = |why: String| HookError::Config(format!("[[hooks]] {}: {why}", self.url));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(invalid("url must start with http:// or https://".into()));
        }
        if !self.on.is_empty() && self.path.is_none() {
            return Err(invalid("`on` needs a `path` pattern".into()));
        }
        if self.on.is_empty() && self.calls.is_empty() {
            return Err(invalid(
                "nothing to serve: give `on` (with `path`) or `calls`".into(),
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(invalid(format!(
                "timeout_ms must be 1 to {MAX_TIMEOUT_MS}, not {}",
                self.timeout_ms
            )));
        }
        if !self.reads.is_empty() && !self.on.contains(&HookKind::BeforeMutation) {
            return Err(invalid("`reads` serves before_mutation only".into()));
        }
        if !self.resolves_from.is_empty() && !self.on.contains(&HookKind::Resolve) {
            return Err(invalid("`resolves_from` serves resolve only".into()));
        }
        match (&self.secret, &self.secret_env) {
            (Some(_), Some(_)) => Err(invalid("give secret or secret_env, not both".into())),
            (Some(secret), None) => Ok(Some(secret.clone())),
            (None, Some(name)) => std::env::var(name)
                .map(|secret| Some(Secret(secret)))
                .map_err(|_| invalid(format!("secret_env: {name} is not set"))),
            (None, None) => Ok(None),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_config_never_shows_its_secret() {
        let config = HookConfig {
            secret: Some("hunter2".into()),
            ..HookConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
