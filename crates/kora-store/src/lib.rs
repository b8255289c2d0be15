//! # kora-store
//!
//! Where Kora keeps its tree: the [`Store`] trait and its backends, each chosen by a URL
//! ([`StoreUrl`]):
//!
//! - [`MemoryStore`] (`memory:`): the reference tree in memory;
//! - [`EmbeddedStore`] (`embedded:PATH`, the default `./kora-data`): fjall in a local
//!   directory;
//! - PostgreSQL (`postgres://`) and MySQL/MariaDB (`mysql://`);
//! - Apache Cassandra ([`cassandra`], `cassandra://host:port,…/keyspace?options`): records
//!   in a partition per top-level key, commits serialised across Kora nodes by one Paxos
//!   round on the change log, which also numbers them.
//!
//! Every backend stores the same things: one record per path (its leaf and stamp, its
//! tombstone, its branch stamp — `kora_core::records`), the change log (each commit's
//! sequence, stamp and effect on the visible tree) and the effect outbox, all written in one
//! transaction per commit group (on Cassandra: one conditional log append carrying the
//! group's redo, then the records). The conflict rules are kora-core's; a backend only moves
//! records between disk and memory. One conformance suite (`tests/conformance`) checks every
//! backend against the reference tree.

pub mod cassandra;
pub mod condition;
pub mod embedded;
mod error;
pub mod group;
pub mod history;
pub mod memory;
pub mod outbox;
pub mod plan;
pub mod retry;
pub mod sql;
mod store;
mod url;

use std::sync::Arc;

pub use condition::{Condition, Conflict};
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use history::History;
pub use memory::MemoryStore;
pub use store::{
    Backup, Change, Claim, Commit, Compacted, Effect, EffectCounts, EffectState, LogRead,
    NewEffect, Page, Seq, Snapshot, Stats, Store, Submitted, Write,
};
pub use url::{StoreUrl, DEFAULT_DATA_DIR};

/// Opens the store a URL names.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url)? {
        StoreUrl::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreUrl::Embedded(dir) => Ok(Arc::new(EmbeddedStore::open(dir).await?)),
        StoreUrl::Postgres(url) => Ok(Arc::new(sql::postgres::PostgresStore::open(&url).await?)),
        StoreUrl::Mysql(url) => Ok(Arc::new(sql::mysql::MysqlStore::open(&url).await?)),
        StoreUrl::Cassandra(url) => Ok(Arc::new(cassandra::CassandraStore::open(&url).await?)),
    }
}
