//! Taking turns on hot paths: what a write does before deciding again after a conflict.
//!
//! Optimistic writes on one hot path (a counter, a document many clients rewrite) conflict
//! with each other: of the writers that read the same state, one commits and the rest must
//! read again. Retried blindly, they read again at once — often before the commit that beat
//! them is visible — and race each other again, so some lose every round and run out of
//! attempts. Two rules keep a node's retries productive:
//!
//! - a retry first waits (briefly, [`CATCH_UP_WAIT`]) until this node has seen the commit the
//!   failed check saw, so its next read includes what beat it;
//! - a node's retries on one path go one at a time ([`Contention::turn`]): each decides on
//!   fresh data while the others wait, instead of all deciding on the same data and all but
//!   one losing again.
//!
//! A first attempt takes a turn only when what it read is hot already (someone on this node is
//! taking turns on it), so an uncontended write pays one look-up here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kora_core::Path;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Longest a retry waits for this node to see the commit that beat it. On one node that takes
/// microseconds; on a cluster the commit may come from another node's feed, and reads from a
/// shared store are fresh anyway, so the wait is only bounded, never required.
pub const CATCH_UP_WAIT: Duration = Duration::from_millis(250);

type PathLock = Arc<AsyncMutex<()>>;

/// The paths on which this node's writes are retrying, each with its turn lock.
#[derive(Default)]
pub struct Contention {
    locks: Mutex<HashMap<Path, PathLock>>,
}

impl Contention {
    /// Waits for this node's turn on every one of `paths` (taken in path order, so two
    /// writers retrying on overlapping paths cannot wait for each other).
    pub async fn turn(self: &Arc<Self>, paths: &[Path]) -> HotTurn {
        let mut paths: Vec<Path> = paths.to_vec();
        paths.sort();
        paths.dedup();
        let mut held = Vec::with_capacity(paths.len());
        for path in paths {
            let lock = match self.locks.lock() {
                Ok(mut locks) => locks.entry(path.clone()).or_default().clone(),
                Err(_) => continue, // poisoned: go without a turn rather than fail the write
            };
            held.push((path, lock.lock_owned().await));
        }
        HotTurn {
            contention: self.clone(),
            held,
        }
    }

    /// True when some of `paths` have writers taking turns on this node now.
    pub fn is_hot(&self, paths: &[Path]) -> bool {
        let Ok(locks) = self.locks.lock() else {
            return false;
        };
        !locks.is_empty() && paths.iter().any(|path| locks.contains_key(path))
    }

    /// How many paths have writers taking turns now.
    pub fn hot_paths(&self) -> usize {
        self.locks.lock().map_or(0, |locks| locks.len())
    }
}

/// A write's turn on its hot paths; dropping it lets the next one go.
pub struct HotTurn {
    contention: Arc<Contention>,
    held: Vec<(Path, OwnedMutexGuard<()>)>,
}

impl Drop for HotTurn {
    fn drop(&mut self) {
        let Ok(mut locks) = self.contention.locks.lock() else {
            return;
        };
        for (path, guard) in self.held.drain(..) {
            drop(guard);
            // Forget a path nobody else holds or waits for (the map's own handle is the last).
            if locks
                .get(&path)
                .is_some_and(|lock| Arc::strong_count(lock) == 1)
            {
                locks.remove(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_on_one_path_go_one_at_a_time_and_are_forgotten() {
        let contention = Arc::new(Contention::default());
        let a = Path::parse("a").unwrap();
        let first = contention.turn(std::slice::from_ref(&a)).await;
        let waiting = {
            let contention = contention.clone();
            let a = a.clone();
            tokio::spawn(async move { contention.turn(&[a]).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(contention.hot_paths(), 1);
        drop(second);
        assert_eq!(contention.hot_paths(), 0);
    }
}
