//! # kora-firebase
//!
//! Firebase Realtime Database compatibility: Firebase's own SDKs and REST clients work
//! unchanged against Kora (docs/firebase.md).
//!
//! Firebase's semantics, with no HTTP in them: its ordering ([`order`]), hashes and server
//! values ([`node`]), queries ([`query`]), wire framing ([`wire`]), how its writes become
//! Kora mutations ([`write`](mod@write)) and how Kora's changes become its pushes
//! ([`changes`]); `orderByChild` windows come from the ordered child indexes ([`index`]).
//! Firebase data is stored as it is exported (`.priority` and `.value` members kept as
//! keys), so Kora's tree and a Firebase client's view are the same JSON.
//!
//! [`serve`] is the adapter: the WebSocket protocol v5 at `/.ws`, REST at `/{path}.json` and
//! its event streams, mounted on Kora's server ([`Firebase`], a [`kora_transport::Mount`]) with
//! its own state and the `[firebase]` table of kora.toml.

pub mod changes;
pub mod index;
pub mod node;
pub mod order;
pub mod query;
pub mod rules;
pub mod serve;
pub mod wire;
pub mod write;

pub use serve::{Firebase, FirebaseState};

use kora_core::Path;
use kora_engine::Error;
use serde::{Deserialize, Serialize};

/// What the `ns` (namespace) parameter of a Firebase client means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Namespaces {
    /// Every namespace is the one tree (the default: an app moving to Kora keeps its
    /// `databaseURL`, whatever its namespace).
    #[default]
    Ignore,
    /// Each namespace is its own tree, stored under the top-level key named after it.
    Separate,
}

/// The `[firebase]` table of kora.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirebaseConfig {
    /// Serve the Firebase protocols (`/.ws`, `/{path}.json`).
    pub enabled: bool,
    /// Accept the emulator's unsigned tokens (`alg: none`, as `connectDatabaseEmulator`'s
    /// `mockUserToken` makes them) and the `owner` admin token. For tests only: anyone can
    /// forge them.
    pub mock_tokens: bool,
    /// What the `ns` parameter selects.
    pub namespaces: Namespaces,
    /// Indexes for `orderByChild`, like Firebase's `.indexOn`: collection path (`$name` for
    /// any key) → indexed child paths (see [`index`]).
    pub index_on: std::collections::BTreeMap<String, Vec<String>>,
    /// Firebase's security rules (a `database.rules.json`), enforced for every protocol
    /// beside Kora's rules file if there is one ([`rules`]); their `.indexOn` declarations
    /// add to `index_on`.
    pub rules: Option<std::path::PathBuf>,
}

impl Default for FirebaseConfig {
    fn default() -> Self {
        FirebaseConfig {
            enabled: true,
            mock_tokens: false,
            namespaces: Namespaces::Ignore,
            index_on: Default::default(),
            rules: None,
        }
    }
}

/// Where a Firebase client's paths live in Kora's tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// Kora's segments in front of every Firebase path (empty: the root).
    prefix: Vec<String>,
}

impl Namespace {
    /// The namespace a client names, as the configuration treats it.
    pub fn new(config: &FirebaseConfig, ns: Option<&str>) -> Result<Self, Error> {
        match (config.namespaces, ns) {
            (Namespaces::Separate, Some(ns)) if !ns.is_empty() => {
                kora_core::path::validate_segment(ns, 0)?;
                Ok(Namespace {
                    prefix: vec![ns.to_string()],
                })
            }
            (Namespaces::Separate, _) => Err(Error::bad_request(
                "this server keeps one tree per namespace: name one with ?ns=",
            )),
            (Namespaces::Ignore, _) => Ok(Namespace::default()),
        }
    }

    /// Kora's path for a Firebase path (`/users/ada`, `users/ada/` and `users//ada` are one
    /// path, as Firebase clients treat them).
    pub fn path(&self, text: &str, limits: &kora_core::Limits) -> Result<Path, Error> {
        let segments = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain(text.split('/').filter(|s| !s.is_empty()));
        Ok(Path::from_segments_with(segments, limits)?)
    }

    /// The Firebase path (no leading slash, `""` for the root) of Kora's segments, which must
    /// lie in this namespace.
    pub fn firebase_path<S: AsRef<str>>(&self, segments: &[S]) -> String {
        let own = segments.get(self.prefix.len()..).unwrap_or_default();
        own.iter().map(AsRef::as_ref).collect::<Vec<_>>().join("/")
    }
}

/// Milliseconds since the epoch, the server time Firebase clients expect.
pub fn now_millis() -> u64 {
    kora_core::stamp::wall_millis()
}
