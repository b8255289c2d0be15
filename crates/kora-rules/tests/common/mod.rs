//! Shared by the integration tests: the example rules, a tree to run them against, and
//! runners that decide through rounds of lookups, as the engine will.
#![allow(dead_code)]

use kora_core::{Mutation, Path, Value};
use kora_rules::limits::MAX_LOOKUP_ROUNDS;
use kora_rules::{resolve, CheckError, Lookup, Rules, WritePlan};
use serde_json::{json, Map};

pub const NOW: i64 = 2_000;

pub fn example_rules() -> Rules {
    let text = include_str!("../fixtures/kora.rules.yaml");
    Rules::parse("kora.rules.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn example_tree() -> Map<String, Value> {
    let tree = json!({
        "todos": {
            "alice": {"T1": {"text": "Buy milk", "owner": "alice", "created": 1000, "done": false}},
            "bob": {"T9": {"text": "Fix the roof", "owner": "bob", "created": 1500}}
        },
        "user:info": {
            "alice": {"name": "Alice", "company": "acme", "email": "alice@acme.test"},
            "bob": {"name": "Bob", "company": "acme"},
            "carol": {"name": "Carol", "company": "globex"},
            "dave": {"name": "Dave"}
        },
        "company:info": {
            "acme": {"name": "Acme", "admins": {"alice": true}},
            "globex": {"name": "Globex", "admins": {"carol": true}}
        },
        "company:employees": {
            "acme": {"alice": 1000, "bob": 1000},
            "globex": {"carol": 1000}
        },
        "guestbook": {"G1": {"message": "Hello", "at": 5, "by": "anonymous"}}
    });
    tree.as_object().cloned().unwrap_or_default()
}

pub fn p(text: &str) -> Path {
    Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn claims(sub: &str) -> Option<Value> {
    Some(json!({"sub": sub}))
}

pub fn admin() -> Option<Value> {
    Some(json!({"sub": "root", "admin": true}))
}

/// Decides with lookups loaded round by round from `tree`, and checks that a lookup of
/// the whole tree decides the same.
pub fn write_in(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    mutation: &Mutation,
) -> Result<WritePlan, CheckError> {
    let mut rounds = 0;
    let load = |path: &Path| Lookup::get(tree, path).flatten();
    let by_rounds = resolve(
        load,
        |lookup| rules.check_write(mutation, who.as_ref(), NOW, lookup),
        &mut rounds,
    );
    let whole = rules.check_write(mutation, who.as_ref(), NOW, tree);
    assert_eq!(by_rounds, whole, "rounds and whole tree disagree");
    assert!(rounds < MAX_LOOKUP_ROUNDS, "{rounds} rounds");
    by_rounds
}

pub fn read_in(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    path: &str,
) -> Result<(), CheckError> {
    let mut rounds = 0;
    let load = |path: &Path| Lookup::get(tree, path).flatten();
    let by_rounds = resolve(
        load,
        |lookup| rules.check_read(&p(path), who.as_ref(), NOW, lookup),
        &mut rounds,
    );
    assert_eq!(
        by_rounds,
        rules.check_read(&p(path), who.as_ref(), NOW, tree)
    );
    by_rounds
}

/// The answer a query at `path` gets, filtered.
pub fn answer_in(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    path: &str,
) -> Result<Option<Value>, CheckError> {
    let value = Lookup::get(tree, &p(path)).flatten().unwrap_or(Value::Null);
    let mut rounds = 0;
    let load = |path: &Path| Lookup::get(tree, path).flatten();
    let by_rounds = resolve(
        load,
        |lookup| rules.filter_read(&p(path), value.clone(), who.as_ref(), NOW, lookup),
        &mut rounds,
    );
    assert_eq!(
        by_rounds,
        rules.filter_read(&p(path), value.clone(), who.as_ref(), NOW, tree)
    );
    by_rounds
}

/// What a subscriber at `path` receives of `change`, with the tree as it is after it.
pub fn pushed_in(
    rules: &Rules,
    after: &Map<String, Value>,
    who: &Option<Value>,
    path: &str,
    change: &Mutation,
) -> Result<Mutation, CheckError> {
    let mut rounds = 0;
    let load = |path: &Path| Lookup::get(after, path).flatten();
    let by_rounds = resolve(
        load,
        |lookup| rules.filter_change(&p(path), change, who.as_ref(), NOW, lookup),
        &mut rounds,
    );
    assert_eq!(
        by_rounds,
        rules.filter_change(&p(path), change, who.as_ref(), NOW, after)
    );
    by_rounds
}

/// Applies a mutation and its plan to a tree.
pub fn commit(tree: &mut Map<String, Value>, mutation: &Mutation, plan: &WritePlan) {
    mutation.clone().combine(plan.extra.clone()).apply_to(tree);
}

pub fn mutation(value: Value) -> Mutation {
    Mutation::from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}
