//! Firebase's REST streaming: `GET /{path}.json` with `Accept: text/event-stream`.
//!
//! ```text
//! event: put
//! data: {"path":"/","data":{"a":1}}
//!
//! event: patch
//! data: {"path":"/","data":{"b":2,"c/d":null}}
//!
//! event: keep-alive
//! data: null
//! ```
//!
//! `put` replaces the value at a path relative to the stream's; `patch` replaces each
//! relative path under it. `cancel` ends a stream whose reader lost read permission;
//! `auth_revoked` one whose token expired. An idle stream sends `keep-alive` every
//! `heartbeat_secs` (30 s by default, as Firebase does).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use kora_core::{Path, PathQuery};
use kora_engine::{Context, Error, Initial, Push, Session};
use serde_json::{json, Value};

use crate::changes::{overwrites, update_under, Update};
use crate::FirebaseState;
use kora_transport::state::ConnectionGuard;

fn event(name: &str, data: Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn relative(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

fn update_event(update: Update) -> Event {
    match update {
        Update::Put { path, value } => event(
            "put",
            json!({"path": relative(&path), "data": crate::serve::rest::without_priorities(value)}),
        ),
        Update::Patch { path, children } => {
            let children: serde_json::Map<String, Value> = children
                .into_iter()
                .map(|(k, v)| (k, crate::serve::rest::without_priorities(v)))
                .collect();
            event("patch", json!({"path": relative(&path), "data": children}))
        }
    }
}

struct Live {
    session: Session,
    path: Path,
    /// When the reader's token lapses (seconds since the epoch).
    expires: Option<u64>,
    /// How long a stream stays silent before a `keep-alive`.
    keep_alive: Duration,
    ended: bool,
    _guard: ConnectionGuard,
}

impl Live {
    /// The next events: a change, a keep-alive after `keep_alive` of silence, or the end
    /// (`auth_revoked` as soon as the token lapses, even on a busy stream).
    async fn next(&mut self) -> Option<Vec<Event>> {
        if self.ended {
            return None;
        }
        if self.expired() {
            return Some(self.revoked());
        }
        let wait = match kora_transport::auth::until_lapse(self.expires) {
            Some(left) => self.keep_alive.min(left),
            None => self.keep_alive,
        };
        // `recv` is cancel-safe (a timed-out wait loses nothing); `process` then runs whole.
        let incoming = match tokio::time::timeout(wait, self.session.recv()).await {
            Err(_) if self.expired() => return Some(self.revoked()),
            Err(_) => return Some(vec![event("keep-alive", Value::Null)]),
            Ok(None) => return None,
            Ok(Some(incoming)) => incoming,
        };
        let mut events = Vec::new();
        for push in self.session.process(incoming).await {
            events.extend(self.events(push));
            if self.ended {
                break;
            }
        }
        Some(events)
    }

    fn events(&mut self, push: Push) -> Vec<Event> {
        match push {
            Push::Change { mutation, .. } => {
                update_under(&overwrites(&mutation), self.path.segments())
                    .map(update_event)
                    .into_iter()
                    .collect()
            }
            Push::Reset { value, .. } => {
                vec![update_event(Update::Put {
                    path: Vec::new(),
                    value: value.unwrap_or(Value::Null),
                })]
            }
            Push::Ended { .. } => {
                self.ended = true;
                vec![event("cancel", Value::Null)]
            }
        }
    }

    fn expired(&self) -> bool {
        kora_transport::auth::lapsed(self.expires)
    }

    fn revoked(&mut self) -> Vec<Event> {
        self.ended = true;
        vec![event(
            "auth_revoked",
            json!("credential is no longer valid"),
        )]
    }
}

/// Opens a stream of the value at `path`.
pub async fn open(
    state: FirebaseState,
    ctx: Context,
    expires: Option<u64>,
    peer: SocketAddr,
    path: Path,
) -> Result<Response, Error> {
    let guard = state.admit(peer.ip())?;
    let mut session = state.kora.session(ctx);
    let value = match session
        .subscribe("stream", PathQuery::new(path.clone()), None)
        .await?
    {
        Initial::Snapshot { value, .. } | Initial::Reset { value, .. } => value,
        Initial::Replay { .. } => None,
    };
    let first = update_event(Update::Put {
        path: Vec::new(),
        value: value.unwrap_or(Value::Null),
    });
    let live = Live {
        session,
        path,
        expires,
        keep_alive: state.config.heartbeat(),
        ended: false,
        _guard: guard,
    };
    let rest = stream::unfold(live, |mut live| async move {
        let events = live.next().await?;
        Some((
            stream::iter(events.into_iter().map(Ok::<_, Infallible>)),
            live,
        ))
    })
    .flatten();
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(stream::once(async { Ok(first) }).chain(rest));
    Ok(Sse::new(events).into_response())
}
