//! One Firebase listen (`q`) on a connection, over one engine subscription of its path.
//!
//! A default listen (no filter, no limit — `orderBy…` alone is sorted by the client) passes
//! each change on as the overwrites it made. A tagged listen (a query with a range or a
//! limit) keeps the node at its path and sends the query's whole result again, tagged,
//! whenever a change alters it: a full overwrite of the window is what lets the SDK fire
//! `child_removed` for a child that leaves a limited window and `child_added` for the one
//! that enters it (notes §3.2).

use kora_core::{Mutation, Path};
use serde_json::{Map, Value};

use super::changes::{overwrites, update_under, Update};
use super::query::FbQuery;
use super::wire;

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
    /// The whole node at the path, to recompute the window from.
    node: Option<Value>,
    /// The result last sent.
    sent: Option<Value>,
}

impl Tagged {
    pub fn new(tag: u64, query: FbQuery, wire: Value) -> Self {
        Tagged {
            tag,
            query,
            wire,
            node: None,
            sent: None,
        }
    }
}

impl Listen {
    /// The frames that give the client the listened value, `value` being the node at the
    /// path now (a first snapshot or a reset).
    pub fn snapshot(&mut self, value: Option<Value>) -> Vec<String> {
        match &mut self.tagged {
            None => vec![wire::data(
                &self.location,
                value.unwrap_or(Value::Null),
                None,
            )],
            Some(tagged) => {
                tagged.node = value;
                let result = tagged.query.apply(tagged.node.as_ref());
                tagged.sent = result.clone();
                vec![wire::data(
                    &self.location,
                    result.unwrap_or(Value::Null),
                    Some(tagged.tag),
                )]
            }
        }
    }

    /// The frames for a change, `mutation` being its part under the path (absolute paths).
    pub fn change(&mut self, mutation: &Mutation, namespace: &super::Namespace) -> Vec<String> {
        let base = self.path.segments();
        let Some(update) = update_under(&overwrites(mutation), base) else {
            return Vec::new();
        };
        match &mut self.tagged {
            None => vec![render(&update, base, namespace, None)],
            Some(tagged) => {
                tagged.node = applied(tagged.node.take(), update);
                let result = tagged.query.apply(tagged.node.as_ref());
                if result == tagged.sent {
                    return Vec::new();
                }
                tagged.sent = result.clone();
                vec![wire::data(
                    &self.location,
                    result.unwrap_or(Value::Null),
                    Some(tagged.tag),
                )]
            }
        }
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
    namespace: &super::Namespace,
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
        return super::node::normalize(value);
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
    super::node::normalize(Value::Object(map))
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
