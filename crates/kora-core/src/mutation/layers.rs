//! `layers(m)`: every path a mutation touches, with the part of the mutation at that path,
//! ordered from the root down (pre-order, children by key). Interceptors match path
//! patterns against layers, so `todos/$id` sees the creation, change or deletion of a todo
//! whichever way the mutation spells it.

use serde_json::{Map, Value};

use super::{Delete, Mutation};
use crate::path::Path;

/// The part of a mutation at one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer<'a> {
    pub path: Path,
    /// Children merged at this path (when a branch is merged here).
    pub merge: Option<&'a Map<String, Value>>,
    /// The leaf value written at this path (when a leaf is merged here).
    pub leaf: Option<&'a Value>,
    /// Deletes at or beneath this path: `All` when this path is deleted whole.
    pub delete: Option<&'a Delete>,
}

impl<'a> Layer<'a> {
    /// True when this path is deleted whole (it may also be written again: a `set`).
    pub fn deletes_all(&self) -> bool {
        matches!(self.delete, Some(Delete::All))
    }

    /// The value merged for child `key`, if any.
    pub fn merged(&self, key: &str) -> Option<&'a Value> {
        self.merge.and_then(|m| m.get(key))
    }

    /// This layer as a mutation relative to its path, when it can be written as one (a
    /// leaf merged at the layer's own path cannot: the root is always a branch).
    pub fn relative(&self) -> Option<Mutation> {
        if self.leaf.is_some() {
            return None;
        }
        Some(Mutation {
            merge: self.merge.cloned().unwrap_or_default(),
            delete: self.delete.cloned().unwrap_or_default(),
        })
    }
}

#[derive(Clone, Copy)]
enum MergeAt<'a> {
    Nothing,
    Branch(&'a Map<String, Value>),
    Leaf(&'a Value),
}

impl<'a> MergeAt<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None => MergeAt::Nothing,
            Some(Value::Object(map)) => MergeAt::Branch(map),
            Some(leaf) => MergeAt::Leaf(leaf),
        }
    }
}

impl Mutation {
    /// Every touched path with its layer, root first. The root is always included.
    pub fn layers(&self) -> Vec<Layer<'_>> {
        let mut out = Vec::new();
        let merge = if self.merge.is_empty() {
            MergeAt::Nothing
        } else {
            MergeAt::Branch(&self.merge)
        };
        let delete = (!self.delete.is_nothing()).then_some(&self.delete);
        walk(&mut Vec::new(), merge, delete, &mut out);
        out
    }
}

fn walk<'a>(
    prefix: &mut Vec<String>,
    merge: MergeAt<'a>,
    delete: Option<&'a Delete>,
    out: &mut Vec<Layer<'a>>,
) {
    let (merge_map, leaf) = match merge {
        MergeAt::Nothing => (None, None),
        MergeAt::Branch(map) => (Some(map), None),
        MergeAt::Leaf(value) => (None, Some(value)),
    };
    out.push(Layer {
        path: Path::from_valid(prefix.clone()),
        merge: merge_map,
        leaf,
        delete,
    });
    let delete_children = match delete {
        Some(Delete::Children(children)) => Some(children),
        _ => None,
    };
    let mut keys: Vec<&'a String> = merge_map.into_iter().flat_map(|m| m.keys()).collect();
    keys.extend(delete_children.into_iter().flat_map(|c| c.keys()));
    keys.sort();
    keys.dedup();
    for key in keys {
        prefix.push(key.clone());
        walk(
            prefix,
            MergeAt::of(merge_map.and_then(|m| m.get(key))),
            delete_children.and_then(|c| c.get(key)),
            out,
        );
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layers_list_every_touched_path_root_first() {
        let m = Mutation::from_json(&json!({
            "merge": {"todos": {"T1": {"text": "x"}}},
            "delete": {"todos": {"T0": 1}}
        }))
        .unwrap();
        let layers = m.layers();
        let paths: Vec<String> = layers.iter().map(|l| l.path.to_string()).collect();
        assert_eq!(
            paths,
            ["", "todos", "todos/T0", "todos/T1", "todos/T1/text"]
        );
        assert!(layers[2].deletes_all());
        assert_eq!(layers[3].merged("text"), Some(&json!("x")));
        assert_eq!(layers[4].leaf, Some(&json!("x")));
        assert_eq!(
            layers[1].relative().unwrap().to_json(),
            json!({"merge": {"T1": {"text": "x"}}, "delete": {"T0": 1}})
        );
    }

    #[test]
    fn empty_mutation_has_only_the_root_layer() {
        let empty = Mutation::new();
        let layers = empty.layers();
        assert_eq!(layers.len(), 1);
        assert!(layers[0].path.is_root());
        assert!(layers[0].merge.is_none() && layers[0].delete.is_none());
    }
}
