//! Kora changes as Firebase sees them: a committed mutation becomes the set of locations
//! whose whole value it replaced ("overwrites"), which is what Firebase's `d` and `m` pushes
//! and its event streams' `put` and `patch` events say.
//!
//! A mutation deletes, then merges. Walking both trees together, a location the mutation
//! deletes whole becomes one overwrite with whatever the merge puts there; a merged leaf
//! (or a leaf with a priority, `{".value", ".priority"}`) becomes an overwrite of that leaf;
//! merged branches are walked into. The overwrites never nest, so they can be sent in any
//! order, or as one `m`.

use kora_core::Mutation;
use serde_json::{Map, Value};

pub use kora_engine::index::Overwrite;

/// The overwrites `mutation` makes, in tree order, as Firebase reads them. Paths are absolute.
pub fn overwrites(mutation: &Mutation) -> Vec<Overwrite> {
    kora_engine::index::overwrites::<crate::order::FirebaseOrder>(mutation)
}

/// One overwrite, or several under a common location.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// `path` becomes `value`.
    Put { path: Vec<String>, value: Value },
    /// Each relative path (`a/b`) under `path` becomes its value.
    Patch {
        path: Vec<String>,
        children: Map<String, Value>,
    },
}

/// The overwrites as one update, those at or under `base` only, with paths made relative to
/// `base`. `None` when none is.
pub fn update_under(overwrites: &[Overwrite], base: &[String]) -> Option<Update> {
    // An overwrite above `base` replaces it whole: its value, seen from `base`.
    if let Some(above) = overwrites
        .iter()
        .find(|o| base.starts_with(&o.path) && o.path.len() < base.len())
    {
        let mut value = above.value.as_ref();
        for key in &base[above.path.len()..] {
            value = value.and_then(|v| v.get(key));
        }
        return Some(Update::Put {
            path: Vec::new(),
            value: value.cloned().unwrap_or(Value::Null),
        });
    }
    let inside: Vec<&Overwrite> = overwrites
        .iter()
        .filter(|o| o.path.starts_with(base))
        .collect();
    match inside.as_slice() {
        [] => None,
        [one] => Some(Update::Put {
            path: one.path[base.len()..].to_vec(),
            value: one.value.clone().unwrap_or(Value::Null),
        }),
        many => {
            let common = common_prefix(many.iter().map(|o| &o.path[base.len()..]));
            let mut children = Map::new();
            for o in many {
                let rest = &o.path[base.len() + common.len()..];
                children.insert(rest.join("/"), o.value.clone().unwrap_or(Value::Null));
            }
            Some(Update::Patch {
                path: common,
                children,
            })
        }
    }
}

fn common_prefix<'a>(mut paths: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    let Some(first) = paths.next() else {
        return Vec::new();
    };
    let mut len = first.len();
    for path in paths {
        len = len.min(first.iter().zip(path).take_while(|(a, b)| a == b).count());
    }
    // Distinct, non-nested paths never all equal their common prefix; one could, and then
    // the patch needs a key below it.
    first[..len].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kora_core::Path;
    use serde_json::json;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn seg(text: &str) -> Vec<String> {
        text.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_set_is_one_overwrite_with_its_value() {
        let set = Mutation::set(&path("users/ada"), json!({"age": 36})).unwrap();
        assert_eq!(
            overwrites(&set),
            vec![Overwrite {
                path: seg("users/ada"),
                value: Some(json!({"age": 36}))
            }]
        );
    }

    #[test]
    fn merges_become_leaf_overwrites_and_deletes_null_ones() {
        let merge = Mutation::merge(&path("users/ada"), json!({"age": 37, "tags": {"x": true}}))
            .unwrap()
            .and_delete(&path("users/ada/old"));
        let got = overwrites(&merge);
        assert_eq!(
            got,
            vec![
                Overwrite {
                    path: seg("users/ada/age"),
                    value: Some(json!(37))
                },
                Overwrite {
                    path: seg("users/ada/old"),
                    value: None
                },
                Overwrite {
                    path: seg("users/ada/tags/x"),
                    value: Some(json!(true))
                },
            ]
        );
        assert_eq!(
            update_under(&got, &seg("users")),
            Some(Update::Patch {
                path: seg("ada"),
                children: json!({"age": 37, "old": null, "tags/x": true})
                    .as_object()
                    .unwrap()
                    .clone()
            })
        );
    }

    #[test]
    fn a_leaf_with_a_priority_is_overwritten_whole() {
        let merge =
            Mutation::merge(&path("a"), json!({"b": {".value": 1, ".priority": 2}})).unwrap();
        assert_eq!(
            overwrites(&merge),
            vec![Overwrite {
                path: seg("a/b"),
                value: Some(json!({".value": 1, ".priority": 2}))
            }]
        );
    }

    #[test]
    fn updates_are_relative_to_the_listened_location() {
        let set = Mutation::set(&path("users"), json!({"ada": {"age": 1}})).unwrap();
        let restricted = set.restrict(&path("users/ada"));
        assert_eq!(
            update_under(&overwrites(&restricted), &seg("users/ada")),
            Some(Update::Put {
                path: vec![],
                value: json!({"age": 1})
            })
        );
        assert_eq!(update_under(&overwrites(&set), &seg("other")), None);
    }
}
