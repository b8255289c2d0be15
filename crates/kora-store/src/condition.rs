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

pub use kora_core::condition::{equals_holds, same_value, Condition};
use kora_core::{Mutation, Path, Stamp, Value};

use crate::error::StoreError;
use crate::store::{Change, Seq};

/// How many commits an [`Condition::Unchanged`] condition may lie behind the store's last
/// commit. The committer reads the change log from `since` on to check it; a condition
/// further behind than this fails (the writer reads again and retries), which bounds that
/// read. A read-compute-write cycle spans a few milliseconds, so even at 100,000 commits a
/// second a fresh condition is well within it.
pub const MAX_UNCHANGED_SPAN: u64 = 10_000;

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
