//! The batches the embedded committer keeps in memory: those staged and not yet durable
//! (whose records the next batches must see: `batch.rs`), and the most recent durable ones,
//! whose changed keys answer `Unchanged` conditions without reading the change log.
//!
//! A batch's overlay lists every record it wrote or deleted. A commit that changed the value
//! at a path wrote a record at that path, beneath it, or at an ancestor (a tombstone, or the
//! leaf it replaced), so "did a batch after N touch this path?" is a few ordered look-ups in
//! the overlays of the batches after N — no decoding of logged effects. (A record written
//! without a visible change, such as a branch stamp, makes the answer conservatively "yes".)

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use kora_core::records::Record;
use kora_core::{Mutation, Path};

use crate::condition::{History, Window, MAX_UNCHANGED_SPAN};
use crate::store::Seq;

/// Most bytes (encoded records) of durable batches kept for conditions; older batches are
/// dropped first, and conditions reaching past them read the change log instead.
pub const RECENT_BYTES: usize = 64 << 20;

/// The records a staged batch writes (`None`: deletes), by key.
pub type Overlay = BTreeMap<Vec<u8>, Option<Record>>;

/// One batch as the committer keeps it.
pub struct Batch {
    /// The records it writes.
    pub overlay: Overlay,
    /// Its sequences, `first..=last` (`first > last`: every write was refused).
    pub first: Seq,
    pub last: Seq,
    /// The encoded size of its records.
    pub bytes: usize,
}

impl Batch {
    /// Whether it changed a record at `key`'s path, an ancestor's or one beneath.
    fn touches(&self, key: &[u8]) -> bool {
        let overlay = &self.overlay;
        if overlay.contains_key(key) || overlay.contains_key(&[][..]) {
            return true;
        }
        let ancestor = key
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == kora_core::key::TERMINATOR)
            .any(|(i, _)| overlay.contains_key(&key[..=i]));
        let beneath = overlay
            .range::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(key));
        ancestor || beneath
    }
}

/// The batches kept: durable ones (oldest first), then those in flight; together they cover
/// the sequences after `covered_from()` without a gap.
#[derive(Default)]
pub struct Kept {
    durable: VecDeque<Arc<Batch>>,
    in_flight: VecDeque<Arc<Batch>>,
    durable_bytes: usize,
    durable_commits: u64,
}

impl Kept {
    pub fn stage(&mut self, batch: Arc<Batch>) {
        self.in_flight.push_back(batch);
    }

    /// `batch` (the oldest in flight) is durable now.
    pub fn durable(&mut self, batch: &Arc<Batch>) {
        if !self
            .in_flight
            .front()
            .is_some_and(|b| Arc::ptr_eq(b, batch))
        {
            return;
        }
        if let Some(batch) = self.in_flight.pop_front() {
            self.durable_bytes += batch.bytes;
            self.durable_commits += batch.last + 1 - batch.first;
            self.durable.push_back(batch);
        }
        while self.durable_bytes > RECENT_BYTES || self.durable_commits > MAX_UNCHANGED_SPAN {
            let Some(old) = self.durable.pop_front() else {
                break;
            };
            self.durable_bytes -= old.bytes;
            self.durable_commits -= old.last + 1 - old.first;
        }
    }

    /// A persist failed: every batch in flight is gone (the durable ones stay true).
    pub fn reset(&mut self) {
        self.in_flight.clear();
    }

    /// Every batch kept, oldest first, and those in flight.
    pub fn split(&self) -> Split {
        Split {
            all: self
                .durable
                .iter()
                .chain(&self.in_flight)
                .cloned()
                .collect(),
            in_flight: self.in_flight.iter().cloned().collect(),
        }
    }

    /// The sequence the kept batches start after (`last` when none is kept).
    pub fn covered_from(batches: &[Arc<Batch>], last: Seq) -> Seq {
        batches.first().map_or(last, |b| b.first - 1)
    }
}

/// The kept batches as one staging sees them.
pub struct Split {
    /// Every batch kept, oldest first.
    pub all: Vec<Arc<Batch>>,
    /// Those not yet durable, oldest first.
    pub in_flight: Vec<Arc<Batch>>,
}

/// What a batch's `Unchanged` conditions are checked against: the change log up to where the
/// kept batches start (read only when a condition reaches that far back), then their
/// overlays.
pub struct Recent {
    pub log: Window,
    pub batches: Vec<Arc<Batch>>,
}

impl History for Recent {
    fn changed_after(&self, path: &Path, since: Seq) -> bool {
        if self.log.changed_after(path, since) {
            return true;
        }
        let key = kora_core::key::encode(path);
        self.batches
            .iter()
            .filter(|b| b.last > since && b.first <= b.last)
            .any(|b| b.touches(&key))
    }
}

/// The logged effects `(seq, mutation)` as a window (for the part read from the log).
pub fn log_window(from: Seq, changes: Vec<(Seq, Mutation)>) -> Window {
    Window { from, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(keys: &[&[u8]], first: Seq, last: Seq) -> Arc<Batch> {
        Arc::new(Batch {
            overlay: keys.iter().map(|k| (k.to_vec(), None)).collect(),
            first,
            last,
            bytes: 10,
        })
    }

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn a_batch_touches_the_path_its_ancestors_and_what_is_beneath() {
        let recent = Recent {
            log: Window::empty(4),
            batches: vec![batch(&[b"a\0b\0"], 5, 6)],
        };
        assert!(recent.changed_after(&p("a/b"), 4));
        assert!(recent.changed_after(&p("a/b/c"), 4), "an ancestor's record");
        assert!(recent.changed_after(&p("a"), 4), "a record beneath");
        assert!(
            !recent.changed_after(&p("a/bc"), 4),
            "a sibling sharing a prefix"
        );
        assert!(!recent.changed_after(&p("x"), 4));
        assert!(!recent.changed_after(&p("a/b"), 6), "all before since");
        assert!(recent.changed_after(&p("x"), 3), "older than the window");
    }

    #[test]
    fn kept_batches_are_bounded_by_commits() {
        let mut kept = Kept::default();
        let mut first = 1;
        for _ in 0..3 {
            let b = batch(&[b"k\0"], first, first + MAX_UNCHANGED_SPAN / 2 - 1);
            first += MAX_UNCHANGED_SPAN / 2;
            kept.stage(b.clone());
            kept.durable(&b);
        }
        let all = kept.split().all;
        assert_eq!(all.len(), 2);
        assert_eq!(Kept::covered_from(&all, 0), MAX_UNCHANGED_SPAN / 2);
    }
}
