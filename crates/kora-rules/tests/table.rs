//! Table of allowed and denied reads, writes and subscriptions under the example rules
//! (tests/fixtures/kora.rules.yaml): the todo app, the seed user/company model with its
//! employees index, and an anonymous guestbook. Every decision is made through rounds of
//! lookups (as the engine does) and checked against a lookup of the whole tree.

mod common;

use common::*;
use kora_core::{Mutation, Value};
use kora_rules::Code;
use serde_json::json;

enum Op {
    Write(Mutation),
    Read(&'static str),
    Query(&'static str),
    /// A subscriber at the path receives this committed change.
    Push(&'static str, Mutation),
}

enum Expect {
    Allowed,
    Denied(Code, &'static str),
    /// Allowed, with exactly this extra mutation and this many effects.
    Plan(Value, usize),
    Sees(Option<Value>),
    Pushed(Value),
}

struct Case {
    name: &'static str,
    who: Option<Value>,
    op: Op,
    expect: Expect,
}

fn case(name: &'static str, who: Option<Value>, op: Op, expect: Expect) -> Case {
    Case {
        name,
        who,
        op,
        expect,
    }
}

fn set(path: &str, value: Value) -> Op {
    Op::Write(Mutation::set(&p(path), value).unwrap_or_else(|e| panic!("{e}")))
}

fn merge(path: &str, value: Value) -> Op {
    Op::Write(Mutation::merge(&p(path), value).unwrap_or_else(|e| panic!("{e}")))
}

fn delete(path: &str) -> Op {
    Op::Write(Mutation::delete(&p(path)))
}

fn push(path: &'static str, change: Value) -> Op {
    Op::Push(path, mutation(change))
}

fn denied(code: Code, path: &'static str) -> Expect {
    Expect::Denied(code, path)
}

const PERM: Code = Code::PermissionDenied;
const INVALID: Code = Code::ValidationFailed;

fn alice() -> Option<Value> {
    claims("alice")
}
fn bob() -> Option<Value> {
    claims("bob")
}
fn carol() -> Option<Value> {
    claims("carol")
}
fn dave() -> Option<Value> {
    claims("dave")
}
fn anon() -> Option<Value> {
    None
}

fn todo_cases() -> Vec<Case> {
    let long = "x".repeat(501);
    let max = "y".repeat(500);
    vec![
        case(
            "alice creates a todo: owner, created and a webhook",
            alice(),
            set("todos/alice/T2", json!({"text": "Walk the dog"})),
            Expect::Plan(
                json!({"merge": {"todos": {"alice": {"T2": {"owner": "alice", "created": NOW}}}}, "delete": {}}),
                1,
            ),
        ),
        case(
            "alice ticks her todo: created kept, no webhook",
            alice(),
            merge("todos/alice/T1/done", json!(true)),
            Expect::Plan(
                json!({"merge": {"todos": {"alice": {"T1": {"owner": "alice", "created": 1000}}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "bob may not write alice's todos",
            bob(),
            merge("todos/alice/T1/done", json!(true)),
            denied(PERM, "todos/alice"),
        ),
        case(
            "anonymous may not write todos",
            anon(),
            set("todos/alice/T2", json!({"text": "x"})),
            denied(PERM, "todos/alice"),
        ),
        case(
            "an admin claim does not open another user's todos",
            admin(),
            set("todos/alice/T2", json!({"text": "x"})),
            denied(PERM, "todos/alice"),
        ),
        case(
            "a todo needs text",
            alice(),
            set("todos/alice/T2", json!({"done": false})),
            denied(INVALID, "todos/alice/T2"),
        ),
        case(
            "text of 501 characters is too long",
            alice(),
            set("todos/alice/T2", json!({"text": long})),
            denied(INVALID, "todos/alice/T2"),
        ),
        case(
            "text of 500 characters is fine",
            alice(),
            set("todos/alice/T2", json!({"text": max})),
            Expect::Allowed,
        ),
        case(
            "text must be a string",
            alice(),
            set("todos/alice/T2", json!({"text": 42})),
            denied(INVALID, "todos/alice/T2"),
        ),
        case(
            "done must be a bool",
            alice(),
            merge("todos/alice/T1/done", json!("yes")),
            denied(INVALID, "todos/alice/T1/done"),
        ),
        case(
            "unknown todo fields are refused",
            alice(),
            merge("todos/alice/T1/color", json!("red")),
            denied(INVALID, "todos/alice/T1/color"),
        ),
        case(
            "a forged owner is overwritten by the server",
            alice(),
            set("todos/alice/T2", json!({"text": "x", "owner": "bob"})),
            Expect::Plan(
                json!({"merge": {"todos": {"alice": {"T2": {"owner": "alice", "created": NOW}}}}, "delete": {}}),
                1,
            ),
        ),
        case(
            "a forged created is put back",
            alice(),
            merge("todos/alice/T1/created", json!(1)),
            Expect::Plan(
                json!({"merge": {"todos": {"alice": {"T1": {"owner": "alice", "created": 1000}}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "alice deletes a todo: no webhook",
            alice(),
            delete("todos/alice/T1"),
            Expect::Plan(json!({"merge": {}, "delete": {}}), 0),
        ),
        case(
            "alice deletes all her todos",
            alice(),
            delete("todos/alice"),
            Expect::Allowed,
        ),
        case(
            "nobody may delete every user's todos",
            alice(),
            delete("todos"),
            denied(PERM, "todos"),
        ),
        case(
            "replacing the root is refused",
            admin(),
            Op::Write(mutation(json!({"delete": 1}))),
            denied(PERM, ""),
        ),
        case(
            "alice reads her todos",
            alice(),
            Op::Read("todos/alice"),
            Expect::Allowed,
        ),
        case(
            "alice reads one field (inherited grant)",
            alice(),
            Op::Read("todos/alice/T1/text"),
            Expect::Allowed,
        ),
        case(
            "bob may not read alice's todos",
            bob(),
            Op::Read("todos/alice"),
            denied(PERM, "todos/alice"),
        ),
        case(
            "anonymous may not read todos",
            anon(),
            Op::Read("todos/alice/T1"),
            denied(PERM, "todos/alice"),
        ),
        case(
            "nobody may read all todos (no rule)",
            alice(),
            Op::Read("todos"),
            denied(PERM, "todos"),
        ),
        case(
            "nobody may read the root",
            admin(),
            Op::Read(""),
            denied(PERM, ""),
        ),
        case(
            "alice's query answer is whole",
            alice(),
            Op::Query("todos/alice/T1"),
            Expect::Sees(Some(
                json!({"text": "Buy milk", "owner": "alice", "created": 1000, "done": false}),
            )),
        ),
        case(
            "alice's subscription sees her change",
            alice(),
            push(
                "todos/alice",
                json!({"merge": {"todos": {"alice": {"T1": {"done": true}}}}}),
            ),
            Expect::Pushed(
                json!({"merge": {"todos": {"alice": {"T1": {"done": true}}}}, "delete": {}}),
            ),
        ),
        case(
            "a change elsewhere pushes nothing",
            alice(),
            push(
                "todos/alice",
                json!({"merge": {"todos": {"bob": {"T9": {"done": true}}}}}),
            ),
            Expect::Pushed(json!({"merge": {}, "delete": {}})),
        ),
        case(
            "bob may not subscribe to alice's todos",
            bob(),
            push(
                "todos/alice",
                json!({"merge": {"todos": {"alice": {"T1": {"done": true}}}}}),
            ),
            denied(PERM, "todos/alice"),
        ),
    ]
}

fn user_cases() -> Vec<Case> {
    vec![
        case(
            "alice renames herself: the index stays",
            alice(),
            merge("user:info/alice/name", json!("Alice B.")),
            Expect::Plan(json!({"merge": {}, "delete": {}}), 0),
        ),
        case(
            "bob may not rename alice",
            bob(),
            merge("user:info/alice/name", json!("Mallory")),
            denied(PERM, "user:info/alice"),
        ),
        case(
            "a global admin may rename alice",
            admin(),
            merge("user:info/alice/name", json!("Alice A.")),
            Expect::Allowed,
        ),
        case(
            "anonymous may not edit users",
            anon(),
            merge("user:info/dave/name", json!("D")),
            denied(PERM, "user:info/dave"),
        ),
        case(
            "dave joins acme: indexed with the join time",
            dave(),
            merge("user:info/dave/company", json!("acme")),
            Expect::Plan(
                json!({"merge": {"company:employees": {"acme": {"dave": NOW}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "bob moves to globex: the entry moves",
            bob(),
            merge("user:info/bob/company", json!("globex")),
            Expect::Plan(
                json!({"merge": {"company:employees": {"globex": {"bob": NOW}}},
                                "delete": {"company:employees": {"acme": {"bob": 1}}}}),
                0,
            ),
        ),
        case(
            "bob leaves his company: the entry goes",
            bob(),
            delete("user:info/bob/company"),
            Expect::Plan(
                json!({"merge": {}, "delete": {"company:employees": {"acme": {"bob": 1}}}}),
                0,
            ),
        ),
        case(
            "alice deletes herself: her entry goes",
            alice(),
            delete("user:info/alice"),
            Expect::Plan(
                json!({"merge": {}, "delete": {"company:employees": {"acme": {"alice": 1}}}}),
                0,
            ),
        ),
        case(
            "nobody may delete user:info whole (no rule there)",
            admin(),
            delete("user:info"),
            denied(PERM, "user:info"),
        ),
        case(
            "an admin deletes every user: every entry goes",
            admin(),
            Op::Write(mutation(
                json!({"delete": {"user:info": {"alice": 1, "bob": 1, "carol": 1, "dave": 1}}}),
            )),
            Expect::Plan(
                json!({"merge": {}, "delete": {"company:employees": {"acme": {"alice": 1, "bob": 1}, "globex": {"carol": 1}}}}),
                0,
            ),
        ),
        case(
            "bob replaces his record: the entry moves",
            bob(),
            set(
                "user:info/bob",
                json!({"name": "Robert", "company": "globex"}),
            ),
            Expect::Plan(
                json!({"merge": {"company:employees": {"globex": {"bob": NOW}}},
                                "delete": {"company:employees": {"acme": {"bob": 1}}}}),
                0,
            ),
        ),
        case(
            "a company must exist",
            bob(),
            merge("user:info/bob/company", json!("nowhere")),
            denied(INVALID, "user:info/bob/company"),
        ),
        case(
            "a company that is not a key never reaches the index",
            bob(),
            merge("user:info/bob/company", json!("acme/admins")),
            denied(INVALID, "user:info/bob"),
        ),
        case(
            "a company must be a string",
            bob(),
            merge("user:info/bob/company", json!(7)),
            denied(INVALID, "user:info/bob/company"),
        ),
        case(
            "a name of 101 characters is too long",
            bob(),
            merge("user:info/bob/name", json!("n".repeat(101))),
            denied(INVALID, "user:info/bob"),
        ),
        case(
            "an email must look like one",
            bob(),
            merge("user:info/bob/email", json!("bob at acme")),
            denied(INVALID, "user:info/bob/email"),
        ),
        case(
            "clients may not write the index",
            bob(),
            merge("company:employees/acme/bob", json!(1)),
            denied(PERM, "company:employees/acme/bob"),
        ),
        case(
            "an admin creates a company and a user of it in one write",
            admin(),
            Op::Write(mutation(json!({"merge": {
                "company:info": {"initech": {"name": "Initech"}},
                "user:info": {"erin": {"name": "Erin", "company": "initech"}}}}))),
            Expect::Plan(
                json!({"merge": {"company:employees": {"initech": {"erin": NOW}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "bob reads alice's record",
            bob(),
            Op::Read("user:info/alice"),
            Expect::Allowed,
        ),
        case(
            "anonymous may not read users",
            anon(),
            Op::Read("user:info/alice"),
            denied(PERM, "user:info/alice"),
        ),
        case(
            "bob's answer hides alice's email",
            bob(),
            Op::Query("user:info/alice"),
            Expect::Sees(Some(json!({"name": "Alice", "company": "acme"}))),
        ),
        case(
            "alice's answer shows her email",
            alice(),
            Op::Query("user:info/alice"),
            Expect::Sees(Some(
                json!({"name": "Alice", "company": "acme", "email": "alice@acme.test"}),
            )),
        ),
        case(
            "bob may not read alice's email directly",
            bob(),
            Op::Read("user:info/alice/email"),
            denied(PERM, "user:info/alice/email"),
        ),
        case(
            "an admin's answer shows alice's email",
            admin(),
            Op::Query("user:info/alice"),
            Expect::Sees(Some(
                json!({"name": "Alice", "company": "acme", "email": "alice@acme.test"}),
            )),
        ),
        case(
            "nobody may query all users (no rule at user:info)",
            bob(),
            Op::Read("user:info"),
            denied(PERM, "user:info"),
        ),
        case(
            "a subscriber does not receive alice's new email",
            bob(),
            push(
                "user:info/alice",
                json!({"merge": {"user:info": {"alice": {"email": "a@acme.test", "name": "Al"}}}}),
            ),
            Expect::Pushed(json!({"merge": {"user:info": {"alice": {"name": "Al"}}},
                                  "delete": {"user:info": {"alice": {"email": 1}}}})),
        ),
        case(
            "alice's own subscription receives it",
            alice(),
            push(
                "user:info/alice",
                json!({"merge": {"user:info": {"alice": {"email": "a@acme.test"}}}}),
            ),
            Expect::Pushed(
                json!({"merge": {"user:info": {"alice": {"email": "a@acme.test"}}}, "delete": {}}),
            ),
        ),
    ]
}

fn company_cases() -> Vec<Case> {
    vec![
        case(
            "alice administers acme and renames it",
            alice(),
            merge("company:info/acme/name", json!("Acme Corp")),
            Expect::Allowed,
        ),
        case(
            "bob is not an acme admin",
            bob(),
            merge("company:info/acme/name", json!("Bob Corp")),
            denied(PERM, "company:info/acme"),
        ),
        case(
            "carol administers globex, not acme",
            carol(),
            merge("company:info/acme/name", json!("Globex East")),
            denied(PERM, "company:info/acme"),
        ),
        case(
            "anonymous may not edit companies",
            anon(),
            merge("company:info/acme/name", json!("x")),
            denied(PERM, "company:info/acme"),
        ),
        case(
            "company admins may not appoint admins",
            alice(),
            merge("company:info/acme/admins/bob", json!(true)),
            denied(PERM, "company:info/acme/admins"),
        ),
        case(
            "a global admin appoints one",
            admin(),
            merge("company:info/acme/admins/bob", json!(true)),
            Expect::Allowed,
        ),
        case(
            "an admin entry must be true",
            admin(),
            merge("company:info/acme/admins/bob", json!("yes")),
            denied(INVALID, "company:info/acme/admins/bob"),
        ),
        case(
            "deleting a company would remove its admins",
            alice(),
            delete("company:info/acme"),
            denied(PERM, "company:info/acme/admins"),
        ),
        case(
            "a global admin may delete it",
            admin(),
            delete("company:info/acme"),
            Expect::Allowed,
        ),
        case(
            "a new company needs a name",
            admin(),
            set("company:info/initech", json!({"admins": {"root": true}})),
            denied(INVALID, "company:info/initech"),
        ),
        case(
            "anonymous reads a company",
            anon(),
            Op::Read("company:info/acme"),
            Expect::Allowed,
        ),
        case(
            "anonymous does not see its admins",
            anon(),
            Op::Query("company:info/acme"),
            Expect::Sees(Some(json!({"name": "Acme"}))),
        ),
        case(
            "alice, an acme admin, sees them",
            alice(),
            Op::Query("company:info/acme"),
            Expect::Sees(Some(json!({"name": "Acme", "admins": {"alice": true}}))),
        ),
        case(
            "bob does not",
            bob(),
            Op::Query("company:info/acme"),
            Expect::Sees(Some(json!({"name": "Acme"}))),
        ),
        case(
            "bob may not read the admins directly",
            bob(),
            Op::Read("company:info/acme/admins"),
            denied(PERM, "company:info/acme/admins"),
        ),
        case(
            "carol sees globex's admins",
            carol(),
            Op::Query("company:info/globex"),
            Expect::Sees(Some(json!({"name": "Globex", "admins": {"carol": true}}))),
        ),
        case(
            "nobody may query all companies (no rule at company:info)",
            carol(),
            Op::Query("company:info"),
            denied(PERM, "company:info"),
        ),
        case(
            "alice reads acme's employees as an admin",
            alice(),
            Op::Read("company:employees/acme"),
            Expect::Allowed,
        ),
        case(
            "bob reads them as an employee",
            bob(),
            Op::Read("company:employees/acme"),
            Expect::Allowed,
        ),
        case(
            "carol works elsewhere",
            carol(),
            Op::Read("company:employees/acme"),
            denied(PERM, "company:employees/acme"),
        ),
        case(
            "anonymous may not list employees",
            anon(),
            Op::Read("company:employees/acme"),
            denied(PERM, "company:employees/acme"),
        ),
        case(
            "a global admin lists them",
            admin(),
            Op::Query("company:employees/acme"),
            Expect::Sees(Some(json!({"alice": 1000, "bob": 1000}))),
        ),
        case(
            "an anonymous subscriber gets a delete for admins it may not see",
            anon(),
            push(
                "company:info/acme",
                json!({"merge": {"company:info": {"acme": {"admins": {"bob": true}, "name": "A"}}}}),
            ),
            Expect::Pushed(json!({"merge": {"company:info": {"acme": {"name": "A"}}},
                                  "delete": {"company:info": {"acme": {"admins": 1}}}})),
        ),
        case(
            "bob, just made an admin, receives the admins whole",
            bob(),
            push(
                "company:info/acme",
                json!({"merge": {"company:info": {"acme": {"admins": {"bob": true}}}}}),
            ),
            Expect::Pushed(
                json!({"merge": {"company:info": {"acme": {"admins": {"alice": true, "bob": true}}}},
                                  "delete": {"company:info": {"acme": {"admins": 1}}}}),
            ),
        ),
        case(
            "an employee subscriber sees a colleague leave",
            bob(),
            push(
                "company:employees/acme",
                json!({"delete": {"company:employees": {"acme": {"alice": 1}}}}),
            ),
            Expect::Pushed(
                json!({"merge": {}, "delete": {"company:employees": {"acme": {"alice": 1}}}}),
            ),
        ),
    ]
}

fn guestbook_cases() -> Vec<Case> {
    vec![
        case(
            "anonymous signs the guestbook",
            anon(),
            set("guestbook/G2", json!({"message": "Nice!"})),
            Expect::Plan(
                json!({"merge": {"guestbook": {"G2": {"at": NOW, "by": "anonymous"}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "alice signs it under her name",
            alice(),
            set("guestbook/G2", json!({"message": "Hi", "by": "bob"})),
            Expect::Plan(
                json!({"merge": {"guestbook": {"G2": {"at": NOW, "by": "alice"}}}, "delete": {}}),
                0,
            ),
        ),
        case(
            "entries cannot be edited",
            anon(),
            merge("guestbook/G1/message", json!("Spam")),
            denied(PERM, "guestbook/G1"),
        ),
        case(
            "entries cannot be deleted",
            alice(),
            delete("guestbook/G1"),
            denied(PERM, "guestbook/G1"),
        ),
        case(
            "messages are at most 280 characters",
            anon(),
            set("guestbook/G2", json!({"message": "m".repeat(281)})),
            denied(INVALID, "guestbook/G2"),
        ),
        case(
            "a message must be there",
            anon(),
            set("guestbook/G2", json!({"note": "x"})),
            denied(INVALID, "guestbook/G2"),
        ),
        case(
            "anonymous reads the guestbook",
            anon(),
            Op::Read("guestbook"),
            Expect::Allowed,
        ),
        case(
            "nothing else is open to anonymous",
            anon(),
            Op::Read("elsewhere"),
            denied(PERM, "elsewhere"),
        ),
    ]
}

fn run(case: &Case) -> Result<(), String> {
    let rules = example_rules();
    let tree = example_tree();
    let who = &case.who;
    match (&case.op, &case.expect) {
        (Op::Write(m), expect) => {
            let outcome = write_in(&rules, &tree, who, m);
            match (outcome, expect) {
                (Ok(_), Expect::Allowed) => Ok(()),
                (Ok(plan), Expect::Plan(extra, effects)) => {
                    let got = plan.extra.to_json();
                    if got != *extra || plan.effects.len() != *effects {
                        return Err(format!(
                            "plan {got} with {} effects: {:?}",
                            plan.effects.len(),
                            plan.effects
                        ));
                    }
                    Ok(())
                }
                (Err(e), Expect::Denied(code, path)) => same_denial(&e, *code, path),
                (outcome, _) => Err(format!("got {outcome:?}")),
            }
        }
        (Op::Read(path), expect) => match (read_in(&rules, &tree, who, path), expect) {
            (Ok(()), Expect::Allowed) => Ok(()),
            (Err(e), Expect::Denied(code, denied_path)) => same_denial(&e, *code, denied_path),
            (outcome, _) => Err(format!("got {outcome:?}")),
        },
        (Op::Query(path), expect) => match (answer_in(&rules, &tree, who, path), expect) {
            (Ok(seen), Expect::Sees(want)) if seen == *want => Ok(()),
            (Err(e), Expect::Denied(code, denied_path)) => same_denial(&e, *code, denied_path),
            (outcome, _) => Err(format!("got {outcome:?}")),
        },
        (Op::Push(path, change), expect) => {
            let mut after = tree.clone();
            change.apply_to(&mut after);
            match (pushed_in(&rules, &after, who, path, change), expect) {
                (Ok(pushed), Expect::Pushed(want)) if pushed.to_json() == *want => Ok(()),
                (Err(e), Expect::Denied(code, denied_path)) => same_denial(&e, *code, denied_path),
                (Ok(pushed), _) => Err(format!("pushed {}", pushed.to_json())),
                (outcome, _) => Err(format!("got {outcome:?}")),
            }
        }
    }
}

fn same_denial(error: &kora_rules::CheckError, code: Code, path: &str) -> Result<(), String> {
    match error.denial() {
        Some(d) if d.code == code && d.path == p(path) => Ok(()),
        _ => Err(format!("got {error}")),
    }
}

#[test]
fn every_case_of_the_table() {
    let cases: Vec<Case> = [
        todo_cases(),
        user_cases(),
        company_cases(),
        guestbook_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_webhook_names_the_new_todo() {
    let rules = example_rules();
    let m = Mutation::set(&p("todos/alice/T2"), json!({"text": "Walk"})).unwrap_or_default();
    let plan = write_in(&rules, &example_tree(), &alice(), &m).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.effects.len(), 1);
    assert_eq!(plan.effects[0].kind, "webhook");
    assert_eq!(
        plan.effects[0].payload,
        json!({"url": "https://hooks.example.com/todo-created", "body": {
            "event": "todo_created", "user": "alice", "id": "T2",
            "todo": {"text": "Walk", "owner": "alice", "created": NOW}}})
    );
}

#[test]
fn denials_name_the_rule_and_its_location() {
    let rules = example_rules();
    let m = Mutation::merge(&p("todos/alice/T1/done"), json!(true)).unwrap_or_default();
    let error = write_in(&rules, &example_tree(), &bob(), &m).unwrap_err();
    let denial = error.denial().cloned().unwrap_or_else(|| panic!("{error}"));
    let rule = denial
        .rule
        .clone()
        .unwrap_or_else(|| panic!("no rule in {denial}"));
    assert_eq!(rule.pattern, "todos/$uid");
    assert_eq!(rule.clause, "write");
    assert_eq!(rule.expression, "auth != null && auth.sub == $uid");
    assert_eq!(rule.location.to_string(), "kora.rules.yaml:7:12");
    assert_eq!(
        denial.to_string(),
        "permission_denied at todos/alice: write of todos/$uid (kora.rules.yaml:7:12): `auth != null && auth.sub == $uid` is false"
    );
}

#[test]
fn the_example_rules_file_loads_from_disk() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kora.rules.yaml");
    let rules = kora_rules::Rules::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.patterns().count(), 14);
    assert!(!rules.allows_all());
}
