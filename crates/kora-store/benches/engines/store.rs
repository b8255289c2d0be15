//! The tiny storage trait the Kora workload is written against.
//!
//! Both engines implement it; all workload code (`kora.rs`, `main.rs`) only
//! ever sees `dyn Store` / `dyn WriteTxn`, so every number in the report comes
//! from the exact same sequence of logical operations.

use anyhow::Result;
use std::ops::Bound;
use std::sync::Arc;

/// Kora's three keyspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ks {
    /// encoded path -> leaf record
    Nodes,
    /// u64 BE sequence number -> stamp + mutation JSON
    Log,
    /// a couple of bookkeeping keys
    Meta,
}

impl Ks {
    pub const ALL: [Ks; 3] = [Ks::Nodes, Ks::Log, Ks::Meta];

    pub fn name(self) -> &'static str {
        match self {
            Ks::Nodes => "nodes",
            Ks::Log => "log",
            Ks::Meta => "meta",
        }
    }
}

/// Operations available inside one write transaction. Reads must observe the
/// transaction's own earlier writes (a group-commit batch may touch the same
/// path twice).
pub trait WriteTxn {
    fn get(&mut self, ks: Ks, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The first key in `[lo, hi)`, if any (a range *seek*, not a scan).
    fn first_key_in(&mut self, ks: Ks, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&mut self, ks: Ks, key: &[u8], value: &[u8]) -> Result<()>;
}

/// Visitor for ordered scans; return `false` to stop early.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> bool + 'a;

pub trait Store: Send + Sync {
    /// Runs `f` inside ONE write transaction and commits it durably: when this
    /// returns `Ok`, the transaction is fsynced and survives a crash.
    fn write_durable(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()>;

    /// Ordered scan over `range` in one consistent read snapshot. Returns the
    /// number of entries visited.
    fn scan(
        &self,
        ks: Ks,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<u64>;

    /// Largest key of a keyspace (used to recover the log's next sequence number).
    fn last_key(&self, ks: Ks) -> Result<Option<Vec<u8>>>;

    /// Clean shutdown; must release all files so the directory can be reopened.
    /// Fails if other handles to the store are still alive.
    fn close(self: Arc<Self>) -> Result<()>;
}

/// How to open one engine configuration (a row label plus a constructor).
#[derive(Clone, Copy)]
pub struct EngineSpec {
    pub label: &'static str,
    pub open: fn(&std::path::Path) -> Result<Arc<dyn Store>>,
}

/// Block cache given to every engine, so the comparison is like for like.
pub const CACHE_BYTES: usize = 256 * 1024 * 1024;
