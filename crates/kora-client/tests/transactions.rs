//! Conditional writes and transactions through the client: against a real server, with
//! several clients racing on one counter, and a conditional write made offline.

mod common;

use common::{client, cut_off, server_in, server_value, Proxy, SYNC};
use kora_client::{Condition, Mutation, Path, PathQuery};
use serde_json::{json, Value};

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_condition_is_refused_with_the_current_value_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.subscribe(PathQuery::new(p("n"))).await.unwrap();
    c.set("n", json!(5))
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();

    let stale = Condition::equals(p("n"), Some(json!(4)));
    let write = Mutation::set(&p("n"), json!(6)).unwrap();
    let written = c.mutate_if(write, vec![stale]).await.unwrap();
    let refused = written.acknowledged().await.unwrap_err();
    assert_eq!(refused.code(), Some("conflict"));
    assert_eq!(refused.current("n"), Some(Some(json!(5))));
    assert_eq!(c.get("n").await.unwrap(), Some(json!(5)), "rolled back");

    let fresh = Condition::equals(p("n"), Some(json!(5)));
    let write = Mutation::set(&p("n"), json!(6)).unwrap();
    c.mutate_if(write, vec![fresh])
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    let absent = Condition::absent(p("m"));
    let write = Mutation::set(&p("m"), json!(1)).unwrap();
    c.mutate_if(write, vec![absent])
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    assert_eq!(server_value(&running, "n").await, Some(json!(6)));
    assert_eq!(server_value(&running, "m").await, Some(json!(1)));
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_from_eight_clients_on_one_counter_end_exact() {
    const CLIENTS: usize = 8;
    const EACH: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let c = client(&proxy, &dir.path().join(format!("c{i}"))).await;
        // Half read the counter from a subscription's cache, half from the server.
        if i % 2 == 0 {
            c.subscribe(PathQuery::new(p("counter"))).await.unwrap();
            c.synced(SYNC).await.unwrap();
        }
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0;
            for _ in 0..EACH {
                let done = c
                    .transaction("counter", |n| {
                        Some(json!(n.and_then(Value::as_i64).unwrap_or(0) + 1))
                    })
                    .await
                    .expect("transaction");
                assert!(done.committed);
                attempts += done.attempts;
            }
            c.close().await;
            attempts
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        attempts += task.await.unwrap();
    }
    let total = (CLIENTS * EACH) as i64;
    assert_eq!(server_value(&running, "counter").await, Some(json!(total)));
    println!("transactions: {total} increments took {attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.set("stock", json!(0))
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    let done = c
        .transaction("stock", |n| match n.and_then(Value::as_i64) {
            Some(0) | None => None, // nothing left: abort
            Some(n) => Some(json!(n - 1)),
        })
        .await
        .unwrap();
    assert!(!done.committed);
    assert_eq!(done.value, Some(json!(0)));
    let seq = running.kora.store().last_seq().await.unwrap();
    assert_eq!(seq, 1, "nothing was written");
    c.close().await;
}

/// A conditional write made offline is checked when it reaches the server: another client
/// changed the value meanwhile, so it is refused there and rolled back here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_write_made_offline_is_checked_when_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let (pa, pb) = (
        Proxy::start(running.addr).await,
        Proxy::start(running.addr).await,
    );
    let a = client(&pa, &dir.path().join("a")).await;
    let b = client(&pb, &dir.path().join("b")).await;
    a.subscribe(PathQuery::new(p("doc"))).await.unwrap();
    a.set("doc", json!({"v": 1}))
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    a.synced(SYNC).await.unwrap();
    cut_off(&pa, &a).await;

    let cond = Condition::equals(p("doc/v"), Some(json!(1)));
    let offline = a
        .mutate_if(Mutation::merge(&p("doc/v"), json!(2)).unwrap(), vec![cond])
        .await
        .unwrap();
    assert_eq!(
        a.get("doc/v").await.unwrap(),
        Some(json!(2)),
        "shown at once"
    );
    b.set("doc/v", json!(10))
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    pa.restore();
    let refused = offline.acknowledged().await.unwrap_err();
    assert_eq!(refused.code(), Some("conflict"));
    a.synced(SYNC).await.unwrap();
    assert_eq!(server_value(&running, "doc/v").await, Some(json!(10)));
    // The rollback and the pushed change leave the cache equal to the server.
    let deadline = tokio::time::Instant::now() + SYNC;
    while a.get("doc/v").await.unwrap() != Some(json!(10)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache converges"
        );
        a.synced(SYNC).await.unwrap();
        tokio::task::yield_now().await;
    }
    a.close().await;
    b.close().await;
}
