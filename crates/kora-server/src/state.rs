//! What every request handler shares.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::HeaderMap;
use kora_engine::{Context, Error, Kora};
use serde_json::Value;

use crate::auth::{presented, Verifier};
use crate::config::ServerConfig;

/// The shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub kora: Kora,
    pub config: Arc<ServerConfig>,
    connections: Arc<AtomicUsize>,
    verifier: Option<Arc<Verifier>>,
}

impl AppState {
    pub fn new(kora: Kora, config: ServerConfig, verifier: Option<Verifier>) -> Self {
        AppState {
            kora,
            config: Arc::new(config),
            connections: Arc::new(AtomicUsize::new(0)),
            verifier: verifier.map(Arc::new),
        }
    }

    /// An anonymous context for one HTTP request or connection.
    pub fn context(&self) -> Context {
        Context::new(self.kora.clock().origin())
    }

    /// The claims of a presented token (`None`: anonymous), or why it is refused.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<Value>, Error> {
        let Some(token) = token else {
            return Ok(None);
        };
        match &self.verifier {
            Some(verifier) => verifier.verify(token).map(Some),
            None => Err(Error::permission_denied(
                "this server accepts no tokens: no keys are configured ([auth] in kora.toml)",
            )),
        }
    }

    /// The context of a request: anonymous, or the identity of its token.
    pub fn context_for(
        &self,
        headers: &HeaderMap,
        token_param: Option<&str>,
    ) -> Result<Context, Error> {
        let ctx = self.context();
        ctx.set_auth(self.authenticate(presented(headers, token_param))?);
        Ok(ctx)
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
