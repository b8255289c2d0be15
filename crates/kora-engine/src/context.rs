//! The caller of every request: who they are, what their connection remembers, and the origin
//! their writes are stamped with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A connection's context. Cloning shares it: a login handler's changes are seen by every
/// later request of the same connection.
#[derive(Clone, Debug)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    origin: u64,
    system: bool,
    auth: RwLock<Option<Value>>,
    state: RwLock<Map<String, Value>>,
    /// Bumped whenever who the caller is may have changed (its auth, or its state's `user`).
    identity: AtomicU64,
}

impl Context {
    /// A new anonymous connection. `origin` identifies its writer in stamps (a client's
    /// persisted id; the server's own origin for clients that have none).
    pub fn new(origin: u64) -> Self {
        Self::build(origin, false)
    }

    /// The server itself: interceptors may let it do what clients may not (the rules allow
    /// the system context everything).
    pub fn system(origin: u64) -> Self {
        Self::build(origin, true)
    }

    fn build(origin: u64, system: bool) -> Self {
        Context {
            inner: Arc::new(Inner {
                id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
                origin,
                system,
                auth: RwLock::new(None),
                state: RwLock::new(Map::new()),
                identity: AtomicU64::new(0),
            }),
        }
    }

    /// Unique per connection within this process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn origin(&self) -> u64 {
        self.inner.origin
    }

    pub fn is_system(&self) -> bool {
        self.inner.system
    }

    /// The verified identity (e.g. JWT claims), `None` when anonymous.
    pub fn auth(&self) -> Option<Value> {
        self.inner.auth.read().ok().and_then(|a| a.clone())
    }

    pub fn set_auth(&self, auth: Option<Value>) {
        if let Ok(mut slot) = self.inner.auth.write() {
            *slot = auth;
        }
        self.inner.identity.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever the caller's identity may have (its auth, or its state's `user`): a
    /// transport compares it to know when to follow another user's stored subscriptions,
    /// without reading the identity on every message.
    pub fn identity_version(&self) -> u64 {
        self.inner.identity.load(Ordering::Acquire)
    }

    /// The user id: the `sub` claim, or the state's `user` (set by a login handler).
    pub fn user(&self) -> Option<String> {
        let from_auth = self
            .auth()
            .and_then(|a| a.get("sub").and_then(Value::as_str).map(String::from));
        from_auth.or_else(|| self.get("user").and_then(|u| u.as_str().map(String::from)))
    }

    /// A value of the connection's state.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.inner
            .state
            .read()
            .ok()
            .and_then(|s| s.get(key).cloned())
    }

    /// Sets a value of the connection's state (`null` removes it).
    pub fn set(&self, key: &str, value: Value) {
        if let Ok(mut state) = self.inner.state.write() {
            if value.is_null() {
                state.remove(key);
            } else {
                state.insert(key.to_string(), value);
            }
        }
        if key == "user" {
            self.inner.identity.fetch_add(1, Ordering::Release);
        }
    }

    /// The whole state, as JSON.
    pub fn state(&self) -> Map<String, Value> {
        self.inner
            .state
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn clones_share_state_and_ids_are_unique() {
        let a = Context::new(1);
        let b = a.clone();
        b.set("user", json!("jack"));
        assert_eq!(a.get("user"), Some(json!("jack")));
        assert_eq!(a.user().as_deref(), Some("jack"));
        assert_ne!(Context::new(1).id(), a.id());
    }

    #[test]
    fn auth_sub_is_the_user() {
        let ctx = Context::new(1);
        ctx.set_auth(Some(json!({"sub": "u42"})));
        assert_eq!(ctx.user().as_deref(), Some("u42"));
    }
}
