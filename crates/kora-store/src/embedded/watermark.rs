//! The acknowledged-sequence watermark: a 16-byte file, `KORA_WATERMARK`, holding the
//! highest sequence the store has reported as committed.
//!
//! Why: fjall's journal recovery cuts a journal at its first unreadable entry and carries
//! on — right for a torn last write, but damage earlier in a journal (a zeroed page, a bad
//! sector, a truncated copy) then drops every later batch without an error. Kora would open
//! a store that silently lost acknowledged commits. Comparing the recovered change log with
//! this watermark turns that into a `Corrupted` error.
//!
//! How: after each durable batch the committer overwrites the file in place (one `pwrite`,
//! no fsync — the commit itself is already durable); `close` fsyncs it. The watermark never
//! runs ahead of what is on disk, since it is written after the journal's fsync returned. It
//! may lag after a power loss (the write was still in the page cache), which only weakens
//! the check for the last few batches; it never raises a false alarm.
//!
//! What it does not catch: a gap in the middle of the log whose later batches survived (a
//! sealed journal damaged while a newer one is intact). fjall cannot undo its truncation
//! either, so the error says to restore a backup, or to delete the file to accept the data
//! as it now is.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::store::Seq;

/// The watermark's file, in the data directory.
pub const WATERMARK_FILE: &str = "KORA_WATERMARK";

/// The sequence, then its bitwise complement: a torn or foreign file does not pass.
fn encode(seq: Seq) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&seq.to_be_bytes());
    out[8..].copy_from_slice(&(!seq).to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Seq> {
    let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let check = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    (check == !seq).then_some(seq)
}

/// The open watermark file.
pub struct Watermark {
    file: File,
    path: PathBuf,
}

impl Watermark {
    /// Opens (or creates, at 0) the watermark in data directory `dir`, returning it and the
    /// sequence it holds.
    pub fn open(dir: &Path) -> Result<(Watermark, Seq), StoreError> {
        let path = dir.join(WATERMARK_FILE);
        let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let bytes = std::fs::read(&path).map_err(io)?;
        let seq = match bytes.len() {
            0 => 0,
            _ => decode(&bytes).ok_or_else(|| {
                StoreError::Corrupted(format!(
                    "{}: not a watermark ({} bytes); delete it if the data is known to be whole",
                    path.display(),
                    bytes.len()
                ))
            })?,
        };
        Ok((Watermark { file, path }, seq))
    }

    /// Records that `seq` was acknowledged. Best effort: the commit is durable already.
    pub fn record(&self, seq: Seq) {
        if let Err(error) = self.file.write_all_at(&encode(seq), 0) {
            tracing::warn!(path = %self.path.display(), %error, "could not update the watermark");
        }
    }

    /// Makes the last recorded sequence durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.file
            .sync_data()
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.path.display())))
    }

    /// Fails when the recovered change log ends before the watermark.
    pub fn check(&self, watermark: Seq, recovered: Seq, dir: &Path) -> Result<(), StoreError> {
        if recovered >= watermark {
            return Ok(());
        }
        Err(StoreError::Corrupted(format!(
            "{}: the change log ends at sequence {recovered}, but sequences up to {watermark} \
             were committed: the engine's journal is damaged and lost acknowledged writes. \
             Restore the directory from a backup, or delete {} to accept the data as it is now",
            dir.display(),
            self.path.display()
        )))
    }
}

/// Sets the watermark of a closed data directory (for tools and tests).
pub fn set(dir: &Path, seq: Seq) -> Result<(), StoreError> {
    let path = dir.join(WATERMARK_FILE);
    std::fs::write(&path, encode(seq)).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            StoreError::Unavailable(format!("{}: no such directory", dir.display()))
        }
        _ => StoreError::Unavailable(format!("{}: {e}", path.display())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        for seq in [0, 1, 42, u64::MAX] {
            assert_eq!(decode(&encode(seq)), Some(seq));
        }
        assert_eq!(decode(&[0; 16]), None);
        assert_eq!(decode(&[1, 2, 3]), None);
    }

    #[test]
    fn opens_creates_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let (mark, seq) = Watermark::open(dir.path()).unwrap();
        assert_eq!(seq, 0);
        mark.record(7);
        mark.sync().unwrap();
        drop(mark);
        let (mark, seq) = Watermark::open(dir.path()).unwrap();
        assert_eq!(seq, 7);
        assert!(mark.check(7, 7, dir.path()).is_ok());
        assert!(matches!(
            mark.check(7, 6, dir.path()),
            Err(StoreError::Corrupted(_))
        ));
        std::fs::write(dir.path().join(WATERMARK_FILE), b"junk").unwrap();
        assert!(matches!(
            Watermark::open(dir.path()),
            Err(StoreError::Corrupted(_))
        ));
    }
}
