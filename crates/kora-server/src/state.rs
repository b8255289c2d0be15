//! What every request handler shares.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kora_engine::{Context, Error, Kora};

use crate::config::ServerConfig;

/// The shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub kora: Kora,
    pub config: Arc<ServerConfig>,
    connections: Arc<AtomicUsize>,
}

impl AppState {
    pub fn new(kora: Kora, config: ServerConfig) -> Self {
        AppState {
            kora,
            config: Arc::new(config),
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A context for one HTTP request or connection.
    pub fn context(&self) -> Context {
        Context::new(self.kora.clock().origin())
    }

    /// Open long-lived connections (WebSocket and event streams).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a new long-lived connection, or refuses it over `max_connections`.
    pub fn admit(&self) -> Result<ConnectionGuard, Error> {
        let limit = self.config.limits.max_connections;
        let previous = self.connections.fetch_add(1, Ordering::AcqRel);
        let guard = ConnectionGuard(self.connections.clone());
        if previous >= limit {
            return Err(Error::new(
                kora_engine::Code::Unavailable,
                format!("the server holds its maximum of {limit} connections"),
            ));
        }
        Ok(guard)
    }
}

/// Uncounts its connection when dropped.
pub struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
