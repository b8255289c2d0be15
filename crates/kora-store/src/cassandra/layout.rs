//! Where a record lives: its encoded path (`kora_core::key`) split into the partition (the
//! top-level segment) and the clustering key (the rest), and the write timestamps Kora
//! gives Cassandra.
//!
//! Cassandra rejects an empty partition key, so the root's own record lives in a partition
//! of its own, [`ROOT_PART`]; the byte `0xFF` never occurs in an encoded path (UTF-8 never
//! contains it), so no top-level key can collide with it.

use crate::store::Seq;

/// The partition of the root's own record.
pub const ROOT_PART: &[u8] = &[0xFF];

/// A clustering value above every `rest`, for an unbounded slice end (see [`ROOT_PART`]
/// for why `0xFF` is above every encoded path).
pub const REST_CEILING: &[u8] = &[0xFF];

/// The partition and clustering key of a record key.
pub fn split(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match top_len(key) {
        Some(len) => (key[..len].to_vec(), key[len..].to_vec()),
        None => (ROOT_PART.to_vec(), Vec::new()),
    }
}

/// The record key of a partition and clustering key.
pub fn join(part: &[u8], rest: &[u8]) -> Vec<u8> {
    if part == ROOT_PART {
        return rest.to_vec();
    }
    let mut key = Vec::with_capacity(part.len() + rest.len());
    key.extend_from_slice(part);
    key.extend_from_slice(rest);
    key
}

/// The length of a key's first segment with its terminator; `None` for the root's key (or
/// a bound that is not a whole segment).
pub fn top_len(key: &[u8]) -> Option<usize> {
    let end = key.iter().position(|b| *b == kora_core::key::TERMINATOR)?;
    (end > 0).then_some(end + 1)
}

/// The smallest key of a partition, and the exclusive end of its keys.
pub fn part_range(part: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if part == ROOT_PART {
        return (Vec::new(), vec![kora_core::key::TERMINATOR]);
    }
    let end = kora_core::key::subtree_end(part).unwrap_or_else(|| REST_CEILING.to_vec());
    (part.to_vec(), end)
}

/// The write timestamp of the records and outbox rows of the commit batch ending at `seq`.
/// Cassandra keeps the cell with the larger timestamp, so a batch re-applied late (by a node
/// finishing another's commit) can never overwrite what a later batch wrote.
pub fn commit_timestamp(seq: Seq) -> i64 {
    (seq as i64) << 1
}

/// The write timestamp of a compaction that read records committed up to `seq`: above that
/// batch's, below every later commit's.
pub fn compaction_timestamp(seq: Seq) -> i64 {
    commit_timestamp(seq) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_joins_keys() {
        for path in ["", "a", "a/b", "ab/c/d"] {
            let key = kora_core::key::encode(&kora_core::Path::parse(path).unwrap());
            let (part, rest) = split(&key);
            assert_eq!(join(&part, &rest), key, "{path}");
        }
        assert_eq!(split(b"a\0b\0"), (b"a\0".to_vec(), b"b\0".to_vec()));
        assert_eq!(split(b""), (ROOT_PART.to_vec(), vec![]));
        assert_eq!(part_range(b"a\0"), (b"a\0".to_vec(), b"a\x01".to_vec()));
        assert!(compaction_timestamp(4) < commit_timestamp(5));
    }
}
