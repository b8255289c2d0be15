//! A change's push rendered once for all the connections that receive it alike.
//!
//! The fan-out hands every subscription of one path and range the same `Arc<Mutation>` (when
//! no read filter rewrites it), so the 10,000 subscribers of a busy path would otherwise each
//! turn the same change into the same JSON. Renderings are kept by the change (its
//! allocation: an entry holds the `Arc`, so the address is not reused while it is kept) and
//! by what else the frames depend on (`K`: the subscription's name in Kora's protocol, the
//! listened location in Firebase's). Because one `Arc` goes only to subscriptions of one
//! path, the key need not repeat the path.
//!
//! A rendering is kept exactly as long as some receiver may still need it: while a session's
//! queue still holds its change. Entries whose change only the cache holds are swept as the
//! cache grows. (Keeping only the last few renderings, as this once did, made a lagging
//! connection render again what the others had rendered, and the more connections lagged the
//! more rendering each did: a busy location fell further behind the busier it was.)
//!
//! A change that nobody else holds (a read filter gave this receiver its own) cannot be
//! shared: it is rendered without touching the cache.
//!
//! Renderings are [`Frame`]s: reference-counted bytes, so handing one to the 10,000th
//! receiver copies a pointer, not the frame.
//!
//! No lock covers the whole cache: it is a sharded map (dashmap), so connections sending
//! different changes never wait for each other, and those sending the same change share one
//! shard's read lock; only the first renderer of a change (per key) writes. A sweep takes
//! the shards one at a time, and only one connection sweeps at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use dashmap::DashMap;
use kora_core::Mutation;

/// A WebSocket text frame whose clones share one buffer.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// The fewest kept changes at which the cache looks for renderings nobody needs any more;
/// after a sweep it waits until it has doubled.
pub const SWEEP_AT_LEAST: usize = 64;

/// The renderings of changes still in flight (`V`: a frame, or a message's frames), shared by
/// every connection of one protocol.
pub struct Rendered<K, V> {
    /// By the change's address.
    changes: DashMap<usize, Entry<K, V>>,
    /// The size at which the next sweep runs.
    sweep_at: AtomicUsize,
    /// Held by the one connection sweeping.
    sweeping: Mutex<()>,
}

struct Entry<K, V> {
    change: Arc<Mutation>,
    renderings: Vec<(K, V)>,
}

impl<K, V> Default for Rendered<K, V> {
    fn default() -> Self {
        Rendered {
            changes: DashMap::new(),
            sweep_at: AtomicUsize::new(SWEEP_AT_LEAST),
            sweeping: Mutex::new(()),
        }
    }
}

impl<K: PartialEq + Clone, V: Clone> Rendered<K, V> {
    /// `change` rendered for receivers described by `key`: by `render`, unless a connection
    /// with the same `key` rendered it already.
    pub fn get(&self, change: &Arc<Mutation>, key: &K, render: impl FnOnce() -> V) -> V {
        if Arc::strong_count(change) == 1 {
            return render();
        }
        if let Some(rendered) = self.find(change, key) {
            return rendered;
        }
        // Rendered outside any lock: two connections may both render a change first; the
        // result is the same.
        let rendered = render();
        self.insert(change, key, rendered.clone());
        rendered
    }

    fn find(&self, change: &Arc<Mutation>, key: &K) -> Option<V> {
        let entry = self.changes.get(&address(change))?;
        let (_, rendered) = entry.renderings.iter().find(|(k, _)| k == key)?;
        Some(rendered.clone())
    }

    fn insert(&self, change: &Arc<Mutation>, key: &K, rendered: V) {
        {
            let mut entry = self
                .changes
                .entry(address(change))
                .or_insert_with(|| Entry {
                    change: change.clone(),
                    renderings: Vec::new(),
                });
            if !entry.renderings.iter().any(|(k, _)| k == key) {
                entry.renderings.push((key.clone(), rendered));
            }
        } // The shard's lock is released before the map is counted or swept.
        if self.changes.len() >= self.sweep_at.load(Ordering::Relaxed) {
            self.sweep();
        }
    }

    /// Drops the renderings of changes only the cache holds: every receiver has had them.
    fn sweep(&self) {
        let _sweeping = match self.sweeping.try_lock() {
            Ok(guard) => guard,
            // A sweep that panicked left nothing half done: the map is consistent.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return, // another connection is sweeping
        };
        self.changes
            .retain(|_, entry| Arc::strong_count(&entry.change) > 1);
        let next = (self.changes.len() * 2).max(SWEEP_AT_LEAST);
        self.sweep_at.store(next, Ordering::Relaxed);
    }

    /// How many changes have renderings kept.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether no rendering is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A change's identity while it is held.
fn address(change: &Arc<Mutation>) -> usize {
    Arc::as_ptr(change) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use kora_core::Path;
    use serde_json::json;

    /// A change as the fan-out hands it out: held by more than one receiver.
    fn shared(value: serde_json::Value) -> (Arc<Mutation>, Arc<Mutation>) {
        let change = Arc::new(Mutation::merge(&Path::parse("a").unwrap(), value).unwrap());
        (change.clone(), change)
    }

    #[test]
    fn a_change_is_rendered_once_per_key() {
        let rendered = Rendered::<String, String>::default();
        let ((one, _held), (other, _also)) = (shared(json!(1)), shared(json!(1)));
        let mut calls = 0;
        let mut get = |change: &Arc<Mutation>, key: &str| {
            rendered.get(change, &key.to_string(), || {
                calls += 1;
                format!("frame {calls}")
            })
        };
        assert_eq!(get(&one, "a"), "frame 1");
        assert_eq!(get(&one, "a"), "frame 1");
        // An equal change that is another commit, or another key, renders anew.
        assert_eq!(get(&other, "a"), "frame 2");
        assert_eq!(get(&one, "x/a"), "frame 3");
    }

    #[test]
    fn a_change_nobody_else_holds_is_not_kept() {
        let rendered = Rendered::<u8, u8>::default();
        let (own, _) = shared(json!(1));
        assert_eq!(rendered.get(&own, &0, || 1), 1);
        assert_eq!(rendered.get(&own, &0, || 2), 2);
        assert!(rendered.is_empty());
    }

    #[test]
    fn a_rendering_is_kept_while_its_change_is_held() {
        let rendered = Rendered::<u8, &str>::default();
        let (first, held) = shared(json!(0));
        rendered.get(&first, &0, || "first");
        // Many more changes than a sweep's threshold, each delivered and dropped at once.
        for n in 0..SWEEP_AT_LEAST * 4 {
            let (change, _held) = shared(json!(n));
            rendered.get(&change, &0, || "");
        }
        // A receiver still holding the first change is served its rendering...
        assert_eq!(rendered.get(&first, &0, || "again"), "first");
        // ...and the renderings nobody needs are gone.
        assert!(rendered.len() <= SWEEP_AT_LEAST);
        drop((first, held));
        let (change, _held) = shared(json!("last"));
        for n in 0..SWEEP_AT_LEAST * 2 {
            let (other, _held) = shared(json!(n));
            rendered.get(&other, &0, || "");
        }
        rendered.get(&change, &0, || "last");
        assert!(rendered.len() <= SWEEP_AT_LEAST);
    }

    #[test]
    fn connections_on_many_threads_share_renderings_and_sweeps() {
        let rendered = Arc::new(Rendered::<u8, String>::default());
        let changes: Vec<_> = (0..SWEEP_AT_LEAST * 8)
            .map(|n| Arc::new(Mutation::merge(&Path::parse("a").unwrap(), json!(n)).unwrap()))
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (rendered, changes) = (rendered.clone(), changes.clone());
                std::thread::spawn(move || {
                    for (n, change) in changes.iter().enumerate() {
                        let frame = rendered.get(change, &0, || n.to_string());
                        assert_eq!(frame, n.to_string(), "another change's rendering");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Every change is still held (by `changes`): nothing was swept, each kept once.
        assert_eq!(rendered.len(), changes.len());
        drop(changes);
        let (last, _held) = shared(json!("last"));
        // Once the map has doubled past what was held, the sweep drops what nobody holds.
        for n in 0..SWEEP_AT_LEAST * 32 {
            let (other, _held) = shared(json!(n));
            rendered.get(&other, &0, String::new);
        }
        rendered.get(&last, &0, String::new);
        assert!(rendered.len() <= SWEEP_AT_LEAST);
    }
}
