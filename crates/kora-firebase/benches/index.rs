//! What an `orderByChild` index saves: a live `limitToLast(10)` query on a large collection,
//! with the index declared and without, over Firebase's WebSocket protocol against a real
//! server (memory store, so the store's speed does not hide the query's cost).
//!
//! `cargo bench -p kora-firebase --bench index [-- CHILDREN WRITES]` prints, for each
//! case, how long the listen takes to get its first window and the p50/p99 of writes to
//! children outside the window (each write's `ok` follows the listen's processing of it).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kora_engine::Kora;
use kora_server::ServerConfig;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn request(ws: &mut Socket, r: u64, action: &str, body: Value) {
    let text = json!({"t": "d", "d": {"r": r, "a": action, "b": body}}).to_string();
    ws.send(Message::Text(text.into())).await.expect("send");
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => panic!("connection closed: {other:?}"),
        };
        if !text.as_str().starts_with('{') {
            continue; // a fragment count
        }
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if frame["d"]["r"] == json!(r) {
            assert_eq!(frame["d"]["b"]["s"], "ok", "{frame}");
            return;
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

async fn case(indexed: bool, children: usize, writes: usize) {
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        store: Some("memory:".into()),
        ..ServerConfig::default()
    };
    config.limits.max_leaves_per_mutation = children * 2 + 1;
    let mut firebase = kora_firebase::FirebaseConfig::default();
    if indexed {
        firebase.index_on = [("scores".to_string(), vec!["score".to_string()])].into();
    }
    let mounts: Vec<Box<dyn kora_server::Mount>> = vec![Box::new(
        kora_firebase::Firebase::new(firebase).expect("Firebase"),
    )];
    let running = kora_server::start_with(config, Kora::builder(), mounts)
        .await
        .expect("server starts");
    let mut collection = Map::new();
    for i in 0..children {
        collection.insert(format!("c{i}"), json!({"score": i, "name": "x"}));
    }
    let url = format!("ws://{}/.ws?v=5", running.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    request(&mut ws, 1, "p", json!({"p": "/scores", "d": collection})).await;

    let query = json!({"l": 10, "vf": "r", "i": "score"});
    let started = Instant::now();
    request(
        &mut ws,
        2,
        "q",
        json!({"p": "/scores", "q": query, "t": 1, "h": ""}),
    )
    .await;
    let first = started.elapsed();

    let mut latencies = Vec::with_capacity(writes);
    for w in 0..writes {
        let started = Instant::now();
        let body = json!({"p": format!("/scores/c{}/name", w % 1000), "d": format!("n{w}")});
        request(&mut ws, 3 + w as u64, "p", body).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "{:<10} {children} children: first window {:>8.1} ms; writes outside the window p50 {:>7.2} ms, p99 {:>7.2} ms",
        if indexed { "indexed" } else { "unindexed" },
        first.as_secs_f64() * 1e3,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    drop(ws);
    running.stop().await.ok();
}

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let children = numbers.first().copied().unwrap_or(50_000);
    let writes = numbers.get(1).copied().unwrap_or(200);
    for indexed in [false, true] {
        case(indexed, children, writes).await;
    }
}
