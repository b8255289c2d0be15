//! Paths: where a value lives in the tree.
//!
//! A path is a list of segments; `[]` is the root. The text form joins segments with `/`
//! (`todos/TOD1/text`). A segment is a non-empty UTF-8 string of at most
//! [`MAX_SEGMENT_BYTES`] bytes with no `/` and no control characters, and a path has at most
//! [`Limits::max_depth`] segments. Because segments never contain control characters, the key
//! encoding (`crate::key`) can use the byte `0x00` as a terminator without escaping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Deepest path accepted by default. Firebase allows 32 levels; 64 leaves room for
/// denormalised indexes nested under user data without letting a client build a tree
/// deep enough to make recursive code expensive.
pub const MAX_PATH_DEPTH: usize = 64;

/// Longest segment in bytes. 768 is Firebase's key limit, so every Firebase key fits.
pub const MAX_SEGMENT_BYTES: usize = 768;

/// Limits applied when validating paths and the keys of mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of segments in a path (default [`MAX_PATH_DEPTH`]).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_PATH_DEPTH,
        }
    }
}

/// Why a path or key was refused. `index` counts segments from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("segment {index} is empty")]
    EmptySegment { index: usize },
    #[error("segment {index} contains {found:?}; keys may not contain '/' or control characters")]
    ForbiddenCharacter { index: usize, found: char },
    #[error("segment {index} is {len} bytes long; the limit is {MAX_SEGMENT_BYTES}")]
    SegmentTooLong { index: usize, len: usize },
    #[error("path is {depth} segments deep; the limit is {limit}")]
    TooDeep { depth: usize, limit: usize },
}

/// Checks one segment against the rules of the data model.
pub fn validate_segment(segment: &str, index: usize) -> Result<(), PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment { index });
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::SegmentTooLong {
            index,
            len: segment.len(),
        });
    }
    if let Some(found) = segment.chars().find(|c| *c == '/' || c.is_control()) {
        return Err(PathError::ForbiddenCharacter { index, found });
    }
    Ok(())
}

/// A validated path. Ordering is tree order: segment by segment, each by its bytes, a
/// parent before its children.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Path {
    segments: Vec<String>,
}

impl Path {
    /// The root, `[]`.
    pub fn root() -> Self {
        Path::default()
    }

    /// Parses the text form with the default [`Limits`]. One leading and one trailing `/`
    /// are tolerated (`/todos/` is `todos`); `""` and `"/"` are the root.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        Self::parse_with(text, &Limits::default())
    }

    /// Parses the text form with explicit limits.
    pub fn parse_with(text: &str, limits: &Limits) -> Result<Self, PathError> {
        let text = text.strip_prefix('/').unwrap_or(text);
        let text = text.strip_suffix('/').unwrap_or(text);
        if text.is_empty() {
            return Ok(Path::root());
        }
        Self::from_segments_with(text.split('/'), limits)
    }

    /// Builds a path from segments, validating each.
    pub fn from_segments<I, S>(segments: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::from_segments_with(segments, &Limits::default())
    }

    /// Builds a path from segments with explicit limits.
    pub fn from_segments_with<I, S>(segments: I, limits: &Limits) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Vec::new();
        for (index, segment) in segments.into_iter().enumerate() {
            if index >= limits.max_depth {
                return Err(PathError::TooDeep {
                    depth: index + 1,
                    limit: limits.max_depth,
                });
            }
            let segment = segment.into();
            validate_segment(&segment, index)?;
            out.push(segment);
        }
        Ok(Path { segments: out })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Number of segments (the depth).
    pub fn depth(&self) -> usize {
        self.segments.len()
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The last segment, or `None` for the root.
    pub fn last(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// The parent path, or `None` for the root.
    pub fn parent(&self) -> Option<Path> {
        let (_, init) = self.segments.split_last()?;
        Some(Path {
            segments: init.to_vec(),
        })
    }

    /// This path with one more segment, validated.
    pub fn child(&self, segment: impl Into<String>) -> Result<Path, PathError> {
        let segment = segment.into();
        validate_segment(&segment, self.segments.len())?;
        if self.segments.len() >= MAX_PATH_DEPTH {
            return Err(PathError::TooDeep {
                depth: self.segments.len() + 1,
                limit: MAX_PATH_DEPTH,
            });
        }
        let mut segments = self.segments.clone();
        segments.push(segment);
        Ok(Path { segments })
    }

    /// True when `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// Segments as `&str`, the form the tree walkers take.
    pub fn as_strs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// Joins segments that are already known to be valid (internal fast path).
    pub(crate) fn from_valid(segments: Vec<String>) -> Path {
        Path { segments }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Path::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_form_and_prints_it_back() {
        let path = Path::parse("todos/TOD1/text").unwrap();
        assert_eq!(path.segments(), ["todos", "TOD1", "text"]);
        assert_eq!(path.to_string(), "todos/TOD1/text");
    }

    #[test]
    fn empty_text_and_single_slash_are_the_root() {
        assert!(Path::parse("").unwrap().is_root());
        assert!(Path::parse("/").unwrap().is_root());
        assert_eq!(Path::parse("/a/b/").unwrap().to_string(), "a/b");
    }

    #[test]
    fn empty_segment_is_refused() {
        assert_eq!(
            Path::parse("a//b"),
            Err(PathError::EmptySegment { index: 1 })
        );
    }

    #[test]
    fn control_character_is_refused() {
        assert_eq!(
            Path::parse("a/b\nc"),
            Err(PathError::ForbiddenCharacter {
                index: 1,
                found: '\n'
            })
        );
        assert!(Path::from_segments(["a\u{0}"]).is_err());
        assert!(Path::from_segments(["x\u{85}"]).is_err());
    }

    #[test]
    fn slash_inside_a_segment_is_refused() {
        assert_eq!(
            Path::from_segments(["a/b"]),
            Err(PathError::ForbiddenCharacter {
                index: 0,
                found: '/'
            })
        );
    }

    #[test]
    fn segment_over_768_bytes_is_refused() {
        let long = "é".repeat(385); // 770 bytes
        assert_eq!(
            Path::from_segments([long]),
            Err(PathError::SegmentTooLong { index: 0, len: 770 })
        );
        assert!(Path::from_segments(["x".repeat(768)]).is_ok());
    }

    #[test]
    fn path_deeper_than_the_limit_is_refused() {
        let deep = vec!["a"; MAX_PATH_DEPTH + 1].join("/");
        assert_eq!(
            Path::parse(&deep),
            Err(PathError::TooDeep {
                depth: 65,
                limit: 64
            })
        );
        let ok = vec!["a"; MAX_PATH_DEPTH].join("/");
        assert!(Path::parse(&ok).is_ok());
        let tight = Limits { max_depth: 2 };
        assert!(Path::parse_with("a/b/c", &tight).is_err());
    }

    #[test]
    fn tree_order_puts_parent_before_children_and_children_by_bytes() {
        let mut paths: Vec<Path> = ["ab", "a/b", "a", "B", "a/a/z"]
            .iter()
            .map(|p| Path::parse(p).unwrap())
            .collect();
        paths.sort();
        let text: Vec<String> = paths.iter().map(Path::to_string).collect();
        assert_eq!(text, ["B", "a", "a/a/z", "a/b", "ab"]);
    }
}
