//! The embedded store's committer: one durable fjall transaction per group of writes,
//! pipelined (see `crate::group::Pipeline`).
//!
//! - **stage** (batch N+1, on the blocking pool): read the batch's read set from a snapshot,
//!   lay over it the records of batches staged but not yet durable, apply the writes in
//!   memory (`crate::plan`), and encode what to write.
//! - **persist** (batch N, on the blocking pool at the same time): write the encoded
//!   records, change-log entries and outbox entries in one transaction and commit it with
//!   fsync; then answer the callers.
//!
//! So the CPU work of one batch overlaps the disk flush of the previous one. The committer
//! is the only writer of records and the log, so a snapshot plus the overlays is exactly
//! what the next batch would read once the previous one is durable.
//!
//! What a batch changes in memory — the durable last sequence, the outbox, the overlays —
//! changes only after its commit returned; a failed persist resets the pipeline, so a failed
//! batch leaves nothing behind and the next one is numbered right after the last durable one.

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fjall::Readable;
use kora_core::records::{ReadSet, Record, Records};
use kora_core::stamp::wall_millis;

use super::cache::RecordCache;
use super::codec;
use super::read;
use super::recent::{self, Batch, Kept, Recent, Split};
use super::{blocking, Shared};
use crate::condition::Window;
use crate::error::StoreError;
use crate::group::{Outcome, Persisting, Pipeline};
use crate::outbox::Entry;
use crate::plan::{oldest_since, plan, read_set, Plan};
use crate::store::{LogRead, Seq, Write};

/// Records read, in key order.
type Found = Vec<(Vec<u8>, Record)>;

/// The batches kept in memory (see `recent.rs`), shared with the persisting task.
type Shelf = Arc<Mutex<Kept>>;

/// The write side of the embedded store.
pub struct EmbeddedPipeline {
    shared: Arc<Shared>,
    kept: Shelf,
    /// What the committer last read and wrote (`cache.rs`); only staging uses it.
    cache: Arc<Mutex<RecordCache>>,
    /// The last sequence staged (durable or not): the committer's alone.
    staged_seq: Seq,
}

impl EmbeddedPipeline {
    pub fn new(shared: Arc<Shared>) -> Self {
        let staged_seq = shared.durable_seq();
        let budget = shared.engine.tuning.record_cache_bytes;
        EmbeddedPipeline {
            shared,
            kept: Shelf::default(),
            cache: Arc::new(Mutex::new(RecordCache::new(budget))),
            staged_seq,
        }
    }

    fn kept(&self) -> Result<std::sync::MutexGuard<'_, Kept>, StoreError> {
        self.kept
            .lock()
            .map_err(|_| StoreError::Internal("commit pipeline lock poisoned".into()))
    }
}

/// A batch ready to be written: everything encoded.
pub struct Staged {
    outcomes: Vec<Outcome>,
    /// The sequences it takes.
    count: usize,
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    log: Vec<([u8; 8], Vec<u8>)>,
    entries: Vec<Entry>,
    batch: Arc<Batch>,
}

#[async_trait]
impl Pipeline for EmbeddedPipeline {
    type Staged = Staged;

    async fn stage(&mut self, writes: Vec<Write>) -> Result<Staged, StoreError> {
        let effects = writes.iter().map(|w| w.effects.len()).sum();
        let first_id = match effects {
            0 => 0,
            n => self.shared.outbox()?.reserve_ids(n),
        };
        let kept = self.kept()?.split();
        let (shared, last, cache) = (self.shared.clone(), self.staged_seq, self.cache.clone());
        let staged = blocking(move || {
            let mut cache = cache
                .lock()
                .map_err(|_| StoreError::Internal("record cache lock poisoned".into()))?;
            stage(&shared, &kept, &mut cache, &writes, last, first_id)
        })
        .await?;
        self.staged_seq += staged.count as Seq;
        self.kept()?.stage(staged.batch.clone());
        Ok(staged)
    }

    fn persist(&self, staged: Staged) -> Persisting {
        let (shared, kept) = (self.shared.clone(), self.kept.clone());
        Box::pin(async move {
            let batch = staged.batch.clone();
            let outcomes = blocking(move || persist(&shared, staged)).await?;
            if let Ok(mut kept) = kept.lock() {
                kept.durable(&batch);
            }
            Ok(outcomes)
        })
    }

    fn reset(&mut self) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.reset();
        }
        // The cache holds what was staged: some of it never became durable.
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        self.staged_seq = self.shared.durable_seq();
    }
}

/// Plans a batch numbered after `last`, on a snapshot with the kept batches not yet durable
/// laid over it.
fn stage(
    shared: &Shared,
    kept: &Split,
    cache: &mut RecordCache,
    writes: &[Write],
    last: Seq,
    first_id: u64,
) -> Result<Staged, StoreError> {
    let e = &shared.engine;
    let compactions = shared
        .compactions
        .load(std::sync::atomic::Ordering::Acquire);
    if cache.compactions != compactions {
        cache.clear();
        cache.compactions = compactions;
    }
    let snapshot = e.db.read_tx();
    let records = load(shared, &snapshot, &read_set(writes), &kept.in_flight, cache)?;
    let history = history(shared, &snapshot, writes, last, &kept.all)?;
    let plan = plan(records, writes, last, &history);
    let entries = new_entries(&plan, writes, first_id);
    let staged = encode(plan, entries, last);
    cache.apply(&staged.batch.overlay);
    Ok(staged)
}

/// What a batch's `Unchanged` conditions are checked against: the kept batches' overlays, and
/// the change log from the snapshot for whatever reaches back before them.
fn history(
    shared: &Shared,
    snapshot: &impl Readable,
    writes: &[Write],
    last: Seq,
    kept: &[Arc<Batch>],
) -> Result<Recent, StoreError> {
    let covered = Kept::covered_from(kept, last);
    let Some(mut from) = Window::start(oldest_since(writes), last).filter(|f| *f < covered) else {
        let log = recent::log_window(covered, Vec::new());
        return Ok(Recent {
            log,
            batches: kept.to_vec(),
        });
    };
    // Everything up to `covered` is durable (what is in flight is kept): in the snapshot.
    let e = &shared.engine;
    let limit = (covered - from) as usize;
    let changes = match read::changes(e, snapshot, from, limit)? {
        LogRead::Changes(changes) => changes,
        LogRead::Compacted { oldest } => {
            from = oldest - 1;
            match read::changes(e, snapshot, from, limit)? {
                LogRead::Changes(changes) => changes,
                LogRead::Compacted { .. } => Vec::new(),
            }
        }
    };
    let changes = changes
        .into_iter()
        .filter(|c| c.seq <= covered)
        .map(|c| (c.seq, c.mutation))
        .collect();
    Ok(Recent {
        log: recent::log_window(from, changes),
        batches: kept.to_vec(),
    })
}

/// Encodes a plan's records and change-log entries; `last` is the sequence before it.
fn encode(plan: Plan, entries: Vec<Entry>, last: Seq) -> Staged {
    let count = plan.count();
    let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = plan
        .upserts
        .iter()
        .map(|(key, record)| (key.clone(), Some(codec::encode_record(record))))
        .chain(plan.deletes.iter().map(|key| (key.clone(), None)))
        .collect();
    let commits = plan.outcomes.iter().filter_map(|o| o.as_ref().ok());
    let log = commits
        .clone()
        .zip(&plan.log)
        .map(|(commit, row)| {
            let value = codec::encode_log(commit.stamp, row.committed_ms as u64, &row.mutation);
            (codec::encode_u64(commit.seq), value)
        })
        .collect();
    let bytes = records_bytes(&records);
    let overlay = plan
        .upserts
        .into_iter()
        .map(|(key, record)| (key, Some(record)))
        .chain(plan.deletes.into_iter().map(|key| (key, None)))
        .collect();
    Staged {
        outcomes: plan.outcomes,
        count,
        records,
        log,
        entries,
        batch: Arc::new(Batch {
            overlay,
            first: last + 1,
            last: last + count as Seq,
            bytes,
        }),
    }
}

/// The encoded size of a batch's records (what the kept batches are bounded by).
fn records_bytes(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
    records
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
        .sum()
}

/// Writes a staged batch in one durable transaction.
fn persist(shared: &Shared, staged: Staged) -> Result<Vec<Outcome>, StoreError> {
    let e = &shared.engine;
    let mut tx = e.write_tx();
    for (key, value) in staged.records {
        match value {
            Some(value) => tx.insert(&e.records, key, value),
            None => tx.remove(&e.records, key),
        }
    }
    for (key, value) in staged.log {
        tx.insert(&e.log, key, value);
    }
    for entry in &staged.entries {
        let key = codec::encode_u64(entry.effect.id);
        tx.insert(&e.outbox, key, codec::encode_entry(entry));
    }
    tx.commit().map_err(|x| e.error(x))?;
    let Some(last) = staged.outcomes.iter().rev().find_map(|o| o.as_ref().ok()) else {
        return Ok(staged.outcomes); // every write was refused: nothing was written
    };
    let last = last.seq;
    shared.watermark.record(last);
    if !staged.entries.is_empty() {
        let mut outbox = shared.outbox()?;
        staged
            .entries
            .into_iter()
            .for_each(|entry| outbox.insert(entry));
    }
    shared.publish_seq(last);
    Ok(staged.outcomes)
}

/// How many records outside a group of sibling subtrees one range scan over the group may
/// pass before it is abandoned for one scan per subtree. A mutation writing several fields
/// of one object reads them in one scan; two writes far apart under one parent (`todos/a`
/// and `todos/z`) waste at most this many records before falling back.
pub const SCAN_SLACK: usize = 64;

/// Reads a batch's read set: from the committer's cache what it knows, the rest from the
/// snapshot — each subtree as a range that starts at its own key (a path's key sorts first in
/// its subtree), sibling subtrees in one range, and the single records no subtree covers:
/// fewer, larger reads, as starting an LSM lookup costs about as much as starting a range
/// scan. Then the overlays of batches not yet durable, oldest first, replace what they
/// changed; the cache learns what was read.
fn load(
    shared: &Shared,
    r: &impl Readable,
    set: &ReadSet,
    in_flight: &[Arc<Batch>],
    cache: &mut RecordCache,
) -> Result<Records, StoreError> {
    let e = &shared.engine;
    let mut records = Records::new();
    let subtrees = set.outer_subtrees();
    let mut missed_points = Vec::new();
    for key in set.points.iter().filter(|k| !covered(&subtrees, k)) {
        match cache.point(key) {
            Some(known) => {
                if let Some(record) = known {
                    records.load(key.clone(), record.clone());
                }
            }
            None => {
                if let Some(record) = read::record(e, r, key)? {
                    records.load(key.clone(), record);
                }
                missed_points.push(key);
            }
        }
    }
    let mut missed: Vec<&[u8]> = Vec::new();
    for root in &subtrees {
        match cache.subtree(root) {
            Some(known) => known.for_each(|(k, r)| records.load(k.clone(), r.clone())),
            None => missed.push(root),
        }
    }
    for group in missed.chunk_by(|a, b| parent(a) == parent(b) && !a.is_empty()) {
        for (key, record) in scan_group(shared, r, group)? {
            records.load(key, record);
        }
    }
    for batch in in_flight {
        for (key, record) in batch.overlay.iter() {
            if set.points.contains(key) || covered(&subtrees, key) {
                // An empty record stands for none: `Records` treats the two alike.
                records.load(key.clone(), record.clone().unwrap_or_default());
            }
        }
    }
    for key in missed_points {
        if cache.admit(key) {
            cache.learn_point(key, &records);
        }
    }
    for root in missed {
        if cache.admit(root) {
            cache.learn_subtree(root, &records);
        }
    }
    Ok(records)
}

/// The key of a key's parent path (the root's is itself).
fn parent(key: &[u8]) -> &[u8] {
    let body = key
        .strip_suffix(&[kora_core::key::TERMINATOR])
        .unwrap_or(key);
    match body.iter().rposition(|b| *b == kora_core::key::TERMINATOR) {
        Some(i) => &key[..=i],
        None => &[],
    }
}

/// The records in sibling subtrees `group`: one scan across them, or one per subtree when
/// too much lies between.
fn scan_group(shared: &Shared, r: &impl Readable, group: &[&[u8]]) -> Result<Found, StoreError> {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return Ok(Vec::new());
    };
    if group.len() > 1 {
        if let Some(found) = scan_range(shared, r, first, last, Some(group))? {
            return Ok(found);
        }
    }
    let mut found = Vec::new();
    for key in group {
        found.extend(scan_range(shared, r, key, key, None)?.unwrap_or_default());
    }
    Ok(found)
}

/// The records from `first`'s subtree to the end of `last`'s; with `only`, just those in its
/// subtrees, and `None` once more than [`SCAN_SLACK`] others were passed.
fn scan_range(
    shared: &Shared,
    r: &impl Readable,
    first: &[u8],
    last: &[u8],
    only: Option<&[&[u8]]>,
) -> Result<Option<Found>, StoreError> {
    let end = kora_core::key::subtree_end(last).map_or(Bound::Unbounded, Bound::Excluded);
    let range = (Bound::Included(first.to_vec()), end);
    let (mut found, mut passed) = (Vec::new(), 0);
    read::scan_records(&shared.engine, r, range, false, |key, record| {
        if only.is_none_or(|subtrees| covered(subtrees, key)) {
            found.push((key.to_vec(), record));
        } else {
            passed += 1;
        }
        Ok(passed <= SCAN_SLACK)
    })?;
    Ok((passed <= SCAN_SLACK).then_some(found))
}

/// True when `key` lies in one of the (sorted, disjoint) subtrees.
fn covered(subtrees: &[&[u8]], key: &[u8]) -> bool {
    let after = subtrees.partition_point(|s| *s <= key);
    after > 0 && key.starts_with(subtrees[after - 1])
}

/// The outbox entries of a batch's committed writes' effects, with ids from `first_id` on.
fn new_entries(plan: &Plan, writes: &[Write], first_id: u64) -> Vec<Entry> {
    let now = wall_millis();
    let mut id = first_id;
    let mut out = Vec::new();
    for (write, commit) in plan.committed(writes) {
        for effect in &write.effects {
            out.push(Entry::new(id, commit.seq, effect.clone(), now));
            id += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_of_keys() {
        assert_eq!(parent(b"a\0b\0c\0"), b"a\0b\0");
        assert_eq!(parent(b"a\0"), b"");
        assert_eq!(parent(b""), b"");
    }

    #[test]
    fn keys_covered_by_subtrees() {
        let subtrees: Vec<&[u8]> = vec![b"a\0b\0", b"a\0d\0", b"c\0"];
        for inside in [&b"a\0b\0"[..], b"a\0b\0x\0", b"a\0d\0", b"c\0z\0y\0"] {
            assert!(covered(&subtrees, inside), "{inside:?}");
        }
        for outside in [&b""[..], b"a\0", b"a\0bb\0", b"a\0c\0", b"b\0", b"d\0"] {
            assert!(!covered(&subtrees, outside), "{outside:?}");
        }
        assert!(covered(&[&b""[..]], b"a\0"), "the root covers everything");
    }
}
