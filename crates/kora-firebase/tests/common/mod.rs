//! A real server with Firebase's protocols mounted, on a random loopback port; Kora's own
//! WebSocket client and test tokens come from the server's test helpers.

#![allow(dead_code, unused_imports)]

pub mod firebase;

#[path = "../../../kora-server/tests/common/mod.rs"]
mod kora;

use std::ops::{Deref, DerefMut};

pub use kora::{json, text, tokens, url, Client};
use kora_engine::{Kora, KoraBuilder};
use kora_firebase::FirebaseConfig;
use kora_server::{Running, ServerConfig};

/// The server's settings and Firebase's (`c.rules`, `c.firebase.mock_tokens`).
pub struct Setup {
    pub server: ServerConfig,
    pub firebase: FirebaseConfig,
}

impl Deref for Setup {
    type Target = ServerConfig;

    fn deref(&self) -> &ServerConfig {
        &self.server
    }
}

impl DerefMut for Setup {
    fn deref_mut(&mut self) -> &mut ServerConfig {
        &mut self.server
    }
}

/// Starts a server on `memory:` with `builder`'s interceptors and handlers, and Firebase's
/// protocols.
pub async fn server_with(builder: KoraBuilder, tweak: impl FnOnce(&mut Setup)) -> Running {
    let mut setup = Setup {
        server: ServerConfig {
            bind: "127.0.0.1:0".into(),
            store: Some("memory:".into()),
            ..ServerConfig::default()
        },
        firebase: FirebaseConfig::default(),
    };
    tweak(&mut setup);
    start(setup, builder).await
}

/// Starts a server as `setup` says.
pub async fn start(setup: Setup, builder: KoraBuilder) -> Running {
    let firebase = kora_firebase::Firebase::new(setup.firebase).expect("Firebase rules");
    kora_server::start_with(setup.server, builder, vec![Box::new(firebase)])
        .await
        .expect("server starts")
}

pub async fn server() -> Running {
    server_with(Kora::builder(), |_| {}).await
}

/// An unsigned emulator token (`alg: none`) with `claims`, as `mockUserToken` makes them.
pub fn unsigned_token(claims: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.",
        b64(serde_json::json!({"alg": "none"})),
        b64(claims)
    )
}

/// A rules file for a server under test: Kora's YAML, or Firebase's `database.rules.json`.
pub enum Rules<'a> {
    Kora(&'a str),
    Firebase(&'a str),
}

/// A server with mock tokens on that loads `rules` from a file in a temporary directory
/// (kept alive by the returned handle).
pub async fn server_with_rules(rules: Rules<'_>) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (name, text) = match rules {
        Rules::Kora(text) => ("kora.rules.yaml", text),
        Rules::Firebase(text) => ("database.rules.json", text),
    };
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let running = server_with(Kora::builder(), |c| {
        match rules {
            Rules::Kora(_) => c.rules = Some(file),
            Rules::Firebase(_) => c.firebase.rules = Some(file),
        }
        c.firebase.mock_tokens = true;
    })
    .await;
    (running, dir)
}
