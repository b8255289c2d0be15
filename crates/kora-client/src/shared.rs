//! State shared by the client's handles and its connection task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use kora_core::{Mutation, PathQuery, Stamp, Value};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cache::Cache;
use crate::error::ClientError;
use crate::options::{Options, Status};
use crate::view;

/// The server's answer to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The commit's sequence number.
    pub seq: u64,
    /// The stamp the write was committed with.
    pub stamp: Stamp,
}

/// What happened to a subscription's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A change committed on the server, under the subscription's path (absolute paths).
    Change {
        seq: u64,
        stamp: Stamp,
        mutation: Mutation,
    },
    /// This client's own write, shown before the server has taken it.
    Local { stamp: Stamp, mutation: Mutation },
    /// The data was replaced; `value` is what a reader sees now (queued writes included).
    Reset { value: Option<Value> },
    /// The server refused this client's write, and it was undone; `value` is what a reader
    /// sees now.
    RolledBack {
        stamp: Stamp,
        error: ClientError,
        value: Option<Value>,
    },
    /// The server ended the subscription (e.g. its reader lost the right to read it).
    Ended { error: ClientError },
    /// Updates were dropped because this handle's queue (`Options::update_queue`) was full:
    /// it was not read fast enough. Read [`crate::Subscription::value`] for the current data.
    Lagged,
}

/// One subscription handle's queue of updates.
pub(crate) struct Listener {
    tx: mpsc::Sender<Update>,
    /// Updates were dropped; `Lagged` goes first once there is room.
    lagged: bool,
}

impl Listener {
    pub fn new(tx: mpsc::Sender<Update>) -> Self {
        Listener { tx, lagged: false }
    }

    /// Queues `update` without waiting; false once the handle is gone.
    fn offer(&mut self, update: &Update) -> bool {
        use mpsc::error::TrySendError;
        if self.lagged {
            match self.tx.try_send(Update::Lagged) {
                Ok(()) => self.lagged = false,
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(update.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lagged = true;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// Counters that describe what the client did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections opened (the first one included).
    pub connections: u64,
    pub frames_received: u64,
    /// Bytes of the text frames received.
    pub bytes_received: u64,
    /// Server changes applied to the cache.
    pub changes_applied: u64,
    /// Subscriptions replaced by a fresh value (first answers and resets).
    pub resets: u64,
    pub writes_sent: u64,
    pub writes_acknowledged: u64,
    pub writes_rolled_back: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub frames_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub changes_applied: AtomicU64,
    pub resets: AtomicU64,
    pub writes_sent: AtomicU64,
    pub writes_acknowledged: AtomicU64,
    pub writes_rolled_back: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: get(&self.connections),
            frames_received: get(&self.frames_received),
            bytes_received: get(&self.bytes_received),
            changes_applied: get(&self.changes_applied),
            resets: get(&self.resets),
            writes_sent: get(&self.writes_sent),
            writes_acknowledged: get(&self.writes_acknowledged),
            writes_rolled_back: get(&self.writes_rolled_back),
        }
    }
}

/// Requests from the handles to the connection task.
pub(crate) enum Command {
    /// Send (or re-send) this subscription.
    Follow(String),
    Unfollow(String),
    /// New writes are queued.
    Flush,
    Query(
        PathQuery,
        oneshot::Sender<Result<Option<Value>, ClientError>>,
    ),
    Call(String, Value, oneshot::Sender<Result<Value, ClientError>>),
    Cast(String, Value),
    Close,
}

pub(crate) struct Shared {
    pub url: String,
    pub options: Options,
    pub cache: Cache,
    pub status: watch::Sender<Status>,
    /// True while online with every subscription answered and no write waiting.
    pub synced: watch::Sender<bool>,
    pub commands: mpsc::UnboundedSender<Command>,
    /// Commands sent and not yet taken by the connection task: while any is, the client
    /// is not in sync.
    pub commands_queued: AtomicU64,
    pub listeners: Mutex<HashMap<String, Vec<Listener>>>,
    /// Callers waiting for a queued write's answer, by queue number.
    pub waiters: Mutex<HashMap<u64, oneshot::Sender<Result<Ack, ClientError>>>>,
    pub counters: Counters,
}

impl Shared {
    /// Tells every listener of `name`.
    pub fn notify(&self, name: &str, update: Update) {
        if let Ok(mut listeners) = self.listeners.lock() {
            if let Some(list) = listeners.get_mut(name) {
                list.retain_mut(|listener| listener.offer(&update));
            }
        }
    }

    /// Tells the listeners of every subscription `write` touches; `update` builds each
    /// one's update from its query.
    pub async fn notify_touched(
        &self,
        write: &Mutation,
        update: impl Fn(&PathQuery) -> Option<Update>,
    ) {
        for followed in self.cache.followed().await {
            if view::touches(write, &followed.query) {
                if let Some(u) = update(&followed.query) {
                    self.notify(&followed.name, u);
                }
            }
        }
    }

    /// Answers the caller waiting for write `number`, if any.
    pub fn answer(&self, number: u64, outcome: Result<Ack, ClientError>) {
        let waiter = self.waiters.lock().ok().and_then(|mut w| w.remove(&number));
        if let Some(tx) = waiter {
            let _ = tx.send(outcome);
        }
    }

    /// What a reader of `query` sees now, from the cache.
    pub async fn view(&self, query: &PathQuery) -> Option<Value> {
        self.cache.read(query).await.ok().flatten().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_updates_then_says_it_lagged() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut listener = Listener::new(tx);
        let reset = |n: i64| Update::Reset {
            value: Some(serde_json::json!(n)),
        };
        for n in 0..5 {
            assert!(listener.offer(&reset(n)));
        }
        assert_eq!(rx.try_recv().unwrap(), reset(0));
        assert_eq!(rx.try_recv().unwrap(), reset(1));
        assert!(rx.try_recv().is_err(), "2, 3 and 4 were dropped");
        assert!(listener.offer(&reset(5)));
        assert_eq!(rx.try_recv().unwrap(), Update::Lagged);
        assert!(listener.offer(&reset(6)));
        assert_eq!(rx.try_recv().unwrap(), reset(5));
        assert_eq!(rx.try_recv().unwrap(), reset(6));
        drop(rx);
        assert!(!listener.offer(&reset(7)), "a dropped handle is forgotten");
    }
}
