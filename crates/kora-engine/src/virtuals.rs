//! Virtual paths inside the answer of a read of their ancestor.
//!
//! An interceptor that answers reads ([`crate::Interceptor::answers_reads`]) makes the paths
//! its pattern matches virtual. A read of an ancestor holds them, answered as a read of each
//! would be:
//!
//! - a literal key is there whether or not anything is stored under it (`stats/todos` is in a
//!   read of `stats` and of the root);
//! - `$name` or `*` is there once for each key the stored answer holds at that place
//!   (`users/$uid/summary` in a read of `users`: once per user);
//! - a windowed read (`limit`, a range, an order) never gains children its window did not
//!   select: only virtual paths beneath the children it holds are added.
//!
//! Where a stored leaf occupies a place on the way, the virtual path is not there. A virtual
//! path the caller may not read is left out; any other error fails the read.

use kora_core::{Path, PathQuery, Value};
use serde_json::Map;

use crate::context::Context;
use crate::error::{Code, Error};
use crate::kora::Kora;
use crate::pattern::Step;

/// A virtual path inside an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Beneath {
    pub path: Path,
    /// How many segments of `path` its existence hangs on: up to its last `$name` or `*`
    /// (the read's own path when it has none). When that much is deleted, so is it.
    pub anchor: usize,
}

impl Kora {
    /// True when some interceptor answers paths strictly beneath `path`.
    pub(crate) fn answers_beneath(&self, path: &Path) -> bool {
        self.answering()
            .any(|r| r.pattern.steps_beneath(path.segments()).is_some())
    }

    /// The virtual paths beneath `part` that its answer `node` holds, in interceptor order.
    pub(crate) fn virtual_paths_beneath(&self, part: &PathQuery, node: Node<'_>) -> Vec<Beneath> {
        let mut out = Vec::new();
        let base = part.path.segments().len();
        for registered in self.answering() {
            let Some(steps) = registered.pattern.steps_beneath(part.path.segments()) else {
                continue;
            };
            let walk = Walk {
                steps: &steps,
                windowed: part.is_windowed(),
                base,
            };
            walk.from(node, part.path.clone(), base, &mut out);
        }
        out
    }

    /// `value`, the answer of `part`, with the virtual paths beneath it answered in place.
    pub(crate) async fn include_virtual(
        &self,
        ctx: &Context,
        part: &PathQuery,
        value: Option<Value>,
    ) -> Result<Option<Value>, Error> {
        let value = match value {
            Some(Value::Null) => None,
            Some(Value::Object(_)) | None => value,
            Some(_) => return Ok(value),
        };
        let paths = self.virtual_paths_beneath(part, Node::of(value.as_ref()));
        if paths.is_empty() {
            return Ok(value);
        }
        let mut tree = match value {
            Some(Value::Object(tree)) => tree,
            _ => Map::new(),
        };
        for beneath in paths {
            let query = PathQuery::new(beneath.path.clone());
            let answer = match self.check_read(ctx, &query).await {
                Ok(Some(answer)) => answer,
                Ok(None) => continue,
                Err(error) if error.code == Code::PermissionDenied => continue,
                Err(error) => return Err(error),
            };
            let relative = &beneath.path.segments()[part.path.segments().len()..];
            put(&mut tree, relative, answer);
        }
        Ok((!tree.is_empty()).then_some(Value::Object(tree)))
    }

    fn answering(&self) -> impl Iterator<Item = &crate::interceptor::Registered> {
        self.inner
            .interceptors
            .iter()
            .filter(|r| r.interceptor.answers_reads())
    }
}

/// What an answer holds at one place, as far as virtual paths care.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node<'v> {
    /// Nothing: a literal key goes on, `$name` and `*` find nothing.
    Absent,
    /// A stored leaf: no virtual path beneath it.
    Leaf,
    Branch(&'v Map<String, Value>),
}

impl<'v> Node<'v> {
    pub(crate) fn of(value: Option<&'v Value>) -> Self {
        match value {
            None | Some(Value::Null) => Node::Absent,
            Some(Value::Object(children)) => Node::Branch(children),
            Some(_) => Node::Leaf,
        }
    }

    /// The node at `path` inside `tree` (the root).
    pub(crate) fn at<S: AsRef<str>>(tree: &'v Map<String, Value>, path: &[S]) -> Self {
        let mut node = Node::Branch(tree);
        for segment in path {
            node = node.child(segment.as_ref());
        }
        node
    }

    fn child(self, key: &str) -> Self {
        match self {
            Node::Branch(children) => Node::of(children.get(key)),
            Node::Absent => Node::Absent,
            Node::Leaf => Node::Leaf,
        }
    }
}

/// One pattern's steps beneath a read, walked over its answer.
struct Walk<'s> {
    steps: &'s [Step<'s>],
    windowed: bool,
    /// The read's depth.
    base: usize,
}

impl Walk<'_> {
    /// The virtual paths from `node` (the answer at `path`) on, `anchor` deep so far.
    fn from(&self, node: Node<'_>, path: Path, anchor: usize, out: &mut Vec<Beneath>) {
        let depth = path.segments().len() - self.base;
        let Some(step) = self.steps.get(depth) else {
            out.push(Beneath { path, anchor });
            return;
        };
        match (step, node) {
            (Step::Rest, _) => out.push(Beneath { path, anchor }),
            // A stored leaf holds the place: nothing beneath it.
            (_, Node::Leaf) => {}
            (Step::Key(key), _) => {
                let child = node.child(key);
                if depth == 0 && self.windowed && matches!(child, Node::Absent) {
                    return;
                }
                if let Ok(next) = path.child(*key) {
                    self.from(child, next, anchor, out);
                }
            }
            (Step::Any, Node::Branch(children)) => {
                for (key, child) in children {
                    if let Ok(next) = path.child(key.as_str()) {
                        let anchor = next.segments().len();
                        self.from(Node::of(Some(child)), next, anchor, out);
                    }
                }
            }
            (Step::Any, _) => {}
        }
    }
}

/// Puts `value` at `relative` inside `tree` (`None` or `null`: removes what is there),
/// unless a leaf holds a place on the way. Nothing is made on the way to a removal.
pub(crate) fn put(tree: &mut Map<String, Value>, relative: &[String], value: Option<Value>) {
    let Some((last, parents)) = relative.split_last() else {
        return;
    };
    let value = value.filter(|v| !v.is_null());
    let mut node = tree;
    for key in parents {
        if value.is_none() && !node.contains_key(key) {
            return;
        }
        let slot = node
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(children) => node = children,
            _ => return,
        }
    }
    match value {
        Some(value) => node.insert(last.clone(), value),
        None => node.remove(last),
    };
}

/// The part of `value` at `relative`.
pub(crate) fn value_at(value: Option<&Value>, relative: &[String]) -> Option<Value> {
    let mut node = value?;
    for key in relative {
        node = node.get(key)?;
    }
    Some(node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segments(text: &str) -> Vec<String> {
        text.split('/').map(str::to_string).collect()
    }

    #[test]
    fn a_virtual_answer_is_placed_through_missing_branches() {
        let mut tree = Map::new();
        put(&mut tree, &segments("a/b"), Some(json!(1)));
        assert_eq!(Value::Object(tree.clone()), json!({"a": {"b": 1}}));
        put(&mut tree, &segments("a/b"), None);
        put(&mut tree, &segments("x/y"), None);
        assert_eq!(Value::Object(tree), json!({"a": {}}));
    }

    #[test]
    fn a_stored_leaf_on_the_way_keeps_its_place() {
        let mut tree = json!({"a": 5}).as_object().cloned().unwrap_or_default();
        put(&mut tree, &segments("a/b"), Some(json!(1)));
        assert_eq!(Value::Object(tree), json!({"a": 5}));
    }
}
