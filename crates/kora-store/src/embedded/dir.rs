//! The data directory: what is in it, and the checks made before the engine touches it.
//!
//! ```text
//! kora-data/
//!   KORA_FORMAT      "kora embedded format 1": which layout the rest of the directory has
//!   KORA_WATERMARK   the highest acknowledged sequence (`watermark.rs`)
//!   fjall/           the fjall database (its journal, keyspaces and lock file)
//! ```
//!
//! `KORA_FORMAT` is written (atomically: temporary file, fsync, rename, fsync of the
//! directory) before anything else when a directory is created, and read before the engine
//! opens, so that a directory written by a newer Kora is refused before this one's engine
//! reads, and perhaps misreads, its files. A non-empty directory without it is not Kora's and
//! is left alone. Locking is fjall's: it holds an exclusive lock on `fjall/lock` while open.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// The file naming the directory's format version.
pub const FORMAT_FILE: &str = "KORA_FORMAT";

/// The format this code writes and reads. Raise it when the layout or an encoding in
/// `codec.rs` changes incompatibly; older versions are then migrated or refused by name.
pub const FORMAT_VERSION: u64 = 1;

/// Where, inside the data directory, the engine keeps its files.
pub const ENGINE_DIR: &str = "fjall";

const FORMAT_PREFIX: &str = "kora embedded format ";
const FORMAT_TEMP: &str = "KORA_FORMAT.tmp";

/// Makes sure `dir` is a Kora data directory of a format this code reads, creating it if
/// needed, and returns the engine's directory inside it.
pub fn prepare(dir: &Path) -> Result<PathBuf, StoreError> {
    ensure_directory(dir)?;
    let format = dir.join(FORMAT_FILE);
    match fs::read(&format) {
        Ok(bytes) => check_format(&format, &bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir)?,
        Err(e) => return Err(unavailable(&format, &e)),
    }
    Ok(dir.join(ENGINE_DIR))
}

fn ensure_directory(dir: &Path) -> Result<(), StoreError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::InvalidUrl {
            url: format!("embedded:{}", dir.display()),
            reason: "this path is a file, not a directory".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| unavailable(dir, &e))
        }
        Err(e) => Err(unavailable(dir, &e)),
    }
}

fn check_format(file: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let text = String::from_utf8_lossy(bytes);
    let version = text
        .trim()
        .strip_prefix(FORMAT_PREFIX)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            StoreError::Corrupted(format!(
                "{}: expected \"{FORMAT_PREFIX}N\", found {:?}",
                file.display(),
                text.chars().take(80).collect::<String>()
            ))
        })?;
    if version > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            path: parent(file),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Writes the format file into a directory that has none, refusing one that holds
/// anything else: it is someone else's directory, or Kora data whose format file was lost.
fn create(dir: &Path) -> Result<(), StoreError> {
    let foreign: Vec<String> = fs::read_dir(dir)
        .map_err(|e| unavailable(dir, &e))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != FORMAT_TEMP)
        .collect();
    if foreign
        .iter()
        .any(|name| name == ENGINE_DIR || name.starts_with("KORA_"))
    {
        return Err(StoreError::Corrupted(format!(
            "{}: holds Kora data ({}) but no {FORMAT_FILE} file",
            dir.display(),
            foreign.join(", ")
        )));
    }
    if !foreign.is_empty() {
        return Err(StoreError::InvalidUrl {
            url: format!("embedded:{}", dir.display()),
            reason: format!(
                "the directory is not empty and is not a Kora data directory (no {FORMAT_FILE}); \
                 found {}",
                foreign.join(", ")
            ),
        });
    }
    write_format(dir).map_err(|e| unavailable(dir, &e))
}

fn write_format(dir: &Path) -> std::io::Result<()> {
    let temp = dir.join(FORMAT_TEMP);
    let mut file = fs::File::create(&temp)?;
    writeln!(file, "{FORMAT_PREFIX}{FORMAT_VERSION}")?;
    file.sync_all()?;
    fs::rename(&temp, dir.join(FORMAT_FILE))?;
    fs::File::open(dir)?.sync_all()
}

fn parent(file: &Path) -> String {
    file.parent().unwrap_or(file).display().to_string()
}

fn unavailable(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_accepts_its_own_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        assert_eq!(prepare(&dir).unwrap(), dir.join(ENGINE_DIR));
        fs::create_dir(dir.join(ENGINE_DIR)).unwrap();
        assert_eq!(prepare(&dir).unwrap(), dir.join(ENGINE_DIR));
    }

    #[test]
    fn refuses_foreign_and_damaged_directories() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            prepare(root.path()),
            Err(StoreError::InvalidUrl { .. })
        ));
        let damaged = tempfile::tempdir().unwrap();
        fs::create_dir(damaged.path().join(ENGINE_DIR)).unwrap();
        assert!(matches!(
            prepare(damaged.path()),
            Err(StoreError::Corrupted(_))
        ));
    }

    #[test]
    fn reads_versions() {
        let file = Path::new("/d/KORA_FORMAT");
        assert_eq!(check_format(file, b"kora embedded format 1\n"), Ok(()));
        assert!(matches!(
            check_format(file, b"kora embedded format 7\n"),
            Err(StoreError::NewerFormat { found: 7, .. })
        ));
        for bad in [&b"garbage"[..], b"kora embedded format 0", b"\xff\xfe"] {
            assert!(matches!(
                check_format(file, bad),
                Err(StoreError::Corrupted(_))
            ));
        }
    }
}
