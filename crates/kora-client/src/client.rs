//! The client: reads, writes, subscriptions and handler calls, online or not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kora_core::{Mutation, Path, PathQuery, Stamp, Value};
use kora_store::Condition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::cache::Cache;
use crate::error::ClientError;
use crate::options::{Options, Status};
use crate::shared::{Ack, Command, Counters, Listener, Shared, Stats, Update};
use crate::subscription::Subscription;

/// A connection to a Kora server with a local cache. Cheap to clone; every clone shares the
/// connection and the cache.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// A transaction retries on the value a conflict reports this many times before it starts
/// pausing between attempts.
const TRANSACTION_RETRIES_AT_ONCE: u32 = 3;

/// What became of a [`Client::transaction`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transacted {
    /// False when `update` aborted.
    pub committed: bool,
    /// The value at the path: written by the transaction, or (aborted) as `update` last saw it.
    pub value: Option<Value>,
    /// The commit, when committed.
    pub ack: Option<Ack>,
    /// How many times `update` ran.
    pub attempts: u32,
}

/// A write applied locally and queued for the server. Await [`Written::acknowledged`] for
/// the server's answer; dropping it does not cancel the write.
#[derive(Debug)]
pub struct Written {
    /// The stamp the write was made with (it keeps it, offline or not).
    pub stamp: Stamp,
    answer: oneshot::Receiver<Result<Ack, ClientError>>,
}

impl Written {
    /// The server's answer: the commit, or why the write was refused (it is then rolled back
    /// in the cache). Waits through disconnections; fails with `Offline` only when the
    /// process restarts before the answer (the write itself is still queued then).
    pub async fn acknowledged(self) -> Result<Ack, ClientError> {
        self.answer
            .await
            .unwrap_or_else(|_| Err(ClientError::Offline("the client was closed".into())))
    }
}

impl Client {
    /// Opens the cache and starts connecting to the server at `url` (`http://host:port`
    /// or `ws://host:port`). Returns at once: the client works offline until connected.
    pub async fn connect(url: &str, options: Options) -> Result<Client, ClientError> {
        let cache = Cache::open(&options).await?;
        let (commands, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            url: url.to_string(),
            options,
            cache,
            status: watch::channel(Status::Connecting).0,
            synced: watch::channel(false).0,
            commands,
            commands_queued: AtomicU64::new(0),
            listeners: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        let task = tokio::spawn(crate::link::run(shared.clone(), rx));
        Ok(Client {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The origin id in this client's stamps (kept in the cache).
    pub fn origin(&self) -> u64 {
        self.shared.cache.clock().origin()
    }

    pub fn status(&self) -> Status {
        *self.shared.status.borrow()
    }

    /// Follows status changes.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    /// Waits until the client is online, every subscription is answered and no write is
    /// waiting for the server.
    pub async fn synced(&self, timeout: Duration) -> Result<(), ClientError> {
        let mut rx = self.shared.synced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|synced| *synced))
            .await
            .map_err(|_| ClientError::Offline(format!("not in sync after {timeout:?}")))?
            .map_err(|_| ClientError::Closed)?;
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Writes waiting for the server.
    pub async fn queued_writes(&self) -> usize {
        self.shared.cache.queue_len().await
    }

    /// The value at `path` (see [`Client::query`]).
    pub async fn get(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.query(PathQuery::new(Path::parse(path)?)).await
    }

    /// [`Client::get`] into a type of your own.
    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        match self.get(path).await? {
            Some(value) => Ok(Some(serde_json::from_value(value)?)),
            None => Ok(None),
        }
    }

    /// Reads `query`: from the cache when a subscription holds it (offline too), otherwise
    /// from the server. Writes not yet acknowledged are included either way.
    pub async fn query(&self, query: PathQuery) -> Result<Option<Value>, ClientError> {
        if let Some(value) = self.shared.cache.read(&query).await? {
            return Ok(value);
        }
        self.query_server(query).await
    }

    /// Reads `query` from the server (online only), with this client's queued writes laid
    /// over the answer.
    async fn query_server(&self, query: PathQuery) -> Result<Option<Value>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Query(query, tx))?;
        self.reply(rx).await?
    }

    /// Follows `query` under a name (its path's text): the cache keeps its data, on disk
    /// when the cache is, and the subscription resumes after every reconnection and
    /// restart until [`Client::unsubscribe`].
    pub async fn subscribe(&self, query: PathQuery) -> Result<Subscription, ClientError> {
        let name = query.path.to_string();
        self.subscribe_as(&name, query).await
    }

    /// [`Client::subscribe`] under a name of your choosing.
    pub async fn subscribe_as(
        &self,
        name: &str,
        query: PathQuery,
    ) -> Result<Subscription, ClientError> {
        let followed = self.shared.cache.follow(name, query).await?;
        let subscription = self.listen(name, followed.query);
        self.command(Command::Follow(name.to_string()))?;
        Ok(subscription)
    }

    /// A subscription the cache already follows (one of an earlier run, or a stored one).
    pub async fn subscription(&self, name: &str) -> Option<Subscription> {
        let followed = self.shared.cache.subscription(name).await?;
        Some(self.listen(name, followed.query))
    }

    /// A new handle on subscription `name`, with a queue of its own.
    fn listen(&self, name: &str, query: PathQuery) -> Subscription {
        let (tx, rx) = mpsc::channel(self.shared.options.update_queue.max(1));
        if let Ok(mut listeners) = self.shared.listeners.lock() {
            listeners
                .entry(name.to_string())
                .or_default()
                .push(Listener::new(tx));
        }
        Subscription::new(self.shared.clone(), name.to_string(), query, rx)
    }

    /// Stops following `name` and drops its data from the cache.
    pub async fn unsubscribe(&self, name: &str) -> Result<bool, ClientError> {
        let existed = self.shared.cache.unfollow(name).await?;
        if let Ok(mut listeners) = self.shared.listeners.lock() {
            listeners.remove(name);
        }
        self.command(Command::Unfollow(name.to_string()))?;
        Ok(existed)
    }

    /// Merges `value` at `path` (a `null` member deletes that child).
    pub async fn merge(&self, path: &str, value: Value) -> Result<Written, ClientError> {
        self.mutate(Mutation::merge(&Path::parse(path)?, value)?)
            .await
    }

    /// Replaces the subtree at `path` with `value`.
    pub async fn set(&self, path: &str, value: Value) -> Result<Written, ClientError> {
        self.mutate(Mutation::set(&Path::parse(path)?, value)?)
            .await
    }

    /// [`Client::set`] from a type of your own.
    pub async fn set_as<T: Serialize>(
        &self,
        path: &str,
        value: &T,
    ) -> Result<Written, ClientError> {
        self.set(path, serde_json::to_value(value)?).await
    }

    /// [`Client::merge`] from a type of your own.
    pub async fn merge_as<T: Serialize>(
        &self,
        path: &str,
        value: &T,
    ) -> Result<Written, ClientError> {
        self.merge(path, serde_json::to_value(value)?).await
    }

    /// Deletes `path` and everything under it.
    pub async fn delete(&self, path: &str) -> Result<Written, ClientError> {
        self.mutate(Mutation::delete(&Path::parse(path)?)).await
    }

    /// Applies `mutation` to the cache at once, stamped now, and queues it durably for the
    /// server; returns once it is queued.
    pub async fn mutate(&self, mutation: Mutation) -> Result<Written, ClientError> {
        self.mutate_if(mutation, Vec::new()).await
    }

    /// [`Client::mutate`], committed only if `conditions` hold when the write reaches the
    /// server — after this client's earlier writes, against the data then (for a write made
    /// offline, possibly long after). A failed condition refuses it with `conflict`: it is
    /// rolled back here, and [`ClientError::current`] tells what the server holds now.
    pub async fn mutate_if(
        &self,
        mutation: Mutation,
        conditions: Vec<Condition>,
    ) -> Result<Written, ClientError> {
        if mutation.is_empty() {
            return Err(ClientError::Invalid("an empty mutation".into()));
        }
        let queued = self.shared.cache.enqueue(mutation, conditions).await?;
        let (tx, answer) = oneshot::channel();
        if let Ok(mut waiters) = self.shared.waiters.lock() {
            waiters.insert(queued.number, tx);
        }
        let stamp = queued.stamp;
        let local = |query: &PathQuery| {
            let part = queued.mutation.restrict_range(
                &query.path,
                query.min.as_deref(),
                query.max.as_deref(),
            );
            Some(Update::Local {
                stamp,
                mutation: part,
            })
        };
        self.shared.notify_touched(&queued.mutation, local).await;
        self.command(Command::Flush)?;
        Ok(Written { stamp, answer })
    }

    /// Replaces the value at `path` with what `update` makes of it, atomically: the write
    /// commits only if the value is still the one `update` saw (a conditional write,
    /// `Condition::equals`); when another writer got there first, `update` runs again on the
    /// new value (at once, then after a short jittered pause and a fresh read), up to
    /// `Options::transaction_attempts` times.
    ///
    /// `update` gets the current value (`None`: nothing there; this client's queued writes
    /// included) and returns the new one (`Value::Null` deletes), or `None` to abort. It may
    /// run several times, so it should not have side effects. The write waits for the server
    /// (through disconnections); the first read comes from the cache when a subscription
    /// holds `path`, else from the server.
    pub async fn transaction(
        &self,
        path: &str,
        mut update: impl FnMut(Option<&Value>) -> Option<Value>,
    ) -> Result<Transacted, ClientError> {
        let path = Path::parse(path)?;
        let name = path.to_string();
        let attempts = self.shared.options.transaction_attempts.max(1);
        let mut current = self.get(&name).await?;
        for attempt in 1..=attempts {
            let Some(next) = update(current.as_ref()) else {
                return Ok(Transacted {
                    committed: false,
                    value: current,
                    ack: None,
                    attempts: attempt,
                });
            };
            let condition = Condition::equals(path.clone(), current.clone());
            let mutation = Mutation::set(&path, next.clone())?;
            let written = self.mutate_if(mutation, vec![condition]).await?;
            match written.acknowledged().await {
                Ok(ack) => {
                    return Ok(Transacted {
                        committed: true,
                        value: (!next.is_null()).then_some(next),
                        ack: Some(ack),
                        attempts: attempt,
                    })
                }
                Err(error) if error.code() == Some("conflict") => {
                    // The refusal carries the value now: retry on it at once, while it is
                    // fresh. Past the first few losses, pause first (fewer writers racing),
                    // then read afresh — a value kept through a pause is stale again.
                    let reported = error.current(&name);
                    current = match reported {
                        Some(now) if attempt < TRANSACTION_RETRIES_AT_ONCE => now,
                        _ => {
                            let pause = self.shared.options.transaction_backoff(attempt);
                            tokio::time::sleep(pause).await;
                            self.query_server(PathQuery::new(path.clone())).await?
                        }
                    };
                }
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::Refused {
            code: "conflict".into(),
            message: format!("{name} kept changing: gave up after {attempts} attempts"),
            conflict: None,
        })
    }

    /// Calls handler `name` on the server and waits for its reply (online only).
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Call(name.to_string(), args, tx))?;
        self.reply(rx).await?
    }

    /// Sends `args` to handler `name` without waiting (dropped when offline).
    pub fn cast(&self, name: &str, args: Value) -> Result<(), ClientError> {
        self.command(Command::Cast(name.to_string(), args))
    }

    /// Closes the connection and the cache. Queued writes stay queued on disk.
    pub async fn close(&self) {
        let _ = self.command(Command::Close);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.shared.cache.close().await;
    }

    fn command(&self, command: Command) -> Result<(), ClientError> {
        self.shared.commands_queued.fetch_add(1, Ordering::AcqRel);
        self.shared.synced.send_replace(false);
        self.shared.commands.send(command).map_err(|_| {
            self.shared.commands_queued.fetch_sub(1, Ordering::AcqRel);
            ClientError::Closed
        })
    }

    async fn reply<T>(&self, rx: oneshot::Receiver<T>) -> Result<T, ClientError> {
        let timeout = self.shared.options.request_timeout;
        tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| ClientError::Offline(format!("no reply within {timeout:?}")))?
            .map_err(|_| ClientError::Closed)
    }
}
