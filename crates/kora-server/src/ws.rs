//! The WebSocket transport at `/v1/ws`: Kora's protocol on the connection loop every
//! WebSocket protocol shares ([`kora_transport::connection`]: one task per connection owns the socket
//! and the session, and selects between the client's frames, the session's pushes, replies
//! from writes running concurrently, and the heartbeat).
//!
//! Writes and handler calls run on tasks of their own (at most `MAX_IN_FLIGHT` per
//! connection) so a client can pipeline them; each write is stamped when its frame is read
//! and handed to the store after the writes read before it (`kora_engine::Turns`), so
//! concurrent writes keep the connection's order. Reads and subscription changes run in
//! the connection task, in order. A socket too slow to take pushes fills the session's
//! queue, which then resets the session instead of slowing anyone else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query as UrlQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kora_core::{Mutation, Value};
use kora_engine::{Context, Error, Initial, Push, Resume, Session, Turns, WriteRequest};
use serde_json::{json, Map};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite;

use crate::protocol::{self, Request};
use kora_protocol::{AuthResult, QueryPath, QueryResult};
use kora_transport::connection::{
    self, configured, Protocol, Replies, Step, DELIVERY_WAIT, MAX_IN_FLIGHT,
};
use kora_transport::error::ApiError;
use kora_transport::http::check_size;
use kora_transport::rendered::{Frame, Rendered};
use kora_transport::state::{AppState, ConnectionGuard};

/// Most replies one connection sends in one socket write.
pub const REPLIES_PER_WRITE: usize = 256;

/// `GET /v1/ws`: upgrades to the Kora protocol. A token in the handshake (`Authorization`
/// header or `?token=`) authenticates the connection from the start.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let ctx = state.context_for(&headers, params.get("token").map(String::as_str))?;
    let guard = state.admit(peer.ip())?;
    Ok(configured(ws, &state.config.limits)
        .on_upgrade(move |socket| connection(socket, state, ctx, guard))
        .into_response())
}

/// A token bucket: `per_second` messages a second, bursts of as many.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        RateLimit {
            per_second,
            tokens: per_second,
            last: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }
}

struct Connection {
    rate: RateLimit,
    state: AppState,
    session: Session,
    /// Where pipelined writes send their replies.
    replies: Replies<String>,
    in_flight: Arc<Semaphore>,
    /// The connection's writes commit in the order they arrived.
    turns: Turns,
    /// The caller's identity version whose stored subscriptions are followed.
    identity: Option<u64>,
}

async fn connection(socket: WebSocket, state: AppState, ctx: Context, _guard: ConnectionGuard) {
    let heartbeat = state.config.heartbeat();
    let session = state.kora.session(ctx);
    let mut conn = Connection {
        rate: RateLimit::new(state.config.limits.max_messages_per_second),
        state,
        session,
        replies: Replies::default(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        turns: Turns::default(),
        identity: None,
    };
    conn.follow_identity().await;
    connection::run(socket, &mut conn, heartbeat).await;
}

impl Protocol for Connection {
    type Reply = String;

    fn parts(&mut self) -> (&mut Session, &mut Replies<String>) {
        (&mut self.session, &mut self.replies)
    }

    async fn text(&mut self, text: Utf8Bytes) -> Step {
        let limit = self.state.config.limits.max_body_bytes;
        if text.len() > limit {
            // Read whole (up to twice the limit, so the connection survives) and refused.
            let error = Error::too_large(format!("the message exceeds {limit} bytes"));
            let id = protocol::parse(text.as_str())
                .ok()
                .and_then(|r| r.id().cloned());
            return Step::Send(vec![protocol::error(id.as_ref(), &error).into()]);
        }
        let replies = self.handle(text.as_str()).await;
        self.follow_identity().await;
        Step::Send(frames_of(replies))
    }

    fn binary(&mut self) -> Vec<Frame> {
        let error = Error::bad_request("binary frames are not supported; send JSON text");
        vec![protocol::error(None, &error).into()]
    }

    fn unreadable(&mut self, error: axum::Error) -> Option<Frame> {
        // The only read error worth telling the client about: its message was too big.
        if !exceeds_capacity(error) {
            return None;
        }
        let limit = self.state.config.limits.max_body_bytes;
        let error = Error::too_large(format!("the message exceeds {limit} bytes"));
        Some(protocol::error(None, &error).into())
    }

    async fn pushes(&mut self, pushes: Vec<Push>) -> Vec<Frame> {
        self.render(&pushes)
    }

    async fn replied(&mut self, reply: String) -> Vec<Frame> {
        // Pushes already queued go first: a write's reply follows its changes. Every reply
        // already waiting goes in the same socket write (pipelined writes of one commit
        // group finish together).
        let mut replies = vec![reply];
        while replies.len() < REPLIES_PER_WRITE {
            match self.replies.try_recv() {
                Some(reply) => replies.push(reply),
                None => break,
            }
        }
        // A call that signed the connection in (or out) starts its stored subscriptions:
        // their resets go out before the call's reply.
        self.follow_identity().await;
        // Drained after the replies were taken: each reply was sent once its pushes were
        // queued, so they are all here.
        let mut out = self.drain_pushes().await;
        out.extend(replies.into_iter().map(Frame::from));
        out
    }
}

/// Replies as frames.
fn frames_of(replies: Vec<String>) -> Vec<Frame> {
    replies.into_iter().map(Frame::from).collect()
}

/// True when a read failed because the message or a frame was larger than the socket reads
/// (`configured`'s limits).
fn exceeds_capacity(error: axum::Error) -> bool {
    let error = error.into_inner();
    matches!(
        error.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// A push as a frame (a change's frame is rendered once for the subscriptions of the same name
/// that receive the same change: see [`kora_transport::rendered`]).
fn render(push: &Push, rendered: &Rendered<String, Frame>) -> Frame {
    match push {
        Push::Change {
            id,
            seq,
            stamp,
            mutation,
        } => rendered.get(mutation, id, || {
            protocol::change(id, *seq, *stamp, mutation).into()
        }),
        Push::Reset {
            id,
            seq,
            value,
            query,
        } => protocol::reset(id, *seq, value.clone(), query.as_ref()).into(),
        Push::Ended { id, error } => protocol::ended(id, error).into(),
    }
}

impl Connection {
    fn render(&self, pushes: &[Push]) -> Vec<Frame> {
        let rendered = &self.state.rendered;
        pushes.iter().map(|push| render(push, rendered)).collect()
    }

    /// Every push the session has queued, rendered, without waiting for more.
    async fn drain_pushes(&mut self) -> Vec<Frame> {
        let pushes = self.session.process_queued(usize::MAX).await;
        self.render(&pushes)
    }

    /// Handles one text frame; returns the frames to send now (replies and pushes).
    async fn handle(&mut self, text: &str) -> Vec<String> {
        let mut out = self.expire_auth();
        if !self.rate.allow() {
            let limit = self.state.config.limits.max_messages_per_second;
            let error = Error::new(
                kora_engine::Code::Unavailable,
                format!("slow down: at most {limit} messages per second"),
            );
            let id = protocol::parse(text).ok().and_then(|r| r.id().cloned());
            out.push(protocol::error(id.as_ref(), &error));
            return out;
        }
        let request = match protocol::parse(text) {
            Ok(request) => request,
            Err((id, error)) => {
                out.push(protocol::error(id.as_ref(), &error));
                return out;
            }
        };
        let id = request.id().cloned();
        match self.dispatch(request).await {
            Ok(frames) => out.extend(frames),
            Err(error) => out.push(protocol::error(id.as_ref(), &error)),
        }
        out
    }

    /// Drops an identity whose token has expired, and tells the client.
    fn expire_auth(&self) -> Vec<String> {
        let ctx = self.session.context();
        let leeway = self.state.config.auth.leeway_secs;
        let lapses_at = ctx
            .auth()
            .and_then(|claims| kora_transport::auth::lapses_at(&claims, leeway));
        let expired = kora_transport::auth::lapsed(lapses_at);
        if !expired {
            return Vec::new();
        }
        ctx.set_auth(None);
        vec![protocol::auth_expired()]
    }

    /// Follows the stored subscriptions of whoever the connection is now, when that may
    /// have changed (a token, an `auth` request, a handler that set the user): one atomic
    /// read per message otherwise.
    async fn follow_identity(&mut self) {
        let version = self.session.context().identity_version();
        if self.identity == Some(version) {
            return;
        }
        self.identity = Some(version);
        if let Err(error) = self.session.follow_stored_of_current_user().await {
            tracing::debug!(%error, "stored subscriptions not followed");
        }
    }

    async fn dispatch(&mut self, request: Request) -> Result<Vec<String>, Error> {
        match request {
            Request::Ping { id } => Ok(vec![protocol::result(&id, json!("pong"))]),
            Request::Auth { id, token } => {
                let claims = self.state.authenticate(token.as_deref())?;
                self.session.context().set_auth(claims.clone());
                Ok(vec![protocol::result(&id, AuthResult { auth: claims })])
            }
            Request::Query { id, paths } => self.query(id, paths).await,
            Request::Unsubscribe { id, sub } => {
                let existed = self.session.unsubscribe(&sub);
                Ok(vec![protocol::result(&id, json!(existed))])
            }
            Request::Mutate {
                id,
                mutation,
                stamp,
                conditions,
            } => {
                let limits = self.state.config.path_limits();
                let mutation = Mutation::from_json_with(&mutation, &limits)?;
                check_size(&self.state, &mutation)?;
                let request = WriteRequest {
                    conditions,
                    turn: Some(self.turns.next()),
                    ..WriteRequest::new(mutation, self.state.kora.stamp(stamp))
                };
                let kora = self.state.kora.clone();
                let ctx = self.session.context().clone();
                self.spawn(Some(id), async move {
                    let commit = kora.write(&ctx, request).await?;
                    // The reply follows the commit's pushes (see `drain_pushes`); bounded, so
                    // a feed held up by a missing sequence cannot hold the reply for long.
                    let _ =
                        tokio::time::timeout(DELIVERY_WAIT, kora.wait_delivered(commit.seq)).await;
                    Ok(protocol::commit(&commit))
                })
                .await;
                Ok(Vec::new())
            }
            Request::Call { id, name, args } => {
                self.call(Some(id), name, args).await;
                Ok(Vec::new())
            }
            Request::Cast { name, args, .. } => {
                self.call(None, name, args).await;
                Ok(Vec::new())
            }
        }
    }

    async fn call(&mut self, id: Option<Value>, name: String, args: Value) {
        let kora = self.state.kora.clone();
        let ctx = self.session.context().clone();
        self.spawn(id, async move { kora.call(&ctx, &name, args).await })
            .await;
    }

    /// Runs `work` on a task of its own; its reply (when `id` is given) comes back through
    /// the connection loop.
    async fn spawn(
        &mut self,
        id: Option<Value>,
        work: impl std::future::Future<Output = Result<Value, Error>> + Send + 'static,
    ) {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let replies = self.replies.sender();
        tokio::spawn(async move {
            let outcome = work.await;
            drop(permit);
            let Some(id) = id else {
                return;
            };
            let text = match outcome {
                Ok(result) => protocol::result(&id, result),
                Err(error) => protocol::error(Some(&id), &error),
            };
            let _ = replies.send(text);
        });
    }

    /// Reads every path; subscribes those that ask. The reply holds the values of the paths
    /// read now; resumed subscriptions follow as pushes (replayed changes or a reset).
    async fn query(&mut self, id: Value, paths: Vec<QueryPath>) -> Result<Vec<String>, Error> {
        let limits = self.state.config.path_limits();
        let mut queries = Vec::with_capacity(paths.len());
        for path in &paths {
            queries.push(protocol::to_query(path, &limits)?);
        }
        let mut tree = Map::new();
        let mut seq = 0;
        let mut pushes = Vec::new();
        let plain: Vec<_> = queries.iter().filter(|q| !q.subscribe).cloned().collect();
        if !plain.is_empty() {
            let answer = self
                .session
                .query(&kora_core::Query { paths: plain })
                .await?;
            seq = answer.seq;
            if let Value::Object(map) = answer.value {
                tree = map;
            }
        }
        for (path, query) in paths.iter().zip(queries).filter(|(_, q)| q.subscribe) {
            let name = path.name();
            let segments = query.path.segments().to_vec();
            let resume = path.since.map(|seq| Resume {
                seq,
                history: path.history.clone(),
            });
            match self.session.subscribe(&name, query, resume).await? {
                Initial::Snapshot { seq: at, value } => {
                    seq = seq.max(at);
                    if let Some(value) = value {
                        kora_core::query::place(&mut tree, &segments, value);
                    }
                }
                Initial::Reset { seq: at, value } => {
                    pushes.push(protocol::reset(&name, at, value, None))
                }
                Initial::Replay { changes, .. } => {
                    for c in changes {
                        pushes.push(protocol::change(&name, c.seq, c.stamp, &c.mutation));
                    }
                }
            }
        }
        let value = Value::Object(tree);
        let history = paths
            .iter()
            .any(|p| p.subscribe)
            .then(|| self.state.kora.history_id().map(str::to_string))
            .flatten();
        let result = QueryResult {
            seq,
            value,
            history,
        };
        let mut out = vec![protocol::result(&id, result)];
        out.extend(pushes);
        Ok(out)
    }
}
