//! A change's push rendered once for all the connections that receive it alike.
//!
//! The fan-out hands every subscription of one path and range the same `Arc<Mutation>` (when
//! no read filter rewrites it), so the 10,000 subscribers of a busy path would otherwise each
//! turn the same change into the same JSON. The last few renderings are kept, keyed by the
//! change (its allocation: an entry holds the `Arc`, so the address is not reused while it is
//! compared) and by what else the frames depend on (`K`: the subscription's name in Kora's
//! protocol, the listened place in Firebase's).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use kora_core::Mutation;

/// Renderings kept: enough for the changes in flight to a few busy locations at once.
pub const KEPT: usize = 16;

/// Recent renderings, shared by every connection of one protocol.
pub struct Rendered<K> {
    recent: Mutex<VecDeque<Entry<K>>>,
}

struct Entry<K> {
    change: Arc<Mutation>,
    key: K,
    frames: Vec<String>,
}

impl<K> Default for Rendered<K> {
    fn default() -> Self {
        Rendered {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }
}

impl<K: PartialEq + Clone> Rendered<K> {
    /// The frames of `change` for receivers described by `key`: rendered by `render`
    /// unless a connection with the same `key` rendered them already.
    pub fn frames(
        &self,
        change: &Arc<Mutation>,
        key: &K,
        render: impl FnOnce() -> Vec<String>,
    ) -> Vec<String> {
        if let Some(frames) = self.find(change, key) {
            return frames;
        }
        // Rendered outside the lock: two connections may both render a change first; the
        // result is the same.
        let frames = render();
        if let Ok(mut recent) = self.recent.lock() {
            recent.push_front(Entry {
                change: change.clone(),
                key: key.clone(),
                frames: frames.clone(),
            });
            recent.truncate(KEPT);
        }
        frames
    }

    fn find(&self, change: &Arc<Mutation>, key: &K) -> Option<Vec<String>> {
        let recent = self.recent.lock().ok()?;
        recent
            .iter()
            .find(|e| Arc::ptr_eq(&e.change, change) && e.key == *key)
            .map(|e| e.frames.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kora_core::Path;
    use serde_json::json;

    fn change(value: serde_json::Value) -> Arc<Mutation> {
        Arc::new(Mutation::merge(&Path::parse("a").unwrap(), value).unwrap())
    }

    #[test]
    fn a_change_is_rendered_once_per_place() {
        let rendered = Rendered::<String>::default();
        let (one, other) = (change(json!(1)), change(json!(1)));
        let mut calls = 0;
        let mut frames = |change: &Arc<Mutation>, key: &str| {
            rendered.frames(change, &key.to_string(), || {
                calls += 1;
                vec![format!("frame {calls}")]
            })
        };
        assert_eq!(frames(&one, "a"), vec!["frame 1"]);
        assert_eq!(frames(&one, "a"), vec!["frame 1"]);
        // An equal change that is another commit, or another key, renders anew.
        assert_eq!(frames(&other, "a"), vec!["frame 2"]);
        assert_eq!(frames(&one, "x/a"), vec!["frame 3"]);
    }

    #[test]
    fn only_the_last_renderings_are_kept() {
        let rendered = Rendered::<u8>::default();
        let first = change(json!(0));
        rendered.frames(&first, &0, || vec!["first".into()]);
        for n in 0..KEPT {
            rendered.frames(&change(json!(n)), &0, Vec::new);
        }
        let again = rendered.frames(&first, &0, || vec!["again".into()]);
        assert_eq!(again, vec!["again"]);
        assert_eq!(rendered.recent.lock().unwrap().len(), KEPT);
    }
}
