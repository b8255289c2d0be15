//! Committing a batch (see `log.rs` for the sequence):
//!
//! 1. make sure `kora_records` holds every commit up to the log's head S (finishing, from the
//!    log's redo, any batch whose writer died half-way);
//! 2. read the batch's read set and plan it on top of S (`crate::plan`);
//! 3. append its log rows, with the redo, in one conditional batch `IF last = S` — the commit
//!    point; if another node appended first, go back to 1 with the head it reports;
//! 4. write the records and outbox rows (timestamped with the batch's sequence), then raise
//!    `applied`, and answer the callers.
//!
//! Step 3 serialises commits across every Kora node on the keyspace, which is what makes the
//! read-plan-write of step 2 correct: a batch commits only if nothing committed since the
//! state it was planned on.

use std::sync::Arc;

use async_trait::async_trait;
use kora_core::stamp::wall_millis;
use scylla::client::session::Session;
use tokio::sync::Mutex;

use super::error::Attempt;
use super::layout::commit_timestamp;
use super::log::{self, LogEntry, RedoEffect, RedoRecord, APPLIED, LOG_START};
use super::read::Reader;
use super::schema::Statements;
use crate::condition::Window;
use crate::error::StoreError;
use crate::group::{Batcher, Outcome};
use crate::plan::{oldest_since, plan};
use crate::retry::with_retries;
use crate::store::{Seq, Write};

/// Largest log append (bytes of mutations, redo and effects) sent as one Paxos proposal; a
/// bigger batch is split. Well under `commitlog_segment_size / 2`, Cassandra's limit on one
/// mutation at its smallest usual setting (8 MiB segments).
pub const MAX_APPEND_BYTES: usize = 1 << 20;

/// Most lost races in a row for one batch before it reports `unavailable`: each loss means
/// another commit went through, so this only ends a pathological storm.
pub const MAX_CAS_LOSSES: usize = 1_000;

/// What this node knows of the log.
#[derive(Debug, Default)]
pub struct WriterState {
    /// The log's head as of this node's last append (`None`: read it).
    pub head: Option<Seq>,
    /// Every commit up to here is in `kora_records`.
    pub applied: Seq,
}

/// What the store's parts share: the session, the statements and the writer's state.
pub struct Shared {
    pub session: Session,
    pub st: Statements,
    pub writer: Mutex<WriterState>,
}

impl Shared {
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            session: &self.session,
            st: &self.st,
        }
    }
}

pub struct CassandraBatcher {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl Batcher for CassandraBatcher {
    async fn commit_batch(&mut self, writes: Vec<Write>) -> Result<Vec<Outcome>, StoreError> {
        let mut commits = Vec::with_capacity(writes.len());
        let mut pending: Vec<&[Write]> = vec![&writes];
        while let Some(chunk) = pending.pop() {
            let outcome = with_retries("committing to Cassandra", || {
                commit_once(&self.shared, chunk)
            })
            .await?;
            match outcome {
                Some(done) => commits.extend(done),
                None => {
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
            }
        }
        Ok(commits)
    }
}

/// Makes sure `kora_records` holds every commit up to `head`.
pub async fn settle(shared: &Shared, state: &mut WriterState, head: Seq) -> Result<(), Attempt> {
    if state.applied >= head {
        return Ok(());
    }
    let marked = log::meta(&shared.session, &shared.st, APPLIED).await?;
    let from = state.applied.max(marked);
    if from < head {
        log::roll_forward(&shared.session, &shared.st, from, head).await?;
        log::raise_meta(&shared.session, &shared.st, APPLIED, head).await?;
    }
    state.applied = head;
    Ok(())
}

/// Commits a chunk of writes: `Ok(None)` when it is too large for one append and has more
/// than one write (the caller splits it).
async fn commit_once(shared: &Shared, writes: &[Write]) -> Result<Option<Vec<Outcome>>, Attempt> {
    let mut state = shared.writer.lock().await;
    let mut head = match state.head.take() {
        Some(head) => head,
        None => log::head(&shared.session, &shared.st).await?,
    };
    for _ in 0..MAX_CAS_LOSSES {
        settle(shared, &mut state, head).await?;
        let records = shared.reader().load(writes).await?;
        let window = window(shared, writes, head).await?;
        let planned = plan(records, writes, head, &window);
        if planned.count() == 0 {
            // Every write was refused: nothing to append.
            state.head = Some(head);
            return Ok(Some(planned.outcomes));
        }
        let (entries, redo, effects) = entries(writes, &planned);
        let bytes: usize = entries.iter().map(LogEntry::bytes).sum();
        if bytes > MAX_APPEND_BYTES && writes.len() > 1 {
            state.head = Some(head);
            return Ok(None);
        }
        match log::append(&shared.session, &shared.st, head, &entries).await? {
            Some(newer) => {
                head = newer.max(head);
                continue;
            }
            None => {
                let last = head + planned.count() as Seq;
                let timestamp = commit_timestamp(last);
                log::apply(&shared.session, &shared.st, timestamp, &redo, &effects).await?;
                log::raise_meta(&shared.session, &shared.st, APPLIED, last).await?;
                state.head = Some(last);
                state.applied = last;
                return Ok(Some(planned.outcomes));
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "lost {MAX_CAS_LOSSES} races for the Cassandra log in a row"
    ))
    .into())
}

type Entries = (Vec<LogEntry>, Vec<RedoRecord>, Vec<(Seq, Vec<RedoEffect>)>);

/// The changes a batch's `Unchanged` conditions are checked against: the log after their
/// oldest `since`, up to `head` (the batch commits only if the log still ends there).
async fn window(shared: &Shared, writes: &[Write], head: Seq) -> Result<Window, Attempt> {
    let Some(from) = Window::start(oldest_since(writes), head) else {
        return Ok(Window::empty(head));
    };
    let start = log::meta(&shared.session, &shared.st, LOG_START).await?;
    let from = from.max(start.saturating_sub(1));
    let limit = (head - from) as usize;
    let changes = log::changes_after(&shared.session, &shared.st, from, limit).await?;
    Ok(Window::of_changes(from, changes))
}

/// A planned batch as log rows (the redo on the last), and its redo and effects.
fn entries(writes: &[Write], planned: &crate::plan::Plan) -> Entries {
    let mut redo: Vec<RedoRecord> = planned
        .upserts
        .iter()
        .map(|(key, record)| log::redo_record(key, Some(record)))
        .collect();
    redo.extend(
        planned
            .deletes
            .iter()
            .map(|key| log::redo_record(key, None)),
    );
    let now = wall_millis() as i64;
    let mut effects = Vec::new();
    let mut entries = Vec::with_capacity(writes.len());
    let count = planned.count();
    for (i, ((write, _), row)) in planned.committed(writes).zip(&planned.log).enumerate() {
        let list: Vec<RedoEffect> = write
            .effects
            .iter()
            .map(|e| (e.kind.clone(), e.payload.to_string()))
            .collect();
        if !list.is_empty() {
            effects.push((row.seq as Seq, list.clone()));
        }
        let last = i + 1 == count;
        entries.push(LogEntry {
            seq: row.seq as Seq,
            stamp: row.stamp.clone(),
            committed_ms: now,
            mutation: row.mutation.clone(),
            redo: (last && !redo.is_empty()).then(|| redo.clone()),
            effects: (!list.is_empty()).then_some(list),
        });
    }
    (entries, redo, effects)
}
