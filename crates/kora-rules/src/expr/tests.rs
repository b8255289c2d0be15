//! Evaluation tests: the language as rules authors see it.

use serde_json::{json, Map};

use super::*;
use crate::lookup::{Loaded, NothingLoaded};

fn tree() -> Map<String, Value> {
    json!({
        "todos": {"u1": {"T1": {"text": "Buy milk", "owner": "u1", "tags": ["a", "b"], "n": 3}}},
        "company:info": {"acme": {"admins": {"boss": true}}}
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn captures() -> Captures {
    Captures::from([
        ("uid".to_string(), "u1".to_string()),
        ("id".to_string(), "T1".to_string()),
    ])
}

fn eval_with(
    source: &str,
    auth: Value,
    lookup: &dyn Lookup,
    mutation: &Mutation,
) -> Result<Value, EvalError> {
    let expression = Expression::parse(source, &["uid", "id"]).expect(source);
    let path = Path::parse("todos/u1/T1").unwrap();
    let captures = captures();
    let bindings = Bindings {
        auth: (!auth.is_null()).then_some(&auth),
        now: 1_700_000_000_000,
        path: &path,
        captures: &captures,
        mutation,
    };
    expression.evaluate(&bindings, lookup)
}

fn eval(source: &str) -> Value {
    let mutation = Mutation::merge(&Path::parse("todos/u1/T1/done").unwrap(), json!(true)).unwrap();
    eval_with(
        source,
        json!({"sub": "u1", "admin": false}),
        &tree(),
        &mutation,
    )
    .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn fails(source: &str) -> String {
    let mutation = Mutation::new();
    match eval_with(source, json!({"sub": "u1"}), &tree(), &mutation) {
        Err(EvalError::Failed(message)) => message,
        other => panic!("{source}: expected an error, got {other:?}"),
    }
}

#[test]
fn variables_and_captures() {
    assert_eq!(eval("auth.sub"), json!("u1"));
    assert_eq!(eval("$uid + '/' + $id"), json!("u1/T1"));
    assert_eq!(eval("now"), json!(1_700_000_000_000i64));
    assert_eq!(eval("data.text"), json!("Buy milk"));
    assert_eq!(eval("data.done"), Value::Null);
    assert_eq!(eval("newData.done"), json!(true));
    assert_eq!(eval("newData.text == data.text"), json!(true));
}

#[test]
fn missing_members_are_null_not_errors() {
    assert_eq!(eval("data.nope.deeper.still"), Value::Null);
    assert_eq!(eval("auth.claims.role"), Value::Null);
    assert_eq!(eval("data.text.length"), Value::Null);
    assert_eq!(eval("data.tags[5]"), Value::Null);
    assert_eq!(eval("data.tags[1]"), json!("b"));
    assert_eq!(eval("data['text']"), json!("Buy milk"));
    assert_eq!(eval("data['a/b']"), Value::Null);
    assert_eq!(eval("{'a': 1}.b"), Value::Null);
}

#[test]
fn anonymous_auth_is_null() {
    let mutation = Mutation::new();
    let result = eval_with(
        "auth == null && auth.sub == null",
        Value::Null,
        &tree(),
        &mutation,
    );
    assert_eq!(result, Ok(json!(true)));
    let result = eval_with("data.owner == auth.sub", Value::Null, &tree(), &mutation);
    assert_eq!(result, Ok(json!(false)));
}

#[test]
fn functions() {
    assert_eq!(eval("size(data.text)"), json!(8));
    assert_eq!(eval("data.text.size()"), json!(8));
    assert_eq!(eval("size(data.tags) + size(data)"), json!(6));
    assert_eq!(eval("size('héllo')"), json!(5));
    assert_eq!(
        eval("is_string(data.text) && !is_string(data.n)"),
        json!(true)
    );
    assert_eq!(
        eval("is_number(data.n) && is_int(data.n) && !is_int(1.5)"),
        json!(true)
    );
    assert_eq!(
        eval("is_bool(newData.done) && is_map(data) && is_list(data.tags)"),
        json!(true)
    );
    assert_eq!(eval("is_string(null) || is_map(null)"), json!(false));
    assert_eq!(eval("matches(data.text, '^Buy ')"), json!(true));
    assert_eq!(eval("data.text.matches('milk$')"), json!(true));
    assert_eq!(
        eval("startsWith(data.text, 'Buy') && data.text.endsWith('milk')"),
        json!(true)
    );
    assert_eq!(
        eval("data.text.contains('y m') && data.tags.contains('a')"),
        json!(true)
    );
    assert_eq!(eval("contains(data, 'owner')"), json!(true));
    assert_eq!(eval("lower('AbC') + upper('x')"), json!("abcX"));
    assert_eq!(
        eval("string(3) + string(true) + string(null) + string('s')"),
        json!("3truenulls")
    );
    assert_eq!(eval("keys({'b': 1, 'a': 2})"), json!(["a", "b"]));
    assert_eq!(eval("root('company:info/acme/admins/boss')"), json!(true));
    assert_eq!(
        eval("root('company:info/' + 'acme' + '/admins/' + auth.sub)"),
        Value::Null
    );
    assert_eq!(eval("newRoot('todos/u1/T1/done')"), json!(true));
    assert_eq!(eval("root('todos/u1/T1/done')"), Value::Null);
}

#[test]
fn operators() {
    assert_eq!(eval("1 + 2 * 3 - 4 / 2 % 3"), json!(5));
    assert_eq!(eval("-data.n"), json!(-3));
    assert_eq!(
        eval("'b' in data.tags && 'text' in data && 'uy' in data.text"),
        json!(true)
    );
    assert_eq!(eval("data == null ? 'new' : 'old'"), json!("old"));
    assert_eq!(eval("[1, data.n] == [1, 3.0]"), json!(true));
    assert_eq!(eval("{'k': data.n}"), json!({"k": 3}));
    assert_eq!(eval("data.n >= 3 && data.n < 4 && 'a' < 'b'"), json!(true));
}

#[test]
fn type_errors_fail() {
    assert!(fails("data.n + 'x'").contains("cannot add"));
    assert!(fails("size(data.missing)").contains("size"));
    assert!(fails("!data.text").contains("expected a bool"));
    assert!(fails("data.text ? 1 : 2").contains("expected a bool"));
    assert!(fails("null < 1").contains("cannot order"));
    assert!(fails("root(5)").contains("path string"));
    assert!(fails("root('a/' + '/b')").contains("not a path"));
    assert!(fails("matches(data.n, 'x')").contains("string"));
    assert!(fails("1 / 0").contains("division by zero"));
}

#[test]
fn or_and_and_let_the_other_side_decide() {
    assert_eq!(eval("(1 < 'a') || true"), json!(true));
    assert_eq!(eval("(1 < 'a') && false"), json!(false));
    assert!(fails("(1 < 'a') || false").contains("cannot order"));
    assert!(fails("true && (1 < 'a')").contains("cannot order"));
}

#[test]
fn unloaded_data_is_asked_for_and_collected_in_one_round() {
    let mutation = Mutation::new();
    let result = eval_with(
        "data.owner == auth.sub && root('company:info/acme/admins/' + auth.sub) == true",
        json!({"sub": "u1"}),
        &NothingLoaded,
        &mutation,
    );
    let Err(EvalError::NeedsData(needs)) = result else {
        panic!("expected a request for data, got {result:?}")
    };
    let paths: Vec<String> = needs.paths.iter().map(Path::to_string).collect();
    assert_eq!(paths, ["company:info/acme/admins/u1", "todos/u1/T1/owner"]);
}

#[test]
fn a_deciding_side_needs_no_data() {
    let mutation = Mutation::new();
    let result = eval_with(
        "data.owner == 'x' || auth.admin == true",
        json!({"admin": true}),
        &NothingLoaded,
        &mutation,
    );
    assert_eq!(result, Ok(json!(true)));
    let result = eval_with(
        "data.owner == 'x' && auth.admin == true",
        json!({"admin": false}),
        &NothingLoaded,
        &mutation,
    );
    assert_eq!(result, Ok(json!(false)));
}

#[test]
fn evaluation_after_loading_succeeds() {
    let mutation = Mutation::new();
    let mut loaded = Loaded::new();
    loaded.insert(
        &Path::parse("todos/u1/T1/owner").unwrap(),
        Some(json!("u1")),
    );
    let result = eval_with(
        "data.owner == auth.sub",
        json!({"sub": "u1"}),
        &loaded,
        &mutation,
    );
    assert_eq!(result, Ok(json!(true)));
}

#[test]
fn only_the_members_used_are_read() {
    let mutation = Mutation::new();
    let result = eval_with("data.owner", json!({}), &NothingLoaded, &mutation);
    let Err(EvalError::NeedsData(needs)) = result else {
        panic!("expected a request")
    };
    assert_eq!(needs.paths, vec![Path::parse("todos/u1/T1/owner").unwrap()]);
}

#[test]
fn reads_are_limited() {
    let many: Vec<String> = (0..40).map(|i| format!("root('k{i}') == null")).collect();
    let message = fails(&many.join(" && "));
    assert!(message.contains("read the tree"), "{message}");
}
