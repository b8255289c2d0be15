//! `cassandra://` — Apache Cassandra (5.0; 4.1 speaks the same CQL) through the `scylla`
//! driver.
//!
//! Kora keeps its flat records here as in the SQL backends (`kora_core::records`: a leaf and
//! its stamp, a tombstone, a branch stamp per path) and resolves conflicts itself; Cassandra
//! is an ordered, replicated key-value store underneath. Why not let Cassandra resolve them by
//! write timestamp: a Kora stamp is 128 bits (time, counter, origin) and a write timestamp 64,
//! so equal timestamps from two origins would be settled by comparing values, not origins;
//! and the visibility rule (a leaf is hidden by a newer write beneath it, which turned it into
//! a branch) is not per-cell last-writer-wins at all. docs/operations.md has the details.
//!
//! - Layout (`layout.rs`, `schema.rs`): a partition per top-level key, clustered by the
//!   encoded rest of the path, so a subtree read is one clustering slice.
//! - Commits (`commit.rs`, `log.rs`): one Paxos round per commit batch appends the log rows
//!   and allocates their sequence numbers; the records follow, timestamped with the sequence.
//! - Effects (`outbox.rs`): leases taken with lightweight transactions.
//! - Failures: every request has a timeout; transient failures are retried with backoff for
//!   `retry::CONNECT_RETRY_FOR`, then reported as `unavailable`.

mod commit;
pub mod config;
mod error;
mod layout;
mod log;
mod outbox;
mod read;
mod schema;

use std::sync::Arc;

use async_trait::async_trait;
use kora_core::records::Record;
use kora_core::{Path, PathQuery, Stamp, Value};
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::Mutex;

pub use commit::{MAX_APPEND_BYTES, MAX_CAS_LOSSES};
pub use config::CassandraConfig;
pub use outbox::MAX_EFFECTS_PER_WRITE;

use crate::error::StoreError;
use crate::group::GroupCommit;
use crate::retry::{with_retries, Gate};
use crate::sql::{check_key_lengths, record_from};
use crate::store::{Claim, Page};
use crate::store::{
    Commit, Compacted, Effect, EffectCounts, LogRead, Seq, Snapshot, Stats, Store, Submitted, Write,
};
use commit::{settle, CassandraBatcher, Shared, WriterState};
use error::Attempt;
use layout::compaction_timestamp;
use log::{APPLIED, LOG_START};
use schema::{migrate, Statements};

/// Longest encoded path: Cassandra's clustering and partition key components hold at most
/// 64 KiB; half that leaves room for the rest of the row.
pub const MAX_KEY_BYTES: usize = 32 * 1024;

/// How long to wait for a TCP connection to a node.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Drops the keyspace a `cassandra://` URL names, with everything Kora kept in it (tests
/// and benchmarks clean up with it; it is also how to delete a Kora database on Cassandra).
pub async fn drop_keyspace(url: &str) -> Result<(), StoreError> {
    let config = CassandraConfig::parse(url)?;
    let builder = session_builder(&config)?;
    with_retries("dropping a Cassandra keyspace", || async {
        let session = builder.build().await?;
        let cql = format!("DROP KEYSPACE IF EXISTS {}", config.keyspace);
        session.query_unpaged(cql, ()).await?;
        Ok::<_, Attempt>(())
    })
    .await
}

/// How to connect: the nodes, the credentials, TLS.
fn session_builder(config: &CassandraConfig) -> Result<SessionBuilder, StoreError> {
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.hosts)
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some((user, password)) = &config.credentials {
        builder = builder.user(user, password);
    }
    if let Some(ca) = &config.tls {
        let tls = config::tls_client(ca.as_deref()).map_err(|reason| StoreError::InvalidUrl {
            url: config.describe(),
            reason,
        })?;
        builder = builder.tls_context(Some(Arc::new(tls)));
    }
    Ok(builder)
}

/// The Cassandra store.
pub struct CassandraStore {
    shared: Arc<Shared>,
    writer: GroupCommit,
    gate: Gate,
}

impl CassandraStore {
    /// Connects (retrying while no node answers), creates the keyspace and migrates the
    /// schema if needed, and starts the committer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let config = CassandraConfig::parse(url)?;
        let builder = session_builder(&config)?;
        let session = with_retries("connecting to Cassandra", || async {
            Ok::<_, Attempt>(builder.build().await?)
        })
        .await?;
        with_retries("migrating the Cassandra schema", || {
            migrate(&session, &config)
        })
        .await?;
        let st = with_retries("preparing Cassandra statements", || {
            Statements::prepare(&session, &config)
        })
        .await?;
        tracing::info!(url = %config.describe(), "opened the Cassandra store");
        let shared = Arc::new(Shared {
            session,
            st,
            writer: Mutex::new(WriterState::default()),
        });
        let writer = GroupCommit::spawn(CassandraBatcher {
            shared: shared.clone(),
        });
        Ok(CassandraStore {
            shared,
            writer,
            gate: Gate::default(),
        })
    }

    /// Drops tombstones and branch stamps older than `horizon` from every record, written at
    /// a timestamp between the head's batch and the next, so a commit racing the compaction
    /// (from another node) always wins over it.
    async fn compact_records(&self, horizon: Stamp) -> Result<(u64, u64), Attempt> {
        let shared = &self.shared;
        let mut state = shared.writer.lock().await;
        let head = log::head(&shared.session, &shared.st).await?;
        settle(shared, &mut state, head).await?;
        drop(state);
        let timestamp = compaction_timestamp(head);
        let mut changed = Vec::new();
        shared
            .reader()
            .pages(&shared.st.rec_all, (), |rows: Vec<AllRow>| {
                for (part, rest, stamp, leaf, tombstone, branch) in rows {
                    let (rest, record) = record_from((rest, stamp, leaf, tombstone, branch))?;
                    let mut after = record.clone();
                    after.tombstone = after.tombstone.filter(|s| *s >= horizon);
                    after.branch = after.branch.filter(|s| *s >= horizon);
                    if after != record {
                        changed.push((part, rest, after));
                    }
                }
                Ok(true)
            })
            .await?;
        let (mut removed, mut rewritten) = (0, 0);
        for (part, rest, record) in changed {
            if record.is_empty() {
                removed += 1;
                shared
                    .session
                    .execute_unpaged(&shared.st.rec_del, (timestamp, &part, &rest))
                    .await?;
            } else {
                rewritten += 1;
                put(shared, timestamp, &part, &rest, &record).await?;
            }
        }
        Ok((removed, rewritten))
    }

    /// Removes the log's prefix committed before `before_ms` (never past `applied`, whose
    /// redo a node may still need). Returns the entries removed.
    async fn compact_log(&self, before_ms: u64) -> Result<u64, Attempt> {
        let (session, st) = (&self.shared.session, &self.shared.st);
        let applied = log::meta(session, st, APPLIED).await?;
        let start = log::meta(session, st, LOG_START).await?.max(1);
        let mut keep_from = applied + 1;
        let mut removed = 0;
        self.shared
            .reader()
            .pages(&st.log_times, (start as i64,), |rows: Vec<(i64, i64)>| {
                for (seq, committed_ms) in rows {
                    let seq = seq.max(0) as Seq;
                    if committed_ms.max(0) as u64 >= before_ms || seq >= keep_from {
                        keep_from = keep_from.min(seq);
                        return Ok(false);
                    }
                    removed += 1;
                }
                Ok(true)
            })
            .await?;
        if keep_from > start {
            // log_start first: a reader that finds rows missing then sees why.
            log::raise_meta(session, st, LOG_START, keep_from).await?;
            session
                .execute_unpaged(&st.log_trim, (keep_from as i64,))
                .await?;
        }
        Ok(removed)
    }
}

/// A row of `kora_records` with its partition.
type AllRow = (
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

async fn put(
    shared: &Shared,
    timestamp: i64,
    part: &[u8],
    rest: &[u8],
    record: &Record,
) -> Result<(), Attempt> {
    let values = log::record_row(part.to_vec(), rest.to_vec(), record, timestamp);
    shared
        .session
        .execute_unpaged(&shared.st.rec_put, values)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for CassandraStore {
    async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        self.submit(write).await?.await
    }

    async fn submit(&self, write: Write) -> Result<Submitted, StoreError> {
        self.gate.check()?;
        check_key_lengths(&write, MAX_KEY_BYTES)?;
        if write.effects.len() > MAX_EFFECTS_PER_WRITE {
            return Err(StoreError::TooLarge {
                what: "a write's list of effects",
                size: write.effects.len(),
                limit: MAX_EFFECTS_PER_WRITE,
            });
        }
        self.writer.submit(write).await
    }

    async fn read(&self, parts: &[PathQuery]) -> Result<Snapshot, StoreError> {
        self.gate
            .run("reading from Cassandra", || async {
                let shared = &self.shared;
                // Every commit up to `applied` is in the records read after it (later ones may
                // be too: replaying a change already seen is harmless, docs/design.md §5).
                let seq = log::meta(&shared.session, &shared.st, APPLIED).await?;
                let reader = shared.reader();
                let values =
                    futures_util::future::try_join_all(parts.iter().map(|p| reader.query(p)))
                        .await?;
                Ok(Snapshot { seq, values })
            })
            .await
    }

    async fn leaves(&self, page: Page<'_>) -> Result<Vec<(Path, Value)>, StoreError> {
        self.gate
            .run("reading leaves from Cassandra", || async {
                self.shared.reader().leaves(page).await
            })
            .await
    }

    async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, StoreError> {
        self.gate
            .run("reading records from Cassandra", || async {
                self.shared.reader().records(page).await
            })
            .await
    }

    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError> {
        self.gate
            .run("reading the Cassandra change log", || async {
                let (session, st) = (&self.shared.session, &self.shared.st);
                let changes = log::changes_after(session, st, after, limit).await?;
                if changes.is_empty() {
                    // Read after the rows: compaction raises log_start before it trims.
                    let start = log::meta(session, st, LOG_START).await?.max(1);
                    if after + 1 < start {
                        return Ok(LogRead::Compacted { oldest: start });
                    }
                }
                Ok(LogRead::Changes(changes))
            })
            .await
    }

    async fn last_seq(&self) -> Result<Seq, StoreError> {
        self.gate
            .run("reading from Cassandra", || {
                log::head(&self.shared.session, &self.shared.st)
            })
            .await
    }

    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError> {
        self.gate
            .run("claiming effects in Cassandra", || {
                outbox::claim(&self.shared.session, &self.shared.st, claim)
            })
            .await
    }

    async fn complete_effect(&self, id: u64) -> Result<(), StoreError> {
        self.gate
            .run("completing an effect in Cassandra", || {
                outbox::complete(&self.shared.session, &self.shared.st, id)
            })
            .await
    }

    async fn retry_effect(&self, id: u64, next_at_ms: u64, error: &str) -> Result<(), StoreError> {
        self.gate
            .run("rescheduling an effect in Cassandra", || {
                outbox::fail(
                    &self.shared.session,
                    &self.shared.st,
                    id,
                    Some(next_at_ms),
                    error,
                )
            })
            .await
    }

    async fn bury_effect(&self, id: u64, error: &str) -> Result<(), StoreError> {
        self.gate
            .run("burying an effect in Cassandra", || {
                outbox::fail(&self.shared.session, &self.shared.st, id, None, error)
            })
            .await
    }

    async fn dead_effects(&self, limit: usize) -> Result<Vec<Effect>, StoreError> {
        self.gate
            .run("listing dead effects in Cassandra", || {
                outbox::dead(&self.shared.session, &self.shared.st, limit)
            })
            .await
    }

    async fn revive_effect(&self, id: u64) -> Result<(), StoreError> {
        self.gate
            .run("reviving an effect in Cassandra", || {
                outbox::revive(&self.shared.session, &self.shared.st, id)
            })
            .await
    }

    async fn effect_counts(&self) -> Result<EffectCounts, StoreError> {
        let (pending, dead) = self
            .gate
            .run("counting effects in Cassandra", || {
                outbox::counts(&self.shared.session, &self.shared.st)
            })
            .await?;
        Ok(EffectCounts { pending, dead })
    }

    async fn discard_effect(&self, id: u64) -> Result<(), StoreError> {
        self.gate
            .run("discarding an effect in Cassandra", || {
                outbox::discard(&self.shared.session, &self.shared.st, id)
            })
            .await
    }

    async fn compact(&self, horizon: Stamp, log_before_ms: u64) -> Result<Compacted, StoreError> {
        let (records_removed, records_rewritten) = self
            .gate
            .run("compacting Cassandra records", || {
                self.compact_records(horizon)
            })
            .await?;
        let log_entries_removed = self
            .gate
            .run("compacting the Cassandra log", || {
                self.compact_log(log_before_ms)
            })
            .await?;
        Ok(Compacted {
            records_removed,
            records_rewritten,
            log_entries_removed,
        })
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.gate
            .run("reading Cassandra statistics", || async {
                let (session, st) = (&self.shared.session, &self.shared.st);
                let reader = self.shared.reader();
                let last_seq = log::head(session, st).await?;
                let log_start = log::meta(session, st, LOG_START).await?.max(1);
                let mut log_entries = 0u64;
                reader
                    .pages(&st.log_times, (0i64,), |rows: Vec<(i64, i64)>| {
                        log_entries += rows.len() as u64;
                        Ok(true)
                    })
                    .await?;
                let mut records = 0u64;
                reader
                    .pages(&st.rec_keys, (), |rows: Vec<(Vec<u8>, Vec<u8>)>| {
                        records += rows.len() as u64;
                        Ok(true)
                    })
                    .await?;
                let (effects_pending, effects_dead) = outbox::counts(session, st).await?;
                Ok(Stats {
                    backend: "cassandra".into(),
                    last_seq,
                    log_start: log_start.max(1),
                    log_entries,
                    records,
                    effects_pending,
                    effects_dead,
                })
            })
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.gate.check()?;
        self.writer.close().await;
        self.gate.shut();
        Ok(())
    }
}
