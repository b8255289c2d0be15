//! Loading `database.rules.json`: its format, comments, errors that name the rule, limits.

use kora_firebase_rules::limits::{MAX_EXPRESSION_BYTES, MAX_RULES_BYTES, MAX_RULES_DEPTH};
use kora_firebase_rules::{Rules, RulesError};

fn error(text: &str) -> String {
    match Rules::parse(text) {
        Ok(_) => panic!("loaded: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn comments_are_stripped_outside_strings() {
    let rules = Rules::parse(
        r#"
        // Firebase accepts comments in database.rules.json
        {
          /* the rules
             of the app */
          "rules": {
            "links": {
              // a URL holds `//`, which is no comment inside a string
              ".validate": "newData.val().beginsWith('https://') || newData.val().matches(/^\\/\\/x/)",
              ".write": true /* trailing */
            }
          }
        }"#,
    );
    assert!(rules.is_ok(), "{rules:?}");
}

#[test]
fn an_unterminated_comment_is_an_error() {
    assert!(error(r#"{"rules": {}} /* oops"#).contains("unterminated"));
}

#[test]
fn json_errors_give_line_and_column() {
    let text = "{\n  \"rules\": {\n    \".read\": true,\n  }\n}";
    match Rules::parse(text) {
        Err(RulesError::Json { line, .. }) => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_file_is_one_rules_object() {
    assert!(error(r#"{"rules": {}, "other": 1}"#).contains("one key"));
    assert!(error("[]").contains("one key"));
    assert!(error(r#"{"rules": true}"#).starts_with("rules: expected an object"));
    assert!(Rules::parse(r#"{"rules": {}}"#).is_ok());
}

#[test]
fn errors_name_the_rule() {
    let text = r#"{"rules": {"users": {"$uid": {".write": "auth.uid == $uid &&"}}}}"#;
    let e = error(text);
    assert!(e.starts_with("rules/users/$uid/.write: "), "{e}");
    assert!(e.contains("auth.uid == $uid &&"), "{e}");
}

#[test]
fn unknown_rule_types_are_refused() {
    let e = error(r#"{"rules": {"a": {".reed": true}}}"#);
    assert!(
        e.starts_with("rules/a/.reed: unknown rule type `.reed`"),
        "{e}"
    );
}

#[test]
fn rule_values_are_strings_or_booleans() {
    assert!(error(r#"{"rules": {".read": 1}}"#).contains("got a number"));
    assert!(error(r#"{"rules": {".read": null}}"#).contains("got null"));
    // A string that is not a boolean expression is refused, as Firebase refuses it.
    assert!(error(r#"{"rules": {".read": "1"}}"#).contains("must evaluate to a boolean"));
    assert!(error(r#"{"rules": {".read": ""}}"#).contains("empty"));
    assert!(Rules::parse(r#"{"rules": {".read": "true", ".write": false}}"#).is_ok());
}

#[test]
fn one_variable_child_per_location() {
    let e = error(r#"{"rules": {"a": {"$x": {}, "$y": {}}}}"#);
    assert!(e.starts_with("rules/a: ") && e.contains("$x, $y"), "{e}");
    let e = error(r#"{"rules": {"$x": {"b": {"$x": {}}}}}"#);
    assert!(e.contains("already bound"), "{e}");
    assert!(error(r#"{"rules": {"$": {}}}"#).contains("$variable"));
}

#[test]
fn keys_must_be_possible_data_keys() {
    for key in ["a.b", "a#", "a[0]", "a/b", "", "a$b"] {
        let text = serde_json::json!({"rules": {key: {}}}).to_string();
        assert!(Rules::parse(&text).is_err(), "{key:?}");
    }
}

#[test]
fn variables_are_in_scope_below_their_location_only() {
    assert!(Rules::parse(r#"{"rules": {"$a": {"b": {".read": "$a == 'x'"}}}}"#).is_ok());
    let e = error(r#"{"rules": {"$a": {}, "b": {".read": "$a == 'x'"}}}"#);
    assert!(e.starts_with("rules/b/.read: ") && e.contains("$a"), "{e}");
}

#[test]
fn index_on_is_kept_for_the_caller() {
    let rules = Rules::parse(
        r#"{"rules": {
            ".indexOn": ".value",
            "dinosaurs": {".indexOn": ["height", "length"]},
            "users": {"$uid": {"posts": {".indexOn": "date"}}}
        }}"#,
    )
    .unwrap();
    assert_eq!(
        rules.index_on(),
        vec![
            (String::new(), vec![".value".to_string()]),
            ("dinosaurs".into(), vec!["height".into(), "length".into()]),
            ("users/$uid/posts".into(), vec!["date".into()]),
        ]
    );
    assert!(error(r#"{"rules": {".indexOn": 1}}"#).starts_with("rules/.indexOn: "));
    assert!(error(r#"{"rules": {".indexOn": ["a", 2]}}"#).contains("array of strings"));
}

#[test]
fn limits_are_named() {
    let big = format!(r#"{{"rules": {{}}}}{}"#, " ".repeat(MAX_RULES_BYTES));
    assert!(matches!(
        Rules::parse(&big),
        Err(RulesError::TooLarge { .. })
    ));
    assert!(error(&big).contains("MAX_RULES_BYTES"));

    let mut deep = String::from("{}");
    for _ in 0..=MAX_RULES_DEPTH {
        deep = format!(r#"{{"a": {deep}}}"#);
    }
    assert!(error(&format!(r#"{{"rules": {deep}}}"#)).contains("MAX_RULES_DEPTH"));

    let long = format!("'{}' == ''", "a".repeat(MAX_EXPRESSION_BYTES));
    let e = error(&serde_json::json!({"rules": {"a": {".read": long}}}).to_string());
    assert!(
        e.starts_with("rules/a/.read: ") && e.contains("MAX_EXPRESSION_BYTES"),
        "{e}"
    );

    let e = error(r#"{"rules": {".read": "'a'.matches(/(\\w{1000}){1000}/)"}}"#);
    assert!(e.contains("MAX_REGEX_BYTES"), "{e}");
}
