//! Conditions a write may carry: what must hold, as the store's committer sees the tree at the
//! write's commit, for the write to commit (docs/protocol.md, "Conditional writes"). The
//! checking is the store's (`kora_store::condition`); this is the vocabulary every crate
//! shares, with its JSON form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::path::Path;

/// A commit's position in the change log. Starts at 1; 0 means "before the first commit".
pub type Seq = u64;

/// What must hold for a write to commit. As JSON (docs/protocol.md): `{"path": P, "equals":
/// V}` (`"equals": null`: nothing is there) or `{"path": P, "since": N}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireCondition", into = "WireCondition")]
pub enum Condition {
    /// The visible value at `path` equals `value`; `None` (JSON `null`): nothing is there.
    /// Numbers compare by value (`1` equals `1.0`).
    Equals { path: Path, equals: Option<Value> },
    /// No commit after sequence `since` changed the value at `path`: nothing at, beneath or
    /// above it (a delete or leaf write of an ancestor) was written.
    Unchanged { path: Path, since: Seq },
}

impl Condition {
    pub fn equals(path: Path, value: Option<Value>) -> Self {
        Condition::Equals {
            path,
            equals: value,
        }
    }

    pub fn absent(path: Path) -> Self {
        Condition::Equals { path, equals: None }
    }

    pub fn unchanged(path: Path, since: Seq) -> Self {
        Condition::Unchanged { path, since }
    }

    pub fn path(&self) -> &Path {
        match self {
            Condition::Equals { path, .. } | Condition::Unchanged { path, .. } => path,
        }
    }
}

/// A condition's JSON shape: exactly one of `equals` (which may be `null`) and `since`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCondition {
    path: Path,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    equals: Option<Option<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Seq>,
}

/// A field that is there, even as `null`, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

impl TryFrom<WireCondition> for Condition {
    type Error = String;

    fn try_from(wire: WireCondition) -> Result<Self, String> {
        match (wire.equals, wire.since) {
            (Some(equals), None) => Ok(Condition::Equals {
                path: wire.path,
                equals,
            }),
            (None, Some(since)) => Ok(Condition::Unchanged {
                path: wire.path,
                since,
            }),
            _ => Err(format!(
                "a condition on {:?} needs exactly one of \"equals\" and \"since\"",
                wire.path.to_string()
            )),
        }
    }
}

impl From<Condition> for WireCondition {
    fn from(condition: Condition) -> Self {
        match condition {
            Condition::Equals { path, equals } => WireCondition {
                path,
                equals: Some(equals),
                since: None,
            },
            Condition::Unchanged { path, since } => WireCondition {
                path,
                equals: None,
                since: Some(since),
            },
        }
    }
}

/// Equal JSON values, numbers compared by value.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        _ => a == b,
    }
}

/// Whether an `Equals` condition holds for the value found.
pub fn equals_holds(expected: Option<&Value>, found: Option<&Value>) -> bool {
    match (expected, found) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&json!(1), &json!(1.0)));
        assert!(same_value(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!same_value(&json!(1), &json!("1")));
        assert!(!same_value(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(equals_holds(None, None));
        assert!(!equals_holds(Some(&json!(1)), None));
    }

    #[test]
    fn conditions_read_as_json() {
        let c: Condition = serde_json::from_value(json!({"path": "a/b", "equals": 3})).unwrap();
        assert_eq!(c, Condition::equals(p("a/b"), Some(json!(3))));
        let c: Condition = serde_json::from_value(json!({"path": "a", "equals": null})).unwrap();
        assert_eq!(c, Condition::absent(p("a")));
        let c: Condition = serde_json::from_value(json!({"path": "a", "since": 7})).unwrap();
        assert_eq!(c, Condition::unchanged(p("a"), 7));
        assert!(serde_json::from_value::<Condition>(json!({"path": "a"})).is_err());
        let both = json!({"path": "a", "equals": 1, "since": 2});
        assert!(serde_json::from_value::<Condition>(both).is_err());
        let odd = json!({"path": "a", "equal": 1});
        assert!(serde_json::from_value::<Condition>(odd).is_err());
        let absent = serde_json::to_value(Condition::absent(p("a/b"))).unwrap();
        assert_eq!(absent, json!({"path": "a/b", "equals": null}));
    }
}
