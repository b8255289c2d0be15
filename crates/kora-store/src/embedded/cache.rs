//! The committer's record cache: what it last read or wrote, so that rewriting the same keys
//! does not read them from fjall again.
//!
//! Why: a commit reads the records beneath every leaf it writes (`kora_core::records`), and a
//! range read in an LSM tree walks every version of the keys in range still held in the
//! memtable. A key rewritten thousands of times has thousands of versions there, so without
//! this cache the cost of a write grew with how often its keys had been rewritten (presence,
//! cursors, counters, documents: the most common real-time load) and throughput decayed over
//! a run. A point read finds the newest version at once; a range read cannot.
//!
//! The committer is the only writer of records, so it can keep what it knows exact: it learns
//! records and whole subtrees (a subtree's own record and everything beneath) when it reads
//! them, and applies every batch it stages. A persist that fails resets the pipeline and
//! clears the cache (what it staged never became durable), and so does a compaction (it
//! rewrites records outside the committer). When the cache outgrows its budget
//! ([`crate::embedded::Tuning::record_cache_bytes`]) it is cleared and refills with what is
//! hot.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use kora_core::records::{Record, Records};
use serde_json::Value;

use super::recent::Overlay;

/// The cache's default budget: records (keys and values, estimated) it holds at most.
pub const RECORD_CACHE_BYTES: usize = 32 << 20;

/// Bytes counted for a record besides its key and leaf value (stamps, map node).
const RECORD_OVERHEAD: usize = 96;

/// Keys the admission filter remembers having missed once (see [`RecordCache::admit`]).
const DOORKEEPER_KEYS: usize = 65_536;

/// Records the committer knows.
#[derive(Debug)]
pub struct RecordCache {
    /// Known records.
    records: BTreeMap<Vec<u8>, Record>,
    /// Keys known to hold no record.
    absent: HashSet<Vec<u8>>,
    /// Roots of subtrees known whole: a key at or beneath one is in `records`, or has none.
    whole: HashSet<Vec<u8>>,
    bytes: usize,
    budget: usize,
    /// Hashes of keys read once and not cached: a key is cached when it is read again.
    doorkeeper: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    /// The store's compaction count when the cache was last valid.
    pub compactions: u64,
}

impl RecordCache {
    pub fn new(budget: usize) -> Self {
        RecordCache {
            records: BTreeMap::new(),
            absent: HashSet::new(),
            whole: HashSet::new(),
            bytes: 0,
            budget,
            doorkeeper: HashSet::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            compactions: 0,
        }
    }

    /// Whether a key (or subtree) that was just read from the store should be learned: only
    /// when it was read before. Writes to new keys (the common insert) then cost the cache
    /// nothing, while a key rewritten is cached from its second write on.
    pub fn admit(&mut self, key: &[u8]) -> bool {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = self.hasher.build_hasher();
        hasher.write(key);
        let hash = hasher.finish();
        if self.doorkeeper.remove(&hash) {
            return true;
        }
        if self.doorkeeper.len() >= DOORKEEPER_KEYS {
            self.doorkeeper.clear();
        }
        self.doorkeeper.insert(hash);
        false
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.absent.clear();
        self.whole.clear();
        self.bytes = 0;
    }

    /// Whether `key` lies in (or is the root of) a subtree known whole.
    fn in_whole(&self, key: &[u8]) -> bool {
        if self.whole.is_empty() {
            return false;
        }
        if self.whole.contains(key) || self.whole.contains(&[][..]) {
            return true;
        }
        key.iter()
            .enumerate()
            .filter(|(_, b)| **b == kora_core::key::TERMINATOR)
            .any(|(i, _)| self.whole.contains(&key[..=i]))
    }

    /// The record at `key`: `Some(Some(_))` cached, `Some(None)` known absent, `None` unknown.
    pub fn point(&self, key: &[u8]) -> Option<Option<&Record>> {
        if let Some(record) = self.records.get(key) {
            return Some(Some(record));
        }
        (self.absent.contains(key) || self.in_whole(key)).then_some(None)
    }

    /// The records of the subtree at `root` (its own and everything beneath), when known.
    pub fn subtree<'a>(
        &'a self,
        root: &'a [u8],
    ) -> Option<impl Iterator<Item = (&'a Vec<u8>, &'a Record)> + 'a> {
        if !self.in_whole(root) {
            return None;
        }
        let end = kora_core::key::subtree_end(root).map_or(Bound::Unbounded, Bound::Excluded);
        let range = (Bound::Included(root.to_vec()), end);
        Some(self.records.range(range))
    }

    /// Learns what a read found, from `records` (the records as loaded): the point `key`, or
    /// the whole subtree at `root`.
    pub fn learn_point(&mut self, key: &[u8], records: &Records) {
        match records.get_record(key) {
            Some(record) => self.insert(key, record.clone()),
            None => {
                self.absent.insert(key.to_vec());
                self.bytes += key.len() + RECORD_OVERHEAD;
            }
        }
        self.check_budget();
    }

    pub fn learn_subtree(&mut self, root: &[u8], records: &Records) {
        for (key, record) in records.subtree(root) {
            self.absent.remove(key);
            self.insert(key, record.clone());
        }
        self.whole.insert(root.to_vec());
        self.bytes += root.len() + RECORD_OVERHEAD;
        self.check_budget();
    }

    /// Applies a staged batch's changes to what is known (what is not known stays unknown).
    pub fn apply(&mut self, overlay: &Overlay) {
        for (key, record) in overlay {
            let known =
                self.records.contains_key(key) || self.absent.contains(key) || self.in_whole(key);
            if !known {
                continue;
            }
            match record {
                Some(record) => {
                    self.absent.remove(key);
                    self.insert(key, record.clone());
                }
                None => {
                    if let Some(old) = self.records.remove(key) {
                        self.bytes = self.bytes.saturating_sub(record_bytes(key, &old));
                    }
                    if !self.in_whole(key) {
                        self.absent.insert(key.clone());
                    }
                }
            }
        }
        self.check_budget();
    }

    fn insert(&mut self, key: &[u8], record: Record) {
        self.bytes += record_bytes(key, &record);
        if let Some(old) = self.records.insert(key.to_vec(), record) {
            self.bytes = self.bytes.saturating_sub(record_bytes(key, &old));
        }
    }

    fn check_budget(&mut self) {
        if self.bytes > self.budget {
            self.clear();
        }
    }
}

/// About what a cached record takes in memory.
fn record_bytes(key: &[u8], record: &Record) -> usize {
    key.len() + RECORD_OVERHEAD + record.leaf.as_ref().map_or(0, |(_, v)| value_bytes(v))
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => 24 + s.len(),
        Value::Array(items) => 24 + items.iter().map(value_bytes).sum::<usize>(),
        Value::Object(map) => {
            48 + map
                .iter()
                .map(|(k, v)| 24 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use kora_core::Stamp;
    use serde_json::json;

    use super::*;

    fn leaf(n: i64) -> Record {
        Record {
            leaf: Some((Stamp::new(1, 0, 1), json!(n))),
            ..Record::default()
        }
    }

    fn records(entries: &[(&[u8], i64)]) -> Records {
        let mut records = Records::new();
        for (key, n) in entries {
            records.load(key.to_vec(), leaf(*n));
        }
        records
    }

    #[test]
    fn a_whole_subtree_answers_points_and_subtrees_beneath_it() {
        let mut cache = RecordCache::new(1 << 20);
        let loaded = records(&[(b"a\0", 1), (b"a\0b\0", 2), (b"ab\0", 9)]);
        assert!(cache.subtree(b"a\0").is_none());
        cache.learn_subtree(b"a\0", &loaded);
        let keys: Vec<&Vec<u8>> = cache.subtree(b"a\0").unwrap().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b"a\0".to_vec(), &b"a\0b\0".to_vec()], "not ab\\0");
        assert_eq!(cache.point(b"a\0b\0"), Some(Some(&leaf(2))));
        assert_eq!(
            cache.point(b"a\0c\0"),
            Some(None),
            "beneath a whole subtree: absent"
        );
        assert_eq!(cache.point(b"ab\0"), None, "outside it: unknown");
        assert!(cache.subtree(b"a\0b\0").is_some());
    }

    #[test]
    fn batches_update_what_is_known_and_only_that() {
        let mut cache = RecordCache::new(1 << 20);
        cache.learn_point(b"p\0", &records(&[]));
        cache.learn_subtree(b"a\0", &records(&[(b"a\0", 1)]));
        let mut overlay = Overlay::new();
        overlay.insert(b"p\0".to_vec(), Some(leaf(5)));
        overlay.insert(b"a\0".to_vec(), None);
        overlay.insert(b"a\0x\0".to_vec(), Some(leaf(6)));
        overlay.insert(b"q\0".to_vec(), Some(leaf(7)));
        cache.apply(&overlay);
        assert_eq!(cache.point(b"p\0"), Some(Some(&leaf(5))));
        assert_eq!(cache.point(b"a\0"), Some(None));
        assert_eq!(cache.point(b"a\0x\0"), Some(Some(&leaf(6))));
        assert_eq!(cache.point(b"q\0"), None, "never read: still unknown");
    }

    #[test]
    fn keys_are_admitted_when_read_again() {
        let mut cache = RecordCache::new(1 << 20);
        assert!(!cache.admit(b"a\0"));
        assert!(!cache.admit(b"b\0"));
        assert!(cache.admit(b"a\0"));
    }

    #[test]
    fn outgrowing_the_budget_clears_it() {
        let mut cache = RecordCache::new(300);
        cache.learn_subtree(b"a\0", &records(&[(b"a\0", 1), (b"a\0b\0", 2)]));
        cache.learn_subtree(b"c\0", &records(&[(b"c\0", 1), (b"c\0d\0", 2)]));
        assert!(cache.subtree(b"a\0").is_none() || cache.subtree(b"c\0").is_none());
    }
}
