//! Ordering children by a child value (docs/protocol.md, "Ordering by a child value"): the
//! order of values, and a query's window over children so ordered. Pure: the engine's ordered
//! child indexes (`kora_engine::index`) find the same windows without sorting.
//!
//! Values order by kind first — missing or `null`, then `false`, `true`, numbers (by value),
//! strings (by bytes, which is code-point order), arrays, objects — and children with equal
//! values by key (by bytes, as keys order everywhere in Kora).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::query::PathQuery;

/// Children ordered by the value at one child path instead of by key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByChild {
    /// The child path whose value orders the children (`score`, `meta/date`; `""`: each
    /// child's own value).
    pub child: String,
    /// The smallest value included (inclusive). With the query's `min`, children holding
    /// exactly this value start at key `min` (to page on from a child already seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The largest value included (inclusive); the query's `max` is the last key among the
    /// children holding exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

impl ByChild {
    /// Why `query` (which orders by this) is malformed, if it is: key bounds need the value
    /// they apply at.
    pub fn check(&self, query: &PathQuery) -> Result<(), String> {
        if query.min.is_some() && self.from.is_none() {
            return Err("with `by`, `min` is the first key at `by.from`: give `from` too".into());
        }
        if query.max.is_some() && self.to.is_none() {
            return Err("with `by`, `max` is the last key at `by.to`: give `to` too".into());
        }
        if self.child.split('/').any(|s| s.is_empty()) && !self.child.is_empty() {
            return Err(format!("`by.child` {:?} has an empty segment", self.child));
        }
        Ok(())
    }

    /// The child path's segments (empty: the child itself).
    pub fn segments(&self) -> Vec<String> {
        self.child
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
}

fn rank(value: Option<&Value>) -> u8 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(false)) => 1,
        Some(Value::Bool(true)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    }
}

/// The order of child values (`None`: the child has nothing at the ordering path).
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

/// The value at `path` under `node` (`node` itself for an empty path).
pub fn child_at<'a, S: AsRef<str>>(node: &'a Value, path: &[S]) -> Option<&'a Value> {
    path.iter()
        .try_fold(node, |node, segment| node.get(segment.as_ref()))
}

/// Whether a child (`key`, its `value` at the ordering path) lies within `query`'s bounds.
pub fn admits(query: &PathQuery, by: &ByChild, key: &str, value: Option<&Value>) -> bool {
    let after_start = by
        .from
        .as_ref()
        .is_none_or(|from| match compare_values(value, Some(from)) {
            Ordering::Less => false,
            Ordering::Equal => query.min.as_deref().is_none_or(|min| key >= min),
            Ordering::Greater => true,
        });
    let before_end = by
        .to
        .as_ref()
        .is_none_or(|to| match compare_values(value, Some(to)) {
            Ordering::Greater => false,
            Ordering::Equal => query.max.as_deref().is_none_or(|max| key <= max),
            Ordering::Less => true,
        });
    after_start && before_end
}

/// The keys of `query`'s window over the children of `node`, in order: sorted by the value
/// at `by`'s child path then by key, bounded, and the first (or with `reverse` the last)
/// `limit` of them. The plain definition the indexes are tested against.
pub fn window(query: &PathQuery, by: &ByChild, node: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(children)) = node else {
        return Vec::new();
    };
    let child = by.segments();
    let mut entries: Vec<(&str, Option<&Value>)> = children
        .iter()
        .map(|(key, value)| (key.as_str(), child_at(value, &child)))
        .filter(|(key, value)| admits(query, by, key, *value))
        .collect();
    entries.sort_by(|a, b| compare_values(a.1, b.1).then_with(|| a.0.cmp(b.0)));
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut keys: Vec<String> = if query.reverse {
        entries
            .iter()
            .rev()
            .take(limit)
            .map(|e| e.0.to_string())
            .collect()
    } else {
        entries
            .iter()
            .take(limit)
            .map(|e| e.0.to_string())
            .collect()
    };
    if query.reverse {
        keys.reverse();
    }
    keys
}

/// The children of `node` in `query`'s window, as an object (`None` when none is left).
pub fn select(query: &PathQuery, by: &ByChild, node: Option<&Value>) -> Option<Value> {
    let keys = window(query, by, node);
    let children = node?.as_object()?;
    let picked: serde_json::Map<String, Value> = keys
        .into_iter()
        .filter_map(|key| Some((key.clone(), children.get(&key)?.clone())))
        .collect();
    (!picked.is_empty()).then_some(Value::Object(picked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(by: &ByChild, limit: Option<usize>, reverse: bool) -> (PathQuery, ByChild) {
        let query = PathQuery {
            limit,
            reverse,
            by: Some(by.clone()),
            ..PathQuery::default()
        };
        (query, by.clone())
    }

    #[test]
    fn values_order_by_kind_then_value() {
        let ordered = [
            None,
            Some(json!(false)),
            Some(json!(true)),
            Some(json!(-2.5)),
            Some(json!(3)),
            Some(json!("")),
            Some(json!("a")),
            Some(json!([1])),
            Some(json!({"a": 1})),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare_values(pair[0].as_ref(), pair[1].as_ref()),
                Ordering::Less,
                "{pair:?}"
            );
        }
        assert_eq!(compare_values(None, Some(&json!(null))), Ordering::Equal);
        assert_eq!(
            compare_values(Some(&json!(2)), Some(&json!(2.0))),
            Ordering::Equal
        );
    }

    #[test]
    fn the_window_sorts_bounds_and_limits() {
        let node = json!({
            "a": {"score": 5}, "b": {"score": 1}, "c": {"score": 5}, "d": {}, "e": {"score": 9}
        });
        let by = ByChild {
            child: "score".into(),
            ..ByChild::default()
        };
        let (q, b) = query(&by, None, false);
        assert_eq!(window(&q, &b, Some(&node)), ["d", "b", "a", "c", "e"]);
        let (q, b) = query(&by, Some(2), true);
        assert_eq!(window(&q, &b, Some(&node)), ["c", "e"]);
        let by = ByChild {
            child: "score".into(),
            from: Some(json!(5)),
            to: Some(json!(5)),
        };
        let (mut q, b) = query(&by, None, false);
        q.min = Some("b".into());
        assert_eq!(window(&q, &b, Some(&node)), ["c"]);
        assert_eq!(
            select(&q, &b, Some(&node)),
            Some(json!({"c": {"score": 5}}))
        );
    }
}
