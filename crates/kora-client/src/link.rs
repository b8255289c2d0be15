//! The connection task: connects, reconnects with backoff, and while connected keeps the
//! cache in step with the server — subscriptions resumed, queued writes sent in order,
//! pushes applied.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{FutureExt, SinkExt, StreamExt};
use kora_core::{Mutation, PathQuery, Stamp, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;
use crate::options::Status;
use crate::shared::{Ack, Command, Counters, Shared, Update};
use crate::wire::{self, Incoming, RequestId};

/// Frames read in one go before they are applied together (one cache commit).
const FRAME_BATCH: usize = 512;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection ended.
enum End {
    /// The client is closing.
    Closed,
    /// The connection failed or was found dead; try again.
    Lost(String),
}

/// Runs until the client closes.
pub(crate) async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut attempt = 0;
    loop {
        shared.status.send_replace(Status::Connecting);
        match connect(&shared).await {
            Ok(socket) => {
                attempt = 0;
                Counters::add(&shared.counters.connections, 1);
                shared.status.send_replace(Status::Online);
                let mut link = Link::new(shared.clone(), socket);
                let end = link.run(&mut commands).await;
                link.fail_requests();
                shared.synced.send_replace(false);
                match end {
                    End::Closed => break,
                    End::Lost(why) => tracing::debug!(%why, "connection lost"),
                }
            }
            Err(why) => tracing::debug!(%why, "connection failed"),
        }
        shared.status.send_replace(Status::Offline);
        let wait = tokio::time::sleep(shared.options.backoff(attempt));
        attempt = attempt.saturating_add(1);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                command = commands.recv() => match command {
                    None | Some(Command::Close) => {
                        shared.status.send_replace(Status::Offline);
                        return;
                    }
                    Some(command) => {
                        shared.commands_queued.fetch_sub(1, Ordering::AcqRel);
                        answer_offline(command);
                    }
                },
            }
        }
    }
    shared.status.send_replace(Status::Offline);
}

fn answer_offline(command: Command) {
    let offline = || ClientError::Offline("not connected to the server".into());
    match command {
        Command::Query(_, tx) => {
            let _ = tx.send(Err(offline()));
        }
        Command::Call(_, _, tx) => {
            let _ = tx.send(Err(offline()));
        }
        // Kept in the cache; sent once connected.
        Command::Follow(_) | Command::Unfollow(_) | Command::Flush | Command::Cast(..) => {}
        Command::Close => {}
    }
}

async fn connect(shared: &Shared) -> Result<Socket, String> {
    let base = shared.url.trim_end_matches('/');
    let url = match base.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}/v1/ws"),
        Some(("https", rest)) => format!("wss://{rest}/v1/ws"),
        _ => format!("{base}/v1/ws"),
    };
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(token) = &shared.options.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token holds characters a header cannot".to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    let connector = shared
        .options
        .tls
        .clone()
        .map(tokio_tungstenite::Connector::Rustls);
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector);
    match tokio::time::timeout(shared.options.request_timeout, connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out connecting".into()),
    }
}

/// What a request in flight was.
enum Pending {
    Follow {
        name: String,
        resumed: bool,
    },
    /// A ping sent right after a subscription: the server answers frames in order, so its
    /// reply comes after every change the subscription replays.
    Barrier,
    Write(u64),
    Query(
        oneshot::Sender<Result<Option<Value>, ClientError>>,
        PathQuery,
    ),
    Call(oneshot::Sender<Result<Value, ClientError>>),
    Other,
}

/// One live connection.
struct Link {
    shared: Arc<Shared>,
    socket: Socket,
    next_id: RequestId,
    requests: HashMap<RequestId, Pending>,
    /// The highest queue number sent on this connection.
    sent_through: u64,
    writes_in_flight: usize,
    last_heard: Instant,
}

impl Link {
    fn new(shared: Arc<Shared>, socket: Socket) -> Link {
        Link {
            shared,
            socket,
            next_id: 1,
            requests: HashMap::new(),
            sent_through: 0,
            writes_in_flight: 0,
            last_heard: Instant::now(),
        }
    }

    async fn run(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        if let Err(end) = self.start().await {
            return end;
        }
        let heartbeat = self.shared.options.heartbeat;
        let mut tick = tokio::time::interval(heartbeat / 2);
        loop {
            let step = tokio::select! {
                frame = self.socket.next() => self.frames(frame).await,
                command = commands.recv() => self.command(command).await,
                _ = tick.tick() => self.heartbeat().await,
            };
            if let Err(end) = step {
                return end;
            }
            self.update_synced().await;
        }
    }

    /// Resumes every subscription, then sends the queued writes.
    async fn start(&mut self) -> Result<(), End> {
        for followed in self.shared.cache.followed().await {
            self.follow(&followed.name).await?;
        }
        self.send_writes().await
    }

    async fn send(&mut self, text: String) -> Result<(), End> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| End::Lost(e.to_string()))
    }

    fn id(&mut self, pending: Pending) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(id, pending);
        id
    }

    async fn follow(&mut self, name: &str) -> Result<(), End> {
        let Some(followed) = self.shared.cache.subscription(name).await else {
            return Ok(());
        };
        // A limited window cannot be replayed (the server sends it afresh).
        let resume = (followed.synced && followed.query.limit.is_none())
            .then(|| (followed.seq, followed.history.clone()));
        let id = self.id(Pending::Follow {
            name: name.to_string(),
            resumed: resume.is_some(),
        });
        self.send(wire::subscribe(id, name, &followed.query, resume))
            .await?;
        let barrier = self.id(Pending::Barrier);
        self.send(wire::ping(barrier)).await
    }

    /// Sends queued writes not yet sent, as many as the in-flight window allows.
    async fn send_writes(&mut self) -> Result<(), End> {
        let room = self
            .shared
            .options
            .writes_in_flight
            .saturating_sub(self.writes_in_flight);
        if room == 0 {
            return Ok(());
        }
        for queued in self
            .shared
            .cache
            .queued_after(self.sent_through, room)
            .await
        {
            self.sent_through = queued.number;
            self.writes_in_flight += 1;
            let id = self.id(Pending::Write(queued.number));
            Counters::add(&self.shared.counters.writes_sent, 1);
            self.send(wire::mutate(
                id,
                &queued.mutation,
                queued.stamp,
                &queued.conditions,
            ))
            .await?;
        }
        Ok(())
    }

    async fn command(&mut self, command: Option<Command>) -> Result<(), End> {
        if command.is_some() {
            self.shared.commands_queued.fetch_sub(1, Ordering::AcqRel);
        }
        match command {
            None | Some(Command::Close) => {
                let _ = self.socket.close(None).await;
                Err(End::Closed)
            }
            Some(Command::Follow(name)) => self.follow(&name).await,
            Some(Command::Unfollow(name)) => {
                let id = self.id(Pending::Other);
                self.send(wire::unsubscribe(id, &name)).await
            }
            Some(Command::Flush) => self.send_writes().await,
            Some(Command::Query(query, tx)) => {
                let id = self.id(Pending::Query(tx, query.clone()));
                self.send(wire::query(id, &query)).await
            }
            Some(Command::Call(name, args, tx)) => {
                let id = self.id(Pending::Call(tx));
                self.send(wire::call(id, &name, &args)).await
            }
            Some(Command::Cast(name, args)) => self.send(wire::cast(&name, &args)).await,
        }
    }

    async fn heartbeat(&mut self) -> Result<(), End> {
        let silent = self.last_heard.elapsed();
        let heartbeat = self.shared.options.heartbeat;
        if silent > heartbeat * 3 {
            return Err(End::Lost(format!("the server was silent for {silent:?}")));
        }
        if silent > heartbeat {
            let id = self.id(Pending::Other);
            self.send(wire::ping(id)).await?;
        }
        Ok(())
    }

    /// Handles a frame and every frame already waiting behind it; consecutive changes are
    /// applied to the cache in one commit.
    async fn frames(
        &mut self,
        first: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), End> {
        let mut changes = Vec::new();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(frame) = next.take() {
            let text = match frame {
                None => return Err(End::Lost("the server closed the connection".into())),
                Some(Err(error)) => return Err(End::Lost(error.to_string())),
                Some(Ok(Message::Text(text))) => Some(text),
                Some(Ok(Message::Close(_))) => {
                    return Err(End::Lost("the server closed the connection".into()))
                }
                Some(Ok(_)) => None,
            };
            self.last_heard = Instant::now();
            if let Some(text) = text {
                let counters = &self.shared.counters;
                Counters::add(&counters.frames_received, 1);
                Counters::add(&counters.bytes_received, text.len() as u64);
                match wire::parse(text.as_str()) {
                    Ok(Incoming::Change {
                        sub,
                        seq,
                        stamp,
                        mutation,
                    }) => changes.push((sub, seq, stamp, mutation)),
                    Ok(other) => {
                        self.apply(std::mem::take(&mut changes)).await?;
                        self.incoming(other).await?;
                    }
                    Err(error) => tracing::warn!(%error, "ignoring a frame"),
                }
            }
            count += 1;
            if count < FRAME_BATCH {
                next = self.socket.next().now_or_never();
            }
        }
        self.apply(changes).await
    }

    async fn apply(&mut self, changes: Vec<(String, u64, Stamp, Mutation)>) -> Result<(), End> {
        if changes.is_empty() {
            return Ok(());
        }
        let applied = self.shared.cache.apply(changes).await.map_err(lost)?;
        Counters::add(&self.shared.counters.changes_applied, applied.len() as u64);
        for (name, seq, stamp, mutation) in applied {
            self.shared.notify(
                &name,
                Update::Change {
                    seq,
                    stamp,
                    mutation,
                },
            );
        }
        Ok(())
    }

    async fn incoming(&mut self, incoming: Incoming) -> Result<(), End> {
        match incoming {
            Incoming::Reply { id, outcome } => {
                let pending = id.and_then(|id| self.requests.remove(&id));
                match pending {
                    Some(pending) => self.reply(pending, outcome).await,
                    None => Ok(()),
                }
            }
            Incoming::Reset {
                sub,
                seq,
                value,
                query,
            } => {
                if let Some(query) = query {
                    // A stored subscription: the server follows it for this user.
                    if self.shared.cache.subscription(&sub).await.is_none() {
                        self.shared.cache.follow(&sub, query).await.map_err(lost)?;
                    }
                }
                self.reset(&sub, seq, value).await
            }
            Incoming::Ended { sub, error } => {
                self.shared.cache.unfollow(&sub).await.map_err(lost)?;
                self.shared.notify(&sub, Update::Ended { error });
                Ok(())
            }
            Incoming::Change { .. } | Incoming::Other => Ok(()),
        }
    }

    async fn reset(&mut self, name: &str, seq: u64, value: Option<Value>) -> Result<(), End> {
        if !self
            .shared
            .cache
            .reset(name, seq, value)
            .await
            .map_err(lost)?
        {
            return Ok(());
        }
        Counters::add(&self.shared.counters.resets, 1);
        if let Some(followed) = self.shared.cache.subscription(name).await {
            let value = self.shared.view(&followed.query).await;
            self.shared.notify(name, Update::Reset { value });
        }
        Ok(())
    }

    async fn reply(
        &mut self,
        pending: Pending,
        outcome: Result<Value, ClientError>,
    ) -> Result<(), End> {
        match pending {
            Pending::Follow { name, resumed } => match outcome {
                Ok(result) => {
                    let history = result.get("history").and_then(Value::as_str);
                    let history = history.map(str::to_string);
                    self.shared
                        .cache
                        .set_history(&name, history)
                        .await
                        .map_err(lost)?;
                    if resumed {
                        return Ok(());
                    }
                    let seq = result.get("seq").and_then(Value::as_u64).unwrap_or(0);
                    let value = match self.shared.cache.subscription(&name).await {
                        Some(f) => value_at(result.get("value"), &f.query),
                        None => None,
                    };
                    self.reset(&name, seq, value).await
                }
                Err(error) => {
                    self.shared.cache.unfollow(&name).await.map_err(lost)?;
                    self.shared.notify(&name, Update::Ended { error });
                    Ok(())
                }
            },
            Pending::Write(number) => {
                self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
                self.written(number, outcome).await?;
                self.send_writes().await
            }
            Pending::Query(tx, query) => {
                let answer = match outcome {
                    Ok(result) => {
                        let value = value_at(result.get("value"), &query);
                        Ok(self.shared.cache.overlay(&query, value).await)
                    }
                    Err(error) => Err(error),
                };
                let _ = tx.send(answer);
                Ok(())
            }
            Pending::Call(tx) => {
                let _ = tx.send(outcome);
                Ok(())
            }
            Pending::Barrier | Pending::Other => Ok(()),
        }
    }

    /// The server's answer to queued write `number`.
    async fn written(
        &mut self,
        number: u64,
        outcome: Result<Value, ClientError>,
    ) -> Result<(), End> {
        let shared = self.shared.clone();
        match outcome {
            Ok(result) => {
                let ack = parse_ack(&result).map_err(lost)?;
                let _ = shared.cache.clock().observe(ack.stamp);
                shared.cache.dequeue(number).await.map_err(lost)?;
                Counters::add(&shared.counters.writes_acknowledged, 1);
                shared.answer(number, Ok(ack));
                Ok(())
            }
            Err(error) if error.is_permanent() => {
                let Some(queued) = shared.cache.dequeue(number).await.map_err(lost)? else {
                    return Ok(());
                };
                Counters::add(&shared.counters.writes_rolled_back, 1);
                let mut updates = Vec::new();
                for followed in shared.cache.followed().await {
                    if crate::view::touches(&queued.mutation, &followed.query) {
                        let value = shared.view(&followed.query).await;
                        updates.push((followed.name, value));
                    }
                }
                for (name, value) in updates {
                    let update = Update::RolledBack {
                        stamp: queued.stamp,
                        error: error.clone(),
                        value,
                    };
                    shared.notify(&name, update);
                }
                shared.answer(number, Err(error));
                Ok(())
            }
            // Busy or failing server: reconnect later and send everything again, in order.
            Err(error) => Err(End::Lost(format!("write refused for now: {error}"))),
        }
    }

    async fn update_synced(&self) {
        let waiting = self.requests.values().any(|p| {
            matches!(
                p,
                Pending::Follow { .. } | Pending::Barrier | Pending::Write(_)
            )
        });
        let synced = !waiting
            && self.shared.commands_queued.load(Ordering::Acquire) == 0
            && self.shared.cache.queue_len().await == 0;
        self.shared.synced.send_if_modified(|old| {
            let changed = *old != synced;
            *old = synced;
            changed
        });
    }

    /// Answers the requests still waiting: the connection is gone.
    fn fail_requests(&mut self) {
        for (_, pending) in self.requests.drain() {
            let offline = || ClientError::Offline("the connection was lost".into());
            match pending {
                Pending::Query(tx, _) => {
                    let _ = tx.send(Err(offline()));
                }
                Pending::Call(tx) => {
                    let _ = tx.send(Err(offline()));
                }
                _ => {}
            }
        }
    }
}

fn lost(error: ClientError) -> End {
    End::Lost(error.to_string())
}

fn parse_ack(result: &Value) -> Result<Ack, ClientError> {
    let seq = result.get("seq").and_then(Value::as_u64);
    let stamp = result
        .get("stamp")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    match (seq, stamp) {
        (Some(seq), Some(stamp)) => Ok(Ack { seq, stamp }),
        _ => Err(ClientError::Protocol(format!("a write reply {result}"))),
    }
}

/// The value at `query`'s path in a query reply's tree.
fn value_at(tree: Option<&Value>, query: &PathQuery) -> Option<Value> {
    let mut node = tree;
    for segment in query.path.segments() {
        node = node.and_then(|n| n.get(segment));
    }
    node.filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()))
        .cloned()
}
