//! Order-preserving encoding of paths as byte keys, for ordered key-value stores.
//!
//! | path            | key                       |
//! |-----------------|---------------------------|
//! | root `[]`       | `` (empty)                |
//! | `a`             | `a 00`                    |
//! | `a/b`           | `a 00 b 00`               |
//! | `ab`            | `a b 00`                  |
//!
//! Each segment's UTF-8 bytes are followed by the terminator `0x00`. No escaping is needed:
//! segments never contain control characters (see `crate::path`), so `0x00` never occurs
//! inside one.
//!
//! Why the byte order of keys is tree order: compare two keys byte by byte. While segments are
//! equal, the keys agree. At the first differing segment pair `s` / `t`, either one is a proper
//! prefix of the other — then the shorter one's terminator `0x00` meets a byte of the longer
//! one, which is greater than `0x00`, so the shorter segment sorts first, as in byte order of
//! segments — or they differ at a byte, which decides both orders the same way. If one path
//! is a prefix of the other, its key is a prefix of the other's key and sorts first: a
//! parent before its children.
//!
//! Why a subtree is one contiguous range: every key under `P` starts with `key(P)`, and the
//! keys starting with a given prefix are contiguous in byte order. The range is
//! `[key(P), subtree_end(P))`, where `subtree_end` replaces the final `0x00` with `0x01`.
//!
//! Deliberately simple rather than compact: keys repeat every ancestor's segments, which
//! ordered stores compress well enough (prefix compression) and which keeps each record
//! self-describing.

use crate::path::{validate_segment, Path, PathError};

/// The byte that ends every segment.
pub const TERMINATOR: u8 = 0x00;

/// A key could not be decoded into a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key does not end with a segment terminator")]
    Unterminated,
    #[error("key segment is not UTF-8")]
    NotUtf8,
    #[error("key holds an invalid segment: {0}")]
    InvalidSegment(#[from] PathError),
}

/// Encodes a path.
pub fn encode(path: &Path) -> Vec<u8> {
    encode_segments(path.segments())
}

/// Encodes segments that are known to be valid.
pub fn encode_segments<S: AsRef<str>>(segments: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.as_ref().len() + 1).sum());
    for segment in segments {
        push_segment(&mut out, segment.as_ref());
    }
    out
}

/// Appends one segment to a key.
pub fn push_segment(key: &mut Vec<u8>, segment: &str) {
    key.extend_from_slice(segment.as_bytes());
    key.push(TERMINATOR);
}

/// Decodes a key back into a path, validating every segment.
pub fn decode(key: &[u8]) -> Result<Path, KeyError> {
    if key.is_empty() {
        return Ok(Path::root());
    }
    let body = key
        .strip_suffix(&[TERMINATOR])
        .ok_or(KeyError::Unterminated)?;
    let mut segments = Vec::new();
    for (index, raw) in body.split(|b| *b == TERMINATOR).enumerate() {
        let segment = std::str::from_utf8(raw).map_err(|_| KeyError::NotUtf8)?;
        validate_segment(segment, index)?;
        segments.push(segment.to_owned());
    }
    Ok(Path::from_segments(segments)?)
}

/// The exclusive end of the subtree that starts at `key`; `None` for the root (no end).
pub fn subtree_end(key: &[u8]) -> Option<Vec<u8>> {
    let (last, init) = key.split_last()?;
    debug_assert_eq!(*last, TERMINATOR, "a path key ends with its terminator");
    let mut end = init.to_vec();
    end.push(TERMINATOR + 1);
    Some(end)
}

/// The keys of `parent`'s children whose names lie in `[min, max]`, and all their subtrees,
/// as a half-open range `[start, end)`; `end` is `None` when unbounded.
pub fn children_range(
    parent: &[u8],
    min: Option<&str>,
    max: Option<&str>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut start = parent.to_vec();
    if let Some(min) = min {
        push_segment(&mut start, min);
    }
    let end = match max {
        Some(max) => {
            let mut end = parent.to_vec();
            end.extend_from_slice(max.as_bytes());
            end.push(TERMINATOR + 1);
            Some(end)
        }
        None => subtree_end(parent),
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Vec<u8> {
        encode(&Path::parse(text).unwrap())
    }

    #[test]
    fn encodes_segments_with_terminators() {
        assert_eq!(key(""), b"");
        assert_eq!(key("a/b"), b"a\0b\0");
    }

    #[test]
    fn decode_inverts_encode() {
        for text in ["", "a", "todos/TOD1/text", "ünï/cødé"] {
            assert_eq!(decode(&key(text)).unwrap().to_string(), text);
        }
    }

    #[test]
    fn decode_refuses_garbage() {
        assert_eq!(decode(b"abc"), Err(KeyError::Unterminated));
        assert_eq!(decode(b"\xff\0"), Err(KeyError::NotUtf8));
        assert!(matches!(decode(b"a\0\0"), Err(KeyError::InvalidSegment(_))));
    }

    #[test]
    fn subtree_range_holds_descendants_and_nothing_else() {
        let start = key("a");
        let end = subtree_end(&start).unwrap();
        for inside in ["a", "a/b", "a/b/c", "a/\u{10ffff}"] {
            let k = key(inside);
            assert!(k >= start && k < end, "{inside}");
        }
        for outside in ["ab", "a0", "b", "A"] {
            let k = key(outside);
            assert!(k < start || k >= end, "{outside}");
        }
    }

    #[test]
    fn children_range_is_inclusive_of_both_bounds_and_their_subtrees() {
        let (start, end) = children_range(&key("l"), Some("b"), Some("c"));
        let end = end.unwrap();
        for inside in ["l/b", "l/b/x", "l/bz", "l/c", "l/c/deep"] {
            let k = key(inside);
            assert!(k >= start && k < end, "{inside}");
        }
        for outside in ["l", "l/a", "l/az/q", "l/ca", "m"] {
            let k = key(outside);
            assert!(k < start || k >= end, "{outside}");
        }
    }
}
