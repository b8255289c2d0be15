//! The floor Kora's WebSocket figures are compared with: a minimal tokio + tungstenite server
//! that answers every request frame at once with `{"id": <its id>, "result": {}}`, doing no
//! database work. Run it and point `kora bench` at it:
//!
//! ```sh
//! cargo run --release -p kora-server --example echo -- 127.0.0.1:4700
//! kora bench --url http://127.0.0.1:4700 --connections 100 --writers 100
//! ```

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4700".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(4096);
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                // Echo the id without parsing the rest: the cheapest reply a client accepts.
                let id = text
                    .split("\"id\":")
                    .nth(1)
                    .and_then(|rest| rest.split([',', '}']).next())
                    .unwrap_or("null")
                    .to_string();
                let reply = format!("{{\"id\":{id},\"result\":{{}}}}");
                if ws.send(Message::Text(reply.into())).await.is_err() {
                    return;
                }
            }
        });
    }
}
