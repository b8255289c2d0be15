//! Proptest strategies for Kora's data model, shared by the property tests of every crate
//! (enabled by the `testing` feature). Keys come from a tiny alphabet so that random
//! mutations collide: leaf over branch, branch over leaf, deletes over writes.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::query::place;
use crate::{Mutation, Path, PathQuery, Stamp};

/// Few distinct keys, so that random mutations collide often.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from)
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..5).prop_map(Value::from),
        Just(json!("x")),
        Just(json!(true)),
        Just(json!([1, {"k": 2}])),
    ]
}

/// A value to merge: leaves, nulls and nested objects (empty ones too: branch markers) up to
/// three levels deep.
pub fn merge_value() -> impl Strategy<Value = Value> {
    let leafish = prop_oneof![6 => leaf(), 1 => Just(Value::Null)];
    leafish.prop_recursive(3, 16, 3, |inner| {
        prop::collection::btree_map(key(), inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    })
}

pub fn path_in(depth: std::ops::Range<usize>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(key(), depth)
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let merge = prop::collection::btree_map(key(), merge_value(), 0..4);
    let deletes = prop::collection::vec(path_in(1..4), 0..3);
    (merge, deletes, prop::bool::weighted(0.02)).prop_map(|(merge, deletes, delete_root)| {
        let mut delete = Map::new();
        for path in deletes.iter().filter(|p| !p.is_empty()) {
            place(&mut delete, path, json!(1));
        }
        let delete = if delete_root {
            json!(1)
        } else {
            Value::Object(delete)
        };
        let merge: Map<String, Value> = merge.into_iter().collect();
        Mutation::from_json(&json!({"merge": merge, "delete": delete})).expect("valid mutation")
    })
}

/// Distinct stamps with colliding milliseconds, so origins break ties.
pub fn stamped_set() -> impl Strategy<Value = Vec<(Stamp, Mutation)>> {
    prop::collection::vec((0u64..4, mutation()), 1..7).prop_map(|writes| {
        writes
            .into_iter()
            .enumerate()
            .map(|(i, (ms, m))| (Stamp::new(ms, 0, i as u64), m))
            .collect()
    })
}

pub fn plain_tree() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(mutation(), 1..5).prop_map(|ms| {
        let mut tree = Map::new();
        for m in ms {
            m.apply_to(&mut tree);
        }
        tree
    })
}

pub fn path_query() -> impl Strategy<Value = PathQuery> {
    let bound = prop::option::of(prop_oneof![
        key(),
        Just("a0".to_string()),
        Just("bb".to_string())
    ]);
    (
        path_in(0..3),
        bound.clone(),
        bound,
        prop::option::of(0usize..4),
        any::<bool>(),
    )
        .prop_map(|(path, min, max, limit, reverse)| PathQuery {
            path: Path::from_segments(path).expect("valid path"),
            min,
            max,
            limit,
            reverse,
            subscribe: false,
            by: None,
        })
}
