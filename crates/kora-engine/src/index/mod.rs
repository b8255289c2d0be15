//! Ordered child indexes: for one collection and one child path, every child's key ordered
//! by the value at that path, kept current from the change feed. A query ordering the
//! collection by that child value then finds its window in `O(log n + window)` and reads
//! only the window's children, instead of reading and sorting the whole collection on every
//! change.
//!
//! Declared per collection pattern, like Firebase's `.indexOn` (`[indexes]` in kora.toml):
//!
//! ```toml
//! [indexes]
//! "scores" = ["score"]
//! "users/$uid/posts" = ["meta/date"]
//! ```
//!
//! The order is a parameter ([`Order`]): Kora's own ([`Natural`], `kora_core::order`) serves
//! Kora's protocol; Firebase's protocol brings Firebase's (kora-firebase). [`ordered`] is the
//! pure part, [`live`] keeps an index current, [`window`] answers queries with one.

pub mod live;
pub mod ordered;
pub mod overwrites;
pub mod window;

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

pub use live::{ChildIndex, Declared, Indexes, SharedIndex};
pub use ordered::{Key, Ordered, Seek, Span};
pub use overwrites::{overwrites, Overwrite};

/// An order of children by a child value.
pub trait Order: Send + Sync + 'static {
    /// The order of two values at the ordering path (`None`: nothing there).
    fn values(a: Option<&Value>, b: Option<&Value>) -> Ordering;
    /// The order of keys among children with equal values.
    fn keys(a: &str, b: &str) -> Ordering;
    /// A node's children as this order sees them.
    fn children(node: &Value) -> Vec<(Cow<'_, str>, &Value)>;
    /// The value at a path below a child.
    fn child_at<'a>(node: &'a Value, path: &[String]) -> Option<&'a Value>;
    /// A written value as it is read back (`None`: nothing).
    fn normalize(value: Value) -> Option<Value>;
    /// Whether an object in a write is one value rather than children.
    fn is_value(_object: &Map<String, Value>) -> bool {
        false
    }
}

/// Kora's order (`kora_core::order`): values by kind then value, keys by bytes.
pub struct Natural;

impl Order for Natural {
    fn values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
        kora_core::order::compare_values(a, b)
    }

    fn keys(a: &str, b: &str) -> Ordering {
        a.cmp(b)
    }

    fn children(node: &Value) -> Vec<(Cow<'_, str>, &Value)> {
        match node {
            Value::Object(map) => map
                .iter()
                .map(|(key, child)| (Cow::Borrowed(key.as_str()), child))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn child_at<'a>(node: &'a Value, path: &[String]) -> Option<&'a Value> {
        kora_core::order::child_at(node, path)
    }

    fn normalize(value: Value) -> Option<Value> {
        (!value.is_null()).then_some(value)
    }
}
