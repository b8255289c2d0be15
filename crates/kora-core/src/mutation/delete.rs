//! The delete half of a mutation: a tree whose leaves mean "this path and everything under it".

use std::collections::BTreeMap;

use super::Prefix;

/// A delete tree. `All` removes the path it stands at; `Children` lists deletes further down.
/// `Children` of an empty map deletes nothing (only the root of a mutation may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delete {
    All,
    Children(BTreeMap<String, Delete>),
}

impl Default for Delete {
    fn default() -> Self {
        Delete::Children(BTreeMap::new())
    }
}

impl Delete {
    /// True when this deletes nothing.
    pub fn is_nothing(&self) -> bool {
        matches!(self, Delete::Children(c) if c.is_empty())
    }

    /// Marks `path` (relative to this node) for deletion. A path beneath one already
    /// deleted adds nothing; a path above existing deletes replaces them.
    pub fn insert<S: AsRef<str>>(&mut self, path: &[S]) {
        let Delete::Children(children) = self else {
            return;
        };
        match path.split_first() {
            None => *self = Delete::All,
            Some((first, rest)) => {
                let child = match children.get_mut(first.as_ref()) {
                    Some(child) => child,
                    None => children
                        .entry(first.as_ref().to_owned())
                        .or_insert_with(Delete::default),
                };
                child.insert(rest);
            }
        }
    }

    /// Adds every delete of `other` to this tree.
    pub fn union(&mut self, other: Delete) {
        match other {
            Delete::All => *self = Delete::All,
            Delete::Children(others) => {
                let Delete::Children(children) = self else {
                    return;
                };
                for (key, sub) in others {
                    children.entry(key).or_default().union(sub);
                }
            }
        }
    }

    /// True when `path` is deleted by this tree (it or one of its ancestors is `All`).
    pub fn covers<S: AsRef<str>>(&self, path: &[S]) -> bool {
        let mut node = self;
        for segment in path {
            match node {
                Delete::All => return true,
                Delete::Children(children) => match children.get(segment.as_ref()) {
                    Some(child) => node = child,
                    None => return false,
                },
            }
        }
        matches!(node, Delete::All)
    }

    /// The sub-tree at `path`, if the tree reaches there. Returns `All` when an ancestor of
    /// `path` is deleted whole.
    pub fn at<S: AsRef<str>>(&self, path: &[S]) -> Option<&Delete> {
        let mut node = self;
        for segment in path {
            match node {
                Delete::All => return Some(node),
                Delete::Children(children) => node = children.get(segment.as_ref())?,
            }
        }
        Some(node)
    }

    /// Every deleted path (the `All` leaves), in tree order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.for_each_path(|path| out.push(path.iter().map(|s| s.to_string()).collect()));
        out
    }

    /// Calls `f` with every deleted path, in tree order, without allocating per path.
    pub fn for_each_path<'a>(&'a self, mut f: impl FnMut(&[&'a str])) {
        fn walk<'a>(node: &'a Delete, prefix: &mut Prefix<'a>, f: &mut impl FnMut(&[&'a str])) {
            match node {
                Delete::All => f(prefix.as_slice()),
                Delete::Children(children) => {
                    for (key, child) in children {
                        prefix.push(key);
                        walk(child, prefix, f);
                        prefix.pop();
                    }
                }
            }
        }
        walk(self, &mut Prefix::default(), &mut f);
    }

    /// Number of deleted paths.
    pub fn path_count(&self) -> usize {
        match self {
            Delete::All => 1,
            Delete::Children(children) => children.values().map(Delete::path_count).sum(),
        }
    }

    /// This tree moved beneath `path`.
    pub fn nest(self, path: &[String]) -> Delete {
        if self.is_nothing() {
            return self;
        }
        path.iter().rev().fold(self, |inner, segment| {
            Delete::Children(BTreeMap::from([(segment.clone(), inner)]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_delete_replaces_narrower_ones() {
        let mut d = Delete::default();
        d.insert(&["a", "b"]);
        d.insert(&["a", "c"]);
        d.insert(&["a"]);
        assert_eq!(d.paths(), vec![vec!["a".to_string()]]);
    }

    #[test]
    fn narrower_delete_under_a_wider_one_adds_nothing() {
        let mut d = Delete::default();
        d.insert(&["a"]);
        d.insert(&["a", "b"]);
        assert_eq!(d.paths(), vec![vec!["a".to_string()]]);
        assert!(d.covers(&["a", "b", "c"]));
        assert!(!d.covers(&["b"]));
    }

    #[test]
    fn deleting_the_root_deletes_everything() {
        let mut d = Delete::default();
        d.insert(&["x"]);
        d.insert::<&str>(&[]);
        assert_eq!(d, Delete::All);
        assert!(d.covers(&["anything"]));
    }
}
