//! Server values: the placeholders `{".sv": "timestamp"}` and `{".sv": {"increment": n}}` that
//! clients write and the server replaces at write time (for onDisconnect writes: when they run).
//! They may stand for a leaf anywhere in the written tree, for a `.value`, or for a `.priority`
//! (the SDK's `resolveDeferredValueSnapshot` resolves priorities and leaves alike).

use serde_json::{Map, Number, Value};

use crate::order::{priority_of, unwrap_value};

/// Reads the stored node at a path relative to the written value's root.
type Existing<'a> = &'a dyn Fn(&[String]) -> Option<Value>;

/// Replaces every known placeholder in `value`: `timestamp` with `now_ms`; `increment` with the
/// existing number at that place plus `n` (just `n` when there is no number there). For a
/// placeholder in `.priority` the existing number is the existing node's priority. Integers stay
/// integers while the sum fits an `i64`; otherwise the sum is a double. Unknown placeholders are
/// left in place: see [`has_unknown_server_value`].
pub fn resolve_server_values(
    value: Value,
    existing: &dyn Fn(&[String]) -> Option<Value>,
    now_ms: u64,
) -> Value {
    let mut path = Vec::new();
    resolve_at(value, &mut path, existing, now_ms)
}

fn resolve_at(value: Value, path: &mut Vec<String>, existing: Existing, now_ms: u64) -> Value {
    match value {
        Value::Object(map) if map.contains_key(".sv") => {
            let stored = || existing(path).and_then(|node| number_of(unwrap_value(&node)));
            resolve_placeholder(map, stored, now_ms)
        }
        Value::Object(map) => Value::Object(resolve_members(map, path, existing, now_ms)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| resolve_child(item, i.to_string(), path, existing, now_ms))
                .collect(),
        ),
        leaf => leaf,
    }
}

fn resolve_members(
    map: Map<String, Value>,
    path: &mut Vec<String>,
    existing: Existing,
    now_ms: u64,
) -> Map<String, Value> {
    map.into_iter()
        .map(|(key, member)| {
            let resolved = match key.as_str() {
                ".priority" => resolve_priority(member, path, existing, now_ms),
                // The leaf of an export-format wrapper sits at the wrapper's own path.
                ".value" => resolve_at(member, path, existing, now_ms),
                other if other.starts_with('.') => member,
                _ => resolve_child(member, key.clone(), path, existing, now_ms),
            };
            (key, resolved)
        })
        .collect()
}

fn resolve_child(
    child: Value,
    key: String,
    path: &mut Vec<String>,
    existing: Existing,
    now_ms: u64,
) -> Value {
    path.push(key);
    let resolved = resolve_at(child, path, existing, now_ms);
    path.pop();
    resolved
}

fn resolve_priority(priority: Value, path: &[String], existing: Existing, now_ms: u64) -> Value {
    match priority {
        Value::Object(map) if map.contains_key(".sv") => {
            let stored = || existing(path).and_then(|node| priority_of(&node).and_then(number_of));
            resolve_placeholder(map, stored, now_ms)
        }
        other => other,
    }
}

/// Resolves one placeholder object, or gives it back unchanged when it is unknown. `stored`
/// is only read for an increment, since reading the store is the costly part.
fn resolve_placeholder(
    placeholder: Map<String, Value>,
    stored: impl FnOnce() -> Option<Number>,
    now_ms: u64,
) -> Value {
    match placeholder.get(".sv") {
        Some(Value::String(name)) if name == "timestamp" => Value::from(now_ms),
        Some(Value::Object(op)) => match increment_of(op) {
            Some(delta) => Value::Number(add(stored(), delta)),
            None => Value::Object(placeholder),
        },
        _ => Value::Object(placeholder),
    }
}

fn increment_of(op: &Map<String, Value>) -> Option<Number> {
    number_of(op.get("increment")?)
}

fn number_of(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(n.clone()),
        _ => None,
    }
}

/// `existing + delta`, integral while both are integers and the sum fits an `i64` (as Android
/// does), else as a double. "Incrementing a non-number sets the value to the incremented
/// amount" (JS `ServerValues.ts`). A sum that is no finite double leaves the existing number.
fn add(existing: Option<Number>, delta: Number) -> Number {
    let Some(base) = existing else {
        return delta;
    };
    if let (Some(a), Some(b)) = (base.as_i64(), delta.as_i64()) {
        if let Some(sum) = a.checked_add(b) {
            return Number::from(sum);
        }
    }
    let sum = base.as_f64().unwrap_or(0.0) + delta.as_f64().unwrap_or(0.0);
    Number::from_f64(sum).unwrap_or(base)
}

/// Whether `value` holds a `.sv` placeholder this server does not know (anything but
/// `"timestamp"` and `{"increment": <number>}`), anywhere, priorities included. The caller
/// refuses such writes instead of storing the placeholder.
pub fn has_unknown_server_value(value: &Value) -> bool {
    match value {
        Value::Object(map) => match map.get(".sv") {
            Some(sv) => !is_known(sv),
            None => map.values().any(has_unknown_server_value),
        },
        Value::Array(items) => items.iter().any(has_unknown_server_value),
        _ => false,
    }
}

fn is_known(sv: &Value) -> bool {
    match sv {
        Value::String(name) => name == "timestamp",
        Value::Object(op) => increment_of(op).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_763_912_350_000;

    fn resolve_with(value: Value, store: Value) -> Value {
        let existing = move |path: &[String]| crate::order::child_at(&store, path).cloned();
        resolve_server_values(value, &existing, NOW)
    }

    #[test]
    fn timestamp_anywhere() {
        let written = json!({
            "a": {".sv": "timestamp"},
            "b": {"c": [1, {".sv": "timestamp"}]},
            "d": {".value": {".sv": "timestamp"}, ".priority": {".sv": "timestamp"}},
            ".priority": {".sv": "timestamp"}
        });
        assert_eq!(
            resolve_with(written, json!(null)),
            json!({
                "a": NOW,
                "b": {"c": [1, NOW]},
                "d": {".value": NOW, ".priority": NOW},
                ".priority": NOW
            })
        );
        assert_eq!(
            resolve_with(json!({".sv": "timestamp"}), json!(null)),
            json!(NOW)
        );
    }

    #[test]
    fn increment_reads_the_existing_value_at_its_path() {
        let store =
            json!({"n": 5, "f": 1.5, "s": "x", "o": {"k": 1}, "p": {".value": 7, ".priority": 3}});
        let inc = |n: Value| json!({".sv": {"increment": n}});
        let written = json!({
            "n": inc(json!(2)),
            "f": inc(json!(1)),
            "s": inc(json!(4)),
            "o": inc(json!(1)),
            "missing": inc(json!(-3)),
            "p": {".value": inc(json!(1)), ".priority": inc(json!(10))}
        });
        assert_eq!(
            resolve_with(written, store),
            json!({"n": 7, "f": 2.5, "s": 4, "o": 1, "missing": -3, "p": {".value": 8, ".priority": 13}})
        );
    }

    #[test]
    fn increment_stays_integral_until_overflow() {
        let inc = json!({".sv": {"increment": 1}});
        let max = resolve_with(inc.clone(), json!(i64::MAX - 1));
        assert_eq!(max, json!(i64::MAX));
        assert!(max.is_i64());
        let overflow = resolve_with(inc, json!(i64::MAX));
        assert!(overflow.is_f64());
        assert_eq!(overflow.as_f64(), Some(i64::MAX as f64 + 1.0));
        let mixed = resolve_with(json!({".sv": {"increment": 0.5}}), json!(2));
        assert_eq!(mixed, json!(2.5));
    }

    #[test]
    fn the_store_is_read_at_the_placeholder_path() {
        let seen = std::cell::RefCell::new(Vec::new());
        let existing = |path: &[String]| {
            seen.borrow_mut().push(path.join("/"));
            None
        };
        let written = json!({"a": {"b": {".sv": {"increment": 1}}}, "t": {".sv": "timestamp"}});
        let out = resolve_server_values(written, &existing, NOW);
        assert_eq!(out, json!({"a": {"b": 1}, "t": NOW}));
        // Timestamps need no read.
        assert_eq!(seen.into_inner(), ["a/b"]);
    }

    #[test]
    fn unknown_placeholders_stay_and_are_reported() {
        let unknown = [
            json!({".sv": "now"}),
            json!({"a": {".sv": {"increment": "1"}}}),
            json!({"a": [{".sv": {"decrement": 1}}]}),
            json!({".value": 1, ".priority": {".sv": 5}}),
        ];
        for value in unknown {
            assert!(has_unknown_server_value(&value), "{value}");
            assert_eq!(resolve_with(value.clone(), json!(null)), value);
        }
        let known = json!({"a": {".sv": "timestamp"}, "b": {".sv": {"increment": 2}}, "c": [1]});
        assert!(!has_unknown_server_value(&known));
        assert!(!has_unknown_server_value(&json!("plain")));
    }
}
