//! Applying a mutation to a plain JSON tree, without stamps: deletes, then merges.
//!
//! This is the sequential meaning of a mutation, the one `combine` is defined against and the
//! one the stamped tree must equal when mutations arrive in stamp order.

use serde_json::{Map, Value};

use super::Mutation;

impl Mutation {
    /// Applies this mutation to `tree` (the root object). Branches left empty disappear.
    pub fn apply_to(&self, tree: &mut Map<String, Value>) {
        self.delete.for_each_path(|path| remove(tree, path));
        merge_values(tree, &self.merge);
    }
}

/// Removes `path` from a plain tree, pruning branches left empty. A path that runs into a leaf
/// before its end removes nothing (deleting beneath a leaf is a no-op).
fn remove(map: &mut Map<String, Value>, path: &[&str]) {
    match path {
        [] => map.clear(),
        [key] => {
            map.remove(*key);
        }
        [key, rest @ ..] => {
            if let Some(Value::Object(child)) = map.get_mut(*key) {
                remove(child, rest);
                if child.is_empty() {
                    map.remove(*key);
                }
            }
        }
    }
}

/// Merges `src` into `dst`: a branch replaces a leaf, a leaf replaces anything, and a branch
/// left without children (a marker merged onto a leaf) disappears.
fn merge_values(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (key, value) in src {
        let Value::Object(sub) = value else {
            dst.insert(key.clone(), value.clone());
            continue;
        };
        let slot = dst
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(existing) = slot {
            merge_values(existing, sub);
            if existing.is_empty() {
                dst.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(tree: Value, mutation: Value) -> Value {
        let Value::Object(mut map) = tree else {
            panic!("tree must be an object")
        };
        Mutation::from_json(&mutation).unwrap().apply_to(&mut map);
        Value::Object(map)
    }

    #[test]
    fn deletes_apply_before_merges() {
        let out = apply(
            json!({"a": {"x": 1, "y": 2}}),
            json!({"delete": {"a": 1}, "merge": {"a": {"z": 3}}}),
        );
        assert_eq!(out, json!({"a": {"z": 3}}));
    }

    #[test]
    fn branch_replaces_leaf_and_leaf_replaces_branch() {
        assert_eq!(
            apply(json!({"a": 5}), json!({"merge": {"a": {"c": 7}}})),
            json!({"a": {"c": 7}})
        );
        assert_eq!(
            apply(json!({"a": {"b": 1}}), json!({"merge": {"a": 5}})),
            json!({"a": 5})
        );
    }

    #[test]
    fn deleting_the_last_child_removes_the_branch() {
        assert_eq!(
            apply(
                json!({"a": {"b": 1}, "c": 1}),
                json!({"delete": {"a": {"b": 1}}})
            ),
            json!({"c": 1})
        );
    }

    #[test]
    fn branch_marker_removes_a_leaf_and_keeps_a_branch() {
        assert_eq!(
            apply(json!({"a": 5}), json!({"merge": {"a": {}}})),
            json!({})
        );
        assert_eq!(
            apply(json!({"a": {"b": 1}}), json!({"merge": {"a": {}}})),
            json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn deleting_beneath_a_leaf_changes_nothing() {
        assert_eq!(
            apply(json!({"a": 1}), json!({"delete": {"a": {"b": 1}}})),
            json!({"a": 1})
        );
    }
}
