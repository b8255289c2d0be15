//! Fuzzes the rules language: the YAML rules file and the expression language.
//!
//! Input: arbitrary bytes, used when they are UTF-8 (a rules file is text). The same text is
//! tried as a whole rules file (`Rules::parse`) and as a single expression
//! (`Expression::parse`). Whatever parses is then evaluated against a small, fully loaded
//! tree, so the evaluator runs on fuzzer-built expressions too. Nothing here may panic:
//! parsing never panics, and evaluation is bounded in steps and reads (kora_rules::limits).
#![no_main]

use std::sync::OnceLock;

use kora_core::{Mutation, Path};
use kora_rules::{Bindings, Captures, Expression, Rules};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

static WORLD: OnceLock<World> = OnceLock::new();

/// Capture names an expression may use, as if it sat under `todos/$uid/$id`.
const CAPTURES: &[&str] = &["uid", "id"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let world = WORLD.get_or_init(World::new);

    if let Ok(rules) = Rules::parse("fuzz.yaml", text) {
        let _ = rules.patterns().count();
        for path in &world.paths {
            for auth in [None, Some(&world.auth)] {
                let _ = rules.check_read(path, auth, world.now, &world.tree);
                let _ = rules.filter_read(path, world.value.clone(), auth, world.now, &world.tree);
            }
        }
        for write in &world.writes {
            for auth in [None, Some(&world.auth)] {
                if let Ok(plan) = rules.check_write(write, auth, world.now, &world.tree) {
                    // The plan is meant to be combined into the write and committed.
                    let _ = write.clone().combine(plan.extra).to_json();
                }
            }
        }
    }

    if let Ok(expr) = Expression::parse(text, CAPTURES) {
        let _ = expr.reads_tree();
        let _ = expr.source();
        for write in &world.writes {
            for auth in [None, Some(&world.auth)] {
                let bindings = Bindings {
                    auth,
                    now: world.now,
                    path: &world.paths[1],
                    captures: &world.captures,
                    mutation: write,
                };
                let _ = expr.evaluate(&bindings, &world.tree);
            }
        }
    }
});

/// A small world for evaluations: a loaded tree, a caller, paths and writes.
struct World {
    tree: Map<String, Value>,
    auth: Value,
    now: i64,
    paths: Vec<Path>,
    writes: Vec<Mutation>,
    captures: Captures,
    value: Value,
}

impl World {
    fn new() -> World {
        let Value::Object(tree) = json!({
            "todos": {"alice": {"T1": {"text": "Milk", "done": false, "owner": "alice", "created": 1}}},
            "user:info": {"u1": {"name": "Ann", "company": "acme"}},
            "company:info": {"acme": {"name": "Acme", "admins": {"u1": true}}},
            "a": {"b": {"c": [1, 2.5, "x", null]}}
        }) else {
            unreachable!()
        };
        let path = |p: &str| Path::parse(p).expect("a valid path");
        let paths = vec![
            Path::root(),
            path("todos/alice/T1"),
            path("todos/alice"),
            path("user:info/u1/company"),
            path("a/b/c"),
        ];
        let writes = vec![
            Mutation::set(
                &path("todos/alice/T1"),
                json!({"text": "Eggs", "done": true}),
            )
            .expect("a valid mutation"),
            Mutation::delete(&path("todos/alice")),
            Mutation::merge(
                &path("user:info/u1"),
                json!({"company": "acme", "name": null}),
            )
            .expect("a valid mutation"),
            Mutation::merge(&path("a"), json!({"b": {"c": 7}})).expect("a valid mutation"),
        ];
        let captures: Captures = [("uid", "alice"), ("id", "T1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        World {
            tree,
            auth: json!({"sub": "alice", "admin": false, "roles": ["user"]}),
            now: 1_700_000_000_000,
            paths,
            writes,
            captures,
            value: json!({"T1": {"text": "Milk"}, "T2": {"text": "Eggs"}}),
        }
    }
}
