//! Properties: the parsers never panic; filtered answers and pushed changes never leak a
//! child the caller may not read, and keep a subscriber's view exact; the employees index
//! stays in step with the users whatever sequence of writes made it.

mod common;

use common::*;
use kora_core::testing::{mutation as any_mutation, path_in, plain_tree};
use kora_core::{Mutation, Path, Value};
use kora_rules::{Expression, Rules};
use proptest::prelude::*;
use serde_json::{json, Map};

/// Rules over the keys `a`, `b`, `c` of kora-core's strategies: some reads depend on the
/// caller only, some on the node's own data.
const READ_RULES: &str = r#"
rules:
  "":
    read: "true"
  $x:
    read: "$x != 'c' || auth.sub == 'c'"
  $x/$y:
    read: "data.a != 1 && data != 2"
  a/b/**:
    read: "auth.sub == 'b'"
  $x/$y/c:
    read: "!(is_string(data))"
"#;

fn read_rules() -> Rules {
    Rules::parse("props.yaml", READ_RULES).unwrap_or_else(|e| panic!("{e}"))
}

fn who() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(claims("b")),
        Just(claims("c")),
        Just(claims("z")),
    ]
}

fn value_at(tree: &Map<String, Value>, path: &Path) -> Option<Value> {
    kora_rules::Lookup::get(tree, path).flatten()
}

/// Every path in `value` (at `base`), each node once.
fn paths_in(base: &Path, value: &Value, out: &mut Vec<Path>) {
    out.push(base.clone());
    if let Value::Object(children) = value {
        for (key, child) in children {
            if let Ok(path) = base.child(key.clone()) {
                paths_in(&path, child, out);
            }
        }
    }
}

/// Every node from `top` (exclusive) down to `path` (inclusive) may be read.
fn readable_down_to(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    top: &Path,
    path: &Path,
) -> bool {
    let segments = path.segments();
    (top.depth() + 1..=segments.len()).all(|end| {
        let node = Path::from_segments(segments[..end].iter().cloned()).unwrap_or_default();
        rules.check_read(&node, who.as_ref(), NOW, tree).is_ok()
    })
}

/// The subscriber's view of `path`: the filtered value there.
fn view(
    rules: &Rules,
    tree: &Map<String, Value>,
    who: &Option<Value>,
    path: &Path,
) -> Option<Value> {
    let value = value_at(tree, path)?;
    rules
        .filter_read(path, value, who.as_ref(), NOW, tree)
        .ok()
        .flatten()
}

/// Applies `change` to a view placed at `path`.
fn apply_to_view(path: &Path, view: Option<Value>, change: &Mutation) -> Option<Value> {
    let mut tree = Map::new();
    if let Some(view) = view {
        kora_core::query::place(&mut tree, path.segments(), view);
    }
    change.apply_to(&mut tree);
    value_at(&tree, path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn expression_parsing_never_panics(text in ".{0,80}") {
        let _ = Expression::parse(&text, &["uid"]);
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("data"), Just("."), Just("("), Just(")"), Just("["), Just("]"), Just("{"), Just("}"),
        Just("'s'"), Just("1"), Just("2.5"), Just("?"), Just(":"), Just("&&"), Just("||"), Just("!"),
        Just("=="), Just("+"), Just("-"), Just("in"), Just("$uid"), Just(","), Just("size"),
        Just("matches"), Just("root"), Just("'a/b'"), Just(" "), Just("\\"), Just("\""),
    ], 0..40)) {
        let _ = Expression::parse(&parts.concat(), &["uid"]);
    }

    #[test]
    fn rules_parsing_never_panics(text in ".{0,200}") {
        let _ = Rules::parse("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_rules_files_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), ".{0,3}"), 1..6)) {
        let mut text = include_str!("fixtures/kora.rules.yaml").to_string();
        for (at, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let end = (i + 3).min(text.len());
            let end = (end..=text.len()).find(|e| text.is_char_boundary(*e)).unwrap_or(text.len());
            text.replace_range(i..end, &insert);
        }
        let _ = Rules::parse("fuzz.yaml", &text);
    }

    #[test]
    fn filter_read_never_leaks_a_denied_child(tree in plain_tree(), at in path_in(0..3), who in who()) {
        let rules = read_rules();
        let path = Path::from_segments(at).unwrap_or_default();
        let Some(value) = value_at(&tree, &path) else { return Ok(()) };
        let Ok(Some(seen)) = rules.filter_read(&path, value, who.as_ref(), NOW, &tree) else { return Ok(()) };
        let mut paths = Vec::new();
        paths_in(&path, &seen, &mut paths);
        for shown in paths {
            prop_assert!(readable_down_to(&rules, &tree, &who, &path, &shown), "{shown} leaked");
        }
    }

    #[test]
    fn filter_change_never_leaks_a_denied_child(
        before in plain_tree(), change in any_mutation(), at in path_in(0..3), who in who()
    ) {
        let rules = read_rules();
        let path = Path::from_segments(at).unwrap_or_default();
        let mut after = before.clone();
        change.apply_to(&mut after);
        let Ok(pushed) = rules.filter_change(&path, &change, who.as_ref(), NOW, &before) else { return Ok(()) };
        let mut merged = Vec::new();
        pushed.for_each_write(|p, _| merged.push(Path::from_segments(p.iter().copied()).unwrap_or_default()));
        for shown in merged {
            prop_assert!(shown.starts_with(&path), "{shown} is outside {path}");
            prop_assert!(readable_down_to(&rules, &after, &who, &path, &shown), "{shown} leaked");
        }
    }

    #[test]
    fn filter_change_gives_the_same_with_a_lookup_of_the_tree_after(
        before in plain_tree(), change in any_mutation(), at in path_in(0..3), who in who()
    ) {
        let rules = read_rules();
        let path = Path::from_segments(at).unwrap_or_default();
        let mut after = before.clone();
        change.apply_to(&mut after);
        let from_before = rules.filter_change(&path, &change, who.as_ref(), NOW, &before);
        let from_after = rules.filter_change(&path, &change, who.as_ref(), NOW, &after);
        prop_assert_eq!(from_before, from_after);
    }

    #[test]
    fn a_pushed_change_keeps_the_subscribers_view_exact(
        before in plain_tree(), change in any_mutation(), at in path_in(0..3), who in who()
    ) {
        let rules = read_rules();
        let path = Path::from_segments(at).unwrap_or_default();
        let readable = |tree| rules.check_read(&path, who.as_ref(), NOW, tree).is_ok();
        let mut after = before.clone();
        change.apply_to(&mut after);
        if !readable(&before) {
            return Ok(());
        }
        let Ok(pushed) = rules.filter_change(&path, &change, who.as_ref(), NOW, &after) else {
            return Ok(());
        };
        let updated = apply_to_view(&path, view(&rules, &before, &who, &path), &pushed);
        prop_assert_eq!(updated, view(&rules, &after, &who, &path));
    }

    #[test]
    fn without_read_restrictions_a_change_passes_whole(
        before in plain_tree(), change in any_mutation(), at in path_in(0..3)
    ) {
        let rules = Rules::parse("open.yaml", "rules:\n  '':\n    read: 'true'\n").unwrap_or_else(|e| panic!("{e}"));
        let path = Path::from_segments(at).unwrap_or_default();
        let pushed = rules.filter_change(&path, &change, None, NOW, &before);
        prop_assert_eq!(pushed, Ok(change.restrict(&path)));
    }

    #[test]
    fn applying_a_mutation_twice_equals_once(tree in plain_tree(), change in any_mutation()) {
        let mut once = tree.clone();
        change.apply_to(&mut once);
        let mut twice = once.clone();
        change.apply_to(&mut twice);
        prop_assert_eq!(once, twice);
    }
}

#[derive(Debug, Clone)]
enum UserWrite {
    SetCompany(usize, usize),
    DeleteCompany(usize),
    DeleteUser(usize),
    Replace(usize, Option<usize>),
    Rename(usize),
    DeleteAll,
}

const USERS: [&str; 3] = ["u1", "u2", "u3"];
const COMPANIES: [&str; 2] = ["acme", "globex"];

fn user_write() -> impl Strategy<Value = UserWrite> {
    prop_oneof![
        (0..3usize, 0..2usize).prop_map(|(u, c)| UserWrite::SetCompany(u, c)),
        (0..3usize).prop_map(UserWrite::DeleteCompany),
        (0..3usize).prop_map(UserWrite::DeleteUser),
        (0..3usize, prop::option::of(0..2usize)).prop_map(|(u, c)| UserWrite::Replace(u, c)),
        (0..3usize).prop_map(UserWrite::Rename),
        Just(UserWrite::DeleteAll),
    ]
}

fn to_mutation(write: &UserWrite) -> Mutation {
    let user = |u: usize| p(&format!("user:info/{}", USERS[u]));
    let built = match write {
        UserWrite::SetCompany(u, c) => {
            Mutation::merge(&user(*u), json!({"company": COMPANIES[*c]}))
        }
        UserWrite::DeleteCompany(u) => Ok(Mutation::delete(&p(&format!(
            "user:info/{}/company",
            USERS[*u]
        )))),
        UserWrite::DeleteUser(u) => Ok(Mutation::delete(&user(*u))),
        UserWrite::Replace(u, c) => {
            let value = match c {
                Some(c) => json!({"name": "N", "company": COMPANIES[*c]}),
                None => json!({"name": "N"}),
            };
            Mutation::set(&user(*u), value)
        }
        UserWrite::Rename(u) => Mutation::merge(&user(*u), json!({"name": "R"})),
        UserWrite::DeleteAll => Ok(USERS.iter().fold(Mutation::new(), |m, u| {
            m.and_delete(&p(&format!("user:info/{u}")))
        })),
    };
    built.unwrap_or_default()
}

/// `company:employees` as the users say it should be: company → users.
fn expected_index(tree: &Map<String, Value>) -> Value {
    let mut index = Map::new();
    for (uid, user) in tree
        .get("user:info")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(company) = user.get("company").and_then(Value::as_str) {
            let entry = index
                .entry(company.to_string())
                .or_insert_with(|| json!({}));
            if let Some(map) = entry.as_object_mut() {
                map.insert(uid.clone(), json!(true));
            }
        }
    }
    Value::Object(index)
}

fn actual_index(tree: &Map<String, Value>) -> Value {
    let mut index = tree
        .get("company:employees")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(companies) = index.as_object_mut() {
        for members in companies.values_mut() {
            if let Some(members) = members.as_object_mut() {
                members.values_mut().for_each(|v| *v = json!(true));
            }
        }
    }
    index
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_employees_index_follows_the_users(writes in prop::collection::vec(user_write(), 1..12)) {
        let rules = example_rules();
        let mut tree = json!({"company:info": {"acme": {"name": "Acme"}, "globex": {"name": "Globex"}}})
            .as_object().cloned().unwrap_or_default();
        for write in &writes {
            let m = to_mutation(write);
            let plan = write_in(&rules, &tree, &admin(), &m);
            prop_assert!(plan.is_ok(), "{write:?}: {plan:?}");
            if let Ok(plan) = plan {
                commit(&mut tree, &m, &plan);
            }
            prop_assert_eq!(actual_index(&tree), expected_index(&tree), "after {:?}", write);
        }
    }
}
