//! fjall backend: LSM-tree, one keyspace (column family) per Kora keyspace,
//! all sharing one journal (WAL), so a batch is atomic across keyspaces.
//!
//! We use `SingleWriterTxDatabase`: its write transaction reads its own
//! writes (a plain `OwnedWriteBatch` cannot), which Kora needs because one
//! group-commit batch may touch the same path twice.
//!
//! Durability: `db.write_tx().durability(Some(PersistMode::SyncAll))`, so
//! `commit()` writes the batch to the journal and `fsync`s the journal file
//! before the batch is applied to the memtables and made visible.

use crate::store::{Ks, Store, Visit, WriteTxn, CACHE_BYTES};
use anyhow::{anyhow, Result};
use fjall::{
    KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase, SingleWriterTxKeyspace,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

pub struct FjallStore {
    db: SingleWriterTxDatabase,
    keyspaces: [SingleWriterTxKeyspace; 3],
}

/// Memtable / journal sizing. `None` = fjall's defaults (64 MiB memtable per
/// keyspace, 512 MiB max journal).
#[derive(Clone, Copy)]
pub struct Tuning {
    pub max_memtable: Option<u64>,
    pub max_journal: Option<u64>,
}

impl FjallStore {
    pub fn open(dir: &Path, tuning: Tuning) -> Result<Self> {
        let mut builder = SingleWriterTxDatabase::builder(dir).cache_size(CACHE_BYTES as u64);
        if let Some(j) = tuning.max_journal {
            builder = builder.max_journaling_size(j);
        }
        let db = builder.open()?;
        let opts = || match tuning.max_memtable {
            Some(m) => KeyspaceCreateOptions::default().max_memtable_size(m),
            None => KeyspaceCreateOptions::default(),
        };
        let ks = |ks: Ks| db.keyspace(ks.name(), opts);
        let keyspaces = [ks(Ks::Nodes)?, ks(Ks::Log)?, ks(Ks::Meta)?];
        Ok(FjallStore { db, keyspaces })
    }

    pub fn open_default(dir: &Path) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Self::open(
            dir,
            Tuning {
                max_memtable: None,
                max_journal: None,
            },
        )?))
    }

    /// Smaller memtables and journal cap: bounds journal replay on reopen.
    pub fn open_small_memtables(dir: &Path) -> Result<Arc<dyn Store>> {
        let tuning = Tuning {
            max_memtable: Some(8 << 20),
            max_journal: Some(64 << 20),
        };
        Ok(Arc::new(Self::open(dir, tuning)?))
    }

    fn ks(&self, ks: Ks) -> &SingleWriterTxKeyspace {
        match ks {
            Ks::Nodes => &self.keyspaces[0],
            Ks::Log => &self.keyspaces[1],
            Ks::Meta => &self.keyspaces[2],
        }
    }
}

struct FjallTxn<'s, 't> {
    store: &'s FjallStore,
    tx: fjall::SingleWriterWriteTx<'t>,
}

impl WriteTxn for FjallTxn<'_, '_> {
    fn get(&mut self, ks: Ks, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tx.get(self.store.ks(ks), key)?.map(|v| v.to_vec()))
    }

    fn first_key_in(&mut self, ks: Ks, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.tx.range(self.store.ks(ks), lo..hi).next() {
            Some(guard) => Ok(Some(guard.key()?.to_vec())),
            None => Ok(None),
        }
    }

    fn put(&mut self, ks: Ks, key: &[u8], value: &[u8]) -> Result<()> {
        self.tx.insert(self.store.ks(ks), key, value);
        Ok(())
    }
}

impl Store for FjallStore {
    fn write_durable(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let tx = self.db.write_tx().durability(Some(PersistMode::SyncAll));
        let mut txn = FjallTxn { store: self, tx };
        f(&mut txn)?; // on error the transaction is dropped = rolled back
        txn.tx.commit()?; // journal write + fsync (SyncAll) happen here
        Ok(())
    }

    fn scan(
        &self,
        ks: Ks,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<u64> {
        let snapshot = self.db.read_tx();
        let mut n = 0;
        for guard in snapshot.range::<&[u8], _>(self.ks(ks), (lo, hi)) {
            let (k, v) = guard.into_inner()?;
            n += 1;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(n)
    }

    fn last_key(&self, ks: Ks) -> Result<Option<Vec<u8>>> {
        match self.db.read_tx().last_key_value(self.ks(ks)) {
            Some(guard) => Ok(Some(guard.key()?.to_vec())),
            None => Ok(None),
        }
    }

    fn close(self: Arc<Self>) -> Result<()> {
        let this = Arc::try_unwrap(self).map_err(|_| anyhow!("store still shared"))?;
        // fjall has no explicit close: dropping the last handle persists the
        // journal and stops the background workers.
        this.db.persist(PersistMode::SyncAll)?;
        drop(this);
        Ok(())
    }
}
