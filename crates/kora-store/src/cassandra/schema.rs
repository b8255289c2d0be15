//! The keyspace, its tables (created by versioned migrations on first open), and the prepared
//! statements Kora runs against them.
//!
//! | table | key | purpose |
//! |---|---|---|
//! | `kora_schema` | version | migrations applied |
//! | `kora_records` | ((part), rest) | one record per path: `part` is the encoded top-level segment, `rest` the encoded rest of the path, so a subtree is one clustering slice |
//! | `kora_log` | ((bucket), seq), static `last` | the change log, in one partition whose static `last` is the sequence every commit compares-and-sets |
//! | `kora_meta` | name | `applied` (every commit up to it is in `kora_records`) and `log_start`, both kept at their largest by write timestamp |
//! | `kora_outbox` | ((shard), id) | effects to run, in [`super::outbox::SHARDS`] partitions |

use kora_core::stamp::wall_millis;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

use super::config::CassandraConfig;
use super::error::Attempt;
use crate::error::StoreError;

/// Each entry is one schema version: the statements that take the schema there. Every
/// statement is idempotent (`IF NOT EXISTS`), so nodes migrating at once agree.
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS kora_records (
        part blob, rest blob,
        leaf_stamp blob, leaf text, tombstone blob, branch blob,
        PRIMARY KEY ((part), rest))",
    "CREATE TABLE IF NOT EXISTS kora_log (
        bucket int, seq bigint, last bigint static,
        stamp blob, committed_ms bigint, mutation text,
        redo list<frozen<tuple<blob, blob, text, blob, blob>>>,
        effects list<frozen<tuple<text, text>>>,
        PRIMARY KEY ((bucket), seq))",
    "CREATE TABLE IF NOT EXISTS kora_meta (name text PRIMARY KEY, value bigint)",
    "CREATE TABLE IF NOT EXISTS kora_outbox (
        shard int, id bigint, seq bigint, kind text, payload text,
        attempts int, next_at_ms bigint, lease_until_ms bigint, last_error text, dead boolean,
        PRIMARY KEY ((shard), id))",
    "INSERT INTO kora_log (bucket, last) VALUES (0, 0) IF NOT EXISTS",
]];

/// Creates the keyspace if needed, switches the session to it, and migrates.
pub async fn migrate(session: &Session, config: &CassandraConfig) -> Result<(), Attempt> {
    let create = format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
        config.keyspace,
        config.replication.cql()
    );
    session.query_unpaged(create, ()).await?;
    session
        .use_keyspace(&config.keyspace, false)
        .await
        .map_err(|e| StoreError::Internal(format!("using keyspace {}: {e}", config.keyspace)))?;
    session
        .query_unpaged(
            "CREATE TABLE IF NOT EXISTS kora_schema (version int PRIMARY KEY, applied_ms bigint)",
            (),
        )
        .await?;
    let current = current_version(session).await?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::NewerFormat {
            path: format!("Cassandra keyspace {}", config.keyspace),
            found: current as u64,
            supported: MIGRATIONS.len() as u64,
        }
        .into());
    }
    for (index, statements) in MIGRATIONS.iter().enumerate().skip(current) {
        for statement in *statements {
            session.query_unpaged(*statement, ()).await?;
        }
        session
            .query_unpaged(
                "INSERT INTO kora_schema (version, applied_ms) VALUES (?, ?) IF NOT EXISTS",
                (index as i32 + 1, wall_millis() as i64),
            )
            .await?;
    }
    Ok(())
}

async fn current_version(session: &Session) -> Result<usize, Attempt> {
    let rows = session
        .query_unpaged("SELECT version FROM kora_schema", ())
        .await?
        .into_rows_result()?;
    let mut max = 0;
    for row in rows.rows::<(i32,)>()? {
        max = max.max(row?.0.max(0) as usize);
    }
    Ok(max)
}

/// Every statement Kora runs, prepared once per store.
pub struct Statements {
    pub head: PreparedStatement,
    pub log_append: PreparedStatement,
    pub log_after: PreparedStatement,
    pub log_redo: PreparedStatement,
    pub log_times: PreparedStatement,
    pub log_trim: PreparedStatement,
    pub meta_get: PreparedStatement,
    pub meta_set: PreparedStatement,
    pub rec_points: PreparedStatement,
    pub rec_asc: PreparedStatement,
    pub rec_desc: PreparedStatement,
    pub rec_parts: PreparedStatement,
    pub rec_all: PreparedStatement,
    pub rec_keys: PreparedStatement,
    pub rec_put: PreparedStatement,
    pub rec_del: PreparedStatement,
    pub out_put: PreparedStatement,
    pub out_shard: PreparedStatement,
    pub out_get: PreparedStatement,
    pub out_claim: PreparedStatement,
    pub out_delete: PreparedStatement,
    pub out_retry: PreparedStatement,
    pub out_bury: PreparedStatement,
    pub out_revive: PreparedStatement,
    pub out_discard: PreparedStatement,
}

/// Which consistency a statement runs at.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    /// A lightweight transaction: Paxos at the serial level, committed at the write level.
    Lwt,
    /// A linearizable read (sees every completed LWT).
    SerialRead,
}

const RECORD: &str = "rest, leaf_stamp, leaf, tombstone, branch";
const EFFECT: &str =
    "id, seq, kind, payload, attempts, next_at_ms, last_error, dead, lease_until_ms";

impl Statements {
    pub async fn prepare(session: &Session, config: &CassandraConfig) -> Result<Self, Attempt> {
        let p = |cql: String, kind: Kind| prepare(session, config, cql, kind);
        use Kind::*;
        Ok(Statements {
            head: p(
                "SELECT last FROM kora_log WHERE bucket = 0 LIMIT 1".into(),
                Read,
            )
            .await?,
            log_append: p(
                "UPDATE kora_log SET last = ?, stamp = ?, committed_ms = ?, mutation = ?,
                 redo = ?, effects = ? WHERE bucket = 0 AND seq = ? IF last = ?"
                    .into(),
                Lwt,
            )
            .await?,
            log_after: p(
                "SELECT seq, stamp, mutation FROM kora_log WHERE bucket = 0 AND seq > ? LIMIT ?"
                    .into(),
                Read,
            )
            .await?,
            log_redo: p(
                "SELECT seq, redo, effects FROM kora_log
                 WHERE bucket = 0 AND seq > ? AND seq <= ?"
                    .into(),
                Read,
            )
            .await?,
            log_times: p(
                "SELECT seq, committed_ms FROM kora_log WHERE bucket = 0 AND seq >= ?".into(),
                Read,
            )
            .await?,
            log_trim: p(
                "DELETE FROM kora_log WHERE bucket = 0 AND seq < ?".into(),
                Write,
            )
            .await?,
            meta_get: p("SELECT value FROM kora_meta WHERE name = ?".into(), Read).await?,
            meta_set: p(
                "UPDATE kora_meta USING TIMESTAMP ? SET value = ? WHERE name = ?".into(),
                Write,
            )
            .await?,
            rec_points: p(
                format!("SELECT {RECORD} FROM kora_records WHERE part = ? AND rest IN ?"),
                Read,
            )
            .await?,
            rec_asc: p(
                format!(
                    "SELECT {RECORD} FROM kora_records WHERE part = ? AND rest >= ? AND rest < ?"
                ),
                Read,
            )
            .await?,
            rec_desc: p(
                format!(
                    "SELECT {RECORD} FROM kora_records WHERE part = ? AND rest >= ? AND rest < ?
                     ORDER BY rest DESC"
                ),
                Read,
            )
            .await?,
            rec_parts: p("SELECT DISTINCT part FROM kora_records".into(), Read).await?,
            rec_all: p(format!("SELECT part, {RECORD} FROM kora_records"), Read).await?,
            rec_keys: p("SELECT part, rest FROM kora_records".into(), Read).await?,
            rec_put: p(
                "INSERT INTO kora_records (part, rest, leaf_stamp, leaf, tombstone, branch)
                 VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
                    .into(),
                Write,
            )
            .await?,
            rec_del: p(
                "DELETE FROM kora_records USING TIMESTAMP ? WHERE part = ? AND rest = ?".into(),
                Write,
            )
            .await?,
            out_put: p(
                "INSERT INTO kora_outbox (shard, id, seq, kind, payload, attempts, next_at_ms,
                 lease_until_ms, dead) VALUES (?, ?, ?, ?, ?, 0, ?, 0, false) USING TIMESTAMP ?"
                    .into(),
                Write,
            )
            .await?,
            out_shard: p(
                format!("SELECT {EFFECT} FROM kora_outbox WHERE shard = ?"),
                Read,
            )
            .await?,
            out_get: p(
                "SELECT attempts FROM kora_outbox WHERE shard = ? AND id = ?".into(),
                SerialRead,
            )
            .await?,
            out_claim: p(
                "UPDATE kora_outbox SET lease_until_ms = ? WHERE shard = ? AND id = ?
                 IF dead = false AND next_at_ms <= ? AND lease_until_ms <= ?"
                    .into(),
                Lwt,
            )
            .await?,
            out_delete: p(
                "DELETE FROM kora_outbox WHERE shard = ? AND id = ? IF EXISTS".into(),
                Lwt,
            )
            .await?,
            out_retry: p(
                "UPDATE kora_outbox SET attempts = ?, next_at_ms = ?, last_error = ?,
                 lease_until_ms = 0 WHERE shard = ? AND id = ? IF attempts = ?"
                    .into(),
                Lwt,
            )
            .await?,
            out_bury: p(
                "UPDATE kora_outbox SET attempts = ?, last_error = ?, dead = true,
                 lease_until_ms = 0 WHERE shard = ? AND id = ? IF attempts = ?"
                    .into(),
                Lwt,
            )
            .await?,
            out_revive: p(
                "UPDATE kora_outbox SET dead = false, attempts = 0, next_at_ms = 0
                 WHERE shard = ? AND id = ? IF dead = true"
                    .into(),
                Lwt,
            )
            .await?,
            out_discard: p(
                "DELETE FROM kora_outbox WHERE shard = ? AND id = ? IF dead = true".into(),
                Lwt,
            )
            .await?,
        })
    }
}

async fn prepare(
    session: &Session,
    config: &CassandraConfig,
    cql: String,
    kind: Kind,
) -> Result<PreparedStatement, Attempt> {
    let mut statement = session.prepare(cql).await?;
    match kind {
        Kind::Read => statement.set_consistency(config.read),
        Kind::Write => statement.set_consistency(config.write),
        Kind::Lwt => {
            statement.set_consistency(config.write);
            statement.set_serial_consistency(Some(config.serial));
        }
        Kind::SerialRead => statement.set_consistency(match config.serial {
            SerialConsistency::Serial => Consistency::Serial,
            SerialConsistency::LocalSerial => Consistency::LocalSerial,
        }),
    }
    // Every statement may be retried: writes carry their own timestamps or conditions.
    statement.set_is_idempotent(true);
    statement.set_request_timeout(Some(config.timeout));
    Ok(statement)
}
