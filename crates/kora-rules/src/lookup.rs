//! Lookups: how a synchronous decision reads an asynchronous tree.
//!
//! Rules read the tree (`data`, `root('company:info/acme/admins/u1')`), but the tree lives
//! in a store behind `async` calls, and decisions are pure, synchronous functions. So a
//! decision reads through a [`Lookup`] that answers only what has been loaded; when it
//! meets a path that is not, it finishes what it can, then returns [`NeedsData`] naming every
//! missing path. The caller loads them and decides again — at most [`MAX_LOOKUP_ROUNDS`]
//! times. [`resolve`] is that loop for a synchronous source (tests, tools, memory stores);
//! the engine writes the same loop with `await`.
//!
//! Contract of a lookup: a loaded path means its whole subtree is loaded, so answering for a
//! path also answers for every path beneath it. [`Loaded`] keeps that contract.
//!
//! [`MAX_LOOKUP_ROUNDS`]: crate::limits::MAX_LOOKUP_ROUNDS

use std::collections::BTreeMap;

use kora_core::{Path, Value};
use serde_json::Map;

use crate::error::{CheckError, NeedsData};
use crate::limits::MAX_LOOKUP_ROUNDS;

/// Read access to the tree as it was before the write being decided.
pub trait Lookup {
    /// The value at `path`: `Some(Some(v))` when loaded and present, `Some(None)` when loaded
    /// and absent, `None` when not loaded.
    fn get(&self, path: &Path) -> Option<Option<Value>>;
}

/// A whole plain tree (the root object): everything is loaded.
impl Lookup for Map<String, Value> {
    fn get(&self, path: &Path) -> Option<Option<Value>> {
        if path.is_root() {
            return Some((!self.is_empty()).then(|| Value::Object(self.clone())));
        }
        Some(descend(self, path.segments()).cloned())
    }
}

/// Nothing is loaded: every read asks for data. Useful to find out what a decision needs.
pub struct NothingLoaded;

impl Lookup for NothingLoaded {
    fn get(&self, _path: &Path) -> Option<Option<Value>> {
        None
    }
}

/// The value at `path` beneath a root object, if any.
pub(crate) fn descend<'a, S: AsRef<str>>(
    root: &'a Map<String, Value>,
    path: &[S],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut node = root.get(first.as_ref())?;
    for segment in rest {
        node = node.as_object()?.get(segment.as_ref())?;
    }
    Some(node)
}

/// Subtrees loaded so far, each whole. A path is answered from its nearest loaded ancestor.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    subtrees: BTreeMap<Vec<String>, Option<Value>>,
}

impl Loaded {
    pub fn new() -> Self {
        Loaded::default()
    }

    /// Records the whole subtree at `path` (`None`: nothing there).
    pub fn insert(&mut self, path: &Path, value: Option<Value>) {
        self.subtrees.insert(path.segments().to_vec(), value);
    }

    /// Number of subtrees recorded.
    pub fn len(&self) -> usize {
        self.subtrees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subtrees.is_empty()
    }
}

impl Lookup for Loaded {
    fn get(&self, path: &Path) -> Option<Option<Value>> {
        let segments = path.segments();
        for end in (0..=segments.len()).rev() {
            let Some(loaded) = self.subtrees.get(&segments[..end]) else {
                continue;
            };
            let mut node = loaded.as_ref();
            for segment in &segments[end..] {
                node = node
                    .and_then(|n| n.as_object())
                    .and_then(|m| m.get(segment));
            }
            return Some(node.cloned());
        }
        None
    }
}

/// Errors that may ask for more data.
pub trait MayNeedData {
    fn needed(&self) -> Option<&NeedsData>;
}

impl MayNeedData for NeedsData {
    fn needed(&self) -> Option<&NeedsData> {
        Some(self)
    }
}

impl MayNeedData for CheckError {
    fn needed(&self) -> Option<&NeedsData> {
        match self {
            CheckError::NeedsData(needs) => Some(needs),
            CheckError::Denied(_) => None,
        }
    }
}

/// Runs `decide` against a [`Loaded`] that starts empty, loading what it asks for from
/// `load`, for at most [`MAX_LOOKUP_ROUNDS`] rounds. Returns the last answer (still
/// [`NeedsData`] when the rounds ran out). `rounds` reports how many rounds were run.
pub fn resolve<T, E: MayNeedData>(
    mut load: impl FnMut(&Path) -> Option<Value>,
    mut decide: impl FnMut(&dyn Lookup) -> Result<T, E>,
    rounds: &mut usize,
) -> Result<T, E> {
    let mut loaded = Loaded::new();
    *rounds = 0;
    loop {
        *rounds += 1;
        let answer = decide(&loaded);
        let Err(error) = &answer else {
            return answer;
        };
        let Some(needs) = error.needed() else {
            return answer;
        };
        if *rounds >= MAX_LOOKUP_ROUNDS {
            return answer;
        }
        for path in &needs.paths {
            loaded.insert(path, load(path));
        }
    }
}

/// Reduces paths to a minimal, sorted set: none beneath another.
pub(crate) fn minimal(mut paths: Vec<Path>) -> Vec<Path> {
    paths.sort();
    paths.dedup();
    let mut out: Vec<Path> = Vec::new();
    for path in paths {
        if !out.iter().any(|kept| path.starts_with(kept)) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn a_plain_tree_answers_everything() {
        let Value::Object(tree) = json!({"a": {"b": 1}}) else {
            unreachable!()
        };
        assert_eq!(Lookup::get(&tree, &p("a/b")), Some(Some(json!(1))));
        assert_eq!(Lookup::get(&tree, &p("a/x")), Some(None));
        assert_eq!(Lookup::get(&tree, &p("a/b/c")), Some(None));
        assert_eq!(
            Lookup::get(&tree, &p("")),
            Some(Some(json!({"a": {"b": 1}})))
        );
        assert_eq!(Lookup::get(&Map::new(), &p("")), Some(None));
    }

    #[test]
    fn loaded_answers_from_the_nearest_loaded_ancestor() {
        let mut loaded = Loaded::new();
        loaded.insert(&p("todos/u1"), Some(json!({"T1": {"text": "x"}})));
        loaded.insert(&p("users/u9"), None);
        assert_eq!(loaded.get(&p("todos/u1/T1/text")), Some(Some(json!("x"))));
        assert_eq!(loaded.get(&p("todos/u1/T2")), Some(None));
        assert_eq!(loaded.get(&p("users/u9/name")), Some(None));
        assert_eq!(loaded.get(&p("todos")), None);
        assert_eq!(loaded.get(&p("todos/u2")), None);
    }

    #[test]
    fn minimal_drops_paths_beneath_others() {
        let paths = vec![p("a/b"), p("a"), p("c/d"), p("a/b"), p("c/e")];
        assert_eq!(minimal(paths), vec![p("a"), p("c/d"), p("c/e")]);
    }

    #[test]
    fn resolve_loads_what_is_asked_and_counts_rounds() {
        let mut rounds = 0;
        let answer: Result<Option<Value>, NeedsData> = resolve(
            |path| (path == &p("x")).then(|| json!(5)),
            |lookup| match lookup.get(&p("x")) {
                Some(value) => Ok(value),
                None => Err(NeedsData {
                    paths: vec![p("x")],
                }),
            },
            &mut rounds,
        );
        assert_eq!(answer, Ok(Some(json!(5))));
        assert_eq!(rounds, 2);
    }

    #[test]
    fn resolve_gives_up_after_the_round_limit() {
        let mut rounds = 0;
        let mut n = 0;
        let answer: Result<(), NeedsData> = resolve(
            |_| None,
            |_| {
                n += 1;
                Err(NeedsData {
                    paths: vec![p(&format!("k{n}"))],
                })
            },
            &mut rounds,
        );
        assert!(answer.is_err());
        assert_eq!(rounds, MAX_LOOKUP_ROUNDS);
    }
}
