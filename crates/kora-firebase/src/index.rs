//! Indexes for `orderByChild` queries, declared like Firebase's `.indexOn`:
//!
//! ```toml
//! [firebase.index_on]
//! "scores" = ["score"]
//! "users/$uid/posts" = ["meta/date"]
//! ```
//!
//! An index keeps, for one collection and one child path, every child's key ordered by the
//! value at that path (Firebase's order: value, then key). It is built with one read of the
//! collection when a query first needs it, then kept current from the engine's change feed
//! (its own subscription to the collection). A limited or ranged query on an indexed child
//! then finds its window in the index — `O(log n + window)` — and reads only the window's
//! children, instead of the whole collection on every change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound as Edge;
use std::sync::Arc;
use std::time::Duration;

use kora_core::{Path, PathQuery};
use kora_engine::{Error, Initial, Kora, Push, Session};
use kora_store::Seq;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::changes::overwrites;
use super::order::{child_at, children, name_compare, value_compare, MAX_NAME, MIN_NAME};
use super::query::{FbQuery, Index};

/// How often an index takes the changes queued for it even when nobody queries it, so its
/// queue never overflows (an overflow costs a rebuild).
pub const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// One child's place in an index.
#[derive(Debug, Clone)]
struct Entry {
    value: Option<Value>,
    key: String,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        value_compare(self.value.as_ref(), other.value.as_ref())
            .then_with(|| name_compare(&self.key, &other.key))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Entry {}

/// Keys ordered by the value of one child path (the pure part of an index).
#[derive(Debug, Default)]
pub struct Ordered {
    child: Vec<String>,
    entries: BTreeSet<Entry>,
    values: HashMap<String, Option<Value>>,
}

impl Ordered {
    pub fn new(child: Vec<String>) -> Self {
        Ordered {
            child,
            ..Ordered::default()
        }
    }

    /// Replaces everything with the children of `node`.
    pub fn rebuild(&mut self, node: Option<&Value>) {
        self.entries.clear();
        self.values.clear();
        let Some(node) = node else {
            return;
        };
        for (key, child) in children(node) {
            let value = child_at(child, &self.child).cloned();
            self.put(key.into_owned(), value);
        }
    }

    /// Child `key` exists with `value` at the indexed path (`None`: nothing there).
    pub fn put(&mut self, key: String, value: Option<Value>) {
        self.remove(&key);
        self.entries.insert(Entry {
            value: value.clone(),
            key: key.clone(),
        });
        self.values.insert(key, value);
    }

    /// Child `key` no longer exists.
    pub fn remove(&mut self, key: &str) {
        if let Some(old) = self.values.remove(key) {
            self.entries.remove(&Entry {
                value: old,
                key: key.to_string(),
            });
        }
    }

    /// The child path this orders by (empty: the child's own value).
    pub fn child(&self) -> &[String] {
        &self.child
    }

    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The keys of `query`'s window, in index order. `query` orders by this index's child.
    pub fn window(&self, query: &FbQuery) -> Vec<String> {
        let stub = |value: &Option<Value>| {
            let mut node = value.clone().unwrap_or(Value::Object(Map::new()));
            for segment in self.child.iter().rev() {
                let mut map = Map::new();
                map.insert(segment.clone(), node);
                node = Value::Object(map);
            }
            node
        };
        let in_range = |e: &Entry| query.matches(&e.key, &stub(&e.value));
        let limit = query.limit.as_ref();
        let count = limit.map_or(usize::MAX, |l| l.count);
        let from_left = limit.is_none_or(|l| l.from_left);
        let keys: Vec<String> = if from_left {
            let start = edge(query.start.as_ref(), MIN_NAME, MAX_NAME);
            self.entries
                .range((start, Edge::Unbounded))
                .skip_while(|e| !in_range(e))
                .take_while(|e| in_range(e))
                .take(count)
                .map(|e| e.key.clone())
                .collect()
        } else {
            let end = edge(query.end.as_ref(), MAX_NAME, MIN_NAME);
            let mut keys: Vec<String> = self
                .entries
                .range((Edge::Unbounded, end))
                .rev()
                .skip_while(|e| !in_range(e))
                .take_while(|e| in_range(e))
                .take(count)
                .map(|e| e.key.clone())
                .collect();
            keys.reverse();
            keys
        };
        keys
    }
}

/// The children of one collection, ordered by one child path, kept current.
pub struct ChildIndex {
    collection: Path,
    child: Vec<String>,
    ordered: Ordered,
    session: Session,
    kora: Kora,
    /// The last change applied.
    pub seq: Seq,
}

impl ChildIndex {
    /// Builds the index with one read of the collection, and follows it from then on.
    pub async fn build(kora: &Kora, collection: Path, child: Vec<String>) -> Result<Self, Error> {
        let mut session = kora.session(kora.system_context());
        let initial = session
            .subscribe("index", PathQuery::new(collection.clone()), None)
            .await?;
        let (seq, value) = match initial {
            Initial::Snapshot { seq, value } | Initial::Reset { seq, value } => (seq, value),
            Initial::Replay { seq, .. } => (seq, None),
        };
        let mut index = ChildIndex {
            collection,
            ordered: Ordered::new(child.clone()),
            child,
            session,
            kora: kora.clone(),
            seq,
        };
        index.rebuild(value.as_ref());
        Ok(index)
    }

    fn rebuild(&mut self, node: Option<&Value>) {
        self.ordered.rebuild(node);
    }

    fn put(&mut self, key: String, value: Option<Value>) {
        self.ordered.put(key, value);
    }

    fn remove(&mut self, key: &str) {
        self.ordered.remove(key);
    }

    /// The keys of `query`'s window, in index order.
    pub fn window(&self, query: &FbQuery) -> Vec<String> {
        self.ordered.window(query)
    }

    /// Applies every change queued for the index.
    pub async fn catch_up(&mut self) {
        for push in self.session.process_queued(usize::MAX).await {
            match push {
                Push::Change { seq, mutation, .. } => {
                    self.apply(&mutation).await;
                    self.seq = self.seq.max(seq);
                }
                Push::Reset { seq, value, .. } => {
                    self.rebuild(value.as_ref());
                    self.seq = seq;
                }
                Push::Ended { .. } => {}
            }
        }
    }

    async fn apply(&mut self, mutation: &kora_core::Mutation) {
        let base = self.collection.segments().to_vec();
        for o in overwrites(mutation) {
            if o.path.len() <= base.len() {
                // The collection itself (or an ancestor) was replaced.
                let mut node = o.value.as_ref();
                for key in base.get(o.path.len()..).unwrap_or_default() {
                    node = node.and_then(|n| n.get(key));
                }
                let node = node.cloned();
                self.rebuild(node.as_ref());
                continue;
            }
            let key = o.path[base.len()].clone();
            let rest = &o.path[base.len() + 1..];
            if self.child.starts_with(rest) {
                // The indexed value itself, or a node holding it, was replaced.
                let below = &self.child[rest.len()..];
                let value = o.value.as_ref().and_then(|v| child_at(v, below)).cloned();
                if rest.is_empty() && o.value.is_none() {
                    self.remove(&key);
                } else if value.is_some() || self.exists(&key, o.value.is_some()).await {
                    self.put(key, value);
                } else {
                    self.remove(&key);
                }
            } else if rest.starts_with(&self.child) {
                // Something inside the indexed value changed: read what it is now.
                let value = self.read(&key, &self.child.clone()).await;
                self.put(key, value);
            } else if o.value.is_some() {
                if !self.ordered.contains(&key) {
                    let value = self.read(&key, &self.child.clone()).await;
                    self.put(key, value);
                }
            } else if !self.exists(&key, false).await {
                self.remove(&key);
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

/// The edge of a range in the index: `bound`'s post (its key, or `inclusive_name` /
/// `exclusive_name` when it names none).
fn edge(
    bound: Option<&super::query::Bound>,
    inclusive_name: &str,
    exclusive_name: &str,
) -> Edge<Entry> {
    let Some(bound) = bound else {
        return Edge::Unbounded;
    };
    let name = match (&bound.key, bound.inclusive) {
        (Some(key), _) => key.clone(),
        (None, true) => inclusive_name.to_string(),
        (None, false) => exclusive_name.to_string(),
    };
    let entry = Entry {
        value: Some(bound.value.clone()),
        key: name,
    };
    // The range is widened to inclusive; `in_range` then applies the exact bound.
    Edge::Included(entry)
}

/// An index in use, shared by the listens and reads that need it.
pub type SharedIndex = Arc<Mutex<ChildIndex>>;

/// The declared indexes, and those built so far (by collection and child path).
#[derive(Default)]
pub struct Indexes {
    declared: Vec<(Vec<String>, Vec<String>)>,
    open: Mutex<HashMap<(Path, Vec<String>), SharedIndex>>,
}

impl Indexes {
    /// The indexes `index_on` declares: collection pattern (`$name` or `*` for any key) →
    /// child paths (`a/b`).
    pub fn new(index_on: &BTreeMap<String, Vec<String>>) -> Self {
        let split = |text: &str| -> Vec<String> {
            text.split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let declared = index_on
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

    /// Whether an index is declared for `query` at `collection`.
    pub fn declared_for(&self, collection: &Path, query: &FbQuery) -> bool {
        let Index::Child(child) = &query.index else {
            return false;
        };
        self.declared.iter().any(|(pattern, c)| {
            c == child
                && pattern.len() == collection.depth()
                && pattern
                    .iter()
                    .zip(collection.segments())
                    .all(|(p, s)| p == s || p == "*" || p.starts_with('$'))
        })
    }

    /// The index for `query` at `collection`, built on first use; `None` when none is declared.
    pub async fn get(
        &self,
        kora: &Kora,
        collection: &Path,
        query: &FbQuery,
    ) -> Result<Option<SharedIndex>, Error> {
        if !self.declared_for(collection, query) {
            return Ok(None);
        }
        let Index::Child(child) = &query.index else {
            return Ok(None);
        };
        let mut open = self.open.lock().await;
        let id = (collection.clone(), child.clone());
        if let Some(index) = open.get(&id) {
            return Ok(Some(index.clone()));
        }
        let index = Arc::new(Mutex::new(
            ChildIndex::build(kora, collection.clone(), child.clone()).await?,
        ));
        tokio::spawn(drain(Arc::downgrade(&index)));
        open.insert(id, index.clone());
        Ok(Some(index))
    }
}

/// Keeps an index's queue short while it lives.
async fn drain(index: std::sync::Weak<Mutex<ChildIndex>>) {
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    loop {
        tick.tick().await;
        let Some(index) = index.upgrade() else {
            return;
        };
        index.lock().await.catch_up().await;
    }
}

/// A one-time read of `query` at `path` through its index, as `ctx` may read it: `None` when
/// no index is declared for it (the caller then filters the whole node).
pub async fn read_indexed(
    state: &crate::FirebaseState,
    ctx: &kora_engine::Context,
    path: &Path,
    query: &FbQuery,
) -> Result<Option<Option<Value>>, Error> {
    let Some(index) = state.firebase.indexes.get(&state.kora, path, query).await? else {
        return Ok(None);
    };
    let keys = {
        let mut index = index.lock().await;
        index.catch_up().await;
        index.window(query)
    };
    let mut paths = Vec::with_capacity(keys.len());
    for key in &keys {
        paths.push(path.child(key.as_str())?);
    }
    if paths.is_empty() {
        return Ok(Some(None));
    }
    let answer = state.kora.query(ctx, &kora_core::Query::of(paths)).await?;
    let window: Map<String, Value> = keys
        .into_iter()
        .zip(answer.values)
        .filter_map(|(key, value)| Some((key, value?)))
        .collect();
    Ok(Some((!window.is_empty()).then_some(Value::Object(window))))
}

/// A one-time read of `query` (if any) at `path`, through its index when one is declared.
pub async fn read(
    state: &crate::FirebaseState,
    ctx: &kora_engine::Context,
    path: &kora_core::Path,
    query: Option<&FbQuery>,
) -> Result<Option<Value>, Error> {
    if let Some(query) = query {
        if let Some(value) = read_indexed(state, ctx, path, query).await? {
            return Ok(value);
        }
    }
    let answer = state
        .kora
        .query(ctx, &kora_core::Query::of([path.clone()]))
        .await?;
    let value = answer.values.into_iter().next().flatten();
    Ok(match query {
        Some(query) => query.apply(value.as_ref()),
        None => value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::tests::{child_strategy, node_strategy, query_strategy};
    use proptest::prelude::*;

    fn by_a(mut query: FbQuery) -> FbQuery {
        query.index = Index::Child(vec!["a".into()]);
        query
    }

    proptest! {
        /// The index finds exactly the window that filtering the whole node finds.
        #[test]
        fn the_index_window_is_the_filtered_window(node in node_strategy(), query in query_strategy()) {
            let query = by_a(query);
            let mut ordered = Ordered::new(vec!["a".into()]);
            ordered.rebuild(Some(&node));
            prop_assert_eq!(ordered.window(&query), query.window_keys(Some(&node)));
        }

        /// Ordering by the child's own value (`orderByValue`) works the same way.
        #[test]
        fn the_value_order_window_is_the_filtered_window(node in node_strategy(), query in query_strategy()) {
            let mut query = query;
            query.index = Index::Value;
            let mut ordered = Ordered::new(Vec::new());
            ordered.rebuild(Some(&node));
            prop_assert_eq!(ordered.window(&query), query.window_keys(Some(&node)));
        }

        /// Changing children one at a time leaves the index as building it afresh would.
        #[test]
        fn changes_keep_the_index_as_a_rebuild_would(
            node in node_strategy(),
            changes in prop::collection::vec(("(-?[0-9]{1,2}|[a-d]{1,2})", prop::option::of(child_strategy())), 0..10),
            query in query_strategy(),
        ) {
            let query = by_a(query);
            let mut ordered = Ordered::new(vec!["a".into()]);
            ordered.rebuild(Some(&node));
            let mut node = node;
            for (key, child) in changes {
                let map = node.as_object_mut().expect("an object");
                let child = child.and_then(crate::node::normalize);
                match child {
                    Some(child) => {
                        ordered.put(key.clone(), child_at(&child, &["a".to_string()]).cloned());
                        map.insert(key, child);
                    }
                    None => {
                        ordered.remove(&key);
                        map.remove(&key);
                    }
                }
            }
            prop_assert_eq!(ordered.window(&query), query.window_keys(Some(&node)));
        }
    }

    #[test]
    fn declarations_match_collections_with_wildcards() {
        let index_on = BTreeMap::from([
            ("scores".to_string(), vec!["score".to_string()]),
            (
                "users/$uid/posts".to_string(),
                vec!["meta/date".to_string()],
            ),
        ]);
        let indexes = Indexes::new(&index_on);
        let query = |child: &str| FbQuery {
            index: Index::Child(child.split('/').map(String::from).collect()),
            ..FbQuery::default()
        };
        let path = |t: &str| Path::parse(t).unwrap();
        assert!(indexes.declared_for(&path("scores"), &query("score")));
        assert!(!indexes.declared_for(&path("scores"), &query("other")));
        assert!(indexes.declared_for(&path("users/ada/posts"), &query("meta/date")));
        assert!(!indexes.declared_for(&path("users/ada"), &query("meta/date")));
        assert!(!indexes.declared_for(&path("scores"), &FbQuery::default()));
    }
}
