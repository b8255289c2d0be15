//! A session: one connection's requests and the changes pushed to it.
//!
//! Transports (WebSocket, Server-Sent Events, the Firebase protocol) each wrap a session. It
//! owns the connection's subscriptions and its bounded event queue, and turns what the
//! fan-out delivers into pushes:
//!
//! - Subscribing registers first, then reads: a snapshot at sequence S, or — when resuming
//!   from sequence N — the change log after N, restricted to the subscription. Anything the
//!   fan-out queued meanwhile at or below the read's sequence is skipped (each subscription
//!   keeps a watermark), so nothing is missed and nothing is delivered twice. A resume is
//!   replayed only when its sequence names the same commit here: not beyond the store's last
//!   one, and of the store's history or of an ancestor before the fork (a restored backup,
//!   `kora_store::history`); otherwise the subscription gets a fresh snapshot (`Reset`).
//! - A limited subscription (`limit`) re-reads its window when a change touches its path and
//!   pushes the difference, so children entering and leaving the window are reported.
//! - If the queue overflowed, the session drops it and re-sends every subscription as a
//!   fresh snapshot (`reset`).
//! - Stored subscriptions (`kora:subscriptions/<user>/<id>` = a path query) are subscribed
//!   when followed, and added or removed as that path changes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kora_core::{Mutation, Path, PathQuery, Query, Stamp, Value};
use kora_store::{Commit, LogRead, Seq};
use serde_json::Map;
use tokio::sync::mpsc;

use crate::context::Context;
use crate::error::Error;
use crate::kora::Kora;
use crate::subscriptions::{Entry, Event, Sink};
use crate::virtuals::{self, value_at, Beneath, Node};

/// The reserved path under which each user's stored subscriptions live.
pub const STORED_SUBSCRIPTIONS: &str = "kora:subscriptions";

/// Subscriptions the session holds for itself begin with this character, which no path
/// holds (so no default name) and [`Session::subscribe`] refuses in a name: a client's
/// subscription can never be taken for one of them.
const INTERNAL: char = '\0';
/// The following of the user's stored subscriptions.
const STORED_ID: &str = "\0stored";
const STORED_PREFIX: &str = "stored:";
/// Subscriptions a live virtual path holds on what it resolves from: `\0virtual:<n>:<key>`.
const VIRTUAL_PREFIX: &str = "\0virtual:";
/// A virtual path inside a subscription's answer: `\0beneath:<n>`.
const BENEATH_PREFIX: &str = "\0beneath:";

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// What a subscription starts with.
#[derive(Debug, Clone, PartialEq)]
pub enum Initial {
    /// The current value (`None`: nothing there) as of sequence `seq`.
    Snapshot { seq: Seq, value: Option<Value> },
    /// The changes after the requested sequence, up to `seq`, restricted to the subscription.
    Replay { seq: Seq, changes: Vec<Replayed> },
    /// The requested sequence is no longer covered by the change log: a fresh snapshot.
    Reset { seq: Seq, value: Option<Value> },
}

/// Where a client resumes a subscription: after sequence `seq`, of the store history
/// `history` when the client knows it (`kora_store::history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub seq: Seq,
    pub history: Option<String>,
}

impl Resume {
    /// A resume after `seq`, of a history not given (trusted to be the store's own).
    pub fn after(seq: Seq) -> Self {
        Resume { seq, history: None }
    }
}

/// One replayed change.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub seq: Seq,
    pub stamp: Stamp,
    pub mutation: Mutation,
}

/// Something pushed to the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// The part of a committed change under subscription `id`.
    Change {
        id: String,
        seq: Seq,
        stamp: Stamp,
        mutation: Arc<Mutation>,
    },
    /// A fresh value for subscription `id` that replaces what the client holds. `query` is
    /// set when the server itself started the subscription (a stored subscription), so the
    /// client learns what it follows.
    Reset {
        id: String,
        seq: Seq,
        value: Option<Value>,
        query: Option<PathQuery>,
    },
    /// Subscription `id` ended: its subscriber may no longer read its path.
    Ended { id: String, error: Error },
}

/// Something [`Session::recv`] received, to hand to [`Session::process`].
#[derive(Debug)]
pub struct Incoming(Inner);

#[derive(Debug)]
enum Inner {
    Queued,
    Overflow,
    Event(Event),
}

struct Active {
    key: u64,
    query: PathQuery,
    watermark: Seq,
    /// The current window of a limited subscription.
    window: Option<Value>,
    /// Virtual paths may lie beneath its path (`crate::virtuals`).
    beneath: bool,
    /// For a subscription on what a virtual path resolves from: that virtual path's key in
    /// `Session::virtuals`, which its changes make stale.
    feeds: Option<String>,
}

/// One connection's view of the database.
pub struct Session {
    kora: Kora,
    ctx: Context,
    /// The event queue the fan-out fills, made at the first subscription: a connection that
    /// never subscribes holds none (a queue allocates its first block when made).
    queue: Option<(Arc<Sink>, mpsc::Receiver<Event>)>,
    subs: HashMap<String, Active>,
    by_key: HashMap<u64, String>,
    pushes: VecDeque<Push>,
    /// The stored-subscriptions map being followed, as last seen.
    stored: Option<Map<String, Value>>,
    /// The user whose stored subscriptions are followed.
    stored_user: Option<String>,
    /// Virtual paths followed: subscribed to (by subscription id) and inside subscriptions'
    /// answers (`beneath:<n>`).
    virtuals: HashMap<String, Virtual>,
    /// The virtual paths inside each subscription's answer: path → key in `virtuals`.
    beneath: HashMap<String, HashMap<Path, String>>,
    /// Live virtual paths whose sources changed since they were last answered, with the
    /// newest commit that did.
    stale: HashMap<String, Seq>,
    /// Pushes taken from the queue and not handed out yet (see [`Session::flush`]).
    ready: Vec<Push>,
}

/// A virtual path followed: its last answer, and the subscriptions on what it resolves from.
struct Virtual {
    /// The subscription its changes are pushed as: itself, or the one whose answer holds it.
    owner: String,
    query: PathQuery,
    value: Option<Value>,
    sources: Vec<String>,
    /// Inside an answer: how many segments of its path its existence hangs on
    /// (`crate::virtuals::Beneath::anchor`).
    anchor: Option<usize>,
}

impl Session {
    pub(crate) fn new(kora: Kora, ctx: Context) -> Session {
        kora.inner.metrics.sessions.inc();
        Session {
            kora,
            ctx,
            queue: None,
            subs: HashMap::new(),
            by_key: HashMap::new(),
            pushes: VecDeque::new(),
            stored: None,
            stored_user: None,
            virtuals: HashMap::new(),
            beneath: HashMap::new(),
            stale: HashMap::new(),
            ready: Vec::new(),
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn kora(&self) -> &Kora {
        &self.kora
    }

    /// Number of active subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    pub async fn query(&self, query: &Query) -> Result<crate::pipeline::Answer, Error> {
        self.kora.query(&self.ctx, query).await
    }

    pub async fn mutate(&self, mutation: Mutation, stamp: Option<Stamp>) -> Result<Commit, Error> {
        self.kora.mutate(&self.ctx, mutation, stamp).await
    }

    pub async fn call(&self, name: &str, args: Value) -> Result<Value, Error> {
        self.kora.call(&self.ctx, name, args).await
    }

    /// Subscribes `id` to `query`, replacing an earlier subscription with the same id.
    /// With `since`, resumes after that sequence instead of sending a snapshot.
    pub async fn subscribe(
        &mut self,
        id: &str,
        query: PathQuery,
        since: Option<Resume>,
    ) -> Result<Initial, Error> {
        if id.starts_with(INTERNAL) {
            return Err(Error::bad_request(
                "a subscription's name may not begin with the character U+0000",
            ));
        }
        self.start(id, query, since).await
    }

    /// [`Session::subscribe`], for any name (the session's own too).
    async fn start(
        &mut self,
        id: &str,
        query: PathQuery,
        since: Option<Resume>,
    ) -> Result<Initial, Error> {
        if let Some(value) = self.answer_virtual(&query).await? {
            // A virtual path: its resolver answers, again whenever what it resolves from
            // changes (a live one), or only now.
            self.unsubscribe(id);
            let sources = self.kora.resolves_from(&query);
            self.check_room(sources.len())?;
            self.follow_virtual(id, query, value.clone(), sources);
            // The change log holds no virtual paths: a resume gets the answer afresh.
            return Ok(match since {
                Some(_) => Initial::Reset {
                    seq: self.kora.delivered_seq(),
                    value,
                },
                None => Initial::Snapshot { seq: 0, value },
            });
        }
        self.unsubscribe(id);
        self.check_room(1)?;
        self.register(id, query.clone());
        let beneath = self.kora.answers_beneath(&query.path);
        let initial = match self.initial(&query, since, beneath).await {
            Ok(initial) => initial,
            Err(error) => {
                self.unsubscribe(id);
                return Err(error);
            }
        };
        let mut answer = None;
        if let Some(active) = self.subs.get_mut(id) {
            match &initial {
                Initial::Snapshot { seq, value } | Initial::Reset { seq, value } => {
                    active.watermark = *seq;
                    if query.is_windowed() {
                        active.window = value.clone();
                    }
                    answer = value.as_ref();
                }
                Initial::Replay { seq, .. } => active.watermark = *seq,
            }
        }
        if beneath {
            if let Some(active) = self.subs.get_mut(id) {
                active.beneath = true;
            }
            if let Err(error) = self.follow_beneath(id, &query, answer) {
                self.unsubscribe(id);
                return Err(error);
            }
        }
        Ok(initial)
    }

    /// A virtual path's answer as the subscriber may see it (after the read filters); `None`
    /// when no interceptor answers `query`.
    async fn answer_virtual(&self, query: &PathQuery) -> Result<Option<Option<Value>>, Error> {
        let Some(value) = self.kora.check_read(&self.ctx, query).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.kora.filter_answer(&self.ctx, query, value).await?,
        ))
    }

    /// Refuses `more` subscriptions beyond the session's limit.
    fn check_room(&self, more: usize) -> Result<(), Error> {
        let limit = self.kora.inner.config.max_subscriptions_per_session;
        if self.subs.len() + more > limit {
            return Err(Error::too_large(format!(
                "a session may hold at most {limit} subscriptions"
            )));
        }
        Ok(())
    }

    /// Subscribes to what the virtual path `id` resolves from (nothing when it is not live).
    fn follow_virtual(
        &mut self,
        id: &str,
        query: PathQuery,
        value: Option<Value>,
        from: Vec<Path>,
    ) {
        if from.is_empty() {
            return;
        }
        let sources = self.follow_sources(id, from);
        let live = Virtual {
            owner: id.to_string(),
            query,
            value,
            sources,
            anchor: None,
        };
        self.virtuals.insert(id.to_string(), live);
    }

    /// Subscribes to the paths the virtual path `key` resolves from.
    fn follow_sources(&mut self, key: &str, from: Vec<Path>) -> Vec<String> {
        let mut sources = Vec::with_capacity(from.len());
        for (n, path) in from.into_iter().enumerate() {
            let source = format!("{VIRTUAL_PREFIX}{n}:{key}");
            self.register(&source, PathQuery::new(path));
            if let Some(active) = self.subs.get_mut(&source) {
                active.feeds = Some(key.to_string());
            }
            sources.push(source);
        }
        sources
    }

    /// Follows the virtual paths inside subscription `owner`'s answer `value`: those it no
    /// longer holds are dropped, new ones followed, and each one's last answer is its part
    /// of `value`.
    fn follow_beneath(
        &mut self,
        owner: &str,
        query: &PathQuery,
        value: Option<&Value>,
    ) -> Result<(), Error> {
        let found = self.kora.virtual_paths_beneath(query, Node::of(value));
        let wanted: HashSet<&Path> = found.iter().map(|b| &b.path).collect();
        let held = self.beneath.get(owner).into_iter().flatten();
        let gone: Vec<String> = held
            .filter(|(path, _)| !wanted.contains(path))
            .map(|(_, key)| key.clone())
            .collect();
        for key in gone {
            self.unsubscribe(&key);
        }
        let base = query.path.segments().len();
        for beneath in found {
            let part = value_at(value, &beneath.path.segments()[base..]);
            match self.beneath_key(owner, &beneath.path) {
                Some(key) => {
                    if let Some(live) = self.virtuals.get_mut(&key) {
                        live.value = part;
                    }
                }
                None => {
                    self.follow_one_beneath(owner, beneath, part)?;
                }
            }
        }
        Ok(())
    }

    /// The key of the virtual path `path` inside subscription `owner`'s answer.
    fn beneath_key(&self, owner: &str, path: &Path) -> Option<String> {
        self.beneath.get(owner)?.get(path).cloned()
    }

    /// Follows one virtual path inside subscription `owner`'s answer; returns its key.
    fn follow_one_beneath(
        &mut self,
        owner: &str,
        beneath: Beneath,
        value: Option<Value>,
    ) -> Result<String, Error> {
        let query = PathQuery::new(beneath.path.clone());
        let from = self.kora.resolves_from(&query);
        if let Err(error) = self.check_room(from.len()) {
            return Err(Error::too_large(format!(
                "{}: following the virtual path {} inside it",
                error.message, beneath.path
            )));
        }
        let key = format!(
            "{BENEATH_PREFIX}{}",
            NEXT_KEY.fetch_add(1, Ordering::Relaxed)
        );
        let sources = self.follow_sources(&key, from);
        let live = Virtual {
            owner: owner.to_string(),
            query,
            value,
            sources,
            anchor: Some(beneath.anchor),
        };
        self.virtuals.insert(key.clone(), live);
        self.beneath
            .entry(owner.to_string())
            .or_default()
            .insert(beneath.path, key.clone());
        Ok(key)
    }

    /// After a change pushed to subscription `owner`: the virtual paths it removed from the
    /// subscriber's copy are answered again (or dropped, when what they hang on is gone),
    /// and those it brought (a new `$name` key) are followed and answered.
    fn note_beneath(
        &mut self,
        owner: &str,
        query: &PathQuery,
        change: &Mutation,
        seq: Seq,
    ) -> Result<(), Error> {
        let deletes = change.deletes();
        let base = query.path.segments().len();
        let mut lost = Vec::new();
        let mut gone = Vec::new();
        for (path, key) in self.beneath.get(owner).into_iter().flatten() {
            if !deletes.covers(path.segments()) {
                continue;
            }
            let Some(live) = self.virtuals.get(key) else {
                continue;
            };
            // Its anchor deleted: gone (the merge below brings it back if the change remade
            // the anchor); otherwise the subscriber lost it and gets it again.
            let anchor = &path.segments()[..live.anchor.unwrap_or(base)];
            if anchor.len() > base && deletes.covers(anchor) {
                gone.push(key.clone());
            } else {
                lost.push(key.clone());
            }
        }
        for key in gone {
            self.unsubscribe(&key);
        }
        let merged = Node::at(change.merges(), query.path.segments());
        for beneath in self.kora.virtual_paths_beneath(query, merged) {
            if self.beneath_key(owner, &beneath.path).is_none() {
                lost.push(self.follow_one_beneath(owner, beneath, None)?);
            }
        }
        for key in lost {
            if let Some(live) = self.virtuals.get_mut(&key) {
                live.value = None;
            }
            let newest = self.stale.entry(key).or_insert(seq);
            *newest = (*newest).max(seq);
        }
        Ok(())
    }

    /// Answers again each live virtual path whose sources changed, pushing the difference.
    async fn refresh_virtuals(&mut self) {
        for (id, seq) in std::mem::take(&mut self.stale) {
            let Some(query) = self.virtuals.get(&id).map(|v| v.query.clone()) else {
                continue;
            };
            let answer = self.answer_virtual(&query).await;
            let Some(live) = self.virtuals.get_mut(&id) else {
                continue;
            };
            let owner = live.owner.clone();
            let value = match answer {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(error) => {
                    self.unsubscribe(&owner);
                    self.pushes.push_back(Push::Ended { id: owner, error });
                    continue;
                }
            };
            let old = std::mem::replace(&mut live.value, value.clone());
            let Some(mutation) = window_diff(&query.path, old.as_ref(), value.as_ref()) else {
                continue;
            };
            self.held_window(&owner, &query.path, value);
            self.pushes.push_back(Push::Change {
                id: owner,
                seq,
                stamp: self.kora.inner.clock.now(),
                mutation: Arc::new(mutation),
            });
        }
    }

    /// Keeps the window a limited subscription `owner` holds in step with what a virtual
    /// path inside it (at `path`) pushed, so the next window difference starts from what
    /// its subscriber has.
    fn held_window(&mut self, owner: &str, path: &Path, value: Option<Value>) {
        let Some(active) = self.subs.get_mut(owner) else {
            return;
        };
        let base = active.query.path.segments().len();
        if !active.query.is_windowed() || path.segments().len() <= base {
            return;
        }
        if let Some(Value::Object(window)) = &mut active.window {
            virtuals::put(window, &path.segments()[base..], value);
        }
    }

    /// What a new subscription starts with: a replay after `since` when the log covers it,
    /// else a snapshot (a `Reset` when a resume was asked for). The log holds no virtual
    /// paths, so a subscription with some `beneath` it starts from a snapshot.
    async fn initial(
        &self,
        query: &PathQuery,
        since: Option<Resume>,
        beneath: bool,
    ) -> Result<Initial, Error> {
        let replayable = !query.is_windowed() && !beneath;
        if let (Some(resume), true) = (&since, replayable) {
            if self.shares(resume).await? {
                if let Some(replay) = self.replay(query, resume.seq).await? {
                    return Ok(replay);
                }
            }
        }
        let (seq, value) = self.read(query).await?;
        Ok(match since {
            Some(_) => Initial::Reset { seq, value },
            None => Initial::Snapshot { seq, value },
        })
    }

    /// True when the resume's sequence names the same commit in this store: it is not past
    /// the last one, and is of the store's history (or of an ancestor, before the fork).
    async fn shares(&self, resume: &Resume) -> Result<bool, Error> {
        let store = &self.kora.inner.store;
        if resume.seq > store.last_seq().await? {
            return Ok(false);
        }
        Ok(match (&resume.history, &self.kora.inner.history) {
            (Some(id), Some(history)) => history.shares(id, resume.seq),
            _ => true,
        })
    }

    /// The session's event queue, made now if it has none.
    fn sink(&mut self) -> Arc<Sink> {
        let capacity = self.kora.inner.config.session_queue;
        self.queue
            .get_or_insert_with(|| Sink::new(capacity))
            .0
            .clone()
    }

    /// True once the fan-out dropped events for this session; clears the mark.
    fn overflowed(&self) -> bool {
        self.queue
            .as_ref()
            .is_some_and(|(sink, _)| sink.take_overflow())
    }

    fn register(&mut self, id: &str, query: PathQuery) -> u64 {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id: key,
            query: query.clone(),
            sink: self.sink(),
        });
        if let Ok(mut index) = self.kora.inner.index.write() {
            index.insert(entry);
        }
        self.kora.inner.metrics.subscriptions.inc();
        self.subs.insert(
            id.to_string(),
            Active {
                key,
                query,
                watermark: 0,
                window: None,
                beneath: false,
                feeds: None,
            },
        );
        self.by_key.insert(key, id.to_string());
        key
    }

    /// Ends subscription `id`; true when there was one.
    pub fn unsubscribe(&mut self, id: &str) -> bool {
        if let Some(live) = self.virtuals.remove(id) {
            self.stale.remove(id);
            if let Some(inside) = self.beneath.get_mut(&live.owner) {
                inside.remove(&live.query.path);
            }
            for source in live.sources {
                self.unsubscribe(&source);
            }
            return true;
        }
        for key in self.beneath.remove(id).unwrap_or_default().into_values() {
            self.unsubscribe(&key);
        }
        let Some(active) = self.subs.remove(id) else {
            return false;
        };
        self.by_key.remove(&active.key);
        if let Ok(mut index) = self.kora.inner.index.write() {
            index.remove(active.key, &active.query.path);
        }
        self.kora.inner.metrics.subscriptions.dec();
        true
    }

    /// A subscription's current value, as its subscriber may see it.
    async fn read(&self, query: &PathQuery) -> Result<(Seq, Option<Value>), Error> {
        if let Some(by) = &query.by {
            // Boxed: a connection's loop awaits this inline, and a connection that never
            // reads such a window should not carry room for it.
            return Box::pin(self.kora.read_window(&self.ctx, query, by)).await;
        }
        let mut snapshot = self
            .kora
            .inner
            .store
            .read(std::slice::from_ref(query))
            .await?;
        let value = snapshot.values.pop().flatten();
        let value = self.kora.include_virtual(&self.ctx, query, value).await?;
        let value = self.kora.filter_answer(&self.ctx, query, value).await?;
        Ok((snapshot.seq, value))
    }

    /// The changes after `after` that touch `query`; `None` when a snapshot is needed.
    async fn replay(&self, query: &PathQuery, after: Seq) -> Result<Option<Initial>, Error> {
        let config = &self.kora.inner.config;
        let mut changes = Vec::new();
        let mut seq = after;
        loop {
            let page = match self.kora.inner.store.changes(seq, 1_000).await? {
                LogRead::Compacted { .. } => return Ok(None),
                LogRead::Changes(page) => page,
            };
            let Some(last) = page.last() else {
                break;
            };
            seq = last.seq;
            for change in page {
                let part = change.mutation.restrict_range(
                    &query.path,
                    query.min.as_deref(),
                    query.max.as_deref(),
                );
                if part.is_empty() {
                    continue;
                }
                let part = self
                    .kora
                    .filter_change(&self.ctx, query, Arc::new(part))
                    .await?;
                if !part.is_empty() {
                    changes.push(Replayed {
                        seq: change.seq,
                        stamp: change.stamp,
                        mutation: Arc::unwrap_or_clone(part),
                    });
                }
            }
            if changes.len() > config.max_replay {
                return Ok(None);
            }
        }
        Ok(Some(Initial::Replay { seq, changes }))
    }

    /// The next push for the connection; `None` when the engine is shutting down.
    ///
    /// Not cancel-safe (it may read the store): a transport that selects between this and
    /// other work should select on [`Session::recv`] and then await [`Session::process`].
    pub async fn next(&mut self) -> Option<Push> {
        loop {
            let incoming = self.recv().await?;
            let mut pushes = self.process(incoming).await.into_iter();
            if let Some(first) = pushes.next() {
                self.pushes.extend(pushes);
                return Some(first);
            }
        }
    }

    /// Waits for something to push. Cancel-safe: nothing is lost if the future is dropped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        if !self.pushes.is_empty() {
            return Some(Incoming(Inner::Queued));
        }
        if self.overflowed() {
            return Some(Incoming(Inner::Overflow));
        }
        match &mut self.queue {
            Some((_, rx)) => rx.recv().await.map(|event| Incoming(Inner::Event(event))),
            // Nothing subscribed: nothing will come until something is.
            None => std::future::pending().await,
        }
    }

    /// What [`Session::recv`] would return now, without waiting: `None` when nothing is
    /// queued.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        if !self.pushes.is_empty() {
            return Some(Incoming(Inner::Queued));
        }
        if self.overflowed() {
            return Some(Incoming(Inner::Overflow));
        }
        let (_, rx) = self.queue.as_mut()?;
        rx.try_recv()
            .ok()
            .map(|event| Incoming(Inner::Event(event)))
    }

    /// Turns what [`Session::recv`] returned into pushes (possibly none). Do not cancel.
    pub async fn process(&mut self, incoming: Incoming) -> Vec<Push> {
        self.take(incoming).await;
        self.flush().await
    }

    /// Queues the pushes `incoming` makes (live virtual paths wait for [`Session::flush`]).
    async fn take(&mut self, incoming: Incoming) {
        match incoming.0 {
            Inner::Queued => {}
            Inner::Overflow => self.resync().await,
            Inner::Event(event) => {
                if let Some(push) = self.handle(event).await {
                    self.pushes.push_back(push);
                }
            }
        }
        // Out of `pushes`, which `recv` reports as something queued.
        self.ready.extend(self.pushes.drain(..));
    }

    /// The pushes queued, with the new answers of the live virtual paths whose sources
    /// changed (once for all the events taken since the last flush).
    async fn flush(&mut self) -> Vec<Push> {
        self.refresh_virtuals().await;
        self.ready.extend(self.pushes.drain(..));
        std::mem::take(&mut self.ready)
    }

    /// [`Session::process`] of `incoming`, then of what is already queued behind it (at most
    /// `more` further events): a transport then sends a busy session's pushes in one write
    /// instead of one write each.
    pub async fn process_ready(&mut self, incoming: Incoming, more: usize) -> Vec<Push> {
        self.take(incoming).await;
        self.take_queued(more).await;
        self.flush().await
    }

    /// [`Session::process`] of what is queued now (at most `most` events), without waiting:
    /// empty when nothing is. A transport drains this before replying to a write, so the
    /// write's pushes reach the client first.
    pub async fn process_queued(&mut self, most: usize) -> Vec<Push> {
        self.take_queued(most).await;
        self.flush().await
    }

    async fn take_queued(&mut self, most: usize) {
        for _ in 0..most {
            let Some(next) = self.try_recv() else {
                break;
            };
            self.take(next).await;
        }
    }

    async fn handle(&mut self, event: Event) -> Option<Push> {
        let (key, seq) = match &event {
            Event::Change {
                subscription, seq, ..
            }
            | Event::Touched { subscription, seq } => (*subscription, *seq),
        };
        let id = self.by_key.get(&key)?.clone();
        let active = self.subs.get_mut(&id)?;
        if seq <= active.watermark {
            return None;
        }
        match event {
            Event::Change {
                seq,
                stamp,
                mutation,
                ..
            } => {
                active.watermark = seq;
                if let Some(key) = &active.feeds {
                    let newest = self.stale.entry(key.clone()).or_insert(seq);
                    *newest = (*newest).max(seq);
                    return None;
                }
                if id == STORED_ID {
                    self.follow_change(&mutation).await;
                    return None;
                }
                let query = active.query.clone();
                let beneath = active.beneath;
                let pushed = match self.kora.filter_change(&self.ctx, &query, mutation).await {
                    Ok(pushed) if beneath => self
                        .note_beneath(&id, &query, &pushed, seq)
                        .map(|()| pushed),
                    other => other,
                };
                match pushed {
                    Ok(mutation) if mutation.is_empty() => None,
                    Ok(mutation) => Some(Push::Change {
                        id,
                        seq,
                        stamp,
                        mutation,
                    }),
                    Err(error) => {
                        self.unsubscribe(&id);
                        Some(Push::Ended { id, error })
                    }
                }
            }
            Event::Touched { .. } => self.refresh_window(&id).await,
        }
    }

    /// Re-reads a limited subscription's window and pushes what changed in it.
    async fn refresh_window(&mut self, id: &str) -> Option<Push> {
        let query = self.subs.get(id)?.query.clone();
        let (seq, value) = self.read(&query).await.ok()?;
        let active = self.subs.get_mut(id)?;
        active.watermark = seq;
        let old = std::mem::replace(&mut active.window, value.clone());
        if active.beneath {
            if let Err(error) = self.follow_beneath(id, &query, value.as_ref()) {
                self.unsubscribe(id);
                return Some(Push::Ended {
                    id: id.to_string(),
                    error,
                });
            }
        }
        let mutation = window_diff(&query.path, old.as_ref(), value.as_ref())?;
        Some(Push::Change {
            id: id.to_string(),
            seq,
            stamp: self.kora.inner.clock.now(),
            mutation: Arc::new(mutation),
        })
    }

    /// After an overflow: drop the queue, send every subscription afresh.
    async fn resync(&mut self) {
        if let Some((_, rx)) = &mut self.queue {
            while rx.try_recv().is_ok() {}
        }
        let last = self.kora.delivered_seq();
        for id in self.virtuals.keys() {
            self.stale.insert(id.clone(), last);
        }
        // Sources of virtual paths were made stale above: nothing of theirs is sent.
        let ids: Vec<String> = (self.subs.iter())
            .filter(|(_, active)| active.feeds.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(query) = self.subs.get(&id).map(|a| a.query.clone()) else {
                continue;
            };
            let Ok((seq, value)) = self.read(&query).await else {
                continue;
            };
            let Some(active) = self.subs.get_mut(&id) else {
                continue;
            };
            active.watermark = seq;
            if query.is_windowed() {
                active.window = value.clone();
            }
            if active.beneath {
                if let Err(error) = self.follow_beneath(&id, &query, value.as_ref()) {
                    self.unsubscribe(&id);
                    self.pushes.push_back(Push::Ended { id, error });
                    continue;
                }
            }
            if id == STORED_ID {
                self.follow_value(value.as_ref()).await;
            } else {
                let query = id.starts_with(STORED_PREFIX).then_some(query);
                self.pushes.push_back(Push::Reset {
                    id,
                    seq,
                    value,
                    query,
                });
            }
        }
    }

    /// Follows the stored subscriptions of whoever the connection is now: started when it
    /// gets a user (a token, an `auth` request, a handler that signs it in), switched to
    /// another user's when it becomes someone else, ended when it has no user any more.
    pub async fn follow_stored_of_current_user(&mut self) -> Result<(), Error> {
        let user = self.ctx.user();
        if user == self.stored_user {
            return Ok(());
        }
        match user {
            Some(user) => self.follow_stored_subscriptions(&user).await,
            None => {
                self.stop_stored();
                Ok(())
            }
        }
    }

    /// Follows `user`'s stored subscriptions while the session lives (instead of another
    /// user's it followed).
    pub async fn follow_stored_subscriptions(&mut self, user: &str) -> Result<(), Error> {
        self.stop_stored();
        self.stored_user = Some(user.to_string());
        let path = Path::parse(STORED_SUBSCRIPTIONS)?.child(user)?;
        let initial = self.start(STORED_ID, PathQuery::new(path), None).await?;
        self.stored = Some(Map::new());
        if let Initial::Snapshot { value, .. } = initial {
            self.follow_value(value.as_ref()).await;
        }
        Ok(())
    }

    async fn follow_change(&mut self, mutation: &Mutation) {
        let Some(path) = self.subs.get(STORED_ID).map(|a| a.query.path.clone()) else {
            return;
        };
        let mut whole = Map::new();
        if let Some(current) = self.stored.clone() {
            kora_core::query::place(&mut whole, path.segments(), Value::Object(current));
        }
        mutation.apply_to(&mut whole);
        let mut node = Some(Value::Object(whole));
        for segment in path.segments() {
            node = node.and_then(|n| n.get(segment).cloned());
        }
        self.follow_value(node.as_ref()).await;
    }

    /// Ends the stored subscriptions followed so far, and the following.
    fn stop_stored(&mut self) {
        for id in self.stored.take().unwrap_or_default().keys() {
            self.unsubscribe(&format!("{STORED_PREFIX}{id}"));
        }
        self.unsubscribe(STORED_ID);
        self.stored_user = None;
    }

    /// Brings the stored subscriptions in line with `value` (id → path query).
    async fn follow_value(&mut self, value: Option<&Value>) {
        let wanted: Map<String, Value> = value
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let previous = self.stored.replace(wanted.clone()).unwrap_or_default();
        for id in previous.keys().filter(|id| !wanted.contains_key(*id)) {
            self.unsubscribe(&format!("{STORED_PREFIX}{id}"));
        }
        for (id, spec) in wanted {
            if previous.get(&id) == Some(&spec) {
                continue;
            }
            let Ok(query) = serde_json::from_value::<PathQuery>(spec) else {
                tracing::warn!(id, "ignoring an invalid stored subscription");
                continue;
            };
            let full = format!("{STORED_PREFIX}{id}");
            match self.start(&full, query.clone(), None).await {
                Ok(Initial::Snapshot { seq, value }) | Ok(Initial::Reset { seq, value }) => {
                    self.pushes.push_back(Push::Reset {
                        id: full,
                        seq,
                        value,
                        query: Some(query),
                    });
                }
                Ok(Initial::Replay { .. }) => {}
                Err(error) => tracing::warn!(id, %error, "stored subscription refused"),
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        for id in ids {
            self.unsubscribe(&id);
        }
        self.kora.inner.metrics.sessions.dec();
    }
}

/// A mutation turning the window `old` at `path` into `new`, child by child; `None` when
/// they are equal.
fn window_diff(path: &Path, old: Option<&Value>, new: Option<&Value>) -> Option<Mutation> {
    if old == new {
        return None;
    }
    let (Some(Value::Object(old)), Some(Value::Object(new))) = (old, new) else {
        return match new {
            None => Some(Mutation::delete(path)),
            Some(value) => Mutation::set(path, value.clone()).ok(),
        };
    };
    let mut diff = Mutation::new();
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        diff = diff.and_delete(&path.child(key.clone()).ok()?);
    }
    for (key, value) in new {
        if old.get(key) != Some(value) {
            let child = path.child(key.clone()).ok()?;
            diff = diff.combine(Mutation::set(&child, value.clone()).ok()?);
        }
    }
    Some(diff)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn window_diff_removes_departed_children_and_sets_changed_ones() {
        let path = Path::parse("l").unwrap();
        let diff = window_diff(
            &path,
            Some(&json!({"a": 1, "b": 2})),
            Some(&json!({"b": 2, "c": 3})),
        )
        .unwrap();
        assert_eq!(
            diff.to_json(),
            json!({"merge": {"l": {"c": 3}}, "delete": {"l": {"a": 1, "c": 1}}})
        );
        assert!(window_diff(&path, Some(&json!(1)), Some(&json!(1))).is_none());
    }
}
