//! The change log and its sequence.
//!
//! The whole log is one partition of `kora_log` (bucket 0), whose static column `last` is
//! the sequence of the newest commit. A commit batch appends its rows with one conditional
//! batch on that partition — each row `UPDATE … IF last = S`, setting `last = S + n` — so
//! allocating the sequence numbers and writing the log rows are one Paxos round: either the
//! batch's rows are all in the log, numbered densely after S, or none is. Two Kora nodes
//! that plan on the same S race at Paxos; exactly one wins, the other re-reads, re-plans and
//! tries again. No sequence is ever skipped, so a reader that stops at the first missing
//! sequence never stops early for good.
//!
//! Each batch's last row also carries its redo (every record the batch writes or deletes)
//! and each row its effects, so that any node can finish a batch whose writer died between
//! the log append and the record writes ([`roll_forward`]).

use kora_core::records::Record;
use scylla::client::session::Session;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use super::error::Attempt;
use super::layout::{commit_timestamp, split};
use super::outbox::{effect_id, shard_of};
use super::read::Reader;
use super::schema::Statements;
use crate::error::StoreError;
use crate::sql::{change_from, record_columns, record_from};
use crate::store::{Change, Seq};

/// A record write in a batch's redo: key, leaf stamp, leaf, tombstone, branch; all four
/// columns empty for a delete.
pub type RedoRecord = (
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// An effect in a log row: kind and payload (JSON).
pub type RedoEffect = (String, String);

/// Record writes and deletes in flight at once when applying a batch.
pub const APPLY_CONCURRENCY: usize = 64;

/// Names of the `kora_meta` rows.
pub const APPLIED: &str = "applied";
pub const LOG_START: &str = "log_start";

/// One row to append.
pub struct LogEntry {
    pub seq: Seq,
    pub stamp: Vec<u8>,
    pub committed_ms: i64,
    pub mutation: String,
    pub redo: Option<Vec<RedoRecord>>,
    pub effects: Option<Vec<RedoEffect>>,
}

impl LogEntry {
    /// Roughly what the row weighs in a Paxos proposal.
    pub fn bytes(&self) -> usize {
        let redo: usize = self.redo.iter().flatten().map(redo_bytes).sum();
        let effects: usize = self
            .effects
            .iter()
            .flatten()
            .map(|(k, p)| k.len() + p.len())
            .sum();
        self.mutation.len() + redo + effects + 64
    }
}

fn redo_bytes(r: &RedoRecord) -> usize {
    r.0.len()
        + r.1.as_ref().map_or(0, Vec::len)
        + r.2.as_ref().map_or(0, String::len)
        + r.3.as_ref().map_or(0, Vec::len)
        + r.4.as_ref().map_or(0, Vec::len)
        + 16
}

/// A record change as redo.
pub fn redo_record(key: &[u8], record: Option<&Record>) -> RedoRecord {
    match record {
        Some(record) => {
            let c = record_columns(record);
            (key.to_vec(), c.leaf_stamp, c.leaf, c.tombstone, c.branch)
        }
        None => (key.to_vec(), None, None, None, None),
    }
}

/// The sequence of the newest commit.
pub async fn head(session: &Session, st: &Statements) -> Result<Seq, Attempt> {
    let rows = session
        .execute_unpaged(&st.head, ())
        .await?
        .into_rows_result()?;
    let last = rows.maybe_first_row::<(Option<i64>,)>()?;
    Ok(last.and_then(|(l,)| l).unwrap_or(0).max(0) as Seq)
}

/// A `kora_meta` value (0 when never written).
pub async fn meta(session: &Session, st: &Statements, name: &str) -> Result<Seq, Attempt> {
    let rows = session
        .execute_unpaged(&st.meta_get, (name,))
        .await?
        .into_rows_result()?;
    let value = rows.maybe_first_row::<(Option<i64>,)>()?;
    Ok(value.and_then(|(v,)| v).unwrap_or(0).max(0) as Seq)
}

/// Raises a `kora_meta` value: written with itself as timestamp, so a smaller value written
/// later (by a slower node) loses.
pub async fn raise_meta(
    session: &Session,
    st: &Statements,
    name: &str,
    value: Seq,
) -> Result<(), Attempt> {
    let value = value as i64;
    session
        .execute_unpaged(&st.meta_set, (value, value, name))
        .await?;
    Ok(())
}

/// Appends a batch's rows after `expected`: `Ok(None)` when appended, `Ok(Some(last))` when
/// another commit got there first (`last` is the log's newest sequence now).
pub async fn append(
    session: &Session,
    st: &Statements,
    expected: Seq,
    entries: &[LogEntry],
) -> Result<Option<Seq>, Attempt> {
    let new_last = expected as i64 + entries.len() as i64;
    let mut batch = Batch::new(BatchType::Logged);
    let mut values = Vec::with_capacity(entries.len());
    for e in entries {
        batch.append_statement(st.log_append.clone());
        values.push((
            new_last,
            &e.stamp,
            e.committed_ms,
            &e.mutation,
            &e.redo,
            &e.effects,
            e.seq as i64,
            expected as i64,
        ));
    }
    if let Some(consistency) = st.log_append.get_consistency() {
        batch.set_consistency(consistency);
    }
    batch.set_serial_consistency(st.log_append.get_serial_consistency());
    batch.set_is_idempotent(true);
    batch.set_request_timeout(st.log_append.get_request_timeout());
    let result = session.batch(&batch, values).await?.into_rows_result()?;
    let applied = result
        .column_specs()
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| StoreError::Corrupted("a conditional batch without [applied]".into()))?;
    let last = result.column_specs().get_by_name("last").map(|(i, _)| i);
    // Cassandra answers with one row: `[applied]`, and when not applied the current `last`.
    if let Some(row) = result.rows::<Row>()?.next() {
        let row = row?;
        if let Some(Some(CqlValue::Boolean(true))) = row.columns.get(applied) {
            return Ok(None);
        }
        let seen = last.and_then(|i| match row.columns.get(i) {
            Some(Some(CqlValue::BigInt(v))) => Some(*v),
            _ => None,
        });
        return Ok(Some(seen.unwrap_or(0).max(0) as Seq));
    }
    Err(StoreError::Corrupted("an empty reply to a conditional batch".into()).into())
}

/// Up to `limit` changes after `after`, stopping at the first missing sequence (there is
/// none unless the log was compacted past `after`; see the module documentation).
pub async fn changes_after(
    session: &Session,
    st: &Statements,
    after: Seq,
    limit: usize,
) -> Result<Vec<Change>, Attempt> {
    let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
    let rows = session
        .execute_unpaged(&st.log_after, (after as i64, limit))
        .await?
        .into_rows_result()?;
    let mut changes = Vec::new();
    for (expected, row) in (after + 1..).zip(rows.rows::<(i64, Vec<u8>, String)>()?) {
        let (seq, stamp, mutation) = row?;
        if seq as Seq != expected {
            break;
        }
        changes.push(change_from(seq, stamp, &mutation)?);
    }
    Ok(changes)
}

/// Writes a batch's records and outbox rows: `timestamp` is the batch's (see
/// `layout::commit_timestamp`), so writing them twice, or late, changes nothing.
pub async fn apply(
    session: &Session,
    st: &Statements,
    timestamp: i64,
    redo: &[RedoRecord],
    effects: &[(Seq, Vec<RedoEffect>)],
) -> Result<(), Attempt> {
    let mut puts: Vec<Put> = Vec::new();
    let mut deletes: Vec<Delete> = Vec::new();
    for row in redo {
        let (key, record) = record_from(row.clone())?;
        let (part, rest) = split(&key);
        if record.is_empty() {
            deletes.push((timestamp, part, rest));
        } else {
            puts.push(record_row(part, rest, &record, timestamp));
        }
    }
    let mut outbox = Vec::new();
    for (seq, list) in effects {
        for (i, (kind, payload)) in list.iter().enumerate() {
            let id = effect_id(*seq, i);
            // Due at once (0): a constant, so that a row applied twice is the same row.
            let row = (
                shard_of(id),
                id as i64,
                *seq as i64,
                kind,
                payload,
                0i64,
                timestamp,
            );
            outbox.push(row);
        }
    }
    run_all(session, &st.rec_put, &puts).await?;
    run_all(session, &st.rec_del, &deletes).await?;
    run_all(session, &st.out_put, &outbox).await
}

/// The values of a record insert: part, rest, the four columns, timestamp.
/// The values of `rec_put` for a record, written at `timestamp`.
pub fn record_row(part: Vec<u8>, rest: Vec<u8>, record: &Record, timestamp: i64) -> Put {
    let c = record_columns(record);
    (
        part,
        rest,
        c.leaf_stamp,
        c.leaf,
        c.tombstone,
        c.branch,
        timestamp,
    )
}

pub type Put = (
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
);

/// The values of a record delete: timestamp, part, rest.
type Delete = (i64, Vec<u8>, Vec<u8>);

/// Runs one statement for each of `rows`, [`APPLY_CONCURRENCY`] at a time.
async fn run_all<V: SerializeRow + Sync>(
    session: &Session,
    statement: &PreparedStatement,
    rows: &[V],
) -> Result<(), Attempt> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    // A plain loop rather than stream combinators: closures over borrowed rows make the
    // future fail rustc's `Send` check inside `async_trait` methods.
    let mut rows = rows.iter();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < APPLY_CONCURRENCY {
            match rows.next() {
                Some(values) => in_flight.push(session.execute_unpaged(statement, values)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some(result) => {
                result?;
            }
            None => return Ok(()),
        }
    }
}

/// Finishes every batch in `(from, to]`: re-applies its redo and effects (harmless if its
/// writer already did), so that `kora_records` holds every commit up to `to`.
pub async fn roll_forward(
    session: &Session,
    st: &Statements,
    from: Seq,
    to: Seq,
) -> Result<(), Attempt> {
    type RedoRow = (i64, Option<Vec<RedoRecord>>, Option<Vec<RedoEffect>>);
    let reader = Reader { session, st };
    let mut rows: Vec<RedoRow> = Vec::new();
    reader
        .pages(
            &st.log_redo,
            (from as i64, to as i64),
            |page: Vec<RedoRow>| {
                rows.extend(page);
                Ok(true)
            },
        )
        .await?;
    for (seq, redo, effects) in rows {
        let seq = seq.max(0) as Seq;
        let effects = effects.map(|list| vec![(seq, list)]).unwrap_or_default();
        apply(
            session,
            st,
            commit_timestamp(seq),
            &redo.unwrap_or_default(),
            &effects,
        )
        .await?;
    }
    tracing::debug!(from, to, "rolled the Cassandra log forward");
    Ok(())
}
