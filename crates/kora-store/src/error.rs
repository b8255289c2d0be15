//! Errors a store reports: each says what went wrong in terms a user can act on.

/// A store failure. Nothing of a failed commit is visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("data directory {path} is in use by another process")]
    Locked { path: String },
    #[error(
        "data in {path} has format version {found}; this Kora reads versions up to {supported}"
    )]
    NewerFormat {
        path: String,
        found: u64,
        supported: u64,
    },
    #[error("stored data is corrupted: {0}")]
    Corrupted(String),
    #[error("{what} is {size} bytes; this store allows at most {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// A write's conditions did not hold (`crate::condition`); nothing of it was written.
    #[error("conflict: {0}")]
    Conflict(crate::condition::Conflict),
    #[error("no effect with id {0}")]
    NoSuchEffect(u64),
    #[error("the store is closed")]
    Closed,
    /// The store cannot do this (a backup of a store whose own tools make backups).
    #[error("{0}")]
    Unsupported(String),
    /// A backup that cannot be restored: incomplete, damaged, or of another format.
    #[error("cannot restore this backup: {0}")]
    BadBackup(String),
    #[error("store error: {0}")]
    Internal(String),
}
