//! Planning a batch, shared by every backend that keeps flat records (embedded, PostgreSQL,
//! MySQL): name the batch's read set, apply its writes in memory with
//! `kora_core::records::Records`, and list what to write. No I/O here; each backend loads the
//! read set and writes the plan in its own transaction.

use std::ops::Bound;

use kora_core::records::{ReadSet, Record, Records};
use kora_core::stamp::wall_millis;
use kora_core::{Mutation, Path, Value};

use crate::condition::{self, Condition, Conflict, History};
use crate::group::Outcome;
use crate::store::{Commit, Seq, Write};

/// The read set of a batch: what its writes need, and the value of every path an `Equals`
/// condition names.
pub fn read_set(writes: &[Write]) -> ReadSet {
    let mut set = ReadSet::default();
    for write in writes {
        set.add(&write.mutation);
        for condition in &write.conditions {
            if let Condition::Equals { path, .. } = condition {
                set.add_value(path);
            }
        }
    }
    set
}

/// The oldest `since` of a batch's `Unchanged` conditions: where its log window starts.
pub fn oldest_since(writes: &[Write]) -> Option<Seq> {
    condition::oldest_since(writes.iter().flat_map(|w| &w.conditions))
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

/// A planned batch: each write's outcome, the record changes and the log rows to write.
pub struct Plan {
    /// One per write, in order: its commit, or why its conditions refused it.
    pub outcomes: Vec<Outcome>,
    pub upserts: Vec<(Vec<u8>, Record)>,
    pub deletes: Vec<Vec<u8>>,
    /// One per commit, in order.
    pub log: Vec<LogRow>,
}

impl Plan {
    /// The writes that commit, each with its commit, in order.
    pub fn committed<'a>(
        &'a self,
        writes: &'a [Write],
    ) -> impl Iterator<Item = (&'a Write, &'a Commit)> + 'a {
        writes
            .iter()
            .zip(&self.outcomes)
            .filter_map(|(write, outcome)| outcome.as_ref().ok().map(|commit| (write, commit)))
    }

    /// How many writes commit (the sequences the batch takes).
    pub fn count(&self) -> usize {
        self.log.len()
    }
}

/// A change-log row to insert.
pub struct LogRow {
    pub seq: i64,
    pub stamp: Vec<u8>,
    pub committed_ms: i64,
    pub mutation: String,
}

/// Applies a batch to records loaded through its read set, numbering commits after
/// `last_seq`. Each write's conditions are checked first, against the records as the earlier
/// writes left them and against `history` (the commits after the batch's oldest `since`).
pub fn plan(mut records: Records, writes: &[Write], last_seq: Seq, history: &dyn History) -> Plan {
    let now = wall_millis() as i64;
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut log = Vec::with_capacity(writes.len());
    // The effects of this batch's commits, for `Unchanged` conditions of the later writes.
    let keep_effects = oldest_since(writes).is_some();
    let mut batch: Vec<(Seq, Mutation)> = Vec::new();
    let mut seq = last_seq;
    for write in writes {
        let mut stamp = write.stamp;
        if !write.conditions.is_empty() {
            let failed = condition::check(
                &write.conditions,
                |path| records.value_at(path),
                history,
                &batch,
            );
            if !failed.is_empty() {
                outcomes.push(Err(Conflict { failed, seq }));
                continue;
            }
        }
        // Only when something loaded might be newer (a server stamp rarely is) does it look
        // at what this write overwrites.
        if write.ordered_by_commit() && records.newest_ever() >= Some(stamp) {
            let newest = records.newest_stamp(&kora_core::records::read_set(&write.mutation));
            stamp = condition::stamp_above(stamp, newest);
        }
        seq += 1;
        let effect = records.apply(stamp, &write.mutation);
        log.push(LogRow {
            seq: seq as i64,
            stamp: stamp.to_bytes().to_vec(),
            committed_ms: now,
            mutation: serde_json::to_string(&effect).unwrap_or_default(),
        });
        if keep_effects {
            batch.push((seq, effect.clone()));
        }
        outcomes.push(Ok(Commit { seq, stamp, effect }));
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
        outcomes,
        upserts,
        deletes,
        log,
    }
}
