//! What the SQL backends share: the table layout, turning rows into records and back, and
//! planning a batch with `kora_core::records`, and the outbox's statements (`outbox.rs`).
//! Each dialect (`postgres.rs`, `mysql.rs`) writes its own commit, read and claim statements.
//!
//! Tables (prefix `kora_`):
//!
//! | table | columns | purpose |
//! |---|---|---|
//! | `kora_schema` | version, applied_ms | versioned migrations applied |
//! | `kora_records` | path_key, leaf_stamp, leaf, tombstone, branch | one record per path; `path_key` is `kora_core::key`'s encoding, so a subtree is one index range |
//! | `kora_log` | seq, stamp, committed_ms, mutation | the change log: each commit's effect |
//! | `kora_meta` | name, value | `last_seq` (its row lock serialises writers) and `log_start` |
//! | `kora_outbox` | id, seq, kind, payload, attempts, next_at_ms, lease_until_ms, last_error, dead | effects to run |
//!
//! Every batch transaction first locks the `last_seq` row. Writers are therefore serialised
//! per database — across every Kora node sharing it — which is what makes sequence numbers
//! global and gap-free in commit order: a reader never sees sequence N+1 before N. Group
//! commit is what keeps that fast: one transaction carries every write waiting on a node.

pub mod mysql;
pub mod outbox;
pub mod postgres;

use kora_core::records::Record;
use kora_core::{Mutation, Path, Stamp, Value};

use crate::error::StoreError;
use crate::retry::Transient;
use crate::store::{Change, Effect, EffectState, Page, Write};

pub use crate::plan::{plan, read_set, subtree_ranges, LogRow, Plan};

pub use crate::retry::{CONNECT_RETRY_FOR, FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE};

/// A key greater than every path key, for an unbounded range end: keys are UTF-8 segments
/// and `0x00` terminators, and UTF-8 never contains the byte `0xFF`. A bound that is always
/// there keeps range conditions sargable (`path_key < $2` is an index range; `$2 IS NULL OR
/// path_key < $2` made PostgreSQL scan to the end of the table).
pub const KEY_CEILING: &[u8] = &[0xFF];

/// Rows fetched per round trip when reading a range.
pub const READ_PAGE: i64 = 1_000;

/// Pooled connections per store: writers use one at a time (they are serialised), readers
/// and the effect runner share the rest.
pub const POOL_SIZE: u32 = 16;

pub const RECORD_COLUMNS: &str = "path_key, leaf_stamp, leaf, tombstone, branch";

pub const EFFECT_COLUMNS: &str = "id, seq, kind, payload, attempts, next_at_ms, last_error, dead";

/// A row of `kora_outbox`.
pub type EffectRow = (i64, i64, String, String, i32, i64, Option<String>, bool);

fn effect_from(row: EffectRow) -> Result<Effect, StoreError> {
    let (id, seq, kind, payload, attempts, next_at_ms, last_error, dead) = row;
    Ok(Effect {
        id: id as u64,
        seq: seq as u64,
        kind,
        payload: parse_json(&payload)?,
        attempts: attempts as u32,
        next_at_ms: next_at_ms as u64,
        last_error,
        state: if dead {
            EffectState::Dead
        } else {
            EffectState::Pending
        },
    })
}

/// Effect rows as effects, by id.
pub fn effects_from(rows: Vec<EffectRow>) -> Result<Vec<Effect>, AttemptError> {
    let mut effects = rows
        .into_iter()
        .map(effect_from)
        .collect::<Result<Vec<_>, _>>()?;
    effects.sort_by_key(|e| e.id);
    Ok(effects)
}

/// `NoSuchEffect` when a statement about effect `id` touched no row.
pub fn found(id: u64, rows: u64) -> Result<(), AttemptError> {
    if rows == 0 {
        return Err(StoreError::NoSuchEffect(id).into());
    }
    Ok(())
}

/// Adds a page of rows to an answer; `false` once the answer needs no more rows.
pub fn push_rows(
    asm: &mut kora_core::records::Assembler<'_>,
    rows: Vec<RecordRow>,
    cursor: &mut Option<Vec<u8>>,
) -> Result<bool, AttemptError> {
    for row in rows {
        let (key, record) = record_from(row)?;
        let more = asm
            .push(&key, &record)
            .map_err(|e| StoreError::Corrupted(format!("a stored key: {e}")))?;
        if !more {
            return Ok(false);
        }
        *cursor = Some(key);
    }
    Ok(true)
}

/// A row of `kora_records`.
pub type RecordRow = (
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

pub fn stamp_from(bytes: Option<Vec<u8>>) -> Result<Option<Stamp>, StoreError> {
    bytes
        .map(|b| {
            let fixed: [u8; 16] = b
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupted(format!("a stamp of {} bytes", b.len())))?;
            Ok(Stamp::from_bytes(fixed))
        })
        .transpose()
}

/// A page of leaves (see `Store::leaves`) as one statement: its SQL, with `marks` as the
/// placeholders of the lower key, the upper key and the limit, and the values to bind.
pub fn leaves_statement(page: Page<'_>, marks: [&str; 3]) -> (String, Vec<u8>, Vec<u8>, i64) {
    range_statement(page, marks, "AND leaf IS NOT NULL")
}

/// [`leaves_statement`] for every record, leaf or not.
pub fn records_statement(page: Page<'_>, marks: [&str; 3]) -> (String, Vec<u8>, Vec<u8>, i64) {
    range_statement(page, marks, "")
}

fn range_statement(
    page: Page<'_>,
    marks: [&str; 3],
    only: &str,
) -> (String, Vec<u8>, Vec<u8>, i64) {
    let (lower, end) = crate::plan::leaf_range(page.under, page.after);
    let (op, lower) = match lower {
        std::ops::Bound::Excluded(key) => (">", key),
        std::ops::Bound::Included(key) => (">=", key),
        std::ops::Bound::Unbounded => (">=", Vec::new()),
    };
    let [low, high, count] = marks;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM kora_records
         WHERE path_key {op} {low} AND path_key < {high} {only}
         ORDER BY path_key LIMIT {count}"
    );
    let end = end.unwrap_or_else(|| KEY_CEILING.to_vec());
    (
        sql,
        lower,
        end,
        i64::try_from(page.limit).unwrap_or(i64::MAX),
    )
}

/// The leaves among rows read in key order.
pub fn leaves_from(rows: Vec<RecordRow>) -> Result<Vec<(Path, Value)>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (key, record) = record_from(row)?;
        let leaf = crate::plan::leaf_of(&key, record)
            .map_err(|e| StoreError::Corrupted(format!("record key {key:?}: {e}")))?;
        out.extend(leaf);
    }
    Ok(out)
}

/// The records among rows read in key order, with their paths.
pub fn records_from(rows: Vec<RecordRow>) -> Result<Vec<(Path, Record)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let (key, record) = record_from(row)?;
            let path = kora_core::key::decode(&key)
                .map_err(|e| StoreError::Corrupted(format!("record key {key:?}: {e}")))?;
            Ok((path, record))
        })
        .collect()
}

pub fn record_from(row: RecordRow) -> Result<(Vec<u8>, Record), StoreError> {
    let (key, leaf_stamp, leaf, tombstone, branch) = row;
    let leaf = match (stamp_from(leaf_stamp)?, leaf) {
        (Some(stamp), Some(text)) => Some((stamp, parse_json(&text)?)),
        (None, None) => None,
        _ => return Err(StoreError::Corrupted("a leaf without its stamp".into())),
    };
    Ok((
        key,
        Record {
            leaf,
            tombstone: stamp_from(tombstone)?,
            branch: stamp_from(branch)?,
        },
    ))
}

/// The columns of a record to write.
pub struct RecordColumns {
    pub leaf_stamp: Option<Vec<u8>>,
    pub leaf: Option<String>,
    pub tombstone: Option<Vec<u8>>,
    pub branch: Option<Vec<u8>>,
}

pub fn record_columns(record: &Record) -> RecordColumns {
    RecordColumns {
        leaf_stamp: record.leaf.as_ref().map(|(s, _)| s.to_bytes().to_vec()),
        leaf: record.leaf.as_ref().map(|(_, v)| v.to_string()),
        tombstone: record.tombstone.map(|s| s.to_bytes().to_vec()),
        branch: record.branch.map(|s| s.to_bytes().to_vec()),
    }
}

pub fn parse_json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupted(format!("stored JSON: {e}")))
}

pub fn change_from(seq: i64, stamp: Vec<u8>, mutation: &str) -> Result<Change, StoreError> {
    let stamp = stamp_from(Some(stamp))?.unwrap_or_default();
    let value = parse_json(mutation)?;
    let mutation = Mutation::from_json(&value)
        .map_err(|e| StoreError::Corrupted(format!("logged mutation: {e}")))?;
    Ok(Change {
        seq: seq as u64,
        stamp,
        mutation,
    })
}

/// Checks every path key of a batch against a backend's index limit, so that one write too
/// large for it fails alone instead of failing its batch.
pub fn check_key_lengths(write: &Write, limit: usize) -> Result<(), StoreError> {
    let set = kora_core::records::read_set(&write.mutation);
    match set.points.iter().map(Vec::len).max() {
        Some(size) if size > limit => Err(StoreError::TooLarge {
            what: "an encoded path",
            size,
            limit,
        }),
        _ => Ok(()),
    }
}

/// True for errors worth retrying: the connection, not the statement, failed.
/// Whether a TLS failure is the server's certificate being refused (anywhere in its causes).
fn rejects_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(rustls::Error::InvalidCertificate(_)) = error.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| rejects_certificate(inner)) {
                return true;
            }
        }
        cause = error.source();
    }
    false
}

impl Transient for sqlx::Error {
    fn is_transient(&self) -> bool {
        is_transient(self)
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        // A certificate the client does not accept stays unaccepted: say so now, rather than
        // after retrying for `CONNECT_RETRY_FOR`.
        sqlx::Error::Tls(tls) => !rejects_certificate(tls.as_ref()),
        sqlx::Error::Io(io) => !rejects_certificate(io),
        sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL connection exceptions (08xxx), admin shutdown (57P0x), serialization
            // failures and deadlocks; MySQL lock wait timeout and deadlock.
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
                // Too many connections (PostgreSQL, MySQL): others will close theirs.
                || code == "53300"
                || code == "08004"
                || code == "1040"
                || code == "1205"
                || code == "1213"
        }),
        _ => false,
    }
}

/// A failure inside a database attempt: the database's, or one of Kora's own checks.
pub type AttemptError = crate::retry::AttemptError<sqlx::Error>;

impl From<sqlx::Error> for AttemptError {
    fn from(error: sqlx::Error) -> Self {
        crate::retry::AttemptError::Db(error)
    }
}

pub use crate::retry::{with_retries, Gate};
