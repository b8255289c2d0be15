//! `combine(a, b)`: one mutation equal to applying `a`, then `b`.
//!
//! 1. `b`'s deletes remove what `a` merges at or under them, and join `a`'s deletes. The
//!    branches `a` merged above a removed path stay, even when left empty: merging them still
//!    turned a leaf there into a branch (a branch marker, see `Mutation`).
//! 2. `b`'s merges are merged into `a`'s. Where `b` merges a branch onto a leaf that `a`
//!    merges, the combined mutation must also delete that path first: applied in sequence the
//!    leaf would have replaced whatever the tree held there, so the branch must not be merged
//!    into the tree's old content. This case is absent from Riptide's `Dynamic.combine`, and
//!    without it `apply(combine(a, b)) == apply(b) ∘ apply(a)` does not hold.

use serde_json::{Map, Value};

use super::{Delete, Mutation};

impl Mutation {
    /// One mutation equal to applying `self`, then `next`.
    pub fn combine(mut self, next: Mutation) -> Mutation {
        let Mutation {
            merge: next_merge,
            delete: next_delete,
        } = next;
        next_delete.for_each_path(|path| unmerge(&mut self.merge, path));
        self.delete.union(next_delete);
        merge_into(
            &mut self.merge,
            &mut self.delete,
            &mut Vec::new(),
            next_merge,
        );
        self.normalize();
        self
    }
}

/// Removes `path` from a merge tree, keeping the branches above it. A path that runs into a
/// leaf before its end removes nothing (deleting beneath a leaf is a no-op).
fn unmerge(map: &mut Map<String, Value>, path: &[&str]) {
    match path {
        [] => map.clear(),
        [key] => {
            map.remove(*key);
        }
        [key, rest @ ..] => {
            if let Some(Value::Object(child)) = map.get_mut(*key) {
                unmerge(child, rest);
            }
        }
    }
}

fn merge_into(
    dst: &mut Map<String, Value>,
    delete: &mut Delete,
    prefix: &mut Vec<String>,
    src: Map<String, Value>,
) {
    for (key, value) in src {
        let existing_is_object = dst.get(&key).map(Value::is_object);
        match (existing_is_object, value) {
            (Some(true), Value::Object(sub)) => {
                if let Some(Value::Object(child)) = dst.get_mut(&key) {
                    prefix.push(key);
                    merge_into(child, delete, prefix, sub);
                    prefix.pop();
                }
            }
            (Some(false), branch @ Value::Object(_)) => {
                prefix.push(key);
                delete.insert(prefix);
                let key = prefix.pop().unwrap_or_default();
                dst.insert(key, branch);
            }
            (_, value) => {
                dst.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(value: Value) -> Mutation {
        Mutation::from_json(&value).unwrap()
    }

    #[test]
    fn branch_merged_onto_a_merged_leaf_deletes_first() {
        let combined = m(json!({"merge": {"a": 1}})).combine(m(json!({"merge": {"a": {"b": 2}}})));
        assert_eq!(
            combined.to_json(),
            json!({"merge": {"a": {"b": 2}}, "delete": {"a": 1}})
        );
    }

    #[test]
    fn delete_beneath_a_merged_leaf_keeps_the_leaf() {
        let combined = m(json!({"merge": {"a": 1}})).combine(m(json!({"delete": {"a": {"b": 1}}})));
        assert_eq!(
            combined.to_json(),
            json!({"merge": {"a": 1}, "delete": {"a": {"b": 1}}})
        );
    }

    #[test]
    fn deleting_all_that_a_branch_merge_wrote_keeps_the_branch_marker() {
        let combined =
            m(json!({"merge": {"b": {"c": 0}}})).combine(m(json!({"delete": {"b": {"c": 1}}})));
        assert_eq!(
            combined.to_json(),
            json!({"merge": {"b": {}}, "delete": {"b": {"c": 1}}})
        );
    }

    #[test]
    fn root_delete_clears_earlier_merges() {
        let combined = m(json!({"merge": {"a": 1}})).combine(m(json!({"delete": 1})));
        assert_eq!(combined.to_json(), json!({"merge": {}, "delete": 1}));
    }
}
