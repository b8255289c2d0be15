//! Firebase nodes in export format: the SDK's node hash (which transactions compare, so it must
//! match bit for bit), normalization of client-sent values into the canonical stored form,
//! REST's `shallow=true`, server values ([`resolve_server_values`]) and push ids ([`push_id`]).
//!
//! See [`super::order`] for the format and for the orderings the hash relies on.

mod compound;
mod push_id;
mod server_values;

use base64::Engine;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::order::{children, node_kind, priority_of, priority_order, unwrap_value, NodeKind};

pub use compound::{range_merges, CompoundHash, RangeMerge, COMPOUND_HASH_ABOVE_BYTES};
pub use push_id::{push_id, PushIdState};
pub use server_values::{has_unknown_server_value, resolve_server_values};

/// The SDK's node hash (`LeafNode.hash`, `ChildrenNode.hash`): `""` for the empty node, else the
/// Base64 SHA-1 of the node's hash text. Clients send it with transaction writes (`h`) and the
/// server answers `datastale` when it differs from the hash of the stored node.
pub fn hash(node: Option<&Value>) -> String {
    let text = node.map(hash_text).unwrap_or_default();
    if text.is_empty() {
        return text;
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(text.as_bytes()))
}

/// The text that is hashed: `priority:<p>:` when there is a priority, then `<type>:<value>` for a
/// leaf or `:<key>:<child hash>` for each child in priority-index order.
fn hash_text(node: &Value) -> String {
    let kind = node_kind(Some(node));
    if kind == NodeKind::Empty {
        // Firebase drops the priority of an empty node, so it has no hash either.
        return String::new();
    }
    let mut text = String::new();
    if let Some(priority) = priority_of(node) {
        text.push_str("priority:");
        text.push_str(&priority_hash_text(priority));
        text.push(':');
    }
    match kind {
        NodeKind::Bool(b) => text.push_str(&format!("boolean:{b}")),
        NodeKind::Number(x) => text.push_str(&format!("number:{}", double_hex(x))),
        NodeKind::String(s) => {
            text.push_str("string:");
            text.push_str(s);
        }
        NodeKind::Children => push_children_hashes(node, &mut text),
        NodeKind::Empty => {}
    }
    text
}

fn push_children_hashes(node: &Value, text: &mut String) {
    let mut kids = children(node);
    kids.sort_by(|a, b| priority_order((&a.0, a.1), (&b.0, b.1)));
    for (key, child) in kids {
        let child_hash = hash(Some(child));
        if !child_hash.is_empty() {
            text.push(':');
            text.push_str(&key);
            text.push(':');
            text.push_str(&child_hash);
        }
    }
}

/// `priorityHashText`: numbers as `number:<hex>`, anything else as `string:<text>`.
fn priority_hash_text(priority: &Value) -> String {
    match priority {
        Value::Number(n) => format!("number:{}", double_hex(super::order::number_f64(n))),
        Value::String(s) => format!("string:{s}"),
        other => format!("string:{other}"),
    }
}

/// `doubleToIEEE754String`: the big-endian IEEE-754 bits as 16 lowercase hex digits. The exact
/// bits, as Android and the C++ SDK compute them (the JS approximation differs only for doubles
/// next to powers of two, like `3.9999999999999996`).
fn double_hex(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

/// Makes a client-sent value canonical, or `None` for the empty node:
///
/// - arrays become objects keyed `"0"`, `"1"`, …;
/// - `null` children, empty objects and objects whose children all vanish are dropped, together
///   with their priority (Firebase keeps no empty nodes);
/// - `{".value": v}` without a priority becomes `v`; `{".value": v, ".priority": p}` stays;
/// - a `.priority` that is not a number or a string (`null` included) is removed;
/// - other `.` members (such as an unresolved `.sv`) are left out.
///
/// Numbers are kept as sent (`1.0` stays `1.0`): ordering and hashing read them as doubles.
pub fn normalize(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) => normalize_children(indexed(items), None),
        Value::Object(map) => normalize_object(map),
        leaf => Some(leaf),
    }
}

fn normalize_object(mut map: Map<String, Value>) -> Option<Value> {
    let priority = map
        .remove(".priority")
        .filter(|p| p.is_number() || p.is_string());
    // As in the SDK's `nodeFromJSON`: a non-null `.value` replaces the object, and the
    // replacement's own metadata is ignored.
    match map.remove(".value") {
        None | Some(Value::Null) => normalize_children(map.into_iter(), priority),
        Some(Value::Object(inner)) => normalize_children(inner.into_iter(), priority),
        Some(Value::Array(items)) => normalize_children(indexed(items), priority),
        Some(leaf) => Some(match priority {
            Some(p) => serde_json::json!({".value": leaf, ".priority": p}),
            None => leaf,
        }),
    }
}

fn indexed(items: Vec<Value>) -> impl Iterator<Item = (String, Value)> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v))
}

fn normalize_children(
    members: impl Iterator<Item = (String, Value)>,
    priority: Option<Value>,
) -> Option<Value> {
    let mut out: Map<String, Value> = members
        .filter(|(key, _)| !key.starts_with('.'))
        .filter_map(|(key, child)| normalize(child).map(|c| (key, c)))
        .collect();
    if out.is_empty() {
        return None;
    }
    if let Some(p) = priority {
        out.insert(".priority".to_string(), p);
    }
    Some(Value::Object(out))
}

/// REST `shallow=true`: a leaf is returned as its plain value, an object with each child
/// replaced by `true` when the child has children of its own and by its plain value when it is a
/// leaf; the empty node is `null`. Priorities are not shown.
pub fn shallow(value: Option<&Value>) -> Value {
    match node_kind(value) {
        NodeKind::Empty => Value::Null,
        NodeKind::Children => Value::Object(
            value
                .map(children)
                .unwrap_or_default()
                .into_iter()
                .map(|(key, child)| (key.into_owned(), shallow_child(child)))
                .collect(),
        ),
        _ => value.map(unwrap_value).cloned().unwrap_or(Value::Null),
    }
}

fn shallow_child(child: &Value) -> Value {
    match node_kind(Some(child)) {
        NodeKind::Children => Value::Bool(true),
        _ => unwrap_value(child).clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// CPP-TEST `GetHash` vectors (firebase-cpp-sdk util_desktop_test.cc).
    #[test]
    fn hash_test_vectors() {
        let vectors = [
            (json!(1), "YPVfR2bXt/lcDjiQZ8pOkAd3qkQ="),
            (json!(0), "7ysMph9WPitGP7poMnMHMVPtUlI="),
            (json!(0.1), "wtQjBi5TBE+ZcdekL6INiSeCSQI="),
            (json!(true), "E5z61QM0lN/U2WsOnusszCTkR8M="),
            (json!(false), "aSSNoqcS4oQwJ2xxH20rvpp3zP0="),
            (json!("i"), "DeH+bYeyNKPWpoASovNpeBOhCLU="),
            (json!({"B2": 2, "B1": 1}), "saXm0YMzvotwh2WvsZFatveeAZk="),
            (
                json!({"0": 1, "1": 2, "2": 3}),
                "h6XOC3OcidJlNC1Velmi3gphgQk=",
            ),
            (
                json!({"1": 10, "01": 7, "001": 8, "10": 20, "11": 29, "12": 25, "A": 15}),
                "fYENO1aD55oc6I6f+FM+cv1Y1yc=",
            ),
            (
                json!({".value": 2, ".priority": 1.0}),
                "iiz9CIvYWkKdETTpjVFBJNx1SiI=",
            ),
            (
                json!({".priority": 2.0, "A": 2}),
                "1xHri2Z3/K1NzjMObwiYwEfgo18=",
            ),
            (
                json!({"B1": {".value": 1, ".priority": 2.0}, "B2": {".value": 2, ".priority": 1.0}, "B3": 3}),
                "9q4+gOobE1ozTZyb85m/iDxoYzY=",
            ),
        ];
        for (node, expected) in vectors {
            assert_eq!(hash(Some(&node)), expected, "{node}");
        }
    }

    #[test]
    fn hash_of_empty_nodes_is_empty() {
        assert_eq!(hash(None), "");
        assert_eq!(hash(Some(&json!(null))), "");
        assert_eq!(hash(Some(&json!({}))), "");
        assert_eq!(hash(Some(&json!({".priority": 1}))), "");
        assert_eq!(hash(Some(&json!({"a": null, "b": {}}))), "");
    }

    #[test]
    fn hash_text_forms() {
        assert_eq!(hash_text(&json!(1)), "number:3ff0000000000000");
        assert_eq!(hash_text(&json!(-0.0)), "number:8000000000000000");
        assert_eq!(hash_text(&json!("a:b")), "string:a:b");
        assert_eq!(
            hash_text(&json!({".value": true, ".priority": "p"})),
            "priority:string:p:boolean:true"
        );
        // Integer and float spellings of one double hash alike, as in every SDK.
        assert_eq!(hash(Some(&json!(2))), hash(Some(&json!(2.0))));
        // Unnormalized input hashes like its normal form.
        assert_eq!(
            hash(Some(&json!([1, null, {"x": {}}]))),
            hash(Some(&json!({"0": 1})))
        );
    }

    #[test]
    fn normalize_rules() {
        let n = |v: Value| normalize(v);
        assert_eq!(n(json!(null)), None);
        assert_eq!(n(json!({})), None);
        assert_eq!(n(json!({"a": null, "b": {"c": {}}})), None);
        assert_eq!(n(json!({".priority": 5})), None);
        assert_eq!(n(json!({"a": {}, ".priority": 5})), None);
        assert_eq!(n(json!([1, null, 3])), Some(json!({"0": 1, "2": 3})));
        assert_eq!(n(json!({".value": 1})), Some(json!(1)));
        assert_eq!(n(json!({".value": 1, ".priority": null})), Some(json!(1)));
        assert_eq!(
            n(json!({".value": 1, ".priority": "p"})),
            Some(json!({".value": 1, ".priority": "p"}))
        );
        assert_eq!(n(json!({".value": 1, ".priority": true})), Some(json!(1)));
        assert_eq!(
            n(json!({".value": {"a": 1, ".priority": 9}, ".priority": 2, "ignored": 3})),
            Some(json!({"a": 1, ".priority": 2}))
        );
        assert_eq!(n(json!({".value": null, "a": 1})), Some(json!({"a": 1})));
        assert_eq!(n(json!({".value": [], "a": 1})), None);
        assert_eq!(
            n(json!({"a": {".sv": "timestamp"}, "b": 1, ".foo": 2})),
            Some(json!({"b": 1}))
        );
        assert_eq!(n(json!({"a": [[]], "b": 1.0})), Some(json!({"b": 1.0})));
        assert_eq!(n(json!("s")), Some(json!("s")));
    }

    #[test]
    fn shallow_truncates_objects_only() {
        assert_eq!(shallow(None), json!(null));
        assert_eq!(shallow(Some(&json!({}))), json!(null));
        assert_eq!(shallow(Some(&json!(5))), json!(5));
        assert_eq!(
            shallow(Some(&json!({".value": 5, ".priority": 1}))),
            json!(5)
        );
        assert_eq!(
            shallow(Some(&json!({
                "a": {"x": 1},
                "b": 2,
                "c": {".value": "s", ".priority": 1},
                "d": null,
                ".priority": 3
            }))),
            json!({"a": true, "b": 2, "c": "s"})
        );
    }

    fn json_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            (-2.0f64..2.0).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            let priority = prop_oneof![
                Just(None),
                (-3i64..3).prop_map(|p| Some(Value::from(p))),
                "[pq]".prop_map(|p| Some(Value::from(p))),
                Just(Some(Value::Null)),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                (
                    prop::collection::vec(("(-?[0-9]{1,2}|[a-c]{1,2}|\\.x)", inner.clone()), 0..5),
                    priority.clone()
                )
                    .prop_map(|(members, priority)| {
                        let mut map: Map<String, Value> = members.into_iter().collect();
                        if let Some(p) = priority {
                            map.insert(".priority".into(), p);
                        }
                        Value::Object(map)
                    }),
                (inner, priority).prop_map(|(v, p)| json!({".value": v, ".priority": p})),
            ]
        })
    }

    /// The same value with every object's members inserted in reverse order.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(value in json_strategy()) {
            let once = normalize(value);
            let twice = once.clone().and_then(normalize);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn normalize_keeps_the_hash(value in json_strategy()) {
            prop_assert_eq!(hash(normalize(value.clone()).as_ref()), hash(Some(&value)));
        }

        #[test]
        fn hash_ignores_member_order(value in json_strategy()) {
            let a = normalize(value.clone());
            let b = normalize(reversed(&value));
            prop_assert_eq!(hash(a.as_ref()), hash(b.as_ref()));
        }

        #[test]
        fn normal_form_has_no_empty_nodes(value in json_strategy()) {
            if let Some(normal) = normalize(value) {
                prop_assert!(!crate::order::is_empty(&normal));
                let text = normal.to_string();
                prop_assert!(!text.contains("null") && !text.contains("{}"), "{}", text);
            }
        }
    }
}
