//! The loop every WebSocket connection runs, whatever its protocol (Kora's at `/v1/ws`,
//! Firebase's at `/.ws`, kora-firebase): one task owns the socket and the session, and
//! selects between the client's messages, the session's pushes, the replies of writes
//! running concurrently, and the heartbeat — a ping every `heartbeat`, a peer silent for two
//! dropped. Everything one turn produced leaves in one socket write (one flush).
//!
//! A protocol says what its messages mean and how its pushes and replies look
//! ([`Protocol`]); the loop is the same for all.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use kora_engine::{Push, Session};
use tokio::sync::mpsc;

use crate::rendered::Frame;

/// Most queued changes one connection turns into pushes before writing them to its socket: a
/// busy connection sends its backlog in few writes, and still reads its client between them.
pub const PUSHES_PER_WRITE: usize = 256;

/// Writes and calls one connection may have running at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// Longest a write's reply waits for the fan-out to queue the write's pushes.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// `ws` with the configured buffers, and room for a message over the body limit (up to
/// twice it) so an oversized one can be refused with a reply instead of a dropped socket.
pub fn configured(ws: WebSocketUpgrade, limits: &crate::config::Limits) -> WebSocketUpgrade {
    ws.read_buffer_size(limits.ws_read_buffer_bytes)
        .write_buffer_size(limits.ws_read_buffer_bytes)
        .max_message_size(limits.max_body_bytes.saturating_mul(2))
        .max_frame_size(limits.max_body_bytes.saturating_mul(2))
}

/// What a client's message leads to.
pub enum Step {
    /// Send these frames and go on.
    Send(Vec<Frame>),
    /// Send these frames and close the connection.
    Close(Vec<Frame>),
}

/// One WebSocket protocol, as the connection loop drives it.
pub trait Protocol: Send {
    /// What a write running on its own task sends back to the loop.
    type Reply: Send;

    /// The connection's engine session, and where its concurrent writes send their replies.
    fn parts(&mut self) -> (&mut Session, &mut Replies<Self::Reply>);

    /// A text message from the client.
    fn text(&mut self, text: Utf8Bytes) -> impl Future<Output = Step> + Send;

    /// A binary message from the client (ignored unless the protocol says otherwise).
    fn binary(&mut self) -> Vec<Frame> {
        Vec::new()
    }

    /// The socket could not be read; a last frame to send before closing, if any.
    fn unreadable(&mut self, _error: axum::Error) -> Option<Frame> {
        None
    }

    /// Pushes the session has made ready.
    fn pushes(&mut self, pushes: Vec<Push>) -> impl Future<Output = Vec<Frame>> + Send;

    /// A concurrent write's reply (others may be waiting behind it).
    fn replied(&mut self, reply: Self::Reply) -> impl Future<Output = Vec<Frame>> + Send;

    /// On each heartbeat, after the ping.
    fn heartbeat(&mut self) -> Vec<Frame> {
        Vec::new()
    }

    /// The socket frames one message goes in (itself, unless the protocol splits messages).
    fn frames(message: Frame) -> impl Iterator<Item = Frame> + Send {
        std::iter::once(message)
    }
}

/// Runs `conn` over `socket` until either side closes it or the peer falls silent.
pub async fn run<P: Protocol>(socket: WebSocket, conn: &mut P, heartbeat: Duration) {
    let (mut sink, mut messages) = socket.split();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    loop {
        let (session, replies) = conn.parts();
        let step = tokio::select! {
            message = messages.next() => {
                last_heard = Instant::now();
                match message {
                    // Boxed: handling a message is the largest state of this loop, and an
                    // idle connection should not carry room for it (docs/benchmarks.md, idle).
                    Some(Ok(Message::Text(text))) => Box::pin(conn.text(text)).await,
                    Some(Ok(Message::Binary(_))) => Step::Send(conn.binary()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Send(Vec::new()),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read error");
                        Step::Close(conn.unreadable(error).into_iter().collect())
                    }
                    Some(Ok(Message::Close(_))) | None => Step::Close(Vec::new()),
                }
            }
            incoming = session.recv() => match incoming {
                // Boxed, like a message's handling: only a busy connection carries room
                // for turning changes into pushes, or for a write's reply.
                Some(incoming) => Box::pin(async {
                    let pushes = conn.parts().0.process_ready(incoming, PUSHES_PER_WRITE).await;
                    Step::Send(conn.pushes(pushes).await)
                })
                .await,
                None => Step::Close(Vec::new()),
            },
            Some(reply) = replies.recv() => Step::Send(Box::pin(conn.replied(reply)).await),
            _ = tick.tick() => {
                if last_heard.elapsed() > heartbeat * 2 {
                    tracing::debug!("dropping a silent WebSocket peer");
                    Step::Close(Vec::new())
                } else if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    Step::Close(Vec::new())
                } else {
                    Step::Send(conn.heartbeat())
                }
            }
        };
        let (out, close) = match step {
            Step::Send(out) => (out, false),
            Step::Close(out) => (out, true),
        };
        if !send::<P>(&mut sink, out).await || close {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Writes `out` with one flush; false when the socket is gone.
async fn send<P: Protocol>(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    out: Vec<Frame>,
) -> bool {
    if out.is_empty() {
        return true;
    }
    for message in out {
        for frame in P::frames(message) {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return false;
            }
        }
    }
    sink.flush().await.is_ok()
}

/// The replies of a connection's concurrent writes, on their way back to its loop. The
/// channel is made at the first write: a channel allocates its first block when made, and
/// most connections only read (docs/benchmarks.md, idle connections).
pub struct Replies<T> {
    channel: Option<(mpsc::UnboundedSender<T>, mpsc::UnboundedReceiver<T>)>,
}

impl<T> Default for Replies<T> {
    fn default() -> Self {
        Replies { channel: None }
    }
}

impl<T> Replies<T> {
    /// Where a write sends its reply.
    pub fn sender(&mut self) -> mpsc::UnboundedSender<T> {
        self.channel
            .get_or_insert_with(mpsc::unbounded_channel)
            .0
            .clone()
    }

    /// The next reply; pending while the connection has written nothing. Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        match &mut self.channel {
            Some((_, replied)) => replied.recv().await,
            None => std::future::pending().await,
        }
    }

    /// A reply already waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.channel.as_mut()?.1.try_recv().ok()
    }
}
