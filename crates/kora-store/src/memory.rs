//! `memory:` — the reference tree (`kora_core::Tree`) with an in-memory change log and
//! outbox. Nothing survives the process; it is the model the other backends are checked
//! against and the fastest store for tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use kora_core::records::Record;
use kora_core::stamp::wall_millis;
use kora_core::{Path, PathQuery, Stamp, Tree, Value};

use crate::condition::{self, Conflict, Window};
use crate::error::StoreError;
use crate::history::History;
use crate::outbox::Outbox;
use crate::store::{
    Change, Claim, Commit, Compacted, Effect, EffectCounts, LogRead, Page, Seq, Snapshot, Stats,
    Store, Write,
};

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tree: Tree,
    /// Change-log entries with their commit time (ms).
    log: VecDeque<(Change, u64)>,
    last_seq: Seq,
    /// The newest stamp committed: a passing conditional write is stamped above it (a
    /// coarser bound than the flat-record stores' per-path one, with the same guarantee).
    newest: Option<Stamp>,
    outbox: Outbox,
    /// New with each store: a restarted memory server has lost everything, so resumes from
    /// its previous life are answered with a snapshot.
    history: History,
    closed: bool,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| StoreError::Internal("memory store lock poisoned".into()))?;
        if inner.closed {
            return Err(StoreError::Closed);
        }
        Ok(inner)
    }
}

impl Inner {
    fn log_start(&self) -> Seq {
        self.log
            .front()
            .map_or(self.last_seq + 1, |(change, _)| change.seq)
    }

    /// Checks a write's conditions against the tree and the log: the stamp it commits with.
    fn check(&self, write: &Write) -> Result<Stamp, Conflict> {
        if !write.conditions.is_empty() {
            let window = self.window(condition::oldest_since(&write.conditions));
            let failed = condition::check(
                &write.conditions,
                |path| self.tree.select(&PathQuery::new(path.clone())),
                &window,
                &[],
            );
            if !failed.is_empty() {
                return Err(Conflict {
                    failed,
                    seq: self.last_seq,
                });
            }
        }
        match write.ordered_by_commit() {
            true => Ok(condition::stamp_above(write.stamp, self.newest)),
            false => Ok(write.stamp),
        }
    }

    /// The logged changes after the oldest `since` (see `condition::Window`).
    fn window(&self, oldest: Option<Seq>) -> Window {
        let Some(from) = Window::start(oldest, self.last_seq) else {
            return Window::empty(self.last_seq);
        };
        let start = self.log_start();
        let from = from.max(start - 1);
        let skip = (from + 1 - start) as usize;
        Window::of_changes(from, self.log.iter().skip(skip).map(|(c, _)| c.clone()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        let mut inner = self.lock()?;
        let stamp = inner.check(&write)?;
        inner.newest = inner.newest.max(Some(stamp));
        let effect = inner
            .tree
            .apply(stamp, &write.mutation)
            .into_mutation(write.mutation);
        inner.last_seq += 1;
        let seq = inner.last_seq;
        let change = Change {
            seq,
            stamp,
            mutation: effect.clone(),
        };
        inner.log.push_back((change, wall_millis()));
        for new in write.effects {
            inner.outbox.add(seq, new, 0);
        }
        Ok(Commit { seq, stamp, effect })
    }

    async fn read(&self, parts: &[PathQuery]) -> Result<Snapshot, StoreError> {
        let inner = self.lock()?;
        Ok(Snapshot {
            seq: inner.last_seq,
            values: parts.iter().map(|part| inner.tree.select(part)).collect(),
        })
    }

    async fn leaves(&self, page: Page<'_>) -> Result<Vec<(Path, Value)>, StoreError> {
        Ok(self.lock()?.tree.leaves(page.under, page.after, page.limit))
    }

    async fn records(&self, page: Page<'_>) -> Result<Vec<(Path, Record)>, StoreError> {
        let stamped = self
            .lock()?
            .tree
            .stamped(page.under, page.after, page.limit);
        Ok(stamped
            .into_iter()
            .map(|(path, leaf, tombstone)| {
                let record = Record {
                    leaf,
                    tombstone,
                    branch: None,
                };
                (path, record)
            })
            .collect())
    }

    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError> {
        let inner = self.lock()?;
        let start = inner.log_start();
        if after + 1 < start {
            return Ok(LogRead::Compacted { oldest: start });
        }
        let skip = (after + 1 - start) as usize;
        Ok(LogRead::Changes(
            inner
                .log
                .iter()
                .skip(skip)
                .take(limit)
                .map(|(change, _)| change.clone())
                .collect(),
        ))
    }

    async fn last_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.lock()?.last_seq)
    }

    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError> {
        Ok(self.lock()?.outbox.claim(claim))
    }

    async fn complete_effect(&self, id: u64) -> Result<(), StoreError> {
        self.lock()?.outbox.complete(id)
    }

    async fn retry_effect(&self, id: u64, next_at_ms: u64, error: &str) -> Result<(), StoreError> {
        self.lock()?.outbox.retry(id, next_at_ms, error).map(drop)
    }

    async fn bury_effect(&self, id: u64, error: &str) -> Result<(), StoreError> {
        self.lock()?.outbox.bury(id, error).map(drop)
    }

    async fn dead_effects(&self, limit: usize) -> Result<Vec<Effect>, StoreError> {
        Ok(self.lock()?.outbox.dead(limit))
    }

    async fn revive_effect(&self, id: u64) -> Result<(), StoreError> {
        self.lock()?.outbox.revive(id).map(drop)
    }

    async fn effect_counts(&self) -> Result<EffectCounts, StoreError> {
        let (pending, dead) = self.lock()?.outbox.counts();
        Ok(EffectCounts { pending, dead })
    }

    async fn discard_effect(&self, id: u64) -> Result<(), StoreError> {
        self.lock()?.outbox.discard(id)
    }

    async fn compact(&self, horizon: Stamp, log_before_ms: u64) -> Result<Compacted, StoreError> {
        let mut inner = self.lock()?;
        inner.tree.compact(horizon);
        let mut removed = 0;
        while inner.log.front().is_some_and(|(_, at)| *at < log_before_ms) {
            inner.log.pop_front();
            removed += 1;
        }
        Ok(Compacted {
            log_entries_removed: removed,
            ..Compacted::default()
        })
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let inner = self.lock()?;
        let (pending, dead) = inner.outbox.counts();
        Ok(Stats {
            backend: "memory".into(),
            last_seq: inner.last_seq,
            log_start: inner.log_start(),
            log_entries: inner.log.len() as u64,
            records: inner.tree.leaf_count() as u64,
            effects_pending: pending,
            effects_dead: dead,
        })
    }

    async fn history(&self) -> Result<Option<History>, StoreError> {
        Ok(Some(self.lock()?.history.clone()))
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.lock()?.closed = true;
        Ok(())
    }
}
