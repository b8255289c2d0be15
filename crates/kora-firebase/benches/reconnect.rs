//! What a reconnecting client receives for a location it already holds: a listen on an
//! unchanged list of children, sent with no hash (a client with nothing cached, or a server
//! that ignores hashes) and with the hash of the client's copy (what the SDKs send on every
//! reconnection), over Firebase's WebSocket protocol against a real server.
//!
//! `cargo bench -p kora-firebase --bench reconnect [-- CHILDREN]` prints the bytes of the
//! frames the server sends from the listen to its `ok`, and how long that takes.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use kora_engine::Kora;
use kora_server::ServerConfig;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server sent in answer to one request: the bytes of every text frame up to and
/// including the reply, and the pushes' data reassembled.
struct Answer {
    bytes: usize,
    data: Vec<Value>,
}

async fn request(ws: &mut Socket, r: u64, action: &str, body: Value) -> Answer {
    let text = json!({"t": "d", "d": {"r": r, "a": action, "b": body}}).to_string();
    ws.send(Message::Text(text.into())).await.expect("send");
    let mut answer = Answer {
        bytes: 0,
        data: Vec::new(),
    };
    let mut reassembly = kora_firebase::wire::Reassembly::default();
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => panic!("connection closed: {other:?}"),
        };
        answer.bytes += text.len();
        let Some(message) = reassembly.feed(text.as_str()).expect("framing") else {
            continue;
        };
        let frame: Value = serde_json::from_str(&message).expect("JSON");
        if frame["d"]["r"] == json!(r) {
            assert_eq!(frame["d"]["b"]["s"], "ok", "{frame}");
            return answer;
        }
        if frame["d"]["a"] == "d" {
            answer.data.push(frame["d"]["b"]["d"].clone());
        }
    }
}

async fn connect(addr: std::net::SocketAddr) -> Socket {
    let url = format!("ws://{addr}/.ws?v=5");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    ws.next().await.expect("hello").expect("hello");
    ws
}

#[tokio::main]
async fn main() {
    let children: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        store: Some("memory:".into()),
        ..ServerConfig::default()
    };
    config.limits.max_leaves_per_mutation = children * 2 + 1;
    let firebase =
        kora_firebase::Firebase::new(kora_firebase::FirebaseConfig::default()).expect("Firebase");
    let mounts: Vec<Box<dyn kora_server::Mount>> = vec![Box::new(firebase)];
    let running = kora_server::start_with(config, Kora::builder(), mounts)
        .await
        .expect("server starts");
    let mut list = Map::new();
    for i in 0..children {
        list.insert(
            format!("-Nkora{i:08}"),
            json!({"text": format!("message {i}"), "from": "ada"}),
        );
    }
    let mut ws = connect(running.addr).await;
    request(&mut ws, 1, "p", json!({"p": "/list", "d": list})).await;

    let mut cached = None;
    for (r, with_hash) in [(2, false), (3, true)] {
        let mut ws = connect(running.addr).await;
        let hash = match (&cached, with_hash) {
            (Some(copy), true) => kora_firebase::node::hash(Some(copy)),
            _ => String::new(),
        };
        let started = Instant::now();
        let answer = request(&mut ws, r, "q", json!({"p": "/list", "h": hash})).await;
        let took = started.elapsed();
        if cached.is_none() {
            cached = answer.data.first().cloned();
        }
        println!(
            "{children} children, listen {}: {:>10} bytes received, {} data frames, {:>8.1} ms",
            if with_hash {
                "with the hash of the client's copy"
            } else {
                "without a hash                    "
            },
            answer.bytes,
            answer.data.len(),
            took.as_secs_f64() * 1e3,
        );
    }
    running.stop().await.ok();
}
