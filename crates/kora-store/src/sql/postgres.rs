//! `postgres://` — PostgreSQL (12 or newer) through a pool of connections.
//!
//! A batch is one transaction: lock the `last_seq` row, read the batch's read set (one
//! statement for the single records, one for every subtree range, joined against
//! `unnest`ed arrays), plan in memory, then write records, log rows and outbox rows with one
//! array-bound statement each. Reads run in REPEATABLE READ transactions, so several paths,
//! and the pages of a long range, come from one snapshot.
//!
//! Statements whose best plan depends on a table's size are planned on every run
//! (`persistent(false)`) rather than kept prepared: PostgreSQL plans a kept statement
//! generically after five runs and may settle on a plan made while the table was small — a
//! sequential scan — and keep it as the table grows. Measured: the batch read went from 1 ms
//! to 30–60 ms per batch at 70k records (a `= ANY($1)` filter over every row). Planning
//! costs a fraction of a millisecond; fixed-shape statements (inserts through `unnest`, the
//! `kora_meta` row) stay prepared.

use async_trait::async_trait;
use kora_core::records::{Assembler, Record, Records};
use kora_core::stamp::wall_millis;
use kora_core::{Path, PathQuery, Stamp, Value};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::outbox::{self, arguments, numbered, Arg, OutboxSql};
use super::{
    change_from, check_key_lengths, effects_from, leaves_from, leaves_statement, plan, push_rows,
    read_set, record_columns, record_from, records_from, records_statement, subtree_ranges,
    with_retries, AttemptError, EffectRow, Gate, RecordRow, EFFECT_COLUMNS, KEY_CEILING, POOL_SIZE,
    READ_PAGE, RECORD_COLUMNS,
};
use crate::condition::Window;
use crate::error::StoreError;
use crate::group::{Batcher, GroupCommit, Outcome};
use crate::plan::oldest_since;
use crate::store::{
    Change, Claim, Commit, Compacted, Effect, EffectCounts, LogRead, Page, Seq, Snapshot, Stats,
    Store, Submitted, Write,
};

/// Longest encoded path PostgreSQL can index: a btree entry must fit in a third of a page
/// (2,704 bytes); the rest is headroom for the row's other columns in the index tuple.
pub const MAX_KEY_BYTES: usize = 2_600;

/// Key for `pg_advisory_lock` while migrating, so nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6b6f_7261_0001;

/// Each entry is one schema version: the statements that take the schema there.
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE kora_records (
        path_key BYTEA PRIMARY KEY,
        leaf_stamp BYTEA,
        leaf TEXT,
        tombstone BYTEA,
        branch BYTEA)",
    "CREATE TABLE kora_log (
        seq BIGINT PRIMARY KEY,
        stamp BYTEA NOT NULL,
        committed_ms BIGINT NOT NULL,
        mutation TEXT NOT NULL)",
    "CREATE TABLE kora_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO kora_meta (name, value) VALUES ('last_seq', 0), ('log_start', 1)",
    "CREATE TABLE kora_outbox (
        id BIGSERIAL PRIMARY KEY,
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at_ms BIGINT NOT NULL,
        lease_until_ms BIGINT NOT NULL DEFAULT 0,
        last_error TEXT,
        dead BOOLEAN NOT NULL DEFAULT FALSE)",
    "CREATE INDEX kora_outbox_due ON kora_outbox (dead, next_at_ms)",
]];

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    writer: GroupCommit,
    gate: Gate,
}

impl PostgresStore {
    /// Connects (retrying while the server is unreachable), migrates the schema, and starts
    /// the committer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = with_retries("connecting to PostgreSQL", || async {
            Ok(PgPoolOptions::new()
                .max_connections(POOL_SIZE)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(url)
                .await?)
        })
        .await?;
        with_retries("migrating the PostgreSQL schema", || migrate(&pool)).await?;
        let writer = GroupCommit::spawn(PgBatcher { pool: pool.clone() });
        Ok(PostgresStore {
            pool,
            writer,
            gate: Gate::default(),
        })
    }
}

async fn migrate(pool: &PgPool) -> Result<(), AttemptError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = migrate_locked(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    result
}

async fn migrate_locked(conn: &mut PgConnection) -> Result<(), AttemptError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS kora_schema (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let current: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM kora_schema")
        .fetch_one(&mut *conn)
        .await?;
    let current = current.unwrap_or(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::NewerFormat {
            path: "PostgreSQL database".into(),
            found: current as u64,
            supported: MIGRATIONS.len() as u64,
        }
        .into());
    }
    for (index, statements) in MIGRATIONS.iter().enumerate().skip(current) {
        let mut tx = conn.begin().await?;
        for statement in *statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO kora_schema (version, applied_ms) VALUES ($1, $2)")
            .bind(index as i32 + 1)
            .bind(wall_millis() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

struct PgBatcher {
    pool: PgPool,
}

#[async_trait]
impl Batcher for PgBatcher {
    async fn commit_batch(&mut self, writes: Vec<Write>) -> Result<Vec<Outcome>, StoreError> {
        with_retries("committing to PostgreSQL", || {
            commit_batch(&self.pool, &writes)
        })
        .await
    }
}

async fn commit_batch(pool: &PgPool, writes: &[Write]) -> Result<Vec<Outcome>, AttemptError> {
    let mut tx = pool.begin().await?;
    let last: i64 =
        sqlx::query_scalar("SELECT value FROM kora_meta WHERE name = 'last_seq' FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let records = load(&mut tx, writes).await?;
    let window = window(&mut tx, writes, last as Seq).await?;
    let plan = plan(records, writes, last as Seq, &window);
    if plan.count() == 0 {
        tx.rollback().await?;
        return Ok(plan.outcomes);
    }

    if !plan.upserts.is_empty() {
        let mut keys = Vec::new();
        let (mut stamps, mut leaves, mut tombstones, mut branches) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, record) in &plan.upserts {
            let columns = record_columns(record);
            keys.push(key.clone());
            stamps.push(columns.leaf_stamp);
            leaves.push(columns.leaf);
            tombstones.push(columns.tombstone);
            branches.push(columns.branch);
        }
        sqlx::query(
            "INSERT INTO kora_records (path_key, leaf_stamp, leaf, tombstone, branch)
             SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bytea[], $5::bytea[])
             ON CONFLICT (path_key) DO UPDATE SET leaf_stamp = EXCLUDED.leaf_stamp,
                 leaf = EXCLUDED.leaf, tombstone = EXCLUDED.tombstone, branch = EXCLUDED.branch",
        )
        .bind(&keys)
        .bind(&stamps)
        .bind(&leaves)
        .bind(&tombstones)
        .bind(&branches)
        .execute(&mut *tx)
        .await?;
    }
    if !plan.deletes.is_empty() {
        sqlx::query("DELETE FROM kora_records WHERE path_key = ANY($1)")
            .persistent(false)
            .bind(&plan.deletes)
            .execute(&mut *tx)
            .await?;
    }
    let seqs: Vec<i64> = plan.log.iter().map(|r| r.seq).collect();
    let stamps: Vec<Vec<u8>> = plan.log.iter().map(|r| r.stamp.clone()).collect();
    let times: Vec<i64> = plan.log.iter().map(|r| r.committed_ms).collect();
    let mutations: Vec<&str> = plan.log.iter().map(|r| r.mutation.as_str()).collect();
    sqlx::query(
        "INSERT INTO kora_log (seq, stamp, committed_ms, mutation)
         SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::text[])",
    )
    .bind(&seqs)
    .bind(&stamps)
    .bind(&times)
    .bind(&mutations)
    .execute(&mut *tx)
    .await?;
    insert_effects(&mut tx, plan.committed(writes)).await?;
    let new_last = last + plan.count() as i64;
    sqlx::query("UPDATE kora_meta SET value = $1 WHERE name = 'last_seq'")
        .bind(new_last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(plan.outcomes)
}

/// Loads a batch's read set: its single records and its subtree ranges.
async fn load(conn: &mut PgConnection, writes: &[Write]) -> Result<Records, AttemptError> {
    let set = read_set(writes);
    let points: Vec<Vec<u8>> = set.points.iter().cloned().collect();
    let (los, his): (Vec<Vec<u8>>, Vec<Vec<u8>>) = subtree_ranges(&set)
        .into_iter()
        .map(|(lo, hi)| (lo, hi.unwrap_or_else(|| KEY_CEILING.to_vec())))
        .unzip();
    // A record both single and in a range comes back twice: loading it twice is harmless,
    // and cheaper than having the database remove duplicates. The ranges are a LATERAL
    // subquery so that each is an index range scan whatever the table's statistics say: a
    // plain join, planned on the stale statistics of a table growing fast, became a
    // sequential scan per batch (15–30 ms at 50k records).
    let rows: Vec<RecordRow> = sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM kora_records WHERE path_key = ANY($1)
         UNION ALL
         SELECT r.path_key, r.leaf_stamp, r.leaf, r.tombstone, r.branch
         FROM unnest($2::bytea[], $3::bytea[]) AS b(lo, hi)
         CROSS JOIN LATERAL (SELECT {RECORD_COLUMNS} FROM kora_records
                             WHERE path_key > b.lo AND path_key < b.hi) AS r"
    ))
    .persistent(false)
    .bind(&points)
    .bind(&los)
    .bind(&his)
    .fetch_all(&mut *conn)
    .await?;
    let mut records = Records::new();
    for row in rows {
        let (key, record) = record_from(row)?;
        records.load(key, record);
    }
    Ok(records)
}

async fn insert_effects(
    conn: &mut PgConnection,
    committed: impl Iterator<Item = (&Write, &Commit)>,
) -> Result<(), AttemptError> {
    let now = wall_millis() as i64;
    let (mut seqs, mut kinds, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
    for (write, commit) in committed {
        for effect in &write.effects {
            seqs.push(commit.seq as i64);
            kinds.push(effect.kind.clone());
            payloads.push(effect.payload.to_string());
        }
    }
    if seqs.is_empty() {
        return Ok(());
    }
    let times = vec![now; seqs.len()];
    sqlx::query(
        "INSERT INTO kora_outbox (seq, kind, payload, next_at_ms)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])",
    )
    .bind(&seqs)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn begin_snapshot(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, AttemptError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Up to `limit` change-log entries after `after`, oldest first.
async fn log_after(
    conn: &mut PgConnection,
    after: Seq,
    limit: usize,
) -> Result<Vec<Change>, AttemptError> {
    let rows: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(
        "SELECT seq, stamp, mutation FROM kora_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .persistent(false)
    .bind(after as i64)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    let changes = rows
        .into_iter()
        .map(|(seq, stamp, mutation)| change_from(seq, stamp, &mutation))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(changes)
}

/// The changes a batch's `Unchanged` conditions are checked against (see `crate::condition`),
/// read inside the batch's transaction: no commit can come between.
async fn window(
    conn: &mut PgConnection,
    writes: &[Write],
    last: Seq,
) -> Result<Window, AttemptError> {
    let Some(from) = Window::start(oldest_since(writes), last) else {
        return Ok(Window::empty(last));
    };
    let from = from.max((meta(conn, "log_start").await? as Seq).saturating_sub(1));
    let changes = log_after(conn, from, (last - from) as usize).await?;
    Ok(Window::of_changes(from, changes))
}

async fn meta(conn: &mut PgConnection, name: &str) -> Result<i64, AttemptError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM kora_meta WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Answers one path query, reading the range page by page and stopping at the limit.
async fn select(conn: &mut PgConnection, part: &PathQuery) -> Result<Option<Value>, AttemptError> {
    let mut asm = Assembler::new(part);
    let own: Option<RecordRow> = sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM kora_records WHERE path_key = $1"
    ))
    .persistent(false)
    .bind(asm.key())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = own {
        let (_, record) = record_from(row)?;
        if asm.push_own(&record) {
            return Ok(asm.finish());
        }
    }
    let (start, end) = asm.children_range();
    let end = end.unwrap_or_else(|| KEY_CEILING.to_vec());
    // Every bound is always bound (no `IS NULL` alternatives), so each page is an index
    // range scan; before the first page the cursor is the empty key, which only the root's
    // own record (never a child) equals.
    let (statement, first_cursor) = if part.reverse {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM kora_records
             WHERE path_key >= $1 AND path_key < $2 AND path_key < $3
             ORDER BY path_key DESC LIMIT $4"
        );
        (sql, KEY_CEILING.to_vec())
    } else {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM kora_records
             WHERE path_key >= $1 AND path_key < $2 AND path_key > $3
             ORDER BY path_key LIMIT $4"
        );
        (sql, Vec::new())
    };
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let rows: Vec<RecordRow> = sqlx::query_as(&statement)
            .persistent(false)
            .bind(&start)
            .bind(&end)
            .bind(cursor.as_ref().unwrap_or(&first_cursor))
            .bind(READ_PAGE)
            .fetch_all(&mut *conn)
            .await?;
        let full_page = rows.len() as i64 == READ_PAGE;
        if !push_rows(&mut asm, rows, &mut cursor)? || !full_page {
            return Ok(asm.finish());
        }
    }
}

/// The rows of a range statement (`leaves_statement`, `records_statement`).
impl PostgresStore {
    async fn range_rows(
        &self,
        what: &'static str,
        (sql, lower, end, limit): (String, Vec<u8>, Vec<u8>, i64),
    ) -> Result<Vec<RecordRow>, StoreError> {
        self.gate
            .run(what, || async {
                let rows: Vec<RecordRow> = sqlx::query_as(&sql)
                    .persistent(false)
                    .bind(&lower)
                    .bind(&end)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            })
            .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        self.submit(write).await?.await
    }

    async fn submit(&self, write: Write) -> Result<Submitted, StoreError> {
        self.gate.check()?;
        check_key_lengths(&write, MAX_KEY_BYTES)?;
        self.writer.submit(write).await
    }

    async fn read(&self, parts: &[PathQuery]) -> Result<Snapshot, StoreError> {
        self.gate
            .run("reading from PostgreSQL", || async {
                let mut tx = begin_snapshot(&self.pool).await?;
                let seq = meta(&mut tx, "last_seq").await? as Seq;
                let mut values = Vec::with_capacity(parts.len());
                for part in parts {
                    values.push(select(&mut tx, part).await?);
                }
                tx.rollback().await?;
                Ok(Snapshot { seq, values })
            })
            .await
    }

    async fn leaves(&self, page: Page<'_>) -> Result<Vec<(Path, Value)>, StoreError> {
        let statement = leaves_statement(page, ["$1", "$2", "$3"]);
        leaves_from(
            self.range_rows("reading leaves from PostgreSQL", statement)
                .await?,
        )
    }

    async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, StoreError> {
        let statement = records_statement(page, ["$1", "$2", "$3"]);
        records_from(
            self.range_rows("reading records from PostgreSQL", statement)
                .await?,
        )
    }

    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError> {
        self.gate
            .run("reading the PostgreSQL change log", || async {
                let mut tx = begin_snapshot(&self.pool).await?;
                let log_start = meta(&mut tx, "log_start").await? as Seq;
                if after + 1 < log_start {
                    return Ok(LogRead::Compacted { oldest: log_start });
                }
                let changes = log_after(&mut tx, after, limit).await?;
                tx.rollback().await?;
                Ok(LogRead::Changes(changes))
            })
            .await
    }

    async fn last_seq(&self) -> Result<Seq, StoreError> {
        self.gate
            .run("reading from PostgreSQL", || async {
                let mut conn = self.pool.acquire().await?;
                Ok(meta(&mut conn, "last_seq").await? as Seq)
            })
            .await
    }

    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError> {
        self.gate
            .run("claiming effects in PostgreSQL", || async {
                let rows: Vec<EffectRow> = sqlx::query_as(&format!(
                    "UPDATE kora_outbox SET lease_until_ms = $2 WHERE id IN (
                    SELECT id FROM kora_outbox
                    WHERE NOT dead AND next_at_ms <= $1 AND lease_until_ms <= $1
                    ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING {EFFECT_COLUMNS}"
                ))
                .persistent(false)
                .bind(claim.now_ms as i64)
                .bind(claim.lease_until_ms() as i64)
                .bind(claim.limit as i64)
                .fetch_all(&self.pool)
                .await?;
                effects_from(rows)
            })
            .await
    }

    async fn complete_effect(&self, id: u64) -> Result<(), StoreError> {
        outbox::complete(self, id).await
    }

    async fn retry_effect(&self, id: u64, next_at_ms: u64, error: &str) -> Result<(), StoreError> {
        outbox::retry(self, id, next_at_ms, error).await
    }

    async fn bury_effect(&self, id: u64, error: &str) -> Result<(), StoreError> {
        outbox::bury(self, id, error).await
    }

    async fn dead_effects(&self, limit: usize) -> Result<Vec<Effect>, StoreError> {
        outbox::dead(self, limit).await
    }

    async fn revive_effect(&self, id: u64) -> Result<(), StoreError> {
        outbox::revive(self, id).await
    }

    async fn effect_counts(&self) -> Result<EffectCounts, StoreError> {
        outbox::counts(self).await
    }

    async fn discard_effect(&self, id: u64) -> Result<(), StoreError> {
        outbox::discard(self, id).await
    }

    async fn compact(&self, horizon: Stamp, log_before_ms: u64) -> Result<Compacted, StoreError> {
        let horizon = horizon.to_bytes().to_vec();
        self.gate
            .run("compacting PostgreSQL", || async {
                let mut tx = self.pool.begin().await?;
                let last: i64 = sqlx::query_scalar(
                    "SELECT value FROM kora_meta WHERE name = 'last_seq' FOR UPDATE",
                )
                .fetch_one(&mut *tx)
                .await?;
                let tombs =
                    sqlx::query("UPDATE kora_records SET tombstone = NULL WHERE tombstone < $1")
                        .bind(&horizon)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                let branches =
                    sqlx::query("UPDATE kora_records SET branch = NULL WHERE branch < $1")
                        .bind(&horizon)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                let removed = sqlx::query(
                    "DELETE FROM kora_records
                 WHERE leaf_stamp IS NULL AND tombstone IS NULL AND branch IS NULL",
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Remove a prefix of the log: everything before the first entry that is recent.
                let keep_from: Option<i64> =
                    sqlx::query_scalar("SELECT min(seq) FROM kora_log WHERE committed_ms >= $1")
                        .bind(log_before_ms as i64)
                        .fetch_one(&mut *tx)
                        .await?;
                let keep_from = keep_from.unwrap_or(last + 1);
                let log_removed = sqlx::query("DELETE FROM kora_log WHERE seq < $1")
                    .bind(keep_from)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "UPDATE kora_meta SET value = GREATEST(value, $1) WHERE name = 'log_start'",
                )
                .bind(keep_from)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Compacted {
                    records_removed: removed,
                    records_rewritten: (tombs + branches).saturating_sub(removed),
                    log_entries_removed: log_removed,
                })
            })
            .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let counts = outbox::counts(self).await?;
        self.gate
            .run("reading PostgreSQL statistics", || async {
                let mut tx = begin_snapshot(&self.pool).await?;
                let last_seq = meta(&mut tx, "last_seq").await? as Seq;
                let log_start = meta(&mut tx, "log_start").await? as Seq;
                let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
                let log_entries = count("SELECT count(*) FROM kora_log")
                    .fetch_one(&mut *tx)
                    .await?;
                let records = count("SELECT count(*) FROM kora_records")
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                Ok(Stats {
                    backend: "postgres".into(),
                    last_seq,
                    log_start: log_start.max(1),
                    log_entries: log_entries as u64,
                    records: records as u64,
                    ..Stats::default()
                })
            })
            .await
            .map(|stats| Stats {
                effects_pending: counts.pending,
                effects_dead: counts.dead,
                ..stats
            })
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.gate.check()?;
        self.writer.close().await;
        self.gate.shut();
        self.pool.close().await;
        Ok(())
    }
}

/// The outbox's shared statements (`sql::outbox`) run on this pool.
#[async_trait]
impl OutboxSql for PostgresStore {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, AttemptError> {
        let sql = numbered(sql);
        let query = sqlx::query_with(&sql, arguments::<sqlx::Postgres>(args)?).persistent(false);
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn effect_rows(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<EffectRow>, AttemptError> {
        let sql = numbered(sql);
        let query =
            sqlx::query_as_with::<_, EffectRow, _>(&sql, arguments::<sqlx::Postgres>(args)?)
                .persistent(false);
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn count(&self, sql: &str) -> Result<i64, AttemptError> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }
}
