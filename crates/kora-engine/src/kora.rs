//! `Kora`: the database as a library, and the builder that assembles it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kora_core::{Clock, Path, PathQuery, Value};
use kora_store::{MemoryStore, Seq, Snapshot, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::contention::{Contention, HotTurn, CATCH_UP_WAIT};
use crate::context::Context;
use crate::effects::{EffectRunner, WebhookRunner};
use crate::error::Error;
use crate::feed::Feed;
use crate::handler::Handler;
use crate::interceptor::{Interceptor, Registered};
use crate::metrics::Metrics;
use crate::pattern::{Pattern, PatternError};
use crate::reads::ReadLog;
use crate::session::Session;
use crate::subscriptions::Index;

/// The database. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Kora {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub config: Config,
    pub interceptors: Vec<Registered>,
    pub handlers: HashMap<String, Arc<dyn Handler>>,
    pub runners: HashMap<String, Arc<dyn EffectRunner>>,
    pub index: RwLock<Index>,
    pub feed: Feed,
    pub bus: Option<crate::cluster::Bus>,
    pub metrics: Metrics,
    /// Wakes the effect runner when a commit adds effects.
    pub effects_due: Notify,
    pub tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// The last sequence the fan-out has delivered to every session queue.
    pub delivered: std::sync::atomic::AtomicU64,
    /// Wakes those waiting for `delivered` to pass a sequence.
    pub delivered_changed: Notify,
    pub shutting_down: std::sync::atomic::AtomicBool,
    /// Turns of this node's writes retrying on hot paths.
    pub contention: Arc<Contention>,
    /// The store's history (`kora_store::history`): fixed while the store is open.
    pub history: Option<kora_store::History>,
    /// The ordered child indexes of Kora's queries.
    pub indexes: crate::index::Indexes<crate::index::Natural>,
}

impl Kora {
    pub fn builder() -> KoraBuilder {
        KoraBuilder::default()
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The id of the store's history, which resumes name (`kora_store::history`); `None`
    /// for a store that keeps none.
    pub fn history_id(&self) -> Option<&str> {
        self.inner.history.as_ref().map(|h| h.id.as_str())
    }

    /// Moves a dead effect back to pending with its tries reset, and wakes the runner so it
    /// runs now rather than at the next poll.
    pub async fn retry_dead_effect(&self, id: u64) -> Result<(), Error> {
        self.inner.store.revive_effect(id).await?;
        self.inner.effects_due.notify_one();
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// This node's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The last sequence the fan-out has handed to every concerned session: a session has
    /// queued every change up to it.
    pub fn delivered_seq(&self) -> kora_store::Seq {
        self.inner
            .delivered
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the fan-out has delivered `seq`: then every session concerned has the
    /// change in its queue (transports use this to send a write's reply after its pushes).
    pub async fn wait_delivered(&self, seq: kora_store::Seq) {
        loop {
            let changed = self.inner.delivered_changed.notified();
            if self.delivered_seq() >= seq {
                return;
            }
            changed.await;
        }
    }

    /// Whether this node is connected to its cluster bus (`None`: not in a cluster).
    pub fn cluster_connected(&self) -> Option<bool> {
        self.inner.bus.as_ref().map(|bus| bus.is_connected())
    }

    /// A context for the server's own work (no client behind it).
    pub fn system_context(&self) -> Context {
        Context::system(self.inner.clock.origin())
    }

    /// A session for one connection: requests plus a queue of pushed changes.
    pub fn session(&self, ctx: Context) -> Session {
        Session::new(self.clone(), ctx)
    }

    /// The value at `path` straight from the store: no interceptors, for interceptors and
    /// handlers that need the current data. Inside a write's interceptors, the read becomes
    /// a condition of that write (`crate::reads`).
    pub async fn read_value(&self, path: &Path) -> Result<Option<Value>, Error> {
        Ok(self.read_at(path).await?.0)
    }

    /// [`Kora::read_value`] with the last commit the value includes: what a conditional write
    /// decided on this value uses (`Condition::unchanged(path, seq)`).
    pub async fn read_at(&self, path: &Path) -> Result<(Option<Value>, Seq), Error> {
        let snapshot = self.read_store(&[PathQuery::new(path.clone())]).await?;
        Ok((snapshot.values.into_iter().next().flatten(), snapshot.seq))
    }

    /// Reads several path queries from the store at one consistent point; inside a write's
    /// interceptors, each becomes a condition of that write (`crate::reads`).
    pub async fn read_store(&self, parts: &[PathQuery]) -> Result<Snapshot, Error> {
        let snapshot = self.inner.store.read(parts).await?;
        ReadLog::record(parts.iter().map(|part| &part.path), snapshot.seq);
        Ok(snapshot)
    }

    /// The turns of this node's writes on hot paths (`crate::contention`).
    pub fn contention(&self) -> &Arc<Contention> {
        &self.inner.contention
    }

    /// What a write does before it decides again after a conflict on `paths` seen at `seq`:
    /// waits for its turn among this node's writes retrying on those paths, then (briefly)
    /// until this node has seen `seq`, so its next read includes what beat it. Hold the turn
    /// until the next attempt has committed or failed (`crate::contention`).
    pub async fn before_retry(&self, paths: &[Path], seq: Seq) -> HotTurn {
        let turn = self.inner.contention.turn(paths).await;
        let _ = tokio::time::timeout(CATCH_UP_WAIT, self.wait_delivered(seq)).await;
        turn
    }

    /// Calls handler `name` and returns its reply.
    pub async fn call(&self, ctx: &Context, name: &str, args: Value) -> Result<Value, Error> {
        let handler = self
            .inner
            .handlers
            .get(name)
            .ok_or_else(|| Error::not_found(format!("no handler named {name:?}")))?;
        handler.handle(args, ctx, self).await
    }

    /// Stops background work, lets in-flight commits finish, and closes the store.
    pub async fn shutdown(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let tasks: Vec<JoinHandle<()>> = self
            .inner
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        // Open indexes follow the store through sessions of this engine: let them go.
        self.inner.indexes.close().await;
        if let Err(error) = self.inner.store.close().await {
            tracing::warn!(%error, "closing the store");
        }
    }

    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.push(handle);
        }
    }
}

/// Assembles a [`Kora`]: `Kora::builder().store(..).interceptor(..).handler(..).build()`.
#[derive(Default)]
pub struct KoraBuilder {
    store: Option<Arc<dyn Store>>,
    config: Config,
    interceptors: Vec<Registered>,
    handlers: HashMap<String, Arc<dyn Handler>>,
    runners: HashMap<String, Arc<dyn EffectRunner>>,
    errors: Vec<PatternError>,
}

impl KoraBuilder {
    /// The store (default: `memory:`).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers an interceptor for the layers whose paths match `pattern`. Interceptors run
    /// in the order they are registered.
    pub fn interceptor(self, pattern: &str, interceptor: impl Interceptor) -> Self {
        self.interceptor_arc(pattern, Arc::new(interceptor))
    }

    /// [`KoraBuilder::interceptor`] for a shared interceptor.
    pub fn interceptor_arc(mut self, pattern: &str, interceptor: Arc<dyn Interceptor>) -> Self {
        match Pattern::parse(pattern) {
            Ok(pattern) => self.interceptors.push(Registered {
                pattern,
                interceptor,
            }),
            Err(error) => self.errors.push(error),
        }
        self
    }

    /// Registers handler `name`.
    pub fn handler(mut self, name: &str, handler: impl Handler) -> Self {
        self.handlers.insert(name.to_string(), Arc::new(handler));
        self
    }

    /// Registers the runner of effects of `kind` (`webhook` is built in).
    pub fn effect_runner(mut self, kind: &str, runner: impl EffectRunner) -> Self {
        self.runners.insert(kind.to_string(), Arc::new(runner));
        self
    }

    /// Starts the engine: reads where the change log stands and starts the ordered feed,
    /// the fan-out, the effect runner and compaction. Needs a Tokio runtime.
    pub async fn build(self) -> Result<Kora, Error> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(Error::bad_request(error.to_string()));
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let last_seq = store.last_seq().await?;
        let history = store.history().await?;
        let clock = Clock::new(self.config.origin)
            .with_max_skew_ms(self.config.max_clock_skew.as_millis() as u64);
        let mut runners = self.runners;
        runners
            .entry("webhook".to_string())
            .or_insert_with(|| Arc::new(WebhookRunner::new()));
        let (feed, fanout) = Feed::new(last_seq + 1);
        let bus = match &self.config.cluster {
            Some(cluster) => Some(crate::cluster::Bus::connect(cluster).await?),
            None => None,
        };
        let indexes = crate::index::Indexes::new(&self.config.indexes);
        let kora = Kora {
            inner: Arc::new(Inner {
                store,
                clock,
                config: self.config,
                interceptors: self.interceptors,
                handlers: self.handlers,
                runners,
                index: RwLock::new(Index::default()),
                feed,
                bus,
                metrics: Metrics::default(),
                effects_due: Notify::new(),
                tasks: std::sync::Mutex::new(Vec::new()),
                delivered: std::sync::atomic::AtomicU64::new(last_seq),
                delivered_changed: Notify::new(),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
                contention: Arc::default(),
                history,
                indexes,
            }),
        };
        kora.spawn(crate::subscriptions::fan_out(kora.clone(), fanout));
        kora.spawn(crate::feed::fill_gaps(kora.clone()));
        if kora.inner.bus.is_some() {
            kora.spawn(crate::cluster::receive(kora.clone()));
        }
        if kora.inner.config.effects.enabled {
            kora.spawn(crate::effects::run(kora.clone()));
        }
        kora.spawn(crate::pipeline::compact_periodically(kora.clone()));
        Ok(kora)
    }
}
