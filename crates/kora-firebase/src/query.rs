//! Firebase queries: parsing the WebSocket query object (`q`) and REST's query parameters, and
//! evaluating a query against the node at its location, as the SDK's `RangedFilter` and
//! `LimitedFilter` do (newest revision, with `startAfter`/`endBefore`).
//!
//! Every child gets a *post* — (its index value, its key) — and the query keeps the children
//! whose post lies between the start and end posts, then the first or last `limit` of them in
//! index order. Clients apply the same filter to what the server sends, so sending the exact
//! window matters for the incremental updates they compute from it.

mod rest;
#[cfg(test)]
pub(crate) mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::order::{
    child_at, children, is_empty, name_compare, priority_of, value_compare, MAX_NAME, MIN_NAME,
};

/// What children are ordered by.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// Priority, then key (the default, `i` absent).
    Priority,
    /// Key only (`.key`).
    Key,
    /// The child's own value, then key (`.value`).
    Value,
    /// The value at this path below each child (missing = `null`), then key.
    Child(Vec<String>),
}

/// One end of a query range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The index value; for [`Index::Key`] the key itself (a string).
    pub value: Value,
    /// The key that breaks ties among children with `value`. `None` means "all of them": the
    /// range then starts before (or, when exclusive, after) every child with that value, and
    /// ends after (or, when exclusive, before) them. Ignored by [`Index::Key`].
    pub key: Option<String>,
    /// `false` for `startAfter`/`endBefore`.
    pub inclusive: bool,
}

/// How many children to keep, from which end of the range.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub count: usize,
    /// `limitToFirst` when true, `limitToLast` when false.
    pub from_left: bool,
}

/// A query at some location: ordering, range and limit.
#[derive(Debug, Clone, PartialEq)]
pub struct FbQuery {
    pub index: Index,
    pub start: Option<Bound>,
    pub end: Option<Bound>,
    pub limit: Option<Limit>,
}

impl Default for FbQuery {
    /// The default query: everything, by priority.
    fn default() -> Self {
        FbQuery {
            index: Index::Priority,
            start: None,
            end: None,
            limit: None,
        }
    }
}

/// What a child is ordered by under an index, before its key.
#[derive(Debug, Clone, Copy)]
enum Rank<'a> {
    Node(Option<&'a Value>),
    /// Above every node: the SDK's `MAX_NODE`, the end of an unbounded range.
    Max,
}

/// A child, or a range end, as the index sees it.
#[derive(Debug, Clone, Copy)]
struct Post<'a> {
    rank: Rank<'a>,
    name: &'a str,
}

impl Index {
    /// Parses the wire form: `.key`, `.value`, `.priority` or a child path `a/b`.
    pub fn from_wire(index: &str) -> Result<Index, String> {
        match index {
            ".key" => Ok(Index::Key),
            ".value" => Ok(Index::Value),
            ".priority" => Ok(Index::Priority),
            path => {
                let segments: Vec<String> = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if segments.is_empty() {
                    return Err(format!("invalid query index {index:?}"));
                }
                Ok(Index::Child(segments))
            }
        }
    }

    /// The wire form, as `PathIndex.toString()` and friends write it.
    pub fn to_wire(&self) -> String {
        match self {
            Index::Priority => ".priority".to_string(),
            Index::Key => ".key".to_string(),
            Index::Value => ".value".to_string(),
            Index::Child(path) => path.join("/"),
        }
    }

    fn post<'a>(&self, key: &'a str, child: &'a Value) -> Post<'a> {
        let rank = match self {
            Index::Priority => Rank::Node(priority_of(child)),
            Index::Key => Rank::Node(None),
            Index::Value => Rank::Node(Some(child)),
            Index::Child(path) => Rank::Node(child_at(child, path)),
        };
        Post { rank, name: key }
    }

    fn compare(&self, a: &Post, b: &Post) -> Ordering {
        match self {
            Index::Key => name_compare(a.name, b.name),
            _ => rank_compare(a.rank, b.rank).then_with(|| name_compare(a.name, b.name)),
        }
    }
}

fn rank_compare(a: Rank, b: Rank) -> Ordering {
    match (a, b) {
        (Rank::Max, Rank::Max) => Ordering::Equal,
        (Rank::Max, _) => Ordering::Greater,
        (_, Rank::Max) => Ordering::Less,
        // A priority is compared as a node too, so this is `priority_compare` for that index.
        (Rank::Node(x), Rank::Node(y)) => value_compare(x, y),
    }
}

impl FbQuery {
    /// Parses the WebSocket query object: `sp`/`sn`/`sin` (start value, key, inclusive),
    /// `ep`/`en`/`ein` (end), `l` (limit), `vf` (`"l"` first, `"r"` last) and `i` (index; absent
    /// = priority). Absent `sin`/`ein` mean inclusive; a limit without `vf` counts from the left
    /// iff a start is set (`QueryParams.isViewFromLeft`). `null` or `{}` is the default query.
    pub fn from_wire(q: &Value) -> Result<FbQuery, String> {
        let obj = match q {
            Value::Null => return Ok(FbQuery::default()),
            Value::Object(obj) => obj,
            other => return Err(format!("query must be an object, not {other}")),
        };
        let index = match obj.get("i") {
            None | Some(Value::Null) => Index::Priority,
            Some(Value::String(i)) => Index::from_wire(i)?,
            Some(other) => return Err(format!("query index must be a string, not {other}")),
        };
        let start = wire_bound(obj, "sp", "sn", "sin")?;
        let end = wire_bound(obj, "ep", "en", "ein")?;
        let limit = wire_limit(obj, start.is_some())?;
        FbQuery::checked(index, start, end, limit)
    }

    /// The query of these parts, if its bounds are values its index can order
    /// ([`FbQuery::validate`]).
    fn checked(
        index: Index,
        start: Option<Bound>,
        end: Option<Bound>,
        limit: Option<Limit>,
    ) -> Result<FbQuery, String> {
        let query = FbQuery {
            index,
            start,
            end,
            limit,
        };
        query.validate()?;
        Ok(query)
    }

    /// Checks the bound values as the SDK's query validation does: strings for the key index,
    /// valid priorities (null, number, string) for the priority index, JSON primitives otherwise.
    pub fn validate(&self) -> Result<(), String> {
        for bound in self.start.iter().chain(&self.end) {
            let value = &bound.value;
            let ok = match self.index {
                Index::Key => value.is_string(),
                Index::Priority => value.is_null() || value.is_number() || value.is_string(),
                Index::Value | Index::Child(_) => !value.is_object() && !value.is_array(),
            };
            if !ok {
                return Err(match self.index {
                    Index::Key => format!("a range on the key index needs a string, not {value}"),
                    Index::Priority => {
                        format!(
                            "a range on priorities needs null, a number or a string, not {value}"
                        )
                    }
                    _ => format!("a range bound must be a JSON primitive, not {value}"),
                });
            }
        }
        Ok(())
    }

    /// Whether the query returns everything at its location (no range, no limit). The SDK sends
    /// such queries as plain untagged listens.
    pub fn loads_all_data(&self) -> bool {
        self.start.is_none() && self.end.is_none() && self.limit.is_none()
    }

    /// Whether this is the default query (all data, by priority).
    pub fn is_default(&self) -> bool {
        self.loads_all_data() && self.index == Index::Priority
    }

    /// The query's result at its location. A node with children yields the children in the
    /// window as an object, each in export format as stored (the location's own `.priority` is
    /// dropped, as `RangedFilter` drops it). A leaf or empty node is returned as is when the
    /// query loads all data; otherwise it has no children to keep and the result is `None`, as
    /// is an empty window.
    pub fn apply(&self, node: Option<&Value>) -> Option<Value> {
        let node = node.filter(|n| !is_empty(n))?;
        if self.loads_all_data() {
            return Some(node.clone());
        }
        let window = self.window(node);
        if window.is_empty() {
            return None;
        }
        let members: Map<String, Value> = window
            .into_iter()
            .map(|(key, child)| (key.into_owned(), child.clone()))
            .collect();
        Some(Value::Object(members))
    }

    /// The keys of the result, in index order (empty for a leaf or empty node).
    pub fn window_keys(&self, node: Option<&Value>) -> Vec<String> {
        node.map(|n| self.window(n))
            .unwrap_or_default()
            .into_iter()
            .map(|(key, _)| key.into_owned())
            .collect()
    }

    /// Sorts children into this query's index order.
    pub fn sort_children<'a>(
        &self,
        mut kids: Vec<(&'a str, &'a Value)>,
    ) -> Vec<(&'a str, &'a Value)> {
        kids.sort_by(|a, b| {
            self.index
                .compare(&self.index.post(a.0, a.1), &self.index.post(b.0, b.1))
        });
        kids
    }

    /// Whether a child lies in the query's range (the limit aside): `RangedFilter.matches`.
    pub fn matches(&self, key: &str, child: &Value) -> bool {
        let post = self.index.post(key, child);
        let start = self.start_post();
        let end = self.end_post();
        let start_vs_post = self.index.compare(&start, &post);
        let post_vs_end = self.index.compare(&post, &end);
        let inclusive = |bound: &Option<Bound>| bound.as_ref().is_none_or(|b| b.inclusive);
        let within_start = if inclusive(&self.start) {
            start_vs_post.is_le()
        } else {
            start_vs_post.is_lt()
        };
        let within_end = if inclusive(&self.end) {
            post_vs_end.is_le()
        } else {
            post_vs_end.is_lt()
        };
        within_start && within_end
    }

    /// The children in range, sorted, cut to the limit.
    fn window<'a>(&self, node: &'a Value) -> Vec<(Cow<'a, str>, &'a Value)> {
        let mut kept: Vec<_> = children(node)
            .into_iter()
            .filter(|(key, child)| self.matches(key, child))
            .collect();
        kept.sort_by(|a, b| {
            self.index
                .compare(&self.index.post(&a.0, a.1), &self.index.post(&b.0, b.1))
        });
        if let Some(limit) = &self.limit {
            if limit.from_left {
                kept.truncate(limit.count);
            } else {
                kept.drain(..kept.len().saturating_sub(limit.count));
            }
        }
        kept
    }

    fn start_post(&self) -> Post<'_> {
        match &self.start {
            None => Post {
                rank: Rank::Node(None),
                name: MIN_NAME,
            },
            Some(b) => self.bound_post(b, if b.inclusive { MIN_NAME } else { MAX_NAME }),
        }
    }

    fn end_post(&self) -> Post<'_> {
        match &self.end {
            None => Post {
                rank: Rank::Max,
                name: MAX_NAME,
            },
            Some(b) => self.bound_post(b, if b.inclusive { MAX_NAME } else { MIN_NAME }),
        }
    }

    /// `Index.makePost(value, name)`. On the key index the value is the name (a non-string,
    /// which [`FbQuery::validate`] refuses, is taken as the open end).
    fn bound_post<'a>(&'a self, bound: &'a Bound, default_name: &'a str) -> Post<'a> {
        match self.index {
            Index::Key => Post {
                rank: Rank::Node(None),
                name: bound.value.as_str().unwrap_or(default_name),
            },
            _ => Post {
                rank: Rank::Node(Some(&bound.value)),
                name: bound.key.as_deref().unwrap_or(default_name),
            },
        }
    }

    /// The canonical wire object: `sin`/`ein` only when exclusive, `vf` with every limit, `i`
    /// unless the priority index. Clients that match queries by their own object (the `c`
    /// revocation push) need the object they sent, not this one.
    pub fn to_wire(&self) -> Value {
        let mut obj = Map::new();
        wire_put_bound(&mut obj, self.start.as_ref(), ["sp", "sn", "sin"]);
        wire_put_bound(&mut obj, self.end.as_ref(), ["ep", "en", "ein"]);
        if let Some(limit) = &self.limit {
            obj.insert("l".into(), Value::from(limit.count));
            let vf = if limit.from_left { "l" } else { "r" };
            obj.insert("vf".into(), Value::from(vf));
        }
        if self.index != Index::Priority {
            obj.insert("i".into(), Value::from(self.index.to_wire()));
        }
        Value::Object(obj)
    }

    /// A canonical string for the query (its wire object with sorted keys), for use as a map key.
    pub fn to_key(&self) -> String {
        let mut out = String::new();
        canonical_json(&self.to_wire(), &mut out);
        out
    }
}

fn wire_put_bound(obj: &mut Map<String, Value>, bound: Option<&Bound>, names: [&str; 3]) {
    let Some(bound) = bound else { return };
    obj.insert(names[0].into(), bound.value.clone());
    if let Some(key) = &bound.key {
        obj.insert(names[1].into(), Value::from(key.as_str()));
    }
    if !bound.inclusive {
        obj.insert(names[2].into(), Value::Bool(false));
    }
}

fn wire_bound(
    obj: &Map<String, Value>,
    value: &str,
    key: &str,
    inclusive: &str,
) -> Result<Option<Bound>, String> {
    // `sp: null` is a real bound (`startAt(null)`), so presence is what counts.
    let Some(bound_value) = obj.get(value) else {
        return Ok(None);
    };
    let bound_key = match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(format!("query {key} must be a string, not {other}")),
    };
    let inclusive = match obj.get(inclusive) {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("query {inclusive} must be a boolean, not {other}")),
    };
    Ok(Some(Bound {
        value: bound_value.clone(),
        key: bound_key,
        inclusive,
    }))
}

fn wire_limit(obj: &Map<String, Value>, has_start: bool) -> Result<Option<Limit>, String> {
    let Some(l) = obj.get("l") else {
        return Ok(None);
    };
    let count = l
        .as_u64()
        .or_else(|| {
            l.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| format!("query limit must be a non-negative integer, not {l}"))?;
    let from_left = match obj.get("vf") {
        None | Some(Value::Null) => has_start,
        Some(Value::String(vf)) if vf.is_empty() => has_start,
        Some(Value::String(vf)) if vf == "l" => true,
        Some(Value::String(vf)) if vf == "r" => false,
        Some(other) => return Err(format!("query vf must be \"l\" or \"r\", not {other}")),
    };
    Ok(Some(Limit { count, from_left }))
}

/// JSON with object keys sorted (`ObjectToUniqueKey` in the SDK), independent of how the
/// `serde_json` map orders its members.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                canonical_json(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}
