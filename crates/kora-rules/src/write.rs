//! `check_write`: may this caller make this write, and what does the server add to it?
//!
//! Four phases, each over the write as it stands after the previous one:
//!
//! 1. **write** (on the client's mutation): every path the mutation writes — each merged
//!    leaf, each branch marker, each deleted path — is governed by the `write` rule of the
//!    nearest pattern at or above it; no such rule denies. Existing nodes beneath a deleted
//!    or overwritten path that have a `write` rule of their own must allow too: their value
//!    changes. Refusal: `permission_denied`.
//! 2. **set** (on the client's mutation): every node matching a rule with `set` that the
//!    write creates or changes (and does not delete) gets those fields, computed from
//!    `data` and `newData`. A field that fails refuses the write (`validation_failed`).
//! 3. **index** (on 1 + 2): every node matching a rule with `index` that the write changes
//!    — deleted nodes included — moves its entries: the entry computed from the old value is
//!    deleted, the one computed from the new value is written.
//! 4. **validate** and **effects** (on the final write, 1 + 2 + 3): every touched node that
//!    still exists after the write must pass the `validate` of its most specific rule (no
//!    inheritance); every changed node's effects whose `when` holds are collected.
//!
//! Server-computed writes (2, 3) bypass `write` rules — clients may not write an index,
//! the server may — but not `validate`. They do not trigger further `set` or `index` rules.
//! The returned [`WritePlan`] is final: the engine combines `extra` into the write and must
//! not run it through `check_write` again.

use std::collections::HashSet;

use kora_core::{Mutation, Path, Value};
use serde_json::{json, Map};

use crate::decide::{denial, existing_beneath, verdict, Caller, Progress, Verdict};
use crate::error::{CheckError, Code, Denial};
use crate::expr::{Env, Stop};
use crate::lookup::Lookup;
use crate::rules::{EffectRule, Has, IndexEntry, Match, Rules};
use crate::template::Filled;
use crate::world::{to_path, Side, World};

/// What the rules add to an allowed write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WritePlan {
    /// Server-computed fields and derived writes, in absolute paths: combine it into the
    /// write (`mutation.combine(plan.extra)`), which then commits as one.
    pub extra: Mutation,
    /// Effects to write to the outbox in the same transaction.
    pub effects: Vec<Effect>,
}

/// An effect for the outbox: `kind` names the runner, `payload` is what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// Always `webhook` for rules files.
    pub kind: String,
    /// `{"url": …, "body": …}`.
    pub payload: Value,
}

impl Rules {
    /// Decides a write. `mutation` is the client's write (absolute paths), `auth` its
    /// claims (`None`: anonymous), `now` the write's time in milliseconds since the epoch,
    /// `lookup` the tree before the write. See the module documentation for the phases.
    pub fn check_write(
        &self,
        mutation: &Mutation,
        auth: Option<&Value>,
        now: i64,
        lookup: &dyn Lookup,
    ) -> Result<WritePlan, CheckError> {
        if self.allows_all() || mutation.is_empty() {
            return Ok(WritePlan::default());
        }
        let mut check = WriteCheck {
            rules: self,
            caller: Caller::new(auth, now),
            lookup,
            progress: Progress::default(),
        };
        check.permissions(mutation)?;
        let set = check.set_fields(mutation)?;
        let with_set = mutation.clone().combine(set.clone());
        let index = check.index(&with_set)?;
        let last = with_set.combine(index.clone());
        check.validate(&last)?;
        let effects = check.effects(&last)?;
        check.progress.finish()?;
        Ok(WritePlan {
            extra: set.combine(index),
            effects,
        })
    }
}

struct WriteCheck<'a> {
    rules: &'a Rules,
    caller: Caller,
    lookup: &'a dyn Lookup,
    progress: Progress,
}

/// Every path a mutation writes: merged leaves, branch markers, deleted paths.
fn written_paths(mutation: &Mutation) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let own = |path: &[&str]| path.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    mutation.for_each_write(|path, _| out.push(own(path)));
    mutation.deletes().for_each_path(|path| out.push(own(path)));
    out.sort();
    out.dedup();
    out
}

/// Paths whose old subtree the mutation removes: deleted paths and merged leaves.
fn removed_roots(mutation: &Mutation) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let own = |path: &[&str]| path.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    mutation.for_each_leaf(|path, _| out.push(own(path)));
    mutation.deletes().for_each_path(|path| out.push(own(path)));
    out
}

impl<'a> WriteCheck<'a> {
    /// Nodes the mutation touches (its layers) or removes (existing nodes beneath deleted
    /// or overwritten paths) that a rule with `what` matches, in tree order.
    fn affected(
        &mut self,
        world: &World,
        mutation: &Mutation,
        what: Has,
    ) -> Result<Vec<(Vec<String>, Match<'a>)>, CheckError> {
        let rules = self.rules;
        let mut out = Vec::new();
        for layer in mutation.layers() {
            let path = layer.path.segments().to_vec();
            if let Some(m) = rules.most_specific(&path, what) {
                self.progress.count(&path)?;
                out.push((path, m));
            }
        }
        let mut seen: HashSet<Vec<String>> = out.iter().map(|(p, _)| p.clone()).collect();
        for root in removed_roots(mutation) {
            for (path, m) in existing_beneath(rules, world, &root, what, &mut self.progress)? {
                if seen.insert(path.clone()) {
                    out.push((path, m));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn permissions(&mut self, mutation: &Mutation) -> Result<(), CheckError> {
        let rules = self.rules;
        let world = World::new(self.lookup, mutation);
        let mut governing: Vec<(Vec<String>, Match<'a>)> = Vec::new();
        for path in written_paths(mutation) {
            match rules.nearest(&path, Has::Write) {
                Some((m, depth)) => governing.push((path[..depth].to_vec(), m)),
                None => self.progress.refuse(Denial {
                    code: Code::PermissionDenied,
                    path: to_path(&path).unwrap_or_default(),
                    rule: None,
                    reason: "no `write` rule at this path or above it".into(),
                })?,
            }
        }
        for root in removed_roots(mutation) {
            let beneath = existing_beneath(rules, &world, &root, Has::Write, &mut self.progress)?;
            governing.extend(beneath);
        }
        governing.sort_by(|a, b| a.0.cmp(&b.0));
        governing.dedup_by(|a, b| a.0 == b.0 && std::ptr::eq(a.1.rule, b.1.rule));
        for (node, m) in &governing {
            self.progress.count(node)?;
            self.check_write_rule(&world, node, m)?;
        }
        Ok(())
    }

    fn check_write_rule(
        &mut self,
        world: &World,
        node: &[String],
        m: &Match,
    ) -> Result<(), CheckError> {
        let Some(clause) = &m.rule.write else {
            return Ok(());
        };
        let env = self
            .caller
            .env(world, &m.captures, node, Side::Before, Side::After);
        match verdict(clause, &env) {
            Verdict::Allow => Ok(()),
            Verdict::Needs(paths) => {
                self.progress.need(paths);
                Ok(())
            }
            denied => {
                let refusal = denial(Code::PermissionDenied, node, m, clause, denied.reason());
                self.progress.refuse(refusal)
            }
        }
    }

    /// True when the node exists after the write and differs from before.
    fn changed(&mut self, world: &World, node: &[String], keep_deleted: bool) -> Option<bool> {
        let before = world.value(Side::Before, node);
        let after = world.value(Side::After, node);
        match (before, after) {
            (Ok(before), Ok(after)) => Some(before != after && (keep_deleted || after.is_some())),
            (Err(a), Err(b)) => {
                self.progress.stop(a.strict(b));
                None
            }
            (Err(stop), _) | (_, Err(stop)) => {
                self.progress.stop(stop);
                None
            }
        }
    }

    fn set_fields(&mut self, mutation: &Mutation) -> Result<Mutation, CheckError> {
        let world = World::new(self.lookup, mutation);
        let mut extra = Mutation::new();
        for layer in mutation.layers() {
            let node = layer.path.segments();
            let Some(m) = self.rules.most_specific(node, Has::Set) else {
                continue;
            };
            self.progress.count(node)?;
            if self.changed(&world, node, false) != Some(true) {
                continue;
            }
            let fields = self.compute_fields(&world, node, &m)?;
            if fields.is_empty() {
                continue;
            }
            match extra.clone().and_merge(&layer.path, Value::Object(fields)) {
                Ok(combined) => extra = combined,
                Err(e) => {
                    let refusal = Denial {
                        code: Code::ValidationFailed,
                        path: layer.path.clone(),
                        rule: None,
                        reason: format!("server-set fields cannot be written: {e}"),
                    };
                    self.progress.refuse(refusal)?;
                }
            }
        }
        Ok(extra)
    }

    fn compute_fields(
        &mut self,
        world: &World,
        node: &[String],
        m: &Match,
    ) -> Result<Map<String, Value>, CheckError> {
        let env = self
            .caller
            .env(world, &m.captures, node, Side::Before, Side::After);
        let mut fields = Map::new();
        for (field, clause) in &m.rule.set {
            match clause.eval(&env) {
                Ok(value) => {
                    fields.insert(field.clone(), value);
                }
                Err(stop) => {
                    if let Some(message) = self.progress.stop(stop) {
                        let reason = format!("failed: {message}");
                        self.progress.refuse(denial(
                            Code::ValidationFailed,
                            node,
                            m,
                            clause,
                            reason,
                        ))?;
                    }
                }
            }
        }
        Ok(fields)
    }

    fn index(&mut self, mutation: &Mutation) -> Result<Mutation, CheckError> {
        let world = World::new(self.lookup, mutation);
        let mut extra = Mutation::new();
        for (node, m) in self.affected(&world, mutation, Has::Index)? {
            if self.changed(&world, &node, true) != Some(true) {
                continue;
            }
            for entry in &m.rule.index {
                extra = self.move_entry(&world, &node, &m, entry, extra)?;
            }
        }
        Ok(extra)
    }

    /// Deletes the entry computed from the old value and writes the one from the new value.
    fn move_entry(
        &mut self,
        world: &World,
        node: &[String],
        m: &Match,
        entry: &IndexEntry,
        extra: Mutation,
    ) -> Result<Mutation, CheckError> {
        let old_env = self
            .caller
            .env(world, &m.captures, node, Side::Before, Side::Before);
        let new_env = self
            .caller
            .env(world, &m.captures, node, Side::Before, Side::After);
        let old = old_entry(entry, &old_env, &mut self.progress);
        let new = new_entry(node, m, entry, &new_env, &mut self.progress)?;
        let (Some(old), Some(new)) = (old, new) else {
            return Ok(extra);
        };
        if old == new {
            return Ok(extra);
        }
        let mut extra = extra;
        if let Some((path, _)) = &old {
            extra = extra.and_delete(path);
        }
        if let Some((path, value)) = new {
            match extra.clone().and_merge(&path, value) {
                Ok(combined) => extra = combined,
                Err(e) => {
                    let reason = format!("the entry at {path} cannot be written: {e}");
                    let refusal = denial(Code::ValidationFailed, node, m, &entry.value, reason);
                    self.progress.refuse(refusal)?;
                }
            }
        }
        Ok(extra)
    }

    fn validate(&mut self, mutation: &Mutation) -> Result<(), CheckError> {
        let world = World::new(self.lookup, mutation);
        for layer in mutation.layers() {
            let node = layer.path.segments();
            let Some(m) = self.rules.most_specific(node, Has::Validate) else {
                continue;
            };
            self.progress.count(node)?;
            match world.exists_after(node) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(stop) => {
                    self.progress.stop(stop);
                    continue;
                }
            }
            let Some(clause) = &m.rule.validate else {
                continue;
            };
            let env = self
                .caller
                .env(&world, &m.captures, node, Side::Before, Side::After);
            match verdict(clause, &env) {
                Verdict::Allow => {}
                Verdict::Needs(paths) => self.progress.need(paths),
                denied => {
                    let refusal = denial(Code::ValidationFailed, node, &m, clause, denied.reason());
                    self.progress.refuse(refusal)?
                }
            }
        }
        Ok(())
    }

    fn effects(&mut self, mutation: &Mutation) -> Result<Vec<Effect>, CheckError> {
        let world = World::new(self.lookup, mutation);
        let mut out = Vec::new();
        for (node, m) in self.affected(&world, mutation, Has::Effects)? {
            if self.changed(&world, &node, true) != Some(true) {
                continue;
            }
            for effect in &m.rule.effects {
                if let Some(found) = self.effect(&world, &node, &m, effect)? {
                    out.push(found);
                }
            }
        }
        Ok(out)
    }

    fn effect(
        &mut self,
        world: &World,
        node: &[String],
        m: &Match,
        effect: &EffectRule,
    ) -> Result<Option<Effect>, CheckError> {
        let env = self
            .caller
            .env(world, &m.captures, node, Side::Before, Side::After);
        if let Some(when) = &effect.when {
            match verdict(when, &env) {
                Verdict::Allow => {}
                Verdict::False => return Ok(None),
                Verdict::Needs(paths) => {
                    self.progress.need(paths);
                    return Ok(None);
                }
                invalid => {
                    let refusal = denial(Code::ValidationFailed, node, m, when, invalid.reason());
                    self.progress.refuse(refusal)?;
                    return Ok(None);
                }
            }
        }
        let Some(body) = &effect.body else {
            return Ok(None);
        };
        match body.eval(&env) {
            Ok(body) => Ok(Some(Effect {
                kind: "webhook".into(),
                payload: json!({"url": effect.url, "body": body}),
            })),
            Err(stop) => {
                if let Some(message) = self.progress.stop(stop) {
                    let reason = format!("failed: {message}");
                    self.progress
                        .refuse(denial(Code::ValidationFailed, node, m, body, reason))?;
                }
                Ok(None)
            }
        }
    }
}

/// The entry of the old value: `Some(None)` when there is none, `None` when data is
/// missing. Failures mean no entry (the old value may predate the rules).
fn old_entry(
    entry: &IndexEntry,
    env: &Env,
    progress: &mut Progress,
) -> Option<Option<(Path, Value)>> {
    let path = match entry.path.fill(env) {
        Ok(Filled::Path(path)) => path,
        Ok(_) => return Some(None),
        Err(stop) => {
            progress.stop(stop);
            return None;
        }
    };
    match entry.value.eval(env) {
        Ok(Value::Null) | Err(Stop::Error(_)) => Some(None),
        Ok(value) => Some(Some((path, value))),
        Err(stop) => {
            progress.stop(stop);
            None
        }
    }
}

/// The entry of the new value; a hole that is not a key or a failing value refuses.
fn new_entry(
    node: &[String],
    m: &Match,
    entry: &IndexEntry,
    env: &Env,
    progress: &mut Progress,
) -> Result<Option<Option<(Path, Value)>>, CheckError> {
    let path = match entry.path.fill(env) {
        Ok(Filled::Path(path)) => path,
        Ok(Filled::Unfilled) => return Ok(Some(None)),
        Ok(Filled::Invalid(reason)) => {
            progress.refuse(Denial {
                code: Code::ValidationFailed,
                path: to_path(node).unwrap_or_default(),
                rule: Some(entry.path_ref(&m.rule.pattern)),
                reason,
            })?;
            return Ok(None);
        }
        Err(stop) => {
            progress.stop(stop);
            return Ok(None);
        }
    };
    match entry.value.eval(env) {
        Ok(Value::Null) => Ok(Some(None)),
        Ok(value) => Ok(Some(Some((path, value)))),
        Err(stop) => {
            if let Some(message) = progress.stop(stop) {
                let reason = format!("failed: {message}");
                progress.refuse(denial(
                    Code::ValidationFailed,
                    node,
                    m,
                    &entry.value,
                    reason,
                ))?;
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lookup::{resolve, NothingLoaded};

    fn rules(text: &str) -> Rules {
        Rules::parse("t.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tree(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn merge(at: &str, value: Value) -> Mutation {
        Mutation::merge(&path(at), value).unwrap()
    }

    fn denied(result: Result<WritePlan, CheckError>) -> (Code, String) {
        match result {
            Err(CheckError::Denied(d)) => (d.code, d.path.to_string()),
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    const OPEN: &str = "rules:\n  a:\n    write: 'true'\n";

    #[test]
    fn without_a_rule_writes_are_denied() {
        let r = rules("rules: {}\n");
        let result = r.check_write(&merge("x", json!(1)), None, 0, &Map::new());
        assert_eq!(denied(result), (Code::PermissionDenied, "x".into()));
    }

    #[test]
    fn allow_all_allows_and_adds_nothing() {
        let plan = Rules::allow_all().check_write(&merge("x", json!(1)), None, 0, &NothingLoaded);
        assert_eq!(plan, Ok(WritePlan::default()));
    }

    #[test]
    fn a_grant_covers_descendants_and_a_deeper_rule_narrows_it() {
        let r = rules("rules:\n  a:\n    write: 'true'\n  a/locked:\n    write: 'false'\n");
        assert!(r
            .check_write(&merge("a/b/c", json!(1)), None, 0, &Map::new())
            .is_ok());
        let result = r.check_write(&merge("a/locked/x", json!(1)), None, 0, &Map::new());
        assert_eq!(denied(result), (Code::PermissionDenied, "a/locked".into()));
    }

    #[test]
    fn a_deeper_rule_protects_existing_data_from_an_ancestor_delete() {
        let r = rules("rules:\n  a:\n    write: 'true'\n  a/locked:\n    write: 'false'\n");
        let with = tree(json!({"a": {"locked": 1, "b": 2}}));
        let result = r.check_write(&Mutation::delete(&path("a")), None, 0, &with);
        assert_eq!(denied(result), (Code::PermissionDenied, "a/locked".into()));
        let overwrite = r.check_write(&merge("a", json!(5)), None, 0, &with);
        assert_eq!(
            denied(overwrite),
            (Code::PermissionDenied, "a/locked".into())
        );
        let without = tree(json!({"a": {"b": 2}}));
        assert!(r
            .check_write(&Mutation::delete(&path("a")), None, 0, &without)
            .is_ok());
    }

    #[test]
    fn validate_applies_to_its_node_only_and_not_to_deletes() {
        let r = rules("rules:\n  a:\n    write: 'true'\n  a/$x:\n    validate: is_int(newData)\n");
        assert!(r
            .check_write(&merge("a/n", json!(1)), None, 0, &Map::new())
            .is_ok());
        let result = r.check_write(&merge("a/n", json!("x")), None, 0, &Map::new());
        assert_eq!(denied(result), (Code::ValidationFailed, "a/n".into()));
        // Not inherited: a/n/deeper has no validate of its own; a/n itself is checked.
        let result = r.check_write(&merge("a/n/deeper", json!("x")), None, 0, &Map::new());
        assert_eq!(denied(result), (Code::ValidationFailed, "a/n".into()));
        let old = tree(json!({"a": {"n": "old"}}));
        assert!(r
            .check_write(&Mutation::delete(&path("a/n")), None, 0, &old)
            .is_ok());
    }

    #[test]
    fn missing_data_is_asked_for_then_decided() {
        let r = rules("rules:\n  a/$x:\n    write: data == null || data.owner == auth.sub\n");
        let m = merge("a/k/v", json!(1));
        let auth = json!({"sub": "u"});
        let result = r.check_write(&m, Some(&auth), 0, &NothingLoaded);
        let Err(CheckError::NeedsData(needs)) = result else {
            panic!("expected a request for data, got {result:?}")
        };
        assert_eq!(needs.paths, vec![path("a/k")]);
        let stored = tree(json!({"a": {"k": {"owner": "u"}}}));
        let mut rounds = 0;
        let load = |p: &Path| Lookup::get(&stored, p).flatten();
        let plan = resolve(load, |l| r.check_write(&m, Some(&auth), 0, l), &mut rounds);
        assert!(plan.is_ok(), "{plan:?}");
        assert_eq!(rounds, 2);
    }

    #[test]
    fn a_refusal_needing_no_data_is_final_at_once() {
        let r = rules("rules:\n  a/$x:\n    write: data == null\n");
        let m = merge("a/k", json!(1))
            .and_merge(&path("b"), json!(1))
            .unwrap();
        let result = r.check_write(&m, None, 0, &NothingLoaded);
        assert_eq!(denied(result), (Code::PermissionDenied, "b".into()));
    }

    #[test]
    fn set_fields_are_merged_and_null_deletes() {
        let r = rules(
            "rules:\n  a/$x:\n    write: 'true'\n    set:\n      at: now\n      draft: 'null'\n",
        );
        let m = merge("a/k", json!({"v": 1, "draft": true}));
        let plan = r.check_write(&m, None, 7, &Map::new()).unwrap();
        assert_eq!(
            plan.extra.to_json(),
            json!({"merge": {"a": {"k": {"at": 7}}}, "delete": {"a": {"k": {"draft": 1}}}})
        );
        let deleted = tree(json!({"a": {"k": {"v": 1}}}));
        let plan = r
            .check_write(&Mutation::delete(&path("a/k")), None, 7, &deleted)
            .unwrap();
        assert!(plan.extra.is_empty());
    }

    #[test]
    fn a_failing_set_field_refuses_the_write() {
        let r = rules("rules:\n  a/$x:\n    write: 'true'\n    set:\n      n: newData.v + 1\n");
        let result = r.check_write(&merge("a/k", json!({"v": "x"})), None, 0, &Map::new());
        assert_eq!(denied(result), (Code::ValidationFailed, "a/k".into()));
    }

    #[test]
    fn server_writes_bypass_write_rules_but_not_validate() {
        let text = "rules:\n  a/$x:\n    write: 'true'\n    index:\n      - path: 'idx/{newData.k}'\n        value: newData.v\n  idx/$k:\n    validate: is_int(newData)\n";
        let r = rules(text);
        let plan = r.check_write(
            &merge("a/x", json!({"k": "K", "v": 1})),
            None,
            0,
            &Map::new(),
        );
        assert_eq!(
            plan.map(|p| p.extra.to_json()),
            Ok(json!({"merge": {"idx": {"K": 1}}, "delete": {}}))
        );
        let result = r.check_write(
            &merge("a/x", json!({"k": "K", "v": "s"})),
            None,
            0,
            &Map::new(),
        );
        assert_eq!(denied(result), (Code::ValidationFailed, "idx/K".into()));
        let client = r.check_write(&merge("idx/K", json!(1)), None, 0, &Map::new());
        assert_eq!(denied(client), (Code::PermissionDenied, "idx/K".into()));
    }

    #[test]
    fn an_index_without_a_filled_template_has_no_entry() {
        let text = "rules:\n  a/$x:\n    write: 'true'\n    index:\n      - path: 'idx/{newData.k}/{$x}'\n";
        let r = rules(text);
        let plan = r
            .check_write(&merge("a/x", json!({"v": 1})), None, 0, &Map::new())
            .unwrap();
        assert!(plan.extra.is_empty());
        let old = tree(json!({"a": {"x": {"k": "K"}}}));
        let plan = r
            .check_write(&merge("a/x/k", json!(null)), None, 0, &old)
            .unwrap();
        assert_eq!(
            plan.extra.to_json(),
            json!({"merge": {}, "delete": {"idx": {"K": {"x": 1}}}})
        );
    }

    #[test]
    fn effects_fire_when_their_condition_holds() {
        let text = "rules:\n  a/$x:\n    write: 'true'\n    effects:\n      - webhook: https://h.test/x\n        when: newData == null\n";
        let r = rules(text);
        let old = tree(json!({"a": {"x": {"v": 1}}}));
        let plan = r
            .check_write(&Mutation::delete(&path("a/x")), None, 0, &old)
            .unwrap();
        assert_eq!(
            plan.effects,
            vec![Effect {
                kind: "webhook".into(),
                payload: json!({"url": "https://h.test/x", "body": null})
            }]
        );
        let plan = r
            .check_write(&merge("a/x/v", json!(2)), None, 0, &old)
            .unwrap();
        assert!(plan.effects.is_empty());
    }

    #[test]
    fn deleting_a_parent_fires_the_effects_of_each_child() {
        let text = "rules:\n  a:\n    write: 'true'\n  a/$x:\n    effects:\n      - webhook: https://h.test/gone\n        body: $x\n";
        let r = rules(text);
        let old = tree(json!({"a": {"x": 1, "y": 2}}));
        let plan = r
            .check_write(&Mutation::delete(&path("a")), None, 0, &old)
            .unwrap();
        let bodies: Vec<&Value> = plan.effects.iter().map(|e| &e.payload["body"]).collect();
        assert_eq!(bodies, [&json!("x"), &json!("y")]);
    }

    #[test]
    fn a_write_reaching_too_many_rule_nodes_is_too_large() {
        let r = rules("rules:\n  a/$x:\n    write: 'true'\n");
        let children: Map<String, Value> = (0..=crate::limits::MAX_RULE_NODES)
            .map(|i| (format!("k{i}"), json!(1)))
            .collect();
        let result = r.check_write(&merge("a", Value::Object(children)), None, 0, &Map::new());
        assert_eq!(denied(result).0, Code::TooLarge);
        let few: Map<String, Value> = (0..100).map(|i| (format!("k{i}"), json!(1))).collect();
        assert!(r
            .check_write(&merge("a", Value::Object(few)), None, 0, &Map::new())
            .is_ok());
    }

    #[test]
    fn the_empty_mutation_is_allowed() {
        let r = rules(OPEN);
        assert_eq!(
            r.check_write(&Mutation::new(), None, 0, &NothingLoaded),
            Ok(WritePlan::default())
        );
    }
}
