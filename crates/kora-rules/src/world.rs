//! The two trees a decision sees: the tree **before** the write (read through a
//! [`Lookup`]) and the tree **after** it (computed: the value before, with the part of the
//! mutation under the path applied — the same computation as the engine's `after`).
//!
//! A value after the write needs no lookup when the mutation replaces the path whole (a
//! `set` or a delete), which is why creating a record rarely needs data loaded. Values are
//! cached per path, so an expression that reads `data.text` twice reads it once.
//!
//! Because applying a mutation twice equals applying it once, the lookup may also hold the
//! tree *after* the mutation: the after-values come out the same (used by `filter_change`,
//! which runs after commit).

use std::cell::RefCell;
use std::collections::HashMap;

use kora_core::query::place;
use kora_core::{Mutation, Path, Value};
use serde_json::Map;

use crate::expr::Stop;
use crate::lookup::Lookup;

/// Which tree a value is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Before,
    After,
}

/// A cached value: which tree, which path.
type Key = (Side, Vec<String>);

pub(crate) struct World<'a> {
    lookup: &'a dyn Lookup,
    mutation: &'a Mutation,
    cache: RefCell<HashMap<Key, Option<Value>>>,
}

impl<'a> World<'a> {
    pub(crate) fn new(lookup: &'a dyn Lookup, mutation: &'a Mutation) -> Self {
        World {
            lookup,
            mutation,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The value at `path` on `side`, or [`Stop::Needs`] when it is not loaded.
    pub(crate) fn value(&self, side: Side, path: &[String]) -> Result<Option<Value>, Stop> {
        let key = (side, path.to_vec());
        if let Some(hit) = self.cache.borrow().get(&key) {
            return Ok(hit.clone());
        }
        let path = to_path(path)?;
        let value = match side {
            Side::Before => self.before(&path)?,
            Side::After => self.after(&path)?,
        };
        self.cache.borrow_mut().insert(key, value.clone());
        Ok(value)
    }

    fn before(&self, path: &Path) -> Result<Option<Value>, Stop> {
        self.lookup
            .get(path)
            .ok_or_else(|| Stop::Needs(vec![path.clone()]))
    }

    fn after(&self, path: &Path) -> Result<Option<Value>, Stop> {
        let part = self.mutation.restrict(path);
        if part.is_empty() {
            return self.value(Side::Before, path.segments());
        }
        let base = if part.deletes().covers(path.segments()) {
            None
        } else {
            self.value(Side::Before, path.segments())?
        };
        Ok(apply_at(path, base, &part))
    }

    /// True when something is at `path` after the write; avoids loading when the mutation
    /// alone decides (it writes a leaf there or beneath, or deletes the path whole).
    pub(crate) fn exists_after(&self, path: &[String]) -> Result<bool, Stop> {
        let part = self.mutation.restrict(&to_path(path)?);
        let mut writes_leaf = false;
        part.for_each_leaf(|_, _| writes_leaf = true);
        if writes_leaf {
            return Ok(true);
        }
        if part.deletes().covers(path) {
            return Ok(false);
        }
        Ok(self.value(Side::After, path)?.is_some())
    }
}

pub(crate) fn to_path(segments: &[String]) -> Result<Path, Stop> {
    Path::from_segments(segments.iter().cloned()).map_err(|e| Stop::Error(e.to_string()))
}

/// The value at `path` once `part` (a mutation touching only `path`) is applied to `base`.
fn apply_at(path: &Path, base: Option<Value>, part: &Mutation) -> Option<Value> {
    let mut tree = Map::new();
    if let Some(base) = base {
        place(&mut tree, path.segments(), base);
    }
    part.apply_to(&mut tree);
    let mut node = Some(Value::Object(tree));
    for segment in path.segments() {
        node = node.and_then(|mut n| n.as_object_mut().and_then(|m| m.remove(segment)));
    }
    node.filter(|v| v.as_object().is_none_or(|m| !m.is_empty()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lookup::{Loaded, NothingLoaded};

    fn segs(text: &str) -> Vec<String> {
        Path::parse(text).unwrap().segments().to_vec()
    }

    fn tree(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn after_applies_the_mutation_to_the_value_before() {
        let before = tree(json!({"todos": {"T1": {"text": "a", "done": false}}}));
        let m = Mutation::from_json(&json!({"merge": {"todos": {"T1": {"done": true}}}})).unwrap();
        let world = World::new(&before, &m);
        assert_eq!(
            world.value(Side::After, &segs("todos/T1")).unwrap(),
            Some(json!({"text": "a", "done": true}))
        );
        assert_eq!(
            world.value(Side::Before, &segs("todos/T1/done")).unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            world.value(Side::After, &segs("")).unwrap(),
            Some(json!({"todos": {"T1": {"text": "a", "done": true}}}))
        );
    }

    #[test]
    fn a_replaced_path_needs_no_lookup() {
        let m = Mutation::set(&Path::parse("todos/T1").unwrap(), json!({"text": "x"})).unwrap();
        let world = World::new(&NothingLoaded, &m);
        assert_eq!(
            world.value(Side::After, &segs("todos/T1/text")).unwrap(),
            Some(json!("x"))
        );
        assert!(world.exists_after(&segs("todos/T1")).unwrap());
        let deleted = Mutation::delete(&Path::parse("todos/T1").unwrap());
        let world = World::new(&NothingLoaded, &deleted);
        assert_eq!(world.value(Side::After, &segs("todos/T1")).unwrap(), None);
        assert!(!world.exists_after(&segs("todos/T1")).unwrap());
    }

    #[test]
    fn missing_data_is_asked_for() {
        let m = Mutation::merge(&Path::parse("a/b").unwrap(), json!(1)).unwrap();
        let world = World::new(&NothingLoaded, &m);
        let Err(Stop::Needs(paths)) = world.value(Side::After, &segs("a")) else {
            panic!("expected a request for data")
        };
        assert_eq!(paths, vec![Path::parse("a").unwrap()]);
        let mut loaded = Loaded::new();
        loaded.insert(&Path::parse("a").unwrap(), Some(json!({"c": 2})));
        let world = World::new(&loaded, &m);
        assert_eq!(
            world.value(Side::After, &segs("a")).unwrap(),
            Some(json!({"b": 1, "c": 2}))
        );
    }

    #[test]
    fn a_lookup_of_the_tree_after_gives_the_same_after_values() {
        let before = tree(json!({"a": {"x": 1, "y": {"z": 2}}}));
        let m = Mutation::from_json(&json!({
            "delete": {"a": {"y": 1}}, "merge": {"a": {"y": {"w": 3}, "x": 5}}
        }))
        .unwrap();
        let mut after = before.clone();
        m.apply_to(&mut after);
        for path in ["a", "a/x", "a/y", "a/y/z", "a/y/w"] {
            let from_before = World::new(&before, &m).value(Side::After, &segs(path));
            let from_after = World::new(&after, &m).value(Side::After, &segs(path));
            assert_eq!(from_before.unwrap(), from_after.unwrap(), "{path}");
        }
    }
}
