//! Path patterns: how interceptors, handlers and rules say which paths they care about.
//!
//! | segment | matches | captured |
//! |---|---|---|
//! | `todos` | that exact key | — |
//! | `$id` | any one key | as `id` |
//! | `*` | any one key | — |
//! | `**` (last only) | any number of keys, none included | — |
//!
//! `todos/$id` matches `todos/TOD1` with `id = "TOD1"`; `user:info/$uid/*` matches every
//! field of every user; `logs/**` matches `logs` and everything beneath it.

use std::collections::BTreeMap;
use std::fmt;

use kora_core::Path;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Key(String),
    Capture(String),
    Any,
    Rest,
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<Part>,
    text: String,
}

/// Values captured by `$name` segments.
pub type Captures = BTreeMap<String, String>;

/// A pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern {pattern:?}: segment {index} is empty")]
    EmptySegment { pattern: String, index: usize },
    #[error("pattern {pattern:?}: `**` may only be the last segment")]
    RestNotLast { pattern: String },
    #[error("pattern {pattern:?}: capture ${name} appears twice")]
    DuplicateCapture { pattern: String, name: String },
    #[error("pattern {pattern:?}: segment {index}: {reason}")]
    InvalidKey {
        pattern: String,
        index: usize,
        reason: String,
    },
}

/// How a pattern relates to a path, for reads: a query at a path returns the subtree there,
/// which holds what a pattern on a descendant guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// The pattern matches the path itself.
    Exact(Captures),
    /// The pattern matches an ancestor of the path (it guards a subtree holding the path).
    Ancestor(Captures),
    /// The pattern could match a path beneath this one.
    Descendant,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let trimmed = text.trim_matches('/');
        let mut parts = Vec::new();
        let mut names = Vec::new();
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        for (index, segment) in segments.iter().enumerate() {
            let part = match *segment {
                "" => {
                    return Err(PatternError::EmptySegment {
                        pattern: text.into(),
                        index,
                    })
                }
                "*" => Part::Any,
                "**" if index + 1 == segments.len() => Part::Rest,
                "**" => {
                    return Err(PatternError::RestNotLast {
                        pattern: text.into(),
                    })
                }
                capture if capture.starts_with('$') && capture.len() > 1 => {
                    let name = capture[1..].to_string();
                    if names.contains(&name) {
                        return Err(PatternError::DuplicateCapture {
                            pattern: text.into(),
                            name,
                        });
                    }
                    names.push(name.clone());
                    Part::Capture(name)
                }
                key => {
                    kora_core::path::validate_segment(key, index).map_err(|e| {
                        PatternError::InvalidKey {
                            pattern: text.into(),
                            index,
                            reason: e.to_string(),
                        }
                    })?;
                    Part::Key(key.to_string())
                }
            };
            parts.push(part);
        }
        Ok(Pattern {
            parts,
            text: trimmed.to_string(),
        })
    }

    /// The captures if `path` matches.
    pub fn matches(&self, path: &Path) -> Option<Captures> {
        self.match_segments(path.segments())
    }

    /// Like [`Pattern::matches`] over segments.
    pub fn match_segments<S: AsRef<str>>(&self, segments: &[S]) -> Option<Captures> {
        let mut captures = Captures::new();
        for (i, part) in self.parts.iter().enumerate() {
            if *part == Part::Rest {
                return Some(captures);
            }
            let segment = segments.get(i)?.as_ref();
            match part {
                Part::Key(key) if key != segment => return None,
                Part::Capture(name) => {
                    captures.insert(name.clone(), segment.to_string());
                }
                _ => {}
            }
        }
        (segments.len() == self.parts.len()).then_some(captures)
    }

    /// How this pattern relates to `path` (see [`Relation`]); `None` when it cannot touch it.
    pub fn relation(&self, path: &Path) -> Option<Relation> {
        let segments = path.segments();
        if let Some(captures) = self.matches(path) {
            return Some(Relation::Exact(captures));
        }
        for end in (0..segments.len()).rev() {
            if let Some(captures) = self.match_segments(&segments[..end]) {
                return Some(Relation::Ancestor(captures));
            }
        }
        let compatible = self
            .parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| !matches!(part, Part::Key(k) if k != segment));
        let longer = self.parts.len() > segments.len();
        (compatible && longer).then_some(Relation::Descendant)
    }

    /// Number of segments (a trailing `**` counts as one).
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn captures_named_segments() {
        let pattern = Pattern::parse("todos/$id").unwrap();
        let captures = pattern.matches(&path("todos/TOD1")).unwrap();
        assert_eq!(captures.get("id").map(String::as_str), Some("TOD1"));
        assert_eq!(pattern.matches(&path("todos")), None);
        assert_eq!(pattern.matches(&path("todos/TOD1/text")), None);
        assert_eq!(pattern.matches(&path("users/u1")), None);
    }

    #[test]
    fn star_matches_one_key_and_double_star_the_rest() {
        let star = Pattern::parse("user:info/$uid/*").unwrap();
        assert!(star.matches(&path("user:info/u1/company")).is_some());
        assert!(star.matches(&path("user:info/u1")).is_none());
        let rest = Pattern::parse("logs/**").unwrap();
        assert!(rest.matches(&path("logs")).is_some());
        assert!(rest.matches(&path("logs/a/b/c")).is_some());
        assert!(rest.matches(&path("other")).is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Pattern::parse("a//b").is_err());
        assert!(Pattern::parse("**/a").is_err());
        assert!(Pattern::parse("$x/$x").is_err());
        assert!(Pattern::parse("a\nb").is_err());
    }

    #[test]
    fn relation_to_a_query_path() {
        let pattern = Pattern::parse("users/$uid/private").unwrap();
        assert_eq!(pattern.relation(&path("users")), Some(Relation::Descendant));
        assert!(matches!(
            pattern.relation(&path("users/u1/private/x")),
            Some(Relation::Ancestor(_))
        ));
        assert!(matches!(
            pattern.relation(&path("users/u1/private")),
            Some(Relation::Exact(_))
        ));
        assert_eq!(pattern.relation(&path("todos")), None);
        assert_eq!(pattern.relation(&path("users/u1/public")), None);
    }
}
