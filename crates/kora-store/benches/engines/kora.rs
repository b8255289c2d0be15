//! Kora's storage layout and commit path, written once against `dyn Store`.
//!
//! * `nodes`: key = encoded path (each segment's UTF-8 bytes + 0x00),
//!   value = leaf record: flags(1) | leaf stamp(16) | [tombstone stamp(16)] | JSON
//! * `log`:   key = seq u64 BE, value = stamp(16) | mutation JSON
//! * `meta`:  `format` (the last sequence number is the log's last key)
//!
//! `Committer` is the group-commit wrapper: writers hand mutations to ONE
//! committer thread, which drains everything waiting (up to `cap`) into one
//! durable transaction and then acknowledges each writer with its sequence
//! number.

use crate::store::{Ks, Store, WriteTxn};
use anyhow::{anyhow, bail, Context, Result};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- encoding

/// `["todos","T1","text"]` -> `b"todos\0T1\0text\0"`
pub fn encode_path<S: AsRef<str>>(segments: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.as_ref().len() + 1).sum());
    for s in segments {
        debug_assert!(!s.as_ref().as_bytes().contains(&0));
        out.extend_from_slice(s.as_ref().as_bytes());
        out.push(0);
    }
    out
}

/// Exclusive upper bound of everything beneath (and including) `prefix`,
/// which must end with the 0x00 separator: `a\0b\0` -> `a\0b\x01`.
pub fn subtree_end(prefix: &[u8]) -> Vec<u8> {
    debug_assert_eq!(prefix.last(), Some(&0));
    let mut end = prefix.to_vec();
    *end.last_mut().unwrap() = 1;
    end
}

/// 16-byte stamp in Kora's binary form: (48-bit ms << 16 | 16-bit counter) BE,
/// then the 64-bit origin BE. A process-wide HLC: `next = max(now << 16, last + 1)`.
pub type Stamp = [u8; 16];

pub fn new_stamp(origin: u64) -> Stamp {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
        << 16;
    LAST.fetch_max(now, Ordering::Relaxed);
    // unique and increasing: LAST only grows, and each fetch_add returns a distinct value
    let hlc = LAST.fetch_add(1, Ordering::Relaxed) + 1;
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&hlc.to_be_bytes());
    s[8..].copy_from_slice(&origin.to_be_bytes());
    s
}

const HAS_TOMBSTONE: u8 = 1;

pub struct LeafRecord<'a> {
    pub stamp: Stamp,
    pub tombstone: Option<Stamp>,
    pub json: &'a [u8],
}

impl<'a> LeafRecord<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + 32 + self.json.len());
        v.push(if self.tombstone.is_some() {
            HAS_TOMBSTONE
        } else {
            0
        });
        v.extend_from_slice(&self.stamp);
        if let Some(t) = &self.tombstone {
            v.extend_from_slice(t);
        }
        v.extend_from_slice(self.json);
        v
    }

    pub fn decode(b: &'a [u8]) -> Result<Self> {
        if b.len() < 17 {
            bail!("short leaf record");
        }
        let stamp: Stamp = b[1..17].try_into().unwrap();
        let (tombstone, json) = if b[0] & HAS_TOMBSTONE != 0 {
            (Some(b[17..33].try_into()?), &b[33..])
        } else {
            (None, &b[17..])
        };
        Ok(LeafRecord {
            stamp,
            tombstone,
            json,
        })
    }
}

// ---------------------------------------------------------------- mutations

pub struct Leaf {
    /// encoded path, e.g. `todos\0<id>\0text\0`
    pub key: Vec<u8>,
    /// JSON bytes of the leaf value
    pub json: Vec<u8>,
}

pub struct Mutation {
    pub stamp: Stamp,
    pub leaves: Vec<Leaf>,
    /// the mutation as the client sent it: {"merge":{...},"delete":{}}
    pub json: Vec<u8>,
}

/// Small deterministic PRNG (xorshift64*), so runs are reproducible without deps.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// ULID-looking id ("01J" + 23 Crockford base32 chars) for an integer, hashed so
/// consecutive integers land at random places in key order.
pub fn ulid_for(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut h = Rng::new(n ^ 0xA5A5_5A5A_DEAD_BEEF);
    let (a, b) = (h.next_u64(), h.next_u64());
    let mut s = String::from("01J");
    for i in 0..23 {
        let bits = if i < 12 {
            a >> (i * 5)
        } else {
            b >> ((i - 12) * 5)
        };
        s.push(ALPHABET[(bits & 31) as usize] as char);
    }
    s
}

const WORDS: &[&str] = &[
    "buy", "milk", "call", "mom", "fix", "bike", "write", "report", "book", "flight", "water",
    "plants", "review", "PR", "pay", "rent", "walk", "dog",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 3 + rng.below(4);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s
}

/// A mutation setting `leaves` fields of one todo: `todos/<id>/<field>`.
/// 1 leaf  -> `text`; 10 leaves -> text, done, and 8 more fields.
pub fn todo_mutation(id: &str, leaves: usize, rng: &mut Rng, origin: u64) -> Mutation {
    const FIELDS: [&str; 10] = [
        "text", "done", "priority", "owner", "due", "tag", "notes", "created", "order", "color",
    ];
    let mut out = Vec::with_capacity(leaves);
    let mut body = String::new();
    for (i, field) in FIELDS.iter().cycle().take(leaves).enumerate() {
        let field = if i < FIELDS.len() {
            field.to_string()
        } else {
            format!("{field}{i}")
        };
        let json = match i % 3 {
            0 => format!("\"{}\"", sentence(rng)),
            1 => (if rng.below(2) == 0 { "false" } else { "true" }).to_string(),
            _ => rng.below(1_000_000).to_string(),
        };
        if !body.is_empty() {
            body.push(',');
        }
        body.push_str(&format!("\"{field}\":{json}"));
        out.push(Leaf {
            key: encode_path(&["todos", id, &field]),
            json: json.into_bytes(),
        });
    }
    let json = format!("{{\"merge\":{{\"todos\":{{\"{id}\":{{{body}}}}}}},\"delete\":{{}}}}");
    Mutation {
        stamp: new_stamp(origin),
        leaves: out,
        json: json.into_bytes(),
    }
}

/// Applies one mutation inside an open transaction, exactly as Kora's commit
/// path does, and appends it to the change log under `seq`.
/// Returns the logical bytes written (keys + values).
pub fn apply_mutation(txn: &mut dyn WriteTxn, m: &Mutation, seq: u64) -> Result<u64> {
    let mut written = 0u64;
    for leaf in &m.leaves {
        let key = &leaf.key[..];
        // 1. point-read every ancestor's record (an ancestor may hold a
        //    tombstone or a scalar that this write must supersede)
        for (i, _) in key
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == 0 && *i + 1 < key.len())
        {
            if let Some(rec) = txn.get(Ks::Nodes, &key[..=i])? {
                LeafRecord::decode(&rec)?;
            }
        }
        // 2. range seek for anything beneath the leaf (usually empty; Kora
        //    would tombstone such a subtree when a scalar replaces an object)
        let mut below = key.to_vec();
        below.push(0);
        let _child = txn.first_key_in(Ks::Nodes, &below, &subtree_end(key))?;
        // 3. read the leaf's own record: last-writer-wins on the stamp, and
        //    carry over a tombstone stamp if there is one
        let mut tombstone = None;
        if let Some(old) = txn.get(Ks::Nodes, key)? {
            let old = LeafRecord::decode(&old)?;
            if old.stamp >= m.stamp {
                continue; // older write loses
            }
            tombstone = old.tombstone;
        }
        // 4. write the leaf's record
        let rec = LeafRecord {
            stamp: m.stamp,
            tombstone,
            json: &leaf.json,
        }
        .encode();
        txn.put(Ks::Nodes, key, &rec)?;
        written += (key.len() + rec.len()) as u64;
    }
    // 5. one change-log entry
    let mut entry = Vec::with_capacity(16 + m.json.len());
    entry.extend_from_slice(&m.stamp);
    entry.extend_from_slice(&m.json);
    txn.put(Ks::Log, &seq.to_be_bytes(), &entry)?;
    Ok(written + 8 + entry.len() as u64)
}

/// Highest sequence number in the log (0 if empty).
pub fn last_seq(store: &dyn Store) -> Result<u64> {
    Ok(match store.last_key(Ks::Log)? {
        Some(k) => u64::from_be_bytes(k.as_slice().try_into().context("bad log key")?),
        None => 0,
    })
}

/// Counts entries under a path prefix (e.g. `todos\0`).
pub fn count_subtree(store: &dyn Store, prefix: &[u8]) -> Result<u64> {
    let end = subtree_end(prefix);
    store.scan(
        Ks::Nodes,
        Bound::Included(prefix),
        Bound::Excluded(&end),
        &mut |_, _| true,
    )
}

// ---------------------------------------------------------------- group commit

struct Request {
    mutation: Mutation,
    ack: SyncSender<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    pub batches: u64,
    pub mutations: u64,
    pub logical_bytes: u64,
    pub max_batch: u64,
}

/// Group-commit wrapper, identical for every engine.
pub struct Committer {
    tx: Option<Sender<Request>>,
    thread: Option<JoinHandle<Result<CommitStats>>>,
}

impl Committer {
    pub fn start(store: Arc<dyn Store>, cap: usize) -> Result<Self> {
        let mut next_seq = last_seq(&*store)? + 1;
        let (tx, rx): (Sender<Request>, Receiver<Request>) = channel();
        let thread = std::thread::Builder::new()
            .name("kora-committer".into())
            .spawn(move || -> Result<CommitStats> {
                let mut stats = CommitStats::default();
                let mut batch: Vec<Request> = Vec::with_capacity(cap);
                // Blocks for the first request, then takes whatever else is already waiting.
                while let Ok(first) = rx.recv() {
                    batch.push(first);
                    while batch.len() < cap {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    let mut bytes = 0;
                    store.write_durable(&mut |txn| {
                        bytes = 0;
                        for (i, r) in batch.iter().enumerate() {
                            bytes += apply_mutation(txn, &r.mutation, next_seq + i as u64)?;
                        }
                        // No per-batch `meta` write: the next sequence number is
                        // recovered from the log's last key on open (a rarely
                        // written fjall keyspace would pin old journals).
                        Ok(())
                    })?;
                    // Durable: acknowledge everyone in the batch.
                    stats.batches += 1;
                    stats.mutations += batch.len() as u64;
                    stats.max_batch = stats.max_batch.max(batch.len() as u64);
                    stats.logical_bytes += bytes;
                    for r in batch.drain(..) {
                        let _ = r.ack.send(next_seq);
                        next_seq += 1;
                    }
                }
                Ok(stats)
            })?;
        Ok(Committer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Blocks until the mutation is durably committed; returns its sequence number.
    pub fn submit(&self, mutation: Mutation) -> Result<u64> {
        let (ack, done) = sync_channel(1);
        self.tx
            .as_ref()
            .unwrap()
            .send(Request { mutation, ack })
            .map_err(|_| anyhow!("committer is gone"))?;
        done.recv()
            .map_err(|_| anyhow!("commit failed (committer dropped the request)"))
    }

    pub fn shutdown(mut self) -> Result<CommitStats> {
        drop(self.tx.take());
        self.thread
            .take()
            .unwrap()
            .join()
            .map_err(|_| anyhow!("committer panicked"))?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes the `meta` format key; called once per fresh store.
pub fn init_meta(store: &dyn Store) -> Result<()> {
    store.write_durable(&mut |txn| {
        if txn.get(Ks::Meta, b"format")?.is_none() {
            txn.put(Ks::Meta, b"format", b"kora-1")?;
        }
        Ok(())
    })
}
