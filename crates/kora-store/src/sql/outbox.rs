//! The effect outbox's statements, written once for both SQL stores.
//!
//! Everything but claiming is the same SQL in PostgreSQL and MySQL apart from placeholders,
//! so it is written here with `?` and each store runs it through [`OutboxSql`], which
//! numbers the placeholders for PostgreSQL. Claiming differs (PostgreSQL leases and returns
//! the rows in one `UPDATE … RETURNING`; MySQL selects `FOR UPDATE SKIP LOCKED`, then
//! updates) and stays in each store.
//!
//! A pending effect may be running, so reviving and discarding touch only dead rows: an id
//! that is not dead is `NoSuchEffect`.

use async_trait::async_trait;
use sqlx::{Arguments, Database, Encode, Type};

use super::{effects_from, found, AttemptError, EffectRow, Gate, EFFECT_COLUMNS};
use crate::error::StoreError;
use crate::store::{Effect, EffectCounts};

/// A value bound to a `?`.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// What a SQL store runs the outbox's statements with.
#[async_trait]
pub trait OutboxSql: Send + Sync {
    /// The database's name, for errors: "PostgreSQL".
    fn name(&self) -> &'static str;
    fn gate(&self) -> &Gate;
    /// Runs a statement; the rows it affected.
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, AttemptError>;
    /// Runs a query for rows of [`EFFECT_COLUMNS`].
    async fn effect_rows(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<EffectRow>, AttemptError>;
    /// Runs a `SELECT count(*)`.
    async fn count(&self, sql: &str) -> Result<i64, AttemptError>;
}

/// Runs a statement that must touch effect `id`'s row.
async fn touch(
    db: &impl OutboxSql,
    what: &str,
    sql: &str,
    args: &[Arg<'_>],
    id: u64,
) -> Result<(), StoreError> {
    db.gate()
        .run(&format!("{what} in {}", db.name()), || async {
            found(id, db.execute(sql, args).await?)
        })
        .await
}

pub async fn complete(db: &impl OutboxSql, id: u64) -> Result<(), StoreError> {
    let sql = "DELETE FROM kora_outbox WHERE id = ?";
    touch(db, "completing an effect", sql, &[Arg::Int(id as i64)], id).await
}

pub async fn retry(
    db: &impl OutboxSql,
    id: u64,
    next_at_ms: u64,
    error: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE kora_outbox SET attempts = attempts + 1, next_at_ms = ?,
               last_error = ?, lease_until_ms = 0 WHERE id = ?";
    let args = [
        Arg::Int(next_at_ms as i64),
        Arg::Text(error),
        Arg::Int(id as i64),
    ];
    touch(db, "rescheduling an effect", sql, &args, id).await
}

pub async fn bury(db: &impl OutboxSql, id: u64, error: &str) -> Result<(), StoreError> {
    let sql = "UPDATE kora_outbox SET attempts = attempts + 1, last_error = ?,
               dead = TRUE, lease_until_ms = 0 WHERE id = ?";
    let args = [Arg::Text(error), Arg::Int(id as i64)];
    touch(db, "burying an effect", sql, &args, id).await
}

pub async fn revive(db: &impl OutboxSql, id: u64) -> Result<(), StoreError> {
    let sql = "UPDATE kora_outbox SET dead = FALSE, attempts = 0, next_at_ms = 0
               WHERE id = ? AND dead";
    touch(db, "reviving an effect", sql, &[Arg::Int(id as i64)], id).await
}

pub async fn discard(db: &impl OutboxSql, id: u64) -> Result<(), StoreError> {
    let sql = "DELETE FROM kora_outbox WHERE id = ? AND dead";
    touch(db, "discarding an effect", sql, &[Arg::Int(id as i64)], id).await
}

pub async fn dead(db: &impl OutboxSql, limit: usize) -> Result<Vec<Effect>, StoreError> {
    let sql = format!("SELECT {EFFECT_COLUMNS} FROM kora_outbox WHERE dead ORDER BY id LIMIT ?");
    db.gate()
        .run(
            &format!("listing dead effects in {}", db.name()),
            || async { effects_from(db.effect_rows(&sql, &[Arg::Int(limit as i64)]).await?) },
        )
        .await
}

pub async fn counts(db: &impl OutboxSql) -> Result<EffectCounts, StoreError> {
    db.gate()
        .run(&format!("counting effects in {}", db.name()), || async {
            let pending = db
                .count("SELECT count(*) FROM kora_outbox WHERE NOT dead")
                .await?;
            let dead = db
                .count("SELECT count(*) FROM kora_outbox WHERE dead")
                .await?;
            Ok(EffectCounts {
                pending: pending as u64,
                dead: dead as u64,
            })
        })
        .await
}

/// `args` as a database's bound arguments, in order.
pub fn arguments<'q, DB: Database>(args: &[Arg<'q>]) -> Result<DB::Arguments<'q>, AttemptError>
where
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
{
    let mut out = DB::Arguments::default();
    for arg in args {
        match *arg {
            Arg::Int(n) => out.add(n),
            Arg::Text(text) => out.add(text),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// `?` placeholders numbered as PostgreSQL's `$1`, `$2`, … (the statements here hold no other
/// `?`).
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = ? WHERE id = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
