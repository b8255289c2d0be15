//! Reads: may this caller read a path, and which parts of an answer or of a pushed change
//! may it see?
//!
//! - [`Rules::check_read`]: a query or subscription at a path is allowed when the `read`
//!   rule of the nearest pattern at or above the path allows; no such rule denies.
//! - [`Rules::filter_read`]: removes from an answer every child the caller may not read —
//!   every node beneath the path with a `read` rule of its own that denies, with all it holds.
//! - [`Rules::filter_change`]: the same for a change pushed to a subscriber, judged on the
//!   tree *after* the change. A child that is not readable after the change is replaced by
//!   a delete of that child (so a subscriber drops any copy it held; the delete reveals the
//!   key, never the content). A child whose `read` rule reads data and that the change does
//!   not replace whole is sent whole (delete + merge of its filtered value), because it may
//!   have just become readable and the subscriber would otherwise hold only part of it.
//!
//! Not here: visibility changes caused by data outside the change (a rule reading
//! `root('…')` elsewhere) — a subscriber sees those on its next read or resync.

use kora_core::{Path, Value};
use serde_json::{json, Map};

use crate::decide::{denial, verdict, Caller, Progress, Verdict};
use crate::error::{CheckError, Code, Denial};
use crate::lookup::{descend, Lookup};
use crate::rules::{Has, Rules};
use crate::world::{to_path, Side, World};

impl Rules {
    /// Decides a query or subscription at `path`; `lookup` is the current tree.
    pub fn check_read(
        &self,
        path: &Path,
        auth: Option<&Value>,
        now: i64,
        lookup: &dyn Lookup,
    ) -> Result<(), CheckError> {
        if self.allows_all() {
            return Ok(());
        }
        let nothing = kora_core::Mutation::new();
        let world = World::new(lookup, &nothing);
        let reader = Reader::new(self, auth, now);
        let mut progress = Progress::default();
        reader.check_path(&world, path.segments(), Side::Before, &mut progress)?;
        progress.finish()
    }

    /// Removes from `value`, the answer at `path`, every child the caller may not read.
    /// Refuses (`permission_denied`) when `path` itself may not be read. `Ok(None)` when
    /// nothing readable remains. Each child in `value` must be whole (as query answers are,
    /// ranged or not): rules beneath `path` read their `data` from it.
    pub fn filter_read(
        &self,
        path: &Path,
        value: Value,
        auth: Option<&Value>,
        now: i64,
        lookup: &dyn Lookup,
    ) -> Result<Option<Value>, CheckError> {
        if self.allows_all() {
            return Ok(Some(value));
        }
        let overlay = Overlay {
            base: lookup,
            at: path.segments(),
            value: &value,
        };
        let nothing = kora_core::Mutation::new();
        let world = World::new(&overlay, &nothing);
        let reader = Reader::new(self, auth, now);
        let mut progress = Progress::default();
        reader.check_path(&world, path.segments(), Side::Before, &mut progress)?;
        let mut node = path.segments().to_vec();
        let filtered = reader.filter_value(
            &world,
            Side::Before,
            &mut node,
            value.clone(),
            &mut progress,
        )?;
        progress.finish()?;
        Ok(filtered.filter(|v| v.as_object().is_none_or(|m| !m.is_empty())))
    }

    /// The part of `change` a subscriber of `path` may see. `lookup` holds the tree before
    /// the change or after it (either gives the same result: applying a change twice
    /// equals applying it once). Refuses (`permission_denied`) when the subscriber may no
    /// longer read `path` itself: the engine should end the subscription.
    pub fn filter_change(
        &self,
        path: &Path,
        change: &kora_core::Mutation,
        auth: Option<&Value>,
        now: i64,
        lookup: &dyn Lookup,
    ) -> Result<kora_core::Mutation, CheckError> {
        let part = change.restrict(path);
        if self.allows_all() || part.is_empty() {
            return Ok(part);
        }
        let world = World::new(lookup, change);
        let reader = Reader::new(self, auth, now);
        let mut progress = Progress::default();
        if let Err(refused) = reader.check_path(&world, path.segments(), Side::After, &mut progress)
        {
            return gone_or(refused, &world, path);
        }
        let mut out = part.to_json();
        reader.filter_layers(&world, path, &part, &mut out, &mut progress)?;
        progress.finish()?;
        // Normalising may leave a branch marker above `path`; a subscriber sees nothing there.
        let filtered = kora_core::Mutation::from_json(&out).map(|m| m.restrict(path));
        Ok(filtered.unwrap_or_else(|_| kora_core::Mutation::delete(path)))
    }
}

/// When the subscribed path holds nothing after the change, its subscriber may learn that
/// (a delete carries no data), whatever the read rule now says; otherwise the refusal.
fn gone_or(
    refused: CheckError,
    world: &World,
    path: &Path,
) -> Result<kora_core::Mutation, CheckError> {
    match world.exists_after(path.segments()) {
        Ok(false) => Ok(kora_core::Mutation::delete(path)),
        Ok(true) | Err(crate::expr::Stop::Error(_)) => Err(refused),
        Err(crate::expr::Stop::Needs(paths)) => {
            let mut progress = Progress::default();
            progress.need(paths);
            progress.finish().map(|()| kora_core::Mutation::new())
        }
    }
}

struct Reader<'a> {
    rules: &'a Rules,
    caller: Caller,
}

impl<'a> Reader<'a> {
    fn new(rules: &'a Rules, auth: Option<&Value>, now: i64) -> Self {
        Reader {
            rules,
            caller: Caller::new(auth, now),
        }
    }

    /// The nearest `read` rule at or above `path` must allow, on `side`.
    fn check_path(
        &self,
        world: &World,
        path: &[String],
        side: Side,
        progress: &mut Progress,
    ) -> Result<(), CheckError> {
        let Some((m, depth)) = self.rules.nearest(path, Has::Read) else {
            return progress.refuse(Denial {
                code: Code::PermissionDenied,
                path: to_path(path).unwrap_or_default(),
                rule: None,
                reason: "no `read` rule at this path or above it".into(),
            });
        };
        let (Some(clause), node) = (&m.rule.read, &path[..depth]) else {
            return Ok(());
        };
        let env = self.caller.env(world, &m.captures, node, side, side);
        match verdict(clause, &env) {
            Verdict::Allow => Ok(()),
            Verdict::Needs(paths) => {
                progress.need(paths);
                Ok(())
            }
            denied => progress.refuse(denial(
                Code::PermissionDenied,
                node,
                &m,
                clause,
                denied.reason(),
            )),
        }
    }

    /// Whether `node`'s own `read` rule (if any) allows on `side`: `None` when data is missing.
    fn own_rule_allows(
        &self,
        world: &World,
        node: &[String],
        side: Side,
        progress: &mut Progress,
    ) -> Option<bool> {
        let Some(m) = self.rules.most_specific(node, Has::Read) else {
            return Some(true);
        };
        let clause = m.rule.read.as_ref()?;
        let env = self.caller.env(world, &m.captures, node, side, side);
        match verdict(clause, &env) {
            Verdict::Allow => Some(true),
            Verdict::Needs(paths) => {
                progress.need(paths);
                None
            }
            _ => Some(false),
        }
    }

    /// `value` (at `node`) without the children the caller may not read.
    fn filter_value(
        &self,
        world: &World,
        side: Side,
        node: &mut Vec<String>,
        value: Value,
        progress: &mut Progress,
    ) -> Result<Option<Value>, CheckError> {
        let Value::Object(children) = value else {
            return Ok(Some(value));
        };
        if !self.rules.may_have_beneath(node, Has::Read) {
            return Ok(Some(Value::Object(children)));
        }
        let mut kept = Map::new();
        for (key, child) in children {
            node.push(key);
            progress.count(node)?;
            if self.own_rule_allows(world, node, side, progress) == Some(true) {
                let child = self.filter_value(world, side, node, child, progress)?;
                // A branch whose children are all hidden is, like an empty branch, nothing.
                if let Some(child) = child.filter(|c| c.as_object().is_none_or(|m| !m.is_empty())) {
                    kept.insert(node[node.len() - 1].clone(), child);
                }
            }
            node.pop();
        }
        Ok(Some(Value::Object(kept)))
    }

    /// Walks the touched paths beneath `path`, root first, removing or replacing what the
    /// subscriber may not (or may newly) see in `out` (the change's JSON form).
    fn filter_layers(
        &self,
        world: &World,
        path: &Path,
        part: &kora_core::Mutation,
        out: &mut Value,
        progress: &mut Progress,
    ) -> Result<(), CheckError> {
        let mut handled: Vec<Path> = Vec::new();
        for layer in part.layers() {
            let node = &layer.path;
            if node.depth() <= path.depth() || handled.iter().any(|h| node.starts_with(h)) {
                continue;
            }
            let Some(m) = self.rules.most_specific(node.segments(), Has::Read) else {
                continue;
            };
            progress.count(node.segments())?;
            let replaced = layer.leaf.is_some() || part.deletes().covers(node.segments());
            let reads_tree = m
                .rule
                .read
                .as_ref()
                .is_some_and(|c| c.expression.reads_tree());
            match self.own_rule_allows(world, node.segments(), Side::After, progress) {
                Some(true) if replaced || !reads_tree => continue,
                Some(true) => self.send_whole(world, node, out, progress)?,
                Some(false) => replace(out, node, None),
                None => {}
            }
            handled.push(node.clone());
        }
        Ok(())
    }

    /// Replaces the change under `node` by the node's whole (filtered) value after it.
    fn send_whole(
        &self,
        world: &World,
        node: &Path,
        out: &mut Value,
        progress: &mut Progress,
    ) -> Result<(), CheckError> {
        let after = match world.value(Side::After, node.segments()) {
            Ok(after) => after,
            Err(stop) => {
                progress.stop(stop);
                return Ok(());
            }
        };
        let mut segments = node.segments().to_vec();
        let filtered = match after {
            Some(value) => self.filter_value(world, Side::After, &mut segments, value, progress)?,
            None => None,
        };
        replace(out, node, filtered);
        Ok(())
    }
}

/// In a mutation's JSON form: deletes `node`, drops what was merged under it, and merges
/// `value` there instead (if any).
fn replace(out: &mut Value, node: &Path, value: Option<Value>) {
    let segments = node.segments();
    if let Some(merge) = out.get_mut("merge").and_then(Value::as_object_mut) {
        remove_at(merge, segments);
        if let Some(value) = value {
            kora_core::query::place(merge, segments, value);
        }
    }
    match out.get_mut("delete") {
        Some(Value::Object(delete)) => kora_core::query::place(delete, segments, json!(1)),
        Some(_) => {}
        None => {
            let mut delete = Map::new();
            kora_core::query::place(&mut delete, segments, json!(1));
            if let Some(map) = out.as_object_mut() {
                map.insert("delete".into(), Value::Object(delete));
            }
        }
    }
}

/// Removes the entry at `path` from a merge tree (the branches above it stay).
fn remove_at(map: &mut Map<String, Value>, path: &[String]) {
    let Some((last, init)) = path.split_last() else {
        map.clear();
        return;
    };
    let mut node = map;
    for segment in init {
        match node.get_mut(segment) {
            Some(Value::Object(child)) => node = child,
            _ => return,
        }
    }
    node.remove(last);
}

/// A lookup that answers paths beneath `at` from an answer in hand, when the child of `at`
/// they lie in is part of it; everything else goes to `base`.
struct Overlay<'a> {
    base: &'a dyn Lookup,
    at: &'a [String],
    value: &'a Value,
}

impl Lookup for Overlay<'_> {
    fn get(&self, path: &Path) -> Option<Option<Value>> {
        let segments = path.segments();
        if segments.len() > self.at.len() && segments.starts_with(self.at) {
            let rest = &segments[self.at.len()..];
            let children = self.value.as_object();
            if let (Some(children), Some(first)) = (children, rest.first()) {
                if children.contains_key(first) {
                    return Some(descend(children, rest).cloned());
                }
            }
        }
        self.base.get(path)
    }
}

#[cfg(test)]
mod tests {
    use kora_core::Mutation;

    use super::*;
    use crate::lookup::NothingLoaded;

    const RULES: &str = r#"
rules:
  a:
    read: "true"
  a/private:
    read: "auth.sub == 'me'"
  a/$x/secret:
    read: "data.open == true"
"#;

    fn rules() -> Rules {
        Rules::parse("t.yaml", RULES).unwrap_or_else(|e| panic!("{e}"))
    }

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn tree(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn me() -> Value {
        json!({"sub": "me"})
    }

    #[test]
    fn the_nearest_rule_decides_and_none_denies() {
        let r = rules();
        let t = Map::new();
        assert!(r.check_read(&path("a/b/c"), None, 0, &t).is_ok());
        assert!(r.check_read(&path("a/private/x"), None, 0, &t).is_err());
        assert!(r
            .check_read(&path("a/private/x"), Some(&me()), 0, &t)
            .is_ok());
        let denial = r.check_read(&path("b"), None, 0, &t).unwrap_err();
        assert_eq!(
            denial.denial().map(|d| d.code),
            Some(Code::PermissionDenied)
        );
        assert!(Rules::allow_all()
            .check_read(&path("b"), None, 0, &t)
            .is_ok());
    }

    #[test]
    fn filter_read_removes_denied_children() {
        let r = rules();
        let value = json!({"private": {"k": 1}, "x": {"secret": {"open": false}, "n": 1}, "y": 2});
        let seen = r.filter_read(&path("a"), value.clone(), None, 0, &NothingLoaded);
        assert_eq!(seen, Ok(Some(json!({"x": {"n": 1}, "y": 2}))));
        let seen = r.filter_read(&path("a"), value.clone(), Some(&me()), 0, &NothingLoaded);
        assert_eq!(
            seen,
            Ok(Some(json!({"private": {"k": 1}, "x": {"n": 1}, "y": 2})))
        );
        let only_hidden = json!({"private": {"k": 1}});
        assert_eq!(
            r.filter_read(&path("a"), only_hidden, None, 0, &NothingLoaded),
            Ok(None)
        );
        assert!(r
            .filter_read(&path("b"), value, None, 0, &NothingLoaded)
            .is_err());
    }

    #[test]
    fn filter_change_deletes_what_is_hidden_and_sends_whole_what_may_have_appeared() {
        let r = rules();
        let before = tree(json!({"a": {"x": {"secret": {"open": false, "v": 1}}}}));
        let hide = Mutation::merge(&path("a/private/k"), json!(2)).unwrap();
        let pushed = r
            .filter_change(&path("a"), &hide, None, 0, &before)
            .unwrap();
        assert_eq!(
            pushed.to_json(),
            json!({"merge": {"a": {}}, "delete": {"a": {"private": 1}}})
        );
        let open = Mutation::merge(&path("a/x/secret/open"), json!(true)).unwrap();
        let pushed = r
            .filter_change(&path("a"), &open, None, 0, &before)
            .unwrap();
        assert_eq!(
            pushed.to_json(),
            json!({"merge": {"a": {"x": {"secret": {"open": true, "v": 1}}}},
                   "delete": {"a": {"x": {"secret": 1}}}})
        );
        assert!(r
            .filter_change(&path("b"), &open, None, 0, &before)
            .unwrap()
            .is_empty());
        assert!(r
            .filter_change(&path("a/private"), &hide, None, 0, &before)
            .is_err());
    }

    #[test]
    fn filter_read_asks_for_data_outside_the_answer() {
        let text =
            "rules:\n  a:\n    read: 'true'\n  a/$x:\n    read: root('allow/' + $x) == true\n";
        let r = Rules::parse("t.yaml", text).unwrap();
        let result = r.filter_read(&path("a"), json!({"k": 1}), None, 0, &NothingLoaded);
        let Err(CheckError::NeedsData(needs)) = result else {
            panic!("expected a request for data, got {result:?}")
        };
        assert_eq!(needs.paths, vec![path("allow/k")]);
        let stored = tree(json!({"allow": {"k": true}}));
        assert_eq!(
            r.filter_read(&path("a"), json!({"k": 1}), None, 0, &stored),
            Ok(Some(json!({"k": 1})))
        );
    }

    #[test]
    fn a_subscriber_learns_that_its_path_is_gone_even_if_the_rule_needed_its_data() {
        let text = "rules:\n  n/$id:\n    read: data.public == true\n";
        let r = Rules::parse("t.yaml", text).unwrap();
        let before = tree(json!({"n": {"x": {"public": true, "t": 1}}}));
        let gone = Mutation::delete(&path("n/x"));
        assert_eq!(
            r.filter_change(&path("n/x"), &gone, None, 0, &before),
            Ok(gone.clone())
        );
        let hidden = Mutation::merge(&path("n/x/public"), json!(false)).unwrap();
        assert!(r
            .filter_change(&path("n/x"), &hidden, None, 0, &before)
            .is_err());
    }
}
