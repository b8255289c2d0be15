//! Backups of the embedded store: taken while 64 writers commit, restored into a fresh
//! directory that holds exactly the source's state at the backup's sequence (every record's
//! stamps and tombstones, the change log, the outbox), continuing in a forked history; and
//! refused, by name, when incomplete or damaged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kora_core::records::Record;
use kora_core::{Mutation, Path as KoraPath, Stamp};
use kora_store::{Change, EmbeddedStore, LogRead, NewEffect, Page, Seq, Store, StoreError, Write};
use serde_json::json;

const WRITERS: usize = 64;

/// An acknowledged write: its sequence and stamp, its mutation, whether it had an effect.
type Acknowledged = (Seq, Stamp, Mutation, bool);

fn root() -> KoraPath {
    KoraPath::parse("").expect("the root")
}

/// Every record of a store, by path.
async fn records(store: &EmbeddedStore) -> BTreeMap<String, Record> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .records(Page::new(&root(), after.as_ref(), 1_000))
            .await
            .expect("records");
        let Some((last, _)) = page.last() else {
            return out;
        };
        after = Some(last.clone());
        out.extend(page.into_iter().map(|(p, r)| (p.to_string(), r)));
    }
}

async fn log(store: &dyn Store, up_to: Seq) -> Vec<Change> {
    let mut out = Vec::new();
    let mut after = 0;
    while after < up_to {
        let LogRead::Changes(page) = store.changes(after, 1_000).await.expect("log") else {
            panic!("the log was compacted");
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page.into_iter().filter(|c| c.seq <= up_to));
    }
    out
}

/// One writer's mutation `n`: merges, deletes (tombstones) and effects over a small key
/// space, so that writers overwrite and delete each other's data.
fn mutation(rng: &mut fastrand::Rng) -> (Mutation, bool) {
    let a = rng.u8(..8);
    let b = rng.u8(..8);
    let value = json!({"by": rng.u32(..), "n": rng.u8(..)});
    let m = match rng.u8(..10) {
        0 => json!({"delete": {format!("k{a}"): 1}}),
        1 => json!({"delete": {format!("k{a}"): {format!("c{b}"): 1}}}),
        _ => json!({"merge": {format!("k{a}"): {format!("c{b}"): value}}}),
    };
    (
        Mutation::from_json(&m).expect("a mutation"),
        rng.u8(..5) == 0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_64_writers_restores_the_state_at_its_sequence() {
    let seed = kora_testkit::seed("a_backup_under_64_writers_restores_the_state_at_its_sequence");
    let temp = tempfile::tempdir().unwrap();
    let source = Arc::new(
        EmbeddedStore::open(temp.path().join("source"))
            .await
            .unwrap(),
    );
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (source, acknowledged, stop) = (source.clone(), acknowledged.clone(), stop.clone());
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(w as u64));
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                n += 1;
                let (mutation, with_effect) = mutation(&mut rng);
                let stamp = Stamp::new(1_000 + rng.u64(..100_000), rng.u16(..), w as u64 + 1);
                let mut write = Write::new(stamp, mutation.clone());
                if with_effect {
                    write.effects.push(NewEffect {
                        kind: "webhook".into(),
                        payload: json!({"writer": w, "n": n}),
                    });
                }
                let commit = source.commit(write).await.expect("commit");
                acknowledged.lock().unwrap().push((
                    commit.seq,
                    commit.stamp,
                    mutation,
                    with_effect,
                ));
            }
        }));
    }
    // Take the backup once writes are flowing, while they go on.
    kora_testkit::eventually("writes flowing", || {
        let acknowledged = acknowledged.clone();
        async move { acknowledged.lock().unwrap().len() >= 2_000 }
    })
    .await;
    let file = temp.path().join("kora.backup");
    let out = std::fs::File::create(&file).unwrap();
    let backup = source.backup(Box::new(out)).await.expect("backup");
    let after_backup = acknowledged.lock().unwrap().len();
    kora_testkit::eventually("writes after the backup", || {
        let acknowledged = acknowledged.clone();
        async move { acknowledged.lock().unwrap().len() >= after_backup + 1_000 }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let last = source.last_seq().await.unwrap();
    assert!(
        backup.seq > 0 && backup.seq < last,
        "the backup is a point inside the load"
    );
    println!(
        "backup at seq {} of {last}: {} entries, {} bytes",
        backup.seq, backup.entries, backup.bytes
    );

    let target = temp.path().join("restored");
    let input = std::fs::File::open(&file).unwrap();
    let restored_info = tokio::task::spawn_blocking({
        let target = target.clone();
        move || EmbeddedStore::restore(input, &target)
    })
    .await
    .unwrap()
    .expect("restore");
    assert_eq!(restored_info.seq, backup.seq);
    let restored = EmbeddedStore::open(&target)
        .await
        .expect("open the restored store");

    // The expected state: the acknowledged writes up to the backup's sequence, replayed in
    // sequence order with the stamps they committed with.
    let expected_dir = temp.path().join("expected");
    let expected = EmbeddedStore::open(&expected_dir).await.unwrap();
    let mut writes = acknowledged.lock().unwrap().clone();
    writes.sort_by_key(|(seq, ..)| *seq);
    let mut effects = 0;
    for (seq, stamp, mutation, with_effect) in writes.iter().filter(|w| w.0 <= backup.seq) {
        let commit = expected
            .commit(Write::new(*stamp, mutation.clone()))
            .await
            .unwrap();
        assert_eq!(commit.seq, *seq, "sequences are dense");
        effects += u64::from(*with_effect);
    }
    let (want, got) = (records(&expected).await, records(&restored).await);
    assert_eq!(got.len(), want.len(), "as many records");
    for (path, record) in &want {
        assert_eq!(
            got.get(path),
            Some(record),
            "the record at {path}, stamps included"
        );
    }
    assert!(
        want.values().any(|r| r.tombstone.is_some()),
        "tombstones were compared"
    );
    assert_eq!(
        log(&restored, u64::MAX).await,
        log(source.as_ref(), backup.seq).await
    );
    assert_eq!(restored.last_seq().await.unwrap(), backup.seq);
    assert_eq!(restored.effect_counts().await.unwrap().pending, effects);

    // The restored store continues in a history forked at the backup.
    let original = source.history().await.unwrap().unwrap();
    let history = restored.history().await.unwrap().unwrap();
    assert_ne!(history.id, original.id);
    assert!(history.shares(&original.id, backup.seq));
    assert!(!history.shares(&original.id, backup.seq + 1));
    let next = restored
        .commit(Write::new(
            Stamp::new(999_999_999, 0, 1),
            Mutation::from_json(&json!({"merge": {"after": 1}})).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(next.seq, backup.seq + 1);
    for store in [&*source, &restored, &expected] {
        store.close().await.unwrap();
    }
    // And it reopens (its watermark is the backup's sequence, not ahead of its log).
    let reopened = EmbeddedStore::open(&target).await.expect("reopen");
    assert_eq!(reopened.last_seq().await.unwrap(), backup.seq + 1);
}

/// A small backup's bytes.
async fn small_backup(dir: &Path) -> Vec<u8> {
    let store = EmbeddedStore::open(dir.join("small")).await.unwrap();
    for n in 0..50u64 {
        let m = Mutation::from_json(&json!({"merge": {"k": {format!("c{n}"): n}}})).unwrap();
        store
            .commit(Write::new(Stamp::new(1_000 + n, 0, 1), m))
            .await
            .unwrap();
    }
    let file = dir.join("small.backup");
    store
        .backup(Box::new(std::fs::File::create(&file).unwrap()))
        .await
        .unwrap();
    store.close().await.unwrap();
    std::fs::read(file).unwrap()
}

fn restore(bytes: &[u8], target: &Path) -> Result<kora_store::Backup, StoreError> {
    EmbeddedStore::restore(bytes, target)
}

#[tokio::test]
async fn an_incomplete_or_damaged_backup_is_refused_and_leaves_nothing() {
    let mut rng =
        kora_testkit::rng("an_incomplete_or_damaged_backup_is_refused_and_leaves_nothing");
    let temp = tempfile::tempdir().unwrap();
    let bytes = small_backup(temp.path()).await;
    let target = temp.path().join("target");
    // Cut at every boundary of the end marker and at random points before it.
    let mut cuts: Vec<usize> = (1..=13).map(|n| bytes.len() - n).collect();
    cuts.extend([0, 5, 14, 20]);
    cuts.extend((0..30).map(|_| rng.usize(..bytes.len())));
    for cut in cuts {
        let error = restore(&bytes[..cut], &target).expect_err("a cut backup is refused");
        assert!(
            matches!(error, StoreError::BadBackup(_)),
            "cut at {cut}: {error}"
        );
        assert!(!target.exists() && !temp.path().join("target.restoring").exists());
    }
    let cut = restore(&bytes[..bytes.len() - 1], &target)
        .unwrap_err()
        .to_string();
    assert!(
        cut.contains("incomplete") || cut.contains("damaged"),
        "{cut}"
    );
    let start = restore(&bytes[..bytes.len() / 2], &target)
        .unwrap_err()
        .to_string();
    assert!(start.contains("incomplete"), "{start}");
    // A flipped byte among the entries fails the checksum.
    let mut flipped = bytes.clone();
    let at = bytes.len() - 40;
    flipped[at] ^= 0x55;
    let error = restore(&flipped, &target).unwrap_err();
    assert!(matches!(error, StoreError::BadBackup(_)), "{error}");
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(restore(&longer, &target)
        .unwrap_err()
        .to_string()
        .contains("after its end"));
    assert!(restore(b"hello", &target)
        .unwrap_err()
        .to_string()
        .contains("not a Kora backup"));
    // The whole backup restores, and not over a directory that holds something.
    restore(&bytes, &target).expect("the whole backup restores");
    let again = restore(&bytes, &target).unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");
    let store = EmbeddedStore::open(&target).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 50);
}

#[tokio::test]
async fn only_the_embedded_store_makes_its_own_backups() {
    let store = kora_store::MemoryStore::new();
    let error = store.backup(Box::new(std::io::sink())).await.unwrap_err();
    assert!(matches!(error, StoreError::Unsupported(_)), "{error}");
}
