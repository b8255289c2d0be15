//! The loop every connection runs, whatever its protocol (Kora's at `/v1/ws`, Firebase's at
//! `/.ws` and its long polling at `/.lp`, kora-firebase) and whatever carries its messages
//! ([`Link`]: a WebSocket, or HTTP requests): one task owns the link and the session, and
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
    run_over(Socket::new(socket, heartbeat, P::frames), conn, heartbeat).await
}

/// What one of the client's messages was, as the loop sees it.
pub enum Received {
    Text(Utf8Bytes),
    Binary,
    /// Nothing for the protocol (a WebSocket ping or pong).
    Nothing,
    /// The transport could not be read.
    Unreadable(axum::Error),
}

/// What a connection's messages travel over: a WebSocket, or a transport made of HTTP
/// requests (Firebase's long polling).
pub trait Link: Send {
    /// The client's next message; `None` when it has gone. Cancel-safe.
    fn next(&mut self) -> impl Future<Output = Option<Received>> + Send;

    /// Sends `messages` (whole protocol messages) in one write; false when the client is gone.
    fn send(&mut self, messages: Vec<Frame>) -> impl Future<Output = bool> + Send;

    /// A heartbeat: pings the client; false when it is gone or has fallen silent.
    fn beat(&mut self) -> impl Future<Output = bool> + Send;

    /// The connection ends.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Runs `conn` over `link` until either side closes it or the peer falls silent.
pub async fn run_over<P: Protocol>(mut link: impl Link, conn: &mut P, heartbeat: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        let (session, replies) = conn.parts();
        let step = tokio::select! {
            received = link.next() => match received {
                // Boxed: handling a message is the largest state of this loop, and an
                // idle connection should not carry room for it (docs/benchmarks.md, idle).
                Some(Received::Text(text)) => Box::pin(conn.text(text)).await,
                Some(Received::Binary) => Step::Send(conn.binary()),
                Some(Received::Nothing) => Step::Send(Vec::new()),
                Some(Received::Unreadable(error)) => {
                    tracing::debug!(%error, "connection read error");
                    Step::Close(conn.unreadable(error).into_iter().collect())
                }
                None => Step::Close(Vec::new()),
            },
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
            _ = tick.tick() => match link.beat().await {
                true => Step::Send(conn.heartbeat()),
                false => Step::Close(Vec::new()),
            },
        };
        let (out, close) = match step {
            Step::Send(out) => (out, false),
            Step::Close(out) => (out, true),
        };
        let sent = out.is_empty() || link.send(out).await;
        if !sent || close {
            break;
        }
    }
    link.close().await;
}

/// A WebSocket as a [`Link`]: each message in the socket frames its protocol puts it in, a
/// ping every heartbeat, and a peer silent for two heartbeats dropped.
pub struct Socket<F> {
    sink: futures_util::stream::SplitSink<WebSocket, Message>,
    messages: futures_util::stream::SplitStream<WebSocket>,
    heartbeat: Duration,
    last_heard: Instant,
    frames: F,
}

impl<F, I> Socket<F>
where
    F: Fn(Frame) -> I + Send,
    I: Iterator<Item = Frame> + Send,
{
    /// `socket`, whose messages go in the frames `frames` makes of them.
    pub fn new(socket: WebSocket, heartbeat: Duration, frames: F) -> Self {
        let (sink, messages) = socket.split();
        Socket {
            sink,
            messages,
            heartbeat,
            last_heard: Instant::now(),
            frames,
        }
    }
}

impl<F, I> Link for Socket<F>
where
    F: Fn(Frame) -> I + Send,
    I: Iterator<Item = Frame> + Send,
{
    async fn next(&mut self) -> Option<Received> {
        let message = self.messages.next().await;
        self.last_heard = Instant::now();
        Some(match message? {
            Ok(Message::Text(text)) => Received::Text(text),
            Ok(Message::Binary(_)) => Received::Binary,
            Ok(Message::Ping(_) | Message::Pong(_)) => Received::Nothing,
            Ok(Message::Close(_)) => return None,
            Err(error) => Received::Unreadable(error),
        })
    }

    /// Writes `messages` with one flush.
    async fn send(&mut self, messages: Vec<Frame>) -> bool {
        for message in messages {
            for frame in (self.frames)(message) {
                if self.sink.feed(Message::Text(frame)).await.is_err() {
                    return false;
                }
            }
        }
        self.sink.flush().await.is_ok()
    }

    async fn beat(&mut self) -> bool {
        if self.last_heard.elapsed() > self.heartbeat * 2 {
            tracing::debug!("dropping a silent WebSocket peer");
            return false;
        }
        self.sink
            .send(Message::Ping(Vec::new().into()))
            .await
            .is_ok()
    }

    async fn close(mut self) {
        let _ = self.sink.close().await;
    }
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
