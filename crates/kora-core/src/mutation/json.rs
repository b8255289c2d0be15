//! The wire shape of a mutation (docs/design.md §3), parsed strictly.
//!
//! Accepted: an object with optional `merge` (an object) and `delete` (an object whose leaves
//! are the integer `1`, or `1` itself for the whole tree). Anything else — other fields, other
//! delete markers, invalid keys, paths too deep — is a [`MutationError`], never ignored.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Delete, Mutation};
use crate::path::{validate_segment, Limits, PathError};

/// Why a mutation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    #[error("a mutation must be a JSON object with \"merge\" and/or \"delete\", found {found}")]
    NotAnObject { found: &'static str },
    #[error("unknown field {field:?} in a mutation; only \"merge\" and \"delete\" are allowed")]
    UnknownField { field: String },
    #[error("\"merge\" must be an object, found {found}")]
    MergeNotObject { found: &'static str },
    #[error("delete markers must be 1; found {found} at {path:?}")]
    BadDeleteMarker { path: String, found: String },
    #[error("invalid key at {path:?}: {source}")]
    InvalidKey { path: String, source: PathError },
    #[error("the root is always an object; cannot merge {found} there")]
    LeafAtRoot { found: &'static str },
}

impl MutationError {
    pub(super) fn leaf_at_root(value: &Value) -> Self {
        MutationError::LeafAtRoot { found: kind(value) }
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Mutation {
    /// Parses the wire shape with the default [`Limits`].
    pub fn from_json(value: &Value) -> Result<Self, MutationError> {
        Self::from_json_with(value, &Limits::default())
    }

    /// Parses the wire shape with explicit limits.
    pub fn from_json_with(value: &Value, limits: &Limits) -> Result<Self, MutationError> {
        let Value::Object(fields) = value else {
            return Err(MutationError::NotAnObject { found: kind(value) });
        };
        let mut mutation = Mutation::new();
        if let Some(field) = fields.keys().find(|k| *k != "merge" && *k != "delete") {
            return Err(MutationError::UnknownField {
                field: field.clone(),
            });
        }
        if let Some(delete) = fields.get("delete") {
            let mut prefix = Vec::new();
            if let Some(parsed) = parse_delete(delete, &mut prefix, limits)? {
                mutation.delete = parsed;
            }
        }
        if let Some(merge) = fields.get("merge") {
            if !merge.is_object() {
                return Err(MutationError::MergeNotObject { found: kind(merge) });
            }
            let mut deletes = Vec::new();
            let merged = split_value(merge.clone(), &mut Vec::new(), limits, &mut deletes)?;
            for deleted in &deletes {
                mutation.delete.insert(deleted);
            }
            if let Some(Value::Object(map)) = merged {
                mutation.merge = map;
            }
        }
        mutation.normalize();
        Ok(mutation)
    }

    /// The wire shape: always both fields, `delete` as `1` when the whole tree is deleted.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("merge".into(), Value::Object(self.merge.clone()));
        out.insert("delete".into(), delete_to_json(&self.delete));
        Value::Object(out)
    }
}

fn delete_to_json(delete: &Delete) -> Value {
    match delete {
        Delete::All => Value::from(1),
        Delete::Children(children) => Value::Object(
            children
                .iter()
                .map(|(k, v)| (k.clone(), delete_to_json(v)))
                .collect(),
        ),
    }
}

fn path_text(prefix: &[String]) -> String {
    prefix.join("/")
}

/// Checks the key that extends `prefix` and the depth it reaches.
fn check_key(key: &str, prefix: &[String], limits: &Limits) -> Result<(), MutationError> {
    let invalid = |source| MutationError::InvalidKey {
        path: format!(
            "{}{key}",
            prefix.iter().map(|s| format!("{s}/")).collect::<String>()
        ),
        source,
    };
    validate_segment(key, prefix.len()).map_err(invalid)?;
    if prefix.len() >= limits.max_depth {
        return Err(invalid(PathError::TooDeep {
            depth: prefix.len() + 1,
            limit: limits.max_depth,
        }));
    }
    Ok(())
}

fn parse_delete(
    value: &Value,
    prefix: &mut Vec<String>,
    limits: &Limits,
) -> Result<Option<Delete>, MutationError> {
    match value {
        Value::Number(n) if n.as_u64() == Some(1) => Ok(Some(Delete::All)),
        Value::Object(children) => {
            let mut out = Delete::default();
            for (key, child) in children {
                check_key(key, prefix, limits)?;
                prefix.push(key.clone());
                let parsed = parse_delete(child, prefix, limits)?;
                prefix.pop();
                if let Some(parsed) = parsed {
                    out.union(parsed.nest(std::slice::from_ref(key)));
                }
            }
            Ok((!out.is_nothing()).then_some(out))
        }
        other => Err(MutationError::BadDeleteMarker {
            path: path_text(prefix),
            found: other.to_string(),
        }),
    }
}

/// Splits a value to merge at `prefix` into what is written (no `null`) and the paths its
/// `null`s delete. Returns `None` when nothing is written. A literal `{}` is kept: it makes
/// its path a branch (see `Mutation`); an object left empty only because its members were
/// `null` is dropped, as it only carried deletes.
pub(super) fn split_value(
    value: Value,
    prefix: &mut Vec<String>,
    limits: &Limits,
    deletes: &mut Vec<Vec<String>>,
) -> Result<Option<Value>, MutationError> {
    match value {
        Value::Null => {
            deletes.push(prefix.clone());
            Ok(None)
        }
        Value::Object(map) => {
            let literal_empty = map.is_empty();
            let mut out = Map::new();
            for (key, child) in map {
                check_key(&key, prefix, limits)?;
                prefix.push(key);
                let written = split_value(child, prefix, limits, deletes)?;
                let key = prefix.pop().unwrap_or_default();
                if let Some(written) = written {
                    out.insert(key, written);
                }
            }
            Ok((literal_empty || !out.is_empty()).then_some(Value::Object(out)))
        }
        leaf => Ok(Some(leaf)),
    }
}

/// Writes `merge` before `delete`, as the wire examples do, without building a `Value`.
impl Serialize for Mutation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("merge", &self.merge)?;
        map.serialize_entry("delete", &self.delete)?;
        map.end()
    }
}

impl Serialize for Delete {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Delete::All => serializer.serialize_u8(1),
            Delete::Children(children) => children.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Mutation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Mutation::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_fields_mean_nothing_to_do() {
        assert!(Mutation::from_json(&json!({})).unwrap().is_empty());
        let m = Mutation::from_json(&json!({"merge": {"a": 1}})).unwrap();
        assert_eq!(m.to_json(), json!({"merge": {"a": 1}, "delete": {}}));
    }

    #[test]
    fn floats_survive_json_text() {
        // Found by fuzzing: without serde_json's `float_roundtrip` this number moves one ULP
        // each time it passes through text.
        let text = r#"{"merge":{"c":185446744703709540000},"delete":{}}"#;
        let m: Mutation = serde_json::from_str(text).unwrap();
        let again: Mutation = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn delete_marker_other_than_one_is_refused() {
        for bad in [
            json!(true),
            json!(2),
            json!(1.0),
            json!("1"),
            json!(null),
            json!([1]),
        ] {
            let err = Mutation::from_json(&json!({"delete": {"a": {"b": bad}}})).unwrap_err();
            assert!(
                matches!(err, MutationError::BadDeleteMarker { ref path, .. } if path == "a/b"),
                "{err}"
            );
        }
    }

    #[test]
    fn delete_one_at_the_top_deletes_everything() {
        let m = Mutation::from_json(&json!({"delete": 1})).unwrap();
        assert_eq!(m.deletes(), &Delete::All);
        assert_eq!(m.to_json(), json!({"merge": {}, "delete": 1}));
    }

    #[test]
    fn unknown_fields_and_non_objects_are_refused() {
        assert!(matches!(
            Mutation::from_json(&json!({"merge": {}, "update": {}})),
            Err(MutationError::UnknownField { .. })
        ));
        assert!(matches!(
            Mutation::from_json(&json!([1])),
            Err(MutationError::NotAnObject { .. })
        ));
        assert!(matches!(
            Mutation::from_json(&json!({"merge": 5})),
            Err(MutationError::MergeNotObject { .. })
        ));
    }

    #[test]
    fn invalid_keys_are_refused_with_their_path() {
        let err = Mutation::from_json(&json!({"merge": {"a": {"": 1}}})).unwrap_err();
        assert_eq!(
            err,
            MutationError::InvalidKey {
                path: "a/".into(),
                source: PathError::EmptySegment { index: 1 }
            }
        );
        let err = Mutation::from_json(&json!({"delete": {"a\tb": 1}})).unwrap_err();
        assert!(matches!(err, MutationError::InvalidKey { .. }));
    }

    #[test]
    fn keys_deeper_than_the_limit_are_refused() {
        let mut value = json!(1);
        for _ in 0..65 {
            value = json!({ "k": value });
        }
        let err = Mutation::from_json(&json!({ "merge": value })).unwrap_err();
        assert!(matches!(
            err,
            MutationError::InvalidKey {
                source: PathError::TooDeep { depth: 65, .. },
                ..
            }
        ));
    }

    #[test]
    fn serde_round_trips_the_wire_shape() {
        let text = r#"{"merge":{"todos":{"T1":{"text":"x"}}},"delete":{"todos":{"T0":1}}}"#;
        let m: Mutation = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), text);
    }
}
