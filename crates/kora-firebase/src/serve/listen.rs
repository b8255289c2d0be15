//! One Firebase listen (`q`) on a connection, over one engine subscription of its path.
//!
//! A default listen (no filter, no limit — `orderBy…` alone is sorted by the client) passes
//! each change on as the overwrites it made. A tagged listen (a query with a range or a
//! limit) keeps the node at its path and sends the query's whole result again, tagged,
//! whenever a change alters it: a full overwrite of the window is what lets the SDK fire
//! `child_removed` for a child that leaves a limited window and `child_added` for the one
//! that enters it (docs/firebase-protocol.md §3.2).

use std::sync::Arc;

use kora_core::{Mutation, Path};
use kora_engine::{Error, Session};
use serde_json::{Map, Value};

use crate::index::{Ordered, SharedIndex};
use crate::node::CompoundHash;
use crate::order::child_at;
use crate::query::Index;

use crate::changes::{overwrites, update_under, Update};
use crate::query::FbQuery;
use crate::wire;
use kora_transport::rendered::{Frame, Rendered};

/// A listen's identity on its connection: the tag of a tagged one; the path and query object
/// of a default one (an untagged `orderBy…` listen is its own listen beside the plain one).
pub fn subscription_id(path: &str, query: Option<&Value>, tag: Option<u64>) -> String {
    match tag {
        Some(tag) => format!("t:{tag}"),
        None => {
            let query = query.filter(|q| q.as_object().is_some_and(|m| !m.is_empty()));
            format!(
                "d:{path}:{}",
                query.map(Value::to_string).unwrap_or_default()
            )
        }
    }
}

/// A registered listen.
pub struct Listen {
    /// Kora's path of the listened location.
    pub path: Path,
    /// The Firebase path, as pushes name it (no leading slash).
    pub location: String,
    pub tagged: Option<Tagged>,
}

/// What a tagged listen keeps.
pub struct Tagged {
    pub tag: u64,
    pub query: FbQuery,
    /// The query object as the client sent it (revocations name it).
    pub wire: Value,
    source: Source,
    /// The result last sent.
    sent: Option<Value>,
}

/// Where a tagged listen's window comes from.
enum Source {
    /// The whole node at the path, kept here. For child and value orders, `ordered` keeps
    /// its keys in the query's order, so a change costs a lookup rather than a sort; other
    /// orders filter the node again on every change.
    Node {
        node: Option<Value>,
        ordered: Option<Ordered>,
    },
    /// An `orderByChild` index: only the window's children are read.
    Index {
        index: SharedIndex,
        keys: Vec<String>,
    },
}

impl Tagged {
    pub fn new(tag: u64, query: FbQuery, wire: Value, index: Option<SharedIndex>) -> Self {
        let source = match index {
            Some(index) => Source::Index {
                index,
                keys: Vec::new(),
            },
            None => Source::Node {
                node: None,
                ordered: match &query.index {
                    Index::Child(child) => Some(Ordered::new(child.clone())),
                    Index::Value => Some(Ordered::new(Vec::new())),
                    Index::Key | Index::Priority => None,
                },
            },
        };
        Tagged {
            tag,
            query,
            wire,
            source,
            sent: None,
        }
    }

    /// Whether the window is found in an index (the listen then needs no snapshot).
    pub fn is_indexed(&self) -> bool {
        matches!(self.source, Source::Index { .. })
    }

    /// The query's result now, `update` (if any) being the change just seen. `None` in the
    /// outer option: the result cannot have changed.
    async fn result(
        &mut self,
        path: &Path,
        update: Option<Update>,
        session: &Session,
    ) -> Result<Option<Option<Value>>, Error> {
        match &mut self.source {
            Source::Node { node, ordered } => {
                let touched = update.as_ref().map(touched_keys);
                if let Some(update) = update {
                    *node = applied(node.take(), update);
                }
                let Some(ordered) = ordered else {
                    return Ok(Some(self.query.apply(node.as_ref())));
                };
                match touched.flatten() {
                    None => ordered.rebuild(node.as_ref()),
                    Some(keys) => {
                        for key in keys {
                            match node.as_ref().and_then(|n| n.get(&key)) {
                                Some(child) => {
                                    let value = child_at(child, ordered.child()).cloned();
                                    ordered.put(key, value);
                                }
                                None => ordered.remove(&key),
                            }
                        }
                    }
                }
                Ok(Some(window_of(
                    node.as_ref(),
                    &crate::index::window(ordered, &self.query),
                )))
            }
            Source::Index { index, keys } => {
                let fresh = {
                    let mut index = index.lock().await;
                    index.catch_up().await;
                    crate::index::window(index.ordered(), &self.query)
                };
                let touched = match &update {
                    None => true,
                    Some(update) => touches(update, &fresh),
                };
                if fresh == *keys && !touched {
                    return Ok(None);
                }
                *keys = fresh;
                read_children(path, keys, session).await.map(Some)
            }
        }
    }
}

/// The children of the collection `update` (relative to it) changes; `None`: all of them.
fn touched_keys(update: &Update) -> Option<Vec<String>> {
    let first = |path: &[String]| path.first().cloned();
    match update {
        Update::Put { path, .. } => first(path).map(|k| vec![k]),
        Update::Patch { path, .. } if !path.is_empty() => first(path).map(|k| vec![k]),
        Update::Patch { children, .. } => {
            let keys = children.keys().filter_map(|k| k.split('/').next());
            Some(keys.map(String::from).collect())
        }
    }
}

/// The children `keys` of `node`, as one object (`None` when there are none).
fn window_of(node: Option<&Value>, keys: &[String]) -> Option<Value> {
    let node = node?;
    let window: Map<String, Value> = keys
        .iter()
        .filter_map(|k| Some((k.clone(), node.get(k)?.clone())))
        .collect();
    (!window.is_empty()).then_some(Value::Object(window))
}

/// Whether `update` (relative to the collection) changes any of the children `keys`.
fn touches(update: &Update, keys: &[String]) -> bool {
    touched_keys(update).is_none_or(|touched| touched.iter().any(|k| keys.contains(k)))
}

/// The children `keys` of `path`, read through the rules, as one object.
async fn read_children(
    path: &Path,
    keys: &[String],
    session: &Session,
) -> Result<Option<Value>, Error> {
    let mut paths = Vec::with_capacity(keys.len());
    for key in keys {
        paths.push(path.child(key.as_str())?);
    }
    if paths.is_empty() {
        return Ok(None);
    }
    let answer = session.query(&kora_core::Query::of(paths)).await?;
    let mut window = Map::new();
    for (key, value) in keys.iter().zip(answer.values) {
        if let Some(value) = value {
            window.insert(key.clone(), value);
        }
    }
    Ok((!window.is_empty()).then_some(Value::Object(window)))
}

/// What a listening client says it holds of the location already: the hash of its cached
/// copy (`h`), and for a large copy its compound hash (`ch`, sent by the Android and Java SDKs).
pub struct Known<'a> {
    pub hash: Option<&'a str>,
    pub compound: Option<CompoundHash>,
}

impl Known<'_> {
    /// A client that holds nothing (or whose copy the server cannot vouch for: a reset).
    pub const NOTHING: Known<'static> = Known {
        hash: None,
        compound: None,
    };

    /// The frames that bring the client's copy to `value`: none when the copy is current (the
    /// client takes the listen's `ok` as confirming it, docs/firebase-protocol.md §3.4); range
    /// merges of the ranges that differ when the client sent a compound hash; else the whole
    /// value.
    fn frames(&self, location: &str, value: Option<Value>, tag: Option<u64>) -> Vec<Frame> {
        let hash = self.hash.filter(|h| !h.is_empty());
        if hash.is_some_and(|h| crate::node::hash(value.as_ref()) == h) {
            return Vec::new();
        }
        let merges = self
            .compound
            .as_ref()
            .and_then(|c| crate::node::range_merges(value.as_ref(), c))
            .filter(|merges| !merges.is_empty());
        match merges {
            Some(merges) => vec![wire::range_merge(location, &merges, tag).into()],
            None => vec![wire::data(location, value.unwrap_or(Value::Null), tag).into()],
        }
    }
}

impl Listen {
    /// The frames that give the client the listened value, `value` being the node at the
    /// path now (a first snapshot or a reset; ignored by an indexed listen), knowing what the
    /// client holds already ([`Known`]).
    pub async fn snapshot(
        &mut self,
        value: Option<Value>,
        known: &Known<'_>,
        session: &Session,
    ) -> Result<Vec<Frame>, Error> {
        let Some(tagged) = &mut self.tagged else {
            return Ok(known.frames(&self.location, value, None));
        };
        if let Source::Node { node, ordered } = &mut tagged.source {
            *node = value;
            if let Some(ordered) = ordered {
                ordered.rebuild(node.as_ref());
            }
        }
        let result = tagged.result(&self.path, None, session).await?.flatten();
        tagged.sent = result.clone();
        Ok(known.frames(&self.location, result, Some(tagged.tag)))
    }

    /// The frames for a change, `mutation` being its part under the path (absolute paths).
    /// A default listen's frames come from `rendered` when another listen of the same place
    /// rendered the change already.
    pub async fn change(
        &mut self,
        mutation: &Arc<Mutation>,
        namespace: &crate::Namespace,
        session: &Session,
        rendered: &Rendered<String, Vec<Frame>>,
    ) -> Result<Vec<Frame>, Error> {
        let base = self.path.segments();
        let Some(tagged) = &mut self.tagged else {
            return Ok(rendered.get(mutation, &self.location, || {
                update_under(&overwrites(mutation), base)
                    .map(|update| render(&update, base, namespace, None).into())
                    .into_iter()
                    .collect()
            }));
        };
        let Some(update) = update_under(&overwrites(mutation), base) else {
            return Ok(Vec::new());
        };
        let Some(result) = tagged.result(&self.path, Some(update), session).await? else {
            return Ok(Vec::new());
        };
        if result == tagged.sent {
            return Ok(Vec::new());
        }
        tagged.sent = result.clone();
        Ok(vec![wire::data(
            &self.location,
            result.unwrap_or(Value::Null),
            Some(tagged.tag),
        )
        .into()])
    }

    /// The frame that tells the client this listen is cancelled.
    pub fn revoked(&self) -> String {
        wire::revoked(&self.location, self.tagged.as_ref().map(|t| &t.wire))
    }
}

/// An update as a `d` or `m` push, at Firebase paths.
fn render(
    update: &Update,
    base: &[String],
    namespace: &crate::Namespace,
    tag: Option<u64>,
) -> String {
    let at = |relative: &[String]| {
        let mut full = base.to_vec();
        full.extend_from_slice(relative);
        namespace.firebase_path(&full)
    };
    match update {
        Update::Put { path, value } => wire::data(&at(path), value.clone(), tag),
        Update::Patch { path, children } => wire::merge(&at(path), children.clone(), tag),
    }
}

/// `node` with `update` (relative to it) applied.
fn applied(node: Option<Value>, update: Update) -> Option<Value> {
    match update {
        Update::Put { path, value } => replace(node, &path, value),
        Update::Patch { path, children } => {
            let mut node = node;
            for (relative, value) in children {
                let mut full = path.clone();
                full.extend(relative.split('/').map(String::from));
                node = replace(node, &full, value);
            }
            node
        }
    }
}

/// `node` with the node at `path` replaced by `value` (`null`: removed), empty parents
/// pruned as Firebase prunes them.
fn replace(node: Option<Value>, path: &[String], value: Value) -> Option<Value> {
    let Some((first, rest)) = path.split_first() else {
        return crate::node::normalize(value);
    };
    let mut map = match node {
        Some(Value::Object(map)) if !map.contains_key(".value") => map,
        Some(Value::Object(mut wrapped)) => {
            // A leaf with a priority gaining children keeps the priority only.
            let mut map = Map::new();
            if let Some(p) = wrapped.remove(".priority") {
                map.insert(".priority".into(), p);
            }
            map
        }
        _ => Map::new(),
    };
    let child = map.remove(first);
    if let Some(child) = replace(child, rest, value) {
        map.insert(first.clone(), child);
    }
    // Only this child changed (and is already canonical): the node is empty when nothing but
    // a priority is left, as Firebase prunes it.
    match map.keys().all(|k| k == ".priority") {
        true => None,
        false => Some(Value::Object(map)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segs(text: &str) -> Vec<String> {
        text.split('/').map(String::from).collect()
    }

    #[test]
    fn replacing_prunes_empty_parents() {
        let node = Some(json!({"a": {"b": 1}, "c": 2}));
        assert_eq!(
            replace(node.clone(), &segs("a/b"), Value::Null),
            Some(json!({"c": 2}))
        );
        assert_eq!(
            replace(node, &segs("a/x"), json!(3)),
            Some(json!({"a": {"b": 1, "x": 3}, "c": 2}))
        );
        assert_eq!(
            replace(Some(json!(5)), &segs("a"), json!(1)),
            Some(json!({"a": 1}))
        );
    }
}
