//! The part of a mutation that a subscriber of one path must see (docs/design.md §5): changes at
//! or under the path, and deletes or leaf writes of its ancestors — which, seen from the
//! path, delete it. Nothing outside the path is ever included.

use serde_json::{Map, Value};

use super::{put, Delete, Mutation};
use crate::path::Path;

impl Mutation {
    /// The part of this mutation that touches `path`, in absolute coordinates. Empty when the
    /// mutation does not touch it.
    pub fn restrict(&self, path: &Path) -> Mutation {
        self.restrict_range(path, None, None)
    }

    /// Like [`Mutation::restrict`], keeping under `path` only the children whose keys lie in
    /// `[min, max]` (inclusive, by bytes). A leaf written at `path` itself is kept whole.
    pub fn restrict_range(&self, path: &Path, min: Option<&str>, max: Option<&str>) -> Mutation {
        let in_range = |key: &str| min.is_none_or(|m| key >= m) && max.is_none_or(|m| key <= m);
        let mut ancestor_gone = false;
        let mut delete = Some(&self.delete);
        let mut merge = Some(&self.merge);
        let mut leaf: Option<&Value> = None;
        for segment in path.segments() {
            if matches!(delete, Some(Delete::All)) || leaf.is_some() {
                ancestor_gone = true;
            }
            delete = match delete {
                Some(Delete::All) => Some(&Delete::All),
                Some(Delete::Children(children)) => children.get(segment),
                None => None,
            };
            let next = merge.and_then(|m| m.get(segment));
            merge = next.and_then(Value::as_object);
            leaf = next.filter(|v| !v.is_object());
        }

        let mut out = Mutation::new();
        if ancestor_gone || matches!(delete, Some(Delete::All)) {
            out.delete.insert(path.segments());
        } else if let Some(Delete::Children(children)) = delete {
            for (key, sub) in children.iter().filter(|(k, _)| in_range(k)) {
                let mut child = sub.clone().nest(std::slice::from_ref(key));
                child = child.nest(path.segments());
                out.delete.union(child);
            }
        }
        if let Some(value) = leaf {
            put_at(&mut out.merge, path, value.clone());
        } else if let Some(map) = merge {
            // Kept even when no child is in range: the path was merged as a branch, which
            // removes a leaf that stood there (a branch marker).
            let kept: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| in_range(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            put_at(&mut out.merge, path, Value::Object(kept));
        }
        out
    }
}

impl Mutation {
    /// True when applying this mutation can change the value at `path`: it deletes or writes
    /// `path`, something beneath it, or an ancestor (a delete, or a leaf that replaces it).
    /// The same test as `!self.restrict(path).is_empty()`, without building the part.
    pub fn touches(&self, path: &Path) -> bool {
        let mut delete = Some(&self.delete);
        let mut merge = Some(&self.merge);
        for segment in path.segments() {
            if matches!(delete, Some(Delete::All)) {
                return true;
            }
            delete = match delete {
                Some(Delete::Children(children)) => children.get(segment),
                _ => None,
            };
            match merge.and_then(|m| m.get(segment)) {
                Some(Value::Object(child)) => merge = Some(child),
                Some(_leaf) => return true,
                None => merge = None,
            }
            if delete.is_none() && merge.is_none() {
                return false;
            }
        }
        let deletes = delete.is_some_and(|d| !d.is_nothing());
        // A branch merged at `path` itself, even an empty one, turns a leaf there into a branch
        // (at the root, an empty merge is no merge at all).
        deletes || merge.is_some_and(|m| !m.is_empty() || !path.is_root())
    }
}

fn put_at(map: &mut Map<String, Value>, path: &Path, value: Value) {
    match value {
        Value::Object(children) if path.is_root() => *map = children,
        value => put(map, path.segments(), value),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn restrict(mutation: Value, path: &str) -> Value {
        Mutation::from_json(&mutation)
            .unwrap()
            .restrict(&Path::parse(path).unwrap())
            .to_json()
    }

    #[test]
    fn keeps_only_changes_under_the_path() {
        let out = restrict(
            json!({"merge": {"todos": {"T1": {"text": "x"}, "T2": {"text": "y"}}}}),
            "todos/T1",
        );
        assert_eq!(
            out,
            json!({"merge": {"todos": {"T1": {"text": "x"}}}, "delete": {}})
        );
    }

    #[test]
    fn ancestor_delete_becomes_a_delete_of_the_path() {
        let out = restrict(json!({"delete": {"todos": 1}}), "todos/T1");
        assert_eq!(out, json!({"merge": {}, "delete": {"todos": {"T1": 1}}}));
    }

    #[test]
    fn ancestor_leaf_write_becomes_a_delete_of_the_path() {
        let out = restrict(json!({"merge": {"todos": 5}}), "todos/T1");
        assert_eq!(out, json!({"merge": {}, "delete": {"todos": {"T1": 1}}}));
    }

    #[test]
    fn unrelated_changes_give_an_empty_mutation() {
        let m = Mutation::from_json(&json!({"merge": {"users": {"u": 1}}})).unwrap();
        assert!(m.restrict(&Path::parse("todos").unwrap()).is_empty());
    }

    #[test]
    fn range_keeps_children_within_bounds() {
        let m = Mutation::from_json(&json!({
            "merge": {"l": {"a": 1, "b": 2, "c": 3}},
            "delete": {"l": {"d": 1, "b0": 1}}
        }))
        .unwrap();
        let out = m.restrict_range(&Path::parse("l").unwrap(), Some("b"), Some("c"));
        assert_eq!(
            out.to_json(),
            json!({"merge": {"l": {"b": 2, "c": 3}}, "delete": {"l": {"b0": 1}}})
        );
    }

    #[test]
    fn touches_agrees_with_restrict() {
        let cases = [
            json!({"merge": {"a": {"b": 1}}, "delete": {}}),
            json!({"merge": {"a": 1}, "delete": {}}),
            json!({"merge": {"a": {}}, "delete": {}}),
            json!({"merge": {}, "delete": {"a": 1}}),
            json!({"merge": {}, "delete": {"a": {"b": {"c": 1}}}}),
            json!({"merge": {"x": {"y": 2}}, "delete": {"z": 1}}),
            json!({"merge": {}, "delete": 1}),
        ];
        for case in cases {
            let mutation = Mutation::from_json(&case).unwrap();
            for path in ["", "a", "a/b", "a/b/c", "a/c", "x", "x/y/z", "z/q", "q"] {
                let path = Path::parse(path).unwrap();
                assert_eq!(
                    mutation.touches(&path),
                    !mutation.restrict(&path).is_empty(),
                    "{case} at {path}"
                );
            }
        }
    }
}
