//! targaryen as an oracle: random rules, data, identities and requests, decided here and by
//! targaryen (an independent implementation of the same rules, in Node), which must agree.
//!
//! All cases of a run go to one `node tests/oracle/oracle.mjs` process. The cases that pass
//! through a place where targaryen is known to differ from Firebase (ORACLE.md) come back
//! tagged and are not compared. Without Node the test says it was skipped, and fails under
//! `CI=true`. `KORA_TEST_SEED` replays a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kora_firebase_rules::{Context, Data, OrderBy, QueryParams, Rules};
use serde_json::{json, Map, Value};

/// Rule sets per run, and requests per rule set.
const RULE_SETS: usize = 120;
const REQUESTS_PER_RULE_SET: usize = 6;

const NOW: i64 = 1_700_000_000_000;

/// Keys of the data and of the rules: few, so rules and requests meet.
const KEYS: &[&str] = &["a", "b", "c"];

#[test]
fn targaryen_agrees() {
    let Some(node) = node_available() else {
        return;
    };
    install_targaryen();
    let mut rng = kora_testkit::rng("targaryen_agrees");
    let cases: Vec<Case> = (0..RULE_SETS)
        .flat_map(|_| {
            let rules = rule_set(&mut rng);
            (0..REQUESTS_PER_RULE_SET)
                .map(|_| request(&mut rng, &rules))
                .collect::<Vec<_>>()
        })
        .collect();

    let started = Instant::now();
    let ours: Vec<Answer> = cases.iter().map(decide).collect();
    let theirs = targaryen(&node, &cases);
    println!(
        "{} cases decided here and by targaryen in {:?}",
        cases.len(),
        started.elapsed()
    );

    let mut compared = 0;
    let mut excluded = BTreeMap::<String, usize>::new();
    let mut disagreements = Vec::new();
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        if let Some(crash) = theirs.get("crashed") {
            panic!("targaryen crashed on {}:\n{crash}", case.to_json());
        }
        let tags = theirs["tags"].as_array().cloned().unwrap_or_default();
        if !tags.is_empty() {
            for tag in tags {
                *excluded
                    .entry(tag.as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            continue;
        }
        compared += 1;
        let agree = match ours.allowed {
            None => theirs["valid"] == false,
            Some(allowed) => theirs["valid"] == true && theirs["allowed"] == allowed,
        };
        if !agree {
            let why = theirs
                .get("info")
                .or(theirs.get("error"))
                .cloned()
                .unwrap_or_default();
            disagreements.push(format!(
                "case {}\n  here: {}\n  targaryen: {why}\n",
                case.to_json(),
                ours.why
            ));
        }
    }
    println!("compared {compared}, excluded as known differences {excluded:?}");
    for kind in ["read", "set", "update"] {
        let answers: Vec<&Answer> = cases
            .iter()
            .zip(&ours)
            .filter(|(case, _)| case.kind() == kind)
            .map(|(_, answer)| answer)
            .collect();
        let allowed = answers.iter().filter(|a| a.allowed == Some(true)).count();
        let unloaded = answers.iter().filter(|a| a.allowed.is_none()).count();
        println!(
            "{kind}: {allowed} allowed, {unloaded} with rules that do not load, of {}",
            answers.len()
        );
    }
    assert!(
        disagreements.is_empty(),
        "{} of {compared} cases disagree with targaryen (replay with the seed above):\n{}",
        disagreements.len(),
        disagreements.iter().take(5).cloned().collect::<String>()
    );
    // The generator must keep exercising both answers, and most cases must be compared.
    let allowed = ours.iter().filter(|a| a.allowed == Some(true)).count();
    assert!(compared * 10 >= cases.len() * 8, "only {compared} compared");
    assert!(
        allowed * 10 >= cases.len() && allowed * 10 <= cases.len() * 9,
        "{allowed} allowed"
    );
}

/// One request against one rule set.
struct Case {
    rules: Value,
    data: Value,
    auth: Value,
    op: Op,
}

enum Op {
    Read {
        path: String,
        query: Option<Value>,
    },
    Set {
        path: String,
        value: Value,
    },
    Update {
        path: String,
        patch: Map<String, Value>,
    },
}

impl Case {
    fn kind(&self) -> &'static str {
        match self.op {
            Op::Read { .. } => "read",
            Op::Set { .. } => "set",
            Op::Update { .. } => "update",
        }
    }

    fn to_json(&self) -> Value {
        let op = match &self.op {
            Op::Read { path, query } => {
                let mut op = json!({"kind": "read", "path": path});
                if let Some(query) = query {
                    op["query"] = query.clone();
                }
                op
            }
            Op::Set { path, value } => json!({"kind": "set", "path": path, "value": value}),
            Op::Update { path, patch } => json!({"kind": "update", "path": path, "patch": patch}),
        };
        json!({"rules": self.rules, "data": self.data, "auth": self.auth, "now": NOW, "op": op})
    }
}

/// Our answer: allowed or not (`None` when the rules do not load), and why.
struct Answer {
    allowed: Option<bool>,
    why: String,
}

fn decide(case: &Case) -> Answer {
    let rules = match Rules::parse(&case.rules.to_string()) {
        Ok(rules) => rules,
        Err(e) => {
            return Answer {
                allowed: None,
                why: e.to_string(),
            }
        }
    };
    let auth = (!case.auth.is_null()).then_some(&case.auth);
    let ctx = Context { auth, now: NOW };
    let data: &dyn Data = &case.data;
    let decision = match &case.op {
        Op::Read { path, query } => {
            let query = query.as_ref().map(query_params);
            rules.can_read(path, &ctx, data, query.as_ref())
        }
        Op::Set { path, value } => rules.can_write(path, Some(value), &ctx, data),
        Op::Update { path, patch } => rules.can_update(path, patch, &ctx, data),
    };
    Answer {
        allowed: Some(decision.is_allowed()),
        why: format!("{decision:?}"),
    }
}

fn query_params(spec: &Value) -> QueryParams {
    let mut query = QueryParams::default();
    for (key, value) in spec.as_object().into_iter().flatten() {
        match key.as_str() {
            "orderByValue" => query.order_by = OrderBy::Value,
            "orderByChild" => query.order_by = OrderBy::Child(value.as_str().unwrap_or("").into()),
            "startAt" => query.start_at = Some(value.clone()),
            "equalTo" => query.equal_to = Some(value.clone()),
            "limitToFirst" => query.limit_to_first = value.as_u64(),
            _ => {}
        }
    }
    query
}

// --- Running targaryen --------------------------------------------------------------------

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

/// The `node` command, or `None` (having said so) when Node is not installed.
fn node_available() -> Option<String> {
    let works = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("node") && works("npm") {
        return Some("node".into());
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "Node.js and npm are required for the targaryen oracle under CI=true"
    );
    println!("SKIPPED targaryen_agrees: Node.js or npm is not installed");
    None
}

/// `npm ci` in tests/oracle, once, when targaryen is missing.
fn install_targaryen() {
    let dir = oracle_dir();
    if dir.join("node_modules/targaryen/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("run npm ci");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

fn targaryen(node: &str, cases: &[Case]) -> Vec<Value> {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("targaryen-cases-{}.json", std::process::id()));
    let batch: Vec<Value> = cases.iter().map(Case::to_json).collect();
    std::fs::write(&file, serde_json::to_vec(&batch).unwrap()).unwrap();
    let output = Command::new(node)
        .arg(oracle_dir().join("oracle.mjs"))
        .arg(&file)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "oracle.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_file(&file);
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).expect("answers as JSON");
    assert_eq!(answers.len(), cases.len());
    answers
}

// --- Generating cases ---------------------------------------------------------------------

type Rng = fastrand::Rng;

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// What an expression may name where it is.
struct Scope {
    write: bool,
    read: bool,
    wild: Vec<String>,
    /// Whether the rule's location is the root (where `data.parent()` errs).
    depth: usize,
}

fn rule_set(rng: &mut Rng) -> Value {
    let mut root = rules_node(rng, 0, &mut Vec::new());
    // Some rule sets grant everything at the root, so that their requests test validation.
    for kind in [".read", ".write"] {
        if rng.u8(..100) < 30 {
            root[kind] = Value::Bool(true);
        }
    }
    json!({"rules": root})
}

fn rules_node(rng: &mut Rng, depth: usize, wild: &mut Vec<String>) -> Value {
    let mut node = Map::new();
    for (kind, chance) in [(".read", 35), (".write", 40), (".validate", 25)] {
        if rng.u8(..100) < chance {
            let scope = Scope {
                write: kind != ".read",
                read: kind == ".read",
                wild: wild.clone(),
                depth,
            };
            // Literal rules, mostly `true`, keep enough requests allowed to test validation.
            let rule = if rng.u8(..100) < 25 {
                Value::Bool(rng.u8(..5) > 0)
            } else {
                Value::String(rule_text(rng, &scope))
            };
            node.insert(kind.into(), rule);
        }
    }
    if depth < 3 {
        for key in KEYS {
            if rng.u8(..100) < 30 {
                node.insert((*key).into(), rules_node(rng, depth + 1, wild));
            }
        }
        if rng.u8(..100) < 40 {
            let name = format!("$w{depth}");
            wild.push(name.clone());
            node.insert(name, rules_node(rng, depth + 1, wild));
            wild.pop();
        }
    }
    Value::Object(node)
}

/// A rule: usually a well-typed boolean, sometimes something Firebase refuses to load.
fn rule_text(rng: &mut Rng, scope: &Scope) -> String {
    if rng.u8(..100) < 2 {
        return pick(
            rng,
            &[
                "auth.uid && true",
                "data.val() > true",
                "data.val",
                "'a'",
                "auth.uid.foo()",
                "newData.exists() || data.child(1).exists()",
                "data.hasChildren(['a', 1])",
                "root.val().matches('a')",
                "$nowhere == 'a'",
            ],
        )
        .to_string();
    }
    boolean(rng, scope, 3)
}

fn boolean(rng: &mut Rng, scope: &Scope, budget: u32) -> String {
    if budget > 0 && rng.u8(..100) < 35 {
        let (a, b) = (
            boolean(rng, scope, budget - 1),
            boolean(rng, scope, budget - 1),
        );
        return match rng.u8(..4) {
            0 => format!("({a} && {b})"),
            1 => format!("({a} || {b})"),
            2 => format!("!({a})"),
            _ => format!("({} ? {a} : {b})", boolean(rng, scope, budget - 1)),
        };
    }
    match rng.u8(..11) {
        0 => pick(rng, &["true", "false", "now > 0", "now < 1000"]).to_string(),
        1 => auth_test(rng, scope),
        2 | 3 => format!("{}.{}", snapshot(rng, scope), snapshot_test(rng)),
        4 | 5 => value_test(rng, scope),
        6 | 7 => string_test(rng, scope),
        8 if !scope.wild.is_empty() => {
            format!("{} == {}", pick(rng, &scope.wild), string_literal(rng))
        }
        9 if scope.read => query_test(rng),
        _ => number_test(rng, scope),
    }
}

fn auth_test(rng: &mut Rng, scope: &Scope) -> String {
    let mut tests = vec![
        "auth != null".to_string(),
        "auth == null".into(),
        "auth['uid'] == 'ab'".into(),
        "auth.token['admin'] != false".into(),
        "auth.uid + 1 == 'a1'".into(),
        "auth.uid == 'a'".into(),
        "auth.uid != null".into(),
        "auth.token.admin == true".into(),
        "auth.provider == 'password'".into(),
        "auth.token.level > 1".into(),
    ];
    for w in &scope.wild {
        tests.push(format!("auth.uid == {w}"));
        tests.push(format!("auth.token[{w}] == true"));
        tests.push(format!("data.hasChildren([{w}, 'a'])"));
    }
    pick(rng, &tests).clone()
}

fn snapshot(rng: &mut Rng, scope: &Scope) -> String {
    let mut roots = vec!["data".to_string(), "root".into()];
    if scope.write {
        roots.push("newData".into());
        roots.push("newData".into());
    }
    let base = pick(rng, &roots).clone();
    match rng.u8(..6) {
        0 | 1 => base,
        2 => format!("{base}.child({})", child_path(rng, scope)),
        3 if scope.depth > 0 || rng.u8(..4) == 0 => format!("{base}.parent()"),
        4 => format!(
            "{base}.child({}).child({})",
            child_path(rng, scope),
            child_path(rng, scope)
        ),
        _ => format!("{base}.child({})", child_path(rng, scope)),
    }
}

fn child_path(rng: &mut Rng, scope: &Scope) -> String {
    if !scope.wild.is_empty() && rng.u8(..4) == 0 {
        return pick(rng, &scope.wild).clone();
    }
    pick(
        rng,
        &["'a'", "'b'", "'c'", "'a/b'", "'b/a'", "'/a/'", "'x'"],
    )
    .to_string()
}

fn snapshot_test(rng: &mut Rng) -> String {
    pick(
        rng,
        &[
            "exists()",
            "hasChildren()",
            "hasChildren(['a'])",
            "hasChildren(['a', 'b'])",
            "hasChild('a')",
            "hasChild('b/c')",
            "isString()",
            "isNumber()",
            "isBoolean()",
            "getPriority() == null",
        ],
    )
    .to_string()
}

fn value_test(rng: &mut Rng, scope: &Scope) -> String {
    let snap = snapshot(rng, scope);
    let other = if rng.bool() {
        format!("{}.val()", snapshot(rng, scope))
    } else {
        literal(rng)
    };
    let op = *pick(rng, &["==", "!=", "===", "!==", "<", ">=", ">", "<="]);
    // Firebase refuses to load a comparison with a boolean literal; keep those rare.
    let other = if op.starts_with(['<', '>']) && (other == "true" || other == "false") {
        "1".to_string()
    } else {
        other
    };
    format!("{snap}.val() {op} {other}")
}

fn literal(rng: &mut Rng) -> String {
    pick(
        rng,
        &["'a'", "'ab'", "1", "2", "2.5", "true", "false", "null", "0"],
    )
    .to_string()
}

fn string_literal(rng: &mut Rng) -> String {
    pick(rng, &["'a'", "'b'", "'ab'", "'c'"]).to_string()
}

/// A string-ish operand: typed string, or only known at run time.
fn string_value(rng: &mut Rng, scope: &Scope) -> String {
    let mut options = vec![
        format!("{}.val()", snapshot(rng, scope)),
        "auth.uid".into(),
        "'abab'".into(),
        format!("({}.val() + 'b')", snapshot(rng, scope)),
        format!("{}.val().toUpperCase()", snapshot(rng, scope)),
        format!("{}.val().replace('a', 'bb')", snapshot(rng, scope)),
    ];
    options.extend(scope.wild.iter().cloned());
    pick(rng, &options).clone()
}

fn string_test(rng: &mut Rng, scope: &Scope) -> String {
    let s = string_value(rng, scope);
    let arg = string_literal(rng);
    match rng.u8(..9) {
        0 => format!("{s}.contains({arg})"),
        1 => format!("{s}.beginsWith({arg})"),
        2 => format!("{s}.endsWith({arg})"),
        3 => format!("{s}.matches(/^a+b?$/)"),
        4 => format!("{s}.matches(/B[a-c]/i)"),
        5 => format!("{s}.length > 1"),
        6 => format!("{s}.toLowerCase() == {arg}"),
        7 => format!("{s}.replace({arg}, 'x') == 'xb'"),
        _ => format!("{s} + {arg} == 'ab'"),
    }
}

fn number_test(rng: &mut Rng, scope: &Scope) -> String {
    let n = format!("{}.val()", snapshot(rng, scope));
    match rng.u8(..8) {
        5 => format!("({n} + '').length == 3"),
        6 => format!("({} ? {n} : 2) == 2", boolean(rng, scope, 0)),
        7 if scope.write => "newData.val() == now".into(),
        0 => format!("{n} + 1 > 2"),
        1 => format!("{n} * 2 == 4"),
        2 => format!("{n} % 2 == 1"),
        3 => format!("-{n} < -1"),
        _ => format!("{n} / 0 != {n} / 0"),
    }
}

fn query_test(rng: &mut Rng) -> String {
    pick(
        rng,
        &[
            "query.orderByKey",
            "query.orderByValue == false",
            "query.orderByChild == 'a'",
            "query.limitToFirst <= 2",
            "query.limitToFirst == null",
            "query.equalTo == 'a'",
            "query.startAt != null",
        ],
    )
    .to_string()
}

// Data, identities and requests.

/// A tree of data; `written` ones (values of requests) may hold server timestamps.
fn tree(rng: &mut Rng, depth: usize, written: bool) -> Value {
    if depth >= 3 || rng.u8(..100) < 35 {
        return leaf(rng, written);
    }
    let mut map = Map::new();
    for key in KEYS {
        if rng.u8(..100) < 55 {
            map.insert((*key).into(), tree(rng, depth + 1, written));
        }
    }
    Value::Object(map)
}

fn leaf(rng: &mut Rng, written: bool) -> Value {
    match rng.u8(..12) {
        10 if written => json!({".sv": "timestamp"}),
        11 => json!(["a", null, 2]),
        0 => json!(pick(rng, &[0, 1, 2, 3])),
        1 => json!(2.5),
        2 => json!(rng.bool()),
        3 => Value::Null,
        _ => json!(pick(rng, &["a", "b", "ab", "ba", "abab", "bb", "A", "B"])),
    }
}

fn identity(rng: &mut Rng) -> Value {
    pick(
        rng,
        &[
            Value::Null,
            Value::Null,
            json!({"uid": "a"}),
            json!({"uid": "b", "provider": "password", "token": {"admin": true, "level": 2}}),
            json!({"uid": "ab", "token": {"admin": false}}),
        ],
    )
    .clone()
}

fn path(rng: &mut Rng, max: usize) -> String {
    let len = rng.usize(..=max);
    (0..len)
        .map(|_| *pick(rng, KEYS))
        .collect::<Vec<_>>()
        .join("/")
}

fn request(rng: &mut Rng, rules: &Value) -> Case {
    let op = match rng.u8(..3) {
        0 => Op::Read {
            path: path(rng, 3),
            query: (rng.u8(..3) == 0).then(|| {
                pick(
                    rng,
                    &[
                        json!({"orderByChild": "a", "limitToFirst": 2}),
                        json!({"orderByValue": true, "equalTo": "a"}),
                        json!({"orderByChild": "b", "startAt": 1}),
                        json!({"limitToFirst": 5}),
                    ],
                )
                .clone()
            }),
        },
        1 => Op::Set {
            path: path(rng, 3),
            value: if rng.u8(..5) == 0 {
                Value::Null
            } else {
                tree(rng, 1, true)
            },
        },
        _ => {
            let mut patch = Map::new();
            for key in KEYS {
                if rng.bool() {
                    let relative = if rng.bool() {
                        (*key).to_string()
                    } else {
                        format!("{key}/{}", pick(rng, KEYS))
                    };
                    patch.insert(
                        relative,
                        if rng.u8(..5) == 0 {
                            Value::Null
                        } else {
                            tree(rng, 2, true)
                        },
                    );
                }
            }
            Op::Update {
                path: path(rng, 2),
                patch,
            }
        }
    };
    Case {
        rules: rules.clone(),
        data: tree(rng, 0, false),
        auth: identity(rng),
        op,
    }
}
