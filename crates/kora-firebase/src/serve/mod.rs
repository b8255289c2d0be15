//! The adapter: Firebase's routes on Kora's server, over its own state.
//!
//! - [`ws`]: the WebSocket protocol v5 at `/.ws` (one listen per [`listen::Listen`]), and
//!   [`longpoll`]: the same over long polling at `/.lp`, upgrading to a WebSocket;
//! - [`rest`]: REST at `/{path}.json`, and [`stream`]: its event streams;
//! - [`auth`]: Firebase's tokens and its database secret; [`disconnect`]: `onDisconnect`.

pub mod auth;
pub mod disconnect;
pub mod listen;
pub mod longpoll;
pub mod rest;
pub mod stream;
pub mod ws;

use std::ops::Deref;
use std::sync::Arc;

use axum::routing::{any, get};
use axum::Router;
use kora_engine::KoraBuilder;
use kora_transport::state::AppState;

use crate::rules::{FirebaseRules, RulesFileError};

use crate::write::Shared;
use crate::FirebaseConfig;

/// The name of Firebase's table in kora.toml (`[firebase]`).
pub const TABLE: &str = "firebase";

/// Firebase's protocols, mounted on a server with `kora_server::start_with`.
pub struct Firebase {
    config: FirebaseConfig,
    rules: Option<Arc<FirebaseRules>>,
}

impl Firebase {
    /// Firebase's protocols with `config`, its rules file (if any) read and checked.
    pub fn new(config: FirebaseConfig) -> Result<Self, RulesFileError> {
        let mut config = config;
        let rules = match &config.rules {
            Some(path) => {
                let rules = FirebaseRules::load(path)?;
                tracing::info!(rules = %path.display(), "Firebase rules loaded");
                for (collection, children) in rules.index_on() {
                    config
                        .index_on
                        .entry(collection)
                        .or_default()
                        .extend(children);
                }
                Some(Arc::new(rules))
            }
            None => None,
        };
        Ok(Firebase { config, rules })
    }
}

impl kora_transport::Mount for Firebase {
    fn routes(&self, app: AppState) -> Router {
        let state = FirebaseState {
            app,
            firebase: Arc::new(Shared::new(&self.config)),
            settings: Arc::new(self.config.clone()),
        };
        // REST is every other path ending in `.json`: a catch-all, below the core's routes.
        Router::new()
            .route("/.ws", get(ws::upgrade))
            .route("/.lp", get(longpoll::route))
            .route("/{*path}", any(rest::route))
            .with_state(state)
    }

    fn prepare(&self, builder: KoraBuilder) -> KoraBuilder {
        match &self.rules {
            Some(rules) => builder.interceptor_arc("**", rules.clone()),
            None => builder,
        }
    }

    fn guards_access(&self) -> bool {
        self.rules.is_some()
    }
}

/// What Firebase's handlers share: the server's state, and Firebase's own.
#[derive(Clone)]
pub struct FirebaseState {
    pub app: AppState,
    /// Push ids, indexes, rendered changes.
    pub firebase: Arc<Shared>,
    /// The `[firebase]` settings.
    pub settings: Arc<FirebaseConfig>,
}

impl Deref for FirebaseState {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}
