//! A change's push rendered once for all the connections that receive it alike.
//!
//! The fan-out hands every subscription of one path and range the same `Arc<Mutation>` (when
//! no read filter rewrites it), so the 10,000 subscribers of a busy path would otherwise each
//! turn the same change into the same JSON. The last few renderings are kept, keyed by the
//! change (its allocation: an entry holds the `Arc`, so the address is not reused while it is
//! compared) and by what else the frames depend on (`K`: the subscription's name in Kora's
//! protocol, the listened location in Firebase's). Because one `Arc` goes only to
//! subscriptions of one path, the key need not repeat the path.
//!
//! A change that nobody else holds (a read filter gave this receiver its own) cannot be
//! shared: it is rendered without touching the cache.
//!
//! Renderings are [`Frame`]s: reference-counted bytes, so handing one to the 10,000th
//! receiver copies a pointer, not the frame. Receivers look up under a read lock and only the
//! first renderer of a change takes the write lock.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use kora_core::Mutation;

/// A WebSocket text frame whose clones share one buffer.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// Renderings kept: enough for the changes in flight to a few busy locations at once.
pub const KEPT: usize = 16;

/// Recent renderings (`V`: a frame, or a message's frames), shared by every connection of
/// one protocol.
pub struct Rendered<K, V> {
    recent: RwLock<VecDeque<Entry<K, V>>>,
}

struct Entry<K, V> {
    change: Arc<Mutation>,
    key: K,
    rendered: V,
}

impl<K, V> Default for Rendered<K, V> {
    fn default() -> Self {
        Rendered {
            recent: RwLock::new(VecDeque::with_capacity(KEPT)),
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
        // Rendered outside the lock: two connections may both render a change first; the
        // result is the same.
        let rendered = render();
        if let Ok(mut recent) = self.recent.write() {
            recent.push_front(Entry {
                change: change.clone(),
                key: key.clone(),
                rendered: rendered.clone(),
            });
            recent.truncate(KEPT);
        }
        rendered
    }

    fn find(&self, change: &Arc<Mutation>, key: &K) -> Option<V> {
        let recent = self.recent.read().ok()?;
        recent
            .iter()
            .find(|e| Arc::ptr_eq(&e.change, change) && e.key == *key)
            .map(|e| e.rendered.clone())
    }
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
        assert!(rendered.recent.read().unwrap().is_empty());
    }

    #[test]
    fn only_the_last_renderings_are_kept() {
        let rendered = Rendered::<u8, &str>::default();
        let (first, _held) = shared(json!(0));
        rendered.get(&first, &0, || "first");
        for n in 0..KEPT {
            let (change, _held) = shared(json!(n));
            rendered.get(&change, &0, || "");
        }
        assert_eq!(rendered.get(&first, &0, || "again"), "again");
        assert_eq!(rendered.recent.read().unwrap().len(), KEPT);
    }
}
