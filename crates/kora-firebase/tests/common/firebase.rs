//! A client speaking Firebase's WebSocket protocol v5, and a reader of its event streams.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client speaking Firebase's protocol v5.
pub struct Firebase {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub next: u64,
    pub hello: Value,
}

impl Firebase {
    pub async fn connect(running: &kora_server::Running) -> Firebase {
        Firebase::connect_to(running, "demo").await
    }

    /// Connects and signs in as user `uid` (an unsigned emulator token: the server needs
    /// mock tokens on).
    pub async fn signed_in(running: &kora_server::Running, uid: &str) -> Firebase {
        let mut client = Firebase::connect(running).await;
        let token = super::unsigned_token(json!({"sub": uid}));
        let (_, reply) = client.request("auth", json!({"cred": token})).await;
        assert_eq!(reply["s"], "ok", "{uid} signs in: {reply}");
        client
    }

    /// Connects naming namespace `ns` (none when empty).
    pub async fn connect_to(running: &kora_server::Running, ns: &str) -> Firebase {
        let mut url = format!("ws://{}/.ws?v=5", running.addr);
        if !ns.is_empty() {
            url = format!("{url}&ns={ns}");
        }
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects");
        let mut client = Firebase {
            ws,
            next: 1,
            hello: Value::Null,
        };
        client.hello = client.frame().await;
        // Then a pong, which makes the JS SDK count the connection healthy at once.
        assert_eq!(
            client.frame().await,
            json!({"t": "c", "d": {"t": "o", "d": null}})
        );
        client
    }

    pub async fn frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s")
                .expect("open")
                .expect("readable");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).expect("JSON");
            }
        }
    }

    pub async fn send(&mut self, action: &str, body: Value) -> u64 {
        let r = self.next;
        self.next += 1;
        let text = json!({"t": "d", "d": {"r": r, "a": action, "b": body}}).to_string();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
        r
    }

    /// Sends a request; returns the pushes that came before its reply, and the reply body.
    pub async fn request(&mut self, action: &str, body: Value) -> (Vec<Value>, Value) {
        let r = self.send(action, body).await;
        let mut pushes = Vec::new();
        loop {
            let frame = self.frame().await;
            if frame["t"] != "d" {
                continue;
            }
            if frame["d"]["r"] == json!(r) {
                return (pushes, frame["d"]["b"].clone());
            }
            pushes.push(frame["d"].clone());
        }
    }

    /// The next push (a data message without `r`).
    pub async fn push(&mut self) -> Value {
        loop {
            let frame = self.frame().await;
            if frame["t"] == "d" && frame["d"].get("r").is_none() {
                return frame["d"].clone();
            }
        }
    }
}

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// Server-sent events, one `event: …\ndata: …\n\n` block at a time.
pub struct Events {
    body: Body,
    text: String,
}

impl Events {
    /// Opens Firebase's event stream of `path` (`/x.json?…`) on `running`.
    pub async fn open(running: &kora_server::Running, path: &str) -> Events {
        let response = reqwest::Client::new()
            .get(super::url(running, path))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(response.status(), 200);
        Events::new(response)
    }

    pub fn new(response: reqwest::Response) -> Events {
        Events {
            body: Box::pin(response.bytes_stream()),
            text: String::new(),
        }
    }

    pub async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                return self.text.drain(..end + 2).collect();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("open")
                .expect("readable");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// What the stream sends before it ends (within 10 s).
    pub async fn rest(mut self) -> String {
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), self.body.next())
            .await
            .expect("the end within 10 s")
        {
            self.text
                .push_str(&String::from_utf8_lossy(&chunk.expect("readable")));
        }
        self.text
    }
}
