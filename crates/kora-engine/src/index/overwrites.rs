//! The nodes a mutation replaces whole, as an order reads them: what an index (and
//! Firebase's pushes) follow a change by.

use kora_core::mutation::Delete;
use kora_core::Mutation;
use serde_json::Value;

use super::Order;

/// The node at `path` becomes `value` (`None`: deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Overwrite {
    pub path: Vec<String>,
    pub value: Option<Value>,
}

/// The overwrites `mutation` makes, in tree order. Paths are absolute.
pub fn overwrites<O: Order>(mutation: &Mutation) -> Vec<Overwrite> {
    let mut out = Vec::new();
    let merge = Value::Object(mutation.merges().clone());
    walk::<O>(
        &mut Vec::new(),
        Some(mutation.deletes()),
        Some(&merge),
        &mut out,
    );
    out
}

fn walk<O: Order>(
    prefix: &mut Vec<String>,
    delete: Option<&Delete>,
    merge: Option<&Value>,
    out: &mut Vec<Overwrite>,
) {
    if matches!(delete, Some(Delete::All)) {
        out.push(Overwrite {
            path: prefix.clone(),
            value: merge.cloned().and_then(O::normalize),
        });
        return;
    }
    let merged = match merge {
        Some(Value::Object(map)) if !O::is_value(map) => Some(map),
        Some(leaf) => {
            out.push(Overwrite {
                path: prefix.clone(),
                value: O::normalize(leaf.clone()),
            });
            return;
        }
        None => None,
    };
    let deleted = match delete {
        Some(Delete::Children(children)) => Some(children),
        _ => None,
    };
    let mut keys: Vec<&String> = deleted.into_iter().flat_map(|d| d.keys()).collect();
    keys.extend(merged.into_iter().flat_map(|m| m.keys()));
    keys.sort();
    keys.dedup();
    for key in keys {
        prefix.push(key.clone());
        walk::<O>(
            prefix,
            deleted.and_then(|d| d.get(key)),
            merged.and_then(|m| m.get(key)),
            out,
        );
        prefix.pop();
    }
}
