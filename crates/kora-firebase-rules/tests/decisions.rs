//! Reads, sets and updates decided as Firebase does: cascading `.read`/`.write`,
//! non-cascading `.validate`, `$variables`, deletions, multi-path updates — with the examples
//! of Firebase's documentation.

use std::cell::RefCell;

use kora_firebase_rules::{Context, Data, Decision, Rules};
use serde_json::{json, Map, Value};

const NOW: i64 = 1_700_000_000_000;

fn rules(text: &str) -> Rules {
    Rules::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx(auth: Option<&Value>) -> Context<'_> {
    Context { auth, now: NOW }
}

fn can_read(rules: &Rules, path: &str, data: &Value) -> bool {
    rules.can_read(path, &ctx(None), data, None).is_allowed()
}

fn can_set(rules: &Rules, path: &str, value: Value, data: &Value) -> bool {
    rules
        .can_write(path, Some(&value), &ctx(None), data)
        .is_allowed()
}

fn can_update(rules: &Rules, path: &str, patch: Value, data: &Value) -> bool {
    let Value::Object(patch) = patch else {
        panic!("a patch is an object")
    };
    rules
        .can_update(path, &patch, &ctx(None), data)
        .is_allowed()
}

#[test]
fn a_read_granted_above_cannot_be_revoked_below() {
    // Firebase's documentation: "foo" readable when baz is true, whatever bar says.
    let r = rules(
        r#"{"rules": {"foo": {
            ".read": "data.child('baz').val() === true",
            "bar": { ".read": false }
        }}}"#,
    );
    let data = json!({"foo": {"baz": true, "bar": {"x": 1}}});
    assert!(can_read(&r, "/foo/bar", &data));
    assert!(!can_read(&r, "/foo/bar", &json!({"foo": {"baz": false}})));
}

#[test]
fn a_rule_below_does_not_grant_reading_above() {
    let r = rules(r#"{"rules": {"a": {"b": {".read": true}}}}"#);
    let data = json!({"a": {"b": 1, "c": 2}});
    assert!(can_read(&r, "/a/b", &data) && can_read(&r, "/a/b/deeper", &data));
    assert!(!can_read(&r, "/a", &data) && !can_read(&r, "/", &data));
}

#[test]
fn nothing_is_granted_without_a_rule() {
    let r = rules(r#"{"rules": {}}"#);
    let denied = r.can_read("/x", &ctx(None), &Value::Null, None);
    let Decision::Deny(denial) = denied else {
        panic!("allowed")
    };
    assert_eq!(denial.code(), "permission_denied");
    assert!(
        denial.message.contains("no .read rule applies"),
        "{}",
        denial.message
    );
    assert!(!can_set(&r, "/x", json!(1), &Value::Null));
}

#[test]
fn a_write_granted_above_cannot_be_revoked_below() {
    let r = rules(r#"{"rules": {".write": true, "a": {".write": false}}}"#);
    assert!(can_set(&r, "/a", json!(1), &Value::Null));
    let r = rules(r#"{"rules": {"a": {"b": {".write": true}}}}"#);
    assert!(
        !can_set(&r, "/a", json!({"b": 1}), &Value::Null),
        "rules below do not grant"
    );
}

#[test]
fn variables_bind_the_matched_key() {
    // Firebase's documentation: users write only their own data.
    let r = rules(r#"{"rules": {"users": {"$user_id": {".write": "$user_id === auth.uid"}}}}"#);
    let alice = json!({"uid": "alice"});
    let write = |path: &str, auth: Option<&Value>| {
        r.can_write(path, Some(&json!({"name": "x"})), &ctx(auth), &Value::Null)
            .is_allowed()
    };
    assert!(write("/users/alice", Some(&alice)));
    assert!(write("/users/alice/name", Some(&alice)));
    assert!(!write("/users/bob", Some(&alice)));
    assert!(!write("/users/alice", None));

    // Firebase's documentation: a room's topic is writable when its id says public.
    let r = rules(
        r#"{"rules": {"rooms": {"$room_id": {"topic": {".write": "$room_id.contains('public')"}}}}}"#,
    );
    assert!(can_set(
        &r,
        "/rooms/public_1/topic",
        json!("hi"),
        &Value::Null
    ));
    assert!(!can_set(
        &r,
        "/rooms/private_1/topic",
        json!("hi"),
        &Value::Null
    ));
}

#[test]
fn a_named_child_wins_over_the_variable() {
    let r = rules(
        r#"{"rules": {".write": true, "$any": {".validate": "newData.isNumber()"}, "text": {".validate": "newData.isString()"}}}"#,
    );
    assert!(can_set(&r, "/text", json!("a"), &Value::Null));
    assert!(!can_set(&r, "/text", json!(1), &Value::Null));
    assert!(can_set(&r, "/other", json!(1), &Value::Null));
}

/// Firebase's documentation's widget: validation of children, of the parent, and `$other`.
fn widget_rules() -> Rules {
    rules(
        r#"{
          "rules": {
            // write is allowed for all paths
            ".write": true,
            "widget": {
              // a valid widget must have attributes "color" and "size"
              // allows deleting widgets (since .validate is not applied to delete rules)
              ".validate": "newData.hasChildren(['color', 'size'])",
              "size": {
                // the value of "size" must be a number between 0 and 99
                ".validate": "newData.isNumber() && newData.val() >= 0 && newData.val() <= 99"
              },
              "color": {
                // the value of "color" must exist as a key in our mythical valid_colors index
                ".validate": "root.child('valid_colors/' + newData.val()).exists()"
              },
              "$other": { ".validate": false }
            }
          }
        }"#,
    )
}

#[test]
fn validation_of_the_written_value_and_its_children() {
    let r = widget_rules();
    let data = json!({"valid_colors": {"red": true}});
    assert!(can_set(
        &r,
        "/widget",
        json!({"color": "red", "size": 9}),
        &data
    ));
    assert!(!can_set(
        &r,
        "/widget",
        json!({"color": "blue", "size": 9}),
        &data
    ));
    assert!(!can_set(
        &r,
        "/widget",
        json!({"color": "red", "size": 100}),
        &data
    ));
    assert!(!can_set(&r, "/widget", json!({"color": "red"}), &data));
    assert!(
        !can_set(
            &r,
            "/widget",
            json!({"color": "red", "size": 9, "shape": "round"}),
            &data
        ),
        "$other"
    );
}

#[test]
fn validation_of_the_locations_above_sees_the_new_tree() {
    let r = widget_rules();
    let data = json!({"valid_colors": {"red": true}, "widget": {"color": "red", "size": 9}});
    assert!(can_set(&r, "/widget/size", json!(10), &data));
    assert!(!can_set(&r, "/widget/size", json!(100), &data));
    // Writing size alone into an empty widget leaves it without a color.
    assert!(!can_set(
        &r,
        "/widget/size",
        json!(10),
        &json!({"valid_colors": {"red": true}})
    ));
}

#[test]
fn deletions_are_not_validated() {
    let r = widget_rules();
    let data = json!({"widget": {"color": "red", "size": 9}});
    assert!(can_set(&r, "/widget", Value::Null, &data));
    assert!(r.can_write("/widget", None, &ctx(None), &data).is_allowed());
    // Deleting a child leaves a parent that must still be valid.
    assert!(!can_set(&r, "/widget/size", Value::Null, &data));
    // Deleting the last child deletes the parent, which is then not validated.
    assert!(can_set(
        &r,
        "/widget/size",
        Value::Null,
        &json!({"widget": {"size": 9}})
    ));
}

#[test]
fn validation_does_not_grant_and_write_does_not_validate() {
    let r = rules(r#"{"rules": {"a": {".validate": true}}}"#);
    assert!(!can_set(&r, "/a", json!(1), &Value::Null));
    let r = rules(r#"{"rules": {".write": true, "a": {".validate": "newData.isString()"}}}"#);
    assert!(!can_set(&r, "/a", json!(1), &Value::Null));
    assert!(
        !can_set(&r, "/", json!({"a": 1}), &Value::Null),
        "validated below a write at the root"
    );
    assert!(
        can_set(&r, "/b", json!(1), &Value::Null),
        "a sibling's rule does not apply"
    );
}

#[test]
fn data_and_new_data_before_and_after() {
    // Firebase's documentation: create and delete, but no update.
    let r = rules(r#"{"rules": {"a": {".write": "!data.exists() || !newData.exists()"}}}"#);
    assert!(can_set(&r, "/a", json!(1), &Value::Null));
    assert!(!can_set(&r, "/a", json!(2), &json!({"a": 1})));
    assert!(can_set(&r, "/a", Value::Null, &json!({"a": 1})));
    // newData.parent() navigates the tree after the write.
    let r = rules(
        r#"{"rules": {".write": true, "a": {".validate": "newData.parent().child('b').val() == newData.val()"}}}"#,
    );
    assert!(can_set(&r, "/", json!({"a": 1, "b": 1}), &Value::Null));
    assert!(!can_set(&r, "/a", json!(2), &json!({"b": 1})));
}

#[test]
fn server_timestamps_are_now() {
    let r = rules(r#"{"rules": {"t": {".write": true, ".validate": "newData.val() == now"}}}"#);
    assert!(can_set(&r, "/t", json!({".sv": "timestamp"}), &Value::Null));
    assert!(!can_set(&r, "/t", json!(5), &Value::Null));
}

#[test]
fn an_update_checks_each_path_against_the_whole_result() {
    let r = rules(
        r#"{"rules": {
            "a": {".write": true},
            "b": {".write": "auth != null"},
            "pair": {".write": true, ".validate": "newData.child('x').val() == newData.child('y').val()"}
        }}"#,
    );
    let data = json!({"pair": {"x": 1, "y": 1}});
    assert!(can_update(&r, "/", json!({"a": 1}), &data));
    assert!(
        !can_update(&r, "/", json!({"a": 1, "b": 2}), &data),
        "every path must be writable"
    );
    assert!(can_update(&r, "/pair", json!({"x": 2, "y": 2}), &data));
    assert!(!can_update(&r, "/pair", json!({"x": 2}), &data));
    assert!(can_update(
        &r,
        "/",
        json!({"pair/x": 3, "pair/y": 3}),
        &data
    ));
    assert!(
        can_update(&r, "/", json!({}), &data),
        "an empty update changes nothing"
    );
}

#[test]
fn an_update_validates_each_written_value() {
    let r = widget_rules();
    let data = json!({"valid_colors": {"red": true}, "widget": {"color": "red", "size": 9}});
    assert!(can_update(
        &r,
        "/widget",
        json!({"size": 1, "color": "red"}),
        &data
    ));
    assert!(!can_update(
        &r,
        "/widget",
        json!({"size": 1, "shape": "x"}),
        &data
    ));
    assert!(!can_update(
        &r,
        "/widget",
        json!({"size": Value::Null}),
        &data
    ));
}

#[test]
fn overlapping_update_paths_are_refused() {
    let r = rules(r#"{"rules": {".write": true}}"#);
    let Value::Object(patch) = json!({"a": {"b": 1}, "a/b": 2}) else {
        unreachable!()
    };
    match r.can_update("/", &patch, &ctx(None), &Value::Null) {
        Decision::Deny(denial) => assert!(denial.message.contains("invalid update"), "{denial}"),
        Decision::Allow => panic!("allowed"),
    }
}

#[test]
fn invalid_paths_are_refused() {
    let r = rules(r#"{"rules": {".read": true, ".write": true}}"#);
    for path in ["a.b", "a/$b", "a//b", "a#", "a[1]"] {
        assert!(
            !r.can_read(path, &ctx(None), &Value::Null, None)
                .is_allowed(),
            "{path}"
        );
        assert!(!can_set(&r, path, json!(1), &Value::Null), "{path}");
    }
    assert!(can_read(&r, "/", &Value::Null) && can_read(&r, "", &Value::Null));
}

#[test]
fn denials_say_which_rule_refused() {
    let r = widget_rules();
    let data = json!({"valid_colors": {"red": true}, "widget": {"color": "red", "size": 9}});
    let Decision::Deny(denial) = r.can_write("/widget/size", Some(&json!(500)), &ctx(None), &data)
    else {
        panic!("allowed")
    };
    assert_eq!(denial.rule.as_deref(), Some("rules/widget/size/.validate"));
    assert_eq!(denial.path, "/widget/size");
    let r = rules(r#"{"rules": {"a": {".write": "auth.uid.length > 1"}}}"#);
    let Decision::Deny(denial) = r.can_write("/a", Some(&json!(1)), &ctx(None), &Value::Null)
    else {
        panic!("allowed")
    };
    assert!(denial.message.contains("rules/a/.write failed"), "{denial}");
}

/// A store that records what rules read.
struct Recording {
    tree: Value,
    reads: RefCell<Vec<String>>,
}

impl Data for Recording {
    fn get(&self, path: &[String]) -> Option<Value> {
        self.reads
            .borrow_mut()
            .push(format!("get /{}", path.join("/")));
        Data::get(&self.tree, path)
    }

    fn exists(&self, path: &[String]) -> bool {
        self.reads
            .borrow_mut()
            .push(format!("exists /{}", path.join("/")));
        Data::get(&self.tree, path).is_some()
    }
}

#[test]
fn only_what_rules_look_at_is_read() {
    let r = rules(
        r#"{"rules": {"users": {"$uid": {
            ".write": "root.child('admins').hasChild(auth.uid)",
            "name": {".validate": "newData.isString()"}
        }}}}"#,
    );
    let store = Recording {
        tree: json!({"admins": {"alice": true}, "users": {"bob": {"name": "Bob"}}}),
        reads: RefCell::new(Vec::new()),
    };
    let alice = json!({"uid": "alice"});
    let value = json!("Robert");
    assert!(r
        .can_write("/users/bob/name", Some(&value), &ctx(Some(&alice)), &store)
        .is_allowed());
    assert_eq!(*store.reads.borrow(), vec!["exists /admins/alice"]);
}

#[test]
fn a_caller_tree_may_hold_arrays_and_nulls() {
    let r = rules(
        r#"{"rules": {".read": "root.child('a/1').val() == 'y' && !root.child('b').exists()"}}"#,
    );
    assert!(can_read(
        &r,
        "/",
        &json!({"a": ["x", "y"], "b": {"c": null}})
    ));
}

#[test]
fn patches_are_relative_paths() {
    let r = rules(r#"{"rules": {"a": {"$k": {".write": "$k == 'x'"}}}}"#);
    let mut patch = Map::new();
    patch.insert("x/deep".into(), json!(1));
    assert!(r
        .can_update("/a", &patch, &ctx(None), &Value::Null)
        .is_allowed());
    patch.insert("y".into(), json!(1));
    assert!(!r
        .can_update("/a", &patch, &ctx(None), &Value::Null)
        .is_allowed());
}
