//! Query parsing and evaluation against the SDK's filter semantics, plus properties of limits.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn wire(q: Value) -> FbQuery {
    match FbQuery::from_wire(&q) {
        Ok(query) => query,
        Err(e) => panic!("{q}: {e}"),
    }
}

fn keys(q: Value, node: &Value) -> Vec<String> {
    wire(q).window_keys(Some(node))
}

fn rest(params: &[(&str, &str)]) -> Result<Option<FbQuery>, String> {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FbQuery::from_rest(&owned)
}

fn rest_keys(params: &[(&str, &str)], node: &Value) -> Vec<String> {
    match rest(params) {
        Ok(Some(q)) => q.window_keys(Some(node)),
        other => panic!("{params:?}: {other:?}"),
    }
}

fn scores() -> Value {
    json!({
        "a": {"score": 3},
        "b": {"score": 9},
        "c": {"score": 12},
        "d": {"score": 9},
        "e": {"other": 1},
        "f": {"score": "x"}
    })
}

#[test]
fn wire_parsing() {
    let q = wire(json!({"l": 2, "vf": "r", "i": "score"}));
    assert_eq!(q.index, Index::Child(vec!["score".into()]));
    assert_eq!(
        q.limit,
        Some(Limit {
            count: 2,
            from_left: false
        })
    );
    assert!(q.start.is_none() && q.end.is_none());

    let q =
        wire(json!({"sp": 1, "sn": "a", "sin": false, "ep": 5, "ein": true, "l": 3, "i": "a/b/"}));
    assert_eq!(q.index, Index::Child(vec!["a".into(), "b".into()]));
    assert_eq!(
        q.start,
        Some(Bound {
            value: json!(1),
            key: Some("a".into()),
            inclusive: false
        })
    );
    assert_eq!(
        q.end,
        Some(Bound {
            value: json!(5),
            key: None,
            inclusive: true
        })
    );
    // No `vf`: from the left because a start is set.
    assert_eq!(
        q.limit,
        Some(Limit {
            count: 3,
            from_left: true
        })
    );
    assert_eq!(
        wire(json!({"ep": 1, "l": 3})).limit,
        Some(Limit {
            count: 3,
            from_left: false
        })
    );
    assert_eq!(
        wire(json!({"l": 3})).limit,
        Some(Limit {
            count: 3,
            from_left: false
        })
    );

    assert_eq!(wire(json!({})), FbQuery::default());
    assert_eq!(wire(json!(null)), FbQuery::default());
    assert_eq!(wire(json!({"i": ".key"})).index, Index::Key);
    assert_eq!(wire(json!({"i": ".value"})).index, Index::Value);
    assert_eq!(wire(json!({"i": ".priority"})).index, Index::Priority);
    assert_eq!(
        wire(json!({"sp": null})).start,
        Some(Bound {
            value: json!(null),
            key: None,
            inclusive: true
        })
    );
}

#[test]
fn wire_errors() {
    let bad = [
        json!([1]),
        json!({"i": 5}),
        json!({"i": "/"}),
        json!({"l": -1}),
        json!({"l": 1.5}),
        json!({"l": "2"}),
        json!({"l": 2, "vf": "x"}),
        json!({"sp": 1, "sin": "no"}),
        json!({"sp": 1, "sn": {}}),
        json!({"i": ".key", "sp": 1}),
        json!({"i": ".priority", "sp": true}),
        json!({"i": ".value", "ep": {"a": 1}}),
    ];
    for q in bad {
        let err = FbQuery::from_wire(&q).expect_err(&q.to_string());
        assert!(!err.is_empty());
    }
}

#[test]
fn spec_example_limit_to_last_by_child() {
    let node = json!({"a": {"score": 3}, "b": {"score": 9}, "c": {"score": 12}});
    let q = wire(json!({"l": 2, "vf": "r", "i": "score"}));
    assert_eq!(
        q.apply(Some(&node)),
        Some(json!({"b": {"score": 9}, "c": {"score": 12}}))
    );
}

#[test]
fn priority_index_order() {
    let node = json!({
        "s": {".value": 1, ".priority": "b"},
        "n2": {"x": 1, ".priority": 2},
        "none": 5,
        "n10": {".value": 1, ".priority": 10},
        "t": {".value": 1, ".priority": "a"},
        "1": true
    });
    assert_eq!(
        keys(json!({"l": 10}), &node),
        ["1", "none", "n2", "n10", "t", "s"]
    );
    // startAt(null) keeps children without a priority; startAt(1) starts at numbers.
    assert_eq!(keys(json!({"sp": null, "l": 2}), &node), ["1", "none"]);
    assert_eq!(keys(json!({"sp": 1}), &node), ["n2", "n10", "t", "s"]);
    assert_eq!(keys(json!({"ep": null}), &node), ["1", "none"]);
    assert_eq!(keys(json!({"sp": "a", "ep": "a"}), &node), ["t"]);
    assert_eq!(
        keys(json!({"sp": null, "sn": "1", "sin": false, "ep": 2}), &node),
        ["none", "n2"]
    );
}

#[test]
fn key_index() {
    let node = json!({"b": 1, "1": 1, "a": 1, "10": 1, "01": 1, "2147483648": 1});
    assert_eq!(
        keys(json!({"i": ".key", "l": 10}), &node),
        ["1", "01", "10", "2147483648", "a", "b"]
    );
    assert_eq!(
        keys(json!({"i": ".key", "sp": "10"}), &node),
        ["10", "2147483648", "a", "b"]
    );
    // On the key index the sent key is ignored; `sin: false` excludes the start itself.
    assert_eq!(
        keys(
            json!({"i": ".key", "sp": "10", "sn": "zz", "sin": false}),
            &node
        ),
        ["2147483648", "a", "b"]
    );
    assert_eq!(
        keys(json!({"i": ".key", "ep": "10", "ein": false}), &node),
        ["1", "01"]
    );
    assert_eq!(
        keys(json!({"i": ".key", "sp": "a", "ep": "a"}), &node),
        ["a"]
    );
    assert_eq!(
        keys(json!({"i": ".key", "sp": "[MIN_NAME]", "l": 1}), &node),
        ["1"]
    );
    assert_eq!(
        keys(
            json!({"i": ".key", "ep": "[MAX_NAME]", "ein": false, "l": 1, "vf": "r"}),
            &node
        ),
        ["b"]
    );
}

#[test]
fn value_index() {
    let node = json!({
        "o": {"x": 1},
        "s": "str",
        "n": 5,
        "m": 5,
        "f": false,
        "t": true,
        "p": {".value": 1, ".priority": 99}
    });
    assert_eq!(
        keys(json!({"i": ".value", "l": 10}), &node),
        ["f", "t", "p", "m", "n", "s", "o"]
    );
    assert_eq!(
        keys(json!({"i": ".value", "sp": 5, "ep": 5}), &node),
        ["m", "n"]
    );
    assert_eq!(
        keys(json!({"i": ".value", "sp": 5, "sn": "n", "ep": 5}), &node),
        ["n"]
    );
    assert_eq!(
        keys(json!({"i": ".value", "sp": 5, "ep": 5, "en": "m"}), &node),
        ["m"]
    );
    assert_eq!(keys(json!({"i": ".value", "sp": "a"}), &node), ["s", "o"]);
    assert_eq!(keys(json!({"i": ".value", "ep": true}), &node), ["f", "t"]);
}

#[test]
fn child_index_with_missing_and_nested_values() {
    let node = scores();
    // Missing `score` is null and sorts first; the string after the numbers.
    assert_eq!(
        keys(json!({"i": "score", "l": 10}), &node),
        ["e", "a", "b", "d", "c", "f"]
    );
    assert_eq!(
        keys(json!({"i": "score", "sp": 9, "ep": 9}), &node),
        ["b", "d"]
    );
    assert_eq!(keys(json!({"i": "score", "ep": null}), &node), ["e"]);
    let nested = json!({"x": {"a": {"b": 2}}, "y": {"a": {"b": 1}}, "z": {"a": 7}});
    assert_eq!(keys(json!({"i": "a/b", "l": 5}), &nested), ["z", "y", "x"]);
}

#[test]
fn start_after_and_end_before() {
    let node = scores();
    // Newest JS: startAfter(9) sends sn=[MAX_NAME], endBefore(9) sends en=[MIN_NAME].
    let after = json!({"i": "score", "sp": 9, "sn": "[MAX_NAME]", "sin": false});
    assert_eq!(keys(after, &node), ["c", "f"]);
    let before = json!({"i": "score", "ep": 9, "en": "[MIN_NAME]", "ein": false});
    assert_eq!(keys(before, &node), ["e", "a"]);
    // Without the sentinel key an exclusive bound still means "after/before that value".
    assert_eq!(
        keys(json!({"i": "score", "sp": 9, "sin": false}), &node),
        ["c", "f"]
    );
    assert_eq!(
        keys(json!({"i": "score", "ep": 9, "ein": false}), &node),
        ["e", "a"]
    );
    // With a key: strictly after (9, "b"), strictly before (9, "d").
    assert_eq!(
        keys(
            json!({"i": "score", "sp": 9, "sn": "b", "sin": false}),
            &node
        ),
        ["d", "c", "f"]
    );
    assert_eq!(
        keys(
            json!({"i": "score", "ep": 9, "en": "d", "ein": false}),
            &node
        ),
        ["e", "a", "b"]
    );
    // The inclusive sentinels are the open ends.
    assert_eq!(
        keys(json!({"i": "score", "sp": 9, "sn": "[MIN_NAME]"}), &node),
        ["b", "d", "c", "f"]
    );
}

#[test]
fn equal_to_with_and_without_key() {
    let node = scores();
    assert_eq!(
        keys(json!({"i": "score", "sp": 9, "ep": 9}), &node),
        ["b", "d"]
    );
    assert_eq!(
        keys(
            json!({"i": "score", "sp": 9, "sn": "d", "ep": 9, "en": "d"}),
            &node
        ),
        ["d"]
    );
    assert_eq!(
        rest_keys(&[("orderBy", "\"score\""), ("equalTo", "9")], &node),
        ["b", "d"]
    );
    assert_eq!(
        rest_keys(&[("orderBy", "\"score\""), ("equalTo", "9,\"b\"")], &node),
        ["b"]
    );
    assert!(wire(json!({"i": "score", "sp": 4, "ep": 4}))
        .apply(Some(&node))
        .is_none());
}

#[test]
fn limits() {
    let node = scores();
    assert_eq!(
        keys(json!({"i": "score", "l": 2, "vf": "l"}), &node),
        ["e", "a"]
    );
    assert_eq!(
        keys(json!({"i": "score", "l": 2, "vf": "r"}), &node),
        ["c", "f"]
    );
    assert_eq!(
        keys(json!({"i": "score", "sp": 9, "l": 2, "vf": "r"}), &node),
        ["c", "f"]
    );
    assert_eq!(
        keys(json!({"i": "score", "ep": 9, "l": 2, "vf": "l"}), &node),
        ["e", "a"]
    );
    assert_eq!(
        keys(
            json!({"i": "score", "sp": 3, "ep": 9, "l": 2, "vf": "r"}),
            &node
        ),
        ["b", "d"]
    );
    assert_eq!(keys(json!({"i": "score", "l": 100}), &node).len(), 6);
    assert!(wire(json!({"l": 0})).apply(Some(&node)).is_none());
}

#[test]
fn apply_keeps_export_format_and_handles_leaves() {
    let node = json!({
        "a": {".value": 1, ".priority": 5},
        "b": {"x": 2, ".priority": "p"},
        "c": null,
        ".priority": 7
    });
    let q = wire(json!({"l": 5}));
    assert_eq!(
        q.apply(Some(&node)),
        Some(json!({"a": {".value": 1, ".priority": 5}, "b": {"x": 2, ".priority": "p"}}))
    );
    // Everything as is, the location's priority included, for queries that load all data.
    let all = wire(json!({"i": ".value"}));
    assert!(all.loads_all_data() && !all.is_default());
    assert_eq!(all.apply(Some(&node)), Some(node.clone()));
    assert_eq!(all.apply(Some(&json!(3))), Some(json!(3)));
    assert_eq!(all.apply(Some(&json!({}))), None);
    assert_eq!(all.apply(None), None);
    assert_eq!(q.apply(Some(&json!(3))), None);
    assert_eq!(q.apply(Some(&json!({".value": 3, ".priority": 1}))), None);
    assert_eq!(q.apply(None), None);
    assert!(q.window_keys(Some(&json!("leaf"))).is_empty());
    assert_eq!(all.window_keys(Some(&json!([5, null, 6]))), ["0", "2"]);
}

#[test]
fn sort_children_uses_the_index() {
    let (one, two, three) = (json!(1), json!(2), json!(3));
    let kids = vec![("b", &three), ("c", &one), ("a", &two)];
    let by_value = wire(json!({"i": ".value"})).sort_children(kids.clone());
    assert_eq!(
        by_value.iter().map(|k| k.0).collect::<Vec<_>>(),
        ["c", "a", "b"]
    );
    let by_key = wire(json!({"i": ".key"})).sort_children(kids);
    assert_eq!(
        by_key.iter().map(|k| k.0).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let q = wire(json!({"i": "score", "sp": 9, "sn": "b", "sin": false}));
    assert!(q.matches("d", &json!({"score": 9})));
    assert!(!q.matches("b", &json!({"score": 9})));
}

#[test]
fn rest_parsing() {
    assert_eq!(rest(&[]), Ok(None));
    assert_eq!(rest(&[("print", "pretty"), ("auth", "x")]), Ok(None));
    let by_key = rest(&[("orderBy", "\"$key\"")]);
    assert_eq!(
        by_key,
        Ok(Some(FbQuery {
            index: Index::Key,
            ..FbQuery::default()
        }))
    );
    assert_eq!(
        rest(&[("orderBy", "\"$priority\"")]).map(|q| q.map(|q| q.is_default())),
        Ok(Some(true))
    );
    assert_eq!(
        rest(&[("orderBy", "\"$value\"")]).map(|q| q.map(|q| q.index)),
        Ok(Some(Index::Value))
    );
    let q = rest(&[
        ("orderBy", "\"a/b\""),
        ("startAt", "\"x,y\""),
        ("endBefore", "5 , \"k\""),
        ("limitToLast", "3"),
    ]);
    assert_eq!(
        q,
        Ok(Some(FbQuery {
            index: Index::Child(vec!["a".into(), "b".into()]),
            start: Some(Bound {
                value: json!("x,y"),
                key: None,
                inclusive: true
            }),
            end: Some(Bound {
                value: json!(5),
                key: Some("k".into()),
                inclusive: false
            }),
            limit: Some(Limit {
                count: 3,
                from_left: false
            }),
        }))
    );
    let q = rest(&[
        ("orderBy", "\"$key\""),
        ("startAfter", "\"b\""),
        ("limitToFirst", "1"),
    ]);
    let node = json!({"a": 1, "b": 2, "c": 3, "d": 4});
    assert_eq!(
        q.map(|q| q.map(|q| q.window_keys(Some(&node)))),
        Ok(Some(vec!["c".to_string()]))
    );
    // The JS REST client's own form of startAfter on a child index.
    let scores = scores();
    assert_eq!(
        rest_keys(
            &[("orderBy", "\"score\""), ("startAfter", "9,\"[MAX_NAME]\"")],
            &scores
        ),
        ["c", "f"]
    );
    assert_eq!(
        rest_keys(
            &[("orderBy", "\"score\""), ("startAt", "1"), ("startAt", "9")],
            &scores
        ),
        ["b", "d", "c", "f"]
    );
}

#[test]
fn rest_errors() {
    let bad: &[&[(&str, &str)]] = &[
        &[("limitToFirst", "1")],
        &[("startAt", "1")],
        &[("equalTo", "\"a\"")],
        &[("orderBy", "$key")],
        &[("orderBy", "5")],
        &[("orderBy", "\"/\"")],
        &[
            ("orderBy", "\"$key\""),
            ("limitToFirst", "1"),
            ("limitToLast", "1"),
        ],
        &[("orderBy", "\"$key\""), ("limitToFirst", "-1")],
        &[("orderBy", "\"$key\""), ("limitToFirst", "one")],
        &[("orderBy", "\"$key\""), ("startAt", "a")],
        &[("orderBy", "\"$key\""), ("startAt", "1")],
        &[("orderBy", "\"a\""), ("startAt", "{\"x\":1}")],
        &[("orderBy", "\"$priority\""), ("startAt", "true")],
        &[("orderBy", "\"a\""), ("startAt", "1,2")],
        &[("orderBy", "\"a\""), ("startAt", "1 2")],
        &[("orderBy", "\"a\""), ("startAt", "1,\"k\",\"l\"")],
        &[("orderBy", "\"a\""), ("equalTo", "1"), ("startAt", "1")],
        &[("orderBy", "\"a\""), ("startAt", "1"), ("startAfter", "1")],
        &[("orderBy", "\"a\""), ("endAt", "1"), ("endBefore", "1")],
    ];
    for params in bad {
        assert!(rest(params).is_err(), "{params:?}");
    }
}

#[test]
fn wire_round_trip_and_keys() {
    let q =
        wire(json!({"sp": 1, "sn": "a", "sin": true, "ep": "z", "ein": false, "l": 2, "i": "x/y"}));
    assert_eq!(
        q.to_wire(),
        json!({"sp": 1, "sn": "a", "ep": "z", "ein": false, "l": 2, "vf": "l", "i": "x/y"})
    );
    assert_eq!(wire(q.to_wire()), q);
    assert_eq!(
        q.to_key(),
        r#"{"ein":false,"ep":"z","i":"x/y","l":2,"sn":"a","sp":1,"vf":"l"}"#
    );
    // Same query, different spelling: same key.
    let same =
        wire(json!({"i": "x/y", "vf": "l", "l": 2, "ein": false, "ep": "z", "sn": "a", "sp": 1}));
    assert_eq!(same.to_key(), q.to_key());
    assert_ne!(
        wire(json!({"l": 2, "vf": "r"})).to_key(),
        wire(json!({"l": 2, "vf": "l"})).to_key()
    );
    assert_eq!(FbQuery::default().to_key(), "{}");
}

// --- properties ---

pub(crate) fn child_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        "[ab]{0,2}".prop_map(Value::from),
        (-3i64..3).prop_map(|a| json!({"a": a})),
        "[ab]".prop_map(|a| json!({"a": a, "b": 1})),
        ((-2i64..2), (-2i64..2)).prop_map(|(v, p)| json!({".value": v, ".priority": p})),
        ("[ab]", (-2i64..2)).prop_map(|(p, a)| json!({"a": a, ".priority": p})),
    ]
}

pub(crate) fn node_strategy() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("(-?[0-9]{1,2}|[a-d]{1,2})", child_strategy(), 0..12)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
}

fn index_strategy() -> impl Strategy<Value = Index> {
    prop_oneof![
        Just(Index::Priority),
        Just(Index::Key),
        Just(Index::Value),
        Just(Index::Child(vec!["a".into()])),
    ]
}

fn bound_strategy() -> impl Strategy<Value = Bound> {
    let value = prop_oneof![
        Just(Value::Null),
        (-3i64..3).prop_map(Value::from),
        "[ab]{0,2}".prop_map(Value::from),
        "-?[0-9]".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just(None),
        "[a-d0-9]{1,2}".prop_map(Some),
        Just(Some(MIN_NAME.to_string())),
        Just(Some(MAX_NAME.to_string())),
    ];
    (value, key, any::<bool>()).prop_map(|(value, key, inclusive)| Bound {
        value,
        key,
        inclusive,
    })
}

prop_compose! {
    pub(crate) fn query_strategy()(
        index in index_strategy(),
        start in prop::option::of(bound_strategy()),
        end in prop::option::of(bound_strategy()),
        limit in prop::option::of((0usize..6, any::<bool>())),
    ) -> FbQuery {
        let mut query = FbQuery {
            index,
            start,
            end,
            limit: limit.map(|(count, from_left)| Limit { count, from_left }),
        };
        if query.index == Index::Key {
            // The key index only takes strings.
            for bound in query.start.iter_mut().chain(query.end.iter_mut()) {
                if !bound.value.is_string() {
                    bound.value = Value::from(bound.value.to_string());
                }
            }
        }
        query
    }
}

fn key_set(value: &Option<Value>) -> Vec<String> {
    match value {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #[test]
    fn limited_result_is_a_bounded_subset(node in node_strategy(), query in query_strategy()) {
        let unlimited = FbQuery { limit: None, ..query.clone() };
        let limited = query.apply(Some(&node));
        let full = unlimited.apply(Some(&node));
        let full_keys = key_set(&full);
        if let Some(limit) = &query.limit {
            prop_assert!(key_set(&limited).len() <= limit.count);
        }
        for key in key_set(&limited) {
            prop_assert!(full_keys.contains(&key), "{} not in {:?}", key, full_keys);
            prop_assert_eq!(&limited.as_ref().unwrap()[&key], &node[&key]);
        }
    }

    #[test]
    fn limit_windows_are_prefixes_and_suffixes(node in node_strategy(), query in query_strategy(), n in 0usize..8) {
        let all = FbQuery { limit: None, ..query.clone() }.window_keys(Some(&node));
        let first = FbQuery { limit: Some(Limit { count: n, from_left: true }), ..query.clone() };
        let last = FbQuery { limit: Some(Limit { count: n, from_left: false }), ..query };
        let take = n.min(all.len());
        prop_assert_eq!(first.window_keys(Some(&node)), all[..take].to_vec());
        prop_assert_eq!(last.window_keys(Some(&node)), all[all.len() - take..].to_vec());
    }

    #[test]
    fn window_is_sorted_and_in_range(node in node_strategy(), query in query_strategy()) {
        let window = query.window_keys(Some(&node));
        let kids: Vec<(&str, &Value)> = window.iter().map(|k| (k.as_str(), &node[k])).collect();
        let sorted: Vec<&str> = query.sort_children(kids.clone()).into_iter().map(|k| k.0).collect();
        prop_assert_eq!(sorted, window.iter().map(String::as_str).collect::<Vec<_>>());
        for (key, child) in kids {
            prop_assert!(query.matches(key, child));
        }
        // Without bounds or a limit every non-empty child is in.
        let everything = FbQuery { index: query.index.clone(), ..FbQuery::default() };
        let expected = node.as_object().map_or(0, |m| m.values().filter(|v| !v.is_null()).count());
        prop_assert_eq!(everything.window_keys(Some(&node)).len(), expected);
    }

    #[test]
    fn wire_form_round_trips(query in query_strategy()) {
        prop_assert_eq!(FbQuery::from_wire(&query.to_wire()), Ok(query.clone()));
    }
}
