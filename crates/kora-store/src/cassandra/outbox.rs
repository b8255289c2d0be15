//! The effect outbox: rows written with the commit's records (their timestamp is the
//! commit's, far below any real clock), then claimed, retried, buried and revived with
//! lightweight transactions, whose timestamps are real time — so a commit re-applied late
//! by another node can never bring back an effect already completed or change its state.
//!
//! A claim is a lease: `lease_until_ms` set by `UPDATE … IF dead = false AND next_at_ms <=
//! now AND lease_until_ms <= now`. Of two runners claiming the same effect, Paxos lets one
//! win; a runner that dies leaves a lease that ends, and the effect is claimed again
//! (at-least-once).

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::error::Attempt;
use super::read::Reader;
use super::schema::Statements;
use crate::error::StoreError;
use crate::store::{Claim, Effect, EffectState, Seq};

/// Partitions of the outbox: a claim reads them all; LWTs on different partitions do not
/// contend.
pub const SHARDS: i32 = 4;

/// Bits of an effect id that number the effects of one commit: an id is
/// `seq << EFFECT_BITS | index`, the same on every node that writes it.
pub const EFFECT_BITS: u32 = 16;

/// Most effects one write may carry.
pub const MAX_EFFECTS_PER_WRITE: usize = 1 << EFFECT_BITS;

/// Tries of a read-then-compare-and-set before giving up on a contended effect.
const CAS_TRIES: usize = 16;

pub fn effect_id(seq: Seq, index: usize) -> u64 {
    (seq << EFFECT_BITS) | index as u64
}

pub fn shard_of(id: u64) -> i32 {
    ((id >> EFFECT_BITS) % SHARDS as u64) as i32
}

/// A row of `kora_outbox`.
type EffectRow = (
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<String>,
    Option<bool>,
    Option<i64>,
);

struct Row {
    effect: Effect,
    lease_until_ms: u64,
}

fn row(r: EffectRow) -> Result<Row, Attempt> {
    let (id, seq, kind, payload, attempts, next_at, last_error, dead, lease) = r;
    let payload = crate::sql::parse_json(payload.as_deref().unwrap_or("null"))?;
    Ok(Row {
        effect: Effect {
            id: id as u64,
            seq: seq.unwrap_or(0).max(0) as u64,
            kind: kind.unwrap_or_default(),
            payload,
            attempts: attempts.unwrap_or(0).max(0) as u32,
            next_at_ms: next_at.unwrap_or(0).max(0) as u64,
            last_error,
            state: if dead.unwrap_or(false) {
                EffectState::Dead
            } else {
                EffectState::Pending
            },
        },
        lease_until_ms: lease.unwrap_or(0).max(0) as u64,
    })
}

/// Every outbox row, by id.
async fn all(session: &Session, st: &Statements) -> Result<Vec<Row>, Attempt> {
    let reader = Reader { session, st };
    let mut rows = Vec::new();
    for shard in 0..SHARDS {
        reader
            .pages(&st.out_shard, (shard,), |page: Vec<EffectRow>| {
                for r in page {
                    rows.push(row(r)?);
                }
                Ok(true)
            })
            .await?;
    }
    rows.sort_by_key(|r| r.effect.id);
    Ok(rows)
}

/// Whether a conditional statement applied.
async fn lwt<V: scylla::serialize::row::SerializeRow>(
    session: &Session,
    statement: &PreparedStatement,
    values: V,
) -> Result<bool, Attempt> {
    let rows = session
        .execute_unpaged(statement, values)
        .await?
        .into_rows_result()?;
    let (index, _) = rows
        .column_specs()
        .get_by_name("[applied]")
        .ok_or_else(|| StoreError::Corrupted("an LWT reply without [applied]".into()))?;
    let row = rows.first_row::<scylla::value::Row>()?;
    Ok(matches!(
        row.columns.get(index),
        Some(Some(scylla::value::CqlValue::Boolean(true)))
    ))
}

pub async fn claim(
    session: &Session,
    st: &Statements,
    claim: Claim,
) -> Result<Vec<Effect>, Attempt> {
    let (now_ms, limit) = (claim.now_ms, claim.limit);
    let now = now_ms as i64;
    let until = claim.lease_until_ms() as i64;
    let mut claimed = Vec::new();
    for r in all(session, st).await? {
        if claimed.len() >= limit {
            break;
        }
        let due = r.effect.state == EffectState::Pending
            && r.effect.next_at_ms <= now_ms
            && r.lease_until_ms <= now_ms;
        if !due {
            continue;
        }
        let id = r.effect.id;
        let values = (until, shard_of(id), id as i64, now, now);
        if lwt(session, &st.out_claim, values).await? {
            claimed.push(r.effect);
        }
    }
    Ok(claimed)
}

pub async fn complete(session: &Session, st: &Statements, id: u64) -> Result<(), Attempt> {
    if !lwt(session, &st.out_delete, (shard_of(id), id as i64)).await? {
        return Err(StoreError::NoSuchEffect(id).into());
    }
    Ok(())
}

/// Records a failed try (`dead`: the last one): attempts + 1, compared-and-set against the
/// count read, so two runners reporting at once both count.
pub async fn fail(
    session: &Session,
    st: &Statements,
    id: u64,
    next_at_ms: Option<u64>,
    error: &str,
) -> Result<(), Attempt> {
    let key = (shard_of(id), id as i64);
    for _ in 0..CAS_TRIES {
        let rows = session
            .execute_unpaged(&st.out_get, key)
            .await?
            .into_rows_result()?;
        let Some((attempts,)) = rows.maybe_first_row::<(Option<i32>,)>()? else {
            return Err(StoreError::NoSuchEffect(id).into());
        };
        let (now, next) = (attempts.unwrap_or(0), attempts.unwrap_or(0) + 1);
        let applied = match next_at_ms {
            Some(at) => {
                let values = (next, at as i64, error, key.0, key.1, now);
                lwt(session, &st.out_retry, values).await?
            }
            None => lwt(session, &st.out_bury, (next, error, key.0, key.1, now)).await?,
        };
        if applied {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!("effect {id} is contended; try again")).into())
}

pub async fn dead(
    session: &Session,
    st: &Statements,
    limit: usize,
) -> Result<Vec<Effect>, Attempt> {
    Ok(all(session, st)
        .await?
        .into_iter()
        .map(|r| r.effect)
        .filter(|e| e.state == EffectState::Dead)
        .take(limit)
        .collect())
}

pub async fn revive(session: &Session, st: &Statements, id: u64) -> Result<(), Attempt> {
    if !lwt(session, &st.out_revive, (shard_of(id), id as i64)).await? {
        return Err(StoreError::NoSuchEffect(id).into());
    }
    Ok(())
}

/// Removes a dead effect (a pending one stays: it may be running).
pub async fn discard(session: &Session, st: &Statements, id: u64) -> Result<(), Attempt> {
    if !lwt(session, &st.out_discard, (shard_of(id), id as i64)).await? {
        return Err(StoreError::NoSuchEffect(id).into());
    }
    Ok(())
}

/// (pending, dead)
pub async fn counts(session: &Session, st: &Statements) -> Result<(u64, u64), Attempt> {
    let rows = all(session, st).await?;
    let dead = rows
        .iter()
        .filter(|r| r.effect.state == EffectState::Dead)
        .count() as u64;
    Ok((rows.len() as u64 - dead, dead))
}
