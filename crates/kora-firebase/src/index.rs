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

use kora_core::Path;
use kora_engine::index::{self as engine, Key, Seek, Span};
use kora_engine::Error;
use serde_json::{Map, Value};

use super::order::{FirebaseOrder, MAX_NAME, MIN_NAME};
use super::query::{FbQuery, Index};

/// Keys in Firebase's order of one child value.
pub type Ordered = engine::Ordered<FirebaseOrder>;
/// An index in use, shared by the listens and reads that need it.
pub type SharedIndex = engine::SharedIndex<FirebaseOrder>;
/// The indexes `index_on` declares, and those built so far.
pub type Indexes = engine::Indexes<FirebaseOrder>;

/// The child path `query` orders by, when an index can serve it.
pub fn indexed_child(query: &FbQuery) -> Option<&[String]> {
    match &query.index {
        Index::Child(child) => Some(child),
        _ => None,
    }
}

/// The keys of `query`'s window in `ordered`, which orders by `query`'s child.
pub fn window(ordered: &Ordered, query: &FbQuery) -> Vec<String> {
    let child = ordered.child().to_vec();
    let stub = |value: Option<&Value>| {
        let mut node = value.cloned().unwrap_or(Value::Object(Map::new()));
        for segment in child.iter().rev() {
            let mut map = Map::new();
            map.insert(segment.clone(), node);
            node = Value::Object(map);
        }
        node
    };
    let admits = |key: &str, value: Option<&Value>| query.matches(key, &stub(value));
    let limit = query.limit.as_ref();
    let span = Span {
        start: seek(query.start.as_ref(), MIN_NAME, MAX_NAME),
        end: seek(query.end.as_ref(), MAX_NAME, MIN_NAME),
        limit: limit.map(|l| l.count),
        from_end: limit.is_some_and(|l| !l.from_left),
        admits: &admits,
    };
    ordered.window(&span)
}

/// Where a bound seeks to: its value, and its key (or `inclusive_name` / `exclusive_name`
/// when it names none). The seek is inclusive; `admits` then applies the exact bound.
fn seek(
    bound: Option<&super::query::Bound>,
    inclusive_name: &str,
    exclusive_name: &str,
) -> Option<Seek> {
    let bound = bound?;
    let name = match (&bound.key, bound.inclusive) {
        (Some(key), _) => key.clone(),
        (None, true) => inclusive_name.to_string(),
        (None, false) => exclusive_name.to_string(),
    };
    Some(Seek {
        value: bound.value.clone(),
        key: Key::Name(name),
    })
}

/// A one-time read of `query` at `path` through its index, as `ctx` may read it: `None` when
/// no index is declared for it (the caller then filters the whole node).
pub async fn read_indexed(
    state: &crate::FirebaseState,
    ctx: &kora_engine::Context,
    path: &Path,
    query: &FbQuery,
) -> Result<Option<Option<Value>>, Error> {
    let Some(child) = indexed_child(query) else {
        return Ok(None);
    };
    let Some(index) = state.firebase.indexes.get(&state.kora, path, child).await? else {
        return Ok(None);
    };
    let keys = {
        let mut index = index.lock().await;
        index.catch_up().await;
        window(index.ordered(), query)
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
    use crate::order::child_at;
    use crate::query::tests::{child_strategy, node_strategy, query_strategy};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

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
            prop_assert_eq!(window(&ordered, &query), query.window_keys(Some(&node)));
        }

        /// Ordering by the child's own value (`orderByValue`) works the same way.
        #[test]
        fn the_value_order_window_is_the_filtered_window(node in node_strategy(), query in query_strategy()) {
            let mut query = query;
            query.index = Index::Value;
            let mut ordered = Ordered::new(Vec::new());
            ordered.rebuild(Some(&node));
            prop_assert_eq!(window(&ordered, &query), query.window_keys(Some(&node)));
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
            prop_assert_eq!(window(&ordered, &query), query.window_keys(Some(&node)));
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
        let query = |child: &str| child.split('/').map(String::from).collect::<Vec<_>>();
        let path = |t: &str| Path::parse(t).unwrap();
        assert!(indexes.declared_for(&path("scores"), &query("score")));
        assert!(!indexes.declared_for(&path("scores"), &query("other")));
        assert!(indexes.declared_for(&path("users/ada/posts"), &query("meta/date")));
        assert!(!indexes.declared_for(&path("users/ada"), &query("meta/date")));
        let no_index = FbQuery::default();
        assert!(indexed_child(&no_index).is_none());
    }
}
