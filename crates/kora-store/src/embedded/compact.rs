//! Compaction of the embedded store: forgetting tombstones and branch stamps older than a
//! horizon, and change-log entries older than a time.
//!
//! Candidates are found in a snapshot and rewritten in transactions of at most
//! [`COMPACT_CHUNK`] keys, each re-reading its records under the writer lock, so that
//! commits interleave with a long compaction instead of waiting for all of it, and a
//! record a commit changed in between is judged as it is now. The log is cut from its start
//! and `log_start` moves in the same transaction as each cut.

use std::ops::Bound;

use fjall::Readable;
use kora_core::records::Record;
use kora_core::Stamp;

use super::codec;
use super::engine::{Engine, LOG};
use super::read::{self, LOG_START};
use super::Shared;
use crate::error::StoreError;
use crate::store::Compacted;

/// Keys changed per compaction transaction: large enough that the fsync per transaction is
/// noise, small enough that a commit waits at most a few milliseconds behind one.
pub const COMPACT_CHUNK: usize = 4_096;

pub fn compact(
    shared: &Shared,
    horizon: Stamp,
    log_before_ms: u64,
) -> Result<Compacted, StoreError> {
    let mut report = Compacted::default();
    compact_records(&shared.engine, horizon, &mut report)?;
    compact_log(&shared.engine, log_before_ms, &mut report)?;
    Ok(report)
}

/// The record without what is older than `horizon`; `None` when nothing changes.
fn trimmed(record: &Record, horizon: Stamp) -> Option<Record> {
    let old = |s: Option<Stamp>| s.is_some_and(|s| s < horizon);
    if !old(record.tombstone) && !old(record.branch) {
        return None;
    }
    let keep = |s: Option<Stamp>| s.filter(|s| *s >= horizon);
    Some(Record {
        leaf: record.leaf.clone(),
        tombstone: keep(record.tombstone),
        branch: keep(record.branch),
    })
}

fn compact_records(e: &Engine, horizon: Stamp, report: &mut Compacted) -> Result<(), StoreError> {
    let snapshot = e.db.read_tx();
    let mut chunk = Vec::with_capacity(COMPACT_CHUNK);
    let everything = (Bound::Unbounded, Bound::Unbounded);
    read::scan_records(e, &snapshot, everything, false, |key, record| {
        if trimmed(&record, horizon).is_some() {
            chunk.push(key.to_vec());
        }
        if chunk.len() == COMPACT_CHUNK {
            rewrite(e, &std::mem::take(&mut chunk), horizon, report)?;
        }
        Ok(true)
    })?;
    rewrite(e, &chunk, horizon, report)
}

/// Trims the records at `keys` as they are now, in one transaction.
fn rewrite(
    e: &Engine,
    keys: &[Vec<u8>],
    horizon: Stamp,
    report: &mut Compacted,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut tx = e.write_tx();
    let (mut removed, mut rewritten) = (0, 0);
    for key in keys {
        let Some(now) = read::record(e, &tx, key)?.and_then(|r| trimmed(&r, horizon)) else {
            continue;
        };
        if now.is_empty() {
            tx.remove(&e.records, key.as_slice());
            removed += 1;
        } else {
            tx.insert(&e.records, key.as_slice(), codec::encode_record(&now));
            rewritten += 1;
        }
    }
    tx.commit().map_err(|x| e.error(x))?;
    report.records_removed += removed;
    report.records_rewritten += rewritten;
    Ok(())
}

/// Removes the log's prefix committed before `before_ms`.
fn compact_log(e: &Engine, before_ms: u64, report: &mut Compacted) -> Result<(), StoreError> {
    let snapshot = e.db.read_tx();
    let mut chunk = Vec::with_capacity(COMPACT_CHUNK);
    for guard in snapshot.iter(&e.log) {
        let (key, bytes) = guard.into_inner().map_err(|x| e.error(x))?;
        let committed = codec::log_committed_ms(&bytes).map_err(|x| e.corrupted(LOG, &key, x))?;
        if committed >= before_ms {
            break;
        }
        chunk.push(codec::decode_u64(&key).map_err(|x| e.corrupted(LOG, &key, x))?);
        if chunk.len() == COMPACT_CHUNK {
            cut_log(e, &std::mem::take(&mut chunk), report)?;
        }
    }
    cut_log(e, &chunk, report)
}

/// Deletes log entries `seqs` (consecutive, from the log's start) and moves `log_start`
/// past them.
fn cut_log(e: &Engine, seqs: &[u64], report: &mut Compacted) -> Result<(), StoreError> {
    let Some(last) = seqs.last() else {
        return Ok(());
    };
    let mut tx = e.write_tx();
    for seq in seqs {
        tx.remove(&e.log, codec::encode_u64(*seq));
    }
    tx.insert(&e.meta, LOG_START, codec::encode_u64(last + 1));
    tx.commit().map_err(|x| e.error(x))?;
    report.log_entries_removed += seqs.len() as u64;
    Ok(())
}
