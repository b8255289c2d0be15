//! The `Store` trait: a small, complete interface over an ordered key space that every
//! backend implements and one conformance suite checks.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use kora_core::records::Record;
use kora_core::{Mutation, Path, PathQuery, Stamp, Value};
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::error::StoreError;
use crate::history::History;

/// A commit's position in the change log. Starts at 1; 0 means "before the first commit".
pub use kora_core::Seq;

/// A stamped mutation to commit, with the effects to run once it is durable and the
/// conditions it commits under (`crate::condition`).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub stamp: Stamp,
    pub mutation: Mutation,
    pub effects: Vec<NewEffect>,
    /// Checked against the state the write is applied to; if one fails, the write is refused
    /// with [`StoreError::Conflict`] and nothing of it is written.
    pub conditions: Vec<Condition>,
    /// The stamp is the server's, taken when the write arrived, not a client's: the write is
    /// ordered by commit. If something it overwrites carries a newer stamp (a write stamped
    /// after it that committed first, or another node whose clock is ahead), the committer
    /// gives it a newer one, as it does a conditional write (`crate::condition`).
    pub server_stamped: bool,
}

impl Write {
    pub fn new(stamp: Stamp, mutation: Mutation) -> Self {
        Write {
            stamp,
            mutation,
            effects: Vec::new(),
            conditions: Vec::new(),
            server_stamped: false,
        }
    }

    /// True when the committer may give the write a newer stamp: it is conditional, or its
    /// stamp is the server's.
    pub fn ordered_by_commit(&self) -> bool {
        self.server_stamped || !self.conditions.is_empty()
    }

    /// This write, committed only if `conditions` hold.
    pub fn on(mut self, conditions: Vec<Condition>) -> Self {
        self.conditions = conditions;
        self
    }
}

/// A write handed to the committer ([`Store::submit`]): resolves to its commit.
pub type Submitted = Pin<Box<dyn Future<Output = Result<Commit, StoreError>> + Send>>;

/// A durable commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub seq: Seq,
    /// The write's stamp; for a conditional write, possibly a newer one the committer gave it
    /// (`crate::condition`).
    pub stamp: Stamp,
    /// What the commit changed in the visible tree (see `kora_core::Tree::apply`): empty
    /// when the mutation lost every conflict.
    pub effect: Mutation,
}

/// One entry of the change log: a commit and its effect on the visible tree. Applied in
/// sequence order without stamps, the effects rebuild the tree exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: Seq,
    pub stamp: Stamp,
    pub mutation: Mutation,
}

/// The answer to reading the change log after a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum LogRead {
    /// The next changes after the requested sequence, oldest first (possibly none).
    Changes(Vec<Change>),
    /// The log no longer holds the changes right after the requested sequence: it was
    /// compacted up to `oldest - 1`. The reader needs a fresh snapshot.
    Compacted { oldest: Seq },
}

/// One page of a scan in key order (`kora_core::key`): up to `limit` entries at or beneath
/// `under`, after the entry at `after` (exclusive; `None`: from the first). What an export
/// reads at a time ([`Store::leaves`], [`Store::records`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page<'a> {
    pub under: &'a Path,
    pub after: Option<&'a Path>,
    pub limit: usize,
}

impl<'a> Page<'a> {
    pub fn new(under: &'a Path, after: Option<&'a Path>, limit: usize) -> Self {
        Page {
            under,
            after,
            limit,
        }
    }
}

/// A request to lease effects: up to `limit` pending effects that are due at `now_ms` and
/// not leased by someone else, each leased until `now_ms + lease_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub now_ms: u64,
    pub lease_ms: u64,
    pub limit: usize,
}

impl Claim {
    /// When the leases this claim takes end (never 0, which stands for "not leased").
    pub fn lease_until_ms(&self) -> u64 {
        self.now_ms.saturating_add(self.lease_ms).max(1)
    }
}

/// Values read at one consistent point, and the last sequence that point includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub seq: Seq,
    /// One entry per path query, `None` where nothing is stored.
    pub values: Vec<Option<Value>>,
}

/// An effect to run after commit (a webhook, a NATS publish, a named function).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEffect {
    /// Which runner handles it, e.g. `webhook`.
    pub kind: String,
    /// What the runner needs, as JSON.
    pub payload: Value,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectState {
    /// Waiting to run or to be retried.
    Pending,
    /// Out of tries: kept for inspection until retried or discarded.
    Dead,
}

/// An effect in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub id: u64,
    /// The commit that produced it.
    pub seq: Seq,
    pub kind: String,
    pub payload: Value,
    /// Tries so far.
    pub attempts: u32,
    /// Not to be run before this time (ms since the epoch).
    pub next_at_ms: u64,
    pub last_error: Option<String>,
    pub state: EffectState,
}

/// What a backup holds: the last commit it includes, and the history it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub seq: Seq,
    pub history: History,
    /// Entries written (records, log entries, outbox entries and bookkeeping).
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Counts that describe a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub backend: String,
    pub last_seq: Seq,
    /// The oldest sequence still in the change log (`last_seq + 1` when it is empty).
    pub log_start: Seq,
    pub log_entries: u64,
    pub records: u64,
    pub effects_pending: u64,
    pub effects_dead: u64,
}

/// How many effects wait in the outbox, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectCounts {
    pub pending: u64,
    pub dead: u64,
}

/// What a compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compacted {
    pub records_removed: u64,
    pub records_rewritten: u64,
    pub log_entries_removed: u64,
}

/// Storage for Kora: the tree's records, the change log and the effect outbox, kept
/// together so that one commit writes all three atomically.
///
/// Every method may be called from many tasks at once. Commits from concurrent callers are
/// grouped into shared transactions (group commit), so durability does not cost one flush
/// per mutation under load.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a stamped mutation with its effects, durably, and returns its sequence number
    /// and its effect on the visible tree. Nothing of a failed commit is visible. A write
    /// whose conditions do not hold fails with [`StoreError::Conflict`].
    async fn commit(&self, write: Write) -> Result<Commit, StoreError>;

    /// Hands a write to the committer and returns once it is queued: of writes submitted one
    /// after another (each after the previous `submit` returned), the earlier commits first.
    /// The answer resolves to the commit, as [`Store::commit`] would. A transport uses this
    /// to commit a connection's pipelined writes in the order they arrived.
    async fn submit(&self, write: Write) -> Result<Submitted, StoreError> {
        let committed = self.commit(write).await;
        Ok(Box::pin(async move { committed }))
    }

    /// Reads several paths at one consistent point.
    async fn read(&self, parts: &[PathQuery]) -> Result<Snapshot, StoreError>;

    /// Reads one path (a convenience over [`Store::read`]).
    async fn get(&self, part: &PathQuery) -> Result<Option<Value>, StoreError> {
        let mut snapshot = self.read(std::slice::from_ref(part)).await?;
        Ok(snapshot.values.pop().flatten())
    }

    /// A page of the visible leaves, in key order. One page of an export: each page is read
    /// at one consistent point, successive pages at successive points.
    async fn leaves(&self, page: Page<'_>) -> Result<Vec<(Path, Value)>, StoreError>;

    /// A page of the stored records in key order: each path's leaf with its stamp, its
    /// tombstone, its branch stamp (`kora_core::records::Record`). What conflict resolution
    /// knows, for full-fidelity exports; the memory store reports no branch stamps (its tree
    /// keeps them otherwise).
    async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, StoreError>;

    /// The change log after `after`, at most `limit` entries, oldest first.
    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError>;

    /// The sequence of the last commit (0 when there is none).
    async fn last_seq(&self) -> Result<Seq, StoreError>;

    /// Leases the effects `claim` asks for. A claim that is neither completed nor retried
    /// before its lease ends is claimed again (at-least-once).
    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError>;

    /// Removes an effect that ran successfully.
    async fn complete_effect(&self, id: u64) -> Result<(), StoreError>;

    /// Records a failed try: the effect runs again at `next_at_ms`.
    async fn retry_effect(&self, id: u64, next_at_ms: u64, error: &str) -> Result<(), StoreError>;

    /// Records a failed last try: the effect moves to the dead letters.
    async fn bury_effect(&self, id: u64, error: &str) -> Result<(), StoreError>;

    /// Dead effects, oldest first.
    async fn dead_effects(&self, limit: usize) -> Result<Vec<Effect>, StoreError>;

    /// Moves a dead effect back to pending, with its tries reset (`NoSuchEffect` when no
    /// dead effect has this id).
    async fn revive_effect(&self, id: u64) -> Result<(), StoreError>;

    /// The outbox's effects by state: cheap enough for every metrics scrape (unlike `stats`,
    /// which counts the records).
    async fn effect_counts(&self) -> Result<EffectCounts, StoreError>;

    /// Forgets a dead effect for good (`NoSuchEffect` when no dead effect has this id: a
    /// pending one is never discarded, so this cannot race the runner).
    async fn discard_effect(&self, id: u64) -> Result<(), StoreError>;

    /// Forgets tombstones and branch stamps older than `horizon`, and change-log entries
    /// committed before `log_before_ms` (ms since the epoch).
    async fn compact(&self, horizon: Stamp, log_before_ms: u64) -> Result<Compacted, StoreError>;

    async fn stats(&self) -> Result<Stats, StoreError>;

    /// The history the store's sequence numbers belong to (`crate::history`), or `None` for
    /// a store that does not keep one: resumes are then trusted by sequence alone.
    async fn history(&self) -> Result<Option<History>, StoreError> {
        Ok(None)
    }

    /// Writes a consistent backup of everything the store holds, taken at one point in
    /// sequence order while commits go on, to `out` (format: `crate::embedded::backup`).
    /// Only the embedded store makes its own backups; the others are backed up with their
    /// database's tools (docs/operations.md).
    async fn backup(&self, out: Box<dyn std::io::Write + Send>) -> Result<Backup, StoreError> {
        drop(out);
        Err(StoreError::Unsupported(
            "this store is backed up with its database's own tools, not `kora backup` \
             (see docs/operations.md, \"Backup and restore\")"
                .into(),
        ))
    }

    /// Finishes in-flight commits and releases the store. Later calls fail with `Closed`.
    async fn close(&self) -> Result<(), StoreError>;
}
