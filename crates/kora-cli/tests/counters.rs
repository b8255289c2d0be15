//! Writes that decide on data, through two `kora serve` nodes on one store (PostgreSQL, and
//! Cassandra), joined by NATS — the three ways a client increments a counter, each ending at
//! exactly the number of increments that reported success:
//!
//! - Google's Firebase SDK: `runTransaction(ref, n => n + 1)` from 8 clients, 4 per node;
//! - Firebase REST: `PATCH {"n": {".sv": {"increment": 1}}}`, 100 per node at once;
//! - Kora's own protocol: `kora_client::Client::transaction` from 8 clients, 4 per node;
//!
//! and a Firebase transaction rewriting a node while another client puts new children of it
//! erases no acknowledged child (on the shared stores, and on one node's embedded store).
//! Needs the `KORA_TEST_*` variables of `scripts/services`, and for the SDK, Node.js with
//! `tests/firebase`'s packages (`npm ci` there); each missing one is reported skipped.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::cluster::{shared_stores, Nats, Node};
use serde_json::{json, Value};

const KORA: &str = env!("CARGO_BIN_EXE_kora");

const CLIENTS_PER_NODE: usize = 4;
const EACH: usize = 25;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Two nodes on `store` (the first up before the second starts: it creates the schema).
fn two_nodes(store: &str, nats: &Nats) -> [Node; 2] {
    let a = Node::start(store, &nats.url());
    let b = Node::start(store, &nats.url());
    [a, b]
}

fn urls(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| format!("http://{}", n.addr)).collect()
}

/// The value at `path` through node `node` (Kora's REST read).
async fn value(node: &Node, path: &str) -> Value {
    reqwest::get(format!("http://{}/v1/data/{path}", node.addr))
        .await
        .expect("read")
        .json()
        .await
        .expect("json")
}

// ---------- Google's Firebase SDK, through tests/firebase/drive.mjs ----------

fn firebase_suite() -> Option<PathBuf> {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/firebase");
    let node = Command::new("node").arg("--version").output();
    if suite.join("node_modules").exists() && node.is_ok_and(|o| o.status.success()) {
        return Some(suite);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs the Firebase SDK: npm ci in tests/firebase"
    );
    println!("skipped: the Firebase SDK needs Node.js and `npm ci` in tests/firebase");
    None
}

/// Runs `drive.mjs` with `args`; its one line of JSON.
fn drive(suite: &PathBuf, args: &[String]) -> Value {
    let output = Command::new("node")
        .arg("drive.mjs")
        .args(args)
        .current_dir(suite)
        .env("KORA_BIN", KORA)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "drive.mjs {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("drive.mjs printed {stdout:?}: {e}"))
}

#[test]
fn firebase_sdk_transactions_through_two_nodes_end_exact() {
    let Some(suite) = firebase_suite() else {
        return;
    };
    runtime().block_on(async {
        for (name, store) in shared_stores().await {
            let nats = Nats::start();
            let nodes = two_nodes(store.url(), &nats);
            let mut args = vec![
                "transactions".to_string(),
                "counters/sdk".into(),
                CLIENTS_PER_NODE.to_string(),
                EACH.to_string(),
            ];
            args.extend(urls(&nodes));
            let result = drive(&suite, &args);
            let committed = result["committed"].as_u64().unwrap();
            let mut values: Vec<u64> = result["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            values.sort_unstable();
            // Each committed transaction wrote a distinct value 1..=committed.
            assert_eq!(values, (1..=committed).collect::<Vec<u64>>(), "{name}");
            for node in &nodes {
                assert_eq!(
                    value(node, "counters/sdk").await,
                    json!(committed),
                    "{name}"
                );
            }
            println!(
                "counters: {name}: {committed} SDK transactions committed, {} gave up",
                result["aborted"]
            );
            drop(nodes);
            store.drop().await;
        }
    });
}

// ---------- Firebase REST increments ----------

#[test]
fn rest_increments_through_two_nodes_end_exact() {
    const PER_NODE: usize = 100;
    runtime().block_on(async {
        for (name, store) in shared_stores().await {
            let nats = Nats::start();
            let nodes = two_nodes(store.url(), &nats);
            let http = reqwest::Client::new();
            let mut tasks = Vec::new();
            for node in &nodes {
                for _ in 0..PER_NODE {
                    let (http, addr) = (http.clone(), node.addr.clone());
                    tasks.push(tokio::spawn(async move {
                        let reply = http
                            .patch(format!("http://{addr}/counters.json"))
                            .json(&json!({"rest": {".sv": {"increment": 1}}}))
                            .send()
                            .await
                            .expect("patch");
                        reply.status().is_success()
                    }));
                }
            }
            let mut ok = 0;
            for task in tasks {
                ok += u64::from(task.await.unwrap());
            }
            for node in &nodes {
                assert_eq!(value(node, "counters/rest").await, json!(ok), "{name}");
            }
            println!(
                "counters: {name}: {ok} of {} REST increments acknowledged",
                2 * PER_NODE
            );
            assert_eq!(
                ok,
                2 * PER_NODE as u64,
                "{name}: every increment commits in the end"
            );
            drop(nodes);
            store.drop().await;
        }
    });
}

// ---------- Kora's own protocol ----------

#[test]
fn kora_transactions_through_two_nodes_end_exact() {
    runtime().block_on(async {
        for (name, store) in shared_stores().await {
            let nats = Nats::start();
            let nodes = two_nodes(store.url(), &nats);
            let mut tasks = Vec::new();
            for url in urls(&nodes) {
                for _ in 0..CLIENTS_PER_NODE {
                    let url = url.clone();
                    tasks.push(tokio::spawn(async move {
                        let options = kora_client::Options::default();
                        let client = kora_client::Client::connect(&url, options).await.unwrap();
                        let mut committed = 0u64;
                        for _ in 0..EACH {
                            let done = client
                                .transaction("counters/kora", |n| {
                                    Some(json!(n.and_then(Value::as_u64).unwrap_or(0) + 1))
                                })
                                .await;
                            match done {
                                Ok(done) if done.committed => committed += 1,
                                Ok(_) => panic!("nothing aborts this update"),
                                Err(e) => assert_eq!(e.code(), Some("conflict"), "{e}"),
                            }
                        }
                        client.close().await;
                        committed
                    }));
                }
            }
            let mut committed = 0;
            for task in tasks {
                committed += task.await.unwrap();
            }
            for node in &nodes {
                assert_eq!(
                    value(node, "counters/kora").await,
                    json!(committed),
                    "{name}"
                );
            }
            println!(
                "counters: {name}: {committed} of {} Kora transactions committed",
                2 * CLIENTS_PER_NODE * EACH
            );
            drop(nodes);
            store.drop().await;
        }
    });
}

// ---------- a transaction racing blind writes ----------

fn check_no_put_erased(name: &str, result: &Value, node_value: &Value) {
    let acknowledged = result["acknowledged"].as_array().unwrap();
    assert!(!acknowledged.is_empty());
    for i in acknowledged {
        assert_eq!(
            node_value.get(format!("c{i}")),
            Some(&json!(true)),
            "{name}: acknowledged put c{i} was erased: {node_value}"
        );
    }
    println!(
        "counters: {name}: {} rewrites and {} puts, none erased",
        result["rewrites"],
        acknowledged.len()
    );
}

#[test]
fn firebase_transactions_racing_puts_erase_no_acknowledged_put() {
    let Some(suite) = firebase_suite() else {
        return;
    };
    let args = |urls: Vec<String>| {
        let mut args = vec![
            "rewrite-and-put".into(),
            "docs/d".into(),
            "50".into(),
            "50".into(),
        ];
        args.extend(urls);
        args
    };
    runtime().block_on(async {
        // One node, its embedded store.
        let dir = tempfile::tempdir().unwrap();
        let store = format!("embedded:{}", dir.path().join("data").display());
        let nats = Nats::start();
        let node = Node::start(&store, &nats.url());
        let result = drive(&suite, &args(urls(std::slice::from_ref(&node))));
        check_no_put_erased("embedded", &result, &value(&node, "docs/d").await);
        drop(node);
        // Two nodes on each shared store.
        for (name, store) in shared_stores().await {
            let nodes = two_nodes(store.url(), &nats);
            let result = drive(&suite, &args(urls(&nodes)));
            check_no_put_erased(name, &result, &value(&nodes[0], "docs/d").await);
            drop(nodes);
            store.drop().await;
        }
    });
}
