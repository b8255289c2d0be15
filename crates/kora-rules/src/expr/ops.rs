//! Operators on JSON values: equality (deep, numbers by value), ordering, arithmetic, `in`.
//!
//! Integers stay integers while the result is exact (`7 / 2` is `3.5`, `6 / 2` is `3`);
//! overflow, division by zero and non-finite results are errors, never wrapped or rounded
//! silently. Operands of the wrong type are errors too — except `==` and `!=`, which
//! compare any two values.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::parser::BinOp;

/// A number as integer when it is one, otherwise as float.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

impl Num {
    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The type of a value, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Deep equality; numbers compare by value (`1 == 1.0`).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_order(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| equal(v, other)))
        }
        _ => a == b,
    }
}

fn number_order(x: &Number, y: &Number) -> Option<Ordering> {
    match (num(x), num(y)) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
        (a, b) => a.float().partial_cmp(&b.float()),
    }
}

/// Applies a binary operator (all but `&&` and `||`, which short-circuit).
pub(crate) fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, String> {
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(a, b))),
        BinOp::Ne => Ok(Value::Bool(!equal(a, b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, a, b).map(Value::Bool),
        BinOp::In => contained(a, b).map(Value::Bool),
        BinOp::Add => add(a, b),
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => arithmetic(op, a, b),
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> Result<bool, String> {
    let order = match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_order(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    };
    let Some(order) = order else {
        return Err(format!(
            "cannot order {} and {}",
            type_name(a),
            type_name(b)
        ));
    };
    Ok(match op {
        BinOp::Lt => order == Ordering::Less,
        BinOp::Le => order != Ordering::Greater,
        BinOp::Gt => order == Ordering::Greater,
        _ => order != Ordering::Less,
    })
}

/// `a in b`: element of a list, key of a map, substring of a string; nothing is in `null`.
fn contained(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (_, Value::Null) => Ok(false),
        (_, Value::Array(items)) => Ok(items.iter().any(|item| equal(a, item))),
        (Value::String(key), Value::Object(map)) => Ok(map.contains_key(key)),
        (_, Value::Object(_)) => Ok(false),
        (Value::String(part), Value::String(whole)) => Ok(whole.contains(part.as_str())),
        _ => Err(format!(
            "`in` needs a list, map or string on its right, found {}",
            type_name(b)
        )),
    }
}

fn add(a: &Value, b: &Value) -> Result<Value, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
        (Value::Array(x), Value::Array(y)) => {
            Ok(Value::Array(x.iter().chain(y).cloned().collect()))
        }
        (Value::Number(_), Value::Number(_)) => arithmetic(BinOp::Add, a, b),
        _ => Err(format!(
            "cannot add {} and {} (use string(x) to build strings)",
            type_name(a),
            type_name(b)
        )),
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, String> {
    let (Value::Number(x), Value::Number(y)) = (a, b) else {
        return Err(format!(
            "arithmetic needs numbers, found {} and {}",
            type_name(a),
            type_name(b)
        ));
    };
    match (num(x), num(y)) {
        (Num::Int(x), Num::Int(y)) => int_arithmetic(op, x, y),
        (x, y) => float_arithmetic(op, x.float(), y.float()),
    }
}

fn int_arithmetic(op: BinOp, x: i64, y: i64) -> Result<Value, String> {
    if matches!(op, BinOp::Div | BinOp::Rem) && y == 0 {
        return Err("division by zero".into());
    }
    let exact = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Rem => x.checked_rem(y),
        _ => match x.checked_rem(y) {
            Some(0) => x.checked_div(y),
            Some(_) => return float_arithmetic(op, x as f64, y as f64),
            None => None,
        },
    };
    exact
        .map(Value::from)
        .ok_or_else(|| "integer overflow".to_string())
}

fn float_arithmetic(op: BinOp, x: f64, y: f64) -> Result<Value, String> {
    if matches!(op, BinOp::Div | BinOp::Rem) && y == 0.0 {
        return Err("division by zero".into());
    }
    let result = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    };
    float(result)
}

/// A finite float as a JSON number.
pub(crate) fn float(value: f64) -> Result<Value, String> {
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| "result is not a finite number".to_string())
}

/// Unary minus.
pub(crate) fn negate(value: &Value) -> Result<Value, String> {
    let Value::Number(n) = value else {
        return Err(format!("cannot negate {}", type_name(value)));
    };
    match num(n) {
        Num::Int(i) => i
            .checked_neg()
            .map(Value::from)
            .ok_or_else(|| "integer overflow".to_string()),
        Num::Float(f) => float(-f),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
        binary(op, &a, &b)
    }

    #[test]
    fn equality_is_deep_and_numeric() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!({"a": [1, 2]}), &json!({"a": [1.0, 2]})));
        assert!(!equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!equal(&json!("1"), &json!(1)));
        assert!(equal(&Value::Null, &Value::Null));
    }

    #[test]
    fn ordering_of_numbers_and_strings_only() {
        assert_eq!(op(BinOp::Lt, json!(1), json!(1.5)), Ok(json!(true)));
        assert_eq!(op(BinOp::Ge, json!("b"), json!("a")), Ok(json!(true)));
        assert_eq!(op(BinOp::Le, json!(2), json!(2)), Ok(json!(true)));
        assert!(op(BinOp::Lt, Value::Null, json!(1)).is_err());
        assert!(op(BinOp::Gt, json!("1"), json!(1)).is_err());
    }

    #[test]
    fn arithmetic_keeps_integers_exact() {
        assert_eq!(op(BinOp::Add, json!(2), json!(3)), Ok(json!(5)));
        assert_eq!(op(BinOp::Div, json!(6), json!(2)), Ok(json!(3)));
        assert_eq!(op(BinOp::Div, json!(7), json!(2)), Ok(json!(3.5)));
        assert_eq!(op(BinOp::Rem, json!(7), json!(3)), Ok(json!(1)));
        assert_eq!(op(BinOp::Mul, json!(1.5), json!(2)), Ok(json!(3.0)));
        assert!(op(BinOp::Div, json!(1), json!(0)).is_err());
        assert!(op(BinOp::Rem, json!(1.0), json!(0)).is_err());
        assert!(op(BinOp::Add, json!(i64::MAX), json!(1)).is_err());
        assert!(op(BinOp::Mul, json!(1e300), json!(1e300)).is_err());
        assert!(op(BinOp::Sub, json!("a"), json!(1)).is_err());
        assert!(op(BinOp::Div, json!(i64::MIN), json!(-1)).is_err());
        assert!(negate(&json!(i64::MIN)).is_err());
        assert_eq!(negate(&json!(2.5)), Ok(json!(-2.5)));
    }

    #[test]
    fn plus_joins_strings_and_lists() {
        assert_eq!(op(BinOp::Add, json!("a/"), json!("b")), Ok(json!("a/b")));
        assert_eq!(op(BinOp::Add, json!([1]), json!([2])), Ok(json!([1, 2])));
        assert!(op(BinOp::Add, json!("a"), json!(1)).is_err());
        assert!(op(BinOp::Add, json!("a"), Value::Null).is_err());
    }

    #[test]
    fn membership() {
        assert_eq!(op(BinOp::In, json!(2), json!([1, 2.0])), Ok(json!(true)));
        assert_eq!(op(BinOp::In, json!("k"), json!({"k": 0})), Ok(json!(true)));
        assert_eq!(op(BinOp::In, json!(1), json!({"k": 0})), Ok(json!(false)));
        assert_eq!(op(BinOp::In, json!("ell"), json!("hello")), Ok(json!(true)));
        assert_eq!(op(BinOp::In, json!("x"), Value::Null), Ok(json!(false)));
        assert!(op(BinOp::In, json!(1), json!("abc")).is_err());
        assert!(op(BinOp::In, json!(1), json!(5)).is_err());
    }
}
