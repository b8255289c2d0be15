//! The reference tree: stamped mutations applied with per-leaf last-writer-wins and delete
//! tombstones, exactly as docs/design.md §4 states. Every store backend is tested against it.
//!
//! The rule: a mutation at stamp T records a tombstone (P, T) for each deleted path P, and for
//! each merged leaf at P both a tombstone (P, T) and the leaf (P, value, T). A leaf at P with
//! stamp T is visible iff T ≥ every tombstone on P or an ancestor of P, and no leaf write
//! strictly beneath P has a stamp newer than T.
//!
//! A branch marker (`{}` merged at P, see `Mutation`) counts as a write strictly beneath P that
//! is never visible itself: it turns older leaves at P and its ancestors into branches.
//!
//! How each node upholds it:
//! - `tombstone` is the newest tombstone at the node. A tombstone that is not newer than one
//!   on an ancestor changes nothing and is not stored.
//! - `beneath` is the newest stamp of any write strictly beneath the node, visible or not: an
//!   invisible write still turned this node into a branch when it happened.
//! - Pruning is eager: when a tombstone (P, T) is recorded, every leaf at or under P older
//!   than T, every tombstone under P not newer than T and every `beneath` at or under P older
//!   than T is dropped: a later arrival older than T is hidden by the tombstone anyway, and
//!   one newer than T is newer than all of them. A write under a newer tombstone changes
//!   nothing at or below that tombstone. A leaf write drops the ancestor leaves it hides.
//!   Therefore **every stored leaf is visible**, and `leaves` (stored leaves in the subtree)
//!   tells whether a subtree shows anything.
//! - A node with no leaf, no tombstone, no `beneath` and no children holds no information
//!   and is removed.
//!
//! `tests/laws.rs` checks this tree against a literal transcription of the rule.

use std::collections::BTreeMap;

use compact_str::CompactString;
use std::ops::Bound;

use serde_json::{Map, Value};

use crate::mutation::{Effect, Effects, Mutation};
use crate::path::Path;
use crate::query::{place, PathQuery, Query};
use crate::stamp::Stamp;

/// A path with its leaf (and the leaf's stamp) and its tombstone ([`Tree::stamped`]).
pub type Stamped = (Path, Option<(Stamp, Value)>, Option<Stamp>);

/// The visible tree plus the stamps and tombstones that decide later arrivals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tree {
    root: Node,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Node {
    leaf: Option<(Stamp, Value)>,
    tombstone: Option<Stamp>,
    beneath: Option<Stamp>,
    leaves: usize,
    /// Children by key. Keys of up to 24 bytes live inline, so the comparisons of a lookup
    /// stay within the map's nodes instead of chasing a pointer per key.
    children: BTreeMap<CompactString, Node>,
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Applies a stamped mutation and returns its effect on the visible tree: a mutation
    /// that, applied without stamps to the tree as it was, gives the tree as it is now.
    /// Applying the same set of stamped mutations in any order, any number of times, gives the
    /// same tree.
    pub fn apply(&mut self, stamp: Stamp, mutation: &Mutation) -> Effect {
        let root = &mut self.root;
        let mut fx = Effects::default();
        mutation.deletes().for_each_path(|path| {
            root.tombstone(path, 0, stamp, &mut fx);
            fx.end_op();
        });
        mutation.for_each_write(|path, value| {
            root.write(path, 0, value, stamp, &mut fx);
            fx.end_op();
        });
        fx.finish(mutation)
    }

    /// The visible tree as JSON (an object; `{}` when empty).
    pub fn to_value(&self) -> Value {
        self.root
            .to_value()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// The visible value at `path`, or `None` when nothing is there.
    pub fn get(&self, path: &Path) -> Option<Value> {
        self.root.find(path.segments())?.to_value()
    }

    /// The stamp of the visible leaf at `path`, if a leaf is there.
    pub fn leaf_stamp(&self, path: &Path) -> Option<Stamp> {
        self.root
            .find(path.segments())?
            .leaf
            .as_ref()
            .map(|(stamp, _)| *stamp)
    }

    /// Up to `limit` visible leaves at or beneath `under`, in key order, after `after`
    /// (exclusive; `None`: from the first). Pages of an export.
    pub fn leaves(&self, under: &Path, after: Option<&Path>, limit: usize) -> Vec<(Path, Value)> {
        let mut out = Vec::new();
        if let Some((node, after)) = self.page_start(under, after) {
            let mut prefix = under.segments().to_vec();
            node.collect_leaves(&mut prefix, after, limit, &mut out);
        }
        out
    }

    /// Up to `limit` paths at or beneath `under` holding a leaf or a tombstone, in key
    /// order, after `after` (exclusive), each with its leaf (and stamp) and its tombstone:
    /// the pages of a full-fidelity export. (`beneath` stamps are not listed.)
    pub fn stamped(&self, under: &Path, after: Option<&Path>, limit: usize) -> Vec<Stamped> {
        let mut out = Vec::new();
        if let Some((node, after)) = self.page_start(under, after) {
            let mut prefix = under.segments().to_vec();
            node.collect_stamped(&mut prefix, after, limit, &mut out);
        }
        out
    }

    /// Where a page under `under` after `after` starts: the node at `under`, and `after`
    /// relative to it. `None` when there is nothing to list.
    fn page_start<'a>(
        &self,
        under: &Path,
        after: Option<&'a Path>,
    ) -> Option<(&Node, Option<&'a [String]>)> {
        let node = self.root.find(under.segments())?;
        let after = match after {
            None => None,
            Some(after) => match after.segments().strip_prefix(under.segments()) {
                Some(relative) => Some(relative),
                // A cursor before the subtree starts it from the first; one past it ends it.
                None if crate::key::encode(after) < crate::key::encode(under) => None,
                None => return None,
            },
        };
        Some((node, after))
    }

    /// Number of visible leaves.
    pub fn leaf_count(&self) -> usize {
        self.root.leaves
    }

    /// Answers a query.
    pub fn query(&self, query: &Query) -> Value {
        let mut answer = Map::new();
        for part in &query.paths {
            if let Some(value) = self.select(part) {
                place(&mut answer, part.path.segments(), value);
            }
        }
        Value::Object(answer)
    }

    /// The value one path query selects, or `None` when it selects nothing.
    pub fn select(&self, part: &PathQuery) -> Option<Value> {
        let node = self.root.find(part.path.segments())?;
        if node.leaves == 0 {
            return None;
        }
        if let Some((_, leaf)) = &node.leaf {
            return Some(leaf.clone());
        }
        if part.is_empty_range() {
            return None;
        }
        let lower = part
            .min
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Included);
        let upper = part
            .max
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Included);
        let range = node
            .children
            .range::<str, _>((lower, upper))
            .filter(|(_, child)| child.leaves > 0)
            .map(|(key, child)| (key.as_str(), child));
        let limited = PathQuery {
            min: None,
            max: None,
            ..part.clone()
        };
        let picked = limited.pick(range);
        let children: Map<String, Value> = picked
            .into_iter()
            .filter_map(|(key, child)| Some((key.to_string(), child.to_value()?)))
            .collect();
        (!children.is_empty()).then_some(Value::Object(children))
    }

    /// Forgets tombstones and branch stamps older than `horizon`. Afterwards a mutation
    /// stamped before `horizon` may resurrect deleted data, so writers must refuse or
    /// re-stamp those (docs/design.md §4: retention window).
    pub fn compact(&mut self, horizon: Stamp) {
        self.root.compact(horizon);
    }
}

/// Leaves a prune removed, by path relative to where it started.
#[derive(Default)]
struct Removed {
    prefix: Vec<String>,
    paths: Vec<Vec<String>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.leaf.is_none()
            && self.tombstone.is_none()
            && self.beneath.is_none()
            && self.children.is_empty()
    }

    /// Adds the leaves at and beneath this node (at `prefix`) that come after `after`, a
    /// path relative to this node (`Some([])`: this node itself), until `out` holds `limit`.
    fn collect_leaves(
        &self,
        prefix: &mut Vec<String>,
        after: Option<&[String]>,
        limit: usize,
        out: &mut Vec<(Path, Value)>,
    ) {
        if out.len() >= limit || self.leaves == 0 {
            return;
        }
        if let Some((_, leaf)) = &self.leaf {
            if after.is_none() {
                if let Ok(path) = Path::from_segments(prefix.iter()) {
                    out.push((path, leaf.clone()));
                }
            }
            return;
        }
        for (key, child, child_after) in self.children_after(after) {
            if out.len() >= limit {
                return;
            }
            prefix.push(key.to_string());
            child.collect_leaves(prefix, child_after, limit, out);
            prefix.pop();
        }
    }

    /// This node (unless `after` is it or beneath it) and those beneath it, in key order.
    fn collect_stamped(
        &self,
        prefix: &mut Vec<String>,
        after: Option<&[String]>,
        limit: usize,
        out: &mut Vec<Stamped>,
    ) {
        if out.len() >= limit {
            return;
        }
        if after.is_none() && (self.leaf.is_some() || self.tombstone.is_some()) {
            if let Ok(path) = Path::from_segments(prefix.iter()) {
                out.push((path, self.leaf.clone(), self.tombstone));
            }
        }
        // `after` naming this node itself: everything beneath it comes after.
        let after = after.filter(|rest| !rest.is_empty());
        for (key, child, child_after) in self.children_after(after) {
            if out.len() >= limit {
                return;
            }
            prefix.push(key.to_string());
            child.collect_stamped(prefix, child_after, limit, out);
            prefix.pop();
        }
    }

    /// The children a page resuming `after` (a path relative to this node) still visits, in
    /// key order, each with the part of `after` beneath it: the first child on `after`'s way
    /// resumes after its rest, the ones following it start from their beginning.
    fn children_after<'a>(
        &'a self,
        after: Option<&'a [String]>,
    ) -> impl Iterator<Item = (&'a CompactString, &'a Node, Option<&'a [String]>)> {
        let (lower, first) = match after {
            Some([first, ..]) => (Bound::Included(first.as_str()), Some(first.as_str())),
            _ => (Bound::Unbounded, None),
        };
        self.children
            .range::<str, _>((lower, Bound::Unbounded))
            .map(move |(key, child)| {
                let child_after = match after {
                    Some([_, rest @ ..]) if Some(key.as_str()) == first => Some(rest),
                    _ => None,
                };
                (key, child, child_after)
            })
    }

    fn find<S: AsRef<str>>(&self, path: &[S]) -> Option<&Node> {
        path.iter()
            .try_fold(self, |node, segment| node.children.get(segment.as_ref()))
    }

    /// Runs `f` on child `key` (a new one if missing, kept only if it then holds something),
    /// removes it if it ends up empty, and adds the change in leaf count that `f` reports.
    /// One map lookup on the common path: this is the hot loop of every write.
    fn with_child(&mut self, key: &str, f: impl FnOnce(&mut Node) -> isize) -> isize {
        let delta = if let Some(child) = self.children.get_mut(key) {
            let delta = f(child);
            if child.is_empty() {
                self.children.remove(key);
            }
            delta
        } else {
            let mut child = Node::default();
            let delta = f(&mut child);
            if !child.is_empty() {
                self.children.insert(CompactString::from(key), child);
            }
            delta
        };
        self.add_leaves(delta);
        delta
    }

    fn add_leaves(&mut self, delta: isize) {
        self.leaves = self.leaves.saturating_add_signed(delta);
    }

    /// Records tombstone (full[at..], t) at this node, the one at `full[..at]`. Returns the
    /// change in this subtree's leaf count.
    fn tombstone(&mut self, full: &[&str], at: usize, t: Stamp, fx: &mut Effects) -> isize {
        if self.tombstone >= Some(t) {
            // Dominated: changes nothing — unlike the delete as written, if something shows.
            if self.find(&full[at..]).is_some_and(|n| n.leaves > 0) {
                fx.inexact();
            }
            return 0;
        }
        let Some(key) = full.get(at) else {
            let before = self.leaves as isize;
            self.tombstone = Some(t);
            let mut removed = Removed::default();
            self.prune(t, Some(&mut removed));
            if self.leaves > 0 {
                // Newer leaves beneath survive: only the older ones went.
                fx.inexact();
                fx.delete_beneath(full, removed.paths);
            }
            return self.leaves as isize - before;
        };
        self.with_child(key, |child| child.tombstone(full, at + 1, t, fx))
    }

    /// Records a write at `full`, seen from this node at `full[..at]`: a leaf (`Some(value)`,
    /// with its tombstone (full, t)) or a branch marker (`None`). Returns the change in this
    /// subtree's leaf count.
    fn write(
        &mut self,
        full: &[&str],
        at: usize,
        value: Option<&Value>,
        t: Stamp,
        fx: &mut Effects,
    ) -> isize {
        if self.tombstone > Some(t) {
            fx.inexact(); // covered by a newer delete
            return 0;
        }
        match (full.get(at), value) {
            (None, Some(value)) => self.write_leaf(full, value, t, fx),
            (None, None) => self.branch_at(&full[..at], t, fx),
            (Some(key), _) => {
                let delta = self.branch_at(&full[..at], t, fx);
                delta + self.with_child(key, |child| child.write(full, at + 1, value, t, fx))
            }
        }
    }

    fn write_leaf(&mut self, full: &[&str], value: &Value, t: Stamp, fx: &mut Effects) -> isize {
        if matches!(self.leaf, Some((s, _)) if s == t) {
            return 0; // the same write again
        }
        let before = self.leaves as isize;
        // Pruning never changes this (it drops only `beneath` older than `t`), so the
        // removed paths need collecting only for a write that will not show.
        let visible = self.beneath <= Some(t);
        let mut removed = Removed::default();
        if self.tombstone < Some(t) {
            self.tombstone = Some(t);
            self.prune(t, (!visible).then_some(&mut removed));
        }
        if visible {
            if self.leaf.is_none() {
                self.leaves += 1;
            }
            self.leaf = Some((t, value.clone()));
        } else {
            // A newer write beneath keeps this a branch: only the older leaves went.
            fx.inexact();
            fx.delete_beneath(full, removed.paths);
        }
        self.leaves as isize - before
    }

    /// Something was written strictly beneath this node (at `here`) at `t`: it is a branch
    /// from then on, and an older leaf here is gone.
    fn branch_at(&mut self, here: &[&str], t: Stamp, fx: &mut Effects) -> isize {
        if self.beneath < Some(t) {
            self.beneath = Some(t);
        }
        if matches!(self.leaf, Some((s, _)) if s < t) {
            self.leaf = None;
            self.add_leaves(-1);
            fx.delete(here);
            return -1;
        }
        0
    }

    /// Drops what tombstone `t` at this node makes permanently irrelevant at and beneath it,
    /// collecting (when asked) the paths, relative to the tombstone, of the leaves it removes.
    fn prune(&mut self, t: Stamp, mut removed: Option<&mut Removed>) {
        if matches!(self.leaf, Some((s, _)) if s < t) {
            self.leaf = None;
            if let Some(removed) = removed.as_deref_mut() {
                removed.paths.push(removed.prefix.clone());
            }
        }
        if self.beneath < Some(t) {
            self.beneath = None;
        }
        if self.children.is_empty() {
            self.leaves = usize::from(self.leaf.is_some());
            return;
        }
        self.children.retain(|key, child| {
            if child.tombstone <= Some(t) {
                child.tombstone = None;
            }
            match removed.as_deref_mut() {
                Some(removed) => {
                    removed.prefix.push(key.to_string());
                    child.prune(t, Some(removed));
                    removed.prefix.pop();
                }
                None => child.prune(t, None),
            }
            !child.is_empty()
        });
        self.recount();
    }

    fn recount(&mut self) {
        self.leaves = usize::from(self.leaf.is_some())
            + self.children.values().map(|c| c.leaves).sum::<usize>();
    }

    fn compact(&mut self, horizon: Stamp) {
        if self.tombstone < Some(horizon) {
            self.tombstone = None;
        }
        if self.beneath < Some(horizon) {
            self.beneath = None;
        }
        self.children.retain(|_, child| {
            child.compact(horizon);
            !child.is_empty()
        });
    }

    fn to_value(&self) -> Option<Value> {
        if self.leaves == 0 {
            return None;
        }
        if let Some((_, leaf)) = &self.leaf {
            return Some(leaf.clone());
        }
        Some(Value::Object(
            self.children
                .iter()
                .filter_map(|(key, child)| Some((key.to_string(), child.to_value()?)))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stamp(n: u64) -> Stamp {
        Stamp::from_packed(n, 0)
    }

    fn apply_all(writes: &[(u64, Value)]) -> Value {
        let mut tree = Tree::new();
        for (n, m) in writes {
            tree.apply(stamp(*n), &Mutation::from_json(m).unwrap());
        }
        tree.to_value()
    }

    #[test]
    fn older_write_cannot_resurrect_deleted_subtree() {
        let out = apply_all(&[
            (2, json!({"delete": {"a": 1}})),
            (1, json!({"merge": {"a": {"b": 1}}})),
        ]);
        assert_eq!(out, json!({}));
    }

    #[test]
    fn invisible_write_beneath_still_turns_an_older_leaf_into_a_branch() {
        // 2: x = 5; 3: x/a/b = 1 (x becomes a branch); 4: delete x/a. In stamp order: {}.
        let out = apply_all(&[
            (4, json!({"delete": {"x": {"a": 1}}})),
            (3, json!({"merge": {"x": {"a": {"b": 1}}}})),
            (2, json!({"merge": {"x": 5}})),
        ]);
        assert_eq!(out, json!({}));
    }

    #[test]
    fn tombstone_beneath_a_leaf_does_not_hide_it() {
        let out = apply_all(&[
            (3, json!({"delete": {"a": {"c": 1}}})),
            (2, json!({"merge": {"a": 5}})),
        ]);
        assert_eq!(out, json!({"a": 5}));
    }

    #[test]
    fn query_skips_children_that_hold_only_tombstones() {
        let mut tree = Tree::new();
        let m = |v: Value| Mutation::from_json(&v).unwrap();
        tree.apply(
            stamp(1),
            &m(json!({"merge": {"l": {"a": 1, "b": 2, "c": 3}}})),
        );
        tree.apply(stamp(2), &m(json!({"delete": {"l": {"a": 1}}})));
        let part = PathQuery {
            limit: Some(1),
            ..PathQuery::new(Path::parse("l").unwrap())
        };
        assert_eq!(tree.select(&part), Some(json!({"b": 2})));
        assert_eq!(tree.leaf_count(), 2);
    }

    #[test]
    fn compaction_forgets_old_tombstones() {
        let mut tree = Tree::new();
        let m = |v: Value| Mutation::from_json(&v).unwrap();
        tree.apply(stamp(5), &m(json!({"delete": {"a": 1}})));
        tree.compact(stamp(6));
        assert_eq!(tree, Tree::new());
    }
}
