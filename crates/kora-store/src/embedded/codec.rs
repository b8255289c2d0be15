//! The embedded store's byte formats: keys and values of its four keyspaces.
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `records` | `kora_core::key` encoding of the path | flags, then the stamps present, then the leaf's JSON |
//! | `log` | sequence, u64 big-endian | stamp (16) · committed ms (u64 BE) · the effect mutation as JSON |
//! | `outbox` | effect id, u64 big-endian | seq · attempts · next_at · lease_until · state · kind · last_error · payload JSON |
//! | `meta` | a name (`log_start`) | u64 big-endian |
//!
//! Record flags: bit 0 a leaf, bit 1 a tombstone, bit 2 a branch stamp; the stamps follow in
//! the order tombstone, branch, leaf, 16 bytes each (`Stamp::to_bytes`), then the leaf value
//! as JSON to the end. Unknown flag bits are refused rather than ignored, so that a later
//! format can use them. Big-endian integer keys make key order numeric order.
//!
//! What this is not: a general serialisation layer. Decoding errors say what was wrong;
//! the caller adds where (the data directory and the key).

use kora_core::records::Record;
use kora_core::{Mutation, Stamp, Value};

use crate::outbox::Entry;
use crate::store::{Change, Effect, EffectState, Seq};

const LEAF: u8 = 1;
const TOMBSTONE: u8 = 2;
const BRANCH: u8 = 4;
const KNOWN_FLAGS: u8 = LEAF | TOMBSTONE | BRANCH;

const PENDING: u8 = 0;
const DEAD: u8 = 1;

const STAMP_BYTES: usize = 16;

/// Bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

fn fail<T>(what: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(what.into()))
}

/// Reads fixed-size fields off the front of a value.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return fail(format!("{what}: needs {n} bytes, {} left", self.rest.len()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, CodecError> {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_be_bytes(bytes))
    }

    fn u64(&mut self, what: &str) -> Result<u64, CodecError> {
        decode_u64(self.take(8, what)?)
    }

    fn stamp(&mut self, what: &str) -> Result<Stamp, CodecError> {
        let mut bytes = [0; STAMP_BYTES];
        bytes.copy_from_slice(self.take(STAMP_BYTES, what)?);
        Ok(Stamp::from_bytes(bytes))
    }

    fn text(&mut self, what: &str) -> Result<String, CodecError> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).or_else(|_| fail(format!("{what}: not UTF-8")))
    }
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).or_else(|e| fail(format!("{what}: {e}")))
}

/// A u64 key or meta value.
pub fn encode_u64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub fn decode_u64(bytes: &[u8]) -> Result<u64, CodecError> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(fixed) => Ok(u64::from_be_bytes(fixed)),
        Err(_) => fail(format!("expected 8 bytes, found {}", bytes.len())),
    }
}

/// A record's value.
pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut flags = 0;
    let mut out = vec![0];
    if let Some(stamp) = record.tombstone {
        flags |= TOMBSTONE;
        out.extend_from_slice(&stamp.to_bytes());
    }
    if let Some(stamp) = record.branch {
        flags |= BRANCH;
        out.extend_from_slice(&stamp.to_bytes());
    }
    if let Some((stamp, value)) = &record.leaf {
        flags |= LEAF;
        out.extend_from_slice(&stamp.to_bytes());
        // Writing a `Value` to a Vec cannot fail: its map keys are strings.
        let _ = serde_json::to_writer(&mut out, value);
    }
    out[0] = flags;
    out
}

pub fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut r = Reader { rest: bytes };
    let flags = r.u8("record flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return fail(format!("unknown record flags {flags:#04x}"));
    }
    let tombstone = (flags & TOMBSTONE != 0)
        .then(|| r.stamp("tombstone"))
        .transpose()?;
    let branch = (flags & BRANCH != 0)
        .then(|| r.stamp("branch stamp"))
        .transpose()?;
    let leaf = if flags & LEAF != 0 {
        let stamp = r.stamp("leaf stamp")?;
        Some((stamp, json::<Value>(r.rest, "leaf value")?))
    } else if !r.rest.is_empty() {
        return fail(format!("{} bytes after a record", r.rest.len()));
    } else {
        None
    };
    Ok(Record {
        leaf,
        tombstone,
        branch,
    })
}

/// A change-log entry's value; `mutation` is the effect as JSON.
pub fn encode_log(stamp: Stamp, committed_ms: u64, mutation: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(STAMP_BYTES + 8 + mutation.len());
    out.extend_from_slice(&stamp.to_bytes());
    out.extend_from_slice(&committed_ms.to_be_bytes());
    out.extend_from_slice(mutation.as_bytes());
    out
}

/// When a change-log entry was committed (ms), without decoding its mutation.
pub fn log_committed_ms(bytes: &[u8]) -> Result<u64, CodecError> {
    let mut r = Reader { rest: bytes };
    r.take(STAMP_BYTES, "log stamp")?;
    r.u64("log commit time")
}

pub fn decode_log(seq: Seq, bytes: &[u8]) -> Result<Change, CodecError> {
    let mut r = Reader { rest: bytes };
    let stamp = r.stamp("log stamp")?;
    r.u64("log commit time")?;
    let value: Value = json(r.rest, "logged mutation")?;
    let mutation =
        Mutation::from_json(&value).or_else(|e| fail(format!("logged mutation: {e}")))?;
    Ok(Change {
        seq,
        stamp,
        mutation,
    })
}

/// A mutation as logged (JSON text).
pub fn decode_mutation(text: &str) -> Result<Mutation, CodecError> {
    let value: Value = json(text.as_bytes(), "logged mutation")?;
    Mutation::from_json(&value).or_else(|e| fail(format!("logged mutation: {e}")))
}

/// An outbox entry's value (its id is the key).
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let effect = &entry.effect;
    let mut out = Vec::with_capacity(64 + effect.kind.len());
    out.extend_from_slice(&effect.seq.to_be_bytes());
    out.extend_from_slice(&effect.attempts.to_be_bytes());
    out.extend_from_slice(&effect.next_at_ms.to_be_bytes());
    out.extend_from_slice(&entry.lease_until_ms.to_be_bytes());
    out.push(match effect.state {
        EffectState::Pending => PENDING,
        EffectState::Dead => DEAD,
    });
    push_text(&mut out, &effect.kind);
    match &effect.last_error {
        Some(error) => {
            out.push(1);
            push_text(&mut out, error);
        }
        None => out.push(0),
    }
    let _ = serde_json::to_writer(&mut out, &effect.payload);
    out
}

pub fn decode_entry(id: u64, bytes: &[u8]) -> Result<Entry, CodecError> {
    let mut r = Reader { rest: bytes };
    let seq = r.u64("effect seq")?;
    let attempts = r.u32("effect attempts")?;
    let next_at_ms = r.u64("effect due time")?;
    let lease_until_ms = r.u64("effect lease")?;
    let state = match r.u8("effect state")? {
        PENDING => EffectState::Pending,
        DEAD => EffectState::Dead,
        other => return fail(format!("unknown effect state {other}")),
    };
    let kind = r.text("effect kind")?;
    let last_error = match r.u8("effect error flag")? {
        0 => None,
        1 => Some(r.text("effect error")?),
        other => return fail(format!("bad effect error flag {other}")),
    };
    let payload = json(r.rest, "effect payload")?;
    let effect = Effect {
        id,
        seq,
        kind,
        payload,
        attempts,
        next_at_ms,
        last_error,
        state,
    };
    Ok(Entry {
        effect,
        lease_until_ms,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stamp(n: u64) -> Stamp {
        Stamp::new(n, 3, 9)
    }

    #[test]
    fn records_round_trip() {
        let records = [
            Record::default(),
            Record {
                leaf: Some((stamp(1), json!({"not": "a branch", "n": [1, 2.5]}))),
                tombstone: Some(stamp(2)),
                branch: Some(stamp(3)),
            },
            Record {
                leaf: None,
                tombstone: None,
                branch: Some(stamp(3)),
            },
            Record {
                leaf: Some((stamp(1), json!("text"))),
                ..Record::default()
            },
        ];
        for record in records {
            assert_eq!(decode_record(&encode_record(&record)), Ok(record));
        }
    }

    #[test]
    fn bad_records_are_refused() {
        assert!(decode_record(b"").is_err());
        assert!(decode_record(&[0x08]).is_err(), "unknown flag");
        assert!(decode_record(&[TOMBSTONE, 1, 2]).is_err(), "short stamp");
        let mut leaf = encode_record(&Record {
            leaf: Some((stamp(1), json!(1))),
            ..Record::default()
        });
        leaf.push(b'}');
        assert!(decode_record(&leaf).is_err(), "bad JSON");
        assert!(decode_record(&[0, 1]).is_err(), "trailing bytes");
    }

    #[test]
    fn log_entries_round_trip() {
        let mutation = Mutation::from_json(&json!({"merge": {"a": 1}})).unwrap();
        let text = serde_json::to_string(&mutation).unwrap();
        let bytes = encode_log(stamp(5), 1_234, &text);
        assert_eq!(log_committed_ms(&bytes), Ok(1_234));
        let change = decode_log(7, &bytes).unwrap();
        assert_eq!((change.seq, change.stamp), (7, stamp(5)));
        assert_eq!(change.mutation, mutation);
        assert!(decode_log(7, &bytes[..20]).is_err());
    }

    #[test]
    fn outbox_entries_round_trip() {
        let mut entry = Entry::new(
            4,
            9,
            crate::store::NewEffect {
                kind: "webhook".into(),
                payload: json!({"url": "http://x"}),
            },
            77,
        );
        assert_eq!(decode_entry(4, &encode_entry(&entry)), Ok(entry.clone()));
        entry.lease(crate::store::Claim {
            now_ms: 100,
            lease_ms: 5,
            limit: 1,
        });
        entry.bury("gave up: ünïcode");
        let bytes = encode_entry(&entry);
        assert_eq!(decode_entry(4, &bytes), Ok(entry));
        assert!(decode_entry(4, &bytes[..10]).is_err());
    }

    #[test]
    fn u64_keys_sort_numerically() {
        assert!(encode_u64(255) < encode_u64(256));
        assert_eq!(decode_u64(&encode_u64(42)), Ok(42));
        assert!(decode_u64(b"short").is_err());
    }
}
