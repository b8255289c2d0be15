//! The embedded store: the conformance suite, each check in a fresh temporary directory,
//! then what only a local directory can get wrong — reopening, locking, format versions,
//! damaged files, and a batch that fails.

mod conformance;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use kora_core::{Mutation, Path as KoraPath, PathQuery, Stamp};
use kora_store::embedded::{dir, engine, watermark};
use kora_store::{Claim, EmbeddedStore, LogRead, NewEffect, Store, StoreError, Write};
use serde_json::{json, Value};

fn factory() -> Pin<Box<dyn Future<Output = Option<conformance::Opened>> + Send>> {
    Box::pin(async {
        let temp = tempfile::tempdir().expect("temporary directory");
        let store = EmbeddedStore::open(temp.path().join("data"))
            .await
            .expect("open");
        Some(conformance::Opened {
            store: Arc::new(store) as Arc<dyn Store>,
            cleanup: Some(Box::pin(async move { drop(temp) })),
        })
    })
}

conformance_tests!("embedded", factory);

fn p(text: &str) -> KoraPath {
    KoraPath::parse(text).expect("valid path")
}

fn write(n: u64, mutation: Value) -> Write {
    let mutation = Mutation::from_json(&mutation).expect("valid mutation");
    Write::new(Stamp::new(1_000 + n, 0, 1), mutation)
}

async fn get(store: &dyn Store, path: &str) -> Option<Value> {
    store.get(&PathQuery::new(p(path))).await.expect("read")
}

/// Runs an async check on a runtime of its own.
fn run<F: Future<Output = ()>>(check: F) {
    conformance::runtime().block_on(check);
}

#[test]
fn data_survives_reopening() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        store
            .commit(write(1, json!({"merge": {"a": {"b": 1, "c": "x"}}})))
            .await
            .unwrap();
        store
            .commit(write(2, json!({"delete": {"a": {"c": 1}}})))
            .await
            .unwrap();
        let effect = NewEffect {
            kind: "webhook".into(),
            payload: json!({"url": "http://127.0.0.1:1"}),
        };
        let mut with_effect = write(3, json!({"merge": {"d": true}}));
        with_effect.effects.push(effect);
        store.commit(with_effect).await.unwrap();
        let now = kora_core::stamp::wall_millis();
        let claimed = store.claim_effects(ten_due(now)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        store.close().await.unwrap();

        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        assert_eq!(store.last_seq().await.unwrap(), 3);
        assert_eq!(
            get(&store, "").await,
            Some(json!({"a": {"b": 1}, "d": true}))
        );
        let LogRead::Changes(log) = store.changes(0, 10).await.unwrap() else {
            panic!("compacted");
        };
        assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
        // The lease was written: nobody else claims the effect before it ends.
        assert!(store
            .claim_effects(ten_due(now + 1))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .claim_effects(ten_due(now + 60_001))
                .await
                .unwrap()
                .len(),
            1
        );
        let next = store
            .commit(write(4, json!({"merge": {"e": 1}})))
            .await
            .unwrap();
        assert_eq!(next.seq, 4);
        store.close().await.unwrap();
    });
}

#[test]
fn compacted_log_keeps_its_sequence_across_reopening() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        for i in 1..=5 {
            store
                .commit(write(i, json!({"merge": {"n": i}})))
                .await
                .unwrap();
        }
        let far_future = kora_core::stamp::wall_millis() + 60_000;
        store.compact(Stamp::ZERO, far_future).await.unwrap();
        store.close().await.unwrap();
        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        assert_eq!(store.last_seq().await.unwrap(), 5);
        assert_eq!(
            store.changes(0, 10).await.unwrap(),
            LogRead::Compacted { oldest: 6 }
        );
        let next = store
            .commit(write(6, json!({"merge": {"n": 6}})))
            .await
            .unwrap();
        assert_eq!(next.seq, 6);
        store.close().await.unwrap();
    });
}

#[test]
fn open_through_a_url() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let url = format!("embedded:{}", temp.path().join("kora-data").display());
        let store = kora_store::open(&url).await.unwrap();
        store
            .commit(write(1, json!({"merge": {"a": 1}})))
            .await
            .unwrap();
        assert_eq!(store.stats().await.unwrap().backend, "embedded");
        store.close().await.unwrap();
    });
}

#[test]
fn a_directory_in_use_is_locked() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let first = EmbeddedStore::open(temp.path()).await.unwrap();
        let second = EmbeddedStore::open(temp.path()).await;
        assert!(
            matches!(&second, Err(StoreError::Locked { path }) if path.contains(&*temp.path().to_string_lossy())),
            "{:?}",
            second.err()
        );
        first.close().await.unwrap();
        let third = EmbeddedStore::open(temp.path())
            .await
            .expect("unlocked once closed");
        third.close().await.unwrap();
    });
}

#[test]
fn a_newer_format_is_refused() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        EmbeddedStore::open(temp.path())
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        let format = temp.path().join(dir::FORMAT_FILE);
        std::fs::write(&format, "kora embedded format 99\n").unwrap();
        let error = EmbeddedStore::open(temp.path()).await.err();
        assert_eq!(
            error,
            Some(StoreError::NewerFormat {
                path: temp.path().display().to_string(),
                found: 99,
                supported: dir::FORMAT_VERSION,
            })
        );
    });
}

#[test]
fn a_file_is_not_a_data_directory() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("plain-file");
        std::fs::write(&file, "hello").unwrap();
        let error = EmbeddedStore::open(&file).await.err();
        assert!(
            matches!(&error, Some(StoreError::InvalidUrl { reason, .. }) if reason.contains("not a directory")),
            "{error:?}"
        );
        // Someone else's directory is left alone.
        let error = EmbeddedStore::open(temp.path()).await.err();
        assert!(
            matches!(&error, Some(StoreError::InvalidUrl { reason, .. }) if reason.contains("plain-file")),
            "{error:?}"
        );
    });
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn assert_corrupted(result: Result<EmbeddedStore, StoreError>, dir: &Path) {
    match result {
        Err(StoreError::Corrupted(message)) => {
            assert!(message.contains(&*dir.to_string_lossy()), "{message}");
        }
        Err(other) => panic!("expected Corrupted, got {other:?}"),
        Ok(_) => panic!("expected Corrupted, the store opened"),
    }
}

/// The journal file that holds the data, and where its written bytes end (fjall
/// preallocates journals, so the rest is zeros).
fn journal(dir: &Path) -> (std::path::PathBuf, usize) {
    let file = files(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jnl"))
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .expect("a journal file");
    let bytes = std::fs::read(&file).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    (file, end)
}

/// A closed store with `n` commits, one batch each.
async fn store_with_commits(dir: &Path, n: u64) {
    let store = EmbeddedStore::open(dir).await.unwrap();
    for i in 1..=n {
        let m = json!({"merge": {"n": {format!("k{i}"): i}}});
        store.commit(write(i, m)).await.unwrap();
    }
    store.close().await.unwrap();
}

/// A store left with `n` commits as a crash would leave it: not closed, so they are only
/// in the journal (closing flushes them into tables).
fn crashed_with_commits(dir: &Path, n: u64) {
    let rt = conformance::runtime();
    let store = rt.block_on(async {
        let store = EmbeddedStore::open(dir).await.unwrap();
        for i in 1..=n {
            let m = json!({"merge": {"n": {format!("k{i}"): i}}});
            store.commit(write(i, m)).await.unwrap();
        }
        store
    });
    drop(store);
    drop(rt); // ends the committer, which releases the database
}

#[test]
fn garbage_at_the_start_of_the_journal_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    crashed_with_commits(temp.path(), 10);
    run(async {
        let (file, end) = journal(temp.path());
        let mut bytes = std::fs::read(&file).unwrap();
        assert!(end > 64, "the journal holds the batches");
        bytes[..64].fill(0xff);
        std::fs::write(&file, &bytes).unwrap();
        // fjall cuts the journal at the garbage, dropping all ten acknowledged commits.
        assert_corrupted(EmbeddedStore::open(temp.path()).await, temp.path());
    });
}

#[test]
fn a_journal_truncated_into_acknowledged_commits_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    crashed_with_commits(temp.path(), 10);
    run(async {
        let (file, end) = journal(temp.path());
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        handle.set_len(end as u64 / 2).unwrap();
        drop(handle);
        assert_corrupted(EmbeddedStore::open(temp.path()).await, temp.path());
    });
}

#[test]
fn a_torn_unacknowledged_last_batch_is_dropped_quietly() {
    let temp = tempfile::tempdir().unwrap();
    crashed_with_commits(temp.path(), 3);
    run(async {
        let (file, end) = journal(temp.path());
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        handle.set_len(end as u64 - 5).unwrap(); // the last write was torn...
        drop(handle);
        watermark::set(temp.path(), 2).unwrap(); // ...before it was acknowledged
        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        assert_eq!(store.last_seq().await.unwrap(), 2);
        let LogRead::Changes(log) = store.changes(0, 10).await.unwrap() else {
            panic!("compacted");
        };
        assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(get(&store, "n").await, Some(json!({"k1": 1, "k2": 2})));
        store.close().await.unwrap();
    });
}

/// Opens the engine behind the store's back (the store must be closed).
fn raw_engine(
    dir: &Path,
) -> (
    fjall::SingleWriterTxDatabase,
    Vec<fjall::SingleWriterTxKeyspace>,
) {
    let db = fjall::SingleWriterTxDatabase::builder(dir.join(dir::ENGINE_DIR))
        .open()
        .unwrap();
    let keyspaces = [engine::RECORDS, engine::LOG, engine::OUTBOX, engine::META]
        .iter()
        .map(|name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        })
        .collect();
    (db, keyspaces)
}

#[test]
fn a_garbage_table_file_is_corruption() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        store_with_commits(temp.path(), 50).await;
        let (db, keyspaces) = raw_engine(temp.path());
        for keyspace in &keyspaces {
            keyspace.inner().rotate_memtable_and_wait().unwrap();
        }
        drop((keyspaces, db));
        let tables: Vec<_> = files(temp.path())
            .into_iter()
            .filter(|f| f.components().any(|c| c.as_os_str() == "tables"))
            .filter(|f| !f.to_string_lossy().contains("keyspaces/0/"))
            .collect();
        assert!(tables.len() >= 2, "tables: {tables:?}");
        for table in &tables {
            let len = std::fs::metadata(table).unwrap().len() as usize;
            std::fs::write(table, vec![0xab; len]).unwrap();
        }
        match EmbeddedStore::open(temp.path()).await {
            Err(StoreError::Corrupted(_)) => {}
            Err(other) => panic!("expected Corrupted, got {other:?}"),
            // Tables may be opened lazily; the damage then shows on the first read.
            Ok(store) => {
                let read = store.get(&PathQuery::new(p("n"))).await;
                assert!(matches!(read, Err(StoreError::Corrupted(_))), "{read:?}");
            }
        }
    });
}

#[test]
fn a_missing_format_file_is_corruption() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        store_with_commits(temp.path(), 1).await;
        std::fs::remove_file(temp.path().join(dir::FORMAT_FILE)).unwrap();
        assert_corrupted(EmbeddedStore::open(temp.path()).await, temp.path());
        std::fs::write(temp.path().join(dir::FORMAT_FILE), "\u{0}\u{1}junk").unwrap();
        assert_corrupted(EmbeddedStore::open(temp.path()).await, temp.path());
    });
}

/// Puts raw bytes at a record's key, behind the store's back.
fn plant_record(dir: &Path, path: &str, bytes: &[u8]) {
    let (db, keyspaces) = raw_engine(dir);
    keyspaces[0]
        .insert(kora_core::key::encode(&p(path)), bytes)
        .unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

#[test]
fn a_record_that_does_not_decode_is_corruption_and_fails_its_batch_whole() {
    run(async {
        let temp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        store
            .commit(write(1, json!({"merge": {"ok": 1}})))
            .await
            .unwrap();
        store.close().await.unwrap();
        plant_record(temp.path(), "bad/x", b"\x09garbage");

        let store = EmbeddedStore::open(temp.path()).await.unwrap();
        let read = store.get(&PathQuery::new(p("bad"))).await;
        assert!(
            matches!(&read, Err(StoreError::Corrupted(m)) if m.contains("bad/x") && m.contains(&*temp.path().to_string_lossy())),
            "{read:?}"
        );
        // One mutation writing a good leaf and touching the damaged record fails whole.
        let both = write(2, json!({"merge": {"good": 1, "bad": {"x": 2}}}));
        let failed = store.commit(both).await;
        assert!(
            matches!(failed, Err(StoreError::Corrupted(_))),
            "{failed:?}"
        );
        assert_eq!(get(&store, "good").await, None, "nothing of a failed batch");
        assert_eq!(store.last_seq().await.unwrap(), 1);
        let next = store
            .commit(write(3, json!({"merge": {"good": 3}})))
            .await
            .unwrap();
        assert_eq!(next.seq, 2, "no gap after a failed batch");
        let LogRead::Changes(log) = store.changes(0, 10).await.unwrap() else {
            panic!("compacted");
        };
        assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        store.close().await.unwrap();
    });
}

/// A claim of up to ten effects due at `now_ms`, leased for 60_000 ms.
fn ten_due(now_ms: u64) -> Claim {
    Claim {
        now_ms,
        lease_ms: 60_000,
        limit: 10,
    }
}
