//! Firebase's WebSocket protocol v5 at `/.ws?v=5&ns=…`, on the server's connection loop
//! (`kora_transport::connection`, as Kora's own protocol): one task per connection handles the
//! client's requests in order (docs/firebase-protocol.md §7: per-connection FIFO), and passes
//! the engine's pushes on as Firebase pushes.
//!
//! Writes that decide on nothing they read (sets and updates without a transaction hash,
//! increments or priorities: `write::plain`) are pipelined: each is committed in its turn
//! (`kora_engine::Turns`: in the order they arrived) on a task of its own, so a client
//! streaming writes is not held up by each one's commit and fan-out. Every other request
//! first waits for the writes in flight to finish (`Connection::settle_writes`), so it sees
//! them, exactly as if the writes had been handled one at a time.
//!
//! The two ordering rules the SDKs depend on hold by construction: a listen's data is sent
//! before its `ok`, and a write's own pushes (to this connection's listens) before its `ok` —
//! the write waits until the engine has fanned its commit out, and the loop sends what the
//! connection has queued before the reply.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use kora_core::Mutation;
use kora_core::PathQuery;
use kora_engine::{Context, Error, Initial, Push, Resume, Session, Turns};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::node::CompoundHash;
use crate::query::FbQuery;
use crate::serve::auth::{identify, Identity};
use crate::serve::disconnect::Pending;
use crate::serve::listen::{subscription_id, Known, Listen, Tagged};
use crate::write::{self, Expect, Refusal};
use crate::FirebaseState;
use crate::{wire, Namespace};
use kora_transport::connection::{self, Protocol, Replies, Step};
use kora_transport::connection::{DELIVERY_WAIT, MAX_IN_FLIGHT};
use kora_transport::error::ApiError;
use kora_transport::rendered::Frame;
use kora_transport::state::ConnectionGuard;

/// `GET /.ws`: upgrades to Firebase's protocol.
pub async fn upgrade(
    State(state): State<FirebaseState>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !state.settings.enabled {
        return Err(Error::new(kora_engine::Code::NotFound, "Firebase protocol is off").into());
    }
    let namespace = Namespace::new(&state.settings, params.get("ns").map(String::as_str))?;
    // Clients reconnect to the host the hello names: it must be the one they used.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| state.config.bind.clone());
    let configured = kora_transport::connection::configured(ws, &state.config.limits);
    if let Some(session) = params.get("s").cloned() {
        // A long-polling connection upgrading (its hello named `session`).
        return Ok(configured
            .on_upgrade(move |socket| upgrade_poll(socket, state, session, host))
            .into_response());
    }
    let guard = state.admit(peer.ip())?;
    Ok(configured
        .on_upgrade(move |socket| run(socket, state, namespace, host, guard))
        .into_response())
}

struct Connection {
    state: FirebaseState,
    namespace: Namespace,
    session: Session,
    listens: HashMap<String, Listen>,
    on_disconnect: Pending,
    /// When the client's token expires (seconds since the epoch).
    expires: Option<u64>,
    /// Pipelined writes: their order, the order of their replies, their number in flight,
    /// and their replies.
    turns: Turns,
    reply_turns: Turns,
    in_flight: Arc<Semaphore>,
    replies: Replies<Vec<Frame>>,
    /// Messages split across frames, put together again.
    whole: wire::Reassembly,
}

/// A WebSocket naming a session: handed to that long-polling connection, or, when there is
/// none, told to reset (the SDK then drops it and goes on polling).
async fn upgrade_poll(socket: WebSocket, state: FirebaseState, session: String, host: String) {
    if let Err(mut socket) = state.firebase.polls.upgrade(&session, Box::new(socket)) {
        let reset = json!({"t": "c", "d": {"t": "r", "d": host}}).to_string();
        let _ = socket.send(Message::Text(reset.into())).await;
        let _ = socket.close().await;
    }
}

/// A new session's id, which the hello names (a long-polling client upgrades by it).
pub(crate) fn new_session_id() -> String {
    crate::node::push_id(crate::now_millis(), &mut Default::default()).replace(['-', '_'], "x")
}

async fn run(
    mut socket: WebSocket,
    state: FirebaseState,
    namespace: Namespace,
    host: String,
    guard: ConnectionGuard,
) {
    let hello = wire::hello(crate::now_millis(), &host, &new_session_id());
    // The pong after the hello makes the JS SDK count the connection healthy at once: a
    // browser whose WebSocket never became healthy tries long polling next time
    // (docs/firebase-protocol.md §1.5). Android and iOS ignore it.
    let greeting = [hello, wire::pong()].map(|text| Message::Text(text.into()));
    if socket
        .send_all(&mut futures_util::stream::iter(greeting.map(Ok)))
        .await
        .is_err()
    {
        return;
    }
    let heartbeat = state.config.heartbeat();
    let link = connection::Socket::new(socket, heartbeat, <Connection as Protocol>::frames);
    serve(link, state, namespace, guard).await;
}

/// Serves one client over `link` (a WebSocket, or long polling) until it goes, then runs
/// its onDisconnect writes.
pub(crate) async fn serve(
    link: impl connection::Link,
    state: FirebaseState,
    namespace: Namespace,
    _guard: ConnectionGuard,
) {
    let heartbeat = state.config.heartbeat();
    let mut conn = Connection {
        session: state.kora.session(state.context()),
        state,
        namespace,
        listens: HashMap::new(),
        on_disconnect: Pending::default(),
        expires: None,
        turns: Turns::default(),
        reply_turns: Turns::default(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        replies: Replies::default(),
        whole: wire::Reassembly::default(),
    };
    connection::run_over(link, &mut conn, heartbeat).await;
    let Connection {
        state,
        session,
        on_disconnect,
        in_flight,
        ..
    } = conn;
    if !on_disconnect.is_empty() {
        let ctx = session.context().clone();
        tokio::spawn(async move {
            // After the connection's own writes: they were made first.
            let _settled = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
            on_disconnect.run(&state, &ctx).await
        });
    }
}

impl Protocol for Connection {
    type Reply = Vec<Frame>;

    fn parts(&mut self) -> (&mut Session, &mut Replies<Vec<Frame>>) {
        (&mut self.session, &mut self.replies)
    }

    async fn text(&mut self, text: Utf8Bytes) -> Step {
        match self.whole.feed(text.as_str()) {
            Ok(Some(message)) => Step::Send(self.handle(&message).await),
            Ok(None) => Step::Send(Vec::new()),
            Err(error) => {
                tracing::debug!(%error, "bad Firebase frame");
                Step::Close(Vec::new())
            }
        }
    }

    async fn pushes(&mut self, pushes: Vec<Push>) -> Vec<Frame> {
        self.render(pushes).await
    }

    async fn replied(&mut self, replies: Vec<Frame>) -> Vec<Frame> {
        self.after_writes(replies).await
    }

    fn heartbeat(&mut self) -> Vec<Frame> {
        // WebSocket pings (the loop's), never a `0` frame: the JS SDK reads a bare number as
        // a fragment count (docs/firebase-protocol.md §1.6).
        self.check_expiry()
    }

    fn frames(message: Frame) -> impl Iterator<Item = Frame> + Send {
        wire::frames(message).into_iter()
    }
}

/// The `p` member of a request body.
fn path_of(body: &Value) -> &str {
    body.get("p").and_then(Value::as_str).unwrap_or("")
}

impl Connection {
    async fn handle(&mut self, text: &str) -> Vec<Frame> {
        let (r, action, mut body) = match wire::parse(text) {
            Ok(wire::Incoming::Request { r, action, body }) => (r, action, body),
            Ok(wire::Incoming::Ping) => return vec![wire::pong().into()],
            Ok(wire::Incoming::Ignored) => return Vec::new(),
            Err(error) => {
                tracing::debug!(%error, "unreadable Firebase message");
                return Vec::new();
            }
        };
        let mut out = self.check_expiry();
        if action == "p" || action == "m" {
            match self.plain_write(&action, &mut body) {
                Ok(Some(mutation)) => {
                    self.pipeline(r, mutation).await;
                    return out;
                }
                Ok(None) => {}
                Err(error) => {
                    out.push(wire::refused(&r, &error).into());
                    return out;
                }
            }
        }
        out.extend(self.settle_writes().await);
        let result = match action.as_str() {
            "s" | "appcheck" | "unappeck" | "unappcheck" => {
                Ok(vec![wire::ok(&r, json!("")).into()])
            }
            "q" | "l" => self.listen(&r, &body).await,
            "n" => Ok(self.unlisten(&r, &body)),
            "p" => self.put(&r, body).await,
            "m" => self.merge(&r, body).await,
            "o" | "om" | "oc" => self.on_disconnect(&r, &action, body).await,
            "g" => self.get(&r, &body).await,
            "auth" | "gauth" => Ok(self.auth(&r, &body).await),
            "unauth" => {
                self.set_identity(None).await;
                Ok(vec![wire::ok(&r, json!("unauthenticated")).into()])
            }
            other => Err(Error::bad_request(format!("unknown action {other:?}"))),
        };
        match result {
            Ok(frames) => out.extend(frames),
            Err(error) => out.push(wire::refused(&r, &error).into()),
        }
        out
    }

    /// The mutation of a write that can be pipelined (`write::plain`), if it is one.
    fn plain_write(&self, action: &str, body: &mut Value) -> Result<Option<Mutation>, Error> {
        let path = self.path(path_of(body))?;
        write::plain(&self.state, action, &path, body)
    }

    /// Commits `mutation` in its turn on a task of its own; its reply comes back through the
    /// connection loop ([`Connection::after_writes`]).
    async fn pipeline(&mut self, r: Value, mutation: Mutation) {
        let turn = self.turns.next();
        let mut reply_turn = self.reply_turns.next();
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let state = self.state.clone();
        let ctx = self.session.context().clone();
        let replies = self.replies.sender();
        tokio::spawn(async move {
            let reply = match write::commit_in_turn(&state, &ctx, mutation, turn).await {
                Ok(seq) => {
                    let delivered = state.kora.wait_delivered(seq);
                    let _ = tokio::time::timeout(DELIVERY_WAIT, delivered).await;
                    wire::ok(&r, json!(""))
                }
                Err(error) => wire::refused(&r, &error),
            };
            // Acknowledged in the order the writes arrived; the reply is queued before the
            // permit is returned, so a request settling the writes in flight finds it.
            reply_turn.wait().await;
            let _ = replies.send(vec![reply.into()]);
            drop(reply_turn);
            drop(permit);
        });
    }

    /// Waits for the pipelined writes in flight to finish; returns their replies (after what
    /// they pushed to this connection), so that what follows sees and follows them.
    async fn settle_writes(&mut self) -> Vec<Frame> {
        if self.in_flight.available_permits() < MAX_IN_FLIGHT {
            if let Ok(all) = self.in_flight.acquire_many(MAX_IN_FLIGHT as u32).await {
                drop(all);
            }
        }
        let mut replies = Vec::new();
        while let Some(more) = self.replies.try_recv() {
            replies.extend(more);
        }
        match replies.is_empty() {
            true => replies,
            false => self.after_writes(replies).await,
        }
    }

    /// Writes' replies, after the pushes queued for this connection (its listens see a
    /// change before the write's `ok`). Every reply already waiting goes along.
    async fn after_writes(&mut self, mut replies: Vec<Frame>) -> Vec<Frame> {
        while let Some(more) = self.replies.try_recv() {
            replies.extend(more);
        }
        let pushes = self.session.process_queued(usize::MAX).await;
        let mut out = self.render(pushes).await;
        out.extend(replies);
        out
    }

    fn path(&self, text: &str) -> Result<kora_core::Path, Error> {
        self.namespace.path(text, &self.state.config.path_limits())
    }

    async fn listen(&mut self, r: &Value, body: &Value) -> Result<Vec<Frame>, Error> {
        let path = self.path(path_of(body))?;
        let location = self.namespace.firebase_path(path.segments());
        let tag = body.get("t").and_then(Value::as_u64);
        let wire_query = body.get("q").cloned().unwrap_or(json!({}));
        let mut warnings = Vec::new();
        let tagged = match tag {
            Some(tag) => {
                let query = FbQuery::from_wire(&wire_query).map_err(Error::bad_request)?;
                let indexes = &self.state.firebase.indexes;
                let index = match crate::index::indexed_child(&query) {
                    Some(child) => indexes.get(&self.state.kora, &path, child).await?,
                    None => None,
                };
                if index.is_none() && matches!(query.index, crate::query::Index::Child(_)) {
                    // The SDK then suggests declaring an index, as Firebase's does.
                    warnings.push("no_index");
                }
                Some(Tagged::new(tag, query, wire_query.clone(), index))
            }
            None => None,
        };
        let id = subscription_id(&location, Some(&wire_query), tag);
        // A listen asked for again replaces the old one.
        self.session.unsubscribe(&id);
        // An indexed listen reads only its window: it follows changes from now on, without a
        // snapshot of the whole collection.
        let since = match &tagged {
            Some(t) if t.is_indexed() => {
                Some(Resume::after(self.state.kora.store().last_seq().await?))
            }
            _ => None,
        };
        let initial = self
            .session
            .subscribe(&id, PathQuery::new(path.clone()), since)
            .await;
        let value = match initial {
            Ok(Initial::Snapshot { value, .. } | Initial::Reset { value, .. }) => value,
            Ok(Initial::Replay { .. }) => None,
            Err(error) => return Ok(vec![wire::refused(r, &error).into()]),
        };
        let mut listen = Listen {
            path,
            location,
            tagged,
        };
        let known = Known {
            hash: body.get("h").and_then(Value::as_str),
            compound: body.get("ch").and_then(CompoundHash::from_wire),
        };
        let mut out = match listen.snapshot(value, &known, &self.session).await {
            Ok(messages) => messages,
            Err(error) => {
                self.session.unsubscribe(&id);
                return Ok(vec![wire::refused(r, &error).into()]);
            }
        };
        self.listens.insert(id, listen);
        // Android reads `d` of a listen's reply as a map: never leave it out.
        let reply = match warnings.is_empty() {
            true => json!({}),
            false => json!({"w": warnings}),
        };
        out.push(wire::ok(r, reply).into());
        Ok(out)
    }

    fn unlisten(&mut self, r: &Value, body: &Value) -> Vec<Frame> {
        let location = self
            .path(path_of(body))
            .map(|p| self.namespace.firebase_path(p.segments()))
            .unwrap_or_default();
        let tag = body.get("t").and_then(Value::as_u64);
        let id = subscription_id(&location, body.get("q"), tag);
        self.session.unsubscribe(&id);
        self.listens.remove(&id);
        vec![wire::ok(r, json!("")).into()]
    }

    /// `p`: a set, a transaction's compare-and-set when it carries `h`.
    async fn put(&mut self, r: &Value, mut body: Value) -> Result<Vec<Frame>, Error> {
        let path = self.path(path_of(&body))?;
        let data = body.get_mut("d").map(Value::take).unwrap_or(Value::Null);
        let expect = match body.get("h").and_then(Value::as_str) {
            Some(hash) => Expect::Hash(hash.to_string()),
            None => Expect::Anything,
        };
        let ctx = self.session.context().clone();
        match write::put(&self.state, &ctx, &path, data, expect).await {
            Ok(written) => Ok(self.after_write(r, written.seq).await),
            Err(Refusal::Stale { .. }) => {
                // The client re-runs its transaction on the current value, which goes out only
                // if it may read it: a client that may not is refused as such rather than
                // re-running on a value it never gets. (The write's own rules are not asked
                // here: they would judge the stale value against data it was not meant for —
                // a `data`-dependent `.validate` refuses it — and the re-run, whose hash then
                // matches, meets them anyway.)
                let current =
                    crate::index::read(&self.state, self.session.context(), &path, None).await?;
                let location = self.namespace.firebase_path(path.segments());
                Ok(vec![
                    wire::data(&location, current.unwrap_or(Value::Null), None).into(),
                    wire::reply(r, "datastale", json!("Transaction hash does not match")).into(),
                ])
            }
            Err(Refusal::Error(error)) => Err(error),
        }
    }

    /// `m`: an update of several children, atomically.
    async fn merge(&mut self, r: &Value, mut body: Value) -> Result<Vec<Frame>, Error> {
        let path = self.path(path_of(&body))?;
        let Some(Value::Object(children)) = body.get_mut("d").map(Value::take) else {
            return Err(Error::bad_request("an update's data is an object"));
        };
        let ctx = self.session.context().clone();
        let seq = write::update(&self.state, &ctx, &path, children).await?;
        Ok(self.after_write(r, Some(seq)).await)
    }

    /// The pushes a write caused on this connection's listens, then its `ok`.
    async fn after_write(&mut self, r: &Value, seq: Option<kora_store::Seq>) -> Vec<Frame> {
        if let Some(seq) = seq {
            let _ = tokio::time::timeout(DELIVERY_WAIT, self.state.kora.wait_delivered(seq)).await;
        }
        let pushes = self.session.process_queued(usize::MAX).await;
        let mut out = self.render(pushes).await;
        out.push(wire::ok(r, json!("")).into());
        out
    }

    async fn on_disconnect(
        &mut self,
        r: &Value,
        action: &str,
        mut body: Value,
    ) -> Result<Vec<Frame>, Error> {
        let path = self.path(path_of(&body))?;
        let data = body.get_mut("d").map(Value::take).unwrap_or(Value::Null);
        if action != "oc" {
            write::check(&self.state, self.session.context(), action, &path, &data).await?;
        }
        match (action, data) {
            ("o", data) => self.on_disconnect.set(path, data)?,
            ("om", Value::Object(children)) => self.on_disconnect.update(&path, children)?,
            ("om", _) => return Err(Error::bad_request("an update's data is an object")),
            _ => self.on_disconnect.forget(&path),
        }
        Ok(vec![wire::ok(r, json!("")).into()])
    }

    /// `g`: a one-time read, through the rules, filtered by its query.
    async fn get(&mut self, r: &Value, body: &Value) -> Result<Vec<Frame>, Error> {
        let path = self.path(path_of(body))?;
        let query = match body
            .get("q")
            .filter(|q| q.as_object().is_some_and(|m| !m.is_empty()))
        {
            Some(q) => Some(FbQuery::from_wire(q).map_err(Error::bad_request)?),
            None => None,
        };
        let value =
            crate::index::read(&self.state, self.session.context(), &path, query.as_ref()).await?;
        Ok(vec![wire::ok(r, value.unwrap_or(Value::Null)).into()])
    }

    async fn auth(&mut self, r: &Value, body: &Value) -> Vec<Frame> {
        let token = body.get("cred").and_then(Value::as_str).unwrap_or("");
        match identify(&self.state, token) {
            Ok(identity) => {
                let (claims, expires) = match &identity {
                    Identity::User { claims, expires } => (claims.clone(), *expires),
                    Identity::Owner => (json!({"admin": true}), None),
                };
                self.set_identity(Some(identity)).await;
                self.expires = expires;
                vec![wire::ok(r, json!({"auth": claims, "expires": expires})).into()]
            }
            Err(error) => vec![wire::reply(r, "invalid_token", json!(error.message)).into()],
        }
    }

    /// Changes who the connection acts as. The administrator needs a context of its own
    /// (rules do not apply to it), so the session is replaced and every listen renewed.
    async fn set_identity(&mut self, identity: Option<Identity>) {
        let was_owner = self.session.context().is_system();
        let owner = matches!(identity, Some(Identity::Owner));
        self.expires = None;
        if owner == was_owner {
            if let Some(Identity::User { claims, .. }) = identity {
                self.session.context().set_auth(Some(claims));
            } else {
                self.session.context().set_auth(None);
            }
            return;
        }
        let ctx = match identity {
            Some(Identity::Owner) => Context::system(self.state.kora.clock().origin()),
            Some(Identity::User { claims, .. }) => {
                let ctx = self.state.context();
                ctx.set_auth(Some(claims));
                ctx
            }
            None => self.state.context(),
        };
        self.session = self.state.kora.session(ctx);
        for (id, listen) in &self.listens {
            let _ = self
                .session
                .subscribe(id, PathQuery::new(listen.path.clone()), None)
                .await;
        }
    }

    /// Drops an expired identity and tells the client, which then re-authenticates.
    fn check_expiry(&mut self) -> Vec<Frame> {
        if !kora_transport::auth::lapsed(self.expires) {
            return Vec::new();
        }
        self.expires = None;
        self.session.context().set_auth(None);
        vec![wire::auth_revoked("expired_token", "the token has expired").into()]
    }

    /// The engine's pushes as Firebase pushes.
    async fn render(&mut self, pushes: Vec<Push>) -> Vec<Frame> {
        let mut out = Vec::new();
        for push in pushes {
            let (id, frames) = match push {
                Push::Change { id, mutation, .. } => {
                    let Some(listen) = self.listens.get_mut(&id) else {
                        continue;
                    };
                    (
                        id,
                        listen
                            .change(
                                &mutation,
                                &self.namespace,
                                &self.session,
                                &self.state.firebase.rendered,
                            )
                            .await,
                    )
                }
                Push::Reset { id, value, .. } => {
                    let Some(listen) = self.listens.get_mut(&id) else {
                        continue;
                    };
                    (
                        id,
                        listen.snapshot(value, &Known::NOTHING, &self.session).await,
                    )
                }
                Push::Ended { id, .. } => (id, Err(Error::permission_denied("read revoked"))),
            };
            match frames {
                Ok(frames) => out.extend(frames),
                // Reading the window was refused: the listen ends, as a revoked one does.
                Err(_) => {
                    self.session.unsubscribe(&id);
                    if let Some(listen) = self.listens.remove(&id) {
                        out.push(listen.revoked().into());
                    }
                }
            }
        }
        out
    }
}
