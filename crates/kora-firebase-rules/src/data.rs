//! The tree rules read: [`Data`], which the caller implements over its own store (and can
//! record what was read), and the tree after a write, which this crate layers on top.
//!
//! Values follow the Realtime Database's model: a location holds a primitive or children;
//! `null` and an object without children are no value at all; arrays are objects keyed
//! `"0"`, `"1"`…; `{".sv": "timestamp"}` is the server's time; `.priority` is dropped and
//! `{".value": x}` is `x` (priorities are not supported).

use serde_json::{Map, Value};

/// The database as rules see it, before the write.
pub trait Data {
    /// The value at the absolute `path` (keys from the root), or `None` when there is none.
    /// Called only for the locations the rules look at; a whole subtree only when a rule
    /// asks for one (`val()` of a location with children, `hasChildren()`).
    fn get(&self, path: &[String]) -> Option<Value>;

    /// Whether there is a value at `path`. Override when that is cheaper than [`Data::get`].
    fn exists(&self, path: &[String]) -> bool {
        self.get(path).is_some()
    }
}

/// A whole tree held as one JSON value (`null` for an empty database). It may hold what the
/// database would not (nulls, empty objects, arrays): it is read as if normalized.
impl Data for Value {
    fn get(&self, path: &[String]) -> Option<Value> {
        let mut node = self;
        for key in path {
            node = match node {
                Value::Object(map) => map.get(key)?,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        normalize(node, None)
    }
}

impl<T: Data + ?Sized> Data for &T {
    fn get(&self, path: &[String]) -> Option<Value> {
        (**self).get(path)
    }

    fn exists(&self, path: &[String]) -> bool {
        (**self).exists(path)
    }
}

/// A value as the database stores it: no nulls, no empty objects, no arrays, server
/// timestamps resolved to `now` (when writing; stored data holds none), priorities dropped.
/// `None` when nothing is left.
pub(crate) fn normalize(value: &Value, now: Option<i64>) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Bool(_) | Value::Number(_) | Value::String(_) => Some(value.clone()),
        Value::Array(items) => collect(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (i.to_string(), item)),
            now,
        ),
        Value::Object(map) => {
            if let Some(now) = now.filter(|_| map.get(".sv").is_some_and(|sv| sv == "timestamp")) {
                return Some(Value::from(now));
            }
            if let Some(inner) = map.get(".value") {
                return normalize(inner, now);
            }
            let children = map
                .iter()
                .filter(|(key, _)| key.as_str() != ".priority")
                .map(|(key, item)| (key.clone(), item));
            collect(children, now)
        }
    }
}

fn collect<'v>(
    children: impl Iterator<Item = (String, &'v Value)>,
    now: Option<i64>,
) -> Option<Value> {
    let map: Map<String, Value> = children
        .filter_map(|(key, item)| normalize(item, now).map(|v| (key, v)))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

/// One location set by a write, its value normalized (`None` deletes).
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub path: Vec<String>,
    pub value: Option<Value>,
}

/// The tree after the writes, applied in order over the tree before them.
pub(crate) struct After<'a> {
    pub before: &'a dyn Data,
    pub writes: &'a [Write],
}

impl After<'_> {
    /// The last write at `path` or above it, and the value it gives `path`.
    fn covering(&self, path: &[String]) -> Option<(usize, Option<Value>)> {
        let index = self
            .writes
            .iter()
            .rposition(|w| path.starts_with(&w.path))?;
        let write = &self.writes[index];
        let value = write
            .value
            .as_ref()
            .and_then(|v| Data::get(v, &path[write.path.len()..]));
        Some((index, value))
    }

    /// The writes after `from` strictly below `path`.
    fn below<'w>(&'w self, path: &'w [String], from: usize) -> impl Iterator<Item = &'w Write> {
        self.writes[from..]
            .iter()
            .filter(move |w| w.path.len() > path.len() && w.path.starts_with(path))
    }
}

impl Data for After<'_> {
    fn get(&self, path: &[String]) -> Option<Value> {
        let (mut value, from) = match self.covering(path) {
            Some((index, value)) => (value, index + 1),
            None => (self.before.get(path).and_then(|v| normalize(&v, None)), 0),
        };
        for write in self.below(path, from) {
            set_at(&mut value, &write.path[path.len()..], write.value.clone());
        }
        value
    }

    fn exists(&self, path: &[String]) -> bool {
        let (base, from) = match self.covering(path) {
            Some((index, value)) => (Some(value.is_some()), index + 1),
            None => (None, 0),
        };
        let mut below = self.below(path, from).peekable();
        if below.peek().is_none() {
            return base.unwrap_or_else(|| self.before.exists(path));
        }
        // Setting a value below a location makes it exist; only deletions below need the
        // whole subtree to tell whether anything is left.
        below.any(|w| w.value.is_some()) || self.get(path).is_some()
    }
}

/// Sets `new` at `relative` under `slot`, keeping the tree normalized: a location left with
/// no children disappears.
fn set_at(slot: &mut Option<Value>, relative: &[String], new: Option<Value>) {
    let Some((key, rest)) = relative.split_first() else {
        *slot = new;
        return;
    };
    if !matches!(slot, Some(Value::Object(_))) {
        *slot = Some(Value::Object(Map::new()));
    }
    if let Some(Value::Object(map)) = slot {
        let mut child = map.remove(key);
        set_at(&mut child, rest, new);
        if let Some(child) = child {
            map.insert(key.clone(), child);
        }
        if map.is_empty() {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> Vec<String> {
        text.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn normalizing_drops_nulls_empties_and_priorities() {
        let value = json!({"a": null, "b": {}, "c": [1, null, 3], "d": {".value": 4, ".priority": 1},
                           "e": {".sv": "timestamp"}, "f": {"x": 1, ".priority": 2}});
        assert_eq!(
            normalize(&value, Some(9)),
            Some(json!({"c": {"0": 1, "2": 3}, "d": 4, "e": 9, "f": {"x": 1}}))
        );
        assert_eq!(normalize(&json!({"a": {"b": null}}), Some(0)), None);
    }

    #[test]
    fn the_tree_after_writes() {
        let before = json!({"a": {"b": 1, "c": 2}, "d": 3});
        let writes = vec![
            Write {
                path: path("a/b"),
                value: None,
            },
            Write {
                path: path("e/f"),
                value: Some(json!(5)),
            },
        ];
        let after = After {
            before: &before,
            writes: &writes,
        };
        assert_eq!(
            after.get(&[]),
            Some(json!({"a": {"c": 2}, "d": 3, "e": {"f": 5}}))
        );
        assert_eq!(after.get(&path("a")), Some(json!({"c": 2})));
        assert!(
            after.exists(&path("a")) && after.exists(&path("e")) && !after.exists(&path("a/b"))
        );
        assert_eq!(after.get(&path("e/f")), Some(json!(5)));
        assert_eq!(after.get(&path("d")), Some(json!(3)));
    }

    #[test]
    fn deleting_the_last_child_deletes_the_parent() {
        let before = json!({"a": {"b": 1}, "z": 0});
        let writes = vec![Write {
            path: path("a/b"),
            value: None,
        }];
        let after = After {
            before: &before,
            writes: &writes,
        };
        assert!(!after.exists(&path("a")));
        assert!(after.exists(&[]));
        assert_eq!(after.get(&[]), Some(json!({"z": 0})));
    }

    #[test]
    fn a_later_write_above_replaces_an_earlier_one_below() {
        let before = Value::Null;
        let writes = vec![
            Write {
                path: path("a/b"),
                value: Some(json!(1)),
            },
            Write {
                path: path("a"),
                value: Some(json!({"c": 2})),
            },
            Write {
                path: path("a/d"),
                value: Some(json!(3)),
            },
        ];
        let after = After {
            before: &before,
            writes: &writes,
        };
        assert_eq!(after.get(&path("a")), Some(json!({"c": 2, "d": 3})));
        assert!(!after.exists(&path("a/b")));
    }
}
