//! docs/rules.md is a test: every YAML block loads, every expression in its table evaluates
//! to the value stated, and every worked example's table of cases holds.

mod common;

use common::*;
use kora_core::{Mutation, Value};
use kora_rules::pattern::Captures;
use kora_rules::{Bindings, Code, EvalError, Expression, Rules};
use serde_json::{json, Map};

const DOC: &str = include_str!("../../../docs/rules.md");

/// Fenced code blocks: (language, body, byte offset of the fence).
fn code_blocks(text: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.to_string(), String::new(), offset)),
            (Some(_), Some("")) => out.extend(open.take()),
            (Some((_, body, _)), _) => body.push_str(line),
            (None, None) => {}
        }
        offset += line.len();
    }
    out
}

/// Cells of each row of the first table in `text` whose header starts with `header`.
fn table(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    lines.next();
    lines.next();
    lines
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect()
}

fn cells(row: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = row.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    out.iter()
        .map(|c| c.trim().trim_matches('`').to_string())
        .collect()
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn every_yaml_block_loads() {
    let blocks: Vec<_> = code_blocks(DOC)
        .into_iter()
        .filter(|(lang, ..)| lang == "yaml")
        .collect();
    assert!(blocks.len() >= 8, "only {} YAML blocks", blocks.len());
    for (_, body, at) in blocks {
        if let Err(e) = Rules::parse("rules.md", &body) {
            panic!("YAML block at byte {at} does not load:\n{e}\n{body}");
        }
    }
}

#[test]
fn the_documented_load_errors_are_what_loading_reports() {
    let text = "rules:\n  todos/$uid:\n    write: auth.sub == $id\n";
    let error = Rules::parse("kora.rules.yaml", text)
        .unwrap_err()
        .to_string();
    assert!(DOC.contains(&error), "{error}");
    let text = "rules:\n  a:\n    read: 'true'\n\n\n\n  b:\n    read: 'true'\n    raed: true\n";
    let error = Rules::parse("kora.rules.yaml", text)
        .unwrap_err()
        .to_string();
    assert!(DOC.contains(&error), "{error}");
}

#[test]
fn every_expression_in_the_table_has_the_stated_value() {
    let section = DOC.split("<!-- expressions -->").nth(1).unwrap_or_default();
    let tree = code_blocks(section)
        .into_iter()
        .find(|(lang, ..)| lang == "json")
        .map(|(_, body, _)| parse_json(&body))
        .unwrap_or_default();
    let tree: Map<String, Value> = tree.as_object().cloned().unwrap_or_default();
    let rows = table(section, "| expression");
    assert!(rows.len() >= 12, "only {} expressions", rows.len());
    let path = p("todos/alice/T1");
    let captures = Captures::from([("uid".into(), "alice".into()), ("id".into(), "T1".into())]);
    let write = Mutation::merge(&path, json!({"done": true})).unwrap_or_default();
    let auth = json!({"sub": "alice"});
    let bindings = Bindings {
        auth: Some(&auth),
        now: NOW,
        path: &path,
        captures: &captures,
        mutation: &write,
    };
    for row in rows {
        let expression = Expression::parse(&row[0], &["uid", "id"])
            .unwrap_or_else(|e| panic!("{}: {e}", row[0]));
        let got = expression.evaluate(&bindings, &tree);
        match (row[1].as_str(), got) {
            ("error", Err(EvalError::Failed(_))) => {}
            (want, Ok(value)) if want != "error" => {
                assert_eq!(value, parse_json(want), "{}", row[0])
            }
            (want, got) => panic!("{}: expected {want}, got {got:?}", row[0]),
        }
    }
}

fn caller(name: &str) -> Option<Value> {
    match name {
        "anonymous" => None,
        "admin" => admin(),
        sub => claims(sub),
    }
}

/// Splits `verb path rest` (rest may be empty).
fn words(request: &str) -> (&str, &str, &str) {
    let mut parts = request.splitn(3, ' ');
    let verb = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    (verb, path, parts.next().unwrap_or_default())
}

fn run_case(rules: &Rules, tree: &Map<String, Value>, row: &[String]) -> Result<(), String> {
    let who = caller(&row[0]);
    let (verb, path, rest) = words(&row[1]);
    let expected: Vec<&str> = row[2].split("; ").collect();
    let write = |m: Mutation| check_write(rules, tree, &who, &m, &expected);
    match verb {
        "set" => write(Mutation::set(&p(path), parse_json(rest)).map_err(|e| e.to_string())?),
        "merge" => write(Mutation::merge(&p(path), parse_json(rest)).map_err(|e| e.to_string())?),
        "delete" => write(Mutation::delete(&p(path))),
        "read" => match (read_in(rules, tree, &who, path), expected[0]) {
            (Ok(()), "allowed") => Ok(()),
            (Err(e), want) => denial_is(&e, want),
            (got, want) => Err(format!("expected {want}, got {got:?}")),
        },
        "query" => {
            let got = answer_in(rules, tree, &who, path);
            match (got, expected[0].strip_prefix("sees ")) {
                (Ok(seen), Some(want)) if seen == Some(parse_json(want)) => Ok(()),
                (Ok(None), Some("nothing")) => Ok(()),
                (Err(e), None) => denial_is(&e, expected[0]),
                (got, _) => Err(format!("expected {}, got {got:?}", expected[0])),
            }
        }
        "push" => {
            let change = mutation(parse_json(rest));
            let mut after = tree.clone();
            change.apply_to(&mut after);
            let got = pushed_in(rules, &after, &who, path, &change);
            match (got, expected[0].strip_prefix("pushed ")) {
                (Ok(pushed), Some(want)) if pushed == mutation(parse_json(want)) => Ok(()),
                (Err(e), None) => denial_is(&e, expected[0]),
                (got, _) => Err(format!("expected {}, got {got:?}", expected[0])),
            }
        }
        other => Err(format!("unknown request {other:?}")),
    }
}

fn check_write(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    m: &Mutation,
    expected: &[&str],
) -> Result<(), String> {
    let plan = match write_in(rules, tree, who, m) {
        Ok(plan) => plan,
        Err(e) => return denial_is(&e, expected[0]),
    };
    for want in expected {
        let ok = match *want {
            "allowed" => true,
            "no webhook" => plan.effects.is_empty(),
            _ => match want.split_once(' ') {
                Some(("adds", extra)) => plan.extra == mutation(parse_json(extra)),
                Some(("webhook", body)) => {
                    plan.effects.len() == 1 && plan.effects[0].payload["body"] == parse_json(body)
                }
                _ => false,
            },
        };
        if !ok {
            return Err(format!(
                "expected {want}, got {} with effects {:?}",
                plan.extra.to_json(),
                plan.effects
            ));
        }
    }
    Ok(())
}

fn denial_is(error: &kora_rules::CheckError, want: &str) -> Result<(), String> {
    let denial = error
        .denial()
        .ok_or_else(|| format!("expected {want}, got {error}"))?;
    let code = match denial.code {
        Code::PermissionDenied => "permission_denied",
        Code::ValidationFailed => "validation_failed",
        Code::TooLarge => "too_large",
    };
    if format!("{code} at {}", denial.path) == want {
        Ok(())
    } else {
        Err(format!("expected {want}, got {error}"))
    }
}

#[test]
fn every_worked_example_holds() {
    let sections: Vec<&str> = DOC.split("<!-- example: ").skip(1).collect();
    assert_eq!(sections.len(), 3, "examples: todos, companies, guestbook");
    let mut cases = 0;
    for section in sections {
        let name = section.split(' ').next().unwrap_or_default();
        let section = section.split("\n## ").next().unwrap_or_default();
        let section = section.split("\n### ").next().unwrap_or_default();
        let blocks = code_blocks(section);
        let yaml = blocks
            .iter()
            .find(|(l, ..)| l == "yaml")
            .map(|b| b.1.clone())
            .unwrap_or_default();
        let rules = Rules::parse(name, &yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tree: Map<String, Value> = blocks
            .iter()
            .find(|(l, ..)| l == "json")
            .and_then(|b| parse_json(&b.1).as_object().cloned())
            .unwrap_or_default();
        for row in table(section, "| caller") {
            cases += 1;
            if let Err(e) = run_case(&rules, &tree, &row) {
                panic!(
                    "example {name}, case `{} | {} | {}`: {e}",
                    row[0], row[1], row[2]
                );
            }
        }
    }
    assert!(cases >= 30, "only {cases} documented cases");
}

#[test]
fn the_documented_limits_are_the_constants() {
    use kora_rules::limits::*;
    let rows = table(
        DOC.split("## Limits").nth(1).unwrap_or_default(),
        "| constant",
    );
    let value = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .map(|r| r[1].clone())
            .unwrap_or_default()
    };
    assert_eq!(value("MAX_RULES_FILE_BYTES"), "1 MiB");
    assert_eq!(MAX_RULES_FILE_BYTES, 1 << 20);
    assert_eq!(value("MAX_YAML_DEPTH"), MAX_YAML_DEPTH.to_string());
    assert_eq!(value("MAX_EXPRESSION_BYTES"), "8 KiB");
    assert_eq!(MAX_EXPRESSION_BYTES, 8 * 1024);
    assert_eq!(
        value("MAX_EXPRESSION_DEPTH"),
        MAX_EXPRESSION_DEPTH.to_string()
    );
    assert_eq!(
        value("MAX_EVAL_STEPS").replace(' ', ""),
        MAX_EVAL_STEPS.to_string()
    );
    assert_eq!(
        value("MAX_READS_PER_EVALUATION"),
        MAX_READS_PER_EVALUATION.to_string()
    );
    assert_eq!(value("MAX_LOOKUP_ROUNDS"), MAX_LOOKUP_ROUNDS.to_string());
    assert_eq!(
        value("MAX_RULE_NODES").replace(' ', ""),
        MAX_RULE_NODES.to_string()
    );
    assert_eq!(value("MAX_REGEX_BYTES"), "1 MiB");
    assert_eq!(MAX_REGEX_BYTES, 1 << 20);
}
