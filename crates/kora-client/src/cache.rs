//! The local cache: the subscribed subtrees, the queue of writes not yet acknowledged, and
//! the client's identity, kept in a Kora store of their own (the embedded engine on disk, or
//! memory).
//!
//! Layout of the cache's tree:
//!
//! | path | holds |
//! |---|---|
//! | `m/origin`, `m/clock` | the client's origin id (its stamps' tiebreak) and last stamp |
//! | `s/<hex name>` | a subscription: its query and the last sequence applied (JSON text) |
//! | `d:<hex name>/…` | the subscription's data, as the server last sent it |
//! | `p/<number>` | a queued write: its stamp and mutation (JSON text), numbered in order |
//!
//! What a reader sees is the server's data with the queued writes laid over it in order
//! (see `view::overlay`): a write shows at once, and disappears again if the server refuses
//! it. The data itself changes only as the server says, applied in sequence order. Cache
//! commits carry the client's own, ever newer stamps, so the store's conflict rules reduce
//! to plain sequential application.

use std::collections::BTreeMap;
use std::sync::Arc;

use kora_core::{Clock, Mutation, Path, PathQuery, Stamp, Value};
use kora_store::{Condition, EmbeddedStore, MemoryStore, Store, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

use crate::error::ClientError;
use crate::options::Options;
use crate::view;

const META: &str = "m";
const SUBS: &str = "s";
const PENDING: &str = "p";
const DATA_PREFIX: &str = "d:";

/// Longest subscription name: its hex form is one key (at most 768 bytes).
pub const MAX_SUBSCRIPTION_NAME: usize = 380;

/// A write waiting for the server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(skip)]
    pub number: u64,
    pub stamp: Stamp,
    pub mutation: Mutation,
    /// Checked by the server when the write reaches it (possibly long after it was made).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A subscription as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Followed {
    pub name: String,
    pub query: PathQuery,
    /// The last sequence applied.
    pub seq: u64,
    /// True once the server sent the data (then `seq` is where to resume from).
    #[serde(default)]
    pub synced: bool,
    /// The server's store history `seq` belongs to: sent with it to resume, so a server
    /// restored from a backup answers with a fresh value rather than a wrong replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
}

#[derive(Default)]
struct State {
    subs: BTreeMap<String, Followed>,
    queue: BTreeMap<u64, Queued>,
    /// The next queue number: never reused while the process runs, so a connection can
    /// tell new writes from those it sent.
    next_number: u64,
}

pub struct Cache {
    store: Arc<dyn Store>,
    clock: Clock,
    state: Mutex<State>,
}

impl Cache {
    /// Opens the cache named by the options (creating it, with a new origin id, if needed).
    pub async fn open(options: &Options) -> Result<Cache, ClientError> {
        let store: Arc<dyn Store> = match &options.cache_dir {
            Some(dir) => Arc::new(EmbeddedStore::open(dir).await?),
            None => Arc::new(MemoryStore::new()),
        };
        let meta = read_children(&*store, META).await?;
        let origin = match meta.get("origin").and_then(Value::as_u64) {
            Some(origin) => origin,
            None => fastrand::u64(1..u64::MAX),
        };
        // Unlimited skew: the cache's own last stamp must be absorbed even after the wall
        // clock stepped back, or new commits would lose to older ones.
        let clock = Clock::new(origin).with_max_skew_ms(u64::MAX);
        if let Some(last) = meta.get("clock").and_then(Value::as_u64) {
            let _ = clock.observe(Stamp::from_packed(last, origin));
        }
        let mut state = State::default();
        for (_, text) in read_children(&*store, SUBS).await? {
            let followed: Followed = from_text(&text)?;
            state.subs.insert(followed.name.clone(), followed);
        }
        for (key, text) in read_children(&*store, PENDING).await? {
            let mut queued: Queued = from_text(&text)?;
            queued.number = key
                .parse()
                .map_err(|_| ClientError::Cache(format!("a queued write named {key:?}")))?;
            let _ = clock.observe(queued.stamp);
            state.next_number = state.next_number.max(queued.number + 1);
            state.queue.insert(queued.number, queued);
        }
        let cache = Cache {
            store,
            clock,
            state: Mutex::new(state),
        };
        if !meta.contains_key("origin") {
            cache
                .commit(Mutation::merge(&meta_path("origin")?, json!(origin))?)
                .await?;
        }
        Ok(cache)
    }

    /// The clock that stamps this client's writes.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub async fn close(&self) {
        let _ = self.store.close().await;
    }

    /// Queues a write durably and returns it stamped.
    pub async fn enqueue(
        &self,
        mutation: Mutation,
        conditions: Vec<Condition>,
    ) -> Result<Queued, ClientError> {
        let mut state = self.state.lock().await;
        let number = state.next_number.max(1);
        state.next_number = number + 1;
        let queued = Queued {
            number,
            stamp: self.clock.now(),
            mutation,
            conditions,
        };
        let text = serde_json::to_string(&queued)?;
        self.commit(Mutation::merge(&pending_path(number)?, json!(text))?)
            .await?;
        state.queue.insert(number, queued.clone());
        Ok(queued)
    }

    /// Removes a write from the queue (the server took or refused it); `None` when it was
    /// not queued.
    pub async fn dequeue(&self, number: u64) -> Result<Option<Queued>, ClientError> {
        let mut state = self.state.lock().await;
        if !state.queue.contains_key(&number) {
            return Ok(None);
        }
        self.commit(Mutation::delete(&pending_path(number)?))
            .await?;
        Ok(state.queue.remove(&number))
    }

    /// The queued writes after `after`, oldest first, at most `limit`.
    pub async fn queued_after(&self, after: u64, limit: usize) -> Vec<Queued> {
        let state = self.state.lock().await;
        state
            .queue
            .range(after + 1..)
            .take(limit)
            .map(|(_, q)| q.clone())
            .collect()
    }

    pub async fn queue_len(&self) -> usize {
        self.state.lock().await.queue.len()
    }

    /// Follows `query` under `name`; a different query under the same name starts afresh.
    pub async fn follow(&self, name: &str, query: PathQuery) -> Result<Followed, ClientError> {
        if name.len() > MAX_SUBSCRIPTION_NAME {
            return Err(ClientError::Invalid(format!(
                "a subscription name may be at most {MAX_SUBSCRIPTION_NAME} bytes"
            )));
        }
        let mut state = self.state.lock().await;
        if let Some(existing) = state.subs.get(name).filter(|f| f.query == query) {
            return Ok(existing.clone());
        }
        let followed = Followed {
            name: name.to_string(),
            query,
            seq: 0,
            synced: false,
            history: None,
        };
        let m = Mutation::delete(&data_path(name)?)
            .and_merge(&sub_path(name)?, json!(serde_json::to_string(&followed)?))?;
        self.commit(m).await?;
        state.subs.insert(name.to_string(), followed.clone());
        Ok(followed)
    }

    /// Stops following `name` and forgets its data.
    pub async fn unfollow(&self, name: &str) -> Result<bool, ClientError> {
        let mut state = self.state.lock().await;
        if state.subs.remove(name).is_none() {
            return Ok(false);
        }
        self.commit(Mutation::delete(&data_path(name)?).and_delete(&sub_path(name)?))
            .await?;
        Ok(true)
    }

    pub async fn followed(&self) -> Vec<Followed> {
        self.state.lock().await.subs.values().cloned().collect()
    }

    pub async fn subscription(&self, name: &str) -> Option<Followed> {
        self.state.lock().await.subs.get(name).cloned()
    }

    /// Applies server changes `(subscription, seq, change)` in order, in one commit. Changes
    /// at or below a subscription's sequence were applied before and are skipped. Returns
    /// the ones applied.
    pub async fn apply(
        &self,
        changes: Vec<(String, u64, Stamp, Mutation)>,
    ) -> Result<Vec<(String, u64, Stamp, Mutation)>, ClientError> {
        let mut state = self.state.lock().await;
        let mut combined = Mutation::new();
        let mut applied = Vec::new();
        let mut touched = BTreeMap::new();
        for (name, seq, stamp, change) in changes {
            let Some(followed) = state.subs.get_mut(&name) else {
                continue;
            };
            if seq <= followed.seq {
                continue;
            }
            followed.seq = seq;
            let _ = self.clock.observe(stamp);
            combined = combined.combine(view::rebase(
                &change,
                &followed.query.path,
                &data_path(&name)?,
            )?);
            touched.insert(name.clone(), followed.clone());
            applied.push((name, seq, stamp, change));
        }
        for (name, followed) in touched {
            combined = combined.combine(Mutation::merge(
                &sub_path(&name)?,
                json!(serde_json::to_string(&followed)?),
            )?);
        }
        if !combined.is_empty() {
            self.commit(combined).await?;
        }
        Ok(applied)
    }

    /// Records the store history the server answered `name`'s subscription in.
    pub async fn set_history(
        &self,
        name: &str,
        history: Option<String>,
    ) -> Result<(), ClientError> {
        let mut state = self.state.lock().await;
        let Some(followed) = state.subs.get_mut(name) else {
            return Ok(());
        };
        if followed.history == history {
            return Ok(());
        }
        followed.history = history;
        let m = Mutation::merge(&sub_path(name)?, json!(serde_json::to_string(&followed)?))?;
        self.commit(m).await
    }

    /// Replaces what `name` holds with `value` as of `seq`.
    pub async fn reset(
        &self,
        name: &str,
        seq: u64,
        value: Option<Value>,
    ) -> Result<bool, ClientError> {
        let mut state = self.state.lock().await;
        let Some(followed) = state.subs.get_mut(name) else {
            return Ok(false);
        };
        followed.seq = seq;
        followed.synced = true;
        let data = data_path(name)?;
        let mut m = Mutation::delete(&data);
        if let Some(value) = value {
            m = m.combine(Mutation::merge_with(&data, value, &view::cache_limits())?);
        }
        let m = m.and_merge(&sub_path(name)?, json!(serde_json::to_string(&followed)?))?;
        self.commit(m).await?;
        Ok(true)
    }

    /// Answers `query` from a subscription that covers it, queued writes laid over; `None`
    /// when no subscription covers it.
    pub async fn read(&self, query: &PathQuery) -> Result<Option<Option<Value>>, ClientError> {
        let state = self.state.lock().await;
        let Some(followed) = state
            .subs
            .values()
            .find(|f| f.synced && view::covers(&f.query, query))
        else {
            return Ok(None);
        };
        let mut inner = query.clone();
        inner.subscribe = false;
        let rest = &query.path.segments()[followed.query.path.depth()..];
        let mut path = data_path(&followed.name)?;
        for segment in rest {
            path = path.child(segment.clone())?;
        }
        let queued: Vec<&Mutation> = state
            .queue
            .values()
            .map(|q| &q.mutation)
            .filter(|m| view::touches(m, query))
            .collect();
        if !queued.is_empty() {
            // The writes may move children into or out of the window: read it unlimited.
            inner.limit = None;
        }
        inner.path = path;
        let stored = self.store.get(&inner).await?;
        Ok(Some(view::overlay(stored, query, queued)))
    }

    /// `value` (read from the server at `query`) with the queued writes laid over it.
    pub async fn overlay(&self, query: &PathQuery, value: Option<Value>) -> Option<Value> {
        let state = self.state.lock().await;
        view::overlay(value, query, state.queue.values().map(|q| &q.mutation))
    }

    async fn commit(&self, mutation: Mutation) -> Result<(), ClientError> {
        let stamp = self.clock.now();
        let mutation = mutation.and_merge(&meta_path("clock")?, json!(stamp.packed()))?;
        self.store.commit(Write::new(stamp, mutation)).await?;
        Ok(())
    }
}

async fn read_children(
    store: &dyn Store,
    top: &str,
) -> Result<serde_json::Map<String, Value>, ClientError> {
    let value = store.get(&PathQuery::new(Path::parse(top)?)).await?;
    Ok(match value {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    })
}

fn from_text<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ClientError> {
    let text = value
        .as_str()
        .ok_or_else(|| ClientError::Cache(format!("unexpected entry {value}")))?;
    serde_json::from_str(text).map_err(|e| ClientError::Cache(format!("unreadable entry: {e}")))
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn meta_path(key: &str) -> Result<Path, ClientError> {
    Ok(Path::from_segments([META, key])?)
}

fn sub_path(name: &str) -> Result<Path, ClientError> {
    Ok(Path::from_segments([SUBS.to_string(), hex(name)])?)
}

fn pending_path(number: u64) -> Result<Path, ClientError> {
    Ok(Path::from_segments([
        PENDING.to_string(),
        format!("{number:020}"),
    ])?)
}

/// Where subscription `name` keeps its data.
pub fn data_path(name: &str) -> Result<Path, ClientError> {
    Ok(Path::from_segments([format!(
        "{DATA_PREFIX}{}",
        hex(name)
    )])?)
}
