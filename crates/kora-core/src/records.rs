//! The conflict rules of docs/design.md §4 over flat records, one per path, keyed by the encoded
//! path (`crate::key`): the form every ordered store keeps on disk.
//!
//! A store applies a batch of stamped mutations in three steps:
//!
//! 1. [`read_set`] names what the rules need to see: the record of every path touched and of
//!    each of its ancestors, and every record beneath each deleted or leaf-written path.
//! 2. The store loads those records into [`Records`] and calls [`Records::apply`] for each
//!    mutation in turn (pure, in memory); each call returns the mutation's effect on the
//!    visible tree, as `Tree::apply` does.
//! 3. [`Records::take_changes`] lists the records to write or delete, which the store
//!    writes in the same transaction as the change log.
//!
//! The rule is the reference tree's (`crate::tree`); what differs is where the stamp of a
//! write beneath a path is kept. The tree updates every ancestor on every write; a store doing
//! that would rewrite hot records (`todos`) on every write. Here a record's `branch` holds
//! only what no record beneath it still shows: branch markers at the path, and the stamps of
//! writes that a tombstone there pruned or covered. The newest write beneath a path is then
//! the newest of its own `branch` and of the leaves and `branch`es of the records beneath it,
//! read when a leaf is written (that read is needed anyway to prune). Common writes touch one
//! record. `tests/laws.rs` checks `Records` against `Tree` for any arrival order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::key::{self, KeyError};
use crate::mutation::{Effect, Effects, Mutation};
use crate::query::{place, PathQuery};
use crate::stamp::Stamp;

/// What a store keeps for one path. A record with all three fields empty is not stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The leaf at this path and its stamp. Every stored leaf is visible.
    pub leaf: Option<(Stamp, Value)>,
    /// The newest tombstone at this path not hidden by an ancestor's.
    pub tombstone: Option<Stamp>,
    /// The newest write beneath this path that no record beneath still shows (see above).
    pub branch: Option<Stamp>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.leaf.is_none() && self.tombstone.is_none() && self.branch.is_none()
    }

    /// The newest write this record shows to its ancestors.
    fn newest_write(&self) -> Option<Stamp> {
        self.leaf.as_ref().map(|(s, _)| *s).max(self.branch)
    }

    /// The newest of its three stamps.
    pub fn newest_stamp(&self) -> Option<Stamp> {
        self.newest_write().max(self.tombstone)
    }
}

/// The records a batch of mutations must read before it is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSet {
    /// Single records, by key.
    pub points: BTreeSet<Vec<u8>>,
    /// Keys whose strict descendants must all be read: the half-open range
    /// `(key, key::subtree_end(key))`, excluding `key` itself.
    pub subtrees: BTreeSet<Vec<u8>>,
}

impl ReadSet {
    /// Adds what `mutation` needs.
    pub fn add(&mut self, mutation: &Mutation) {
        mutation
            .deletes()
            .for_each_path(|path| self.add_path(path, true));
        mutation.for_each_write(|path, value| self.add_path(path, value.is_some()));
    }

    fn add_path(&mut self, path: &[&str], with_subtree: bool) {
        let mut k = Vec::new();
        let add = |points: &mut BTreeSet<Vec<u8>>, k: &Vec<u8>| {
            // Sibling writes share their ancestors: copy a key only when it is new.
            if !points.contains(k) {
                points.insert(k.clone());
            }
        };
        add(&mut self.points, &k);
        for segment in path {
            key::push_segment(&mut k, segment);
            add(&mut self.points, &k);
        }
        if with_subtree {
            self.subtrees.insert(k);
        }
    }

    /// Adds what reading the value at `path` needs: its own record and its subtree.
    pub fn add_value(&mut self, path: &crate::path::Path) {
        let k = key::encode(path);
        self.points.insert(k.clone());
        self.subtrees.insert(k);
    }

    /// The subtree ranges with those inside another removed (they are read with it).
    pub fn outer_subtrees(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = Vec::new();
        for k in &self.subtrees {
            if !out.last().is_some_and(|outer| k.starts_with(outer)) {
                out.push(k);
            }
        }
        out
    }
}

/// The read set of one mutation.
pub fn read_set(mutation: &Mutation) -> ReadSet {
    let mut set = ReadSet::default();
    set.add(mutation);
    set
}

/// Records loaded from a store, changed in memory by [`Records::apply`].
#[derive(Debug, Clone, Default)]
pub struct Records {
    map: BTreeMap<Vec<u8>, Record>,
    dirty: BTreeSet<Vec<u8>>,
    /// The newest stamp any record held, since loading: a bound that lets a committer see
    /// at a glance that a write is newer than everything it could overwrite.
    newest: Option<Stamp>,
}

impl Records {
    pub fn new() -> Self {
        Records::default()
    }

    /// Adds a record read from the store.
    pub fn load(&mut self, key: Vec<u8>, record: Record) {
        self.newest = self.newest.max(record.newest_stamp());
        self.map.insert(key, record);
    }

    /// The newest stamp any loaded record held or any applied write set (a bound: it does not
    /// go down when records change). Below a write's stamp, nothing here is newer than it.
    pub fn newest_ever(&self) -> Option<Stamp> {
        self.newest
    }

    /// All records, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Record)> {
        self.map.iter().map(|(k, r)| (k.as_slice(), r))
    }

    /// The record at `key`, if loaded (or written) and not empty.
    pub fn get_record(&self, key: &[u8]) -> Option<&Record> {
        self.map.get(key)
    }

    /// The records of the subtree at `root`: its own and every one beneath, in key order.
    pub fn subtree<'a>(&'a self, root: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a Record)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let end = key::subtree_end(root).map_or(Unbounded, Excluded);
        self.map
            .range((Included(root.to_vec()), end))
            .map(|(k, r)| (k.as_slice(), r))
    }

    /// The records changed since the last call: `Some` to write, `None` to delete.
    pub fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Record>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let record = self.map.get(&k).cloned();
                (k, record)
            })
            .collect()
    }

    /// Applies a stamped mutation whose read set is loaded, and returns its effect on the
    /// visible tree.
    pub fn apply_effect(&mut self, stamp: Stamp, mutation: &Mutation) -> Effect {
        let mut fx = Effects::default();
        mutation.deletes().for_each_path(|path| {
            self.delete(path, stamp, &mut fx);
            fx.end_op();
        });
        mutation.for_each_write(|path, value| {
            self.write(path, value, stamp, &mut fx);
            fx.end_op();
        });
        fx.finish(mutation)
    }

    /// [`Records::apply_effect`] as a mutation (to apply without stamps).
    pub fn apply(&mut self, stamp: Stamp, mutation: &Mutation) -> Mutation {
        self.apply_effect(stamp, mutation).to_mutation(mutation)
    }

    /// The visible value at `path`, from the loaded records: the leaf there, or the leaves
    /// beneath it as a tree (`None`: nothing). Only right when the record at `path` and its
    /// whole subtree are loaded (`ReadSet::add_value`).
    pub fn value_at(&self, path: &crate::path::Path) -> Option<Value> {
        let part = PathQuery::new(path.clone());
        let mut asm = Assembler::new(&part);
        if let Some(own) = self.get(asm.key()) {
            if asm.push_own(own) {
                return asm.finish();
            }
        }
        let (start, end) = asm.children_range();
        for (k, r) in self.map.range(start..) {
            if end.as_deref().is_some_and(|e| k.as_slice() >= e) {
                break;
            }
            // Keys loaded here were encoded from valid paths.
            if !asm.push(k, r).unwrap_or(false) {
                break;
            }
        }
        asm.finish()
    }

    /// The newest stamp (of a leaf, tombstone or branch) among the loaded records that `set`
    /// names: a write stamped above it wins every conflict with what is stored there.
    pub fn newest_stamp(&self, set: &ReadSet) -> Option<Stamp> {
        let mut newest = None;
        for k in &set.points {
            newest = newest.max(self.get(k).and_then(Record::newest_stamp));
        }
        for k in set.outer_subtrees() {
            for key in self.beneath_keys(k) {
                newest = newest.max(self.get(key).and_then(Record::newest_stamp));
            }
        }
        newest
    }

    fn get(&self, key: &[u8]) -> Option<&Record> {
        self.map.get(key)
    }

    /// Changes the record at `key` (created if absent), dropping it if left empty.
    fn update<T>(&mut self, key: &[u8], f: impl FnOnce(&mut Record) -> T) -> T {
        // Copies of the key only where a new entry needs one: this runs for every record
        // every write changes.
        if !self.map.contains_key(key) {
            self.map.insert(key.to_vec(), Record::default());
        }
        let record = self.map.get_mut(key).expect("inserted above");
        let out = f(record);
        self.newest = self.newest.max(record.newest_stamp());
        if record.is_empty() {
            self.map.remove(key);
        }
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_vec());
        }
        out
    }

    /// Index of the first key along the path whose tombstone is newer than `t` (or, with
    /// `inclusive`, not older), if any.
    fn covering(&self, keys: &KeysAlong, t: Stamp, inclusive: bool) -> Option<usize> {
        (0..keys.len()).position(|i| {
            self.get(keys.at(i))
                .and_then(|r| r.tombstone)
                .is_some_and(|ts| ts > t || (inclusive && ts == t))
        })
    }

    fn delete(&mut self, path: &[&str], t: Stamp, fx: &mut Effects) {
        let keys = KeysAlong::new(path);
        let target = keys.last();
        if self.covering(&keys, t, true).is_some() {
            // Dominated: changes nothing — unlike the delete as written, if something shows.
            if self.has_leaves(target) {
                fx.inexact();
            }
            return;
        }
        let removed = self.prune(target, t);
        if self.has_leaves(target) {
            // Newer leaves beneath survive: only the older ones went.
            fx.inexact();
            fx.delete_beneath(path, removed);
        }
    }

    fn write(&mut self, path: &[&str], value: Option<&Value>, t: Stamp, fx: &mut Effects) {
        let keys = KeysAlong::new(path);
        let cover = self.covering(&keys, t, false);
        // The write turns every ancestor above the cover into a branch from `t` on.
        let reach = cover.unwrap_or(keys.len() - 1);
        for depth in 0..reach {
            self.kill_older_leaf(keys.at(depth), &path[..depth], t, fx);
        }
        if let Some(at) = cover {
            fx.inexact();
            // Nothing changes at or beneath a newer tombstone; its record keeps `t` so that
            // later leaves above it still see that something was written beneath them.
            self.update(keys.at(at), |r| r.branch = r.branch.max(Some(t)));
            return;
        }
        let target = keys.last();
        match value {
            None => {
                self.kill_older_leaf(target, path, t, fx);
                self.update(target, |r| r.branch = r.branch.max(Some(t)));
            }
            Some(value) => self.write_leaf(target, path, value, t, fx),
        }
    }

    fn write_leaf(
        &mut self,
        target: &[u8],
        path: &[&str],
        value: &Value,
        t: Stamp,
        fx: &mut Effects,
    ) {
        let current = self.get(target);
        if current
            .and_then(|r| r.leaf.as_ref())
            .is_some_and(|(s, _)| *s == t)
        {
            return; // the same write again
        }
        let removed = if current.and_then(|r| r.tombstone) < Some(t) {
            self.prune(target, t)
        } else {
            Vec::new()
        };
        if self.newest_beneath(target) <= Some(t) {
            self.update(target, |r| r.leaf = Some((t, value.clone())));
        } else {
            // A newer write beneath keeps this a branch: only the older leaves went.
            fx.inexact();
            self.update(target, |r| r.branch = r.branch.max(Some(t)));
            fx.delete_beneath(path, removed);
        }
    }

    fn kill_older_leaf(&mut self, key: &[u8], path: &[&str], t: Stamp, fx: &mut Effects) {
        let older = self
            .get(key)
            .and_then(|r| r.leaf.as_ref())
            .is_some_and(|(s, _)| *s < t);
        if older {
            self.update(key, |r| r.leaf = None);
            fx.delete(path);
        }
    }

    /// Sets tombstone `t` at `target` and drops what it makes irrelevant at and beneath it,
    /// keeping the stamps of dropped writes in `target`'s `branch`. Returns the paths,
    /// relative to `target`, of the visible leaves removed.
    fn prune(&mut self, target: &[u8], t: Stamp) -> Vec<Vec<String>> {
        let mut removed = Vec::new();
        let mut folded = None;
        let touched = |r: &Record| {
            r.tombstone.is_some_and(|s| s <= t)
                || r.branch.is_some_and(|s| s < t)
                || r.leaf.as_ref().is_some_and(|(s, _)| *s < t)
        };
        let beneath: Vec<Vec<u8>> = self
            .beneath_keys(target)
            .filter(|k| self.get(k).is_some_and(touched))
            .cloned()
            .collect();
        for k in beneath {
            let relative = relative_path(&k[target.len()..]);
            self.update(&k, |r| {
                if r.tombstone <= Some(t) {
                    r.tombstone = None;
                }
                if r.branch < Some(t) {
                    folded = folded.max(r.branch.take());
                }
                if let Some((s, _)) = r.leaf.take_if(|(s, _)| *s < t) {
                    folded = folded.max(Some(s));
                    removed.push(relative);
                }
            });
        }
        self.update(target, |r| {
            r.tombstone = Some(t);
            if let Some((s, _)) = r.leaf.take_if(|(s, _)| *s < t) {
                folded = folded.max(Some(s));
                removed.insert(0, Vec::new());
            }
            r.branch = r.branch.max(folded);
        });
        removed
    }

    fn beneath_keys<'a>(&'a self, target: &[u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        use std::ops::Bound::{Excluded, Unbounded};
        let end = key::subtree_end(target).map_or(Unbounded, Excluded);
        self.map
            .range::<[u8], _>((Excluded(target), end.as_ref().map(|e| e.as_slice())))
            .map(|(k, _)| k)
    }

    /// The newest write at or beneath `target`'s children, and `target`'s own `branch`.
    fn newest_beneath(&self, target: &[u8]) -> Option<Stamp> {
        let own = self.get(target).and_then(|r| r.branch);
        self.beneath_keys(target)
            .filter_map(|k| self.get(k).and_then(Record::newest_write))
            .fold(own, |acc, s| acc.max(Some(s)))
    }

    fn has_leaves(&self, target: &[u8]) -> bool {
        self.get(target).is_some_and(|r| r.leaf.is_some())
            || self
                .beneath_keys(target)
                .any(|k| self.get(k).is_some_and(|r| r.leaf.is_some()))
    }
}

/// The keys of a path's ancestors (root first) and of the path itself, last: one buffer,
/// sliced — the hot loop of every apply needs them without an allocation per ancestor.
struct KeysAlong {
    buf: Vec<u8>,
    /// `ends[i]`: the end of key `i` in `buf` (key 0, the root's, is empty).
    ends: Vec<usize>,
}

impl KeysAlong {
    fn new(path: &[&str]) -> Self {
        let mut buf = Vec::with_capacity(path.iter().map(|s| s.len() + 1).sum());
        let mut ends = Vec::with_capacity(path.len() + 1);
        ends.push(0);
        for segment in path {
            key::push_segment(&mut buf, segment);
            ends.push(buf.len());
        }
        KeysAlong { buf, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn at(&self, i: usize) -> &[u8] {
        &self.buf[..self.ends[i]]
    }

    fn last(&self) -> &[u8] {
        &self.buf
    }
}

/// The segments of a relative key (`b\0c\0` → `["b", "c"]`). Keys here were encoded from
/// valid paths, so segments are valid UTF-8.
fn relative_path(relative: &[u8]) -> Vec<String> {
    relative
        .split(|b| *b == key::TERMINATOR)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Builds the answer to one path query from records read in key order (or reverse key order
/// when the query is `reverse`). Feed it the record at the path itself first, if any, then the
/// records of [`Assembler::children_range`]; stop when [`Assembler::push`] returns `false`.
#[derive(Debug)]
pub struct Assembler<'q> {
    part: &'q PathQuery,
    base: Vec<u8>,
    leaf: Option<Value>,
    children: Map<String, Value>,
    current: Option<Vec<u8>>,
    full: bool,
}

impl<'q> Assembler<'q> {
    pub fn new(part: &'q PathQuery) -> Self {
        Assembler {
            part,
            base: key::encode(&part.path),
            leaf: None,
            children: Map::new(),
            current: None,
            full: part.limit == Some(0) || part.is_empty_range(),
        }
    }

    /// The key of the queried path.
    pub fn key(&self) -> &[u8] {
        &self.base
    }

    /// The keys to scan for children: `[start, end)`, `end` unbounded when `None`.
    pub fn children_range(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        key::children_range(
            &self.base,
            self.part.min.as_deref(),
            self.part.max.as_deref(),
        )
    }

    /// True when the record at the path itself answers the query (it holds a leaf): then no
    /// children need to be read.
    pub fn push_own(&mut self, record: &Record) -> bool {
        if let Some((_, leaf)) = &record.leaf {
            self.leaf = Some(leaf.clone());
            return true;
        }
        false
    }

    /// Adds a record from the children range. Returns `false` once the limit is reached:
    /// read no further.
    pub fn push(&mut self, key: &[u8], record: &Record) -> Result<bool, KeyError> {
        if self.full {
            return Ok(false);
        }
        let Some((_, leaf)) = &record.leaf else {
            return Ok(true);
        };
        if key == self.base.as_slice() {
            // The path's own record, met in the children range (which starts at the path's
            // key): a store whose reads are not snapshots (Cassandra) found no leaf there on
            // the point read and one on the scan. The leaf is the newer state and hides
            // any children.
            self.leaf = Some(leaf.clone());
            self.full = true;
            return Ok(false);
        }
        let relative = key.strip_prefix(self.base.as_slice()).unwrap_or_default();
        let child_end = relative
            .iter()
            .position(|b| *b == key::TERMINATOR)
            .ok_or(KeyError::Unterminated)?;
        let child = &relative[..=child_end];
        if self.current.as_deref() != Some(child) {
            if self.part.limit.is_some_and(|limit| self.count() >= limit) {
                self.full = true;
                return Ok(false);
            }
            self.current = Some(child.to_vec());
        }
        let path = key::decode(relative)?;
        place(&mut self.children, path.segments(), leaf.clone());
        Ok(true)
    }

    fn count(&self) -> usize {
        self.children.len()
    }

    /// The answer: the value at the path, `None` when nothing is there.
    pub fn finish(self) -> Option<Value> {
        if self.leaf.is_some() {
            return self.leaf;
        }
        (!self.children.is_empty()).then_some(Value::Object(self.children))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::path::Path;

    fn m(value: Value) -> Mutation {
        Mutation::from_json(&value).unwrap()
    }

    fn stamp(n: u64) -> Stamp {
        Stamp::from_packed(n, 0)
    }

    #[test]
    fn read_set_holds_ancestors_targets_and_subtrees() {
        let set = read_set(&m(
            json!({"merge": {"a": {"b": 1, "c": {}}}, "delete": {"d": 1}}),
        ));
        let points: Vec<&[u8]> = set.points.iter().map(Vec::as_slice).collect();
        assert_eq!(points, [&b""[..], b"a\0", b"a\0b\0", b"a\0c\0", b"d\0"]);
        let subtrees: Vec<&[u8]> = set.subtrees.iter().map(Vec::as_slice).collect();
        assert_eq!(subtrees, [&b"a\0b\0"[..], b"d\0"]);
    }

    #[test]
    fn common_write_changes_only_its_own_record() {
        let mut records = Records::new();
        records.apply(stamp(1), &m(json!({"merge": {"todos": {"a": {"x": 1}}}})));
        records.take_changes();
        records.apply(stamp(2), &m(json!({"merge": {"todos": {"b": {"x": 1}}}})));
        let changed: Vec<Vec<u8>> = records.take_changes().into_iter().map(|(k, _)| k).collect();
        assert_eq!(changed, [b"todos\0b\0x\0".to_vec()]);
    }

    #[test]
    fn assembler_takes_a_leaf_found_late_at_the_path_itself() {
        let part = PathQuery::new(Path::parse("a/b").unwrap());
        let mut asm = Assembler::new(&part);
        let leaf = Record {
            leaf: Some((stamp(1), json!(7))),
            ..Record::default()
        };
        let key = asm.key().to_vec();
        assert!(!asm.push(&key, &leaf).unwrap());
        assert_eq!(asm.finish(), Some(json!(7)));
    }

    #[test]
    fn assembler_takes_whole_children_up_to_the_limit() {
        let mut records = Records::new();
        records.apply(
            stamp(1),
            &m(json!({"merge": {"l": {"a": {"x": 1, "y": 2}, "b": 3, "c": 4}}})),
        );
        let part = PathQuery {
            limit: Some(2),
            ..PathQuery::new(Path::parse("l").unwrap())
        };
        let mut asm = Assembler::new(&part);
        let (start, end) = asm.children_range();
        for (k, r) in records.iter() {
            let inside = k >= start.as_slice() && end.as_deref().is_none_or(|e| k < e);
            if inside && !asm.push(k, r).unwrap() {
                break;
            }
        }
        assert_eq!(asm.finish(), Some(json!({"a": {"x": 1, "y": 2}, "b": 3})));
    }
}
