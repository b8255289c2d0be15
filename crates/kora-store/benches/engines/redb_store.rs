//! redb backend: one file, copy-on-write B+trees, one table per keyspace.
//!
//! Durability: every write transaction is committed with
//! `WriteTransaction::set_durability(Durability::Immediate)` (redb's default,
//! set explicitly), i.e. `commit()` returns only after fsync.
//! Optionally `set_quick_repair(true)` (2-phase commit + persisted allocator
//! state, so reopening after a crash does not walk the whole file).

use crate::store::{Ks, Store, Visit, WriteTxn, CACHE_BYTES};
use anyhow::{anyhow, Result};
use redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

type Bytes = &'static [u8];

const NODES: TableDefinition<Bytes, Bytes> = TableDefinition::new("nodes");
const LOG: TableDefinition<Bytes, Bytes> = TableDefinition::new("log");
const META: TableDefinition<Bytes, Bytes> = TableDefinition::new("meta");

fn def(ks: Ks) -> TableDefinition<'static, Bytes, Bytes> {
    match ks {
        Ks::Nodes => NODES,
        Ks::Log => LOG,
        Ks::Meta => META,
    }
}

pub struct RedbStore {
    db: Database,
    quick_repair: bool,
}

impl RedbStore {
    pub fn open(dir: &Path, quick_repair: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("kora.redb"))?;
        let store = RedbStore { db, quick_repair };
        // Make sure all tables exist so read transactions can open them.
        store.write_durable(&mut |_| Ok(()))?;
        Ok(store)
    }

    pub fn open_default(dir: &Path) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Self::open(dir, false)?))
    }

    pub fn open_quick_repair(dir: &Path) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Self::open(dir, true)?))
    }
}

struct RedbTxn<'t> {
    tables: [Table<'t, Bytes, Bytes>; 3],
}

impl<'t> RedbTxn<'t> {
    fn table(&mut self, ks: Ks) -> &mut Table<'t, Bytes, Bytes> {
        match ks {
            Ks::Nodes => &mut self.tables[0],
            Ks::Log => &mut self.tables[1],
            Ks::Meta => &mut self.tables[2],
        }
    }
}

impl WriteTxn for RedbTxn<'_> {
    fn get(&mut self, ks: Ks, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.table(ks).get(key)?.map(|v| v.value().to_vec()))
    }

    fn first_key_in(&mut self, ks: Ks, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut it = self.table(ks).range::<&[u8]>(lo..hi)?;
        match it.next() {
            Some(kv) => Ok(Some(kv?.0.value().to_vec())),
            None => Ok(None),
        }
    }

    fn put(&mut self, ks: Ks, key: &[u8], value: &[u8]) -> Result<()> {
        self.table(ks).insert(key, value)?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn write_durable(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(Durability::Immediate)?;
        wtx.set_quick_repair(self.quick_repair);
        {
            let mut txn = RedbTxn {
                tables: [
                    wtx.open_table(NODES)?,
                    wtx.open_table(LOG)?,
                    wtx.open_table(META)?,
                ],
            };
            if let Err(e) = f(&mut txn) {
                drop(txn);
                wtx.abort()?;
                return Err(e);
            }
        }
        wtx.commit()?; // fsync happens here (Durability::Immediate)
        Ok(())
    }

    fn scan(
        &self,
        ks: Ks,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<u64> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(def(ks))?;
        let mut n = 0;
        for kv in table.range::<&[u8]>((lo, hi))? {
            let (k, v) = kv?;
            n += 1;
            if !visit(k.value(), v.value()) {
                break;
            }
        }
        Ok(n)
    }

    fn last_key(&self, ks: Ks) -> Result<Option<Vec<u8>>> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(def(ks))?;
        let last = table.last()?.map(|(k, _)| k.value().to_vec());
        Ok(last)
    }

    fn close(self: Arc<Self>) -> Result<()> {
        let this = Arc::try_unwrap(self).map_err(|_| anyhow!("store still shared"))?;
        this.db.close()?;
        Ok(())
    }
}
