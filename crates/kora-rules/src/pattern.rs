//! Path patterns: which paths a rule is about.
//!
//! The syntax is the engine's (`kora-engine/src/pattern.rs`), so a rules file and Rust
//! interceptors name paths the same way:
//!
//! | segment | matches | captured |
//! |---|---|---|
//! | `todos` | that exact key | — |
//! | `$id` | any one key | as `$id` in expressions |
//! | `*` | any one key | — |
//! | `**` (last only) | any number of keys, none included | — |
//!
//! Rules need one thing the engine does not: when several patterns match a path, the **most
//! specific** decides ([`Pattern::rank`]). Patterns are compared segment by segment: a
//! literal key beats a capture or `*`, which beats a segment covered by `**`; a pattern that
//! ends exactly beats one whose `**` matched nothing. Two patterns of the same shape (`a/$x`
//! and `a/*`) would tie, so a rules file may not hold both.
//!
//! Not here: matching against a mutation (see `crate::rules`) — this module knows paths only.

use std::collections::BTreeMap;
use std::fmt;

use kora_core::path::MAX_PATH_DEPTH;

/// Values captured by `$name` segments, by name (without the `$`).
pub type Captures = BTreeMap<String, String>;

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

/// A pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern {pattern:?}: segment {index} is empty")]
    EmptySegment { pattern: String, index: usize },
    #[error("pattern {pattern:?}: `**` may only be the last segment")]
    RestNotLast { pattern: String },
    #[error("pattern {pattern:?}: capture ${name} appears twice")]
    DuplicateCapture { pattern: String, name: String },
    #[error("pattern {pattern:?}: capture ${name} is not a name (letters, digits, `_`)")]
    BadCaptureName { pattern: String, name: String },
    #[error("pattern {pattern:?} has {depth} segments; paths have at most {MAX_PATH_DEPTH}")]
    TooDeep { pattern: String, depth: usize },
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

/// One segment of a pattern, as [`Pattern::steps_beneath`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// That exact key.
    Key(&'a str),
    /// Any one key (`$name` or `*`).
    Any,
    /// Any number of keys (`**`), none included.
    Rest,
}

/// How specific a pattern is for one path it matches; greater is more specific.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    classes: Vec<u8>,
    exact: bool,
}

const CLASS_REST: u8 = 1;
const CLASS_ANY: u8 = 2;
const CLASS_KEY: u8 = 3;

impl Pattern {
    /// Parses a pattern. Leading and trailing `/` are ignored; `""` is the root.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let trimmed = text.trim_matches('/');
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        if segments.len() > MAX_PATH_DEPTH + 1 {
            return Err(PatternError::TooDeep {
                pattern: text.to_string(),
                depth: segments.len(),
            });
        }
        let mut parts = Vec::new();
        for (index, segment) in segments.iter().enumerate() {
            let last = index + 1 == segments.len();
            parts.push(parse_part(text, segment, index, last, &parts)?);
        }
        Ok(Pattern {
            parts,
            text: trimmed.to_string(),
        })
    }

    /// The captures if the path (given as segments) matches.
    pub fn matches<S: AsRef<str>>(&self, segments: &[S]) -> Option<Captures> {
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

    /// True when the pattern could match some path strictly beneath `prefix`.
    pub fn may_match_beneath<S: AsRef<str>>(&self, prefix: &[S]) -> bool {
        for (i, segment) in prefix.iter().enumerate() {
            match self.parts.get(i) {
                None => return false,
                Some(Part::Rest) => return true,
                Some(Part::Key(key)) if key != segment.as_ref() => return false,
                Some(_) => {}
            }
        }
        self.parts.len() > prefix.len()
    }

    /// When the pattern matches only paths strictly beneath `prefix` ([`Relation::Descendant`]):
    /// the segments it has beneath it. This is how a read of `prefix` finds the paths such a
    /// pattern names inside its answer.
    pub fn steps_beneath<S: AsRef<str>>(&self, prefix: &[S]) -> Option<Vec<Step<'_>>> {
        if self.relation(prefix)? != Relation::Descendant {
            return None;
        }
        let steps = self.parts[prefix.len()..]
            .iter()
            .map(|part| match part {
                Part::Key(key) => Step::Key(key),
                Part::Capture(_) | Part::Any => Step::Any,
                Part::Rest => Step::Rest,
            })
            .collect();
        Some(steps)
    }

    /// How this pattern relates to a path (see [`Relation`]); `None` when it cannot touch it.
    pub fn relation<S: AsRef<str>>(&self, segments: &[S]) -> Option<Relation> {
        if let Some(captures) = self.matches(segments) {
            return Some(Relation::Exact(captures));
        }
        for end in (0..segments.len()).rev() {
            if let Some(captures) = self.matches(&segments[..end]) {
                return Some(Relation::Ancestor(captures));
            }
        }
        self.may_match_beneath(segments)
            .then_some(Relation::Descendant)
    }

    /// Specificity for a path of `depth` segments that this pattern matches.
    pub fn rank(&self, depth: usize) -> Rank {
        let classes = (0..depth)
            .map(|i| match self.parts.get(i) {
                Some(Part::Key(_)) => CLASS_KEY,
                Some(Part::Capture(_)) | Some(Part::Any) => CLASS_ANY,
                Some(Part::Rest) | None => CLASS_REST,
            })
            .collect();
        Rank {
            classes,
            exact: !self.parts.contains(&Part::Rest),
        }
    }

    /// True when both patterns match exactly the same paths (capture names aside).
    pub fn same_shape(&self, other: &Pattern) -> bool {
        fn class(part: &Part) -> Option<&str> {
            match part {
                Part::Key(k) => Some(k.as_str()),
                _ => None,
            }
        }
        self.parts.len() == other.parts.len()
            && self
                .parts
                .iter()
                .zip(&other.parts)
                .all(|(a, b)| class(a) == class(b) && (*a == Part::Rest) == (*b == Part::Rest))
    }

    /// Names of the captures, in order.
    pub fn capture_names(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Capture(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Number of segments (a trailing `**` counts as one).
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

fn parse_part(
    text: &str,
    segment: &str,
    index: usize,
    last: bool,
    earlier: &[Part],
) -> Result<Part, PatternError> {
    let pattern = || text.to_string();
    match segment {
        "" => Err(PatternError::EmptySegment {
            pattern: pattern(),
            index,
        }),
        "*" => Ok(Part::Any),
        "**" if last => Ok(Part::Rest),
        "**" => Err(PatternError::RestNotLast { pattern: pattern() }),
        capture if capture.starts_with('$') && capture.len() > 1 => {
            let name = capture[1..].to_string();
            if !is_name(&name) {
                return Err(PatternError::BadCaptureName {
                    pattern: pattern(),
                    name,
                });
            }
            if earlier.contains(&Part::Capture(name.clone())) {
                return Err(PatternError::DuplicateCapture {
                    pattern: pattern(),
                    name,
                });
            }
            Ok(Part::Capture(name))
        }
        key => {
            kora_core::path::validate_segment(key, index).map_err(|e| {
                PatternError::InvalidKey {
                    pattern: pattern(),
                    index,
                    reason: e.to_string(),
                }
            })?;
            Ok(Part::Key(key.to_string()))
        }
    }
}

/// A capture or identifier name: ASCII letters, digits and `_`, not starting with a digit.
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(text: &str) -> Vec<&str> {
        text.split('/').filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn captures_named_segments() {
        let pattern = Pattern::parse("todos/$uid/$id").unwrap();
        let captures = pattern.matches(&segs("todos/u1/T1")).unwrap();
        assert_eq!(captures["uid"], "u1");
        assert_eq!(captures["id"], "T1");
        assert!(pattern.matches(&segs("todos/u1")).is_none());
        assert!(pattern.matches(&segs("todos/u1/T1/text")).is_none());
        assert_eq!(pattern.capture_names(), ["uid", "id"]);
    }

    #[test]
    fn star_and_rest() {
        let star = Pattern::parse("a/*").unwrap();
        assert!(star.matches(&segs("a/x")).is_some());
        assert!(star.matches(&segs("a")).is_none());
        let rest = Pattern::parse("logs/**").unwrap();
        assert!(rest.matches(&segs("logs")).is_some());
        assert!(rest.matches(&segs("logs/a/b")).is_some());
        assert!(rest.matches(&segs("other")).is_none());
        let root = Pattern::parse("").unwrap();
        assert!(root.matches::<&str>(&[]).is_some());
        assert!(root.is_empty());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["a//b", "**/a", "$x/$x", "a\nb", "$1x", "$a-b"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let deep = vec!["a"; MAX_PATH_DEPTH + 2].join("/");
        assert!(matches!(
            Pattern::parse(&deep),
            Err(PatternError::TooDeep { .. })
        ));
    }

    #[test]
    fn more_specific_patterns_rank_higher() {
        let rank = |p: &str, depth| Pattern::parse(p).unwrap().rank(depth);
        assert!(rank("a/b", 2) > rank("a/$x", 2));
        assert!(rank("a/$x", 2) > rank("a/**", 2));
        assert!(rank("a/b/**", 3) > rank("a/**", 3));
        assert!(rank("a", 1) > rank("a/**", 1));
        assert!(rank("$x/b", 2) < rank("a/$y", 2));
    }

    #[test]
    fn may_match_beneath_a_prefix() {
        let p = Pattern::parse("todos/$uid/$id").unwrap();
        assert!(p.may_match_beneath(&segs("todos")));
        assert!(p.may_match_beneath(&segs("todos/u1")));
        assert!(!p.may_match_beneath(&segs("todos/u1/T1")));
        assert!(!p.may_match_beneath(&segs("users")));
        let rest = Pattern::parse("logs/**").unwrap();
        assert!(rest.may_match_beneath(&segs("logs/a/b")));
        assert!(rest.may_match_beneath::<&str>(&[]));
    }

    #[test]
    fn relation_to_a_query_path() {
        let pattern = Pattern::parse("users/$uid/private").unwrap();
        assert_eq!(pattern.relation(&segs("users")), Some(Relation::Descendant));
        assert!(matches!(
            pattern.relation(&segs("users/u1/private/x")),
            Some(Relation::Ancestor(_))
        ));
        assert!(matches!(
            pattern.relation(&segs("users/u1/private")),
            Some(Relation::Exact(_))
        ));
        assert_eq!(pattern.relation(&segs("todos")), None);
        assert_eq!(pattern.relation(&segs("users/u1/public")), None);
        assert_eq!(pattern.relation(&segs("")), Some(Relation::Descendant));
    }

    #[test]
    fn same_shape_ignores_capture_names() {
        let a = Pattern::parse("a/$x").unwrap();
        assert!(a.same_shape(&Pattern::parse("a/*").unwrap()));
        assert!(!a.same_shape(&Pattern::parse("a/b").unwrap()));
        assert!(!a.same_shape(&Pattern::parse("a/**").unwrap()));
    }

    #[test]
    fn steps_beneath_a_prefix() {
        let pattern = Pattern::parse("users/$uid/stats/*/**").unwrap();
        let steps = pattern.steps_beneath(&segs("users/u1")).unwrap();
        assert_eq!(steps, [Step::Key("stats"), Step::Any, Step::Rest]);
        let steps = pattern.steps_beneath(&segs("")).unwrap();
        assert_eq!(
            steps,
            [
                Step::Key("users"),
                Step::Any,
                Step::Key("stats"),
                Step::Any,
                Step::Rest
            ]
        );
        // At, above or beside the paths it matches: no steps beneath.
        assert!(pattern.steps_beneath(&segs("users/u1/stats/x")).is_none());
        assert!(pattern.steps_beneath(&segs("users/u1/stats/x/y")).is_none());
        assert!(pattern.steps_beneath(&segs("todos")).is_none());
    }
}
