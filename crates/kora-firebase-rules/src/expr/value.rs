//! Run-time values, and the pieces of JavaScript's semantics rules need: numbers are doubles
//! printed as JavaScript prints them, strings measure and compare in UTF-16 code units.

use std::cmp::Ordering;
use std::rc::Rc;

use regex::Regex;
use serde_json::Value;

use super::method::Method;

/// A value while evaluating.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// A JSON object: `auth`, `auth.token`, the `val()` of a location with children.
    Object(Rc<Value>),
    /// A JSON array (only found under `auth`).
    List(Rc<Value>),
    Snapshot(Snap),
    Query,
    Regex(&'a Regex),
    /// An array literal (the argument of `hasChildren`).
    Array(Vec<Val<'a>>),
    /// A method with its receiver, waiting to be called.
    Method(Box<Val<'a>>, Method),
}

/// A `RuleDataSnapshot`: a location in the tree before the write (`data`, `root`) or after
/// it (`newData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snap {
    pub after: bool,
    pub path: Vec<String>,
}

impl Val<'_> {
    /// JSON as a rule sees it: numbers become doubles.
    pub(crate) fn from_json(value: &Value) -> Val<'static> {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Val::Str(s.clone()),
            Value::Object(_) => Val::Object(Rc::new(value.clone())),
            Value::Array(_) => Val::List(Rc::new(value.clone())),
        }
    }

    /// The type's name in error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::Object(_) => "object",
            Val::List(_) => "array",
            Val::Snapshot(_) => "snapshot",
            Val::Query => "query",
            Val::Regex(_) => "regular expression",
            Val::Array(_) => "array",
            Val::Method(..) => "method",
        }
    }
}

/// A string's `length` in JavaScript: UTF-16 code units.
pub(crate) fn js_length(s: &str) -> usize {
    s.encode_utf16().count()
}

/// JavaScript's `<` on strings: UTF-16 code unit order (which differs from Rust's code point
/// order above U+FFFF).
pub(crate) fn js_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The character at `index` as JavaScript's `s[index]` gives it, when it is a whole
/// character.
pub(crate) fn js_char_at(s: &str, index: &str) -> Option<String> {
    let position: usize = index.parse().ok()?;
    // Only canonical indexes name a character: `s["01"]` is undefined in JavaScript.
    if position.to_string() != index {
        return None;
    }
    let unit = s.encode_utf16().nth(position)?;
    char::from_u32(u32::from(unit)).map(String::from)
}

/// `String(x)` for a number, as JavaScript prints it (ECMAScript's Number::toString):
/// `1`, `1.5`, `1e+21`, `1e-7`, `NaN`, `-Infinity`.
pub(crate) fn js_number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x < 0.0 {
        return format!("-{}", js_number(-x));
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as ECMAScript asks.
    let formatted = format!("{x:e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { "-" } else { "+" };
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{rest}e{sign}{}", (n - 1).abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_in_javascript() {
        for (x, text) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456.789, "123456.789"),
            (1e-7, "1e-7"),
            (0.000_001, "0.000001"),
            (1.5e-10, "1.5e-10"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "0"),
            (2f64.powi(53), "9007199254740992"),
        ] {
            assert_eq!(js_number(x), text, "{x}");
        }
    }

    #[test]
    fn strings_measure_and_compare_in_utf16() {
        assert_eq!(js_length("a😀"), 3);
        assert_eq!(js_compare("\u{FF61}", "😀"), Ordering::Greater);
        assert_eq!(js_char_at("abc", "1").as_deref(), Some("b"));
        assert_eq!(js_char_at("abc", "01"), None);
        assert_eq!(js_char_at("abc", "5"), None);
    }
}
