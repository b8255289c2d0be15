//! Planning a batch, shared by every backend that keeps flat records (embedded, PostgreSQL,
//! MySQL): name the batch's read set, apply its writes in memory with
//! `kora_core::records::Records`, and list what to write. No I/O here; each backend loads the
//! read set and writes the plan in its own transaction.

use std::ops::Bound;

use kora_core::records::{ReadSet, Record, Records};
use kora_core::stamp::wall_millis;
use kora_core::{Path, Value};

use crate::store::{Commit, Seq, Write};

/// The read set of a batch.
pub fn read_set(writes: &[Write]) -> ReadSet {
    let mut set = ReadSet::default();
    for write in writes {
        set.add(&write.mutation);
    }
    set
}

/// The ranges of a read set's subtrees: `(after, before)`, both exclusive, `before` absent
/// for the root's subtree.
pub fn subtree_ranges(set: &ReadSet) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    set.outer_subtrees()
        .into_iter()
        .map(|k| (k.to_vec(), kora_core::key::subtree_end(k)))
        .collect()
}

/// The key range of a page of leaves (see `Store::leaves`): from `under`'s own key
/// (inclusive) or past `after` (exclusive), whichever is later, to the end of `under`'s
/// subtree (`None`: unbounded).
pub fn leaf_range(under: &Path, after: Option<&Path>) -> (Bound<Vec<u8>>, Option<Vec<u8>>) {
    let start = kora_core::key::encode(under);
    let end = kora_core::key::subtree_end(&start);
    let lower = match after.map(kora_core::key::encode) {
        Some(after) if after >= start => Bound::Excluded(after),
        _ => Bound::Included(start),
    };
    (lower, end)
}

/// A leaf record's path and value, or `None` for a record without a leaf.
pub fn leaf_of(
    key: &[u8],
    record: Record,
) -> Result<Option<(Path, Value)>, kora_core::key::KeyError> {
    match record.leaf {
        Some((_, value)) => Ok(Some((kora_core::key::decode(key)?, value))),
        None => Ok(None),
    }
}

/// A planned batch: the commits, the record changes and the log rows to write.
pub struct Plan {
    pub commits: Vec<Commit>,
    pub upserts: Vec<(Vec<u8>, Record)>,
    pub deletes: Vec<Vec<u8>>,
    pub log: Vec<LogRow>,
}

/// A change-log row to insert.
pub struct LogRow {
    pub seq: i64,
    pub stamp: Vec<u8>,
    pub committed_ms: i64,
    pub mutation: String,
}

/// Applies a batch to records loaded through its read set, numbering commits after
/// `last_seq`.
pub fn plan(mut records: Records, writes: &[Write], last_seq: Seq) -> Plan {
    let now = wall_millis() as i64;
    let mut commits = Vec::with_capacity(writes.len());
    let mut log = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        let seq = last_seq + 1 + i as u64;
        let effect = records.apply(write.stamp, &write.mutation);
        log.push(LogRow {
            seq: seq as i64,
            stamp: write.stamp.to_bytes().to_vec(),
            committed_ms: now,
            mutation: serde_json::to_string(&effect).unwrap_or_default(),
        });
        commits.push(Commit {
            seq,
            stamp: write.stamp,
            effect,
        });
    }
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (key, record) in records.take_changes() {
        match record {
            Some(record) => upserts.push((key, record)),
            None => deletes.push(key),
        }
    }
    Plan {
        commits,
        upserts,
        deletes,
        log,
    }
}
