//! `mysql://` — MySQL 8 or MariaDB 10.6+ (InnoDB) through a pool of connections.
//!
//! The same layout and batch transaction as PostgreSQL (see `sql/mod.rs`), in MySQL's
//! dialect: positional placeholders and multi-row `VALUES` instead of arrays, `ON DUPLICATE
//! KEY UPDATE` for upserts, `GET_LOCK` around migrations (MySQL's DDL is not transactional, so
//! every migration statement is idempotent), and `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT` for reads.

use async_trait::async_trait;
use kora_core::records::{Assembler, Record, Records};
use kora_core::stamp::wall_millis;
use kora_core::{Path, PathQuery, Stamp, Value};
use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions};

use super::outbox::{self, arguments, Arg, OutboxSql};
use super::{
    change_from, check_key_lengths, effects_from, leaves_from, leaves_statement, plan, push_rows,
    read_set, record_columns, record_from, records_from, records_statement, subtree_ranges,
    with_retries, AttemptError, EffectRow, Gate, RecordRow, EFFECT_COLUMNS, POOL_SIZE, READ_PAGE,
    RECORD_COLUMNS,
};
use crate::condition::Window;
use crate::error::StoreError;
use crate::group::{Batcher, GroupCommit, Outcome};
use crate::plan::oldest_since;
use crate::store::{
    Change, Claim, Commit, Compacted, Effect, EffectCounts, LogRead, Page, Seq, Snapshot, Stats,
    Store, Submitted, Write,
};

/// Longest encoded path InnoDB can index (its key limit with the DYNAMIC row format).
pub const MAX_KEY_BYTES: usize = 3_072;

/// Rows per multi-row statement, well under MySQL's 65,535 placeholders.
const ROWS_PER_STATEMENT: usize = 1_000;

const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS kora_records (
        path_key VARBINARY(3072) NOT NULL PRIMARY KEY,
        leaf_stamp BINARY(16) NULL,
        leaf LONGTEXT NULL,
        tombstone BINARY(16) NULL,
        branch BINARY(16) NULL) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS kora_log (
        seq BIGINT NOT NULL PRIMARY KEY,
        stamp BINARY(16) NOT NULL,
        committed_ms BIGINT NOT NULL,
        mutation LONGTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS kora_meta (
        name VARCHAR(64) NOT NULL PRIMARY KEY,
        value BIGINT NOT NULL) ENGINE=InnoDB",
    "INSERT IGNORE INTO kora_meta (name, value) VALUES ('last_seq', 0), ('log_start', 1)",
    "CREATE TABLE IF NOT EXISTS kora_outbox (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        seq BIGINT NOT NULL,
        kind VARCHAR(255) NOT NULL,
        payload LONGTEXT NOT NULL,
        attempts INT NOT NULL DEFAULT 0,
        next_at_ms BIGINT NOT NULL,
        lease_until_ms BIGINT NOT NULL DEFAULT 0,
        last_error LONGTEXT NULL,
        dead BOOLEAN NOT NULL DEFAULT FALSE,
        KEY kora_outbox_due (dead, next_at_ms)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
]];

/// The MySQL / MariaDB store.
pub struct MysqlStore {
    pool: MySqlPool,
    writer: GroupCommit,
    gate: Gate,
}

impl MysqlStore {
    /// Connects (retrying while the server is unreachable), migrates the schema, and starts
    /// the committer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = with_retries("connecting to MySQL", || async {
            Ok(MySqlPoolOptions::new()
                .max_connections(POOL_SIZE)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(url)
                .await?)
        })
        .await?;
        with_retries("migrating the MySQL schema", || migrate(&pool)).await?;
        let writer = GroupCommit::spawn(MysqlBatcher { pool: pool.clone() });
        Ok(MysqlStore {
            pool,
            writer,
            gate: Gate::default(),
        })
    }
}

async fn migrate(pool: &MySqlPool) -> Result<(), AttemptError> {
    let mut conn = pool.acquire().await?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('kora_migrate', 60)")
        .fetch_one(&mut *conn)
        .await?;
    if locked != Some(1) {
        return Err(
            StoreError::Unavailable("timed out waiting for the migration lock".into()).into(),
        );
    }
    let result = migrate_locked(&mut conn).await;
    sqlx::query("SELECT RELEASE_LOCK('kora_migrate')")
        .execute(&mut *conn)
        .await?;
    result
}

async fn migrate_locked(conn: &mut MySqlConnection) -> Result<(), AttemptError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS kora_schema (version INT NOT NULL PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let current: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM kora_schema")
        .fetch_one(&mut *conn)
        .await?;
    let current = current.unwrap_or(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::NewerFormat {
            path: "MySQL database".into(),
            found: current as u64,
            supported: MIGRATIONS.len() as u64,
        }
        .into());
    }
    for (index, statements) in MIGRATIONS.iter().enumerate().skip(current) {
        for statement in *statements {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        sqlx::query("INSERT INTO kora_schema (version, applied_ms) VALUES (?, ?)")
            .bind(index as i32 + 1)
            .bind(wall_millis() as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

struct MysqlBatcher {
    pool: MySqlPool,
}

#[async_trait]
impl Batcher for MysqlBatcher {
    async fn commit_batch(&mut self, writes: Vec<Write>) -> Result<Vec<Outcome>, StoreError> {
        with_retries("committing to MySQL", || commit_batch(&self.pool, &writes)).await
    }
}

/// `(?, ?, …)` repeated `rows` times, `columns` placeholders each.
fn values_list(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

async fn commit_batch(pool: &MySqlPool, writes: &[Write]) -> Result<Vec<Outcome>, AttemptError> {
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

    for chunk in plan.upserts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO kora_records ({RECORD_COLUMNS}) VALUES {}
             ON DUPLICATE KEY UPDATE leaf_stamp = VALUES(leaf_stamp), leaf = VALUES(leaf),
                 tombstone = VALUES(tombstone), branch = VALUES(branch)",
            values_list(chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for (key, record) in chunk {
            let columns = record_columns(record);
            query = query
                .bind(key)
                .bind(columns.leaf_stamp)
                .bind(columns.leaf)
                .bind(columns.tombstone)
                .bind(columns.branch);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in plan.deletes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM kora_records WHERE path_key IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in plan.log.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO kora_log (seq, stamp, committed_ms, mutation) VALUES {}",
            values_list(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.seq)
                .bind(&row.stamp)
                .bind(row.committed_ms)
                .bind(&row.mutation);
        }
        query.execute(&mut *tx).await?;
    }
    insert_effects(&mut tx, plan.committed(writes)).await?;
    sqlx::query("UPDATE kora_meta SET value = ? WHERE name = 'last_seq'")
        .bind(last + plan.count() as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(plan.outcomes)
}

/// Loads a batch's read set: its single records and its subtree ranges, in one statement.
async fn load(conn: &mut MySqlConnection, writes: &[Write]) -> Result<Records, AttemptError> {
    let set = read_set(writes);
    let ranges = subtree_ranges(&set);
    let mut records = Records::new();
    if set.points.is_empty() {
        return Ok(records);
    }
    let mut conditions = vec![format!(
        "path_key IN ({})",
        vec!["?"; set.points.len()].join(", ")
    )];
    for (_, end) in &ranges {
        conditions.push(match end {
            Some(_) => "(path_key > ? AND path_key < ?)".into(),
            None => "path_key > ?".into(),
        });
    }
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM kora_records WHERE {}",
        conditions.join(" OR ")
    );
    let mut query = sqlx::query_as::<_, RecordRow>(&sql);
    for key in &set.points {
        query = query.bind(key);
    }
    for (after, before) in &ranges {
        query = query.bind(after);
        if let Some(before) = before {
            query = query.bind(before);
        }
    }
    for row in query.fetch_all(&mut *conn).await? {
        let (key, record) = record_from(row)?;
        records.load(key, record);
    }
    Ok(records)
}

async fn insert_effects(
    conn: &mut MySqlConnection,
    committed: impl Iterator<Item = (&Write, &Commit)>,
) -> Result<(), AttemptError> {
    let now = wall_millis() as i64;
    let rows: Vec<(i64, &str, String)> = committed
        .flat_map(|(write, commit)| {
            write
                .effects
                .iter()
                .map(move |e| (commit.seq as i64, e.kind.as_str(), e.payload.to_string()))
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO kora_outbox (seq, kind, payload, next_at_ms) VALUES {}",
            values_list(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (seq, kind, payload) in chunk {
            query = query.bind(seq).bind(kind).bind(payload).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const SNAPSHOT: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

/// Up to `limit` change-log entries after `after`, oldest first.
async fn log_after(
    conn: &mut MySqlConnection,
    after: Seq,
    limit: usize,
) -> Result<Vec<Change>, AttemptError> {
    let rows: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(
        "SELECT seq, stamp, mutation FROM kora_log WHERE seq > ? ORDER BY seq LIMIT ?",
    )
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
    conn: &mut MySqlConnection,
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

async fn meta(conn: &mut MySqlConnection, name: &str) -> Result<i64, AttemptError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM kora_meta WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Answers one path query, reading the range page by page and stopping at the limit.
async fn select(
    conn: &mut MySqlConnection,
    part: &PathQuery,
) -> Result<Option<Value>, AttemptError> {
    let mut asm = Assembler::new(part);
    let own: Option<RecordRow> = sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM kora_records WHERE path_key = ?"
    ))
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
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut conditions = vec!["path_key >= ?"];
        if end.is_some() {
            conditions.push("path_key < ?");
        }
        if cursor.is_some() {
            conditions.push(if part.reverse {
                "path_key < ?"
            } else {
                "path_key > ?"
            });
        }
        let order = if part.reverse { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM kora_records WHERE {} ORDER BY path_key {order} LIMIT ?",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query_as::<_, RecordRow>(&sql).bind(&start);
        if let Some(end) = &end {
            query = query.bind(end);
        }
        if let Some(cursor) = &cursor {
            query = query.bind(cursor.clone());
        }
        let rows = query.bind(READ_PAGE).fetch_all(&mut *conn).await?;
        let full_page = rows.len() as i64 == READ_PAGE;
        if !push_rows(&mut asm, rows, &mut cursor)? || !full_page {
            return Ok(asm.finish());
        }
    }
}

/// The rows of a range statement (`leaves_statement`, `records_statement`).
impl MysqlStore {
    async fn range_rows(
        &self,
        what: &'static str,
        (sql, lower, end, limit): (String, Vec<u8>, Vec<u8>, i64),
    ) -> Result<Vec<RecordRow>, StoreError> {
        self.gate
            .run(what, || async {
                let rows: Vec<RecordRow> = sqlx::query_as(&sql)
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
impl Store for MysqlStore {
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
            .run("reading from MySQL", || async {
                let mut tx = self.pool.begin_with(SNAPSHOT).await?;
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
        let statement = leaves_statement(page, ["?", "?", "?"]);
        leaves_from(
            self.range_rows("reading leaves from MySQL", statement)
                .await?,
        )
    }

    async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, StoreError> {
        let statement = records_statement(page, ["?", "?", "?"]);
        records_from(
            self.range_rows("reading records from MySQL", statement)
                .await?,
        )
    }

    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError> {
        self.gate
            .run("reading the MySQL change log", || async {
                let mut tx = self.pool.begin_with(SNAPSHOT).await?;
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
            .run("reading from MySQL", || async {
                let mut conn = self.pool.acquire().await?;
                Ok(meta(&mut conn, "last_seq").await? as Seq)
            })
            .await
    }

    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError> {
        self.gate
            .run("claiming effects in MySQL", || async {
                let mut tx = self.pool.begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM kora_outbox
                 WHERE NOT dead AND next_at_ms <= ? AND lease_until_ms <= ?
                 ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
                )
                .bind(claim.now_ms as i64)
                .bind(claim.now_ms as i64)
                .bind(claim.limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                if ids.is_empty() {
                    tx.rollback().await?;
                    return Ok(Vec::new());
                }
                let list = vec!["?"; ids.len()].join(", ");
                let sql = format!("UPDATE kora_outbox SET lease_until_ms = ? WHERE id IN ({list})");
                let mut update = sqlx::query(&sql).bind(claim.lease_until_ms() as i64);
                for id in &ids {
                    update = update.bind(id);
                }
                update.execute(&mut *tx).await?;
                let sql = format!("SELECT {EFFECT_COLUMNS} FROM kora_outbox WHERE id IN ({list})");
                let mut select = sqlx::query_as::<_, EffectRow>(&sql);
                for id in &ids {
                    select = select.bind(id);
                }
                let rows = select.fetch_all(&mut *tx).await?;
                tx.commit().await?;
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
            .run("compacting MySQL", || async {
                let mut tx = self.pool.begin().await?;
                let last: i64 = sqlx::query_scalar(
                    "SELECT value FROM kora_meta WHERE name = 'last_seq' FOR UPDATE",
                )
                .fetch_one(&mut *tx)
                .await?;
                let mut rewritten = 0;
                for column in ["tombstone", "branch"] {
                    let sql = format!("UPDATE kora_records SET {column} = NULL WHERE {column} < ?");
                    rewritten += sqlx::query(&sql)
                        .bind(&horizon)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let removed = sqlx::query(
                    "DELETE FROM kora_records
                 WHERE leaf_stamp IS NULL AND tombstone IS NULL AND branch IS NULL",
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let keep_from: Option<i64> =
                    sqlx::query_scalar("SELECT min(seq) FROM kora_log WHERE committed_ms >= ?")
                        .bind(log_before_ms as i64)
                        .fetch_one(&mut *tx)
                        .await?;
                let keep_from = keep_from.unwrap_or(last + 1);
                let log_removed = sqlx::query("DELETE FROM kora_log WHERE seq < ?")
                    .bind(keep_from)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "UPDATE kora_meta SET value = GREATEST(value, ?) WHERE name = 'log_start'",
                )
                .bind(keep_from)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Compacted {
                    records_removed: removed,
                    records_rewritten: rewritten.saturating_sub(removed),
                    log_entries_removed: log_removed,
                })
            })
            .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let counts = outbox::counts(self).await?;
        self.gate
            .run("reading MySQL statistics", || async {
                let mut tx = self.pool.begin_with(SNAPSHOT).await?;
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
                    backend: "mysql".into(),
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
impl OutboxSql for MysqlStore {
    fn name(&self) -> &'static str {
        "MySQL"
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, AttemptError> {
        let query = sqlx::query_with(sql, arguments::<sqlx::MySql>(args)?);
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn effect_rows(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<EffectRow>, AttemptError> {
        let query = sqlx::query_as_with::<_, EffectRow, _>(sql, arguments::<sqlx::MySql>(args)?);
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn count(&self, sql: &str) -> Result<i64, AttemptError> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }
}
