//! A client that synced with a server, then reconnects to a server restored from an
//! earlier backup, converges to the restored server's tree. The restored server continues
//! the sequence numbers from the backup, so the client's sequence may name a different
//! commit there; the store's history tells them apart and the client is sent a fresh value
//! (`reset`) instead of a replay that would keep what the restore lost.

mod common;

use common::{client, cut_off, server_in, server_value, text, Proxy, SYNC};
use kora_client::PathQuery;
use kora_core::{Mutation, Path};
use kora_server::Running;
use kora_store::EmbeddedStore;
use serde_json::json;

async fn write(running: &Running, path: &str, value: serde_json::Value) -> u64 {
    let ctx = running.kora.system_context();
    let m = if value.is_null() {
        Mutation::delete(&Path::parse(path).unwrap())
    } else {
        Mutation::merge(&Path::parse(path).unwrap(), value).unwrap()
    };
    running.kora.mutate(&ctx, m, None).await.unwrap().seq
}

/// `restored_writes`: commits the restored server takes before the client comes back (0:
/// it is behind the client's sequence; more: it has passed it, with other commits).
async fn converges_after_restore(restored_writes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let source_dir = dir.path().join("source");
    let source = server_in(&source_dir, |_| {}).await;
    let proxy = Proxy::start(source.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.subscribe(PathQuery::new(Path::parse("todos").unwrap()))
        .await
        .unwrap();
    for i in 0..5 {
        write(&source, &format!("todos/t{i}"), json!({"text": i})).await;
    }
    c.synced(SYNC).await.unwrap();

    let file = dir.path().join("kora.backup");
    let backup = source
        .kora
        .store()
        .backup(Box::new(std::fs::File::create(&file).unwrap()))
        .await
        .unwrap();
    // The client sees what the backup does not hold: a delete and new children.
    write(&source, "todos/t1", serde_json::Value::Null).await;
    let mut last = 0;
    for i in 5..10 {
        last = write(&source, &format!("todos/t{i}"), json!({"text": i})).await;
    }
    kora_testkit::eventually("the client has the source's last commit", || async {
        c.get("todos").await.unwrap() == server_value(&source, "todos").await
    })
    .await;
    cut_off(&proxy, &c).await;
    source.stop().await.unwrap();

    let restored_dir = dir.path().join("restored");
    let target = restored_dir.join("server");
    tokio::task::spawn_blocking(move || {
        EmbeddedStore::restore(std::fs::File::open(file).unwrap(), &target)
    })
    .await
    .unwrap()
    .unwrap();
    let restored = server_in(&restored_dir, |_| {}).await;
    let mut seq = backup.seq;
    for i in 0..restored_writes {
        seq = write(&restored, &format!("todos/r{i}"), json!({"text": i})).await;
    }
    assert!(
        (restored_writes == 0) == (seq < last),
        "the restored server's sequence is {seq}, the client's {last}"
    );
    let resets = c.stats().resets;
    proxy.redirect(restored.addr);
    proxy.restore();
    c.synced(SYNC).await.unwrap();
    assert_eq!(
        text(&c.get("todos").await.unwrap()),
        text(&server_value(&restored, "todos").await),
        "the client holds the restored server's tree"
    );
    assert!(c.stats().resets > resets, "it was sent a fresh value");
    // And it follows the restored server from there.
    write(&restored, "todos/after", json!({"text": "after"})).await;
    kora_testkit::eventually("the client follows the restored server", || async {
        c.get("todos").await.unwrap() == server_value(&restored, "todos").await
    })
    .await;
    c.close().await;
    restored.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ahead_of_a_restored_server_converges() {
    converges_after_restore(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_sequence_the_restored_server_reused_converges() {
    converges_after_restore(20).await;
}
