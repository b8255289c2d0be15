//! Compound hashes and range merges: how a client that reconnects with a large cached copy
//! receives only the parts of it that changed.
//!
//! With a listen the Android and Java SDKs send, besides the simple hash of their copy (`h`),
//! a compound hash (`ch`) once the copy is larger than about a kilobyte: the copy's leaves in
//! order, cut into ranges of roughly equal size, each range hashed (`hs`), each cut named by
//! the path of the last leaf before it (`ps`, one fewer than the hashes). The server hashes
//! its own data over the same ranges and answers each range that differs with a range merge
//! (`rm`): the server's leaves between two cuts, which replace the client's leaves there.
//!
//! Hashing follows the SDK's `CompoundHash` bit for bit (a range's text, hash version 2); the
//! ranges follow Firebase's path order (segments compared by [`name_compare`]), which is the
//! order the SDK visits leaves in. A range of the server's data hashes like the client's only
//! when it holds the same leaves: a range whose leaves differ in any way is sent.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};

use super::double_hex;
use crate::order::{children, name_compare, node_kind, priority_of, NodeKind};

/// A copy larger than this (the SDK's estimate of its JSON size, in bytes) is listened to
/// with a compound hash (the SDK's `SIZE_THRESHOLD_FOR_COMPOUND_HASH`).
pub const COMPOUND_HASH_ABOVE_BYTES: u64 = 1024;

/// The most ranges a client's compound hash may name: more is refused as malformed (the SDK
/// makes about `sqrt(size / 10)`-byte ranges, some 230 for a 5 MB copy).
pub const MAX_COMPOUND_RANGES: usize = 100_000;

const PRIORITY: &str = ".priority";

/// A client's compound hash: `posts[i]` is the path of the last leaf of range `i`, `hashes[i]`
/// its hash; the last hash is of what follows the last post (always `""` from a client).
#[derive(Debug, Clone, PartialEq)]
pub struct CompoundHash {
    pub posts: Vec<Vec<String>>,
    pub hashes: Vec<String>,
}

/// The server's leaves after `start` (exclusive; `None`: from the first) up to `end`
/// (inclusive; `None`: to the last), which replace the client's leaves in that range.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeMerge {
    pub start: Option<Vec<String>>,
    pub end: Option<Vec<String>>,
    pub data: Option<Value>,
}

impl CompoundHash {
    /// Reads a listen's `ch` (`{"ps": ["a/b", …], "hs": ["…", …]}`): `None` when it is not
    /// one (n posts need n + 1 hashes).
    pub fn from_wire(ch: &Value) -> Option<CompoundHash> {
        let strings = |key: &str| -> Option<Vec<&str>> {
            let items = ch.get(key)?.as_array()?;
            items.iter().map(Value::as_str).collect()
        };
        let (posts, hashes) = (strings("ps")?, strings("hs")?);
        if hashes.len() != posts.len() + 1 || hashes.len() > MAX_COMPOUND_RANGES {
            return None;
        }
        Some(CompoundHash {
            posts: posts.into_iter().map(segments).collect(),
            hashes: hashes.into_iter().map(str::to_string).collect(),
        })
    }

    /// The `ch` member of a listen, as the SDK sends it.
    pub fn to_wire(&self) -> Value {
        let posts: Vec<String> = self.posts.iter().map(|p| path_string(p)).collect();
        json!({"ps": posts, "hs": self.hashes})
    }

    /// The compound hash a client computes of its copy `node` (the SDK's
    /// `CompoundHash.fromNode` with its size-based split).
    pub fn of(node: Option<&Value>) -> CompoundHash {
        let Some(node) = node.filter(|n| node_kind(Some(n)) != NodeKind::Empty) else {
            return CompoundHash {
                posts: Vec::new(),
                hashes: vec![String::new()],
            };
        };
        let threshold = 512.max(((estimate_size(Some(node)) * 100) as f64).sqrt() as usize);
        let mut builder = Builder::new(BySize { threshold });
        builder.node(node);
        builder.finish(0)
    }
}

impl RangeMerge {
    /// One entry of an `rm` message's list.
    pub fn to_wire(&self) -> Value {
        let path = |p: &Option<Vec<String>>| p.as_ref().map(|p| path_string(p));
        json!({"s": path(&self.start), "e": path(&self.end), "m": self.data})
    }
}

/// The range merges that turn the copy `client` hashes into `node`: one for each range whose
/// hash differs from the same range of `node` (none when every range matches). `None` when
/// merges cannot say it: a range whose only leaf is a node's priority (a priority without
/// children is no node to the SDK, which would drop it), so the whole node must be sent.
pub fn range_merges(node: Option<&Value>, client: &CompoundHash) -> Option<Vec<RangeMerge>> {
    let mut builder = Builder::new(AtPosts {
        posts: &client.posts,
        next: 0,
    });
    if let Some(node) = node.filter(|n| node_kind(Some(n)) != NodeKind::Empty) {
        builder.node(node);
    }
    let server = builder.finish(client.hashes.len());
    let bound = |i: Option<usize>| i.and_then(|i| client.posts.get(i).cloned());
    let mut lone_priority = false;
    let merges = (0..client.hashes.len())
        .filter(|&i| server.hashes.get(i) != client.hashes.get(i))
        .map(|i| {
            let (start, end) = (bound(i.checked_sub(1)), bound(Some(i)));
            let range = Range {
                start: &start,
                end: &end,
            };
            let data = node.and_then(|n| range.slice(n, &mut Vec::new(), &mut lone_priority));
            RangeMerge { start, end, data }
        })
        .collect();
    (!lone_priority).then_some(merges)
}

/// `a/b` for `["a", "b"]`, `/` for the root (the SDK's `pathToString`).
fn path_string(path: &[String]) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    path.join("/")
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Firebase's path order (`Path.compareTo`): segment by segment, a path before its extensions.
fn path_compare(a: &[String], b: &[String]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| name_compare(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Where a builder cuts its ranges.
trait Split {
    /// Called before entering the child at `path`: how many ranges end before it.
    fn before(&mut self, path: &[String]) -> usize;
    /// Called after a leaf at `path` with the current range's length: whether it ends there.
    fn after_leaf(&mut self, path: &[String], length: usize) -> bool;
}

/// The client's split: a range ends after the leaf that takes it past `threshold` characters
/// (never at a priority).
struct BySize {
    threshold: usize,
}

impl Split for BySize {
    fn before(&mut self, _: &[String]) -> usize {
        0
    }

    fn after_leaf(&mut self, path: &[String], length: usize) -> bool {
        length > self.threshold && path.last().is_none_or(|k| k != PRIORITY)
    }
}

/// The server's split: at the client's posts, a range holding exactly the leaves between two.
struct AtPosts<'a> {
    posts: &'a [Vec<String>],
    next: usize,
}

impl Split for AtPosts<'_> {
    fn before(&mut self, path: &[String]) -> usize {
        let start = self.next;
        while self
            .posts
            .get(self.next)
            .is_some_and(|post| path_compare(path, post) == Ordering::Greater)
        {
            self.next += 1;
        }
        self.next - start
    }

    fn after_leaf(&mut self, path: &[String], _: usize) -> bool {
        let at_post = self.posts.get(self.next).is_some_and(|post| post == path);
        self.next += usize::from(at_post);
        at_post
    }
}

/// The SDK's `CompoundHashBuilder`: walks a node's leaves in order, writing each range's
/// text (`(` + the range's first path, then nested `"key":(…)` groups and leaf texts).
struct Builder<S> {
    split: S,
    posts: Vec<Vec<String>>,
    hashes: Vec<String>,
    /// The text of the range being built (in UTF-16 units, its length as the SDK counts it).
    range: Option<(String, usize)>,
    path: Vec<String>,
    last_leaf: Vec<String>,
    needs_comma: bool,
}

impl<S: Split> Builder<S> {
    fn new(split: S) -> Self {
        Builder {
            split,
            posts: Vec::new(),
            hashes: Vec::new(),
            range: None,
            path: Vec::new(),
            last_leaf: Vec::new(),
            needs_comma: true,
        }
    }

    /// Visits `node` (not empty): its children in key order, its priority among them as the
    /// child `.priority`.
    fn node(&mut self, node: &Value) {
        if node_kind(Some(node)) != NodeKind::Children {
            return self.leaf(node);
        }
        let mut kids = children_and_priority(node);
        kids.sort_by(|a, b| name_compare(&a.0, &b.0));
        for (key, child) in kids {
            self.start_child(key);
            self.node(child);
            self.end_child();
        }
    }

    fn start_child(&mut self, key: String) {
        self.path.push(key);
        let ended = self.split.before(&self.path);
        let key = self.path.pop().unwrap_or_default();
        for _ in 0..ended {
            self.end_range();
        }
        self.ensure_range();
        if self.needs_comma {
            self.append(",");
        }
        self.append(&quoted(&key));
        self.append(":(");
        self.path.push(key);
        self.needs_comma = false;
    }

    fn end_child(&mut self) {
        self.path.pop();
        if self.range.is_some() {
            self.append(")");
        }
        self.needs_comma = true;
    }

    fn leaf(&mut self, node: &Value) {
        self.ensure_range();
        self.last_leaf = self.path.clone();
        self.append(&leaf_text(node));
        self.needs_comma = true;
        let length = self.range.as_ref().map_or(0, |r| r.1);
        if self.split.after_leaf(&self.path, length) {
            self.end_range();
        }
    }

    fn ensure_range(&mut self) {
        if self.range.is_some() {
            return;
        }
        self.range = Some((String::new(), 0));
        self.append("(");
        for key in self.path.clone() {
            self.append(&quoted(&key));
            self.append(":(");
        }
        self.needs_comma = false;
    }

    fn append(&mut self, text: &str) {
        if let Some((range, units)) = &mut self.range {
            range.push_str(text);
            *units += text.encode_utf16().count();
        }
    }

    /// Ends the range being built (closing its open groups), or records an empty range where
    /// none is (the server's data has nothing between two of the client's posts).
    fn end_range(&mut self) {
        if self.range.is_none() {
            self.hashes.push(String::new());
            self.posts.push(self.last_leaf.clone());
            return;
        }
        for _ in 0..self.path.len() {
            self.append(")");
        }
        self.append(")");
        let (text, _) = self.range.take().unwrap_or_default();
        let digest = Sha1::digest(text.as_bytes());
        self.hashes.push(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            digest,
        ));
        self.posts.push(self.last_leaf.clone());
    }

    /// Ends the last range and pads the hashes to `ranges` with empty ones (at least one: the
    /// SDK always ends with the empty hash of what follows its last post).
    fn finish(mut self, ranges: usize) -> CompoundHash {
        if self.range.is_some() {
            self.end_range();
        }
        while self.hashes.len() < ranges.max(self.posts.len() + 1) {
            self.hashes.push(String::new());
        }
        CompoundHash {
            posts: self.posts,
            hashes: self.hashes,
        }
    }
}

/// A node's children, and its priority as the child `.priority` (how the SDK visits them).
fn children_and_priority(node: &Value) -> Vec<(String, &Value)> {
    let mut kids: Vec<(String, &Value)> = children(node)
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect();
    if let Some(priority) = priority_of(node) {
        kids.push((PRIORITY.to_string(), priority));
    }
    kids
}

/// A leaf's text in hash version 2: its priority's, then its type and value (strings quoted).
fn leaf_text(node: &Value) -> String {
    let priority = priority_of(node)
        .map(|p| format!("priority:{}:", leaf_text(p)))
        .unwrap_or_default();
    let value = match node_kind(Some(node)) {
        NodeKind::Bool(b) => format!("boolean:{b}"),
        NodeKind::Number(x) => format!("number:{}", double_hex(x)),
        NodeKind::String(s) => format!("string:{}", quoted(s)),
        NodeKind::Children | NodeKind::Empty => String::new(),
    };
    priority + &value
}

/// The SDK's `stringHashV2Representation`: quoted, with `\` and `"` escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The SDK's `NodeSizeEstimator.estimateSerializedNodeSize`.
fn estimate_size(node: Option<&Value>) -> u64 {
    let Some(node) = node.filter(|n| node_kind(Some(n)) != NodeKind::Empty) else {
        return 4;
    };
    if node_kind(Some(node)) != NodeKind::Children {
        return leaf_size(node);
    }
    let mut sum = 1;
    for (key, child) in children(node) {
        sum += key.encode_utf16().count() as u64 + 4 + estimate_size(Some(child));
    }
    if let Some(priority) = priority_of(node) {
        sum += 12 + leaf_size(priority);
    }
    sum
}

fn leaf_size(node: &Value) -> u64 {
    let value = match node_kind(Some(node)) {
        NodeKind::Bool(_) => 4,
        NodeKind::Number(_) => 8,
        NodeKind::String(s) => 2 + s.encode_utf16().count() as u64,
        NodeKind::Children | NodeKind::Empty => 0,
    };
    match priority_of(node) {
        None => value,
        Some(priority) => 24 + value + leaf_size(priority),
    }
}

/// The paths after `start` (exclusive; `None`: from the first) up to `end` (inclusive;
/// `None`: to the last).
struct Range<'a> {
    start: &'a Option<Vec<String>>,
    end: &'a Option<Vec<String>>,
}

impl Range<'_> {
    fn after_start(&self, path: &[String]) -> bool {
        self.start
            .as_ref()
            .is_none_or(|s| path_compare(path, s).is_gt())
    }

    fn before_end(&self, path: &[String]) -> bool {
        self.end
            .as_ref()
            .is_none_or(|e| path_compare(path, e).is_le())
    }

    /// The leaves of `node` (at `path`) in the range, as a node; `lone_priority` is set when
    /// a node's priority is in it without any of its children.
    fn slice(
        &self,
        node: &Value,
        path: &mut Vec<String>,
        lone_priority: &mut bool,
    ) -> Option<Value> {
        let holds =
            |bound: &Option<Vec<String>>| bound.as_ref().is_some_and(|b| b.starts_with(path));
        let kind = node_kind(Some(node));
        if kind == NodeKind::Empty {
            return None;
        }
        let (after_start, before_end) = (self.after_start(path), self.before_end(path));
        if kind != NodeKind::Children {
            return (after_start && before_end).then(|| node.clone());
        }
        // A subtree wholly inside the range goes whole; one wholly outside, not at all.
        if after_start && before_end && !holds(self.end) {
            return Some(node.clone());
        }
        if !before_end || (!after_start && !holds(self.start)) {
            return None;
        }
        let mut out = Map::new();
        for (key, child) in children_and_priority(node) {
            path.push(key);
            if let Some(part) = self.slice(child, path, lone_priority) {
                out.insert(path.last().cloned().unwrap_or_default(), part);
            }
            path.pop();
        }
        *lone_priority |= out.len() == 1 && out.contains_key(PRIORITY);
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

#[cfg(test)]
mod tests;
