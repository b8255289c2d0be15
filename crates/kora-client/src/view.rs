//! Pure functions behind the cache: moving a server change into the cache's coordinates,
//! laying queued writes over stored data, and deciding which subscription answers a query.

use kora_core::query::place;
use kora_core::{Limits, Mutation, Path, PathQuery, Value};
use serde_json::Map;

use crate::error::ClientError;

/// Limits for paths inside the cache: a subscription's data sits one segment deeper than on
/// the server.
pub fn cache_limits() -> Limits {
    Limits {
        max_depth: kora_core::path::MAX_PATH_DEPTH + 1,
    }
}

/// The part of `change` at or beneath `from` (deletes of `from`'s ancestors included, as a
/// delete of `from`), moved to `to`.
pub fn rebase(change: &Mutation, from: &Path, to: &Path) -> Result<Mutation, ClientError> {
    let part = change.restrict(from).to_json();
    let mut out = Map::new();
    for field in ["merge", "delete"] {
        let mut node = part.get(field);
        for segment in from.segments() {
            node = node.and_then(|n| n.get(segment));
        }
        let mut tree = Map::new();
        if let Some(node) = node {
            place(&mut tree, to.segments(), node.clone());
        }
        out.insert(field.to_string(), Value::Object(tree));
    }
    Ok(Mutation::from_json_with(
        &Value::Object(out),
        &cache_limits(),
    )?)
}

/// `stored` (the value at `query.path`) with `writes` applied in order, then the query's
/// bounds and limit.
pub fn overlay<'a>(
    stored: Option<Value>,
    query: &PathQuery,
    writes: impl IntoIterator<Item = &'a Mutation>,
) -> Option<Value> {
    let segments = query.path.segments();
    let mut tree = Map::new();
    if let Some(value) = stored {
        place(&mut tree, segments, value);
    }
    for write in writes {
        write
            .restrict_range(&query.path, query.min.as_deref(), query.max.as_deref())
            .apply_to(&mut tree);
    }
    let mut node = Some(Value::Object(tree));
    for segment in segments {
        node = node.and_then(|mut n| n.get_mut(segment).map(Value::take));
    }
    match node {
        Some(Value::Object(children)) if query.is_ranged() || query.limit.is_some() => {
            let picked: Map<String, Value> = query
                .pick(children.iter().map(|(k, v)| (k.as_str(), v)))
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            (!picked.is_empty()).then_some(Value::Object(picked))
        }
        Some(Value::Object(children)) if children.is_empty() => None,
        other => other,
    }
}

/// True when `write` changes anything a reader of `query` sees.
pub fn touches(write: &Mutation, query: &PathQuery) -> bool {
    !write
        .restrict_range(&query.path, query.min.as_deref(), query.max.as_deref())
        .is_empty()
}

/// Whether a subscription to `sub` holds everything `query` asks for, so the cache can
/// answer it: the same query, or a query inside an unlimited subscription (within its
/// bounds).
pub fn covers(sub: &PathQuery, query: &PathQuery) -> bool {
    if sub.path == query.path {
        return same_window(sub, query) || (!sub.is_ranged() && sub.limit.is_none());
    }
    if sub.limit.is_some() || !query.path.starts_with(&sub.path) {
        return false;
    }
    let child = &query.path.segments()[sub.path.depth()];
    sub.admits(child)
}

fn same_window(a: &PathQuery, b: &PathQuery) -> bool {
    a.min == b.min && a.max == b.max && a.limit == b.limit && a.reverse == b.reverse
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn m(value: Value) -> Mutation {
        Mutation::from_json(&value).unwrap()
    }

    #[test]
    fn rebases_changes_and_ancestor_deletes() {
        let change = m(json!({"merge": {"todos": {"t1": {"text": "a"}, "t2": 1}}}));
        let moved = rebase(&change, &p("todos/t1"), &p("d:x")).unwrap();
        assert_eq!(moved, m(json!({"merge": {"d:x": {"text": "a"}}})));
        let gone = m(json!({"delete": {"todos": 1}}));
        let moved = rebase(&gone, &p("todos/t1"), &p("d:x")).unwrap();
        assert_eq!(moved, m(json!({"delete": {"d:x": 1}})));
        let leaf = m(json!({"merge": {"todos": {"t1": 5}}}));
        let moved = rebase(&leaf, &p("todos/t1"), &p("d:x")).unwrap();
        assert_eq!(moved, m(json!({"merge": {"d:x": 5}})));
    }

    #[test]
    fn overlays_queued_writes_then_the_window() {
        let query = PathQuery {
            limit: Some(2),
            ..PathQuery::new(p("todos"))
        };
        let stored = json!({"a": 1, "b": 2, "c": 3});
        let writes = [
            m(json!({"delete": {"todos": {"a": 1}}})),
            m(json!({"merge": {"todos": {"b": 20}, "other": 1}})),
        ];
        assert_eq!(
            overlay(Some(stored), &query, &writes),
            Some(json!({"b": 20, "c": 3}))
        );
        let all_gone = [m(json!({"delete": {"todos": 1}}))];
        assert_eq!(overlay(Some(json!({"a": 1})), &query, &all_gone), None);
    }

    #[test]
    fn a_subscription_covers_queries_inside_it() {
        let todos = PathQuery::new(p("todos"));
        assert!(covers(&todos, &PathQuery::new(p("todos/t1/text"))));
        assert!(covers(
            &todos,
            &PathQuery {
                limit: Some(3),
                ..todos.clone()
            }
        ));
        assert!(!covers(&todos, &PathQuery::new(p("users"))));
        let ranged = PathQuery {
            min: Some("b".into()),
            ..todos.clone()
        };
        assert!(covers(&ranged, &PathQuery::new(p("todos/c"))));
        assert!(!covers(&ranged, &PathQuery::new(p("todos/a"))));
        assert!(!covers(&ranged, &todos));
    }
}
