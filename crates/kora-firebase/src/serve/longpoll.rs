//! Firebase's long polling at `/.lp`: the transport a browser SDK falls back to when
//! WebSockets are blocked (a proxy), forced (`forceLongPolling()`), or failed last time; its
//! connection then upgrades to a WebSocket when it can.
//!
//! The protocol (docs/firebase-protocol.md §1.8) is JSONP in a hidden iframe:
//!
//! - `GET /.lp?start=t&cb=N&ser=…&ns=…` opens a connection. The answer is a script that
//!   defines `pLPCommand` and `pRTLPCB` (forwarding to the page's `pLPCommandN` and
//!   `pRTLPCBN`), starts the connection with its id and password, and delivers packet 0: the
//!   hello.
//! - `GET /.lp?id=…&pw=…&ser=…[&seg0=…&ts0=…&d0=……]` is a poll. It carries the client's
//!   messages, base64 (web-safe, `.` for padding) and cut into numbered segments (`seg` the
//!   connection's segment number, `ts` the segments of its message); it is held until the
//!   server has messages for the client or a newer poll arrives, and answered
//!   `pRTLPCB(n,[messages…]);` — packets numbered in order, which the client reorders.
//! - `GET /.lp?dframe=t&id=…&pw=…` is an iframe that, when the page unloads, requests
//!   `disconn=t`: the connection ends.
//!
//! The connection runs on the same loop and the same protocol handler as a WebSocket
//! (`kora_transport::connection::run_over` with [`Polls`] as its link), so everything a
//! WebSocket client can do, a polling client can.
//!
//! **Upgrade.** The hello names a session; the SDK then opens a WebSocket with `s=<session>`.
//! That socket is handed to the polling connection ([`Polls::upgrade`]): it answers the
//! client's pings, and when the client acknowledges the switch (`a`) the server ends its
//! transmission on the polls (`n`, after every message already queued there) and sends on
//! the socket from then on; the client's messages arrive on it too. A socket naming a session
//! that is not a live polling connection is told to reset (`r`), and the SDK goes on polling.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{ConnectInfo, Query as UrlQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use kora_engine::Error;
use kora_transport::connection::{Link, Received};
use kora_transport::error::ApiError;
use kora_transport::rendered::Frame;
use rand::distr::SampleString;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

use crate::{wire, FirebaseState, Namespace};

/// Longest a poll is held without messages for the client. Under the SDK's 25 s, after
/// which it sends a fresh poll anyway (and some browsers end a request at 30 s).
pub const POLL_HOLD: Duration = Duration::from_secs(20);

/// A connection whose client has sent no poll for this long has gone (a poll is always
/// held open, renewed at least every 25 s).
pub const SILENT_LIMIT: Duration = Duration::from_secs(60);

/// Most messages waiting for a client's next poll; past it the client is too slow and its
/// connection ends (as a WebSocket client that falls that far behind is reset).
pub const MAX_QUEUED: usize = 10_000;

/// Characters of a polling connection's password (letters and digits), which every poll
/// presents.
pub const PASSWORD_CHARS: usize = 10;

/// Most segments of the client's messages held while earlier ones are missing.
pub const MAX_PENDING_SEGMENTS: usize = 1_024;

/// The polling connections of this server, by id (and by the session their hello named, for
/// the WebSocket that upgrades them).
#[derive(Default)]
pub struct Polls {
    by_id: Mutex<HashMap<String, Arc<Poll>>>,
}

/// One polling connection, as its HTTP requests and its connection task share it.
struct Poll {
    password: String,
    session: String,
    state: Mutex<PollState>,
    /// Wakes the poll held open: messages to send, a newer poll, or the end.
    wake: Notify,
    /// The client's messages (and its upgrade socket), for the connection task.
    to_task: mpsc::UnboundedSender<Inbound>,
}

#[derive(Default)]
struct PollState {
    /// Messages for the client, not yet in a packet.
    queued: VecDeque<Frame>,
    /// The next packet's number (0 was the hello).
    next_packet: u64,
    /// Bumped by every poll: a held poll answers when a newer one arrives.
    generation: u64,
    last_poll: Option<Instant>,
    /// The client's segments by number, until a whole message is there.
    segments: BTreeMap<u64, (u64, String)>,
    next_segment: u64,
    /// The connection ended: polls answer `close`.
    closed: bool,
    /// Sending has moved to the WebSocket (the `n` is queued).
    upgraded: bool,
}

enum Inbound {
    Message(String),
    Upgrade(Box<WebSocket>),
    Gone,
}

impl Polls {
    fn get(&self, id: &str, password: &str) -> Option<Arc<Poll>> {
        let polls = self.by_id.lock().ok()?;
        let poll = polls.get(id)?;
        // Compared in constant time: the password is what makes a poll the client's.
        use subtle::ConstantTimeEq;
        bool::from(poll.password.as_bytes().ct_eq(password.as_bytes())).then(|| poll.clone())
    }

    fn by_session(&self, session: &str) -> Option<Arc<Poll>> {
        let polls = self.by_id.lock().ok()?;
        polls.values().find(|p| p.session == session).cloned()
    }

    fn remove(&self, id: &str) {
        if let Ok(mut polls) = self.by_id.lock() {
            polls.remove(id);
        }
    }

    /// Hands a WebSocket that names `session` to its polling connection; gives it back when
    /// no polling connection has that session. (A connection ending just now drops it, and
    /// the client, whose polls end too, starts again.)
    pub fn upgrade(&self, session: &str, socket: Box<WebSocket>) -> Result<(), Box<WebSocket>> {
        match self.by_session(session) {
            Some(poll) => {
                let _ = poll.to_task.send(Inbound::Upgrade(socket));
                Ok(())
            }
            None => Err(socket),
        }
    }
}

/// `GET /.lp`.
pub async fn route(
    State(state): State<FirebaseState>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
) -> Result<Response, ApiError> {
    if !state.settings.enabled {
        return Err(Error::new(kora_engine::Code::NotFound, "Firebase protocol is off").into());
    }
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("start").is_some() {
        return start(state, &headers, &params, peer).await;
    }
    let (Some(id), Some(password)) = (param("id"), param("pw")) else {
        return Err(Error::bad_request("a long poll names its connection (id, pw)").into());
    };
    let Some(poll) = state.firebase.polls.get(id, password) else {
        // The connection is gone (ended, or another server's): the client starts again.
        return Ok(script("pLPCommand('close');".to_string()));
    };
    if param("dframe").is_some() {
        return Ok(disconnect_frame(id, password));
    }
    if param("disconn").is_some() {
        poll.end();
        return Ok(script(String::new()));
    }
    poll.receive(&params, state.config.limits.max_body_bytes)?;
    Ok(script(poll.answer().await))
}

/// `start=t`: a new connection, its task, and the script that starts it.
async fn start(
    state: FirebaseState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    peer: std::net::SocketAddr,
) -> Result<Response, ApiError> {
    let namespace = Namespace::new(&state.settings, params.get("ns").map(String::as_str))?;
    let callback = params.get("cb").map(String::as_str).unwrap_or("");
    if !callback.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::bad_request("cb is a number").into());
    }
    let guard = state.admit(peer.ip())?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| state.config.bind.clone());
    let id = format!("{}", rand::rng().random::<u64>());
    let password = rand::distr::Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_CHARS);
    let session = super::ws::new_session_id();
    let (to_task, inbound) = mpsc::unbounded_channel();
    let poll = Arc::new(Poll {
        password: password.clone(),
        session: session.clone(),
        state: Mutex::new(PollState {
            next_packet: 1,
            last_poll: Some(Instant::now()),
            ..PollState::default()
        }),
        wake: Notify::new(),
        to_task,
    });
    if let Ok(mut polls) = state.firebase.polls.by_id.lock() {
        polls.insert(id.clone(), poll.clone());
    }
    let link = PollLink {
        poll: poll.clone(),
        inbound,
        socket: None,
    };
    let task_state = state.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        super::ws::serve(link, task_state.clone(), namespace, guard).await;
        task_state.firebase.polls.remove(&task_id);
    });
    let hello = wire::hello(crate::now_millis(), &host, &session);
    let body = format!(
        "function pLPCommand(c, a1, a2, a3, a4) {{\n\
         parent.window[\"pLPCommand{callback}\"] && parent.window[\"pLPCommand{callback}\"](c, a1, a2, a3, a4);\n\
         }}\n\
         function pRTLPCB(pN, data) {{\n\
         parent.window[\"pRTLPCB{callback}\"] && parent.window[\"pRTLPCB{callback}\"](pN, data);\n\
         }}\n\
         pLPCommand('start',{id},{password});\n\
         pRTLPCB(0,[{hello}]);\n",
        id = json!(id),
        password = json!(password),
    );
    Ok(script(body))
}

fn script(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache, no-store"),
        ],
        body,
    )
        .into_response()
}

/// The iframe that tells the server when the page goes away.
fn disconnect_frame(id: &str, password: &str) -> Response {
    let url = json!(format!("/.lp?disconn=t&id={id}&pw={password}"));
    let body = format!(
        "<html><body><script>\n\
         function disconnect() {{ try {{ var x = new XMLHttpRequest(); x.open('GET', {url}, false); x.send(null); }} catch (e) {{}} }}\n\
         window.addEventListener('unload', disconnect, false);\n\
         </script></body></html>"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

impl Poll {
    fn lock(&self) -> std::sync::MutexGuard<'_, PollState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes in a poll's segments; hands every message they complete to the task.
    fn receive(&self, params: &HashMap<String, String>, max_bytes: usize) -> Result<(), Error> {
        let mut complete = Vec::new();
        {
            let mut state = self.lock();
            state.generation += 1;
            state.last_poll = Some(Instant::now());
            for i in 0.. {
                let (Some(seg), Some(total), Some(data)) = (
                    params.get(&format!("seg{i}")),
                    params.get(&format!("ts{i}")),
                    params.get(&format!("d{i}")),
                ) else {
                    break;
                };
                let seg: u64 = seg.parse().map_err(|_| Error::bad_request("seg"))?;
                let total: u64 = total.parse().map_err(|_| Error::bad_request("ts"))?;
                if state.segments.len() >= MAX_PENDING_SEGMENTS {
                    return Err(Error::too_large(
                        "too many segments waiting for earlier ones",
                    ));
                }
                if seg >= state.next_segment {
                    state.segments.insert(seg, (total, data.clone()));
                }
            }
            while let Some(message) = state.whole_message(max_bytes)? {
                complete.push(message);
            }
        }
        self.wake.notify_waiters();
        for message in complete {
            let _ = self.to_task.send(Inbound::Message(message));
        }
        Ok(())
    }

    /// Waits for messages (or a newer poll, or the hold to pass) and answers with a packet.
    async fn answer(&self) -> String {
        let generation = self.lock().generation;
        let deadline = tokio::time::Instant::now() + POLL_HOLD;
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut state = self.lock();
                // Ended, or moved to a WebSocket: once everything queued has gone, the polls
                // close (after the last packet, which the client waits for).
                if (state.closed || state.upgraded) && state.queued.is_empty() {
                    return format!("pLPCommand('close',{});", state.next_packet - 1);
                }
                if !state.queued.is_empty() || state.generation != generation {
                    return state.packet();
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return self.lock().packet();
            }
        }
    }

    /// Queues messages for the client's next poll; false when the client is too far behind.
    fn queue(&self, messages: Vec<Frame>) -> bool {
        let open = {
            let mut state = self.lock();
            state.queued.extend(messages);
            if state.queued.len() > MAX_QUEUED {
                state.closed = true;
                state.queued.clear();
            }
            !state.closed
        };
        self.wake.notify_waiters();
        open
    }

    /// Ends the connection: its task stops, held polls answer `close`.
    fn end(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
        let _ = self.to_task.send(Inbound::Gone);
    }
}

impl PollState {
    /// The next whole message among the segments, if it is all there.
    fn whole_message(&mut self, max_bytes: usize) -> Result<Option<String>, Error> {
        let Some((&first, &(total, _))) = self.segments.first_key_value() else {
            return Ok(None);
        };
        if first != self.next_segment || total == 0 {
            return Ok(None);
        }
        let all = (first..first + total).all(|seg| self.segments.contains_key(&seg));
        if !all {
            return Ok(None);
        }
        let mut encoded = String::new();
        for seg in first..first + total {
            if let Some((_, data)) = self.segments.remove(&seg) {
                encoded.push_str(&data);
            }
        }
        self.next_segment = first + total;
        if encoded.len() > max_bytes.saturating_mul(2) {
            return Err(Error::too_large(format!(
                "a message exceeds {max_bytes} bytes"
            )));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches(['.', '=']))
            .map_err(|e| Error::bad_request(format!("a segment is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::bad_request("a message is not UTF-8"))
    }

    /// What is queued, as the next packet (nothing when nothing is queued).
    fn packet(&mut self) -> String {
        if self.queued.is_empty() {
            return String::new();
        }
        let messages: Vec<&str> = self.queued.iter().map(|m| m.as_str()).collect();
        let packet = format!("pRTLPCB({},[{}]);", self.next_packet, messages.join(","));
        self.queued.clear();
        self.next_packet += 1;
        packet
    }
}

/// A polling connection as the connection loop's link; after an upgrade, its WebSocket.
struct PollLink {
    poll: Arc<Poll>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    socket: Option<Upgrade>,
}

/// The WebSocket a polling connection is upgrading to.
struct Upgrade {
    sink: futures_util::stream::SplitSink<WebSocket, Message>,
    messages: futures_util::stream::SplitStream<WebSocket>,
    /// The client has acknowledged the switch: the server sends on the socket.
    switched: bool,
}

impl Link for PollLink {
    async fn next(&mut self) -> Option<Received> {
        loop {
            let from_socket = async {
                match &mut self.socket {
                    Some(upgrade) => upgrade.messages.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                inbound = self.inbound.recv() => match inbound? {
                    Inbound::Message(text) => {
                        if is_control(&text, "n") {
                            continue; // the client's end of transmission on the polls
                        }
                        return Some(Received::Text(text.into()));
                    }
                    Inbound::Upgrade(socket) => self.start_upgrade(*socket).await,
                    Inbound::Gone => return None,
                },
                message = from_socket => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(received) = self.on_socket(text).await {
                            return Some(received);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        // A socket that never took over is dropped; one that did ends all.
                        if self.socket.as_ref().is_some_and(|u| u.switched) {
                            return None;
                        }
                        self.socket = None;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    async fn send(&mut self, messages: Vec<Frame>) -> bool {
        match &mut self.socket {
            Some(upgrade) if upgrade.switched => {
                for message in messages {
                    for frame in wire::frames(message) {
                        if upgrade.sink.feed(Message::Text(frame)).await.is_err() {
                            return false;
                        }
                    }
                }
                upgrade.sink.flush().await.is_ok()
            }
            _ => self.poll.queue(messages),
        }
    }

    async fn beat(&mut self) -> bool {
        match &mut self.socket {
            Some(upgrade) if upgrade.switched => upgrade
                .sink
                .send(Message::Ping(Vec::new().into()))
                .await
                .is_ok(),
            _ => {
                let state = self.poll.lock();
                !state.closed && state.last_poll.is_some_and(|t| t.elapsed() < SILENT_LIMIT)
            }
        }
    }

    async fn close(mut self) {
        self.poll.end();
        if let Some(upgrade) = &mut self.socket {
            let _ = upgrade.sink.close().await;
        }
    }
}

impl PollLink {
    /// A WebSocket naming this connection's session: the SDK counts it healthy after two
    /// pongs, then acknowledges the switch on it.
    async fn start_upgrade(&mut self, socket: WebSocket) {
        let (mut sink, messages) = socket.split();
        if sink.send(Message::Text(wire::pong().into())).await.is_err() {
            return;
        }
        self.socket = Some(Upgrade {
            sink,
            messages,
            switched: false,
        });
    }

    /// A message on the upgrading socket: a ping answered there, the switch, or a request.
    async fn on_socket(&mut self, text: axum::extract::ws::Utf8Bytes) -> Option<Received> {
        let upgrade = self.socket.as_mut()?;
        if is_control(&text, "p") {
            let _ = upgrade.sink.send(Message::Text(wire::pong().into())).await;
            return None;
        }
        if is_control(&text, "a") {
            // Everything queued on the polls goes before the end of transmission; from now
            // on the server sends on the socket.
            upgrade.switched = true;
            let end = json!({"t": "c", "d": {"t": "n", "d": {}}}).to_string();
            self.poll.queue(vec![end.into()]);
            self.poll.lock().upgraded = true;
            return None;
        }
        Some(Received::Text(text))
    }
}

/// Whether `text` is the control message `kind` (`{"t":"c","d":{"t":kind,…}}`).
fn is_control(text: &str, kind: &str) -> bool {
    // Most messages are requests: only what could be a control message is parsed here.
    if !text.contains(r#""t":"c""#) {
        return false;
    }
    serde_json::from_str::<Value>(text).is_ok_and(|m| {
        m.get("t").and_then(Value::as_str) == Some("c")
            && m.pointer("/d/t").and_then(Value::as_str) == Some(kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::URL_SAFE
            .encode(text)
            .replace('=', ".")
    }

    #[test]
    fn segments_make_messages_in_order_whatever_order_they_arrive_in() {
        let mut state = PollState::default();
        let first = encode(r#"{"t":"d","d":{"r":1}}"#);
        let second = encode(r#"{"t":"d","d":{"r":2,"a":"s"}}"#);
        let (a, b) = second.split_at(10);
        state.segments.insert(2, (2, b.to_string()));
        state.segments.insert(1, (2, a.to_string()));
        assert_eq!(
            state.whole_message(1 << 20).unwrap(),
            None,
            "segment 0 is missing"
        );
        state.segments.insert(0, (1, first));
        assert_eq!(
            state.whole_message(1 << 20).unwrap().as_deref(),
            Some(r#"{"t":"d","d":{"r":1}}"#)
        );
        assert_eq!(
            state.whole_message(1 << 20).unwrap().as_deref(),
            Some(r#"{"t":"d","d":{"r":2,"a":"s"}}"#)
        );
        assert_eq!(state.next_segment, 3);
    }

    #[test]
    fn packets_are_numbered_and_hold_every_queued_message() {
        let mut state = PollState {
            next_packet: 1,
            ..PollState::default()
        };
        assert_eq!(state.packet(), "");
        state
            .queued
            .extend(["{\"a\":1}".into(), "{\"b\":2}".into()]);
        assert_eq!(state.packet(), r#"pRTLPCB(1,[{"a":1},{"b":2}]);"#);
        state.queued.push_back("{}".into());
        assert_eq!(state.packet(), "pRTLPCB(2,[{}]);");
    }

    #[test]
    fn control_messages_are_recognised() {
        assert!(is_control(r#"{"t":"c","d":{"t":"a","d":{}}}"#, "a"));
        assert!(!is_control(r#"{"t":"d","d":{"t":"a"}}"#, "a"));
    }
}
