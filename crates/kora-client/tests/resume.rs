//! A client offline while the server takes 10,000 changes resumes by replay and receives
//! only the changes under its subscriptions; with the change log compacted it is reset.

mod common;

use common::{client, cut_off, forget_log, server_in, server_value, text, Proxy, SYNC};
use kora_client::PathQuery;
use kora_core::{Mutation, Path};
use serde_json::json;

const CHANGES: usize = 10_000;
/// One change in this many is under the client's subscription.
const MINE_EVERY: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_by_replay_with_only_its_changes_then_by_reset_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.subscribe(PathQuery::new(Path::parse("mine").unwrap()))
        .await
        .unwrap();
    c.synced(SYNC).await.unwrap();

    cut_off(&proxy, &c).await;
    let ctx = running.kora.system_context();
    for i in 0..CHANGES {
        let top = if i % MINE_EVERY == 0 {
            "mine"
        } else {
            "theirs"
        };
        let path = Path::parse(&format!("{top}/k{:03}", i % 1000)).unwrap();
        let m = Mutation::merge(&path, json!({"i": i, "pad": "x".repeat(40)})).unwrap();
        running.kora.mutate(&ctx, m, None).await.unwrap();
    }
    let before = c.stats();
    proxy.restore();
    c.synced(SYNC).await.unwrap();
    let after = c.stats();
    let mine = CHANGES / MINE_EVERY;
    let bytes = after.bytes_received - before.bytes_received;
    println!(
        "replay: {} changes applied, {} frames, {bytes} bytes for {CHANGES} server changes",
        after.changes_applied - before.changes_applied,
        after.frames_received - before.frames_received,
    );
    assert_eq!(after.changes_applied - before.changes_applied, mine as u64);
    assert_eq!(after.resets, before.resets, "resumed by replay, not reset");
    // Every replayed change is ~150 bytes; the other 9,900 changes cost nothing.
    assert!(bytes < (mine as u64) * 300 + 1_000, "{bytes} bytes");
    assert_eq!(
        text(&c.get("mine").await.unwrap()),
        text(&server_value(&running, "mine").await)
    );

    // Offline again; the server forgets its change log: the client is sent a fresh value.
    cut_off(&proxy, &c).await;
    for i in 0..mine {
        let path = Path::parse(&format!("mine/k{:03}", i)).unwrap();
        let m = Mutation::merge(&path, json!({"i": -1})).unwrap();
        running.kora.mutate(&ctx, m, None).await.unwrap();
    }
    forget_log(&running).await;
    let before = c.stats();
    proxy.restore();
    c.synced(SYNC).await.unwrap();
    let after = c.stats();
    println!(
        "after compaction: {} reset(s), {} bytes",
        after.resets - before.resets,
        after.bytes_received - before.bytes_received
    );
    assert_eq!(after.resets - before.resets, 1);
    assert_eq!(after.changes_applied, before.changes_applied);
    assert_eq!(
        text(&c.get("mine").await.unwrap()),
        text(&server_value(&running, "mine").await)
    );
    c.close().await;
}
