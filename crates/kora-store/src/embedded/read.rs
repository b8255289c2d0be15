//! Reading the embedded store: records, query answers, the change log and the sequence
//! bookkeeping, from anything fjall can read consistently — a snapshot for readers, the
//! write transaction for the committer.
//!
//! The last sequence is not stored on every commit (that would rewrite one hot key per
//! batch): it is the change log's last key, or `log_start - 1` once compaction has emptied
//! the log. `log_start` lives in `meta` and changes only when the log is compacted.

use std::ops::Bound;

use fjall::Readable;
use kora_core::records::{Assembler, Record};
use kora_core::{Path, PathQuery, Value};

use super::codec;
use super::engine::{Engine, LOG, META, RECORDS};
use crate::error::StoreError;
use crate::store::{LogRead, Page, Seq};

/// The `meta` key of the first sequence still in the change log.
pub const LOG_START: &[u8] = b"log_start";

/// The record at `key`, if any.
pub fn record(e: &Engine, r: &impl Readable, key: &[u8]) -> Result<Option<Record>, StoreError> {
    let Some(bytes) = r.get(&e.records, key).map_err(|x| e.error(x))? else {
        return Ok(None);
    };
    codec::decode_record(&bytes)
        .map(Some)
        .map_err(|x| e.corrupted(RECORDS, key, x))
}

/// Visits the records in `range`, in key order or reversed, until `visit` returns false.
pub fn scan_records(
    e: &Engine,
    r: &impl Readable,
    range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    reverse: bool,
    mut visit: impl FnMut(&[u8], Record) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let iter = r.range(&e.records, range);
    let iter: Box<dyn Iterator<Item = fjall::Guard>> = if reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    for guard in iter {
        let (key, bytes) = guard.into_inner().map_err(|x| e.error(x))?;
        let record = codec::decode_record(&bytes).map_err(|x| e.corrupted(RECORDS, &key, x))?;
        if !visit(&key, record)? {
            break;
        }
    }
    Ok(())
}

/// The answer to one path query.
pub fn select(
    e: &Engine,
    r: &impl Readable,
    part: &PathQuery,
) -> Result<Option<Value>, StoreError> {
    let mut asm = Assembler::new(part);
    if let Some(own) = record(e, r, asm.key())? {
        if asm.push_own(&own) {
            return Ok(asm.finish());
        }
    }
    let (start, end) = asm.children_range();
    let range = (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    );
    scan_records(e, r, range, part.reverse, |key, record| {
        asm.push(key, &record)
            .map_err(|x| e.corrupted(RECORDS, key, x))
    })?;
    Ok(asm.finish())
}

/// A page of the leaves beneath a path (see `Store::leaves`).
pub fn leaves(
    e: &Engine,
    r: &impl Readable,
    page: Page<'_>,
) -> Result<Vec<(Path, Value)>, StoreError> {
    let mut out = Vec::new();
    scan_page(e, r, page, |key, record| {
        if let Some(leaf) =
            crate::plan::leaf_of(key, record).map_err(|x| e.corrupted(RECORDS, key, x))?
        {
            out.push(leaf);
        }
        Ok(out.len() < page.limit)
    })?;
    Ok(out)
}

/// A page of the records beneath a path, with their paths (see `Store::records`).
pub fn records(
    e: &Engine,
    r: &impl Readable,
    page: Page<'_>,
) -> Result<Vec<(Path, Record)>, StoreError> {
    let mut out = Vec::new();
    scan_page(e, r, page, |key, record| {
        let path = kora_core::key::decode(key).map_err(|x| e.corrupted(RECORDS, key, x))?;
        out.push((path, record));
        Ok(out.len() < page.limit)
    })?;
    Ok(out)
}

/// Visits the records of `page` in key order until `visit` returns false (nothing when its
/// limit is 0).
fn scan_page(
    e: &Engine,
    r: &impl Readable,
    page: Page<'_>,
    visit: impl FnMut(&[u8], Record) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    if page.limit == 0 {
        return Ok(());
    }
    let (lower, end) = crate::plan::leaf_range(page.under, page.after);
    let range = (lower, end.map_or(Bound::Unbounded, Bound::Excluded));
    scan_records(e, r, range, false, visit)
}

/// The first sequence still in the change log (1 until a compaction removes entries).
pub fn log_start(e: &Engine, r: &impl Readable) -> Result<Seq, StoreError> {
    match r.get(&e.meta, LOG_START).map_err(|x| e.error(x))? {
        Some(bytes) => codec::decode_u64(&bytes).map_err(|x| e.corrupted(META, LOG_START, x)),
        None => Ok(1),
    }
}

/// The last committed sequence.
pub fn last_seq(e: &Engine, r: &impl Readable) -> Result<Seq, StoreError> {
    let after_compaction = log_start(e, r)?.saturating_sub(1);
    let Some(guard) = r.last_key_value(&e.log) else {
        return Ok(after_compaction);
    };
    let key = guard.key().map_err(|x| e.error(x))?;
    let last = codec::decode_u64(&key).map_err(|x| e.corrupted(LOG, &key, x))?;
    Ok(last.max(after_compaction))
}

/// Up to `limit` change-log entries after `after`, or where the log now starts.
pub fn changes(
    e: &Engine,
    r: &impl Readable,
    after: Seq,
    limit: usize,
) -> Result<LogRead, StoreError> {
    let start = log_start(e, r)?;
    if after + 1 < start {
        return Ok(LogRead::Compacted { oldest: start });
    }
    let mut out = Vec::with_capacity(limit.min(4_096));
    for guard in r.range(&e.log, codec::encode_u64(after + 1)..).take(limit) {
        let (key, bytes) = guard.into_inner().map_err(|x| e.error(x))?;
        let seq = codec::decode_u64(&key).map_err(|x| e.corrupted(LOG, &key, x))?;
        out.push(codec::decode_log(seq, &bytes).map_err(|x| e.corrupted(LOG, &key, x))?);
    }
    Ok(LogRead::Changes(out))
}

/// How many records are stored (a full scan of keys: for statistics only).
pub fn count_records(e: &Engine, r: &impl Readable) -> Result<u64, StoreError> {
    let mut n = 0;
    for guard in r.iter(&e.records) {
        guard.key().map_err(|x| e.error(x))?;
        n += 1;
    }
    Ok(n)
}
