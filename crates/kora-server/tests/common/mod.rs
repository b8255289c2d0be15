//! A real server on a random loopback port, and a WebSocket client speaking the protocol.

#![allow(dead_code)]

pub mod tokens;

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kora_engine::{Kora, KoraBuilder};
use kora_server::{Running, ServerConfig};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Starts a server on `memory:` with `builder`'s interceptors and handlers.
pub async fn server_with(builder: KoraBuilder, tweak: impl FnOnce(&mut ServerConfig)) -> Running {
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        store: Some("memory:".into()),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    kora_server::start(config, builder)
        .await
        .expect("server starts")
}

pub async fn server() -> Running {
    server_with(Kora::builder(), |_| {}).await
}

pub fn url(running: &Running, path: &str) -> String {
    format!("http://{}{path}", running.addr)
}

/// Sends `request` and reads the answer's body as text (whatever its status).
pub async fn text(request: reqwest::RequestBuilder) -> String {
    let response = request.send().await.expect("the server answers");
    response.text().await.expect("a body")
}

/// Sends `request` and reads the answer's body as JSON (whatever its status).
pub async fn json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("the server answers");
    response.json().await.expect("a JSON body")
}

/// A WebSocket client that keeps pushes aside while it waits for replies.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    pushes: VecDeque<Value>,
}

impl Client {
    pub async fn connect(running: &Running) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", running.addr))
            .await
            .expect("websocket connects");
        Client {
            ws,
            next_id: 1,
            pushes: VecDeque::new(),
        }
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next JSON frame (pongs and pings skipped).
    pub async fn frame(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s")?
                .ok()?;
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends `request` with a fresh id and returns the reply (pushes are kept for `push`).
    pub async fn request(&mut self, mut request: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.send_text(request.to_string()).await;
        loop {
            let frame = self.frame().await.expect("a reply");
            if frame.get("push").is_some() {
                self.pushes.push_back(frame);
            } else if frame["id"] == json!(id) {
                return frame;
            }
        }
    }

    /// The next push.
    pub async fn push(&mut self) -> Value {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        loop {
            let frame = self.frame().await.expect("a push");
            if frame.get("push").is_some() {
                return frame;
            }
        }
    }

    /// A push if one arrives within `wait`.
    pub async fn maybe_push(&mut self, wait: Duration) -> Option<Value> {
        if let Some(push) = self.pushes.pop_front() {
            return Some(push);
        }
        tokio::time::timeout(wait, self.push()).await.ok()
    }

    pub async fn mutate(&mut self, mutation: Value) -> Value {
        self.request(json!({"op": "mutate", "mutation": mutation}))
            .await
    }

    pub async fn subscribe(&mut self, path: &str) -> Value {
        self.request(json!({"op": "query", "paths": [{"path": path, "subscribe": true}]}))
            .await
    }
}
