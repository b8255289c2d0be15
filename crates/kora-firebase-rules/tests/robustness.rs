//! Any text is either loaded or refused with an error, and a loaded rule decides any request
//! without panicking.

use kora_firebase_rules::{Context, Rules};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

/// Pieces of expressions, so that random sequences are often nearly valid.
const TOKENS: &[&str] = &[
    "auth",
    "uid",
    "token",
    "data",
    "newData",
    "root",
    "now",
    "query",
    "$x",
    ".",
    "(",
    ")",
    "[",
    "]",
    ",",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "?",
    ":",
    "'a'",
    "''",
    "1",
    "0",
    "null",
    "true",
    "child",
    "parent",
    "val",
    "exists",
    "hasChildren",
    "hasChild",
    "isString",
    "length",
    "contains",
    "replace",
    "toUpperCase",
    "matches",
    "/a+/",
    "/^[a-z]$/i",
    "orderByChild",
    "limitToFirst",
];

fn decide_everything(rules: &Rules) {
    let data = json!({"a": {"b": "a", "c": 1}, "x": [1, 2]});
    let auth = json!({"uid": "a", "token": {"t": true}});
    for auth in [None, Some(&auth)] {
        let ctx = Context { auth, now: 1 };
        for path in ["/", "/a", "/a/b", "/x/0"] {
            let _ = rules.can_read(path, &ctx, &data, None);
            let _ = rules.can_write(path, Some(&json!({"b": "z"})), &ctx, &data);
            let _ = rules.can_write(path, None, &ctx, &data);
            let patch = json!({"b": 2, "c/d": null});
            let _ = rules.can_update(path, patch.as_object().unwrap(), &ctx, &data);
        }
    }
}

fn load(read: &str, write: &str) -> Result<Rules, String> {
    let text = json!({"rules": {"$x": {".read": read, ".write": write, ".validate": write, "b": {".validate": write}}}});
    Rules::parse(&text.to_string()).map_err(|e| e.to_string())
}

proptest! {
    #[test]
    fn token_soup_loads_or_errs_and_never_panics(
        read in prop::collection::vec(select(TOKENS), 1..16),
        write in prop::collection::vec(select(TOKENS), 1..16),
    ) {
        if let Ok(rules) = load(&read.join(""), &write.join(" ")) {
            decide_everything(&rules);
        }
    }

    #[test]
    fn any_text_as_an_expression(text in "\\PC{0,60}") {
        if let Ok(rules) = load(&text, &text) {
            decide_everything(&rules);
        }
    }

    #[test]
    fn any_regular_expression(pattern in "[a-c^$.*+?(){}\\[\\]|\\\\dws0-9,-]{1,20}", flags in "[gi]{0,2}") {
        let rule = format!("'abc'.matches(/{pattern}/{flags})");
        if let Ok(rules) = load(&rule, "true") {
            decide_everything(&rules);
        }
    }

    #[test]
    fn any_rules_file(text in "[{}\\[\\]\":,/* \\n.a$rulesdwitvy0-9]{0,120}") {
        let _ = Rules::parse(&text);
    }

    #[test]
    fn any_json_as_rules(value in json_value()) {
        let _ = Rules::parse(&json!({"rules": value}).to_string());
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        select(&["true", "auth != null", "data.exists()", "1"][..]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop::collection::btree_map(
            select(
                &[
                    ".read",
                    ".write",
                    ".validate",
                    ".indexOn",
                    "a",
                    "$b",
                    "$c",
                    ".x",
                ][..],
            )
            .prop_map(String::from),
            inner,
            0..4,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect()))
    })
}
