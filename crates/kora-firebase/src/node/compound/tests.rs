//! The SDK's own compound-hash vectors (firebase-admin-java's `CompoundHashTest`), and the
//! law that makes range merges safe: a client's copy with the merges applied is the server's
//! data, whatever the two hold and wherever the client cut its ranges.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::node::normalize;

/// Cuts after the leaves at `paths` (the SDK test's `splitAtPaths`; none: never cuts).
struct SplitAt(Vec<Vec<String>>);

impl Split for SplitAt {
    fn before(&mut self, _: &[String]) -> usize {
        0
    }

    fn after_leaf(&mut self, path: &[String], _: usize) -> bool {
        self.0.iter().any(|p| p == path)
    }
}

fn hash_with(node: &Value, cuts: &[&str]) -> CompoundHash {
    let mut builder = Builder::new(SplitAt(cuts.iter().map(|c| segments(c)).collect()));
    builder.node(node);
    builder.finish(0)
}

fn sha(text: &str) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        Sha1::digest(text.as_bytes()),
    )
}

fn posts(paths: &[&str]) -> Vec<Vec<String>> {
    paths.iter().map(|p| segments(p)).collect()
}

#[test]
fn the_empty_node_has_one_empty_hash() {
    let hash = CompoundHash::of(None);
    assert!(hash.posts.is_empty());
    assert_eq!(hash.hashes, vec![String::new()]);
}

#[test]
fn a_compound_hash_ends_with_the_empty_hash() {
    let hash = hash_with(&json!({"foo": "bar"}), &[]);
    assert_eq!(hash.posts, posts(&["foo"]));
    assert_eq!(
        hash.hashes,
        vec![sha(r#"("foo":(string:"bar"))"#), String::new()]
    );
}

#[test]
fn a_range_can_end_at_a_priority() {
    let node = json!({
        "foo": {"!beforePriority": "before", ".priority": "prio", "afterPriority": "after"},
        "qux": "qux"
    });
    let hash = hash_with(&node, &["foo/.priority"]);
    assert_eq!(hash.posts, posts(&["foo/.priority", "qux"]));
    assert_eq!(
        hash.hashes,
        vec![
            sha(r#"("foo":("!beforePriority":(string:"before"),".priority":(string:"prio")))"#),
            sha(r#"("foo":("afterPriority":(string:"after")),"qux":(string:"qux"))"#),
            String::new()
        ]
    );
}

#[test]
fn a_leaf_hashes_with_its_priority() {
    let hash = hash_with(&json!({"foo": {".value": "bar", ".priority": "baz"}}), &[]);
    assert_eq!(
        hash.hashes[0],
        sha(r#"("foo":(priority:string:"baz":string:"bar"))"#)
    );
}

#[test]
fn leaves_are_visited_in_firebase_key_order() {
    let hash = hash_with(&json!({"1": "one", "2": "two", "10": "ten"}), &["2"]);
    assert_eq!(hash.posts, posts(&["2", "10"]));
    assert_eq!(
        hash.hashes,
        vec![
            sha(r#"("1":(string:"one"),"2":(string:"two"))"#),
            sha(r#"("10":(string:"ten"))"#),
            String::new()
        ]
    );
}

#[test]
fn a_range_after_a_cut_opens_with_its_whole_path() {
    let node = json!({"bar": {"deep": "value"}, "foo": {"other-deep": "value"}});
    let cut = hash_with(&node, &["bar/deep"]);
    assert_eq!(cut.posts, posts(&["bar/deep", "foo/other-deep"]));
    assert_eq!(
        cut.hashes,
        vec![
            sha(r#"("bar":("deep":(string:"value")))"#),
            sha(r#"("foo":("other-deep":(string:"value")))"#),
            String::new()
        ]
    );
    let whole = hash_with(&node, &[]);
    assert_eq!(
        whole.hashes[0],
        sha(r#"("bar":("deep":(string:"value")),"foo":("other-deep":(string:"value")))"#)
    );
}

#[test]
fn keys_and_strings_are_quoted() {
    let node = json!({"\"\\\"\\": "\"\\\"\\", "\"": "\\"});
    let hash = hash_with(&node, &[]);
    assert_eq!(hash.posts, vec![vec!["\"\\\"\\".to_string()]]);
    assert_eq!(
        hash.hashes[0],
        sha(r#"("\"":(string:"\\"),"\"\\\"\\":(string:"\"\\\"\\"))"#)
    );
}

#[test]
fn the_size_split_makes_about_as_many_ranges_as_the_sdk() {
    for (children, ranges) in [(500, 15.0), (5_000, 50.0), (50_000, 150.0)] {
        let node: serde_json::Map<String, Value> = (0..children)
            .map(|i| (format!("key-{i}"), json!("value")))
            .collect();
        let got = CompoundHash::of(Some(&Value::Object(node))).hashes.len() as f64;
        assert!(
            (got - ranges).abs() < ranges * 0.1,
            "{children}: {got} ranges"
        );
    }
    let large = Value::String("x".repeat(50 * 1024));
    assert_eq!(CompoundHash::of(Some(&large)).hashes.len(), 2);
}

#[test]
fn the_wire_form_round_trips() {
    let hash = hash_with(&json!({"a": {"b": 1}, "c": 2}), &["a/b"]);
    let wire = hash.to_wire();
    assert_eq!(wire["ps"], json!(["a/b", "c"]));
    assert_eq!(CompoundHash::from_wire(&wire), Some(hash));
    assert_eq!(
        CompoundHash::from_wire(&json!({"ps": ["a"], "hs": [""]})),
        None
    );
    assert_eq!(
        CompoundHash::from_wire(&json!({"ps": [1], "hs": ["", ""]})),
        None
    );
}

#[test]
fn only_the_changed_range_is_sent() {
    let mut list = serde_json::Map::new();
    for i in 0..2_000 {
        list.insert(format!("m{i:05}"), json!({"text": format!("message {i}")}));
    }
    let client = Value::Object(list.clone());
    let hash = CompoundHash::of(Some(&client));
    assert!(hash.hashes.len() > 10, "{} ranges", hash.hashes.len());
    assert_eq!(range_merges(Some(&client), &hash), Some(Vec::new()));
    list.insert("m01000".into(), json!({"text": "edited"}));
    let merges = range_merges(Some(&Value::Object(list.clone())), &hash).expect("merges");
    assert_eq!(merges.len(), 1, "{merges:?}");
    let sent = merges[0].data.as_ref().expect("the range's data");
    assert_eq!(sent["m01000"], json!({"text": "edited"}));
    assert!(sent.as_object().is_some_and(|m| m.len() < 200), "{sent}");
}

/// Every leaf of a node by path (a children node's priority as the leaf `.priority`).
fn leaves(node: Option<&Value>, path: &mut Vec<String>, out: &mut BTreeMap<Vec<String>, Value>) {
    let Some(node) = node.filter(|n| node_kind(Some(n)) != NodeKind::Empty) else {
        return;
    };
    if node_kind(Some(node)) != NodeKind::Children {
        out.insert(path.clone(), node.clone());
        return;
    }
    for (key, child) in children_and_priority(node) {
        path.push(key);
        leaves(Some(child), path, out);
        path.pop();
    }
}

fn leaf_map(node: Option<&Value>) -> BTreeMap<Vec<String>, Value> {
    let mut out = BTreeMap::new();
    leaves(node, &mut Vec::new(), &mut out);
    out
}

/// What the SDK's `RangeMerge.applyTo` does to a copy's leaves: each merge's range emptied,
/// then filled with the merge's leaves.
fn apply(copy: Option<&Value>, merges: &[RangeMerge]) -> BTreeMap<Vec<String>, Value> {
    let mut out = leaf_map(copy);
    for merge in merges {
        let inside = |p: &[String]| {
            merge
                .start
                .as_ref()
                .is_none_or(|s| path_compare(p, s).is_gt())
                && merge
                    .end
                    .as_ref()
                    .is_none_or(|e| path_compare(p, e).is_le())
        };
        out.retain(|p, _| !inside(p));
        for (path, leaf) in leaf_map(merge.data.as_ref()) {
            assert!(inside(&path), "{path:?} is outside {merge:?}");
            out.insert(path, leaf);
        }
    }
    out
}

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        "[xy\"\\\\]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 40, 5, |inner| {
        let priority = prop_oneof![Just(None), (0i64..2).prop_map(|p| Some(json!(p)))];
        (
            prop::collection::btree_map("(1|2|10|-1|a|b|!)", inner, 0..5),
            priority,
        )
            .prop_map(|(members, priority)| {
                let mut map: serde_json::Map<String, Value> = members.into_iter().collect();
                if let Some(p) = priority {
                    map.insert(".priority".into(), p);
                }
                Value::Object(map)
            })
    })
}

/// A client's hash of `copy`, cut after every `every`-th leaf.
fn cut_every(copy: Option<&Value>, every: usize) -> CompoundHash {
    let all: Vec<Vec<String>> = leaf_map(copy)
        .into_keys()
        .filter(|p| p.last().is_none_or(|k| k != PRIORITY))
        .collect();
    let mut sorted = all;
    sorted.sort_by(|a, b| path_compare(a, b));
    let cuts = sorted.into_iter().skip(every - 1).step_by(every).collect();
    let mut builder = Builder::new(SplitAt(cuts));
    if let Some(copy) = copy.filter(|n| node_kind(Some(n)) != NodeKind::Empty) {
        builder.node(copy);
    }
    builder.finish(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The range merges for the client's hash turn its copy into the server's data (unless
    /// they cannot say it, and the whole data is sent), and a copy equal to the data gets none.
    #[test]
    fn merges_turn_the_copy_into_the_data(
        copy in tree(),
        data in tree(),
        every in 1usize..4,
    ) {
        let (copy, data) = (normalize(copy), normalize(data));
        let hash = cut_every(copy.as_ref(), every);
        if let Some(merges) = range_merges(data.as_ref(), &hash) {
            prop_assert_eq!(apply(copy.as_ref(), &merges), leaf_map(data.as_ref()));
        }
        prop_assert_eq!(range_merges(copy.as_ref(), &hash), Some(Vec::new()));
    }
}
