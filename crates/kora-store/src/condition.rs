//! Conditions on a write, checked by the committer against the very state the write is
//! applied to — inside the store's transaction, after every write committed before it
//! (including the earlier writes of its own commit group).
//!
//! A write whose conditions all hold commits; one whose condition fails is refused alone
//! ([`StoreError::Conflict`]) and the rest of its group commits as if it had not been there.
//! This is what makes a decision taken on data (a compare-and-set, an increment, a rule that
//! reads the tree, a derived index) safe against concurrent writers on any backend and across
//! every Kora node sharing the store: the check and the write are one atomic step.
//!
//! A conditional write that passes is applied in full: if its stamp is not newer than what it
//! overwrites (an earlier stamp from a lagging clock, an offline client), the committer gives it
//! the smallest stamp that is ([`stamp_above`]), and returns that stamp in its [`Commit`].
//! Otherwise last-writer-wins could silently drop the very write its conditions allowed. A
//! write the server stamped on arrival (`Write::server_stamped`) is treated the same way: it
//! is ordered by commit, so a write stamped before a transaction but committed after it is not
//! hidden by the transaction, which never saw it.
//!
//! [`Commit`]: crate::Commit

use kora_core::{Mutation, Path, Stamp, Value};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{Change, Seq};

/// How many commits an [`Condition::Unchanged`] condition may lie behind the store's last
/// commit. The committer reads the change log from `since` on to check it; a condition
/// further behind than this fails (the writer reads again and retries), which bounds that
/// read. A read-compute-write cycle spans a few milliseconds, so even at 100,000 commits a
/// second a fresh condition is well within it.
pub const MAX_UNCHANGED_SPAN: u64 = 10_000;

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

/// Why a conditional write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The indexes (into the write's conditions) of those that did not hold.
    pub failed: Vec<usize>,
    /// The last sequence the check saw: the failed conditions were judged against the tree
    /// as of this commit (plus the earlier writes of the group).
    pub seq: Seq,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let which: Vec<String> = self.failed.iter().map(usize::to_string).collect();
        write!(
            f,
            "condition {} of the write did not hold at sequence {}",
            which.join(", "),
            self.seq
        )
    }
}

impl From<Conflict> for StoreError {
    fn from(conflict: Conflict) -> Self {
        StoreError::Conflict(conflict)
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

/// The oldest `since` of the `Unchanged` conditions among `writes`' conditions.
pub fn oldest_since<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Option<Seq> {
    conditions
        .into_iter()
        .filter_map(|c| match c {
            Condition::Unchanged { since, .. } => Some(*since),
            Condition::Equals { .. } => None,
        })
        .min()
}

/// The changes a batch's `Unchanged` conditions are checked against: every commit after
/// `after`, as far as the log still holds them and [`MAX_UNCHANGED_SPAN`] allows.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Conditions with `since` at or after this are covered.
    pub from: Seq,
    /// The commits after `from`, oldest first, with their effects.
    pub changes: Vec<(Seq, Mutation)>,
}

impl Window {
    /// No changes needed (no `Unchanged` condition in the batch): every `since` at or after
    /// `last` is covered.
    pub fn empty(last: Seq) -> Self {
        Window {
            from: last,
            changes: Vec::new(),
        }
    }

    /// A window of log changes after `from`.
    pub fn of_changes(from: Seq, changes: impl IntoIterator<Item = Change>) -> Self {
        Window {
            from,
            changes: changes.into_iter().map(|c| (c.seq, c.mutation)).collect(),
        }
    }

    /// Where a batch committing on top of `last` must read the log from for conditions as old
    /// as `oldest` (`None`: it need not). Never further back than [`MAX_UNCHANGED_SPAN`].
    pub fn start(oldest: Option<Seq>, last: Seq) -> Option<Seq> {
        let oldest = oldest?;
        (oldest < last).then(|| oldest.max(last.saturating_sub(MAX_UNCHANGED_SPAN)))
    }
}

/// The commits before a batch, as its `Unchanged` conditions see them.
pub trait History {
    /// True when a commit after `since` changed the value at `path` — or when that cannot be
    /// told (the commits after `since` are no longer at hand): the condition then fails, and
    /// the writer reads afresh.
    fn changed_after(&self, path: &Path, since: Seq) -> bool;
}

impl History for Window {
    fn changed_after(&self, path: &Path, since: Seq) -> bool {
        since < self.from
            || self
                .changes
                .iter()
                .any(|(seq, effect)| *seq > since && effect.touches(path))
    }
}

/// Checks one write's conditions. `value_at` reads the visible value at a path as the write
/// would see it; `history` holds the commits before the batch, `batch` the effects of the
/// group's earlier writes. Returns the indexes of the conditions that failed.
pub fn check(
    conditions: &[Condition],
    value_at: impl Fn(&Path) -> Option<Value>,
    history: &dyn History,
    batch: &[(Seq, Mutation)],
) -> Vec<usize> {
    conditions
        .iter()
        .enumerate()
        .filter(|(_, condition)| !holds(condition, &value_at, history, batch))
        .map(|(i, _)| i)
        .collect()
}

fn holds(
    condition: &Condition,
    value_at: &impl Fn(&Path) -> Option<Value>,
    history: &dyn History,
    batch: &[(Seq, Mutation)],
) -> bool {
    match condition {
        Condition::Equals { path, equals } => {
            equals_holds(equals.as_ref(), value_at(path).as_ref())
        }
        Condition::Unchanged { path, since } => {
            let in_batch = |(seq, effect): &(Seq, Mutation)| *seq > *since && effect.touches(path);
            !history.changed_after(path, *since) && !batch.iter().any(in_batch)
        }
    }
}

/// The stamp a passing conditional write commits with: its own when it is newer than
/// `newest` (the newest stamp where it writes), else the smallest stamp above `newest`, with
/// the write's origin.
pub fn stamp_above(stamp: Stamp, newest: Option<Stamp>) -> Stamp {
    match newest {
        Some(newest) if newest >= stamp => {
            let (millis, counter) = match newest.counter().checked_add(1) {
                Some(counter) => (newest.millis(), counter),
                None => (newest.millis() + 1, 0),
            };
            let bumped = Stamp::new(millis, counter, stamp.origin());
            // Same time and counter, greater origin: already newer.
            let same_place = Stamp::new(newest.millis(), newest.counter(), stamp.origin());
            if same_place > newest {
                same_place
            } else {
                bumped
            }
        }
        _ => stamp,
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

    #[test]
    fn unchanged_fails_on_a_touch_after_since_or_outside_the_window() {
        let touch = Mutation::merge(&p("a/b"), json!(1)).unwrap();
        let window = Window {
            from: 5,
            changes: vec![(6, touch.clone())],
        };
        let none = |_: &Path| None;
        let check1 = |c: Condition| check(&[c], none, &window, &[]).is_empty();
        assert!(!check1(Condition::unchanged(p("a"), 5)), "a child changed");
        assert!(
            !check1(Condition::unchanged(p("a/b/c"), 5)),
            "an ancestor's leaf"
        );
        assert!(check1(Condition::unchanged(p("a/c"), 5)), "a sibling");
        assert!(check1(Condition::unchanged(p("a"), 6)), "before since");
        assert!(
            !check1(Condition::unchanged(p("x"), 4)),
            "older than the window"
        );
        let batch = [(7, touch)];
        assert!(!check(&[Condition::unchanged(p("a"), 6)], none, &window, &batch).is_empty());
    }

    #[test]
    fn a_bumped_stamp_is_just_above_the_newest() {
        let newest = Stamp::new(100, 4, 9);
        assert_eq!(
            stamp_above(Stamp::new(50, 0, 3), Some(newest)),
            Stamp::new(100, 5, 3)
        );
        assert_eq!(
            stamp_above(Stamp::new(50, 0, 12), Some(newest)),
            Stamp::new(100, 4, 12)
        );
        let later = Stamp::new(200, 0, 3);
        assert_eq!(stamp_above(later, Some(newest)), later);
        assert_eq!(stamp_above(later, None), later);
        let full = Stamp::new(100, u16::MAX, 9);
        assert_eq!(
            stamp_above(Stamp::new(1, 0, 1), Some(full)),
            Stamp::new(101, 0, 1)
        );
    }
}
