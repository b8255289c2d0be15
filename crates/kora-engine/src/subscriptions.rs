//! Subscriptions: the index that finds who a change concerns, and the fan-out that hands each
//! subscriber exactly its part.
//!
//! The index is a trie of path segments. To find the subscribers of a change, the fan-out
//! walks the change's own tree through the trie: every subscriber on a path the change
//! touches, and every subscriber beneath a path the change deletes or overwrites with a leaf.
//! The cost is proportional to the paths the change touches plus the subscribers it
//! concerns — never to the total number of subscriptions.
//!
//! Each subscriber gets `Mutation::restrict_range` of the change: the part under its path and
//! key range, nothing else. Subscribers with equal paths and ranges share one restriction.
//! Deliveries go into each session's bounded queue; a full queue marks the session for
//! resynchronisation and drops its queue, so a slow subscriber never delays the writer or
//! anyone else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kora_core::{Delete, Mutation, Path, PathQuery, Stamp, Value};
use kora_store::Seq;
use tokio::sync::mpsc;

use crate::feed::Committed;
use crate::kora::Kora;

/// What a session receives.
#[derive(Debug, Clone)]
pub enum Event {
    /// The part of committed change `seq` under subscription `subscription`.
    Change {
        subscription: u64,
        seq: Seq,
        stamp: Stamp,
        mutation: Arc<Mutation>,
    },
    /// A limited subscription's window may have moved at `seq`: re-read it.
    Touched { subscription: u64, seq: Seq },
}

/// A session's bounded event queue, as the fan-out sees it.
#[derive(Debug)]
pub(crate) struct Sink {
    tx: mpsc::Sender<Event>,
    overflowed: AtomicBool,
}

impl Sink {
    pub fn new(capacity: usize) -> (Arc<Sink>, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Arc::new(Sink {
                tx,
                overflowed: AtomicBool::new(false),
            }),
            rx,
        )
    }

    /// Queues an event; false when the queue was full (the session must resynchronise).
    fn deliver(&self, event: Event) -> bool {
        if self.overflowed.load(Ordering::Relaxed) {
            return true;
        }
        match self.tx.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                false
            }
        }
    }

    /// True once events were dropped; clears the mark.
    pub fn take_overflow(&self) -> bool {
        self.overflowed.swap(false, Ordering::AcqRel)
    }
}

/// One registered subscription.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: u64,
    pub query: PathQuery,
    pub sink: Arc<Sink>,
}

/// The subscription trie.
#[derive(Debug, Default)]
pub(crate) struct Index {
    root: Node,
    count: usize,
}

#[derive(Debug, Default)]
struct Node {
    entries: Vec<Arc<Entry>>,
    children: HashMap<String, Node>,
}

impl Index {
    pub fn insert(&mut self, entry: Arc<Entry>) {
        let mut node = &mut self.root;
        for segment in entry.query.path.segments() {
            node = node.children.entry(segment.clone()).or_default();
        }
        // Keep equal ranges next to each other so the fan-out restricts once per group.
        let at = node
            .entries
            .partition_point(|e| range_key(&e.query) <= range_key(&entry.query));
        node.entries.insert(at, entry);
        self.count += 1;
    }

    pub fn remove(&mut self, id: u64, path: &Path) {
        if remove_from(&mut self.root, path.segments(), id) {
            self.count -= 1;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.count
    }

    /// The subscriptions a change (its effect on the tree) concerns.
    pub fn affected(&self, mutation: &Mutation) -> Vec<Arc<Entry>> {
        let mut out = Vec::new();
        let merge = Merge::Branch(mutation.merges());
        collect(&self.root, merge, Some(mutation.deletes()), &mut out);
        out
    }
}

fn range_key(query: &PathQuery) -> (Option<&str>, Option<&str>, Option<usize>, bool) {
    (
        query.min.as_deref(),
        query.max.as_deref(),
        query.limit,
        query.reverse,
    )
}

fn remove_from(node: &mut Node, path: &[String], id: u64) -> bool {
    match path.split_first() {
        None => {
            let before = node.entries.len();
            node.entries.retain(|e| e.id != id);
            node.entries.len() != before
        }
        Some((first, rest)) => {
            let Some(child) = node.children.get_mut(first) else {
                return false;
            };
            let removed = remove_from(child, rest, id);
            if child.entries.is_empty() && child.children.is_empty() {
                node.children.remove(first);
            }
            removed
        }
    }
}

/// What a change merges at one path.
#[derive(Clone, Copy)]
enum Merge<'a> {
    Nothing,
    Leaf,
    Branch(&'a serde_json::Map<String, Value>),
}

impl<'a> Merge<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None => Merge::Nothing,
            Some(Value::Object(map)) => Merge::Branch(map),
            Some(_) => Merge::Leaf,
        }
    }
}

fn collect(node: &Node, merge: Merge<'_>, delete: Option<&Delete>, out: &mut Vec<Arc<Entry>>) {
    out.extend(node.entries.iter().cloned());
    let replaced = matches!(delete, Some(Delete::All)) || matches!(merge, Merge::Leaf);
    if replaced {
        for child in node.children.values() {
            collect_all(child, out);
        }
        return;
    }
    let merge_children = match merge {
        Merge::Branch(map) => Some(map),
        _ => None,
    };
    let delete_children = match delete {
        Some(Delete::Children(children)) => Some(children),
        _ => None,
    };
    let visit = |key: &str, child: &Node, out: &mut Vec<Arc<Entry>>| {
        let m = merge_children.and_then(|m| m.get(key));
        let d = delete_children.and_then(|d| d.get(key));
        if m.is_some() || d.is_some() {
            collect(child, Merge::of(m), d, out);
        }
    };
    // Walk whichever side is smaller: the change's keys here, or the trie's.
    let touched = merge_children.map_or(0, |m| m.len()) + delete_children.map_or(0, |d| d.len());
    if touched < node.children.len() {
        let keys = merge_children
            .into_iter()
            .flat_map(|m| m.keys())
            .chain(delete_children.into_iter().flat_map(|d| d.keys()));
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            if let Some(child) = node.children.get(key.as_str()) {
                if seen.insert(key.as_str()) {
                    visit(key, child, out);
                }
            }
        }
    } else {
        for (key, child) in &node.children {
            visit(key, child, out);
        }
    }
}

fn collect_all(node: &Node, out: &mut Vec<Arc<Entry>>) {
    out.extend(node.entries.iter().cloned());
    for child in node.children.values() {
        collect_all(child, out);
    }
}

/// Delivers one committed change to every subscription it concerns.
pub(crate) fn dispatch(kora: &Kora, committed: &Committed) {
    let change = &committed.change;
    if change.mutation.is_empty() {
        return;
    }
    let affected = match kora.inner.index.read() {
        Ok(index) => index.affected(&change.mutation),
        Err(_) => return,
    };
    let metrics = &kora.inner.metrics;
    let mut last: Option<(&Path, &PathQuery, Arc<Mutation>)> = None;
    for entry in &affected {
        let query = &entry.query;
        let event = if query.is_windowed() {
            Event::Touched {
                subscription: entry.id,
                seq: change.seq,
            }
        } else {
            let shared = match &last {
                Some((path, q, m)) if *path == &query.path && range_key(q) == range_key(query) => {
                    m.clone()
                }
                _ => {
                    let restricted = change.mutation.restrict_range(
                        &query.path,
                        query.min.as_deref(),
                        query.max.as_deref(),
                    );
                    let restricted = Arc::new(restricted);
                    last = Some((&query.path, query, restricted.clone()));
                    restricted
                }
            };
            if shared.is_empty() {
                continue;
            }
            Event::Change {
                subscription: entry.id,
                seq: change.seq,
                stamp: change.stamp,
                mutation: shared,
            }
        };
        if entry.sink.deliver(event) {
            metrics.deliveries.inc();
        } else {
            metrics.queue_overflows.inc();
        }
    }
    metrics.fanout_latency.observe(committed.at.elapsed());
}

/// The fan-out task: takes the ordered feed and dispatches each change.
pub(crate) async fn fan_out(kora: Kora, mut feed: mpsc::UnboundedReceiver<Committed>) {
    while let Some(committed) = feed.recv().await {
        dispatch(&kora, &committed);
        kora.inner
            .delivered
            .store(committed.change.seq, Ordering::Release);
        kora.inner.delivered_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(id: u64, path: &str, sink: &Arc<Sink>) -> Arc<Entry> {
        Arc::new(Entry {
            id,
            query: PathQuery::new(Path::parse(path).unwrap()),
            sink: sink.clone(),
        })
    }

    fn ids(index: &Index, mutation: serde_json::Value) -> Vec<u64> {
        let m = Mutation::from_json(&mutation).unwrap();
        let mut ids: Vec<u64> = index.affected(&m).iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn finds_subscribers_on_touched_paths_ancestors_and_beneath_replaced_ones() {
        let (sink, _rx) = Sink::new(8);
        let mut index = Index::default();
        for (id, path) in [
            (1, ""),
            (2, "todos"),
            (3, "todos/t1"),
            (4, "todos/t2"),
            (5, "users"),
        ] {
            index.insert(entry(id, path, &sink));
        }
        assert_eq!(
            ids(&index, json!({"merge": {"todos": {"t1": {"x": 1}}}})),
            [1, 2, 3]
        );
        assert_eq!(ids(&index, json!({"delete": {"todos": 1}})), [1, 2, 3, 4]);
        assert_eq!(ids(&index, json!({"merge": {"todos": 5}})), [1, 2, 3, 4]);
        assert_eq!(ids(&index, json!({"merge": {"other": 1}})), [1]);
        index.remove(3, &Path::parse("todos/t1").unwrap());
        assert_eq!(
            ids(&index, json!({"merge": {"todos": {"t1": {"x": 1}}}})),
            [1, 2]
        );
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn a_full_queue_marks_the_sink_and_drops_the_event() {
        let (sink, _rx) = Sink::new(1);
        let event = Event::Touched {
            subscription: 1,
            seq: 1,
        };
        assert!(sink.deliver(event.clone()));
        assert!(!sink.deliver(event.clone()));
        assert!(sink.take_overflow());
        assert!(!sink.take_overflow());
    }
}
