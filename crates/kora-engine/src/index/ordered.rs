//! The pure part of an index: keys ordered by a child value, and windows over them.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;

use serde_json::Value;

use super::Order;

/// A position among keys: before every key, a key, after every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    First,
    Name(String),
    Last,
}

/// One child's place in an index.
struct Entry<O> {
    value: Option<Value>,
    key: Key,
    order: PhantomData<fn() -> O>,
}

impl<O> Entry<O> {
    fn new(value: Option<Value>, key: Key) -> Self {
        Entry {
            value,
            key,
            order: PhantomData,
        }
    }

    fn name(&self) -> &str {
        match &self.key {
            Key::Name(name) => name,
            Key::First | Key::Last => "",
        }
    }
}

impl<O: Order> Ord for Entry<O> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        O::values(self.value.as_ref(), other.value.as_ref()).then_with(|| {
            match (&self.key, &other.key) {
                (Key::Name(a), Key::Name(b)) => O::keys(a, b),
                (Key::First, Key::First) | (Key::Last, Key::Last) => Equal,
                (Key::First, _) | (_, Key::Last) => Less,
                (_, Key::First) | (Key::Last, _) => Greater,
            }
        })
    }
}

impl<O: Order> PartialOrd for Entry<O> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<O: Order> PartialEq for Entry<O> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<O: Order> Eq for Entry<O> {}

/// Where a window starts or ends: the value, and the key among children holding it.
#[derive(Debug, Clone)]
pub struct Seek {
    pub value: Value,
    pub key: Key,
}

/// A window over an index: from `start` to `end` (inclusive positions, to seek to; `admits`
/// then applies the exact bounds), the first `limit` of them, or the last with `from_end`.
pub struct Span<'a> {
    pub start: Option<Seek>,
    pub end: Option<Seek>,
    pub limit: Option<usize>,
    pub from_end: bool,
    /// Whether a child (key, value at the ordering path) lies within the bounds.
    pub admits: &'a dyn Fn(&str, Option<&Value>) -> bool,
}

/// Keys ordered by the value of one child path.
pub struct Ordered<O> {
    child: Vec<String>,
    entries: BTreeSet<Entry<O>>,
    values: HashMap<String, Option<Value>>,
}

impl<O: Order> Ordered<O> {
    pub fn new(child: Vec<String>) -> Self {
        Ordered {
            child,
            entries: BTreeSet::new(),
            values: HashMap::new(),
        }
    }

    /// Replaces everything with the children of `node`.
    pub fn rebuild(&mut self, node: Option<&Value>) {
        self.entries.clear();
        self.values.clear();
        let Some(node) = node else {
            return;
        };
        for (key, child) in O::children(node) {
            let value = O::child_at(child, &self.child).cloned();
            self.put(key.into_owned(), value);
        }
    }

    /// Child `key` exists with `value` at the indexed path (`None`: nothing there).
    pub fn put(&mut self, key: String, value: Option<Value>) {
        self.remove(&key);
        self.entries
            .insert(Entry::new(value.clone(), Key::Name(key.clone())));
        self.values.insert(key, value);
    }

    /// Child `key` no longer exists.
    pub fn remove(&mut self, key: &str) {
        if let Some(old) = self.values.remove(key) {
            self.entries
                .remove(&Entry::new(old, Key::Name(key.to_string())));
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

    /// The keys of `span`'s window, in index order.
    pub fn window(&self, span: &Span) -> Vec<String> {
        let in_range = |e: &&Entry<O>| (span.admits)(e.name(), e.value.as_ref());
        let count = span.limit.unwrap_or(usize::MAX);
        let seek = |s: &Option<Seek>| match s {
            Some(s) => Bound::Included(Entry::new(Some(s.value.clone()), s.key.clone())),
            None => Bound::Unbounded,
        };
        if !span.from_end {
            self.entries
                .range((seek(&span.start), Bound::Unbounded))
                .skip_while(|e| !in_range(e))
                .take_while(in_range)
                .take(count)
                .map(|e| e.name().to_string())
                .collect()
        } else {
            let mut keys: Vec<String> = self
                .entries
                .range((Bound::Unbounded, seek(&span.end)))
                .rev()
                .skip_while(|e| !in_range(e))
                .take_while(in_range)
                .take(count)
                .map(|e| e.name().to_string())
                .collect();
            keys.reverse();
            keys
        }
    }
}

#[cfg(test)]
mod tests {
    use kora_core::order::{self, ByChild};
    use kora_core::PathQuery;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::Ordered;
    use crate::index::window::span;
    use crate::index::Natural;

    fn score() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(json!(null))),
            any::<bool>().prop_map(|b| Some(json!(b))),
            (-3i64..4).prop_map(|n| Some(json!(n))),
            prop_oneof![Just(0.5f64), Just(-1.5)].prop_map(|n| Some(json!(n))),
            "[ab]{0,2}".prop_map(|s| Some(json!(s))),
            Just(Some(json!({"x": 1}))),
        ]
    }

    fn child() -> impl Strategy<Value = Value> {
        score().prop_map(|s| match s {
            Some(s) => json!({"s": s, "n": 1}),
            None => json!({"n": 1}),
        })
    }

    fn node() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-f]{1,2}", child(), 0..12)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    fn query() -> impl Strategy<Value = PathQuery> {
        (
            score(),
            score(),
            prop::option::of("[a-f]{1,2}"),
            prop::option::of("[a-f]{1,2}"),
            prop::option::of(0usize..5),
            any::<bool>(),
        )
            .prop_map(|(from, to, min, max, limit, reverse)| {
                let by = ByChild {
                    child: "s".into(),
                    from: from.clone(),
                    to: to.clone(),
                };
                PathQuery {
                    min: min.filter(|_| from.is_some()),
                    max: max.filter(|_| to.is_some()),
                    limit,
                    reverse,
                    by: Some(by),
                    ..PathQuery::default()
                }
            })
    }

    fn index_window(ordered: &Ordered<Natural>, query: &PathQuery) -> Vec<String> {
        let by = query.by.as_ref().expect("ordered by a child");
        let admits = |key: &str, value: Option<&Value>| order::admits(query, by, key, value);
        ordered.window(&span(query, by, &admits))
    }

    proptest! {
        /// The index finds exactly the window that sorting the whole node finds.
        #[test]
        fn the_index_window_is_the_sorted_window(node in node(), query in query()) {
            let mut ordered = Ordered::<Natural>::new(vec!["s".into()]);
            ordered.rebuild(Some(&node));
            let by = query.by.clone().expect("ordered by a child");
            prop_assert_eq!(index_window(&ordered, &query), order::window(&query, &by, Some(&node)));
        }

        /// Changing children one at a time leaves the index as building it afresh would.
        #[test]
        fn changes_keep_the_index_as_a_rebuild_would(
            node in node(),
            changes in prop::collection::vec(("[a-f]{1,2}", prop::option::of(child())), 0..10),
            query in query(),
        ) {
            let mut ordered = Ordered::<Natural>::new(vec!["s".into()]);
            ordered.rebuild(Some(&node));
            let mut node = node.as_object().cloned().unwrap_or_else(Map::new);
            for (key, child) in changes {
                match child {
                    Some(child) => {
                        ordered.put(key.clone(), child.get("s").cloned());
                        node.insert(key, child);
                    }
                    None => {
                        ordered.remove(&key);
                        node.remove(&key);
                    }
                }
            }
            let by = query.by.clone().expect("ordered by a child");
            let node = Value::Object(node);
            prop_assert_eq!(index_window(&ordered, &query), order::window(&query, &by, Some(&node)));
        }
    }
}
