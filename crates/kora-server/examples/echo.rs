//! The floor Kora's WebSocket figures are compared with: a minimal tokio + tungstenite server
//! that does the transport's work and no database work. It answers every request frame at
//! once with `{"id": <its id>, "result": {}}`; a `query` makes its connection a subscriber,
//! and a `mutate` is broadcast to every subscriber as a change push carrying the request's
//! mutation (one rendering shared by all, as Kora shares it). Run it and point `kora bench`
//! at it:
//!
//! ```sh
//! cargo run --release -p kora-server --example echo -- 127.0.0.1:4700
//! kora bench --url http://127.0.0.1:4700 --connections 100 --writers 100
//! kora bench --url http://127.0.0.1:4700 --connections 1001 --writers 1 --subscribers 1000 --rate 100
//! ```

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Pushes a subscriber may fall behind by before it misses some (Kora's default send queue).
const LAG: usize = 10_000;

/// Frames sent in one socket write at most.
const FRAMES_PER_WRITE: usize = 256;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4700".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server on {}", listener.local_addr()?);
    let (changes, _) = broadcast::channel::<Utf8Bytes>(LAG);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(connection(stream, changes.clone()));
    }
}

async fn connection(stream: tokio::net::TcpStream, changes: broadcast::Sender<Utf8Bytes>) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut frames) = ws.split();
    // Not a subscriber until it asks: a receiver that nobody reads would hold every push.
    let mut subscribed: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        let mut out = Vec::new();
        tokio::select! {
            frame = frames.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    match frame {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let text = text.as_str();
                out.push(reply(text));
                if text.contains(r#""op":"query""#) && subscribed.is_none() {
                    subscribed = Some(changes.subscribe());
                }
                // Rendered only when someone listens: the write benchmarks' floor stays an echo.
                if changes.receiver_count() > 0 && text.contains(r#""op":"mutate""#) {
                    let _ = changes.send(push(text));
                }
            }
            change = recv(&mut subscribed) => match change {
                Ok(change) => out.push(change),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        // Everything already waiting goes in the same socket write.
        while let Some(Ok(change)) = subscribed.as_mut().map(|rx| rx.try_recv()) {
            out.push(change);
            if out.len() >= FRAMES_PER_WRITE {
                break;
            }
        }
        for frame in out {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

async fn recv(
    subscribed: &mut Option<broadcast::Receiver<Utf8Bytes>>,
) -> Result<Utf8Bytes, broadcast::error::RecvError> {
    match subscribed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `{"id": <the request's id>, "result": {}}`, the id found without parsing the rest: the
/// cheapest reply a client accepts.
fn reply(text: &str) -> Utf8Bytes {
    let id = text
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .unwrap_or("null");
    format!("{{\"id\":{id},\"result\":{{}}}}").into()
}

/// A `mutate` request as the change push its subscribers get.
fn push(text: &str) -> Utf8Bytes {
    let request: Value = serde_json::from_str(text).unwrap_or_default();
    let mutation = &request["mutation"];
    format!("{{\"push\":\"change\",\"sub\":\"0\",\"seq\":0,\"mutation\":{mutation}}}").into()
}
