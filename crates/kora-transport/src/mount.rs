//! Protocols mounted beside Kora's own on the same listener: Firebase's (the `kora-firebase`
//! crate) is one. A mount brings its routes over the server's [`AppState`] and keeps its own
//! state; its settings are a table of kora.toml that [`ServerConfig::load_with`] keeps aside
//! and [`ServerConfig::table`] reads. The server's core knows nothing of what is mounted.
//!
//! [`ServerConfig::load_with`]: crate::ServerConfig::load_with
//! [`ServerConfig::table`]: crate::ServerConfig::table

use axum::Router;
use kora_engine::KoraBuilder;

use crate::state::AppState;

/// Routes served beside the core's.
pub trait Mount: Send + Sync {
    /// Its routes, with their state applied. They must not set a fallback (the server's
    /// answers what nothing matches) and may use a catch-all such as `/{*path}`, which the
    /// core's own routes take precedence over.
    fn routes(&self, state: AppState) -> Router;

    /// What it adds to the engine before the engine is built: interceptors every protocol's
    /// requests then pass through (Firebase's security rules). Nothing by default.
    fn prepare(&self, builder: KoraBuilder) -> KoraBuilder {
        builder
    }

    /// Whether it brings access rules of its own, so that the server, without a Kora rules
    /// file, is still not open to everyone.
    fn guards_access(&self) -> bool {
        false
    }
}
