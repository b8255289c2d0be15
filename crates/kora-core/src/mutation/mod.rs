//! Mutations: the only way the tree changes.
//!
//! ```json
//! {"merge": {"todos": {"TOD1": {"text": "Find the Black Pearl"}}},
//!  "delete": {"todos": {"TOD0": 1}}}
//! ```
//!
//! `delete` is a tree whose leaves are `1`: each leaf path and everything under it is
//! removed (`"delete": 1` removes the whole tree). `merge` is a tree of values to write; it
//! creates what does not exist, a leaf replaces a branch and a branch replaces a leaf.
//! Within one mutation the deletes apply first, then the merges, so `set` is delete + merge.
//!
//! Merging a branch where a leaf is replaces the leaf — also an empty branch: `{}` merged at P
//! turns a leaf at P (or at an ancestor) into a branch with no children, which is not shown,
//! and leaves an existing branch as it is. Such *branch markers* matter: they are what makes
//! `combine` exact when a later delete removes everything an earlier merge put under a path
//! that used to be a leaf. An object whose members were all `null` is not a marker: it only
//! carried deletes.
//!
//! Invariants kept by every constructor, so equal mutations compare equal:
//! - `merge` holds no `null` (merging `null` is a delete and is moved into `delete`);
//! - `merge` holds no marker at a path its own `delete` removes (that marker would change
//!   nothing: the path holds nothing once deleted; a branch above it still marks that branch);
//! - `delete` holds no empty branch, and nothing beneath a path it already deletes whole;
//! - every key is a valid path segment and no path is deeper than the limit.

mod apply;
mod combine;
mod delete;
mod effect;
mod json;
mod layers;
mod restrict;

use serde_json::{Map, Value};

pub use delete::Delete;
pub use effect::Effect;
pub(crate) use effect::Effects;
pub use json::MutationError;
pub use layers::Layer;

use crate::path::{Limits, Path};

/// A change to the tree: deletes, then merges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mutation {
    merge: Map<String, Value>,
    delete: Delete,
}

impl Mutation {
    /// The empty mutation, which changes nothing.
    pub fn new() -> Self {
        Mutation::default()
    }

    /// Merges `value` at `path`. `null` deletes the path, nested `null`s delete those
    /// children, and `{}` makes the path a branch. A leaf cannot be merged at the root.
    pub fn merge(path: &Path, value: Value) -> Result<Self, MutationError> {
        Self::merge_with(path, value, &Limits::default())
    }

    /// [`Mutation::merge`] with explicit limits on key depth.
    pub fn merge_with(path: &Path, value: Value, limits: &Limits) -> Result<Self, MutationError> {
        let mut mutation = Mutation::new();
        let mut prefix = path.segments().to_vec();
        let mut deletes = Vec::new();
        let merged = json::split_value(value, &mut prefix, limits, &mut deletes)?;
        for deleted in &deletes {
            mutation.delete.insert(deleted);
        }
        match merged {
            None => {}
            Some(Value::Object(map)) if path.is_root() => mutation.merge = map,
            Some(leaf) if path.is_root() => return Err(MutationError::leaf_at_root(&leaf)),
            Some(value) => put(&mut mutation.merge, path.segments(), value),
        }
        mutation.normalize();
        Ok(mutation)
    }

    /// Restores the invariant on markers: drops those at paths this mutation deletes.
    pub(crate) fn normalize(&mut self) {
        drop_covered_markers(&mut self.merge, Some(&self.delete));
    }

    /// Deletes `path` and everything under it.
    pub fn delete(path: &Path) -> Self {
        let mut mutation = Mutation::new();
        mutation.delete.insert(path.segments());
        mutation
    }

    /// Replaces whatever is at `path` with `value`: delete, then merge, in one mutation.
    pub fn set(path: &Path, value: Value) -> Result<Self, MutationError> {
        Ok(Mutation::delete(path).combine(Mutation::merge(path, value)?))
    }

    /// This mutation followed by a merge of `value` at `path`.
    pub fn and_merge(self, path: &Path, value: Value) -> Result<Self, MutationError> {
        Ok(self.combine(Mutation::merge(path, value)?))
    }

    /// This mutation followed by a delete of `path`.
    pub fn and_delete(self, path: &Path) -> Self {
        self.combine(Mutation::delete(path))
    }

    /// The merge tree (never holds `null` or empty objects).
    pub fn merges(&self) -> &Map<String, Value> {
        &self.merge
    }

    /// The delete tree.
    pub fn deletes(&self) -> &Delete {
        &self.delete
    }

    /// True when applying this mutation can change nothing.
    pub fn is_empty(&self) -> bool {
        self.merge.is_empty() && self.delete.is_nothing()
    }

    /// Number of merged leaves and branch markers plus deleted paths: the size measure
    /// limits are stated in.
    pub fn leaf_count(&self) -> usize {
        fn count(map: &Map<String, Value>) -> usize {
            map.values()
                .map(|v| match v {
                    Value::Object(m) if m.is_empty() => 1,
                    Value::Object(m) => count(m),
                    _ => 1,
                })
                .sum()
        }
        count(&self.merge) + self.delete.path_count()
    }

    /// Calls `f` with the path and value of every merged leaf, in tree order.
    pub fn for_each_leaf<'a>(&'a self, mut f: impl FnMut(&[&'a str], &'a Value)) {
        self.for_each_write(|path, value| {
            if let Some(leaf) = value {
                f(path, leaf)
            }
        });
    }

    /// Calls `f` with the path of every branch marker (`{}` merged there), in tree order.
    pub fn for_each_marker<'a>(&'a self, mut f: impl FnMut(&[&'a str])) {
        self.for_each_write(|path, value| {
            if value.is_none() {
                f(path)
            }
        });
    }

    /// Every merged leaf (`Some(value)`) and branch marker (`None`), in tree order.
    pub fn for_each_write<'a>(&'a self, mut f: impl FnMut(&[&'a str], Option<&'a Value>)) {
        fn walk<'a>(
            map: &'a Map<String, Value>,
            prefix: &mut Prefix<'a>,
            f: &mut impl FnMut(&[&'a str], Option<&'a Value>),
        ) {
            for (key, value) in map {
                prefix.push(key);
                match value {
                    Value::Object(child) if child.is_empty() => f(prefix.as_slice(), None),
                    Value::Object(child) => walk(child, prefix, f),
                    leaf => f(prefix.as_slice(), Some(leaf)),
                }
                prefix.pop();
            }
        }
        walk(&self.merge, &mut Prefix::default(), &mut f);
    }

    /// This mutation moved beneath `path`: what it does at the root happens at `path`.
    /// Interceptors write relative mutations; this places them.
    pub fn nest(self, path: &Path) -> Mutation {
        if path.is_root() {
            return self;
        }
        let mut out = Mutation::new();
        if !self.merge.is_empty() {
            put(&mut out.merge, path.segments(), Value::Object(self.merge));
        }
        out.delete = self.delete.nest(path.segments());
        out
    }
}

/// A path being walked, kept on the stack while it is shallow: walking a mutation is the
/// hot loop of every apply, and a heap allocation per walk cost a sixth of it.
#[derive(Default)]
pub(crate) struct Prefix<'a> {
    fixed: [&'a str; 16],
    len: usize,
    spill: Vec<&'a str>,
}

impl<'a> Prefix<'a> {
    pub(crate) fn push(&mut self, segment: &'a str) {
        if self.spill.is_empty() && self.len < self.fixed.len() {
            self.fixed[self.len] = segment;
            self.len += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.fixed[..self.len]);
        }
        self.spill.push(segment);
    }

    pub(crate) fn pop(&mut self) {
        if self.spill.is_empty() {
            self.len = self.len.saturating_sub(1);
        } else {
            self.spill.pop();
            if self.spill.len() <= self.fixed.len() {
                self.len = self.spill.len();
                self.fixed[..self.len].copy_from_slice(&self.spill);
                self.spill.clear();
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[&'a str] {
        if self.spill.is_empty() {
            &self.fixed[..self.len]
        } else {
            &self.spill
        }
    }
}

/// Removes empty objects (markers) at paths that `delete` (the delete tree at `map`'s path)
/// deletes whole, bottom-up, so a branch emptied that way is judged as a marker in turn.
fn drop_covered_markers(map: &mut Map<String, Value>, delete: Option<&Delete>) {
    map.retain(|key, value| {
        let Value::Object(child) = value else {
            return true;
        };
        let sub = match delete {
            Some(Delete::All) => Some(&Delete::All),
            Some(Delete::Children(children)) => children.get(key),
            None => None,
        };
        drop_covered_markers(child, sub);
        !(child.is_empty() && matches!(sub, Some(Delete::All)))
    });
}

/// Writes `value` at `path` inside a merge map, creating branches on the way (replacing
/// any leaf that stands where a branch must go).
pub(crate) fn put<S: AsRef<str>>(map: &mut Map<String, Value>, path: &[S], value: Value) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut node = map;
    for segment in init {
        let slot = node
            .entry(segment.as_ref().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        node = match slot {
            Value::Object(child) => child,
            _ => unreachable!("slot was just made an object"),
        };
    }
    node.insert(last.as_ref().to_owned(), value);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn merge_builder_nests_the_value_at_the_path() {
        let m = Mutation::merge(&p("todos/T1"), json!({"text": "x"})).unwrap();
        assert_eq!(
            m.to_json(),
            json!({"merge": {"todos": {"T1": {"text": "x"}}}, "delete": {}})
        );
    }

    #[test]
    fn merging_null_is_a_delete() {
        let m = Mutation::merge(&p("a"), json!({"b": null, "c": 1})).unwrap();
        assert_eq!(
            m.to_json(),
            json!({"merge": {"a": {"c": 1}}, "delete": {"a": {"b": 1}}})
        );
        let whole = Mutation::merge(&p("a"), Value::Null).unwrap();
        assert_eq!(whole, Mutation::delete(&p("a")));
    }

    #[test]
    fn merging_an_empty_object_leaves_a_branch_marker() {
        let m = Mutation::merge(&p("a"), json!({"b": {}})).unwrap();
        assert_eq!(
            m.to_json(),
            json!({"merge": {"a": {"b": {}}}, "delete": {}})
        );
        assert!(Mutation::merge(&Path::root(), json!({}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_object_of_nulls_only_deletes() {
        let m = Mutation::merge(&p("a"), json!({"b": null})).unwrap();
        assert_eq!(m.to_json(), json!({"merge": {}, "delete": {"a": {"b": 1}}}));
    }

    #[test]
    fn a_leaf_cannot_be_merged_at_the_root() {
        assert!(matches!(
            Mutation::merge(&Path::root(), json!(5)),
            Err(MutationError::LeafAtRoot { .. })
        ));
    }

    #[test]
    fn set_is_delete_then_merge() {
        let m = Mutation::set(&p("a"), json!({"z": 3})).unwrap();
        assert_eq!(
            m.to_json(),
            json!({"merge": {"a": {"z": 3}}, "delete": {"a": 1}})
        );
    }

    #[test]
    fn nest_moves_a_relative_mutation_under_a_path() {
        let relative = Mutation::merge(&Path::root(), json!({"created": 1}))
            .unwrap()
            .and_delete(&p("draft"));
        assert_eq!(
            relative.nest(&p("todos/T1")).to_json(),
            json!({"merge": {"todos": {"T1": {"created": 1}}},
                   "delete": {"todos": {"T1": {"draft": 1}}}})
        );
    }

    #[test]
    fn leaf_count_counts_merged_leaves_and_deleted_paths() {
        let m = Mutation::from_json(&json!({
            "merge": {"a": {"b": 1, "c": [1, 2]}, "d": "x"},
            "delete": {"e": 1, "f": {"g": 1}}
        }))
        .unwrap();
        assert_eq!(m.leaf_count(), 5);
    }
}
