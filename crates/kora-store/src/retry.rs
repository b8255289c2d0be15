//! Retrying a networked backend's work: transient failures (the connection, a replica that
//! did not answer in time) are retried with exponential backoff for [`CONNECT_RETRY_FOR`],
//! then reported as `StoreError::Unavailable` (the pauses: `kora_core::backoff`). Shared by
//! the SQL backends and Cassandra; each names which of its driver's errors are transient
//! ([`Transient`]).

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::StoreError;

/// How long a store keeps retrying an unreachable database before it reports `unavailable`.
pub const CONNECT_RETRY_FOR: Duration = Duration::from_secs(30);

/// First pause between retries; it doubles up to [`MAX_RETRY_PAUSE`].
pub const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// A driver error that knows whether trying again may help.
pub trait Transient: Display {
    fn is_transient(&self) -> bool;
}

/// A failure inside a database attempt: the driver's, or one of Kora's own checks.
#[derive(Debug)]
pub enum AttemptError<E> {
    Db(E),
    Store(StoreError),
}

impl<E> From<StoreError> for AttemptError<E> {
    fn from(error: StoreError) -> Self {
        AttemptError::Store(error)
    }
}

/// Runs `attempt` until it succeeds, fails for a non-transient reason, or
/// [`CONNECT_RETRY_FOR`] has passed, pausing with exponential backoff between tries.
/// Retrying a commit whose outcome is unknown is safe: applying a stamped mutation twice
/// changes nothing, and effects run at least once anyway.
pub async fn with_retries<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, StoreError>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AttemptError<E>>>,
{
    let deadline = tokio::time::Instant::now() + CONNECT_RETRY_FOR;
    let backoff = kora_core::backoff::Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
    let mut failures = 0;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(AttemptError::Store(error)) => return Err(error),
            Err(AttemptError::Db(error)) => error,
        };
        if !error.is_transient() {
            return Err(StoreError::Internal(format!("{what}: {error}")));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "{what}: gave up after {CONNECT_RETRY_FOR:?}: {error}"
            )));
        }
        let pause = backoff.ceiling(failures);
        failures += 1;
        tracing::warn!(%error, "{what} failed; retrying in {pause:?}");
        tokio::time::sleep(pause).await;
    }
}

/// Whether a networked store is still open; its work runs through [`with_retries`] only
/// while it is (later calls fail with `StoreError::Closed`).
#[derive(Debug, Default)]
pub struct Gate {
    closed: AtomicBool,
}

impl Gate {
    pub fn check(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Marks the store closed.
    pub fn shut(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// [`with_retries`], refused once the store is closed.
    pub async fn run<T, E, F, Fut>(&self, what: &str, attempt: F) -> Result<T, StoreError>
    where
        E: Transient,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError<E>>>,
    {
        self.check()?;
        with_retries(what, attempt).await
    }
}
