//! Writes made offline survive killing the client process: a child process (this test
//! binary, re-run) writes while the server is unreachable and is killed with SIGKILL; a new
//! client on the same cache sends the writes, with the stamps they were made with.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;

use common::{server_in, server_value, Proxy, SYNC};
use kora_client::{Client, Options, Stamp};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const WRITES: usize = 20;
const CHILD_CACHE: &str = "KORA_TEST_CHILD_CACHE";

/// Run only as the child of `offline_writes_survive_a_killed_process`.
#[tokio::test]
#[ignore = "run by offline_writes_survive_a_killed_process"]
async fn child_writes_offline_then_waits_to_be_killed() {
    let dir = std::env::var(CHILD_CACHE).expect("run by the parent test");
    // Nothing listens on port 1: the client stays offline.
    let c = Client::connect("http://127.0.0.1:1", Options::cached(dir))
        .await
        .unwrap();
    for i in 0..WRITES {
        let written = c
            .merge(&format!("notes/n{i:02}"), json!({"i": i}))
            .await
            .unwrap();
        println!("STAMP {}", written.stamp);
    }
    println!("READY");
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_writes_survive_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_offline_then_waits_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_CACHE, &cache)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stamps = BTreeSet::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(stamp) = line.strip_prefix("STAMP ") {
            stamps.insert(stamp.parse::<Stamp>().unwrap());
        }
        if line.trim() == "READY" {
            break;
        }
    }
    assert_eq!(stamps.len(), WRITES, "the child wrote");
    child.kill().await.unwrap(); // SIGKILL
    child.wait().await.unwrap();

    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = Client::connect(&proxy.url(), common::options(&cache))
        .await
        .unwrap();
    // The origin id lives in the cache: the restarted client is the same origin.
    let origins: BTreeSet<u64> = stamps.iter().map(Stamp::origin).collect();
    assert_eq!(origins, BTreeSet::from([c.origin()]));
    c.synced(SYNC).await.unwrap();
    assert_eq!(c.queued_writes().await, 0);
    let notes = server_value(&running, "notes").await.unwrap();
    assert_eq!(notes.as_object().unwrap().len(), WRITES);
    assert_eq!(notes["n07"], json!({"i": 7}));
    // Committed with the stamps they were made with (which order them: the server commits
    // a connection's writes concurrently).
    let log = match running.kora.store().changes(0, 1_000).await.unwrap() {
        kora_store::LogRead::Changes(changes) => changes,
        other => panic!("{other:?}"),
    };
    let committed: BTreeSet<Stamp> = log.iter().map(|c| c.stamp).collect();
    assert_eq!(committed, stamps);
    c.close().await;
}
