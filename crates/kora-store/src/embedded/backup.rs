//! Backups of the embedded store: one file holding everything in the data directory at
//! one point in sequence order, taken while commits go on, and restored into a new
//! directory that carries on exactly there.
//!
//! A backup reads one fjall snapshot, so its records, change log, outbox and bookkeeping are
//! those of the same moment: the last commit it includes is its `seq`. It copies the
//! keyspaces' bytes as they are — stamps, tombstones, the change log and the outbox come
//! back exactly — and a restored store continues from `seq` in a new [`History`] forked
//! from the original, so clients that synced with the original past `seq` get a snapshot
//! instead of a replay that would skip what the restore lost.
//!
//! ```text
//! KORA BACKUP 1\n                       magic and this file's format
//! {"store_format":1,"seq":…,…}\n        the header, one JSON line (`Header`)
//! entry*                                keyspace (u8, 1–4: records, log, outbox, meta) · key length (u32) · value
//!                                       length (u32) · key · value, big-endian
//! end                                   0 (u8) · entries (u64) · CRC-32 of every byte
//!                                       before it (u32)
//! ```
//!
//! A backup cut short (a killed `kora backup`, a full disk, a dropped connection) has no
//! end, or an end whose count or checksum does not match, and restore refuses it by name.
//! Restore writes into a staging directory beside the target and renames it into place
//! only once the end checked out, so a failed restore leaves no directory that looks usable.

use std::fs;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fjall::Readable;
use serde::{Deserialize, Serialize};

use super::dir::{self, FORMAT_VERSION};
use super::engine::{Engine, Tuning};
use super::{read, watermark};
use crate::error::StoreError;
use crate::history::History;
use crate::store::{Backup, Seq};

/// The first line of every backup.
pub const MAGIC: &[u8] = b"KORA BACKUP 1\n";

/// The largest header line read: a history with many forks is still a few kilobytes.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// The largest value an entry may claim. A record, a change-log entry or an outbox entry
/// holds at most a request body's worth of JSON (`limits.max_body_bytes`, 16 MiB by
/// default); this is far above any, and keeps a damaged length from asking for gigabytes
/// before the checksum at the end could tell.
pub const MAX_ENTRY_VALUE_BYTES: usize = 1 << 30;

/// The `meta` key holding the store's history, as JSON.
pub const HISTORY: &[u8] = b"history";

const END: u8 = 0;
/// Keyspaces are numbered from 1 in the order `Engine::keyspaces` lists them.
const KEYSPACE_COUNT: usize = 4;
const BUFFER_BYTES: usize = 1 << 20;

/// What a backup says about itself, before its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The data directory format the entries are in (`dir::FORMAT_VERSION`).
    pub store_format: u64,
    /// The last commit included.
    pub seq: Seq,
    /// The first sequence still in the change log.
    pub log_start: Seq,
    /// The history of the store backed up.
    pub history: History,
    /// When the snapshot was taken (ms since the epoch).
    pub taken_at_ms: u64,
}

/// Writes a backup of `engine` (whose history is `history`) to `out`, from one snapshot.
pub fn write(e: &Engine, history: &History, out: impl Write) -> Result<Backup, StoreError> {
    let snapshot = e.db.read_tx();
    let header = Header {
        store_format: FORMAT_VERSION,
        seq: read::last_seq(e, &snapshot)?,
        log_start: read::log_start(e, &snapshot)?,
        history: history.clone(),
        taken_at_ms: kora_core::stamp::wall_millis(),
    };
    let mut out = Checked::new(BufWriter::with_capacity(BUFFER_BYTES, out));
    out.put(MAGIC)?;
    out.put(&header_line(&header)?)?;
    let mut entries = 0u64;
    for (index, keyspace) in e.keyspaces().into_iter().enumerate() {
        for guard in snapshot.iter(keyspace) {
            let (key, value) = guard.into_inner().map_err(|x| e.error(x))?;
            out.entry(index as u8 + 1, &key, &value)?;
            entries += 1;
        }
    }
    out.put(&[END])?;
    out.put(&entries.to_be_bytes())?;
    let crc = out.crc.clone().finalize();
    out.put(&crc.to_be_bytes())?;
    out.inner.flush().map_err(writing)?;
    Ok(Backup {
        seq: header.seq,
        history: header.history,
        entries,
        bytes: out.bytes,
    })
}

fn header_line(header: &Header) -> Result<Vec<u8>, StoreError> {
    let mut line = serde_json::to_vec(header)
        .map_err(|x| StoreError::Internal(format!("writing the backup header: {x}")))?;
    line.push(b'\n');
    Ok(line)
}

fn writing(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("writing the backup: {error}"))
}

/// A writer that counts and checksums what passes through.
struct Checked<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Checked<W> {
    fn new(inner: W) -> Self {
        Checked {
            inner,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes).map_err(writing)
    }

    fn entry(&mut self, keyspace: u8, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let len = |n: usize| {
            u32::try_from(n)
                .map(u32::to_be_bytes)
                .map_err(|_| StoreError::Internal(format!("an entry of {n} bytes")))
        };
        self.put(&[keyspace])?;
        self.put(&len(key.len())?)?;
        self.put(&len(value.len())?)?;
        self.put(key)?;
        self.put(value)
    }
}

/// Restores the backup read from `input` into `target`, which must not exist or be empty.
/// Returns what the backup held; the restored store's history is forked from the backup's.
pub fn restore(input: impl Read, target: &Path) -> Result<Backup, StoreError> {
    check_target(target)?;
    let staging = staging_dir(target);
    if staging.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} exists: an earlier restore was interrupted, or another is running; \
             delete it and try again",
            staging.display()
        )));
    }
    let restored = restore_into(input, &staging);
    if restored.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    let backup = restored?;
    move_into_place(&staging, target)?;
    Ok(backup)
}

fn check_target(target: &Path) -> Result<(), StoreError> {
    match fs::read_dir(target).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::Unavailable(format!(
            "{} is not empty: restore into a new directory",
            target.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "{}: {e}",
            target.display()
        ))),
    }
}

/// `kora-data` → `kora-data.restoring`, beside it.
fn staging_dir(target: &Path) -> PathBuf {
    let mut name = target
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "kora-data".into());
    name.push(".restoring");
    target.with_file_name(name)
}

fn move_into_place(staging: &Path, target: &Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", target.display()));
    if target.exists() {
        fs::remove_dir(target).map_err(io)?;
    }
    fs::rename(staging, target).map_err(io)?;
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

fn restore_into(input: impl Read, staging: &Path) -> Result<Backup, StoreError> {
    let mut input = Verified::new(BufReader::with_capacity(BUFFER_BYTES, input));
    let header = input.header()?;
    if header.store_format != FORMAT_VERSION {
        return Err(StoreError::BadBackup(format!(
            "it holds data directory format {}; this Kora restores format {FORMAT_VERSION}",
            header.store_format
        )));
    }
    let engine_dir = dir::prepare(staging)?;
    let e = Engine::open(staging, &engine_dir, Tuning::default())?;
    let entries = copy_entries(&mut input, &e)?;
    input.end(entries)?;
    let history = header.history.fork(header.seq);
    let mut tx = e.write_tx();
    tx.insert(&e.meta, HISTORY, history_bytes(&history)?);
    tx.commit().map_err(|x| e.error(x))?;
    e.flush()?;
    e.persist()?;
    drop(e);
    watermark::set(staging, header.seq)?;
    Ok(Backup {
        seq: header.seq,
        history,
        entries,
        bytes: input.bytes,
    })
}

/// Copies entries into the engine until the end marker; returns how many. A backup holds
/// each keyspace whole and in key order, so each is bulk-loaded into sorted tables (fjall's
/// ingestion: no journal, no memtables); entries out of that order are a damaged backup.
fn copy_entries(input: &mut Verified<impl Read>, e: &Engine) -> Result<u64, StoreError> {
    let keyspaces = e.keyspaces();
    // The bulk load under way (fjall does not name its type), of keyspace `current`.
    let mut open = None;
    let mut current: Option<usize> = None;
    let mut last_key: Option<Vec<u8>> = None;
    let entries = read_entries(input, |keyspace, key, value| {
        let damaged = |what: &str| StoreError::BadBackup(format!("it is damaged: {what}"));
        if current == Some(keyspace) {
            if last_key.as_ref().is_some_and(|last| key <= *last) {
                return Err(damaged("its entries are out of key order"));
            }
        } else {
            if current.is_some_and(|c| c > keyspace) {
                return Err(damaged("its keyspaces are out of order"));
            }
            let next = keyspaces[keyspace].inner().start_ingestion();
            let next = next.map_err(|x| e.error(x))?;
            if let Some(done) = open.replace(next) {
                done.finish().map_err(|x| e.error(x))?;
            }
            current = Some(keyspace);
        }
        if let Some(ingestion) = open.as_mut() {
            ingestion
                .write(key.clone(), value)
                .map_err(|x| e.error(x))?;
        }
        last_key = Some(key);
        Ok(())
    })?;
    if let Some(done) = open {
        done.finish().map_err(|x| e.error(x))?;
    }
    Ok(entries)
}

/// Reads entries until the end marker, handing each to `put` with its keyspace's index;
/// returns how many.
fn read_entries(
    input: &mut Verified<impl Read>,
    mut put: impl FnMut(usize, Vec<u8>, Vec<u8>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut entries = 0u64;
    loop {
        let keyspace = input.u8(entries)?;
        if keyspace == END {
            return Ok(entries);
        }
        if usize::from(keyspace) > KEYSPACE_COUNT {
            return Err(StoreError::BadBackup(format!(
                "entry {entries} names keyspace {keyspace}, which does not exist"
            )));
        }
        let key_len = input.u32(entries)? as usize;
        let value_len = input.u32(entries)? as usize;
        if key_len > super::engine::MAX_KEY_BYTES || value_len > MAX_ENTRY_VALUE_BYTES {
            return Err(StoreError::BadBackup(format!(
                "it is damaged: entry {entries} claims a {key_len}-byte key and a \
                 {value_len}-byte value (at most {} and {MAX_ENTRY_VALUE_BYTES})",
                super::engine::MAX_KEY_BYTES
            )));
        }
        let key = input.take(key_len, entries)?;
        let value = input.take(value_len, entries)?;
        put(usize::from(keyspace) - 1, key, value)?;
        entries += 1;
    }
}

/// Reads a whole backup and checks it — its header, every entry's framing, its end and
/// checksum — writing nothing. Returns what it holds (its history is the source's).
pub fn verify(input: impl Read) -> Result<Backup, StoreError> {
    let mut input = Verified::new(BufReader::with_capacity(BUFFER_BYTES, input));
    let header = input.header()?;
    let entries = read_entries(&mut input, |_, _, _| Ok(()))?;
    input.end(entries)?;
    Ok(Backup {
        seq: header.seq,
        history: header.history,
        entries,
        bytes: input.bytes,
    })
}

/// The history as the `meta` keyspace holds it.
pub fn history_bytes(history: &History) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(history).map_err(|x| StoreError::Internal(format!("history: {x}")))
}

/// A reader that checksums what it hands out and names what was cut short.
struct Verified<R> {
    inner: R,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<R: Read> Verified<R> {
    fn new(inner: R) -> Self {
        Verified {
            inner,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        }
    }

    fn header(&mut self) -> Result<Header, StoreError> {
        let mut magic = [0; MAGIC.len()];
        if self.exact(&mut magic).is_err() || magic != MAGIC {
            return Err(StoreError::BadBackup(
                "it is not a Kora backup (it does not start with \"KORA BACKUP 1\")".into(),
            ));
        }
        self.crc.update(&magic);
        let mut line = Vec::new();
        loop {
            let byte = self.u8(0)?;
            if byte == b'\n' {
                break;
            }
            if line.len() >= MAX_HEADER_BYTES {
                return Err(StoreError::BadBackup(format!(
                    "its header is longer than {MAX_HEADER_BYTES} bytes"
                )));
            }
            line.push(byte);
        }
        serde_json::from_slice(&line)
            .map_err(|x| StoreError::BadBackup(format!("its header does not read: {x}")))
    }

    /// Checks the end: the entry count and the checksum, then that nothing follows.
    fn end(&mut self, entries: u64) -> Result<(), StoreError> {
        let counted = u64::from_be_bytes(self.array(entries)?);
        let expected = self.crc.clone().finalize();
        let mut crc = [0; 4];
        self.exact(&mut crc).map_err(|_| cut_short(entries))?;
        if counted != entries || u32::from_be_bytes(crc) != expected {
            return Err(StoreError::BadBackup(format!(
                "it is damaged: its end says {counted} entries, {entries} were read, and its \
                 checksum {} match",
                if u32::from_be_bytes(crc) == expected {
                    "does"
                } else {
                    "does not"
                }
            )));
        }
        let mut extra = [0; 1];
        match self.inner.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(StoreError::BadBackup(
                "it has bytes after its end marker".into(),
            )),
            Err(e) => Err(StoreError::Unavailable(format!("reading the backup: {e}"))),
        }
    }

    fn exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn take(&mut self, n: usize, entries: u64) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0; n];
        self.exact(&mut buf).map_err(|_| cut_short(entries))?;
        self.crc.update(&buf);
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, entries: u64) -> Result<[u8; N], StoreError> {
        let mut buf = [0; N];
        self.exact(&mut buf).map_err(|_| cut_short(entries))?;
        self.crc.update(&buf);
        Ok(buf)
    }

    fn u8(&mut self, entries: u64) -> Result<u8, StoreError> {
        Ok(self.array::<1>(entries)?[0])
    }

    fn u32(&mut self, entries: u64) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array(entries)?))
    }
}

fn cut_short(entries: u64) -> StoreError {
    StoreError::BadBackup(format!(
        "it is incomplete: it ends after {entries} entries without its end marker \
         (was `kora backup` interrupted, or the file truncated?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_backup(keys: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
        // A backup written by hand: meta entries in the order given.
        let mut out = Checked::new(Vec::new());
        out.put(MAGIC).unwrap();
        let header = Header {
            store_format: FORMAT_VERSION,
            seq: 0,
            log_start: 1,
            history: History::new(),
            taken_at_ms: 0,
        };
        out.put(&header_line(&header).unwrap()).unwrap();
        let mut entries = 0u64;
        for key in keys {
            out.entry(4, &key, b"v").unwrap();
            entries += 1;
        }
        out.put(&[END]).unwrap();
        out.put(&entries.to_be_bytes()).unwrap();
        let crc = out.crc.clone().finalize();
        out.put(&crc.to_be_bytes()).unwrap();
        out.inner
    }

    /// Restoring bulk-loads each keyspace; every entry arrives, in as many keyspaces as
    /// the backup holds.
    #[test]
    fn restores_every_keyspace() {
        let temp = tempfile::tempdir().unwrap();
        let source = temp.path().join("source");
        let engine_dir = dir::prepare(&source).unwrap();
        let e = Engine::open(&source, &engine_dir, Tuning::default()).unwrap();
        let mut tx = e.write_tx();
        for n in 0u32..100 {
            let key = format!("key{n:03}").into_bytes();
            tx.insert(&e.meta, key.clone(), n.to_be_bytes().to_vec());
            tx.insert(&e.outbox, key, n.to_be_bytes().to_vec());
        }
        tx.commit().unwrap();
        let mut bytes = Vec::new();
        let written = write(&e, &History::new(), &mut bytes).unwrap();
        drop(e);
        let staging = temp.path().join("restored");
        let restored = restore_into(bytes.as_slice(), &staging).unwrap();
        assert_eq!(restored.entries, written.entries);
        let engine_dir = dir::prepare(&staging).unwrap();
        let e = Engine::open(&staging, &engine_dir, Tuning::default()).unwrap();
        let snapshot = e.db.read_tx();
        // 100 keys and the history; the history replaced the source's.
        assert_eq!(snapshot.iter(&e.meta).count(), 101);
        assert_eq!(snapshot.iter(&e.outbox).count(), 100);
    }

    /// Entries out of key order are refused as damage, not loaded (the bulk load would
    /// otherwise panic).
    #[test]
    fn refuses_entries_out_of_order() {
        let temp = tempfile::tempdir().unwrap();
        let unordered = meta_backup([b"b".to_vec(), b"a".to_vec()]);
        let error = restore_into(unordered.as_slice(), &temp.path().join("x")).unwrap_err();
        assert!(error.to_string().contains("out of key order"), "{error}");
        let ordered = meta_backup([b"a".to_vec(), b"b".to_vec()]);
        restore_into(ordered.as_slice(), &temp.path().join("y")).unwrap();
    }

    /// A length no entry can have is refused before anything is allocated for it.
    #[test]
    fn refuses_impossible_lengths() {
        let temp = tempfile::tempdir().unwrap();
        let mut bytes = meta_backup([b"a".to_vec()]);
        // The first entry's value length follows the header line, its keyspace byte and
        // its key length.
        let header_end = bytes
            .iter()
            .skip(MAGIC.len())
            .position(|b| *b == b'\n')
            .unwrap();
        let value_len = MAGIC.len() + header_end + 1 + 1 + 4;
        bytes[value_len..value_len + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let error = restore_into(bytes.as_slice(), &temp.path().join("x")).unwrap_err();
        assert!(error.to_string().contains("claims"), "{error}");
    }
}
