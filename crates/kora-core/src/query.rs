//! Queries (docs/design.md §5): one or more paths, each with optional inclusive key bounds on its
//! children (`min`, `max`), a `limit` (first N children in key order, or last N with
//! `reverse`), and `subscribe`. The answer is the tree holding the selected subtrees.
//!
//! [`Query::select`] evaluates a query on a plain JSON tree in the most direct way; the
//! reference tree and every store must give the same answers (property-tested).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::path::Path;

/// What to read (and possibly follow) at one path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    pub path: Path,
    /// Smallest child key to include (inclusive, compared by bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// Largest child key to include (inclusive, compared by bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    /// At most this many children: the first ones in key order, or the last with `reverse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
    /// Follow changes after answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subscribe: bool,
    /// Order the children by a child value instead of by key ([`crate::order`]): `min` and
    /// `max` then bound keys only among children at exactly `from` and `to`. Stores never
    /// see such a query: the engine reads the children and windows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<crate::order::ByChild>,
}

impl PathQuery {
    /// The whole subtree at `path`.
    pub fn new(path: Path) -> Self {
        PathQuery {
            path,
            ..PathQuery::default()
        }
    }

    /// True when the query narrows the children (any of `min`, `max`, `limit`, `by`).
    pub fn is_ranged(&self) -> bool {
        self.min.is_some() || self.max.is_some() || self.limit.is_some() || self.by.is_some()
    }

    /// True when which children the query holds can change without any of them changing
    /// (a `limit`, or an order by child value): a subscription re-reads it on each change.
    pub fn is_windowed(&self) -> bool {
        self.limit.is_some() || self.by.is_some()
    }

    /// The key bounds a change's part is cut to: none for an order by child value, whose
    /// `min` and `max` are not key ranges.
    pub fn key_range(&self) -> (Option<&str>, Option<&str>) {
        match self.by {
            Some(_) => (None, None),
            None => (self.min.as_deref(), self.max.as_deref()),
        }
    }

    /// The whole subtree at the path, followed as this query is: what is read to window an
    /// order by child value.
    pub fn whole(&self) -> PathQuery {
        PathQuery {
            subscribe: self.subscribe,
            ..PathQuery::new(self.path.clone())
        }
    }

    /// True when `key` lies within `min` and `max`.
    pub fn admits(&self, key: &str) -> bool {
        self.min.as_deref().is_none_or(|m| key >= m) && self.max.as_deref().is_none_or(|m| key <= m)
    }

    /// True when the bounds cannot admit any key (`min > max`).
    pub fn is_empty_range(&self) -> bool {
        matches!((&self.min, &self.max), (Some(min), Some(max)) if min > max)
    }

    /// Applies bounds and limit to the children of a branch, given in key order.
    pub fn pick<'a, T>(
        &self,
        children: impl DoubleEndedIterator<Item = (&'a str, T)>,
    ) -> Vec<(&'a str, T)> {
        let limit = self.limit.unwrap_or(usize::MAX);
        let admitted = children.filter(|(k, _)| self.admits(k));
        let mut picked: Vec<_> = if self.reverse {
            admitted.rev().take(limit).collect()
        } else {
            admitted.take(limit).collect()
        };
        if self.reverse {
            picked.reverse();
        }
        picked
    }
}

/// A query over one or more paths.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub paths: Vec<PathQuery>,
}

impl Query {
    /// A query of whole subtrees at the given paths.
    pub fn of(paths: impl IntoIterator<Item = Path>) -> Self {
        Query {
            paths: paths.into_iter().map(PathQuery::new).collect(),
        }
    }

    /// Answers the query from a plain tree (the root object) by direct filtering.
    pub fn select(&self, tree: &Map<String, Value>) -> Value {
        let mut answer = Map::new();
        for part in &self.paths {
            if let Some(value) = select_one(tree, part) {
                place(&mut answer, part.path.segments(), value);
            }
        }
        Value::Object(answer)
    }
}

fn select_one(tree: &Map<String, Value>, part: &PathQuery) -> Option<Value> {
    let mut node = tree;
    let segments = part.path.segments();
    let Some((last, init)) = segments.split_last() else {
        return Some(narrow(node, part));
    };
    for segment in init {
        node = node.get(segment)?.as_object()?;
    }
    match node.get(last)? {
        Value::Object(children) => {
            Some(narrow(children, part)).filter(|v| v != &Value::Object(Map::new()))
        }
        leaf => Some(leaf.clone()),
    }
}

fn narrow(children: &Map<String, Value>, part: &PathQuery) -> Value {
    if let Some(by) = &part.by {
        let node = Value::Object(children.clone());
        return crate::order::select(part, by, Some(&node)).unwrap_or(Value::Object(Map::new()));
    }
    let picked = part.pick(children.iter().map(|(k, v)| (k.as_str(), v)));
    Value::Object(
        picked
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Places `value` at `path` in an answer, uniting it with what other paths placed there.
pub fn place<S: AsRef<str>>(answer: &mut Map<String, Value>, path: &[S], value: Value) {
    match path.split_first() {
        None => {
            if let Value::Object(children) = value {
                unite(answer, children);
            }
        }
        Some((first, rest)) => {
            let slot = answer
                .entry(first.as_ref().to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match slot {
                Value::Object(child) if !rest.is_empty() || value.is_object() => {
                    place(child, rest, value)
                }
                _ => *slot = value,
            }
        }
    }
}

fn unite(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (key, value) in src {
        match (dst.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(sub)) => unite(existing, sub),
            (_, value) => {
                dst.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tree() -> Map<String, Value> {
        json!({"l": {"a": 1, "b": 2, "c": 3, "d": 4}, "x": {"y": true}, "leaf": 5})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn q(path: &str) -> PathQuery {
        PathQuery::new(Path::parse(path).unwrap())
    }

    #[test]
    fn bounds_are_inclusive_and_limit_takes_the_first() {
        let part = PathQuery {
            min: Some("b".into()),
            max: Some("d".into()),
            limit: Some(2),
            ..q("l")
        };
        let answer = Query { paths: vec![part] }.select(&tree());
        assert_eq!(answer, json!({"l": {"b": 2, "c": 3}}));
    }

    #[test]
    fn reverse_limit_takes_the_last() {
        let part = PathQuery {
            limit: Some(2),
            reverse: true,
            ..q("l")
        };
        assert_eq!(
            Query { paths: vec![part] }.select(&tree()),
            json!({"l": {"c": 3, "d": 4}})
        );
    }

    #[test]
    fn several_paths_unite_and_missing_ones_add_nothing() {
        let answer = Query {
            paths: vec![q("x"), q("leaf"), q("nope/deeper"), q("leaf/under")],
        }
        .select(&tree());
        assert_eq!(answer, json!({"x": {"y": true}, "leaf": 5}));
    }

    #[test]
    fn min_above_max_selects_nothing() {
        let part = PathQuery {
            min: Some("z".into()),
            max: Some("a".into()),
            ..q("l")
        };
        assert_eq!(Query { paths: vec![part] }.select(&tree()), json!({}));
    }

    #[test]
    fn unknown_query_fields_are_refused() {
        let bad = serde_json::from_value::<PathQuery>(json!({"path": "a", "limt": 3}));
        assert!(bad.is_err());
    }
}
