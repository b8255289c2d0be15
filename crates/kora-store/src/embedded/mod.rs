//! `embedded:PATH` — Kora's default store: a fjall database in a local directory
//! (`./kora-data` unless told otherwise), crash-safe, for one process at a time.
//!
//! fjall (an LSM tree with one journal shared by its keyspaces) was chosen over redb by
//! measurement on this workload: `benches/engines.rs`, figures in docs/benchmarks.md.
//!
//! The layout follows the SQL backends: one record per path (`records`), the change log
//! (`log`), the effect outbox (`outbox`) and a little bookkeeping (`meta`); a commit group
//! writes all of them in one fsynced transaction (`batch.rs`), and the next group is
//! planned while that one is flushed. Reads take a fjall snapshot, so the paths of one read,
//! and the pages of one range, are consistent. fjall is blocking, so every call into it
//! runs on tokio's blocking pool.
//!
//! Crash safety: a commit is acknowledged only after fjall's journal is fsynced, and fjall
//! applies a journal batch whole or not at all (`tests/crash.rs` kills a writing process
//! many times over). Reopening replays the journal — at most about 64 MB plus a memtable's
//! worth of writes (`engine.rs`), a few seconds at worst; `close` flushes the memtables so
//! that a clean restart replays nothing into memory. A journal damaged in a way fjall
//! "repairs" by dropping acknowledged commits is refused (`watermark.rs`).
//!
//! What it is not: shared between processes (the directory is locked while open; a second
//! process gets `Locked`), or a cluster store — several nodes share PostgreSQL or MySQL.
//!
//! | file | what |
//! |---|---|
//! | `dir.rs` | the data directory: format file, checks before opening |
//! | `engine.rs` | fjall's settings, the keyspaces, error mapping |
//! | `codec.rs` | the byte formats of keys and values |
//! | `batch.rs` | the committer: read set, plan, one durable transaction, pipelined |
//! | `cache.rs` | the committer's record cache, so rewriting hot keys reads nothing |
//! | `recent.rs` | the batches the committer keeps: in flight, and recent ones for conditions |
//! | `read.rs` | queries, the change log, the last sequence |
//! | `effects.rs` | the outbox, in memory and written through |
//! | `compact.rs` | compaction |
//! | `backup.rs` | backups taken while commits go on, and restoring them |
//! | `watermark.rs` | the highest acknowledged sequence, to detect a journal that lost commits |

pub mod backup;
mod batch;
mod cache;
pub mod codec;
mod compact;
pub mod dir;
mod effects;
pub mod engine;
mod read;
mod recent;
pub mod watermark;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kora_core::{Path as KoraPath, PathQuery, Stamp, Value};

use crate::error::StoreError;
use crate::group::GroupCommit;
use crate::history::History;
use crate::outbox::Outbox;
use crate::store::{
    Backup, Claim, Commit, Compacted, Effect, EffectCounts, LogRead, Page, Seq, Snapshot, Stats,
    Store, Submitted, Write,
};
use engine::Engine;
pub use engine::Tuning;
use watermark::Watermark;

/// How long `close` waits for reads still running to let go of the database before it
/// reports an error: reads take milliseconds, so this is only reached if one is stuck.
pub const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// What the committer, the readers and the outbox share.
pub(crate) struct Shared {
    engine: Engine,
    watermark: Watermark,
    outbox: Mutex<Outbox>,
    /// The last durable sequence, as published by the committer.
    last_seq: AtomicU64,
    /// Compactions run: the committer clears its record cache when this moves.
    compactions: AtomicU64,
    /// Which line of commits the sequences count (`crate::history`).
    history: History,
}

impl Shared {
    fn outbox(&self) -> Result<MutexGuard<'_, Outbox>, StoreError> {
        self.outbox
            .lock()
            .map_err(|_| StoreError::Internal("outbox lock poisoned".into()))
    }

    fn publish_seq(&self, seq: Seq) {
        self.last_seq.store(seq, Ordering::Release);
    }

    fn durable_seq(&self) -> Seq {
        self.last_seq.load(Ordering::Acquire)
    }
}

/// The embedded store.
pub struct EmbeddedStore {
    dir: PathBuf,
    /// `None` once closed.
    shared: RwLock<Option<Arc<Shared>>>,
    writer: GroupCommit,
}

impl EmbeddedStore {
    /// Opens the data directory `dir`, creating it if needed, and starts the committer.
    /// Fails with `Locked` when another process has it open, `NewerFormat` when a newer
    /// Kora wrote it, and `Corrupted` when its files are damaged.
    pub async fn open(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        Self::open_tuned(dir, Tuning::default()).await
    }

    /// [`EmbeddedStore::open`] with other engine settings.
    pub async fn open_tuned(
        dir: impl AsRef<Path>,
        tuning: Tuning,
    ) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let opening = dir.clone();
        let shared = Arc::new(blocking(move || open_shared(&opening, tuning)).await?);
        let writer = GroupCommit::spawn_pipelined(batch::EmbeddedPipeline::new(shared.clone()));
        Ok(EmbeddedStore {
            dir,
            shared: RwLock::new(Some(shared)),
            writer,
        })
    }

    /// Restores the backup read from `input` into data directory `dir`, which must not
    /// exist or be empty (`backup.rs`). Blocking.
    pub fn restore(input: impl std::io::Read, dir: &Path) -> Result<Backup, StoreError> {
        backup::restore(input, dir)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn shared(&self) -> Result<Arc<Shared>, StoreError> {
        self.shared
            .read()
            .map_err(|_| StoreError::Internal("store lock poisoned".into()))?
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// Runs `f` on the blocking pool with the shared state.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared()?;
        blocking(move || f(&shared)).await
    }
}

fn open_shared(dir: &Path, tuning: Tuning) -> Result<Shared, StoreError> {
    let engine_dir = dir::prepare(dir)?;
    let engine = Engine::open(dir, &engine_dir, tuning)?;
    let last_seq = read::last_seq(&engine, &engine.db.read_tx())?;
    let (watermark, acknowledged) = Watermark::open(dir)?;
    watermark.check(acknowledged, last_seq, dir)?;
    let outbox = effects::load(&engine)?;
    let history = load_history(&engine)?;
    Ok(Shared {
        engine,
        watermark,
        outbox: Mutex::new(outbox),
        last_seq: AtomicU64::new(last_seq),
        compactions: AtomicU64::new(0),
        history,
    })
}

/// The store's history, made (durably) the first time a directory is opened.
fn load_history(e: &Engine) -> Result<History, StoreError> {
    use fjall::Readable;
    if let Some(bytes) =
        e.db.read_tx()
            .get(&e.meta, backup::HISTORY)
            .map_err(|x| e.error(x))?
    {
        return serde_json::from_slice(&bytes)
            .map_err(|x| e.corrupted(engine::META, backup::HISTORY, x));
    }
    let history = History::new();
    let mut tx = e.write_tx();
    tx.insert(&e.meta, backup::HISTORY, backup::history_bytes(&history)?);
    tx.commit().map_err(|x| e.error(x))?;
    Ok(history)
}

/// Runs blocking work on tokio's blocking pool. A panic in it (fjall asserts on some
/// damaged files) becomes an error instead of taking the caller down.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(StoreError::Internal(format!(
            "the storage engine panicked: {}",
            panic_message(e.into_panic())
        ))),
        Err(e) => Err(StoreError::Internal(format!("a storage task failed: {e}"))),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Waits until `shared` is the last handle, then flushes the journal and drops the
/// database, which releases the directory's lock.
fn release(mut shared: Arc<Shared>) -> Result<(), StoreError> {
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        match Arc::try_unwrap(shared) {
            Ok(owned) => {
                owned.engine.flush()?;
                owned.engine.persist()?;
                owned.watermark.sync()?;
                drop(owned);
                return Ok(());
            }
            Err(still_shared) if Instant::now() < deadline => {
                shared = still_shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => {
                return Err(StoreError::Internal(format!(
                    "closing: reads still hold the store after {CLOSE_WAIT:?}"
                )))
            }
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        self.submit(write).await?.await
    }

    async fn submit(&self, write: Write) -> Result<Submitted, StoreError> {
        self.shared()?;
        self.writer.submit(write).await
    }

    async fn read(&self, parts: &[PathQuery]) -> Result<Snapshot, StoreError> {
        let parts = parts.to_vec();
        self.with(move |s| {
            let e = &s.engine;
            let snapshot = e.db.read_tx();
            let seq = read::last_seq(e, &snapshot)?;
            let values = parts
                .iter()
                .map(|part| read::select(e, &snapshot, part))
                .collect::<Result<_, _>>()?;
            Ok(Snapshot { seq, values })
        })
        .await
    }

    async fn leaves(&self, page: Page<'_>) -> Result<Vec<(KoraPath, Value)>, StoreError> {
        let (under, after, limit) = (page.under.clone(), page.after.cloned(), page.limit);
        self.with(move |s| {
            let page = Page::new(&under, after.as_ref(), limit);
            read::leaves(&s.engine, &s.engine.db.read_tx(), page)
        })
        .await
    }

    async fn records(
        &self,
        page: Page<'_>,
    ) -> Result<Vec<(KoraPath, kora_core::records::Record)>, StoreError> {
        let (under, after, limit) = (page.under.clone(), page.after.cloned(), page.limit);
        self.with(move |s| {
            let page = Page::new(&under, after.as_ref(), limit);
            read::records(&s.engine, &s.engine.db.read_tx(), page)
        })
        .await
    }

    async fn changes(&self, after: Seq, limit: usize) -> Result<LogRead, StoreError> {
        self.with(move |s| read::changes(&s.engine, &s.engine.db.read_tx(), after, limit))
            .await
    }

    async fn last_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.shared()?.durable_seq())
    }

    async fn claim_effects(&self, claim: Claim) -> Result<Vec<Effect>, StoreError> {
        self.with(move |s| effects::claim(s, claim)).await
    }

    async fn complete_effect(&self, id: u64) -> Result<(), StoreError> {
        self.with(move |s| effects::complete(s, id)).await
    }

    async fn retry_effect(&self, id: u64, next_at_ms: u64, error: &str) -> Result<(), StoreError> {
        let error = error.to_string();
        self.with(move |s| {
            effects::update(s, id, |e| {
                e.retry(next_at_ms, &error);
                Ok(())
            })
        })
        .await
    }

    async fn bury_effect(&self, id: u64, error: &str) -> Result<(), StoreError> {
        let error = error.to_string();
        self.with(move |s| {
            effects::update(s, id, |e| {
                e.bury(&error);
                Ok(())
            })
        })
        .await
    }

    async fn dead_effects(&self, limit: usize) -> Result<Vec<Effect>, StoreError> {
        Ok(self.shared()?.outbox()?.dead(limit))
    }

    async fn revive_effect(&self, id: u64) -> Result<(), StoreError> {
        self.with(move |s| effects::update(s, id, |e| e.revive()))
            .await
    }

    async fn effect_counts(&self) -> Result<EffectCounts, StoreError> {
        let (pending, dead) = self.shared()?.outbox()?.counts();
        Ok(EffectCounts { pending, dead })
    }

    async fn discard_effect(&self, id: u64) -> Result<(), StoreError> {
        self.with(move |s| effects::discard(s, id)).await
    }

    async fn compact(&self, horizon: Stamp, log_before_ms: u64) -> Result<Compacted, StoreError> {
        self.with(move |s| {
            let done = compact::compact(s, horizon, log_before_ms);
            s.compactions.fetch_add(1, Ordering::AcqRel);
            done
        })
        .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.with(|s| {
            let e = &s.engine;
            let snapshot = e.db.read_tx();
            let last_seq = read::last_seq(e, &snapshot)?;
            let log_start = read::log_start(e, &snapshot)?;
            let records = read::count_records(e, &snapshot)?;
            let (pending, dead) = s.outbox()?.counts();
            Ok(Stats {
                backend: "embedded".into(),
                last_seq,
                log_start,
                log_entries: (last_seq + 1).saturating_sub(log_start),
                records,
                effects_pending: pending,
                effects_dead: dead,
            })
        })
        .await
    }

    async fn history(&self) -> Result<Option<History>, StoreError> {
        Ok(Some(self.shared()?.history.clone()))
    }

    async fn backup(&self, out: Box<dyn std::io::Write + Send>) -> Result<Backup, StoreError> {
        self.with(move |s| backup::write(&s.engine, &s.history, out))
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.shared()?;
        self.writer.close().await;
        let shared = self
            .shared
            .write()
            .map_err(|_| StoreError::Internal("store lock poisoned".into()))?
            .take()
            .ok_or(StoreError::Closed)?;
        blocking(move || release(shared)).await
    }
}
