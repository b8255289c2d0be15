//! What every request handler shares.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    per_ip: PerIp,
    verifier: Option<Arc<Verifier>>,
    /// Recent change pushes of Kora's protocol, by subscription name.
    pub rendered: Arc<crate::rendered::Rendered<String, crate::rendered::Frame>>,
}

impl AppState {
    pub fn new(kora: Kora, config: ServerConfig, verifier: Option<Verifier>) -> Self {
        AppState {
            kora,
            config: Arc::new(config),
            connections: Arc::new(AtomicUsize::new(0)),
            per_ip: Arc::new(Mutex::new(HashMap::new())),
            verifier: verifier.map(Arc::new),
            rendered: Arc::default(),
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
        if self.is_admin(token) {
            return Err(Error::permission_denied(
                "the admin secret is accepted only when a request or a connection starts \
                 (Authorization header or ?token=), not as a user's token",
            ));
        }
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
        let token = presented(headers, token_param);
        if token.is_some_and(|t| self.is_admin(t)) {
            return Ok(self.admin_context());
        }
        let ctx = self.context();
        ctx.set_auth(self.authenticate(token)?);
        Ok(ctx)
    }

    /// Whether `token` is the administrator's (`[auth] admin_secret`).
    pub fn is_admin(&self, token: &str) -> bool {
        crate::auth::is_admin_secret(&self.config.auth, token)
    }

    /// The administrator's context: the server's own, which every rule allows.
    pub fn admin_context(&self) -> Context {
        Context::system(self.kora.clock().origin())
    }

    /// Refuses a request that does not present the admin secret.
    pub fn require_admin(
        &self,
        headers: &HeaderMap,
        token_param: Option<&str>,
    ) -> Result<(), Error> {
        if self.config.auth.admin_secret.is_none() {
            return Err(Error::permission_denied(
                "this needs the administrator, and no admin secret is configured ([auth] admin_secret)",
            ));
        }
        match presented(headers, token_param) {
            Some(token) if self.is_admin(token) => Ok(()),
            _ => Err(Error::permission_denied(
                "this needs the administrator: present the admin secret as a bearer token",
            )),
        }
    }

    /// Open long-lived connections (WebSocket and event streams).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a new long-lived connection from `ip`, or refuses it over
    /// `max_connections` or `max_connections_per_ip`.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionGuard, Error> {
        let limits = &self.config.limits;
        let previous = self.connections.fetch_add(1, Ordering::AcqRel);
        let mut guard = ConnectionGuard {
            total: self.connections.clone(),
            per_ip: None,
        };
        if previous >= limits.max_connections {
            return Err(unavailable(format!(
                "the server holds its maximum of {} connections",
                limits.max_connections
            )));
        }
        let mut per_ip = self
            .per_ip
            .lock()
            .map_err(|_| Error::internal("connection table poisoned"))?;
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= limits.max_connections_per_ip {
            return Err(unavailable(format!(
                "{ip} holds its maximum of {} connections",
                limits.max_connections_per_ip
            )));
        }
        *count += 1;
        guard.per_ip = Some((self.per_ip.clone(), ip));
        Ok(guard)
    }
}

fn unavailable(message: String) -> Error {
    Error::new(kora_engine::Code::Unavailable, message)
}

/// Open connections per client address.
type PerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Uncounts its connection when dropped.
pub struct ConnectionGuard {
    total: Arc<AtomicUsize>,
    per_ip: Option<(PerIp, IpAddr)>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        if let Some((table, ip)) = &self.per_ip {
            if let Ok(mut table) = table.lock() {
                if let Some(count) = table.get_mut(ip) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        table.remove(ip);
                    }
                }
            }
        }
    }
}
