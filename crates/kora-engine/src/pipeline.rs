//! The write and read paths.
//!
//! ```text
//!  write(ctx, WriteRequest { mutation, stamping, conditions, turn })
//!    │ 1. stamp: the client's (absorbed by the clock; re-stamped if too far ahead or older
//!    │    than the retention) or the server's (`Kora::stamp`)
//!    │ 2. before_mutation: every matching interceptor, every layer, in order; an error
//!    │    refuses the whole write; extra mutations are combined in and intercepted in turn.
//!    │    Every read they make is recorded (`crate::reads`).
//!    │ 3. effects: what the final write asks to run after commit
//!    ▼
//!  store.submit, after the connection's earlier writes (`Turns`) — group commit: the
//!  caller's conditions and "nothing read in 2 changed since" checked, then data +
//!  tombstones + change log + outbox, one transaction. A read that changed: back to 2
//!  (`Config::max_write_attempts`; `crate::contention` for hot paths).
//!    ▼
//!  feed (sequence order) ──► fan-out (each subscriber's part) ──► session queues
//!                        └─► effects runner (woken)
//! ```
//!
//! Reads: `before_query` for every interceptor whose pattern relates to a queried path (may
//! refuse), `resolve_query` for exact matches (may answer instead of the store), then one
//! consistent store snapshot for the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kora_core::mutation::Layer;
use kora_core::query::place;
use kora_core::stamp::wall_millis;
use kora_core::{Mutation, Path, PathQuery, Query, Stamp, Value};
use kora_store::{Change, Commit, Condition, NewEffect, Page, Seq, StoreError, Write};
use serde_json::Map;
use tokio::sync::oneshot;

use crate::config::Conflicts;
use crate::context::Context;
use crate::error::{Conflict as ErrorConflict, Current, Error};
use crate::interceptor::{ReadLayer, Registered, WholeWrite, WriteLayer};
use crate::kora::Kora;
use crate::pattern::{Captures, Relation};
use crate::reads::ReadLog;

/// How long a commit waits to be handed to the cluster bus before it is left to the other
/// nodes' catch-up from the change log.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// The answer to a query: the tree holding the selected subtrees, each path's own value, and
/// the last commit the answer includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: Value,
    pub values: Vec<Option<Value>>,
    pub seq: Seq,
}

/// How a write is stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamping {
    /// Its client's stamp, kept: per leaf, the write made last wins (offline writes included).
    Client(Stamp),
    /// This node's stamp, taken on arrival: the write is ordered by commit (the store gives it
    /// a newer stamp if something it overwrites is newer; `kora_store::Write::server_stamped`).
    Server(Stamp),
}

impl Stamping {
    pub fn stamp(&self) -> Stamp {
        match self {
            Stamping::Client(stamp) | Stamping::Server(stamp) => *stamp,
        }
    }
}

/// A write on its way in: what [`Kora::write`] takes.
#[derive(Debug)]
pub struct WriteRequest {
    pub mutation: Mutation,
    pub stamping: Stamping,
    /// The caller's conditions (`kora_store::condition`): refused with `conflict` when one
    /// does not hold at commit.
    pub conditions: Vec<Condition>,
    /// Its place among its connection's writes ([`Turns`]), when those commit in order.
    pub turn: Option<Turn>,
}

impl WriteRequest {
    pub fn new(mutation: Mutation, stamping: Stamping) -> Self {
        WriteRequest {
            mutation,
            stamping,
            conditions: Vec::new(),
            turn: None,
        }
    }
}

/// Keeps one connection's writes in the order they arrived: each is handed to the store only
/// after the one before it was (or failed), while their interceptors still run concurrently.
#[derive(Debug, Default)]
pub struct Turns {
    last: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl Turns {
    /// The next write's turn; call in arrival order.
    pub fn next(&self) -> Turn {
        let (done, next) = oneshot::channel();
        let previous = match self.last.lock() {
            Ok(mut last) => last.replace(next),
            Err(poisoned) => poisoned.into_inner().replace(next),
        };
        Turn {
            previous,
            _done: done,
        }
    }
}

/// One write's place in its connection's order: dropping it lets the next write go.
#[derive(Debug)]
pub struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Waits until the turns before this one are over (dropped): for a write, until the
    /// writes before it were handed to the store (or gave up). Transports use a second
    /// `Turns` the same way to send a connection's replies in order.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
    }
}

impl Kora {
    /// Runs a write through the pipeline. Returns once it is durable.
    pub async fn mutate(
        &self,
        ctx: &Context,
        mutation: Mutation,
        client_stamp: Option<Stamp>,
    ) -> Result<Commit, Error> {
        let stamping = self.stamp(client_stamp);
        self.write(ctx, WriteRequest::new(mutation, stamping)).await
    }

    /// Runs a write through the pipeline, optimistically: the interceptors and rules run on
    /// the data as it is, the store commits the result only if nothing they read changed
    /// meanwhile (`crate::reads`), and otherwise they run again, up to
    /// `Config::max_write_attempts` times. Returns once the write is durable.
    pub async fn write(&self, ctx: &Context, request: WriteRequest) -> Result<Commit, Error> {
        let started = Instant::now();
        let WriteRequest {
            mutation,
            stamping,
            conditions,
            mut turn,
        } = request;
        if self.inner.interceptors.is_empty() {
            // Nothing reads for this write: one attempt, decided by the caller alone.
            let write = Write {
                conditions: conditions.clone(),
                server_stamped: matches!(stamping, Stamping::Server(_)),
                ..Write::new(stamping.stamp(), mutation)
            };
            let committed = self.commit(write, turn).await;
            return self.committed(ctx, &conditions, committed, started).await;
        }
        let attempts = self.inner.config.max_write_attempts.max(1);
        let mut attempt = 0;
        // This write's turn on hot paths it read (`crate::contention`), once it needs one.
        let mut hot = None;
        loop {
            let reads = ReadLog::default();
            let intercepted = reads
                .scope(self.intercept(ctx, mutation.clone(), stamping.stamp()))
                .await;
            let (final_mutation, effects) = match intercepted {
                Ok(prepared) => prepared,
                Err(error) => {
                    self.inner.metrics.mutations_refused.inc();
                    return Err(error);
                }
            };
            let tracked = reads.conditions();
            if hot.is_none() {
                let read: Vec<Path> = tracked.iter().map(|c| c.path().clone()).collect();
                if self.inner.contention.is_hot(&read) {
                    // Others on this node are taking turns on what it read: queue with them
                    // (after the connection's earlier writes, so neither waits for the other)
                    // and decide again when its turn comes.
                    if let Some(turn) = turn.as_mut() {
                        turn.wait().await;
                    }
                    hot = Some(self.inner.contention.turn(&read).await);
                    continue;
                }
            }
            attempt += 1;
            let own = conditions.len();
            let mut all = conditions.clone();
            all.extend(tracked.iter().cloned());
            let write = Write {
                effects,
                conditions: all,
                server_stamped: matches!(stamping, Stamping::Server(_)),
                ..Write::new(stamping.stamp(), final_mutation)
            };
            let committed = self.commit(write, turn.take()).await;
            match committed {
                Err(StoreError::Conflict(conflict))
                    if conflict.failed.iter().all(|i| *i >= own) && attempt < attempts =>
                {
                    // Only what the interceptors read changed: decide again on fresh data.
                    self.inner.metrics.write_retries.inc();
                    let changed: Vec<Path> = conflict
                        .failed
                        .iter()
                        .filter_map(|i| tracked.get(i - own).map(|c| c.path().clone()))
                        .collect();
                    drop(hot.take()); // (a turn held from the last attempt goes first)
                    hot = Some(self.before_retry(&changed, conflict.seq).await);
                }
                Err(StoreError::Conflict(conflict))
                    if conflict.failed.iter().all(|i| *i >= own) =>
                {
                    self.inner.metrics.write_conflicts.inc();
                    return Err(Error::new(
                        crate::error::Code::Conflict,
                        format!(
                            "the data this write's rules or interceptors read kept changing: \
                             gave up after {attempts} attempts (max_write_attempts)"
                        ),
                    ));
                }
                committed => return self.committed(ctx, &conditions, committed, started).await,
            }
        }
    }

    /// The answer to a write once the store has answered: its commit, or its refusal.
    async fn committed(
        &self,
        ctx: &Context,
        conditions: &[Condition],
        committed: Result<Commit, StoreError>,
        started: Instant,
    ) -> Result<Commit, Error> {
        match committed {
            Ok(commit) => {
                let metrics = &self.inner.metrics;
                metrics.mutations.inc();
                metrics.mutation_latency.observe(started.elapsed());
                Ok(commit)
            }
            Err(StoreError::Conflict(conflict)) => {
                self.inner.metrics.write_conflicts.inc();
                Err(self.conflict(ctx, conditions, conflict).await)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Commits a final write (after its turn) on a task of its own: once the store has it,
    /// the feed must get it even if the caller stops waiting.
    async fn commit(&self, write: Write, turn: Option<Turn>) -> Result<Commit, StoreError> {
        let has_effects = !write.effects.is_empty();
        let kora = self.clone();
        tokio::spawn(async move {
            let store_started = Instant::now();
            let submitted = match turn {
                Some(mut turn) => {
                    turn.wait().await;
                    kora.inner.store.submit(write).await
                    // (the turn is dropped here: the next write may go)
                }
                None => kora.inner.store.submit(write).await,
            };
            let commit = submitted?.await?;
            kora.inner
                .metrics
                .store_commit_latency
                .observe(store_started.elapsed());
            // A restamped write's stamp may be ahead of this node's clock: absorb it, so the
            // node's next writes are newer. (Within the allowed skew by construction.)
            let _ = kora.inner.clock.observe(commit.stamp);
            let change = Change {
                seq: commit.seq,
                stamp: commit.stamp,
                mutation: commit.effect.clone(),
            };
            kora.publish(&change);
            kora.inner.feed.push(change);
            if has_effects {
                kora.inner.effects_due.notify_one();
            }
            Ok::<Commit, StoreError>(commit)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("commit task: {e}")))?
    }

    /// Hands a commit to the cluster bus, in the background and bounded: a bus that is down
    /// must not hold up writes.
    fn publish(&self, change: &Change) {
        if self.inner.bus.is_none() {
            return;
        }
        let kora = self.clone();
        let change = change.clone();
        tokio::spawn(async move {
            if let Some(bus) = &kora.inner.bus {
                let sent = tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(&change)).await;
                if sent.is_ok() {
                    kora.inner.metrics.cluster_published.inc();
                }
            }
        });
    }

    /// The refusal of a write whose own conditions failed, with the current values at their
    /// paths where the caller may read them.
    async fn conflict(
        &self,
        ctx: &Context,
        conditions: &[Condition],
        conflict: kora_store::Conflict,
    ) -> Error {
        let mut current = Vec::new();
        let mut seq = conflict.seq;
        let failed: Vec<usize> = conflict
            .failed
            .iter()
            .copied()
            .filter(|i| *i < conditions.len())
            .collect();
        for i in &failed {
            let path = conditions[*i].path();
            let query = Query::of([path.clone()]);
            if let Ok(answer) = self.query(ctx, &query).await {
                seq = seq.max(answer.seq);
                current.push(Current {
                    path: path.to_string(),
                    value: answer.values.into_iter().next().flatten(),
                });
            }
        }
        let which: Vec<String> = failed.iter().map(usize::to_string).collect();
        Error::conflict(
            format!("condition {} of the write did not hold", which.join(", ")),
            ErrorConflict {
                failed,
                current,
                seq,
            },
        )
    }

    /// How a write is stamped (docs/design.md §4): the client's stamp, absorbed by this node's
    /// clock, unless it is too far ahead, older than the retention, or the server orders
    /// writes by arrival — then a fresh server stamp.
    pub fn stamp(&self, client_stamp: Option<Stamp>) -> Stamping {
        let clock = &self.inner.clock;
        let Some(stamp) = client_stamp else {
            return Stamping::Server(clock.now());
        };
        if self.inner.config.conflicts == Conflicts::Arrival {
            return Stamping::Server(clock.now());
        }
        let horizon_ms =
            wall_millis().saturating_sub(self.inner.config.retention.as_millis() as u64);
        if stamp.millis() < horizon_ms || clock.observe(stamp).is_err() {
            // Too old to be ordered against compacted tombstones, or too far in the future:
            // the write counts as made now.
            return Stamping::Server(clock.now());
        }
        Stamping::Client(stamp)
    }

    /// Runs a write through the interceptors without committing it: `Ok` when it would be
    /// accepted now. For writes registered ahead of time (Firebase's onDisconnect), which
    /// must be refused when they are registered, not only when they run.
    pub async fn check_write(&self, ctx: &Context, mutation: Mutation) -> Result<(), Error> {
        let stamp = self.stamp(None).stamp();
        self.intercept(ctx, mutation, stamp).await.map(|_| ())
    }

    /// Runs the interceptors over a write: returns the final mutation and its effects.
    pub(crate) async fn intercept(
        &self,
        ctx: &Context,
        mutation: Mutation,
        stamp: Stamp,
    ) -> Result<(Mutation, Vec<NewEffect>), Error> {
        let interceptors = &self.inner.interceptors;
        if interceptors.is_empty() {
            return Ok((mutation, Vec::new()));
        }
        let (mutation, mut effects) = self.before_write(ctx, mutation, stamp).await?;
        let mut total = mutation.clone();
        let mut pending = mutation;
        let mut rounds = 0;
        loop {
            let mut extra = Mutation::new();
            for (registered, layer, captures) in matching(interceptors, &pending) {
                let write = self.write_layer(&layer, &captures, &total, stamp);
                if let Some(more) = registered.interceptor.before_mutation(&write, ctx).await? {
                    extra = extra.combine(more);
                }
            }
            if extra.is_empty() {
                break;
            }
            rounds += 1;
            if rounds >= self.inner.config.max_intercept_rounds {
                return Err(Error::internal(format!(
                    "interceptors were still adding mutations after {rounds} rounds"
                )));
            }
            total = total.combine(extra.clone());
            pending = extra;
        }
        for (registered, layer, captures) in matching(interceptors, &total) {
            let write = self.write_layer(&layer, &captures, &total, stamp);
            effects.extend(registered.interceptor.effects(&write, ctx).await?);
        }
        Ok((total, effects))
    }

    /// A read as an interceptor sees it.
    fn read_layer<'a>(&'a self, query: &'a PathQuery, relation: &'a Relation) -> ReadLayer<'a> {
        ReadLayer {
            query,
            relation,
            kora: self,
        }
    }

    /// A layer of a write as an interceptor sees it.
    fn write_layer<'a>(
        &'a self,
        layer: &'a Layer<'a>,
        captures: &'a Captures,
        mutation: &'a Mutation,
        stamp: Stamp,
    ) -> WriteLayer<'a> {
        WriteLayer {
            path: &layer.path,
            captures,
            layer,
            mutation,
            stamp,
            kora: self,
        }
    }

    /// The whole-write interceptors, once each, on the mutation as the client sent it:
    /// returns it with their additions, and their effects.
    async fn before_write(
        &self,
        ctx: &Context,
        mutation: Mutation,
        stamp: Stamp,
    ) -> Result<(Mutation, Vec<NewEffect>), Error> {
        let layers = mutation.layers();
        let mut added = Mutation::new();
        let mut effects = Vec::new();
        for registered in &self.inner.interceptors {
            let relevant = layers
                .iter()
                .any(|l| registered.pattern.matches(l.path.segments()).is_some());
            if !relevant {
                continue;
            }
            let write = WholeWrite {
                mutation: &mutation,
                stamp,
                kora: self,
            };
            let addition = registered.interceptor.before_write(&write, ctx).await?;
            if let Some(more) = addition.mutation {
                added = added.combine(more);
            }
            effects.extend(addition.effects);
        }
        drop(layers);
        Ok((mutation.combine(added), effects))
    }

    /// Answers a query through the read interceptors and one store snapshot.
    pub async fn query(&self, ctx: &Context, query: &Query) -> Result<Answer, Error> {
        self.inner.metrics.queries.inc();
        let mut values: Vec<Option<Option<Value>>> = Vec::with_capacity(query.paths.len());
        let mut from_store: Vec<PathQuery> = Vec::new();
        for part in &query.paths {
            let mut resolved = self.check_read(ctx, part).await?;
            match (&resolved, &part.by) {
                (Some(_), _) => {}
                (None, Some(by)) => resolved = Some(self.read_window(ctx, part, by).await?.1),
                (None, None) => from_store.push(part.clone()),
            }
            values.push(resolved);
        }
        let started = Instant::now();
        let snapshot = self.read_store(&from_store).await?;
        self.inner
            .metrics
            .store_read_latency
            .observe(started.elapsed());
        let mut stored = snapshot.values.into_iter();
        let mut filtered = Vec::with_capacity(values.len());
        for (part, value) in query.paths.iter().zip(values) {
            let value = match value {
                Some(answered) => answered,
                None => {
                    let value = stored.next().flatten();
                    self.include_virtual(ctx, part, value).await?
                }
            };
            filtered.push(self.filter_answer(ctx, part, value).await?);
        }
        let values = filtered;
        let mut tree = Map::new();
        for (part, value) in query.paths.iter().zip(&values) {
            if let Some(value) = value {
                place(&mut tree, part.path.segments(), value.clone());
            }
        }
        Ok(Answer {
            value: Value::Object(tree),
            values,
            seq: snapshot.seq,
        })
    }

    /// A page of the stored leaves, in key order: what `kora export` streams. The caller
    /// needs read access to the page's path. Read filters judge whole values, which a page is
    /// not, so where one applies at or beneath that path only a system context may export.
    pub async fn export(&self, ctx: &Context, page: Page<'_>) -> Result<Vec<(Path, Value)>, Error> {
        self.check_stored(ctx, page.under).await?;
        let under = page.under;
        if !ctx.is_system()
            && self
                .filters()
                .any(|r| r.pattern.relation(under.segments()).is_some())
        {
            return Err(Error::permission_denied(format!(
                "read rules filter {under}, and an export cannot be filtered page by page; \
                 export from a server on the same store without a rules file"
            )));
        }
        Ok(self.inner.store.leaves(page).await?)
    }

    /// A page of the stored records (leaves with their stamps, tombstones), in key order:
    /// what `kora export --full` streams. Only the administrator (a system context) may read
    /// them: tombstones name deleted paths, which no read rule was written to judge.
    pub async fn export_records(
        &self,
        ctx: &Context,
        page: Page<'_>,
    ) -> Result<Vec<(Path, kora_core::records::Record)>, Error> {
        if !ctx.is_system() {
            return Err(Error::permission_denied(
                "a full export (stamps and tombstones) is for the administrator: present the \
                 admin secret ([auth] admin_secret)",
            ));
        }
        self.check_stored(ctx, page.under).await?;
        Ok(self.inner.store.records(page).await?)
    }

    /// Refuses to export a path an interceptor answers: nothing of it is stored.
    async fn check_stored(&self, ctx: &Context, under: &Path) -> Result<(), Error> {
        let part = PathQuery::new(under.clone());
        if self.check_read(ctx, &part).await?.is_some() {
            return Err(Error::bad_request(format!(
                "{under} is answered by an interceptor, not stored: there is nothing to export"
            )));
        }
        Ok(())
    }

    /// `before_query` for every related interceptor, then `resolve_query` for exact ones.
    /// Returns `Some(value)` when an interceptor answered the path.
    pub(crate) async fn check_read(
        &self,
        ctx: &Context,
        part: &PathQuery,
    ) -> Result<Option<Option<Value>>, Error> {
        for (registered, relation) in related(&self.inner.interceptors, &part.path) {
            let read = self.read_layer(part, &relation);
            registered.interceptor.before_query(&read, ctx).await?;
            if matches!(relation, Relation::Exact(_)) && registered.interceptor.answers_reads() {
                if let Some(value) = registered.interceptor.resolve_query(&read, ctx).await? {
                    return Ok(Some(Some(value)));
                }
            }
        }
        Ok(None)
    }

    /// What a read of `part` resolves from when an interceptor answers it (the first exact
    /// match that declares any, see [`crate::Interceptor::resolves_from`]).
    pub(crate) fn resolves_from(&self, part: &PathQuery) -> Vec<Path> {
        for (registered, relation) in related(&self.inner.interceptors, &part.path) {
            if matches!(relation, Relation::Exact(_)) && registered.interceptor.answers_reads() {
                let read = self.read_layer(part, &relation);
                let paths = registered.interceptor.resolves_from(&read);
                if !paths.is_empty() {
                    return paths;
                }
            }
        }
        Vec::new()
    }

    /// Runs the read filters over the value a path query read.
    pub(crate) async fn filter_answer(
        &self,
        ctx: &Context,
        part: &PathQuery,
        mut value: Option<Value>,
    ) -> Result<Option<Value>, Error> {
        let filters: Vec<&Registered> = self.filters().collect();
        for (registered, relation) in related(filters, &part.path) {
            let read = self.read_layer(part, &relation);
            value = registered
                .interceptor
                .filter_read(&read, value, ctx)
                .await?;
        }
        Ok(value)
    }

    /// The part of a change a subscriber of `query` may see, after the read filters. The
    /// same `Arc` comes back when no filter applies.
    pub async fn filter_change(
        &self,
        ctx: &Context,
        query: &PathQuery,
        change: Arc<Mutation>,
    ) -> Result<Arc<Mutation>, Error> {
        // Collected first: an iterator of closures held across an `await` makes the future
        // too particular about lifetimes to be sent between threads.
        let filters: Vec<&crate::interceptor::Registered> = self
            .filters()
            .filter(|r| r.pattern.relation(query.path.segments()).is_some())
            .collect();
        if filters.is_empty() {
            return Ok(change);
        }
        let mut change = Arc::unwrap_or_clone(change);
        for registered in filters {
            change = registered
                .interceptor
                .filter_change(query, change, ctx, self)
                .await?;
        }
        Ok(Arc::new(change))
    }

    /// Whether a read filter applies at, above or beneath `path`.
    pub(crate) fn is_filtered(&self, path: &Path) -> bool {
        self.filters()
            .any(|r| r.pattern.relation(path.segments()).is_some())
    }

    fn filters(&self) -> impl Iterator<Item = &crate::interceptor::Registered> {
        self.inner
            .interceptors
            .iter()
            .filter(|r| r.interceptor.filters_reads())
    }

    /// The horizon before which tombstones and log entries may be forgotten.
    fn retention_horizon(&self) -> (Stamp, u64) {
        let cutoff = wall_millis().saturating_sub(self.inner.config.retention.as_millis() as u64);
        (Stamp::new(cutoff, 0, 0), cutoff)
    }

    /// Compacts the store now (tombstones and change log older than the retention).
    pub async fn compact(&self) -> Result<kora_store::Compacted, Error> {
        let (horizon, log_before) = self.retention_horizon();
        Ok(self.inner.store.compact(horizon, log_before).await?)
    }
}

/// Compacts on the configured interval.
pub(crate) async fn compact_periodically(kora: Kora) {
    let every = kora
        .inner
        .config
        .compaction_interval
        .max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match kora.compact().await {
            Ok(done) => tracing::info!(?done, "compacted"),
            Err(error) => tracing::warn!(%error, "compaction failed"),
        }
    }
}

/// Each layer of `mutation` with each interceptor whose pattern matches it (layer by layer,
/// interceptors in registration order), and what the pattern captured.
fn matching<'m>(
    interceptors: &'m [Registered],
    mutation: &'m Mutation,
) -> Vec<(&'m Registered, Layer<'m>, Captures)> {
    let mut out = Vec::new();
    for layer in mutation.layers() {
        for registered in interceptors {
            if let Some(captures) = registered.pattern.matches(layer.path.segments()) {
                out.push((registered, layer.clone(), captures));
            }
        }
    }
    out
}

/// The interceptors whose pattern relates to `path` (at it, above it or beneath it), with
/// how.
fn related<'a>(
    interceptors: impl IntoIterator<Item = &'a Registered>,
    path: &Path,
) -> Vec<(&'a Registered, Relation)> {
    interceptors
        .into_iter()
        .filter_map(|r| Some((r, r.pattern.relation(path.segments())?)))
        .collect()
}
