//! The built-in functions. Each may also be called as a method: `x.f(y)` is `f(x, y)`.
//!
//! | function | result |
//! |---|---|
//! | `size(x)` | characters of a string, items of a list, keys of a map; error otherwise |
//! | `is_string(x)`, `is_number(x)`, `is_int(x)`, `is_bool(x)`, `is_map(x)`, `is_list(x)` | the type test; `false` for `null` |
//! | `startsWith(s, p)`, `endsWith(s, p)` | string prefix / suffix |
//! | `contains(x, y)` | substring of a string, item of a list, key of a map |
//! | `lower(s)`, `upper(s)` | case mapping |
//! | `string(x)` | `x` as text: strings as they are, other values as JSON |
//! | `keys(m)` | the keys of a map, in key order |
//! | `root(p)`, `newRoot(p)` | the value at path `p` before / after the write |
//! | `matches(s, 're')` | regular expression search (parsed apart: the pattern is a literal) |

use kora_core::Path;
use serde_json::Value;

use super::eval::{not_a, Evaluator, Val};
use super::ops::{binary, type_name};
use super::parser::{BinOp, Func, Node};
use super::Stop;
use crate::world::Side;

pub(crate) fn call(ev: &mut Evaluator, func: Func, args: &[Node]) -> Result<Val, Stop> {
    let side = match func {
        Func::Root => Some((ev.env.data, "root")),
        Func::NewRoot => Some((ev.env.new_data, "newRoot")),
        _ => None,
    };
    match (side, args.first()) {
        (Some((side, name)), Some(arg)) => lookup(ev, arg, side, name),
        (Some((_, name)), None) => Err(Stop::Error(format!("`{name}` needs a path string"))),
        _ => {
            let values = ev.values(args)?;
            apply(func, &values).map(Val::Json)
        }
    }
}

fn lookup(ev: &mut Evaluator, arg: &Node, side: Side, name: &str) -> Result<Val, Stop> {
    let Value::String(text) = ev.eval_value(arg)? else {
        return Err(Stop::Error(format!("`{name}` needs a path string")));
    };
    let path = Path::parse(&text)
        .map_err(|e| Stop::Error(format!("`{name}`: {text:?} is not a path: {e}")))?;
    Ok(Val::Ref(side, path.segments().to_vec()))
}

fn apply(func: Func, args: &[Value]) -> Result<Value, Stop> {
    let first = args.first().unwrap_or(&Value::Null);
    let second = args.get(1).unwrap_or(&Value::Null);
    let name = func.name();
    Ok(match func {
        Func::Size => size(first, name)?,
        Func::IsString => Value::Bool(first.is_string()),
        Func::IsNumber => Value::Bool(first.is_number()),
        Func::IsInt => Value::Bool(first.as_i64().is_some() || first.as_u64().is_some()),
        Func::IsBool => Value::Bool(first.is_boolean()),
        Func::IsMap => Value::Bool(first.is_object()),
        Func::IsList => Value::Bool(first.is_array()),
        Func::StartsWith => Value::Bool(text(first, name)?.starts_with(text(second, name)?)),
        Func::EndsWith => Value::Bool(text(first, name)?.ends_with(text(second, name)?)),
        Func::Contains => contains(first, second)?,
        Func::Lower => Value::String(text(first, name)?.to_lowercase()),
        Func::Upper => Value::String(text(first, name)?.to_uppercase()),
        Func::Str => Value::String(to_text(first)),
        Func::Keys => match first {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Array(keys.into_iter().cloned().map(Value::String).collect())
            }
            other => return Err(not_a("map", name, other)),
        },
        Func::Root | Func::NewRoot => Value::Null,
    })
}

fn size(value: &Value, name: &str) -> Result<Value, Stop> {
    let n = match value {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        other => return Err(not_a("string, list or map", name, other)),
    };
    Ok(Value::from(n))
}

fn text<'v>(value: &'v Value, name: &str) -> Result<&'v str, Stop> {
    value.as_str().ok_or_else(|| not_a("string", name, value))
}

fn contains(haystack: &Value, needle: &Value) -> Result<Value, Stop> {
    match haystack {
        Value::String(_) | Value::Array(_) | Value::Object(_) => {
            binary(BinOp::In, needle, haystack).map_err(Stop::Error)
        }
        other => Err(Stop::Error(format!(
            "`contains` needs a string, list or map, found {}",
            type_name(other)
        ))),
    }
}

fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
