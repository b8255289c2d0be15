//! The expression language, feature by feature: each rule is the root's `.read` (or
//! `.write`), evaluated over a small tree.

use kora_firebase_rules::{Context, OrderBy, QueryParams, Rules};
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_000_000;

fn data() -> Value {
    json!({
        "users": {"alice": {"name": "Alice", "age": 30, "admin": true}, "bob": {"name": "Bob"}},
        "text": "Hello, World",
        "n": 7,
        "flag": false,
        "list": ["x", "y"]
    })
}

fn read_rules(rule: &str) -> Result<Rules, String> {
    Rules::parse(&json!({"rules": {".read": rule}}).to_string()).map_err(|e| e.to_string())
}

/// Whether `rule`, as the root's `.read`, grants a read of the root.
fn holds_with(rule: &str, auth: Option<&Value>, query: Option<&QueryParams>) -> bool {
    let rules = read_rules(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let ctx = Context { auth, now: NOW };
    rules.can_read("/", &ctx, &data(), query).is_allowed()
}

fn holds(rule: &str) -> bool {
    holds_with(
        rule,
        Some(&json!({"uid": "alice", "token": {"admin": true, "tags": ["a"]}})),
        None,
    )
}

fn refused_at_load(rule: &str) -> String {
    match read_rules(rule) {
        Ok(_) => panic!("{rule} loaded"),
        Err(e) => e,
    }
}

#[test]
fn literals() {
    assert!(holds("true") && !holds("false"));
    assert!(holds("1.5e1 == 15 && 0x10 == 16 && .5 == 0.5"));
    assert!(holds(
        r#"'it\'s' == "it's" && '\u0041\x42' == 'AB' && 'a\nb'.length == 3"#
    ));
    assert!(holds("null == null"));
}

#[test]
fn variables() {
    assert!(holds("auth.uid == 'alice' && auth.token.admin == true"));
    assert!(holds("now == 1700000000000 && now > 0"));
    assert!(holds(
        "root.child('n').val() == 7 && data.child('n').val() == 7"
    ));
    assert!(holds("query.orderByKey && query.limitToFirst == null"));
    assert!(refused_at_load("newData.exists()").contains("newData"));
    assert!(refused_at_load("$uid == 'a'").contains("$uid"));
    assert!(refused_at_load("window == null").contains("window"));
}

#[test]
fn arithmetic_and_strings_follow_javascript() {
    assert!(holds(
        "1 + 2 * 3 == 7 && 7 % 4 == 3 && -(2 - 5) == 3 && 10 / 4 == 2.5"
    ));
    assert!(holds(
        "'a' + 1 == 'a1' && 1 + 'a' == '1a' && 'n' + 2.5 == 'n2.5'"
    ));
    assert!(
        holds("(1 / 0 + '') == 'NaN'"),
        "Firebase divides by zero into NaN"
    );
    assert!(holds("!(1 / 0 > 2) && !(1 / 0 < 2)"));
    assert!(holds(
        "'abc' < 'abd' && 'B' < 'a' && 2 >= 2 && null <= null && !(null < null)"
    ));
    assert!(holds("0.1 + 0.2 + '' == '0.30000000000000004'"));
}

#[test]
fn equality_is_strict() {
    assert!(holds(
        "1 === 1 && 1 == 1 && 1 !== '1' && 1 != '1' && null != false"
    ));
    assert!(holds("auth != null && root.child('nothing').val() == null"));
    assert!(
        !holds("auth == root.child('users').val()"),
        "two objects do not compare"
    );
}

#[test]
fn logic_is_lazy_and_errors_fail_the_whole_rule() {
    assert!(holds("true || auth.nothing.length > 1"));
    assert!(!holds("false && auth.nothing.length > 1 || false"));
    assert!(
        !holds("auth.nothing.length > 1 || true"),
        "an error is not false: it fails the rule"
    );
    assert!(!holds("!(auth.nothing.length > 1)"));
    assert!(holds("true ? true : auth.nothing.length > 1"));
    assert!(holds("(false ? 1 : 'two') == 'two'"));
}

#[test]
fn member_access() {
    assert!(holds(
        "auth['uid'] == 'alice' && auth.token['admin'] == true"
    ));
    assert!(
        holds("auth.missing == null && auth.missing.deeper == null"),
        "members of null are null"
    );
    assert!(holds(
        "auth.token.tags.length == 1 && auth.token.tags[0] == 'a'"
    ));
    assert!(holds("root['exists']()"));
    assert!(refused_at_load("(true ? root.exists : data.exists)()").contains("only a method"));
    assert!(refused_at_load("root[auth.uid]()").contains("quoted name"));
    assert!(refused_at_load("data.val").contains("boolean"));
    assert!(refused_at_load("data.size() == 1").contains("size"));
    assert!(refused_at_load("query.foo == 1").contains("foo"));
}

#[test]
fn unauthenticated_callers_have_a_null_auth() {
    assert!(holds_with("auth == null", None, None));
    assert!(
        holds_with("auth.uid == null", None, None),
        "Firebase: a member of null is null"
    );
    assert!(!holds_with("auth.uid.length > 0", None, None));
    assert!(
        !holds_with("auth.uid.contains('a')", None, None),
        "a method of null errs"
    );
}

#[test]
fn snapshot_methods() {
    assert!(holds("root.child('users/alice/name').val() == 'Alice'"));
    assert!(holds(
        "root.child('users').child('alice').child('age').val() == 30"
    ));
    assert!(holds(
        "root.child('/users/alice/').exists() && !root.child('users/carol').exists()"
    ));
    assert!(holds("root.child('users/alice').parent().hasChild('bob')"));
    assert!(holds(
        "root.hasChild('users/bob/name') && !root.hasChild('users/bob/age')"
    ));
    assert!(holds(
        "root.child('users/alice').hasChildren() && !root.child('n').hasChildren()"
    ));
    assert!(holds(
        "root.child('users/alice').hasChildren(['name', 'age'])"
    ));
    assert!(!holds(
        "root.child('users/bob').hasChildren(['name', 'age'])"
    ));
    assert!(holds(
        "root.child('n').isNumber() && root.child('text').isString()"
    ));
    assert!(holds(
        "root.child('flag').isBoolean() && !root.child('flag').isString()"
    ));
    assert!(
        holds("root.child('text').getPriority() == null"),
        "priorities are not supported"
    );
    assert!(
        holds("root.child('list/1').val() == 'y'"),
        "arrays are objects keyed by index"
    );
    assert!(holds("root.child('users').val() != null"));
    assert!(!holds("root.parent().exists()"), "the root has no parent");
    assert!(!holds("root.child(auth.nothing).exists()"));
    assert!(refused_at_load("root.child(1).exists()").contains("string"));
    assert!(refused_at_load("root.hasChildren('a', 'b')").contains("hasChildren"));
    assert!(refused_at_load("root.hasChildren([])").contains("empty"));
    assert!(refused_at_load("root.hasChildren(['a', 1])").contains("number"));
}

#[test]
fn string_methods() {
    let text = "root.child('text').val()";
    assert!(holds(&format!("{text}.length == 12")));
    assert!(holds(&format!(
        "{text}.contains('World') && !{text}.contains('world')"
    )));
    assert!(holds(&format!(
        "{text}.beginsWith('Hello') && {text}.endsWith('World')"
    )));
    assert!(holds("'abab'.endsWith('ab') && !'b'.endsWith('ab')"));
    assert!(
        holds(&format!("{text}.replace('l', 'L') == 'HeLLo, WorLd'")),
        "replace replaces all"
    );
    assert!(holds(&format!("{text}.toLowerCase() == 'hello, world'")));
    assert!(holds(&format!("{text}.toUpperCase() == 'HELLO, WORLD'")));
    assert!(holds("'ß'.toUpperCase() == 'SS' && 'a😀'.length == 3"));
    assert!(
        !holds("'abc'.contains(auth.nothing)"),
        "string methods need string arguments"
    );
    assert!(
        !holds("root.child('n').val().contains('7')"),
        "a number has no string methods"
    );
    assert!(refused_at_load("'abc'.contains(1)").contains("string"));
}

#[test]
fn regular_expressions() {
    assert!(holds("root.child('text').val().matches(/^Hello, \\w+$/)"));
    assert!(holds("root.child('text').val().matches(/world/i)"));
    assert!(holds("'2024-01-31'.matches(/^\\d{4}-\\d{2}-\\d{2}$/)"));
    assert!(holds(
        "'user@example.com'.matches(/^[^@]+@[a-z]+\\.(com|org)$/)"
    ));
    assert!(!holds("'12'.matches(/^\\d$/)"));
    assert!(
        !holds("root.child('n').val().matches(/7/)"),
        "a number has no matches()"
    );
    for (rule, why) in [
        ("'a'.matches(/a/g)", "flags"),
        ("'a'.matches(/(^a$|b)/)", "first character"),
        ("'a'.matches(/^(a|)$/)", "empty"),
        ("'a'.matches('a')", "regular expression"),
        ("/a/ == null", "regular expression"),
    ] {
        let error = refused_at_load(rule);
        assert!(error.contains(why), "{rule}: {error}");
    }
}

#[test]
fn query_parameters() {
    let owner = json!({"uid": "alice"});
    let rule = "query.orderByChild == 'owner' && query.equalTo == auth.uid";
    let by_owner = QueryParams {
        order_by: OrderBy::Child("owner".into()),
        equal_to: Some(json!("alice")),
        ..QueryParams::default()
    };
    assert!(holds_with(rule, Some(&owner), Some(&by_owner)));
    assert!(!holds_with(rule, Some(&owner), None));
    let limited = QueryParams {
        order_by: OrderBy::Value,
        limit_to_first: Some(10),
        start_at: Some(json!(3)),
        ..QueryParams::default()
    };
    let rule = "query.orderByValue && !query.orderByKey && query.limitToFirst <= 10 && query.startAt == 3 && query.endAt == null";
    assert!(holds_with(rule, None, Some(&limited)));
}

#[test]
fn type_errors_firebase_reports_at_deploy() {
    for (rule, why) in [
        ("7", "boolean"),
        ("'foo'", "boolean"),
        ("auth.uid", "boolean"),
        ("auth.uid == 'a' ? 7 : true", "boolean"),
        ("auth.uid && true", "&&"),
        ("!auth.admin", "!"),
        ("root.val() > true", "boolean"),
        ("1 < 'a'", "same type"),
        ("root.child('a') != null", "snapshot"),
        ("null + 1 == 1", "null"),
        ("-'a' == 1", "number"),
        ("auth.foo.notFound() == false", "notFound"),
        ("root.val().notFound == false", "notFound"),
        ("root.val(1) == 1", "argument"),
        ("now.length > 1", "number"),
    ] {
        let error = refused_at_load(rule);
        assert!(error.contains(why), "{rule}: {error}");
        assert!(error.starts_with("rules/.read:"), "{error}");
    }
}

#[test]
fn strings_are_bounded() {
    let rule = format!("'ab'{}.length > 0", ".replace('a', 'aaaaaaaa')".repeat(10));
    assert!(!holds(&rule), "a string past MAX_STRING_BYTES errs");
    assert!(holds("'ab'.replace('a', 'aaaaaaaa').length == 9"));
}
