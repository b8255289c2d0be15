//! Firebase's own answers: 186 expressions that targaryen's authors deployed to a live
//! Realtime Database, recording whether Firebase accepted each, whether it failed at run time
//! and what it evaluated to (`tests/firebase_fixtures.json`, from targaryen's repository,
//! ISC license: `tests/firebase_fixtures.LICENSE`). Each is replayed the way it was
//! recorded: as the `.read` rule of a location made of its `$variables`, read by the
//! recorded user over the recorded data.

use kora_firebase_rules::{Context, OrderBy, QueryParams, Rules};
use serde_json::{json, Map, Value};

#[derive(Debug)]
struct Fixture {
    rule: String,
    auth: Value,
    valid: bool,
    fails: bool,
    result: Option<bool>,
    wild: Vec<(String, String)>,
    data: Value,
    query: Option<QueryParams>,
}

fn fixtures() -> Vec<Fixture> {
    let file: Value = serde_json::from_str(include_str!("firebase_fixtures.json")).unwrap();
    let users = &file["users"];
    file["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut wild: Vec<(String, String)> = t["wildchildren"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            wild.sort();
            Fixture {
                rule: t["rule"].as_str().unwrap().to_string(),
                auth: users[t["user"].as_str().unwrap()].clone(),
                valid: t["isValid"].as_bool().unwrap(),
                fails: t["failAtRuntime"].as_bool().unwrap_or(false),
                result: t["evaluateTo"].as_bool(),
                wild,
                data: t.get("data").cloned().unwrap_or(Value::Null),
                query: t.get("query").map(query),
            }
        })
        .collect()
}

fn query(spec: &Value) -> QueryParams {
    let mut query = QueryParams::default();
    for (key, value) in spec.as_object().unwrap() {
        match key.as_str() {
            "orderByValue" => query.order_by = OrderBy::Value,
            "orderByChild" => query.order_by = OrderBy::Child(value.as_str().unwrap().into()),
            "startAt" => query.start_at = Some(value.clone()),
            "endAt" => query.end_at = Some(value.clone()),
            "equalTo" => query.equal_to = Some(value.clone()),
            "limitToLast" => query.limit_to_last = value.as_u64(),
            other => panic!("unexpected query parameter {other}"),
        }
    }
    query
}

/// The rules the fixture was deployed as: `.read` at the location of its `$variables`.
fn rules_text(f: &Fixture, rule: &str) -> String {
    let mut node = json!({".read": rule});
    for (name, _) in f.wild.iter().rev() {
        node = Value::Object(Map::from_iter([(name.clone(), node)]));
    }
    json!({"rules": node}).to_string()
}

fn read(f: &Fixture, rules: &Rules) -> bool {
    let path: Vec<&str> = f.wild.iter().map(|(_, v)| v.as_str()).collect();
    let auth = (!f.auth.is_null()).then_some(&f.auth);
    let ctx = Context {
        auth,
        now: 1_700_000_000_000,
    };
    rules
        .can_read(&path.join("/"), &ctx, &f.data, f.query.as_ref())
        .is_allowed()
}

#[test]
fn firebase_accepts_and_refuses_the_same_rules() {
    let mut wrong = Vec::new();
    for f in fixtures() {
        let loaded = Rules::parse(&rules_text(&f, &f.rule));
        if loaded.is_ok() != f.valid {
            wrong.push(format!(
                "{:?}: valid in Firebase: {}, here: {:?}",
                f.rule,
                f.valid,
                loaded.err()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn firebase_evaluates_the_same() {
    let mut wrong = Vec::new();
    let mut count = 0;
    for f in fixtures().into_iter().filter(|f| f.valid) {
        count += 1;
        let rules = Rules::parse(&rules_text(&f, &f.rule)).unwrap();
        let allowed = read(&f, &rules);
        // A run-time error fails the whole rule: `(rule) || true` is still false.
        let placebo = Rules::parse(&rules_text(&f, &format!("({}) || true", f.rule))).unwrap();
        let fails = !read(&f, &placebo);
        if fails != f.fails || (!f.fails && Some(allowed) != f.result) {
            wrong.push(format!(
                "{:?} (auth {}): Firebase: fails {} result {:?}; here: fails {fails} result {allowed}",
                f.rule, f.auth, f.fails, f.result
            ));
        }
    }
    assert!(count > 140, "{count} fixtures");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
