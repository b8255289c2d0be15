//! Firebase's orderings, bit for bit as the SDKs implement them: child keys (`nameCompare`),
//! node values (`Node.compareTo`) and priorities (`PriorityIndex`). Queries and the node hash
//! both depend on them, and a client re-sorts whatever the server sends with the same rules, so
//! any difference shows up as a wrong query window or a transaction that never stops retrying.
//!
//! Nodes are `serde_json::Value`s in Firebase's export format: an object may carry a
//! `.priority` member, a leaf with a priority is `{".value": v, ".priority": p}`, and other
//! members whose key starts with `.` are metadata, not children. The helpers here
//! ([`node_kind`], [`children`], [`child_at`]) read that format so the rest of the module never
//! has to, and they also accept values that are not normalized yet (arrays, `null` children).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

/// The key that sorts before every other key (`MIN_NAME` in the SDKs). Queries send it as a
/// start or end key (`startAfter`/`endBefore`); it is never a stored key.
pub const MIN_NAME: &str = "[MIN_NAME]";

/// The key that sorts after every other key (`MAX_NAME` in the SDKs).
pub const MAX_NAME: &str = "[MAX_NAME]";

/// Firebase key order: [`MIN_NAME`] first, then keys that hold a 32-bit integer, numerically
/// (equal numbers shorter first: `1 < 01 < 001`), then every other key by UTF-16 code units,
/// then [`MAX_NAME`].
///
/// The SDK answers "equal" for distinct keys with the same number and length (`-0` and `00`);
/// those fall back to the string order here so that the order is total and two keys never
/// collide in a sorted map.
pub fn name_compare(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a == MIN_NAME || b == MAX_NAME {
        return Ordering::Less;
    }
    if b == MIN_NAME || a == MAX_NAME {
        return Ordering::Greater;
    }
    match (try_parse_int(a), try_parse_int(b)) {
        (Some(x), Some(y)) => x
            .cmp(&y)
            .then(a.len().cmp(&b.len()))
            .then_with(|| utf16_cmp(a, b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => utf16_cmp(a, b),
    }
}

/// The SDK's `tryParseInt`: the key matches `^-?(0*)\d{1,10}$` and its number fits an `i32`.
pub fn try_parse_int(key: &str) -> Option<i32> {
    let (negative, digits) = match key.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are free in the pattern; at most ten significant digits may follow.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 10 {
        return None;
    }
    let magnitude: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    i32::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// JavaScript's string order (UTF-16 code units). It differs from Rust's byte order when a
/// character above U+FFFF meets one in U+E000..=U+FFFF.
pub fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// What a node is, for ordering and hashing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeKind<'a> {
    /// `null`, missing, or an object without non-empty children.
    Empty,
    Bool(bool),
    Number(f64),
    String(&'a str),
    /// An object (or array) with at least one non-empty child.
    Children,
}

impl NodeKind<'_> {
    /// The SDK's type order: empty < boolean < number < string < children.
    fn rank(&self) -> u8 {
        match self {
            NodeKind::Empty => 0,
            NodeKind::Bool(_) => 1,
            NodeKind::Number(_) => 2,
            NodeKind::String(_) => 3,
            NodeKind::Children => 4,
        }
    }
}

/// Classifies a node in export format (`{".value": v}` is the leaf `v`).
pub fn node_kind(node: Option<&Value>) -> NodeKind<'_> {
    match node.map(unwrap_value) {
        None | Some(Value::Null) => NodeKind::Empty,
        Some(Value::Bool(b)) => NodeKind::Bool(*b),
        Some(Value::Number(n)) => NodeKind::Number(number_f64(n)),
        Some(Value::String(s)) => NodeKind::String(s),
        Some(other) if has_children(other) => NodeKind::Children,
        Some(_) => NodeKind::Empty,
    }
}

/// Whether a node is Firebase's empty node.
pub fn is_empty(node: &Value) -> bool {
    node_kind(Some(node)) == NodeKind::Empty
}

/// A JSON number as the IEEE double every SDK stores it as.
pub fn number_f64(n: &serde_json::Number) -> f64 {
    // Without serde_json's `arbitrary_precision` every number converts; 0 is only a fallback.
    n.as_f64().unwrap_or(0.0)
}

/// The value a node holds, looking through the export-format wrapper `{".value": v, ...}`
/// (a `null` `.value` counts as absent, as in the SDK's `nodeFromJSON`).
pub fn unwrap_value(node: &Value) -> &Value {
    match node {
        Value::Object(map) => match map.get(".value") {
            Some(inner) if !inner.is_null() => inner,
            _ => node,
        },
        _ => node,
    }
}

/// The `.priority` of a node if it is a valid priority (a number or a string).
pub fn priority_of(node: &Value) -> Option<&Value> {
    match node {
        Value::Object(map) => map
            .get(".priority")
            .filter(|p| p.is_number() || p.is_string()),
        _ => None,
    }
}

/// The non-empty children of a node, in no particular order: object members whose key does not
/// start with `.`, or array elements keyed by their index.
pub fn children(node: &Value) -> Vec<(Cow<'_, str>, &Value)> {
    match unwrap_value(node) {
        Value::Object(map) => map
            .iter()
            .filter(|(key, child)| !key.starts_with('.') && !is_empty(child))
            .map(|(key, child)| (Cow::Borrowed(key.as_str()), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, child)| !is_empty(child))
            .map(|(i, child)| (Cow::Owned(i.to_string()), child))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether an object or array has a non-empty child; stops at the first one.
fn has_children(node: &Value) -> bool {
    match node {
        Value::Object(map) => map
            .iter()
            .any(|(key, child)| !key.starts_with('.') && !is_empty(child)),
        Value::Array(items) => items.iter().any(|child| !is_empty(child)),
        _ => false,
    }
}

/// The node at a relative path below `node` (`None` when missing), as `PathIndex` reads the
/// value it orders by.
pub fn child_at<'a>(node: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(node, |current, segment| {
        if segment.starts_with('.') {
            return None;
        }
        match unwrap_value(current) {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
    })
}

/// Node order, ignoring priorities: empty < booleans (`false < true`) < numbers < strings (by
/// UTF-16 code units) < nodes with children, which all compare equal to each other.
pub fn value_compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let (ka, kb) = (node_kind(a), node_kind(b));
    ka.rank().cmp(&kb.rank()).then_with(|| match (ka, kb) {
        (NodeKind::Bool(x), NodeKind::Bool(y)) => x.cmp(&y),
        // `partial_cmp` and not `total_cmp`: JavaScript's `<` holds -0 and 0 equal.
        (NodeKind::Number(x), NodeKind::Number(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (NodeKind::String(x), NodeKind::String(y)) => utf16_cmp(x, y),
        _ => Ordering::Equal,
    })
}

/// Priority order: none < numbers < strings. Priorities are compared as nodes in the SDK, so
/// this is [`value_compare`] on the priority values (which also places booleans, valid as query
/// bounds on other indexes, between none and numbers).
pub fn priority_compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    value_compare(a, b)
}

/// The priority index's order of two children: priority, then key. The hash and the default
/// order of children use it.
pub fn priority_order(a: (&str, &Value), b: (&str, &Value)) -> Ordering {
    priority_compare(priority_of(a.1), priority_of(b.1)).then_with(|| name_compare(a.0, b.0))
}

/// Firebase's order, for the engine's ordered child indexes.
pub struct FirebaseOrder;

impl kora_engine::index::Order for FirebaseOrder {
    fn values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
        value_compare(a, b)
    }

    fn keys(a: &str, b: &str) -> Ordering {
        name_compare(a, b)
    }

    fn children(node: &Value) -> Vec<(Cow<'_, str>, &Value)> {
        children(node)
    }

    fn child_at<'a>(node: &'a Value, path: &[String]) -> Option<&'a Value> {
        child_at(node, path)
    }

    fn normalize(value: Value) -> Option<Value> {
        crate::node::normalize(value)
    }

    fn is_value(object: &serde_json::Map<String, Value>) -> bool {
        object.contains_key(".value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn integer_keys_sort_numerically_before_strings() {
        let mut keys = vec!["b", "10", "2", "a", "-1", "1", "001", "01", "A", "-10"];
        keys.sort_by(|a, b| name_compare(a, b));
        assert_eq!(
            keys,
            ["-10", "-1", "1", "01", "001", "2", "10", "A", "a", "b"]
        );
    }

    #[test]
    fn equal_numbers_tie_by_length() {
        assert_eq!(name_compare("1", "01"), Less);
        assert_eq!(name_compare("01", "001"), Less);
        assert_eq!(name_compare("001", "2"), Less);
        assert_eq!(name_compare("001", "1"), Greater);
    }

    #[test]
    fn int32_bounds() {
        assert_eq!(try_parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(try_parse_int("-2147483648"), Some(i32::MIN));
        assert_eq!(try_parse_int("2147483648"), None);
        assert_eq!(try_parse_int("-2147483649"), None);
        assert_eq!(try_parse_int("00000000000000000012"), Some(12));
        assert_eq!(try_parse_int("12345678901"), None);
        for not_int in ["", "-", "1a", "+1", " 1", "1.0", "١"] {
            assert_eq!(try_parse_int(not_int), None, "{not_int:?}");
        }
        // Too big for an i32, so it is an ordinary string: after every integer key.
        assert_eq!(name_compare("2147483648", "2147483647"), Greater);
        assert_eq!(name_compare("2147483648", "3"), Greater);
        assert_eq!(name_compare("2147483648", "a"), Less);
    }

    #[test]
    fn negative_keys() {
        assert_eq!(name_compare("-1", "0"), Less);
        assert_eq!(name_compare("-1", "-2"), Greater);
        assert_eq!(name_compare("-", "0"), Greater);
        // Same number and length: decided by the string so the order stays total.
        assert_eq!(name_compare("-0", "00"), Less);
        assert_eq!(name_compare("0", "-0"), Less);
    }

    #[test]
    fn sentinels_bracket_everything() {
        for key in ["", "-2147483648", "0", "a", "\u{10FFFF}", "[MIN_NAME]x"] {
            assert_eq!(name_compare(MIN_NAME, key), Less, "{key}");
            assert_eq!(name_compare(key, MIN_NAME), Greater, "{key}");
            assert_eq!(name_compare(MAX_NAME, key), Greater, "{key}");
            assert_eq!(name_compare(key, MAX_NAME), Less, "{key}");
        }
        assert_eq!(name_compare(MIN_NAME, MAX_NAME), Less);
        assert_eq!(name_compare(MAX_NAME, MAX_NAME), Equal);
    }

    #[test]
    fn strings_compare_by_utf16_units() {
        // U+FF5E is one unit 0xFF5E; U+1F600 starts with the surrogate 0xD83D, so it sorts
        // first in JavaScript although its code point is larger.
        assert_eq!(name_compare("\u{1F600}", "\u{FF5E}"), Less);
        assert_eq!(
            value_compare(Some(&json!("\u{1F600}")), Some(&json!("\u{FF5E}"))),
            Less
        );
        assert_eq!(name_compare("B", "a"), Less);
    }

    #[test]
    fn value_order_across_types() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1.5),
            json!(0),
            json!(2),
            json!(""),
            json!("a"),
            json!("b"),
            json!({"x": 1}),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(value_compare(Some(a), Some(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn value_order_details() {
        let cmp = |a: Value, b: Value| value_compare(Some(&a), Some(&b));
        assert_eq!(value_compare(None, Some(&json!(null))), Equal);
        assert_eq!(cmp(json!({}), json!(null)), Equal);
        assert_eq!(cmp(json!({"a": null, ".priority": 1}), json!(null)), Equal);
        assert_eq!(cmp(json!({"a": 1}), json!({"b": {"c": 2}})), Equal);
        assert_eq!(cmp(json!(1), json!(1.0)), Equal);
        assert_eq!(cmp(json!(-0.0), json!(0)), Equal);
        assert_eq!(cmp(json!({".value": 3, ".priority": 9}), json!(2)), Greater);
        assert_eq!(
            cmp(json!({".value": "a", ".priority": 9}), json!("a")),
            Equal
        );
        assert_eq!(cmp(json!([1]), json!("z")), Greater);
        assert_eq!(cmp(json!([null]), json!(false)), Less);
    }

    #[test]
    fn priorities() {
        let p = |v: Value| priority_of(&v).cloned();
        assert_eq!(p(json!({"a": 1, ".priority": 2})), Some(json!(2)));
        assert_eq!(p(json!({".value": 1, ".priority": "x"})), Some(json!("x")));
        assert_eq!(p(json!({"a": 1, ".priority": true})), None);
        assert_eq!(p(json!({"a": 1})), None);
        assert_eq!(p(json!(5)), None);
        assert_eq!(priority_compare(None, Some(&json!(-5))), Less);
        assert_eq!(priority_compare(Some(&json!(100)), Some(&json!("1"))), Less);
        assert_eq!(priority_compare(Some(&json!("a")), Some(&json!("b"))), Less);
        assert_eq!(priority_compare(Some(&json!(2)), Some(&json!(10))), Less);
        let (x, y) = (json!({".value": 1, ".priority": 1}), json!(5));
        assert_eq!(priority_order(("z", &x), ("a", &y)), Greater);
        assert_eq!(priority_order(("1", &y), ("a", &y)), Less);
    }

    #[test]
    fn children_and_paths() {
        let node = json!({"a": {"b": {".value": 3, ".priority": 1}}, "c": null, ".x": 1, "d": {}});
        let keys: Vec<_> = children(&node)
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(keys, ["a"]);
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            child_at(&node, &path(&["a", "b"])),
            Some(&json!({".value": 3, ".priority": 1}))
        );
        assert_eq!(child_at(&node, &path(&["a", "b", "c"])), None);
        assert_eq!(child_at(&node, &path(&[".x"])), None);
        assert_eq!(child_at(&json!([5, 6]), &path(&["1"])), Some(&json!(6)));
        let array_keys: Vec<_> = children(&json!([1, null, 3]))
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(array_keys, ["0", "2"]);
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?0{0,2}[0-9]{1,3}",
            "[a-cA-C0-9_-]{0,4}",
            "\\PC{0,3}",
            Just(MIN_NAME.to_string()),
            Just(MAX_NAME.to_string()),
            Just("2147483647".to_string()),
            Just("2147483648".to_string()),
            Just("-2147483648".to_string()),
            Just("-0".to_string()),
        ]
    }

    fn leaf_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            (-3.0f64..3.0).prop_map(Value::from),
            "[ab\u{FF5E}\u{1F600}]{0,2}".prop_map(Value::from),
            Just(json!({})),
            Just(json!({"k": 1})),
            Just(json!({"k": null})),
            (-2i64..2).prop_map(|v| json!({".value": v, ".priority": "p"})),
        ]
    }

    fn assert_total_order<T: std::fmt::Debug>(
        cmp: impl Fn(&T, &T) -> Ordering,
        a: &T,
        b: &T,
        c: &T,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(cmp(a, a), Equal);
        prop_assert_eq!(cmp(a, b), cmp(b, a).reverse());
        if cmp(a, b) != Greater && cmp(b, c) != Greater {
            prop_assert_ne!(cmp(a, c), Greater, "{:?} <= {:?} <= {:?}", a, b, c);
        }
        if cmp(a, b) == Equal && cmp(b, c) == Equal {
            prop_assert_eq!(cmp(a, c), Equal);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn name_compare_is_a_total_order(a in key_strategy(), b in key_strategy(), c in key_strategy()) {
            assert_total_order(|x: &String, y: &String| name_compare(x, y), &a, &b, &c)?;
            prop_assert_eq!(name_compare(&a, &b) == Equal, a == b);
        }

        #[test]
        fn value_compare_is_a_total_preorder(a in leaf_strategy(), b in leaf_strategy(), c in leaf_strategy()) {
            assert_total_order(|x: &Value, y: &Value| value_compare(Some(x), Some(y)), &a, &b, &c)?;
        }
    }
}
