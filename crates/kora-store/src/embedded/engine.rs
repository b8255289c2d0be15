//! The fjall database under the embedded store: its settings, its four keyspaces, and what
//! its errors mean to a Kora user.
//!
//! A `SingleWriterTxDatabase`: one write transaction at a time, each made durable with
//! `PersistMode::SyncAll` — the journal is written and fsynced before the transaction is
//! applied to the memtables, so nothing becomes visible before it is on disk. Every keyspace
//! shares the one journal, so a transaction is atomic across them.

use std::path::{Path, PathBuf};

use fjall::{KeyspaceCreateOptions, PersistMode, SingleWriterTxDatabase, SingleWriterTxKeyspace};

use crate::error::StoreError;

/// Block cache shared by the keyspaces. Reads of recently written or read data come from
/// it; 64 MiB holds the hot part of a working set of a few hundred thousand records and is
/// capacity, not memory taken up front (fjall's default is 32 MiB).
pub const CACHE_BYTES: u64 = 64 << 20;

/// Journal bytes kept before fjall flushes the memtables holding the oldest journal so that
/// it can be dropped: reopening replays every journal left, so this bounds restart time.
/// 64 MiB is fjall's minimum (its default, 512 MiB, took 1.5–2.4 s to reopen after 200k
/// mutations in kvbench, and can hold eight times that).
pub const MAX_JOURNAL_BYTES: u64 = 64 << 20;

/// Memtable size per keyspace: the writes gathered in memory before a flush to a sorted
/// table. Smaller flushes and compacts more often (slower, spikier writes); larger holds
/// more memory and lets more journal pile up before fjall rotates it, which reopening
/// replays. Measured on this workload (`benches/store.rs`, 2 cores, 64 writers, two runs
/// each, see docs/benchmarks.md "Storage"):
///
/// | memtables | 64×1-leaf mut/s, p99 | 64×10-leaf mut/s, p99 | reopen after a crash at 400k mutations |
/// |---:|---:|---:|---:|
/// | 16 MiB | 20.4k–21.1k, 5.6–6.3 ms | 5.7k–5.8k, 36 ms | 0.10–0.15 s (4–6 MB of journal); 1.1 s (36–38 MB) in busier runs |
/// | 32 MiB | 22.5k–23.9k, 5.0–5.1 ms | 6.2k–6.3k, 17–25 ms | 1.9–2.0 s (85–89 MB of journal) |
///
/// 8 MiB cost 45% of the 10-leaf throughput in kvbench, and here its 10-leaf p99 was about
/// twice that of 32 MiB in the same (busier) runs; 64 MiB gained little more and reached
/// 3.5 s reopens. The journal only rotates when fjall flushes past 64 MB, so what a reopen
/// replays is bounded by about 64 MB plus one memtable's worth of writes per keyspace,
/// whatever the memtable size: 32 MiB keeps that bound near 3 s on this machine, for +10%
/// throughput and half the 10-leaf p99 of 16 MiB.
pub const MEMTABLE_BYTES: u64 = 32 << 20;

/// fjall's limit on a key. Kora's longest key (64 segments of 768 bytes, each with its
/// terminator: 49,216 bytes) is below it, so no path is refused for its length.
pub const MAX_KEY_BYTES: usize = 65_536;

/// Engine settings. [`Tuning::default`] is what `EmbeddedStore::open` uses; benchmarks and
/// small embedded uses (a client's cache) may choose others. The memtable size is fixed when
/// a directory is created: fjall records it with each keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub cache_bytes: u64,
    pub memtable_bytes: u64,
    /// The committer's record cache (`super::cache`).
    pub record_cache_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            cache_bytes: CACHE_BYTES,
            memtable_bytes: MEMTABLE_BYTES,
            record_cache_bytes: super::cache::RECORD_CACHE_BYTES,
        }
    }
}

/// The keyspaces, by name.
pub const RECORDS: &str = "records";
pub const LOG: &str = "log";
pub const OUTBOX: &str = "outbox";
pub const META: &str = "meta";

/// The open database and its keyspaces.
pub struct Engine {
    /// The data directory (for messages).
    pub dir: PathBuf,
    /// The settings it was opened with.
    pub tuning: Tuning,
    pub db: SingleWriterTxDatabase,
    pub records: SingleWriterTxKeyspace,
    pub log: SingleWriterTxKeyspace,
    pub outbox: SingleWriterTxKeyspace,
    pub meta: SingleWriterTxKeyspace,
}

impl Engine {
    /// Opens (or creates) the database in `engine_dir`; `dir` is the data directory named
    /// in errors. Blocking: replays the journal.
    pub fn open(dir: &Path, engine_dir: &Path, tuning: Tuning) -> Result<Engine, StoreError> {
        let fail = |e| map_error(dir, e);
        let db = SingleWriterTxDatabase::builder(engine_dir)
            .cache_size(tuning.cache_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(fail)?;
        let keyspace = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(tuning.memtable_bytes)
            })
            .map_err(fail)
        };
        Ok(Engine {
            records: keyspace(RECORDS)?,
            log: keyspace(LOG)?,
            outbox: keyspace(OUTBOX)?,
            meta: keyspace(META)?,
            dir: dir.to_path_buf(),
            tuning,
            db,
        })
    }

    /// The keyspaces, in the order backups hold them.
    pub fn keyspaces(&self) -> [&SingleWriterTxKeyspace; 4] {
        [&self.records, &self.log, &self.outbox, &self.meta]
    }

    /// Starts a durable write transaction (waits for any other to finish).
    pub fn write_tx(&self) -> fjall::SingleWriterWriteTx<'_> {
        self.db.write_tx().durability(Some(PersistMode::SyncAll))
    }

    /// A StoreError for a fjall error met in this store.
    pub fn error(&self, error: fjall::Error) -> StoreError {
        map_error(&self.dir, error)
    }

    /// A `Corrupted` error for bytes at `key` of `keyspace` that did not decode.
    pub fn corrupted(
        &self,
        keyspace: &str,
        key: &[u8],
        what: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupted(format!(
            "{}: {keyspace} entry {}: {what}",
            self.dir.display(),
            describe_key(keyspace, key)
        ))
    }

    /// Writes the journal to disk and waits for it (used when closing).
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.error(e))
    }

    /// Flushes every keyspace's memtable to a table and waits for it, so that reopening
    /// after a clean close skips the journal's contents instead of replaying them.
    /// (`rotate_memtable_and_wait` is public but hidden in fjall's docs; if it goes away,
    /// the build breaks here rather than anything going wrong quietly.)
    pub fn flush(&self) -> Result<(), StoreError> {
        for keyspace in self.keyspaces() {
            keyspace
                .inner()
                .rotate_memtable_and_wait()
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

/// A key as a person reads it: a path for records, a number for the log and outbox.
fn describe_key(keyspace: &str, key: &[u8]) -> String {
    if keyspace == RECORDS {
        return match kora_core::key::decode(key) {
            Ok(path) if path.segments().is_empty() => "at the root".to_string(),
            Ok(path) => format!("at path {path}"),
            Err(_) => format!("with undecodable key {}", String::from_utf8_lossy(key)),
        };
    }
    match <[u8; 8]>::try_from(key) {
        Ok(n) => format!("#{}", u64::from_be_bytes(n)),
        Err(_) => format!("with key {key:?}"),
    }
}

/// What a fjall error means here. Damage to the files (bad checksums, headers, journal
/// batches beyond the torn tail fjall repairs itself, missing files) is `Corrupted`; a held
/// lock is `Locked`; other I/O failures are `Unavailable`.
pub fn map_error(dir: &Path, error: fjall::Error) -> StoreError {
    use fjall::Error as F;
    let path = dir.display();
    match error {
        F::Locked => StoreError::Locked {
            path: path.to_string(),
        },
        F::Io(e) => io_error(dir, &e),
        F::Storage(fjall::LsmError::Io(e)) => io_error(dir, &e),
        F::Poisoned => StoreError::Unavailable(format!(
            "{path}: an earlier write failed to reach the disk; restart to recover"
        )),
        F::KeyspaceDeleted => StoreError::Internal(format!("{path}: a keyspace was deleted")),
        other => {
            StoreError::Corrupted(format!("{path}: the database files are damaged: {other:?}"))
        }
    }
}

fn io_error(dir: &Path, error: &std::io::Error) -> StoreError {
    use std::io::ErrorKind as K;
    let path = dir.display();
    match error.kind() {
        K::NotFound | K::InvalidData | K::UnexpectedEof => {
            StoreError::Corrupted(format!("{path}: the database files are damaged: {error}"))
        }
        _ => StoreError::Unavailable(format!("{path}: {error}")),
    }
}
