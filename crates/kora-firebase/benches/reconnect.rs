//! What a reconnecting client receives for a location it already holds: a listen on a list of
//! children sent with no hash (a client with nothing cached, or a server that ignores hashes),
//! with the hash of the client's copy (what every SDK sends on reconnecting) and with its
//! compound hash too (what the Android and Java SDKs add for a copy over 1 KB), the list
//! unchanged and with one child changed, over Firebase's WebSocket protocol against a real
//! server.
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
        if frame["d"]["a"] == "d" || frame["d"]["a"] == "rm" {
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

    // The first listen: nothing cached. Its answer is the client's copy from then on.
    let mut first = connect(running.addr).await;
    let started = Instant::now();
    let answer = request(&mut first, 2, "q", json!({"p": "/list", "h": ""})).await;
    report(
        children,
        "without a hash (nothing cached)",
        &answer,
        started,
    );
    let copy = answer.data.first().cloned().expect("the list");
    let hash = kora_firebase::node::hash(Some(&copy));
    let compound = kora_firebase::node::CompoundHash::of(Some(&copy)).to_wire();

    let with_hash = json!({"p": "/list", "h": hash});
    let with_compound = json!({"p": "/list", "h": hash, "ch": compound});
    reconnect(&running, children, "unchanged, with the hash", &with_hash).await;
    reconnect(
        &running,
        children,
        "unchanged, with the compound hash",
        &with_compound,
    )
    .await;
    let edit = json!({"p": "/list/-Nkora00000001/text", "d": "edited"});
    request(&mut ws, 3, "p", edit).await;
    reconnect(
        &running,
        children,
        "one child changed, with the hash",
        &with_hash,
    )
    .await;
    reconnect(
        &running,
        children,
        "one child changed, with the compound hash",
        &with_compound,
    )
    .await;
    running.stop().await.ok();
}

/// A client reconnecting with `listen` (its hashes of the copy it holds).
async fn reconnect(running: &kora_server::Running, children: usize, what: &str, listen: &Value) {
    let mut ws = connect(running.addr).await;
    let started = Instant::now();
    let answer = request(&mut ws, 4, "q", listen.clone()).await;
    report(children, what, &answer, started);
}

fn report(children: usize, what: &str, answer: &Answer, started: Instant) {
    println!(
        "{children} children, listen {what:<42}: {:>10} bytes received, {} data frames, {:>6.1} ms",
        answer.bytes,
        answer.data.len(),
        started.elapsed().as_secs_f64() * 1e3,
    );
}
