//! Indexes kept current: each follows its collection through a subscription of its own,
//! built with one read when a query first needs it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kora_core::{Path, PathQuery};
use kora_store::Seq;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{overwrites, Order, Ordered, Span};
use crate::{Error, Initial, Kora, Push, Session};

/// How often an index takes the changes queued for it even when nobody queries it, so its
/// queue never overflows (an overflow costs a rebuild).
pub const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// The children of one collection, ordered by one child path, kept current.
pub struct ChildIndex<O> {
    collection: Path,
    child: Vec<String>,
    ordered: Ordered<O>,
    session: Session,
    kora: Kora,
    /// The last change applied.
    pub seq: Seq,
}

impl<O: Order> ChildIndex<O> {
    /// Builds the index with one read of the collection, and follows it from then on.
    /// Boxed: the subscription may read a window, which may build an index, so an unboxed
    /// future would contain itself.
    pub fn build(
        kora: &Kora,
        collection: Path,
        child: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<Self, Error>> + Send + '_>> {
        Box::pin(async move {
            let mut session = kora.session(kora.system_context());
            let initial = session
                .subscribe("index", PathQuery::new(collection.clone()), None)
                .await?;
            let (seq, value) = match initial {
                Initial::Snapshot { seq, value } | Initial::Reset { seq, value } => (seq, value),
                Initial::Replay { seq, .. } => (seq, None),
            };
            let mut ordered = Ordered::new(child.clone());
            ordered.rebuild(value.as_ref());
            Ok(ChildIndex {
                collection,
                child,
                ordered,
                session,
                kora: kora.clone(),
                seq,
            })
        })
    }

    /// The keys of `span`'s window, in index order.
    pub fn window(&self, span: &Span) -> Vec<String> {
        self.ordered.window(span)
    }

    /// The ordered keys as they are now.
    pub fn ordered(&self) -> &Ordered<O> {
        &self.ordered
    }

    /// Applies every change queued for the index. Boxed, as [`ChildIndex::build`] is.
    pub fn catch_up(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            for push in self.session.process_queued(usize::MAX).await {
                match push {
                    Push::Change { seq, mutation, .. } => {
                        self.apply(&mutation).await;
                        self.seq = self.seq.max(seq);
                    }
                    Push::Reset { seq, value, .. } => {
                        self.ordered.rebuild(value.as_ref());
                        self.seq = seq;
                    }
                    Push::Ended { .. } => {}
                }
            }
        })
    }

    async fn apply(&mut self, mutation: &kora_core::Mutation) {
        let base = self.collection.segments().to_vec();
        for o in overwrites::<O>(mutation) {
            if o.path.len() <= base.len() {
                // The collection itself (or an ancestor) was replaced.
                let mut node = o.value.as_ref();
                for key in base.get(o.path.len()..).unwrap_or_default() {
                    node = node.and_then(|n| n.get(key));
                }
                let node = node.cloned();
                self.ordered.rebuild(node.as_ref());
                continue;
            }
            let key = o.path[base.len()].clone();
            let rest = &o.path[base.len() + 1..];
            if self.child.starts_with(rest) {
                // The indexed value itself, or a node holding it, was replaced.
                let below = &self.child[rest.len()..];
                let value = o
                    .value
                    .as_ref()
                    .and_then(|v| O::child_at(v, below))
                    .cloned();
                if rest.is_empty() && o.value.is_none() {
                    self.ordered.remove(&key);
                } else if value.is_some() || self.exists(&key, o.value.is_some()).await {
                    self.ordered.put(key, value);
                } else {
                    self.ordered.remove(&key);
                }
            } else if rest.starts_with(&self.child) {
                // Something inside the indexed value changed: read what it is now.
                let value = self.read(&key, &self.child).await;
                self.ordered.put(key, value);
            } else if o.value.is_some() {
                if !self.ordered.contains(&key) {
                    let value = self.read(&key, &self.child).await;
                    self.ordered.put(key, value);
                }
            } else if !self.exists(&key, false).await {
                self.ordered.remove(&key);
            }
        }
    }

    /// Whether child `key` exists (`known` says it surely does).
    async fn exists(&self, key: &str, known: bool) -> bool {
        known || self.read(key, &[]).await.is_some()
    }

    async fn read(&self, key: &str, below: &[String]) -> Option<Value> {
        let mut path = self.collection.child(key).ok()?;
        for segment in below {
            path = path.child(segment.as_str()).ok()?;
        }
        self.kora.read_value(&path).await.ok().flatten()
    }
}

/// An index in use, shared by the queries and subscriptions that need it.
pub type SharedIndex<O> = Arc<Mutex<ChildIndex<O>>>;

/// Declared indexes: collection pattern (`$name` or `*` for any key) → child paths (`a/b`),
/// as kora.toml's `[indexes]` and Firebase's `index_on` write them.
pub type Declared = BTreeMap<String, Vec<String>>;

/// An index's collection and child path.
type IndexId = (Path, Vec<String>);

/// The declared indexes, and those built so far (by collection and child path).
pub struct Indexes<O> {
    declared: Vec<(Vec<String>, Vec<String>)>,
    open: Mutex<HashMap<IndexId, SharedIndex<O>>>,
}

impl<O: Order> Default for Indexes<O> {
    fn default() -> Self {
        Indexes::new(&Declared::new())
    }
}

fn split(text: &str) -> Vec<String> {
    text.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl<O: Order> Indexes<O> {
    pub fn new(declared: &Declared) -> Self {
        let declared = declared
            .iter()
            .flat_map(|(pattern, children)| {
                children.iter().map(move |c| (split(pattern), split(c)))
            })
            .collect();
        Indexes {
            declared,
            open: Mutex::default(),
        }
    }

    /// Whether an index on `child` is declared for `collection`.
    pub fn declared_for(&self, collection: &Path, child: &[String]) -> bool {
        self.declared.iter().any(|(pattern, c)| {
            c == child
                && pattern.len() == collection.depth()
                && pattern
                    .iter()
                    .zip(collection.segments())
                    .all(|(p, s)| p == s || p == "*" || p.starts_with('$'))
        })
    }

    /// Drops every open index (their sessions hold the engine).
    pub async fn close(&self) {
        self.open.lock().await.clear();
    }

    /// The index on `child` at `collection`, built on first use; `None` when none is declared.
    pub async fn get(
        &self,
        kora: &Kora,
        collection: &Path,
        child: &[String],
    ) -> Result<Option<SharedIndex<O>>, Error> {
        if !self.declared_for(collection, child) {
            return Ok(None);
        }
        let mut open = self.open.lock().await;
        let id = (collection.clone(), child.to_vec());
        if let Some(index) = open.get(&id) {
            return Ok(Some(index.clone()));
        }
        let index = Arc::new(Mutex::new(
            ChildIndex::build(kora, collection.clone(), child.to_vec()).await?,
        ));
        tokio::spawn(drain(Arc::downgrade(&index)));
        open.insert(id, index.clone());
        Ok(Some(index))
    }
}

/// Keeps an index's queue short while it lives. Boxed: reading a window builds indexes,
/// and an index's session reads windows, so an unboxed future would contain itself.
fn drain<O: Order>(index: Weak<Mutex<ChildIndex<O>>>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        loop {
            tick.tick().await;
            let Some(index) = index.upgrade() else {
                return;
            };
            index.lock().await.catch_up().await;
        }
    })
}
